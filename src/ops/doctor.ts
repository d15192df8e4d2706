import { createPrivateKey, X509Certificate } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { accessSync, constants, existsSync, readFileSync, statfsSync, statSync } from 'node:fs';
import { createServer, isIP } from 'node:net';
import { join } from 'node:path';
import { connect } from 'node:tls';
import Database from 'better-sqlite3';
import { loadPairedHub } from '../child/paired-hub.js';
import { readAgentFile } from '../observability/agent-file.js';
import { DEFAULT_ADMIN_PORT, DEFAULT_CHILD_API_PORT, DEFAULT_SYNC_PORT } from '../protocol/constants.js';
import { deviceIdOf, formatDeviceId } from '../transport/device-id.js';
import { tlsOptions } from '../transport/tls.js';
import type { HubAddress } from '../transport/client.js';
import type { DeviceId } from '../store/types.js';
import { NODE_DATABASES } from './backup.js';
import { DataDirLock } from './data-dir.js';
import { checkPostgres } from './doctor-postgres.js';
import { isHubDataDir, onPostgres } from './hub-store.js';
import type { Check } from './doctor-check.js';
import { checkChildClock, checkHubClock } from './doctor-clock.js';
import { checkDiscovery } from './doctor-discovery.js';

export type { Check, ClockFinding, InterfaceDiscovery } from './doctor-check.js';

export interface DoctorReport {
  dataDir: string;
  role: 'hub' | 'child' | 'unknown';
  /** No check failed (warnings allowed). */
  healthy: boolean;
  checks: Check[];
}

export interface DoctorOptions {
  /** Ports to check when the agent is not running. Defaults: the agents' own defaults. */
  syncPort?: number;
  adminPort?: number;
  apiPort?: number;
  /** Per connection attempt to the hub (ms). Default 3 s. */
  timeoutMs?: number;
  /** How long to listen for hubs answering on the LAN (ms). Default 2 s. */
  discoveryMs?: number;
  /** UDP port of LAN discovery. Default 17702. */
  discoveryPort?: number;
}

/**
 * Looks at a node's data directory and what it needs around it, and says in plain
 * words what is wrong and what to do: the directory and its permissions, identity
 * and certificate, whether the agent runs, the databases' integrity, disk space,
 * the ports, the paired hub (name, route, TCP, TLS, pinned ID), the clock against
 * the hub's (a child) or the devices' (a hub), and LAN discovery on each network
 * interface. Reads only; never changes anything (a child whose agent is not running
 * connects to its hub once, for a hello, to read the hub's clock).
 */
export async function runDoctor(dataDir: string, options: DoctorOptions = {}): Promise<DoctorReport> {
  const role = isHubDataDir(dataDir) ? 'hub' : existsSync(join(dataDir, 'hub.json')) ? 'child' : 'unknown';
  const timeoutMs = options.timeoutMs ?? 3000;
  const checks: Check[] = [checkDataDir(dataDir)];
  const node = checks[0]?.status !== 'fail';
  // Listening on the LAN takes its whole window: it runs beside the other checks.
  const discovery = checkDiscovery({
    windowMs: options.discoveryMs ?? 2000,
    ...(options.discoveryPort !== undefined && { discoveryPort: options.discoveryPort }),
    ...(node && role === 'child' && { pairedHub: pairedHubId(dataDir) }),
    ...(node && role === 'hub' && { self: ownDeviceId(dataDir) }),
  });
  if (node) {
    checks.push(checkIdentity(dataDir));
    const agent = await checkAgent(dataDir, role);
    checks.push(agent.check);
    const postgres = role === 'hub' && onPostgres(dataDir) ? await checkPostgres(dataDir) : undefined;
    checks.push(checkDatabases(dataDir, postgres !== undefined));
    if (postgres) checks.push(postgres.check);
    checks.push(checkDisk(dataDir));
    checks.push(await checkPorts(role, agent.running, options));
    if (role === 'child') {
      const hub = await checkHub(dataDir, timeoutMs);
      checks.push(hub.check);
      checks.push(
        await checkChildClock(dataDir, {
          agentRunning: agent.running,
          hubId: hub.hubId,
          reached: hub.reached,
          timeoutMs,
        }),
      );
    }
    if (role === 'hub' && postgres === undefined) checks.push(await checkHubClock(dataDir));
    if (postgres?.pool) {
      try {
        checks.push(await checkHubClock(dataDir, postgres.pool));
      } finally {
        await postgres.pool.end();
      }
    }
  }
  checks.push(await discovery);
  return { dataDir, role, healthy: checks.every((c) => c.status !== 'fail'), checks };
}

function pairedHubId(dir: string): DeviceId | undefined {
  try {
    return loadPairedHub(dir)?.hubId;
  } catch {
    return undefined;
  }
}

function ownDeviceId(dir: string): DeviceId | undefined {
  try {
    return deviceIdOf(
      new Uint8Array(new X509Certificate(readFileSync(join(dir, 'identity', 'cert.pem'))).raw),
    );
  } catch {
    return undefined;
  }
}

function checkDataDir(dir: string): Check {
  const title = 'data directory';
  if (!existsSync(dir))
    return {
      id: 'data-dir',
      title,
      status: 'fail',
      detail: `${dir} does not exist`,
      fix: 'give the --data of a node',
    };
  const st = statSync(dir);
  if (!st.isDirectory())
    return {
      id: 'data-dir',
      title,
      status: 'fail',
      detail: `${dir} is a file`,
      fix: 'give the --data of a node',
    };
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch {
    return {
      id: 'data-dir',
      title,
      status: 'fail',
      detail: `${dir} cannot be written by this user`,
      fix: 'run as the user that owns it (the service user)',
    };
  }
  if (!existsSync(join(dir, 'identity', 'cert.pem')))
    return {
      id: 'data-dir',
      title,
      status: 'fail',
      detail: `${dir} holds no Trosyn Sync node`,
      fix: 'start a hub there, or pair a child with `trosyn-sync pair CODE --data DIR`',
    };
  const mode = st.mode & 0o777;
  if (mode & 0o077)
    return {
      id: 'data-dir',
      title,
      status: 'warn',
      detail: `${dir} can be read by other users (mode ${mode.toString(8)}); it holds the device's private key and data`,
      fix: `chmod 700 ${dir}`,
    };
  return { id: 'data-dir', title, status: 'ok', detail: `${dir}, owner only` };
}

function checkIdentity(dir: string): Check {
  const title = 'identity and certificate';
  const keyPath = join(dir, 'identity', 'key.pem');
  const certPath = join(dir, 'identity', 'cert.pem');
  if (!existsSync(keyPath))
    return {
      id: 'identity',
      title,
      status: 'fail',
      detail: `${keyPath} is missing: this device cannot prove who it is`,
      fix: 'restore the data directory from a backup; without it the device must be paired again as a new one',
    };
  try {
    const cert = new X509Certificate(readFileSync(certPath));
    const key = createPrivateKey(readFileSync(keyPath));
    if (!cert.checkPrivateKey(key))
      return {
        id: 'identity',
        title,
        status: 'fail',
        detail: 'the private key is not the certificate’s: peers will refuse this device',
        fix: 'restore identity/ from a backup of this device (both files together)',
      };
    const id = formatDeviceId(deviceIdOf(new Uint8Array(cert.raw)));
    if (new Date(cert.validTo).getTime() < Date.now())
      return {
        id: 'identity',
        title,
        status: 'fail',
        detail: `the certificate of ${id} expired on ${cert.validTo}`,
        fix: 'check the system clock; the certificate is valid for 30 years from its creation',
      };
    const keyMode = statSync(keyPath).mode & 0o777;
    if (keyMode & 0o077)
      return {
        id: 'identity',
        title,
        status: 'fail',
        detail: `the private key can be read by other users (mode ${keyMode.toString(8)})`,
        fix: `chmod 600 ${keyPath}`,
      };
    return {
      id: 'identity',
      title,
      status: 'ok',
      detail: `device ${id}, certificate valid until ${cert.validTo}`,
    };
  } catch (err) {
    return {
      id: 'identity',
      title,
      status: 'fail',
      detail: `the key or certificate cannot be read: ${(err as Error).message}`,
      fix: 'restore identity/ from a backup of this device',
    };
  }
}

async function checkAgent(
  dir: string,
  role: DoctorReport['role'],
): Promise<{ check: Check; running: boolean }> {
  const title = 'agent';
  const lock = new DataDirLock(dir, role === 'hub' ? 'hub' : 'child');
  try {
    await lock.start();
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'DATA_DIR_LOCKED') {
      const info = readAgentFile(dir);
      return {
        check: {
          id: 'agent',
          title,
          status: 'ok',
          detail: `the ${info?.role ?? role} agent runs${info?.pid ? ` (process ${info.pid}${info.version ? `, version ${info.version}` : ''})` : ''}`,
        },
        running: true,
      };
    }
    return {
      check: { id: 'agent', title, status: 'fail', detail: `cannot tell: ${(err as Error).message}` },
      running: false,
    };
  }
  await lock.stop();
  return {
    check: {
      id: 'agent',
      title,
      status: 'fail',
      detail: `no ${role === 'unknown' ? '' : `${role} `}agent runs on this data directory: nothing syncs`,
      fix:
        role === 'hub'
          ? `start it: trosyn-sync hub --data ${dir} (or systemctl start trosyn-hub)`
          : `start it: trosyn-sync child --data ${dir} (or the service / the Trosyn app)`,
    },
    running: false,
  };
}

/** The SQLite files' integrity; on a hub on PostgreSQL only those it keeps here (files, chunk index). */
function checkDatabases(dir: string, onPostgres: boolean): Check {
  const title = 'databases';
  const fine: string[] = [];
  for (const name of NODE_DATABASES) {
    const path = join(dir, name);
    if (!existsSync(path)) continue;
    try {
      const db = new Database(path, { readonly: true, fileMustExist: true });
      try {
        const result = db.pragma('quick_check', { simple: true });
        if (result !== 'ok')
          return {
            id: 'databases',
            title,
            status: 'fail',
            detail: `${name} is damaged: ${String(result)}`,
            fix: `stop the agent and restore the node from a backup (trosyn-sync restore BACKUP --data ${dir} --force); a child can also start afresh with --recover`,
          };
      } finally {
        db.close();
      }
      fine.push(name);
    } catch (err) {
      return {
        id: 'databases',
        title,
        status: 'fail',
        detail: `${name} cannot be read: ${(err as Error).message}`,
        fix: `stop the agent and restore the node from a backup (trosyn-sync restore BACKUP --data ${dir} --force)`,
      };
    }
  }
  if (onPostgres)
    return {
      id: 'databases',
      title,
      status: 'ok',
      detail: `${fine.length > 0 ? `${fine.join(', ')}: integrity check passed; ` : ''}records and registry in PostgreSQL (below)`,
    };
  if (fine.length === 0)
    return {
      id: 'databases',
      title,
      status: 'fail',
      detail: 'no store (trosyn.db) in the data directory',
      fix: 'restore it from a backup, or start the agent with --recover to get back what the peers hold',
    };
  return { id: 'databases', title, status: 'ok', detail: `${fine.join(', ')}: integrity check passed` };
}

function checkDisk(dir: string): Check {
  const title = 'disk space';
  const fs = statfsSync(dir);
  const free = fs.bavail * fs.bsize;
  const total = fs.blocks * fs.bsize;
  const share = total > 0 ? free / total : 0;
  const text = `${gib(free)} free of ${gib(total)} (${Math.round(share * 100)} %)`;
  if (free < 100 * 2 ** 20 || share < 0.02)
    return {
      id: 'disk',
      title,
      status: 'fail',
      detail: `${text}: writes and file transfers will stop (they pause and resume once there is room)`,
      fix: 'free space on that disk, or move the data directory to a larger one',
    };
  if (free < 2 ** 30 || share < 0.1)
    return { id: 'disk', title, status: 'warn', detail: `${text}: running low`, fix: 'free space soon' };
  return { id: 'disk', title, status: 'ok', detail: text };
}

function gib(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${Math.round(bytes / 2 ** 20)} MiB`;
}

async function checkPorts(role: DoctorReport['role'], running: boolean, o: DoctorOptions): Promise<Check> {
  const title = 'ports';
  if (running) return { id: 'ports', title, status: 'ok', detail: 'the running agent holds its ports' };
  const wanted: [string, string, number][] =
    role === 'hub'
      ? [
          ['sync', '::', o.syncPort ?? DEFAULT_SYNC_PORT],
          ['admin API', '127.0.0.1', o.adminPort ?? DEFAULT_ADMIN_PORT],
        ]
      : [['local API', '127.0.0.1', o.apiPort ?? DEFAULT_CHILD_API_PORT]];
  const taken: string[] = [];
  for (const [what, host, port] of wanted) if (!(await canListen(host, port))) taken.push(`${what} ${port}`);
  if (taken.length > 0)
    return {
      id: 'ports',
      title,
      status: 'fail',
      detail: `in use by another program: ${taken.join(', ')}; the agent cannot start on them`,
      fix: 'stop that program (ss -ltnp shows it), or start the agent on other ports (--port, --http-port, --api-port)',
    };
  return {
    id: 'ports',
    title,
    status: 'ok',
    detail: `free: ${wanted.map(([w, , p]) => `${w} ${p}`).join(', ')}`,
  };
}

function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** The paired hub, address by address: name, route, TCP, TLS and the pinned device ID. */
async function checkHub(
  dir: string,
  timeoutMs: number,
): Promise<{ check: Check; hubId?: DeviceId; reached?: HubAddress }> {
  const title = 'paired hub';
  let paired;
  try {
    paired = loadPairedHub(dir);
  } catch (err) {
    return { check: { id: 'hub', title, status: 'fail', detail: (err as Error).message, fix: 'pair again' } };
  }
  if (!paired)
    return {
      check: {
        id: 'hub',
        title,
        status: 'fail',
        detail: 'this child is not paired',
        fix: 'trosyn-sync pair CODE',
      },
    };
  const identity = {
    certPem: readFileSync(join(dir, 'identity', 'cert.pem'), 'utf8'),
    keyPem: readFileSync(join(dir, 'identity', 'key.pem'), 'utf8'),
  };
  const pinned = formatDeviceId(paired.hubId);
  const notes: string[] = [];
  for (const { host, port } of paired.addresses) {
    const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    let address = host;
    if (!isIP(host)) {
      try {
        address = (await lookup(host)).address;
      } catch {
        notes.push(`${where}: the name does not resolve`);
        continue;
      }
    }
    const result = await probeTls(address, port, identity, timeoutMs);
    if (!result.ok) {
      notes.push(`${where}: ${result.why}`);
      continue;
    }
    if (result.deviceId !== paired.hubId) {
      notes.push(
        `${where}: answers as device ${formatDeviceId(result.deviceId)}, not the paired hub ${pinned} (another hub, or a hub whose identity was replaced)`,
      );
      continue;
    }
    return {
      check: {
        id: 'hub',
        title,
        status: 'ok',
        detail: `${pinned} at ${where} (TLS 1.3 from ${result.local}, identity matches)${notes.length ? `; also tried: ${notes.join('; ')}` : ''}`,
      },
      hubId: paired.hubId,
      reached: { host: address, port },
    };
  }
  return {
    check: {
      id: 'hub',
      title,
      status: 'fail',
      detail: notes.length > 0 ? notes.join('; ') : 'no address is known for the hub',
      fix: 'check that the hub runs and that its sync port is open in its firewall; if its address changed, give it with --hub HOST:PORT (discovery finds it on the same LAN)',
    },
    hubId: paired.hubId,
  };
}

function probeTls(
  host: string,
  port: number,
  identity: { certPem: string; keyPem: string },
  timeoutMs: number,
): Promise<
  { ok: true; deviceId: ReturnType<typeof deviceIdOf>; local: string } | { ok: false; why: string }
> {
  return new Promise((resolve) => {
    let connected = false;
    let socket: ReturnType<typeof connect>;
    try {
      socket = connect({
        ...tlsOptions({ ...identity, deviceId: '' as never }),
        host,
        port,
        checkServerIdentity: () => undefined,
      });
    } catch (err) {
      resolve({
        ok: false,
        why: `this device's key and certificate cannot be used: ${(err as Error).message}`,
      });
      return;
    }
    socket.once('connect', () => (connected = true));
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({
        ok: false,
        why: connected
          ? 'TCP connects but TLS does not complete'
          : `no answer within ${timeoutMs} ms (a firewall, or the wrong address)`,
      });
    }, timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const cert = socket.getPeerCertificate(false);
      const local = `${socket.localAddress ?? '?'}`;
      socket.destroy();
      if (!cert?.raw) resolve({ ok: false, why: 'it presented no certificate' });
      else resolve({ ok: true, deviceId: deviceIdOf(cert.raw), local });
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      const why =
        err.code === 'ECONNREFUSED'
          ? 'connection refused: nothing listens there (the hub is not running, or on another port)'
          : err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH'
            ? `no route to it (${err.code})`
            : connected
              ? `TLS failed: ${err.message} (not a Trosyn hub?)`
              : `${err.code ?? 'error'}: ${err.message}`;
      resolve({ ok: false, why });
    });
  });
}
