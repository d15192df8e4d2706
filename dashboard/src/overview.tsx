import { useState } from 'preact/hooks';
import { api, ApiError, type HubStatus } from './api.js';
import type { HubState } from './hub-state.js';
import { DEVICE_STATES, deviceState } from './hub-state.js';
import { ago, at, bytes, duration } from './format.js';
import { Link } from './router.js';
import { ThroughputCharts } from './charts.js';

/** Hub health at a glance: what runs, how many devices are in each state, conflicts, errors. */
export function Overview({ state }: { state: HubState }) {
  const { status } = state;
  const counts = Object.fromEntries(DEVICE_STATES.map((s) => [s, 0])) as Record<string, number>;
  for (const d of state.devices) counts[deviceState(d, state)] = (counts[deviceState(d, state)] ?? 0) + 1;
  const names = new Map(state.devices.map((d) => [d.deviceId, d.name]));
  return (
    <>
      <h1 tabIndex={-1}>Overview</h1>
      <div class="cards">
        <section aria-labelledby="hub-heading" class="card">
          <h2 id="hub-heading">Hub</h2>
          {status ? (
            <dl>
              <dt>Name</dt>
              <dd>{status.name}</dd>
              <dt>Version</dt>
              <dd>{status.version}</dd>
              <dt>Up for</dt>
              <dd title={`since ${at(status.startedAt)}`}>{duration(Date.now() - status.startedAt)}</dd>
              <dt>Store</dt>
              <dd>
                {status.store.records} records, {status.store.revisions} revisions
                {status.storeBytes !== undefined && `, ${bytes(status.storeBytes)} on disk`}
              </dd>
              <dt>Sync port</dt>
              <dd>{status.syncPort}</dd>
              <dt>Admin port</dt>
              <dd>{status.adminPort ?? window.location.port}</dd>
              <dt>Device ID</dt>
              <dd class="mono">{status.readableId}</dd>
              <dt>Last backup</dt>
              <dd>
                <LastBackup backups={status.backups} />
              </dd>
            </dl>
          ) : (
            <p>Loading…</p>
          )}
        </section>

        <section aria-labelledby="devices-heading" class="card">
          <h2 id="devices-heading">Devices</h2>
          <ul class="counts" aria-label="Devices by state">
            {DEVICE_STATES.map((s) => (
              <li key={s} class={`state-${s}`}>
                <span class="count">{counts[s]}</span> {s}
              </li>
            ))}
          </ul>
          <p>
            <Link href="/devices">All devices</Link>
          </p>
        </section>

        <section aria-labelledby="conflicts-heading" class="card">
          <h2 id="conflicts-heading">Conflicts</h2>
          <p>
            <span class="count">{status?.store.openConflicts ?? '…'}</span> open, waiting for a person
          </p>
          <p>
            <Link href="/conflicts">Review conflicts</Link>
          </p>
        </section>
      </div>

      <ThroughputCharts />

      <section aria-labelledby="errors-heading">
        <h2 id="errors-heading">Latest errors</h2>
        {state.errors.length === 0 ? (
          <p>No errors in the hub's event log.</p>
        ) : (
          <ul class="errors" aria-label="Latest errors">
            {state.errors.map((e, i) => (
              <li key={i}>
                <time dateTime={new Date(e.at).toISOString()} title={at(e.at)}>
                  {ago(e.at)}
                </time>{' '}
                {e.deviceId && <strong>{names.get(e.deviceId) ?? e.deviceId.slice(0, 8)}: </strong>}
                <code>{e.code}</code> {e.message}
              </li>
            ))}
          </ul>
        )}
        <p>
          <Link href="/events">All events</Link>
        </p>
      </section>
    </>
  );
}

/**
 * The newest scheduled backup, a failure since it, and when the next is due, with a
 * button that makes one now; or how to schedule them.
 */
function LastBackup({ backups }: { backups: HubStatus['backups'] }) {
  const [working, setWorking] = useState(false);
  const [said, setSaid] = useState<{ ok: boolean; text: string } | undefined>(undefined);
  const backUp = async () => {
    setWorking(true);
    setSaid(undefined);
    try {
      const made = await api<{ dir: string; bytes: number }>('POST', '/backups');
      setSaid({ ok: true, text: `Backed up: ${bytes(made.bytes)}.` });
    } catch (err) {
      setSaid({ ok: false, text: err instanceof ApiError ? `${err.code}: ${err.message}` : String(err) });
    } finally {
      setWorking(false);
    }
  };
  if (!backups)
    return (
      <>
        not scheduled: start the hub with <code>--backup-dir</code>, or run <code>trosyn-sync backup</code>
      </>
    );
  const { last, lastError, nextAt, running } = backups;
  return (
    <>
      {last ? (
        <span title={`${at(last.at)} in ${last.dir}`}>
          {ago(last.at)}, {bytes(last.bytes)}
        </span>
      ) : (
        'none yet'
      )}
      {lastError && (
        <span class="error">
          {' '}
          (failed {ago(lastError.at)}: {lastError.code}, {lastError.message})
        </span>
      )}
      {running || working ? ', one running now' : nextAt !== null && `; next ${at(nextAt)}`}{' '}
      <button type="button" disabled={running || working} onClick={() => void backUp()}>
        Back up now
      </button>
      {said && (
        <span role={said.ok ? 'status' : 'alert'} class={said.ok ? undefined : 'error'}>
          {' '}
          {said.text}
        </span>
      )}
    </>
  );
}
