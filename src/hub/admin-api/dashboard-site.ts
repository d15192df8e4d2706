import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** One file of the built dashboard, held in memory (the whole app is a few hundred KB). */
interface SiteFile {
  body: Buffer;
  /** The body gzipped, for text that shrinks. */
  gzip?: Buffer;
  type: string;
  /** Hashed file names never change content: browsers may keep them for good. */
  immutable: boolean;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

/**
 * What the dashboard's page may load: only this origin, no inline script, no
 * framing. A script injected through a device name has nowhere to run.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The built dashboard shipped with the package: `dist/dashboard` beside the
 * compiled server, found from this module whether it runs compiled (`dist/hub/...`)
 * or from its source (`src/hub/...`, in tests). Undefined when it was not built.
 */
export function builtDashboardDir(): string | undefined {
  for (const candidate of ['../../dashboard/', '../../../dist/dashboard/']) {
    const dir = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  return undefined;
}

/**
 * The dashboard's static files, read once when the admin API is built (no build
 * step at start), served at `/` with a single-page-app fallback: any GET outside
 * `/api/` that names no file gets `index.html`, so `/devices` can be reloaded.
 */
export class DashboardSite {
  private readonly files = new Map<string, SiteFile>();

  constructor(dir: string) {
    for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const path = join(entry.parentPath ?? entry.path, entry.name);
      const url = `/${relative(dir, path).split(sep).join('/')}`;
      const type = TYPES[extname(path)] ?? 'application/octet-stream';
      const body = readFileSync(path);
      const textual = /^(text\/|image\/svg|application\/json)/.test(type);
      this.files.set(url, {
        body,
        type,
        immutable: url.startsWith('/assets/'),
        ...(textual && body.length > 1024 && { gzip: gzipSync(body, { level: 9 }) }),
      });
    }
    if (!this.files.has('/index.html')) throw new Error(`${dir} holds no built dashboard (no index.html)`);
  }

  /** The site's paths, for tests and diagnostics. */
  paths(): string[] {
    return [...this.files.keys()].sort();
  }

  /**
   * Answers a GET or HEAD outside `/api/`: the file it names, else `index.html`
   * (a page of the app). Paths are looked up in memory only, so `..` reaches nothing.
   */
  serve(request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const path = (request.url.split('?')[0] ?? '/').replace(/\/+$/, '') || '/';
    const named = path === '/' ? undefined : this.files.get(path);
    // A missing hashed asset is a stale page asking for an old build: a 404, not the app.
    if (!named && path.startsWith('/assets/')) {
      return reply.code(404).type('text/plain; charset=utf-8').send('not found\n');
    }
    const file = named ?? (this.files.get('/index.html') as SiteFile);
    const gzip = file.gzip !== undefined && /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''));
    reply
      .code(200)
      .header('content-type', file.type)
      .header('cache-control', file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('vary', 'accept-encoding');
    if (file.type.startsWith('text/html')) {
      reply.header('content-security-policy', CONTENT_SECURITY_POLICY).header('x-frame-options', 'DENY');
    }
    if (gzip) reply.header('content-encoding', 'gzip');
    return reply.send(gzip ? file.gzip : file.body);
  }
}
