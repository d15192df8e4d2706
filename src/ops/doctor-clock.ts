/**
 * The doctor's clock check. Revisions carry hybrid logical clock stamps taken from
 * the writing device's wall clock, and last-writer-wins settles conflicts by them:
 * a device whose clock is far off writes revisions that win or lose unfairly, or
 * that are refused (CLOCK_SKEW) when they are more than a day ahead. On a child the
 * check takes the hub's clock offset from the running agent, or measures it with a
 * probe (TLS and a hello, nothing more); on a hub it lists the devices whose last
 * measured clock is far from the hub's.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type pg from 'pg';
import { DEVICE_HEALTH_SETTING, type DeviceTrouble } from '../hub/device-health.js';
import type { DeviceId } from '../store/types.js';
import { DEFAULT_MAX_CLOCK_SKEW_MS } from '../sync/replica.js';
import {
  CLOCK_SKEW_WARN_MS,
  type ClockOffset,
  describeOffset,
  formatDuration,
} from '../transport/clock-offset.js';
import { connectToHub, type HubAddress } from '../transport/client.js';
import { deviceIdOfPem } from '../transport/device-id.js';
import { APP_VERSION } from '../version.js';
import { runningChildStatus } from './agent-status.js';
import type { Check, ClockFinding } from './doctor-check.js';

/** Offsets up to this (ms, beyond the measurement's margin) are normal. */
export const CLOCK_OK_MS = 5_000;
/** From this offset (ms) the doctor warns: conflicts start to be settled unfairly. */
export const CLOCK_WARN_MS = CLOCK_SKEW_WARN_MS;

const TITLE = 'clock';

const FIX =
  'turn on automatic time sync (NTP) on the machine whose clock is wrong, and check its time zone: `timedatectl set-ntp true` on Linux, Settings > Time & language > "Set time automatically" on Windows, System Settings > General > Date & Time on macOS';

const CONSEQUENCE =
  'when two devices change the same record, the change stamped later wins, so a device whose clock is behind loses to older changes and one whose clock is ahead wins over newer ones';

/** Beyond the measurement's margin, how far off a clock is (ms). */
function excess(c: Pick<ClockOffset, 'offsetMs' | 'rttMs'>): number {
  return Math.max(0, Math.abs(c.offsetMs) - c.rttMs / 2);
}

/** The child's check: the hub's clock against this device's. */
export async function checkChildClock(
  dataDir: string,
  o: {
    agentRunning: boolean;
    hubId: DeviceId | undefined;
    reached: HubAddress | undefined;
    timeoutMs: number;
  },
): Promise<Check> {
  let reading: ClockFinding['hub'];
  if (o.agentRunning) {
    // A probe would replace the agent's own connection: ask the agent instead.
    const answer = await runningChildStatus(dataDir, o.timeoutMs);
    if (!answer.ok)
      return notMeasured(
        answer.why === 'no-api'
          ? 'the running agent has no local API to ask (it runs with --no-api)'
          : `the running agent did not answer${answer.detail ? ` (${answer.detail})` : ''}`,
      );
    if (!answer.status.hubClock)
      return notMeasured(
        answer.status.connection.state === 'connected'
          ? 'the hub does not send its time (an older version of the hub)'
          : 'the agent has not been connected to the hub since it started',
      );
    reading = { ...answer.status.hubClock, source: 'agent' };
  } else {
    if (!o.hubId || !o.reached) return notMeasured('the hub cannot be reached (see the paired hub check)');
    const probed = await probeHubClock(dataDir, o.hubId, o.reached, o.timeoutMs);
    if ('why' in probed) return notMeasured(probed.why);
    reading = { ...probed, source: 'probe' };
  }
  return judge(reading, { hub: reading });
}

function notMeasured(why: string): Check {
  return {
    id: 'clock',
    title: TITLE,
    status: 'warn',
    detail: `the hub's clock could not be compared with this device's: ${why}`,
    fix: 'fix what the other checks name, then run the doctor again',
  };
}

function judge(reading: ClockFinding['hub'] & {}, clock: ClockFinding): Check {
  const how = reading.source === 'agent' ? 'as the running agent measured it' : 'measured just now';
  const words = `the hub's clock is ${describeOffset(reading, "this device's")} (${how})`;
  const off = excess(reading);
  if (off > DEFAULT_MAX_CLOCK_SKEW_MS)
    return {
      id: 'clock',
      title: TITLE,
      status: 'fail',
      detail: `${words}: more than ${formatDuration(DEFAULT_MAX_CLOCK_SKEW_MS)} apart, so the writes of the device whose clock is ahead are refused (CLOCK_SKEW), and ${CONSEQUENCE}`,
      fix: FIX,
      clock,
    };
  if (off >= CLOCK_WARN_MS)
    return {
      id: 'clock',
      title: TITLE,
      status: 'warn',
      detail: `${words}: one of the two clocks is wrong; ${CONSEQUENCE}`,
      fix: FIX,
      clock,
    };
  if (off > CLOCK_OK_MS)
    return {
      id: 'clock',
      title: TITLE,
      status: 'ok',
      detail: `${words}: a little apart; time sync (NTP) on both would keep them closer`,
      clock,
    };
  return { id: 'clock', title: TITLE, status: 'ok', detail: words, clock };
}

/** Connects as this device, reads the hub's time from its welcome, and leaves. */
async function probeHubClock(
  dataDir: string,
  hubId: DeviceId,
  address: HubAddress,
  timeoutMs: number,
): Promise<ClockOffset | { why: string }> {
  const certPem = readFileSync(join(dataDir, 'identity', 'cert.pem'), 'utf8');
  const keyPem = readFileSync(join(dataDir, 'identity', 'key.pem'), 'utf8');
  try {
    const hub = await connectToHub(address, {
      identity: { certPem, keyPem, deviceId: deviceIdOfPem(certPem) },
      local: { name: 'trosyn-sync doctor', role: 'child', appVersion: APP_VERSION, heartbeatMs: 15_000 },
      hubId,
      timeoutMs,
    });
    hub.conn.close();
    return hub.handshake.peerClock ?? { why: 'the hub does not send its time (an older version of the hub)' };
  } catch (err) {
    const code = (err as { code?: string }).code;
    return {
      why: `the hub did not let this device in${code ? ` (${code})` : ''}: ${(err as Error).message}`,
    };
  }
}

/** The hub's check: the devices whose last measured clock is far from the hub's. */
export async function checkHubClock(dataDir: string, postgres?: Queryable): Promise<Check> {
  let devices: NonNullable<ClockFinding['devices']>;
  try {
    devices = measured(postgres ? await postgresRows(postgres) : sqliteRows(dataDir));
  } catch (err) {
    return {
      id: 'clock',
      title: TITLE,
      status: 'warn',
      detail: `the devices' clocks cannot be read: ${(err as Error).message}`,
    };
  }
  const clock: ClockFinding = { devices };
  if (devices.length === 0)
    return {
      id: 'clock',
      title: TITLE,
      status: 'ok',
      detail: "no device's clock measured yet (each is measured when it connects)",
      clock,
    };
  const off = devices.filter((d) => excess(d) >= CLOCK_WARN_MS).sort((a, b) => excess(b) - excess(a));
  if (off.length === 0)
    return {
      id: 'clock',
      title: TITLE,
      status: 'ok',
      detail: `${devices.length} device${devices.length === 1 ? '' : 's'} measured, every clock within ${formatDuration(CLOCK_WARN_MS)} of the hub's`,
      clock,
    };
  const refused = off.some((d) => excess(d) > DEFAULT_MAX_CLOCK_SKEW_MS);
  return {
    id: 'clock',
    title: TITLE,
    status: 'warn',
    detail: `${off.length} device${off.length === 1 ? "'s clock is" : "s' clocks are"} off: ${off
      .map((d) => `${d.name} ${describeOffset(d, "the hub's")}`)
      .join(
        '; ',
      )}; ${CONSEQUENCE}${refused ? '; writes more than a day ahead are refused (CLOCK_SKEW)' : ''}. \`trosyn-sync devices\` and the dashboard show each device's clock`,
    fix: `${FIX}; if every device is off the same way, the hub's own clock is the wrong one`,
    clock,
  };
}

/** What the clock check reads from the registry: the devices' health setting, and their names. */
interface RegistryRows {
  health: string | undefined;
  names: { device_id: string; name: string }[];
}

/** Anything that runs a query: a pool of the hub's PostgreSQL database. */
type Queryable = Pick<pg.Pool, 'query'>;

/** The registry's rows from hub.db (read only). */
function sqliteRows(dataDir: string): RegistryRows {
  const db = new Database(join(dataDir, 'hub.db'), { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare('SELECT value FROM settings WHERE key = ?').get(DEVICE_HEALTH_SETTING) as
      { value: string } | undefined;
    const names = db
      .prepare("SELECT device_id, name FROM devices WHERE state != 'revoked'")
      .all() as RegistryRows['names'];
    return { health: row?.value, names };
  } finally {
    db.close();
  }
}

/** The registry's rows from its PostgreSQL schema (read only). */
async function postgresRows(db: Queryable): Promise<RegistryRows> {
  const row = await db.query<{ value: string }>('SELECT value FROM trosyn_hub.settings WHERE key = $1', [
    DEVICE_HEALTH_SETTING,
  ]);
  const names = await db.query<{ device_id: string; name: string }>(
    "SELECT device_id, name FROM trosyn_hub.devices WHERE state != 'revoked'",
  );
  return { health: row.rows[0]?.value, names: names.rows };
}

/** The last clock measurement of each device that is not revoked. */
function measured(rows: RegistryRows): NonNullable<ClockFinding['devices']> {
  if (rows.health === undefined) return [];
  const health = JSON.parse(rows.health) as Record<string, Partial<DeviceTrouble>>;
  const names = new Map(rows.names.map((r) => [r.device_id, r.name]));
  const out: NonNullable<ClockFinding['devices']> = [];
  for (const [deviceId, entry] of Object.entries(health)) {
    const c = entry.clock;
    const name = names.get(deviceId);
    if (!c || name === undefined || typeof c.offsetMs !== 'number') continue;
    out.push({ deviceId: deviceId as DeviceId, name, offsetMs: c.offsetMs, rttMs: c.rttMs, at: c.at });
  }
  return out;
}
