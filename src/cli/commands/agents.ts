import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import type { Child } from '../../child/child.js';
import {
  assertChildConfig,
  collectionOptions,
  fileCollections,
  loadNodeConfig,
  localOnlyOptions,
  retentionPolicy,
} from '../../config.js';
import type { PemCertificate } from '../../hub/admin-api/serving.js';
import { parsePostgresLocation } from '../../store/postgres-location.js';
import { pairingUri } from '../../transport/pairing-code.js';
import { removeAgentFile, writeAgentFile } from '../../observability/agent-file.js';
import { createLogger, type Logger, rollingLogFile } from '../../observability/logger.js';
import {
  DEFAULT_ADMIN_HOST,
  DEFAULT_ADMIN_PORT,
  DEFAULT_CHILD_API_PORT,
  DEFAULT_EVENT_RETENTION_DAYS,
  DEFAULT_SYNC_PORT,
} from '../../protocol/constants.js';
import { formatDeviceId } from '../../transport/device-id.js';
import { APP_VERSION } from '../../version.js';
import { TrosynError } from '../../errors.js';
import {
  type HubStorage,
  IDENTITY_KEY_FILE_ENV,
  rememberHubStorage,
  STORE_PASSWORD_FILE_ENV,
} from '../../ops/hub-store.js';
import { type CommonOptions, common, dataDir, print, UsageError } from '../context.js';
import { storageOf, withRegistry } from '../stores.js';

const logLevel = () =>
  new Option('--log-level <level>', 'log detail (on stderr)')
    .choices(['trace', 'debug', 'info', 'warn', 'error', 'silent'])
    .default('warn');

const logFormat = () =>
  new Option(
    '--log-format <format>',
    'log lines for a person (text) or for a log collector or service manager (json)',
  )
    .choices(['text', 'json'])
    .default('text');

/** Options of a log file that rolls over (an agent run as a service). */
const logFileOption = () =>
  new Option(
    '--log-file <path>',
    'log into this file instead of stderr, rolling over to a new numbered file (name.1.log, name.2.log, ...) at --log-file-size',
  );
const logFileSizeOption = () =>
  new Option(
    '--log-file-size <size>',
    'size at which the log file rolls over (k, m or g; with --log-file)',
  ).default('10m');
const logFileKeepOption = () =>
  new Option('--log-file-keep <n>', 'older log files kept beside the current one (with --log-file)')
    .argParser(count)
    .default(5);

/**
 * The agent's logger: on stderr, so that stdout keeps the banner or the --json
 * events; or into a rolling file (--log-file), written out at exit.
 */
async function agentLogger(opts: LogOptions): Promise<Logger> {
  const format = opts.logFormat === 'json' ? 'json' : 'text';
  if (opts.logFile === undefined)
    return createLogger({ level: opts.logLevel, name: 'trosyn', destination: process.stderr, format });
  if (!/^\d+(\.\d+)?[kmg]?$/i.test(opts.logFileSize))
    throw new UsageError(
      `invalid --log-file-size ${opts.logFileSize} (a number of MB, or with k, m or g: 500k, 10m)`,
    );
  const file = await rollingLogFile({
    path: resolve(opts.logFile),
    size: opts.logFileSize,
    keep: opts.logFileKeep,
  });
  process.once('exit', file.flush);
  return createLogger({ level: opts.logLevel, name: 'trosyn', destination: file.destination, format });
}

interface LogOptions {
  logLevel: string;
  logFormat: string;
  logFile?: string;
  logFileSize: string;
  logFileKeep: number;
}

function days(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 3650)
    throw new UsageError(`invalid number of days ${value} (above 0, at most 3650)`);
  return n;
}

function hours(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0.1 || n > 24 * 365)
    throw new UsageError(`invalid number of hours ${value} (at least 0.1, at most a year)`);
  return n;
}

function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new UsageError(`invalid count ${value} (1 to 1000)`);
  return n;
}

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0.5 || n > 600)
    throw new UsageError(`invalid number of seconds ${value} (at least 0.5, at most 600)`);
  return n;
}

/** A write limit: revisions a second, or 0 / off for none. */
function writeRate(value: string): number {
  if (value === 'off') return 0;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0)
    throw new UsageError(`invalid write limit ${value} (revisions a second, or 0 or off for none)`);
  return n;
}

function revisions(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 0)
    throw new UsageError(`invalid number of revisions ${value}`);
  return n;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`invalid port ${value}`);
  return n;
}

/** This machine's LAN addresses, for the hints printed to the admin (nothing is sent to them). */
function lanAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((a) => a && !a.internal && a.family === 'IPv4')
    .map((a) => a?.address as string);
}

function waitForSignal(): Promise<string> {
  return new Promise((done) => {
    const stop = (signal: string) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/** The certificate and key of --http-cert and --http-key, read; undefined when neither is given. */
async function adminCertificate(opts: {
  httpCert?: string;
  httpKey?: string;
}): Promise<PemCertificate | undefined> {
  if (opts.httpCert === undefined && opts.httpKey === undefined) return undefined;
  if (opts.httpCert === undefined || opts.httpKey === undefined)
    throw new UsageError('--http-cert and --http-key go together: give both, or neither');
  const { AdminCertificateError } = await import('../../hub/admin-api/serving.js');
  const read = (file: string, option: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new AdminCertificateError(`cannot read ${option} ${file}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  };
  return { certPem: read(opts.httpCert, '--http-cert'), keyPem: read(opts.httpKey, '--http-key') };
}

interface HubOpts extends CommonOptions, LogOptions {
  port: number;
  host?: string;
  name: string;
  discovery: boolean;
  requireApproval?: boolean;
  adminApi: boolean;
  adminPort: number;
  adminHost?: string;
  recover?: boolean;
  httpCert?: string;
  httpKey?: string;
  insecureHttp?: boolean;
  eventRetentionDays: number;
  backupDir?: string;
  backupEveryHours: number;
  backupKeep: number;
  metricsPort?: number;
  metricsHost?: string;
  heartbeat: number;
  writeLimit?: number;
  writeBurst?: number;
  store?: string;
  storePasswordFile?: string;
  identityKeyFile?: string;
}

interface ChildOpts extends CommonOptions, LogOptions {
  hub: string[];
  name: string;
  discovery: boolean;
  retryMax: number;
  api: boolean;
  apiPort: number;
  recover?: boolean;
}

/** How much the child agent's V8 heap may grow between full collections (%). */
export const CHILD_HEAP_GROWING_PERCENT = 40;

export function registerAgents(program: Command): void {
  common(
    program
      .command('hub')
      .description('run the Admin Hub on this machine until interrupted (Ctrl-C)')
      .option('--port <n>', 'TCP port of the sync service (TLS)', port, DEFAULT_SYNC_PORT)
      .option('--host <addr>', 'address of the sync service (default: all, IPv4 and IPv6)')
      .option('--name <name>', 'name shown to children and in the hub status', 'trosyn-hub')
      .option('--no-discovery', 'do not announce the hub on the LAN (children then need --hub HOST:PORT)')
      .option('--require-approval', 'newly paired devices wait for an admin to approve them')
      .option('--http-port <n>', 'TCP port of the admin API and dashboard', port, DEFAULT_ADMIN_PORT)
      .option(
        '--http-host <addr>',
        "address of the admin API and dashboard (default 127.0.0.1: this machine only; any other address serves HTTPS with the hub's certificate)",
      )
      .option(
        '--http-cert <file>',
        'serve the admin port over HTTPS with this PEM certificate (and --http-key)',
      )
      .option('--http-key <file>', 'the PEM private key of --http-cert')
      .option(
        '--insecure-http',
        'serve plain HTTP on a non-loopback --http-host (the admin token crosses the network in clear)',
      )
      .option('--no-admin-api', 'do not serve the admin API and dashboard')
      .option(
        '--metrics-port <n>',
        'also serve Prometheus metrics at /metrics on this port, plain HTTP and without a token (the admin port serves them with the admin token)',
        port,
      )
      .option(
        '--metrics-host <addr>',
        'address of --metrics-port (default 127.0.0.1; anyone who reaches it reads the metrics: a trusted network only)',
      )
      .option(
        '--event-retention-days <n>',
        "days the hub keeps its events (the dashboard's Events page and the admin API's event log)",
        days,
        DEFAULT_EVENT_RETENTION_DAYS,
      )
      .option(
        '--backup-dir <dir>',
        'back the hub up while it runs, into this directory (one backup a directory)',
      )
      .option('--backup-every-hours <n>', 'hours between backups (with --backup-dir)', hours, 24)
      .option('--backup-keep <n>', 'backups kept; older ones are deleted (with --backup-dir)', count, 7)
      .option(
        '--heartbeat <seconds>',
        'seconds between heartbeats, asked of every child: either side drops a link silent for three of them',
        seconds,
        15,
      )
      .option(
        '--write-limit <n>',
        "revisions a second each paired device may write through the hub, each batch counting 20 more (default 1000; also config.json's writeLimit); a device over it is slowed, never refused; 0 or off: no limit",
        writeRate,
      )
      .option(
        '--write-burst <n>',
        "revisions a device may write at once beyond --write-limit after a quiet while (default 10 seconds' worth: 10000; also config.json's writeBurst)",
        revisions,
      )
      .option(
        '--store <location>',
        "keep the hub's records and registry in this PostgreSQL database (postgres://USER@HOST:PORT/DB, postgres://USER@/DB?host=/SOCKET/DIR, or 'host=/SOCKET/DIR dbname=DB user=USER') instead of SQLite files in --data; remembered in the data directory's config.json (without any password), so later commands need only --data",
      )
      .option(
        '--store-password-file <file>',
        `the PostgreSQL password, on the file's first line (also $${STORE_PASSWORD_FILE_ENV} or $PGPASSWORD); the path is remembered, the password never stored`,
      )
      .option(
        '--identity-key-file <file>',
        `with --store: a secret file (32 bytes or more, e.g. openssl rand -base64 32) that seals the hub's identity into the database, so further hub processes on it, each with its own --data and the same file, serve the same hub (also $${IDENTITY_KEY_FILE_ENV}); the path is remembered`,
      )
      .option(
        '--recover',
        "the hub's store (trosyn.db, or its PostgreSQL schema) was lost: start with an empty one and take back what the children hold",
      )
      .addOption(logLevel())
      .addOption(logFormat())
      .addOption(logFileOption())
      .addOption(logFileSizeOption())
      .addOption(logFileKeepOption()),
    'hub',
  ).action(async (raw: HubOpts & { httpPort: number; httpHost?: string }) => {
    // Listened for from the start: a stop asked for while the hub starts (a service
    // manager's) is a clean stop once it has started, never the default kill.
    const signalled = waitForSignal();
    const opts: HubOpts = {
      ...raw,
      adminPort: raw.httpPort,
      ...(raw.httpHost && { adminHost: raw.httpHost }),
    };
    if (raw.metricsHost !== undefined && raw.metricsPort === undefined)
      throw new UsageError('--metrics-host needs --metrics-port: the port of the metrics listener');
    const adminTls = await adminCertificate(raw);
    if (adminTls && raw.insecureHttp)
      throw new UsageError('--insecure-http cannot be combined with --http-cert: choose HTTPS or plain HTTP');
    const dir = dataDir(opts, 'hub');
    const config = loadNodeConfig(dir);
    const storage = hubStorageOf(dir, opts);
    if (storage.kind === 'postgres' && opts.backupDir !== undefined)
      throw new TrosynError(
        'STORE_SQLITE_ONLY',
        `--backup-dir copies SQLite files, and this hub keeps its data in PostgreSQL (${storage.url}): back the database up with pg_dump or base backups (docs/DEPLOY.md)`,
      );
    const collections = collectionOptions(config);
    const logger = await agentLogger(opts);
    const requireApproval = opts.requireApproval ?? config.requireApproval;
    const rate = opts.writeLimit ?? config.writeLimit;
    const writeBurst = opts.writeBurst ?? config.writeBurst;
    const writeLimit =
      rate === 'off' || rate === 0
        ? (false as const)
        : rate === undefined && writeBurst === undefined
          ? undefined
          : {
              ...(rate !== undefined && { perSecond: rate }),
              ...(writeBurst !== undefined && { burst: writeBurst }),
            };
    // The hub's modules load only for the hub: a child agent (this module too) stays small.
    const { createHub } = await import('../../hub/factory.js');
    const { urlHost } = await import('../../hub/admin-api/serving.js');
    const hub = createHub(
      {
        dataDir: dir,
        name: opts.name,
        port: opts.port,
        ...(opts.host && { host: opts.host }),
        heartbeatMs: Math.round(opts.heartbeat * 1000),
        discovery: opts.discovery,
        ...(collections && { collections }),
        fileCollections: fileCollections(config),
        ...(config.hubOnly && { hubOnly: config.hubOnly }),
        ...(requireApproval !== undefined && { requireApproval }),
        ...(writeLimit !== undefined && { writeLimit }),
        ...(retentionPolicy(config) && { retention: retentionPolicy(config) }),
        ...(opts.recover && { recover: true }),
        ...(storage.kind === 'postgres' && { postgres: storage.connection }),
        ...(storage.kind === 'postgres' &&
          storage.identityKeyFile !== undefined && { identityKeyFile: storage.identityKeyFile }),
        eventRetentionDays: opts.eventRetentionDays,
        ...(opts.backupDir && {
          backups: { dir: resolve(opts.backupDir), everyHours: opts.backupEveryHours, keep: opts.backupKeep },
        }),
        ...(opts.metricsPort !== undefined && {
          metrics: { port: opts.metricsPort, ...(opts.metricsHost && { host: opts.metricsHost }) },
        }),
        ...(opts.adminApi && {
          adminApi: {
            port: opts.adminPort,
            ...(opts.adminHost && { host: opts.adminHost }),
            ...(adminTls && { tls: adminTls }),
            ...(raw.insecureHttp && { insecureHttp: true }),
          },
        }),
      },
      { logger },
    );
    await hub.start();
    // Remembered once the hub runs on it: a start that failed changes nothing here.
    rememberHubStorage(dir, storage);
    const store = storage.kind === 'postgres' ? storage.url : join(dir, 'trosyn.db');
    const adminPort = hub.adminPort;
    const adminToken = hub.takeCreatedAdminToken();
    // A code at start only when none is active: restarts do not pile up open codes.
    const active = await hub.registry.activePairingCodes({ group: 'default' });
    const issued = active.length === 0 ? await hub.registry.issueCode() : undefined;
    const code = issued?.code;
    const expiresAt = issued?.expiresAt ?? Math.max(...active.map((c) => c.expiresAt));
    const lanAll = lanAddresses();
    // The addresses children can use: the one the sync service is bound to, or this machine's LAN ones.
    const boundHost = opts.host && !['::', '0.0.0.0'].includes(opts.host) ? opts.host : undefined;
    const addresses = boundHost ? [boundHost] : lanAll;
    const shownHost = addresses[0] ?? '<this-machine>';
    const hubArg = `${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${hub.port}`;
    const adminHost = opts.adminHost ?? DEFAULT_ADMIN_HOST;
    const adminShown = ['::', '0.0.0.0'].includes(adminHost) ? (lanAll[0] ?? '127.0.0.1') : adminHost;
    const admin = hub.adminApi;
    const adminUrl =
      adminPort === undefined || !admin ? undefined : `${admin.scheme}://${urlHost(adminShown, adminPort)}`;
    const fingerprint = admin?.certificateSha256;
    writeAgentFile(dir, {
      pid: process.pid,
      role: 'hub',
      deviceId: hub.deviceId,
      name: hub.name,
      version: APP_VERSION,
      startedAt: Date.now(),
      syncPort: hub.port,
      ...(adminPort !== undefined && { adminPort }),
      ...(adminUrl && { adminUrl }),
      ...(opts.backupDir && {
        backups: { dir: resolve(opts.backupDir), everyHours: opts.backupEveryHours, keep: opts.backupKeep },
      }),
    });
    const { issueSignInLink, signInUrl } = await import('../../hub/admin-api/sign-in.js');
    const signIn = adminUrl ? await issueSignInLink(hub.registry, Date.now()) : undefined;
    const signInLink = signIn && adminUrl ? signInUrl(adminUrl, signIn.secret) : undefined;
    if (admin?.insecure)
      process.stderr.write(
        `warning: the admin API and dashboard serve plain HTTP on ${adminHost}: the admin token and sign-ins cross the network in clear. Leave out --insecure-http to serve HTTPS.\n`,
      );
    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify({ event: 'started', deviceId: hub.deviceId, syncPort: hub.port, adminPort, adminUrl, ...(fingerprint && { adminCertificateSha256: fingerprint }), ...(signInLink && { signInUrl: signInLink, signInExpiresAt: signIn?.expiresAt }), adminToken, ...(hub.metricsPort !== undefined && { metricsPort: hub.metricsPort }), dataDir: dir, store, ...(code && { pairingCode: code }), pairingCodeExpiresAt: expiresAt, activePairingCodes: active.length + (issued ? 1 : 0), addresses })}\n`,
      );
    } else {
      const here = relative(process.cwd(), dir) || '.';
      const lines = [
        `Trosyn Sync hub "${hub.name}" is running (version ${APP_VERSION}).`,
        `  device ID     ${formatDeviceId(hub.deviceId)}`,
        `  sync service  port ${hub.port} (TLS 1.3, mutual authentication)${addresses.length ? ` on ${addresses.join(', ')}` : ''}`,
        `  LAN discovery ${opts.discovery ? 'on (multicast and DNS-SD)' : 'off'}`,
        ...(adminUrl
          ? [
              `  dashboard     ${adminUrl}/  (admin API under ${adminUrl}/api/, all routes: /api/openapi.json)`,
              ...(fingerprint
                ? [
                    `                certificate SHA-256 ${fingerprint}`,
                    `                (${adminTls ? 'yours' : "the hub's own: check it against the browser's warning"})`,
                  ]
                : []),
            ]
          : ['  dashboard     off (--no-admin-api)']),
        ...(hub.metricsPort !== undefined
          ? [
              `  metrics       http://${urlHost(opts.metricsHost ?? '127.0.0.1', hub.metricsPort)}/metrics  (no token)`,
            ]
          : []),
        `  data          ${dir}`,
        ...(storage.kind === 'postgres' ? [`  store         ${storage.url} (PostgreSQL)`] : []),
        ...(signInLink && signIn
          ? [
              '',
              `Sign in to the dashboard (single use, valid until ${new Date(signIn.expiresAt).toLocaleTimeString()}; a new link: trosyn-sync dashboard-link --data ${here}):`,
              `  ${signInLink}`,
            ]
          : []),
        ...(adminToken
          ? [
              '',
              `Admin token (shown only now; keep it safe, or make a new one with \`trosyn-sync admin-token --reset --data ${here}\`):`,
              `  ${adminToken}`,
            ]
          : []),
        '',
        ...(code
          ? [`Pairing code (single use, valid until ${new Date(expiresAt).toLocaleTimeString()}):  ${code}`]
          : [
              `A pairing code issued earlier is still valid (until ${new Date(expiresAt).toLocaleTimeString()}); a new one: trosyn-sync pairing-code --data ${here}`,
            ]),
        '',
        'To add a child device, run on that machine (trosyn-sync installed there, see the README):',
        `  trosyn-sync pair ${code ?? 'CODE'} --data ./data/child${opts.discovery ? '' : ` --hub ${hubArg}`}`,
        `  trosyn-sync child --data ./data/child${opts.discovery ? '' : ` --hub ${hubArg}`}`,
        ...(opts.discovery ? [`(add --hub ${hubArg} to both where the network blocks multicast)`] : []),
        '',
        `More codes: trosyn-sync pairing-code --data ${here}    Stop: Ctrl-C`,
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
      const qrcode = code ? (await import('qrcode-terminal')).default : undefined;
      if (code && qrcode)
        qrcode.generate(pairingUri(code, hub.deviceId, hub.port), { small: true }, (qr) =>
          process.stdout.write(`${qr}\n`),
        );
    }
    await signalled;
    removeAgentFile(dir);
    await hub.stop();
  });

  common(
    program
      .command('child')
      .description('run the child agent: keep this device in sync with its hub until interrupted')
      .option(
        '--hub <host:port>',
        "the hub's address, where multicast discovery cannot find it (repeatable)",
        (v: string, prev: string[]) => [...prev, v],
        [],
      )
      .option('--name <name>', 'name shown on the hub', 'trosyn-child')
      .option('--no-discovery', 'do not look for the hub on the LAN')
      .option(
        '--retry-max <ms>',
        'longest wait between reconnect attempts (waits grow from 0.5 s, with jitter)',
        (v) => Number(v),
        30_000,
      )
      .option(
        '--api-port <n>',
        'port of the local REST API for apps on this machine (127.0.0.1 only)',
        port,
        DEFAULT_CHILD_API_PORT,
      )
      .option('--no-api', 'do not serve the local REST API')
      .option(
        '--recover',
        "this device's store (trosyn.db) was lost: start with an empty one and get back what the hub holds",
      )
      .addOption(logLevel())
      .addOption(logFormat())
      .addOption(logFileOption())
      .addOption(logFileSizeOption())
      .addOption(logFileKeepOption()),
    'child',
  ).action(async (opts: ChildOpts) => {
    const signalled = waitForSignal();
    // The child runs beside the desktop app: V8 grows its heap by 40 % at most between
    // full collections (its own choice goes up to 4x), which keeps a 1,000,000-record
    // initial sync under 150 MB at some cost in speed (bench/scale.ts, part 6). Set for
    // this process only; a program that embeds the library keeps its own.
    setFlagsFromString(`--heap-growing-percent=${CHILD_HEAP_GROWING_PERCENT}`);
    const dir = dataDir(opts, 'child');
    const config = loadNodeConfig(dir);
    assertChildConfig(config, dir);
    const collections = localOnlyOptions(config);
    const logger = await agentLogger(opts);
    const { createChild } = await import('../../child/factory.js');
    const child = createChild(
      {
        dataDir: dir,
        name: opts.name,
        staticAddresses: opts.hub,
        discovery: opts.discovery,
        backoff: { maxMs: Math.max(100, opts.retryMax) },
        ...(collections && { collections }),
        fileCollections: fileCollections(config),
        ...(opts.api && { localApi: { port: opts.apiPort } }),
        ...(opts.recover && { recover: true }),
      },
      { logger },
    );
    await child.start();
    const apiPort = child.apiPort;
    writeAgentFile(dir, {
      pid: process.pid,
      role: 'child',
      deviceId: child.deviceId,
      name: opts.name,
      version: APP_VERSION,
      startedAt: Date.now(),
      ...(apiPort !== undefined && { apiPort }),
    });
    const tokenFile = join(dir, 'api-token');
    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify({ event: 'started', deviceId: child.deviceId, dataDir: dir, apiPort, ...(apiPort !== undefined && { apiTokenFile: tokenFile }) })}\n`,
      );
      child.on('connected', () => process.stdout.write(`${JSON.stringify({ event: 'connected' })}\n`));
      child.on('caught-up', () => process.stdout.write(`${JSON.stringify({ event: 'caught-up' })}\n`));
      child.on('refused', (list) =>
        process.stdout.write(`${JSON.stringify({ event: 'refused', refused: list })}\n`),
      );
      child.on('disconnected', (e) =>
        process.stdout.write(`${JSON.stringify({ event: 'disconnected', ...e })}\n`),
      );
    } else {
      process.stdout.write(
        [
          'Trosyn Sync child agent is running.',
          `  device ID  ${formatDeviceId(child.deviceId)}`,
          `  data       ${dir}`,
          apiPort !== undefined
            ? `  local API  http://127.0.0.1:${apiPort}/api/  (token in ${tokenFile})`
            : '  local API  off',
          'Press Ctrl-C to stop.',
          '',
        ].join('\n'),
      );
      child.on('connected', () => process.stdout.write('connected to the hub\n'));
      child.on('refused', (list) => {
        for (const r of list)
          process.stdout.write(`the hub refused ${r.collection}/${r.id}: ${r.code}: ${r.message}\n`);
      });
      child.on('disconnected', (e) =>
        process.stdout.write(`disconnected from the hub${e.code ? ` (${e.code})` : ''}\n`),
      );
    }
    const bar = await progressBar(child, !opts.json && process.stdout.isTTY === true);
    await signalled;
    bar.stop();
    removeAgentFile(dir);
    await child.stop();
  });

  common(
    program
      .command('admin-token')
      .description("manage the hub's admin API token (stored only as a hash)")
      .option('--reset', 'make a new token (the old one stops working at once) and print it'),
    'hub',
  ).action(async (opts: CommonOptions & { reset?: boolean }) => {
    if (!opts.reset) {
      throw new UsageError(
        'the admin token is stored only as a hash and cannot be shown again; use --reset to make a new one',
      );
    }
    const { resetAdminToken } = await import('../../hub/admin-api/token.js');
    const token = await withRegistry(dataDir(opts, 'hub'), (r) => resetAdminToken(r));
    print(opts, { token }, () => [`New admin token (the old one no longer works):`, `  ${token}`]);
  });
}

/**
 * The storage of the hub command: its --store and password options, or what the
 * data directory remembers. A password given inside --store is taken out of the
 * process's command line as others see it (ps, /proc) once read.
 */
function hubStorageOf(dir: string, opts: HubOpts): HubStorage {
  if (opts.store === undefined && opts.storePasswordFile !== undefined && storageOf(dir).kind === 'sqlite')
    throw new UsageError('--store-password-file needs a PostgreSQL store: give --store postgres://...');
  if (opts.store === undefined && opts.identityKeyFile !== undefined && storageOf(dir).kind === 'sqlite')
    throw new UsageError(
      '--identity-key-file shares the identity of a hub on PostgreSQL between its processes: give --store postgres://... too',
    );
  const given = {
    ...(opts.store !== undefined && { store: opts.store }),
    ...(opts.storePasswordFile !== undefined && { storePasswordFile: opts.storePasswordFile }),
    ...(opts.identityKeyFile !== undefined && { identityKeyFile: opts.identityKeyFile }),
  };
  const storage = storageOf(dir, given);
  if (opts.store !== undefined && storage.kind === 'postgres') {
    const inline = parsePostgresLocation(opts.store).password;
    if (inline !== undefined && opts.storePasswordFile !== undefined)
      throw new UsageError(
        '--store holds a password and --store-password-file gives another: give the password one way',
      );
    if (inline !== undefined)
      process.title = process.argv.map((arg) => (arg === opts.store ? storage.url : arg)).join(' ');
  }
  return storage;
}

/** A progress bar while a long catch-up runs, in a terminal only. */
async function progressBar(child: Child, enabled: boolean): Promise<{ stop(): void }> {
  if (!enabled) return { stop: () => undefined };
  const cliProgress = (await import('cli-progress')).default;
  let bar: InstanceType<typeof cliProgress.SingleBar> | undefined;
  const timer = setInterval(() => {
    void child.status().then((s) => {
      const stats = s.session;
      const behind = stats ? stats.peerLatest - stats.appliedUpTo : 0;
      if (!bar && stats && s.state === 'syncing' && behind > 1000) {
        bar = new cliProgress.SingleBar(
          { format: 'receiving {bar} {percentage}% | {value}/{total} changes', hideCursor: true },
          cliProgress.Presets.shades_classic,
        );
        bar.start(stats.peerLatest, stats.appliedUpTo);
      } else if (bar && stats) {
        bar.update(Math.min(stats.appliedUpTo, stats.peerLatest));
        if (s.state === 'synced') {
          bar.stop();
          bar = undefined;
          process.stdout.write('in sync\n');
        }
      }
    });
  }, 250);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      bar?.stop();
    },
  };
}
