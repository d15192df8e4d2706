/**
 * The package as a user installs it: `npm pack` in this checkout, the package file
 * unpacked into a directory of its own, `npm ci --omit=dev` there (the dependency
 * versions of its npm-shrinkwrap.json, offline, from the npm cache that `npm ci`
 * filled), `npm install -g --prefix` a clean prefix. Then the `trosyn-sync` of that
 * prefix, with nothing of this checkout on its PATH or module paths, runs a hub whose
 * dashboard loads, pairs a child and syncs a record to it.
 *
 * The native addons (better-sqlite3, zstd-napi) are not compiled again: prebuild-install,
 * their install step, takes them as local prebuilds made from this checkout's builds
 * (the same versions, built for this Node.js by `npm ci`), as it takes a downloaded one.
 * Compiling both from source on two cores takes about three minutes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { delimiter, dirname, join, relative, resolve, sep } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { eventually, tempDir } from '../helpers.js';
import {
  type Agent,
  childArgs,
  type CliCommand,
  freePort,
  hubArgs,
  runCli,
  startAgent,
} from '../e2e/helpers.js';

const run = promisify(execFile);
const REPO = process.cwd();
const PKG = JSON.parse(readFileSync('package.json', 'utf8')) as {
  name: string;
  version: string;
  bin: Record<string, string>;
  dependencies: Record<string, string>;
};
const LOCK = JSON.parse(readFileSync('package-lock.json', 'utf8')) as {
  packages: Record<string, { version?: string; dev?: boolean }>;
};
/** The native addons among the runtime dependencies, with the file prebuild-install unpacks. */
const ADDONS = [
  { name: 'better-sqlite3', file: 'better_sqlite3.node', abi: () => `node-v${process.versions.modules}` },
  {
    name: 'zstd-napi',
    file: 'binding.node',
    // Its install step asks for an N-API build: the newest N-API version it ships that this Node.js has.
    abi: () => {
      const { binary } = JSON.parse(readFileSync('node_modules/zstd-napi/package.json', 'utf8')) as {
        binary: { napi_versions: number[] };
      };
      const best = Math.max(...binary.napi_versions.filter((v) => v <= Number(process.versions.napi)));
      return `napi-v${best}`;
    },
  },
];

const dir = tempDir('trosyn-pack-');
const paths = {
  out: join(dir.path, 'out'),
  prebuilds: join(dir.path, 'prebuilds'),
  app: join(dir.path, 'opt', 'trosyn-sync'),
  prefix: join(dir.path, 'prefix'),
  home: join(dir.path, 'home'),
  work: join(dir.path, 'work'),
};
after(() => dir.remove());

/** This process's environment without npm's script variables, Node.js options or this checkout on PATH. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!/^(npm_|node_|init_cwd$|trosyn_)/i.test(k)) env[k] = v;
  env.PATH = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((p) => p && !resolve(p).startsWith(REPO + sep))
    .join(delimiter);
  return { ...env, ...extra };
}

async function timed<T>(what: string, times: Record<string, number>, f: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    return await f();
  } finally {
    times[what] = Math.round(performance.now() - start);
  }
}

/** Every file under `root`, as paths relative to it with `/`. */
function filesUnder(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) =>
      relative(root, join(e.parentPath ?? e.path, e.name))
        .split(sep)
        .join('/'),
    );
}

/** A local prebuild of a native addon from this checkout's build of it, named as prebuild-install looks for it. */
async function makePrebuild(addon: (typeof ADDONS)[number]): Promise<string> {
  const modulePath = join('node_modules', addon.name);
  const { version } = JSON.parse(readFileSync(join(modulePath, 'package.json'), 'utf8')) as {
    version: string;
  };
  assert.equal(version, LOCK.packages[`node_modules/${addon.name}`]?.version, `${addon.name} as locked`);
  const stage = join(dir.path, 'stage', addon.name);
  mkdirSync(join(stage, 'build', 'Release'), { recursive: true });
  await run('cp', [join(modulePath, 'build', 'Release', addon.file), join(stage, 'build', 'Release')]);
  const glibc = (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header
    .glibcVersionRuntime;
  const libc = process.platform === 'linux' && !glibc ? 'musl' : '';
  const name = `${addon.name}-v${version}-${addon.abi()}-${process.platform}${libc}-${process.arch}.tar.gz`;
  await run('tar', ['czf', join(paths.prebuilds, name), '-C', stage, 'build']);
  return name;
}

interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: { path: string; size: number }[];
}

describe('the npm package, installed from its package file', () => {
  const times: Record<string, number> = {};
  let packed: PackResult;
  let installed: string;
  /** trosyn-sync from the prefix only: its bin on PATH, a fresh working directory and home. */
  let cli: CliCommand;

  before(async () => {
    for (const p of Object.values(paths)) mkdirSync(p, { recursive: true });
    // `npm test` has just built dist/: the prepack step finds it up to date and does not build again.
    const { stdout } = await timed('npm pack', times, () =>
      run('npm', ['pack', '--json', '--pack-destination', paths.out], {
        env: cleanEnv(),
        maxBuffer: 64 << 20,
      }),
    );
    packed = (JSON.parse(stdout) as PackResult[])[0] as PackResult;
    const tarball = join(paths.out, packed.filename);
    await run('tar', ['xzf', tarball, '-C', paths.app, '--strip-components=1']);
    const prebuildEnv: NodeJS.ProcessEnv = {};
    for (const addon of ADDONS) {
      await makePrebuild(addon);
      prebuildEnv[`npm_config_${addon.name.replace(/[^a-zA-Z0-9]/g, '_')}_local_prebuilds`] = paths.prebuilds;
    }
    const npmFlags = ['--offline', '--no-audit', '--no-fund', '--no-update-notifier'];
    await timed('npm ci --omit=dev', times, () =>
      run('npm', ['ci', '--omit=dev', ...npmFlags], { cwd: paths.app, env: cleanEnv(prebuildEnv) }),
    );
    await timed('npm install -g', times, () =>
      run('npm', ['install', '-g', '--prefix', paths.prefix, ...npmFlags, paths.app], {
        cwd: paths.work,
        env: cleanEnv(),
      }),
    );
    installed = join(paths.prefix, 'lib', 'node_modules', PKG.name);
    const systemPath = cleanEnv().PATH ?? '';
    cli = {
      command: ['trosyn-sync'],
      cwd: paths.work,
      env: {
        PATH: [join(paths.prefix, 'bin'), dirname(process.execPath), systemPath].join(delimiter),
        HOME: paths.home,
        LANG: 'C.UTF-8',
      },
    };
  });

  after(() => {
    process.stdout.write(
      `# package ${packed?.filename}: ${packed?.size} bytes packed, ${packed?.unpackedSize} unpacked, ${packed?.entryCount} files; ` +
        `${Object.entries(times)
          .map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`)
          .join(', ')}\n`,
    );
  });

  it('holds the built program, its dashboard, docs and deploy files, and nothing else', () => {
    const files = packed.files.map((f) => f.path);
    const outside = files.filter(
      (f) =>
        !/^(dist|docs|deploy)\//.test(f) &&
        !['package.json', 'npm-shrinkwrap.json', 'README.md', 'PROTOCOL.md'].includes(f),
    );
    assert.deepEqual(outside, []);
    for (const f of [
      Object.values(PKG.bin)[0] ?? '',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/dashboard/index.html',
    ])
      assert.ok(files.includes(f), `${f} is in the package`);
    assert.ok(
      files.some((f) => /^dist\/dashboard\/assets\/.+\.js$/.test(f)),
      "the dashboard's scripts are in the package",
    );
    // Tests, the acceptance suites (reachable by no export), source maps of sources not shipped, repository files.
    const unwanted = files.filter((f) =>
      /(^|\/)(test|testing|node_modules|\.git[^/]*|\.env[^/]*|\.npmrc)(\/|$)|\.test\.|\.map$|\.(pem|key|tgz|db)$/.test(
        f,
      ),
    );
    assert.deepEqual(unwanted, []);
    // A guard against shipping dependencies or build leftovers: the package is about 1.2 MB.
    assert.ok(packed.size < 3_000_000, `packed size ${packed.size}`);
    assert.ok(packed.unpackedSize < 6_000_000, `unpacked size ${packed.unpackedSize}`);
  });

  it('ships the lockfile as npm-shrinkwrap.json, and leaves no copy of it in the checkout', () => {
    assert.equal(
      readFileSync(join(paths.app, 'npm-shrinkwrap.json'), 'utf8'),
      readFileSync('package-lock.json', 'utf8'),
    );
    assert.equal(existsSync('npm-shrinkwrap.json'), false, 'postpack removed it');
  });

  it('holds no secret and no path of the machine that built it', () => {
    const found: string[] = [];
    for (const f of filesUnder(paths.app)) {
      if (f.startsWith('node_modules/') || /\.(png|ico|woff2)$/.test(f)) continue;
      const text = readFileSync(join(paths.app, f), 'utf8');
      if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) found.push(`${f}: a private key`);
      if (/\btsa_[A-Za-z0-9_-]{20,}/.test(text)) found.push(`${f}: an admin token`);
      if (text.includes(REPO)) found.push(`${f}: the checkout's path ${REPO}`);
    }
    assert.deepEqual(found, []);
  });

  it('lists every package the built program imports among its dependencies', () => {
    const builtins = new Set(builtinModules);
    const missing = new Set<string>();
    const imported = new Set<string>();
    for (const f of filesUnder(join(paths.app, 'dist')).filter((f) => f.endsWith('.js'))) {
      if (f.startsWith('dashboard/')) continue; // bundled by vite: no imports left
      const text = readFileSync(join(paths.app, 'dist', f), 'utf8');
      const imports =
        /(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*|createRequire\([^)]*\)\(\s*)(['"])((?:@[\w.-]+\/)?\w[\w.-]*(?:\/[\w.@-]+)*)\1/g;
      for (const m of text.matchAll(imports)) {
        const spec = m[2] as string;
        if (spec.startsWith('node:') || builtins.has(spec)) continue;
        const name = spec.startsWith('@')
          ? spec.split('/').slice(0, 2).join('/')
          : (spec.split('/')[0] as string);
        imported.add(name);
        if (!(name in PKG.dependencies)) missing.add(`${name} (dist/${f})`);
      }
    }
    assert.deepEqual([...missing], []);
    // The scan finds what it looks for: every runtime dependency is imported somewhere.
    assert.deepEqual([...imported].sort(), Object.keys(PKG.dependencies).sort());
  });

  it('installs offline the versions it was tested with, and its native addons without compiling them', () => {
    assert.equal(realpathSync(installed), realpathSync(paths.app), 'the prefix links the unpacked package');
    assert.ok(
      statSync(join(paths.prefix, 'bin', 'trosyn-sync')).isFile(),
      'trosyn-sync is in the bin directory',
    );
    assert.ok(!realpathSync(installed).startsWith(REPO + sep), 'outside this checkout');
    const wrong: string[] = [];
    for (const [path, entry] of Object.entries(LOCK.packages)) {
      if (path === '' || entry.dev) continue;
      const at = join(paths.app, path, 'package.json');
      if (!existsSync(at)) {
        wrong.push(`${path} missing`);
        continue;
      }
      const { version } = JSON.parse(readFileSync(at, 'utf8')) as { version: string };
      if (version !== entry.version) wrong.push(`${path} ${version}, locked ${entry.version}`);
    }
    assert.deepEqual(wrong, []);
    const devOnly = Object.entries(LOCK.packages).filter(
      ([path, e]) => e.dev && path.startsWith('node_modules/') && existsSync(join(paths.app, path)),
    );
    assert.deepEqual(
      devOnly.map(([p]) => p),
      [],
      'no development dependency',
    );
    for (const addon of ADDONS) {
      const release = join(paths.app, 'node_modules', addon.name, 'build', 'Release');
      assert.ok(existsSync(join(release, addon.file)), `${addon.name} has its addon`);
      assert.equal(
        existsSync(join(release, 'obj.target')),
        false,
        `${addon.name} came from the prebuild, not a compile`,
      );
    }
  });

  it('trosyn-sync --version prints the package version, and --help shows how to start', async () => {
    const version = await run('trosyn-sync', ['--version'], { cwd: cli.cwd, env: cli.env });
    assert.equal(version.stdout.trim(), PKG.version);
    const help = await run('trosyn-sync', ['--help'], { cwd: cli.cwd, env: cli.env });
    assert.match(help.stdout, /^Usage: trosyn-sync/m);
    assert.match(help.stdout, /Getting started:/);
    assert.match(help.stdout, /\bhub\b.*\n[\s\S]*\bpair\b/);
  });

  it('runs a hub whose dashboard loads, pairs a child that syncs a record, and both stop cleanly', async () => {
    const hubData = join(paths.work, 'hub');
    const childData = join(paths.work, 'child');
    const port = await freePort();
    const adminPort = await freePort();
    const agents: Agent[] = [];
    try {
      const hub = startAgent(hubArgs(hubData, port, '--http-port', String(adminPort)), { cli });
      agents.push(hub);
      const started = await hub.waitFor((l) => l.event === 'started', 30_000, 'the hub starts');
      assert.equal(started.adminPort, adminPort);

      const page = await fetch(`http://127.0.0.1:${adminPort}/`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
      const html = await page.text();
      const script = /<script[^>]+src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
      assert.ok(script, `the page loads the dashboard's script: ${html.slice(0, 500)}`);
      const asset = await fetch(`http://127.0.0.1:${adminPort}${script}`);
      assert.equal(asset.status, 200);
      assert.match(asset.headers.get('content-type') ?? '', /^text\/javascript/);
      assert.ok((await asset.arrayBuffer()).byteLength > 1000, 'the script has content');

      const { code } = (await runCli(['pairing-code', '--data', hubData], cli)) as { code: string };
      await runCli(
        ['pair', code, '--hub', `127.0.0.1:${port}`, '--data', childData, '--name', 'packed-desk'],
        cli,
      );
      const child = startAgent([...childArgs(childData, port, '--api-port', '0', '--retry-max', '300')], {
        cli,
      });
      agents.push(child);
      await child.waitFor((l) => l.event === 'connected', 30_000, 'the child connects');
      const written = await runCli(
        ['put', 'notes', 'installed', '{"from":"the package"}', '--data', childData],
        cli,
      );
      let onHub: Record<string, unknown> | undefined;
      await eventually(
        async () => {
          onHub = await runCli(['get', 'notes', 'installed', '--data', hubData], cli).catch(() => undefined);
          return onHub?.rev === written.rev;
        },
        20_000,
        'the record reaches the hub',
      );
      assert.deepEqual(onHub?.body, { from: 'the package' });

      for (const agent of [child, hub]) {
        await agent.kill('SIGINT');
        assert.equal(agent.proc.exitCode, 0, 'a clean stop');
      }
    } finally {
      for (const agent of agents) await agent.kill('SIGKILL');
    }
  });
});
