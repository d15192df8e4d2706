/**
 * File downloads for both HTTP APIs: a file version's bytes streamed with its
 * length, type and SHA-256 as the ETag, and single byte ranges (RFC 9110, section 14).
 */
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpApiError } from './errors.js';

/** What a download needs to know of a file version (a FileVersion has all of it). */
export interface DownloadVersion {
  name: string;
  size: number;
  type: string;
  modifiedAt: number;
  sha256: string;
  rev: string;
}

/** Reads a version's bytes from `start` (inclusive) to `end` (exclusive). */
export type ReadContent = (range: { start: number; end: number }) => AsyncIterable<Buffer>;

/** What to answer a Range header with. */
export type RangeAnswer =
  /** The whole content, 200: no Range, one this API ignores, or an empty file. */
  | { kind: 'whole' }
  /** Bytes `start` to `end` (exclusive), 206. */
  | { kind: 'partial'; start: number; end: number }
  /** No byte of the range is in the content, 416. */
  | { kind: 'unsatisfiable' };

/**
 * What to answer `Range: <header>` with, for content of `size` bytes. One range is
 * served: `a-b`, `a-` (to the end) and `-n` (the last n bytes); `b` past the end
 * means the end. A range that starts at or after the end, or `-0`, cannot be
 * satisfied. Everything else is ignored and the whole content is sent, as RFC 9110
 * lets a server do: several ranges (`0-1,5-6`: this API does not send
 * multipart/byteranges), another unit, a malformed header, and any range of an
 * empty file.
 */
export function parseRange(header: string | undefined, size: number): RangeAnswer {
  if (header === undefined || size === 0) return { kind: 'whole' };
  const match = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (!match) return { kind: 'whole' };
  const specs = (match[1] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (specs.length !== 1) return { kind: 'whole' };
  const spec = /^(\d*)\s*-\s*(\d*)$/.exec(specs[0] as string);
  if (!spec) return { kind: 'whole' };
  const [, first = '', last = ''] = spec;
  if (first === '' && last === '') return { kind: 'whole' };
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - suffix), end: size };
  }
  const start = Number(first);
  if (last !== '' && Number(last) < start) return { kind: 'whole' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end: last === '' ? size : Math.min(Number(last) + 1, size) };
}

/** The strong entity tag of a version: its content's SHA-256, quoted. */
export function etagOf(version: Pick<DownloadVersion, 'sha256'>): string {
  return `"${version.sha256}"`;
}

/**
 * Answers a download of `version`: 200 with the whole content, 206 with one range,
 * 416 RANGE_NOT_SATISFIABLE (with `Content-Range: bytes *\/size`), or 304 when
 * `If-None-Match` names its ETag. `If-Range` with another ETag (or a date) gets the
 * whole content. A HEAD request gets the headers only, from the version's record,
 * without looking at the content.
 *
 * The first bytes are read before any header is sent, so a version whose content
 * is not here is answered with its error (FILE_CONTENT_MISSING, ...) and status.
 * After that the content streams as the client reads it; a failure part-way (a
 * chunk found damaged, or the whole content not matching its SHA-256, which is
 * checked when it is read in full) can then only cut the connection, so the client
 * sees fewer bytes than `Content-Length` and must not keep them.
 */
export async function sendFileContent(
  request: FastifyRequest,
  reply: FastifyReply,
  version: DownloadVersion,
  read: ReadContent,
): Promise<FastifyReply> {
  const etag = etagOf(version);
  const headers: Record<string, string> = {
    etag,
    'accept-ranges': 'bytes',
    'last-modified': new Date(version.modifiedAt).toUTCString(),
    'content-type': safeMediaType(version.type),
    // Downloaded, never shown in the API's own origin: a synced file may be HTML.
    'content-disposition': contentDisposition(version.name),
    'x-content-type-options': 'nosniff',
    'cache-control': 'private, no-cache',
    'x-file-rev': version.rev,
  };
  if (matchesAny(request.headers['if-none-match'], version.sha256)) {
    return reply.code(304).headers({ etag, 'x-file-rev': version.rev }).send();
  }
  const ifRange = request.headers['if-range'];
  const rangeHeader =
    ifRange === undefined || (typeof ifRange === 'string' && ifRange.trim() === etag)
      ? request.headers.range
      : undefined;
  const range = parseRange(rangeHeader, version.size);
  if (range.kind === 'unsatisfiable') {
    throw new HttpApiError(
      'RANGE_NOT_SATISFIABLE',
      `no byte of the range ${JSON.stringify(rangeHeader)} is in ${JSON.stringify(version.name)}, which has ${version.size} bytes`,
      { size: version.size },
    );
  }
  const { start, end } = range.kind === 'partial' ? range : { start: 0, end: version.size };
  if (range.kind === 'partial') {
    reply.code(206);
    headers['content-range'] = `bytes ${start}-${end - 1}/${version.size}`;
  }
  headers['content-length'] = String(end - start);
  if (request.method === 'HEAD') {
    // fastify drops a HEAD reply's body; an empty stream keeps the Content-Length above.
    return reply.headers(headers).send(Readable.from([]));
  }
  const source = read({ start, end })[Symbol.asyncIterator]();
  const first = await source.next();
  return reply.headers(headers).send(Readable.from(rest(first, source), { objectMode: false }));
}

/** The first piece already read, then the rest; stopping early stops the source. */
async function* rest(
  first: IteratorResult<Buffer>,
  source: AsyncIterator<Buffer>,
): AsyncGenerator<Buffer, void, undefined> {
  if (first.done === true) return;
  let done = false;
  try {
    yield first.value;
    for (;;) {
      const next = await source.next();
      if (next.done === true) {
        done = true;
        return;
      }
      yield next.value;
    }
  } finally {
    // The client went away: let the reader close what it holds.
    if (!done) await source.return?.();
  }
}

/** True when an If-None-Match header names this SHA-256 (weakly compared) or is `*`. */
function matchesAny(header: string | undefined, sha256: string): boolean {
  if (header === undefined) return false;
  return header
    .split(',')
    .map((t) => t.trim().replace(/^W\//, ''))
    .some((t) => t === '*' || t === `"${sha256}"`);
}

const TOKEN = "[A-Za-z0-9!#$%&'*+.^_`|~-]+";
const MEDIA_TYPE = new RegExp(
  `^${TOKEN}/${TOKEN}(\\s*;\\s*${TOKEN}=(${TOKEN}|"[^"\\\\\\x00-\\x1f\\x7f]*"))*$`,
);

/** The version's type when it is a well-formed media type, else application/octet-stream. */
function safeMediaType(type: string): string {
  return MEDIA_TYPE.test(type) ? type : 'application/octet-stream';
}

/** `attachment` with the file's own name (its last folder part), ASCII and UTF-8 forms. */
export function contentDisposition(name: string): string {
  const base = name.slice(name.lastIndexOf('/') + 1);
  // Everything outside printable ASCII, and the characters that would end or escape the quoted form.
  const ascii = base.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  const utf8 = encodeURIComponent(base).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${ascii}"; filename*=UTF-8''${utf8}`;
}
