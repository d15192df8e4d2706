import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, type Device } from './api.js';
import { Dialog } from './dialog.js';
import { ago, at, bytes } from './format.js';
import type { HubState } from './hub-state.js';
import {
  changes,
  type Detail,
  type DeviceSync,
  type RefusedWrites,
  whyNotInSync,
} from './why-not-in-sync.js';
import { describeOffset } from '../../src/transport/clock-offset.js';

/** The initial sync's progress, both directions together: done and total positions. */
function initialSync(sync: DeviceSync): { done: number; total: number } | undefined {
  if (sync.caughtUp !== false || sync.toDevice.ackedUpTo === null || sync.fromDevice.deviceLatest === null)
    return undefined;
  return {
    done: sync.toDevice.ackedUpTo + sync.fromDevice.appliedUpTo,
    total: sync.hubLatestSeq + sync.fromDevice.deviceLatest,
  };
}

/**
 * Why is this device not in sync? How far behind it is each way, its initial sync,
 * its last failure and the writes refused with their reasons: loaded from the hub
 * when it opens, whenever the hub's state changes, and every 2 s.
 */
export function DeviceDetails({
  device,
  state,
  onClose,
}: {
  device: Device;
  state: HubState;
  onClose: () => void;
}) {
  const [detail, setDetail] = useState<Detail | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [tick, setTick] = useState(0);
  // Positions move without an event (acknowledgements, progress between the hub's
  // once-a-second sync-progress events): look again every 2 s while open.
  useEffect(() => {
    const timer = window.setInterval(() => setTick((t) => t + 1), 2000);
    return () => window.clearInterval(timer);
  }, []);
  useEffect(() => {
    let gone = false;
    api<Detail>('GET', `/devices/${device.deviceId}`).then(
      (d) => !gone && (setDetail(d), setError(undefined)),
      (err: unknown) =>
        !gone && setError(err instanceof ApiError ? `${err.code}: ${err.message}` : String(err)),
    );
    return () => {
      gone = true;
    };
  }, [device.deviceId, state.status, state.devices, tick]);

  const reasons = detail ? whyNotInSync(detail) : [];
  const progress = detail && initialSync(detail.sync);
  return (
    <Dialog title={`Sync details of ${device.name}`} onClose={onClose}>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {!detail ? (
        <p>Loading…</p>
      ) : (
        <div class="details">
          <h3 id="why-heading">Why it may not be in sync</h3>
          {reasons.length === 0 ? (
            <p>Nothing: it is connected and in sync.</p>
          ) : (
            <ul aria-labelledby="why-heading">
              {reasons.map((r) => (
                <li key={r}>{r}</li>
              ))}
            </ul>
          )}
          <dl>
            <dt>Hub to device</dt>
            <dd>
              {detail.sync.toDevice.behind === null
                ? 'not known: it has not connected since the hub started'
                : detail.sync.toDevice.behind === 0
                  ? 'up to date'
                  : `${changes(detail.sync.toDevice.behind)} not acknowledged yet (at most; some may be outside its read scope)`}
            </dd>
            <dt>Device to hub</dt>
            <dd>
              {detail.sync.fromDevice.behind === null
                ? `not known while it is not connected (the hub has applied its log up to ${detail.sync.fromDevice.appliedUpTo})`
                : detail.sync.fromDevice.behind === 0
                  ? 'up to date'
                  : `${changes(detail.sync.fromDevice.behind)} still to come`}
            </dd>
            <dt>Initial sync</dt>
            <dd>
              {progress ? (
                <>
                  <progress
                    aria-label="Initial sync"
                    value={progress.done}
                    max={Math.max(1, progress.total)}
                  />{' '}
                  {Math.floor((100 * progress.done) / Math.max(1, progress.total))}%
                </>
              ) : detail.sync.caughtUp ? (
                'done'
              ) : (
                'not connected'
              )}
            </dd>
            <dt>Connection</dt>
            <dd>
              {detail.session
                ? `connected since ${at(detail.session.connectedAt)} from ${detail.session.address}, ${bytes(detail.session.bytesIn)} in, ${bytes(detail.session.bytesOut)} out`
                : detail.sync.lastSessionEndedAt
                  ? `last session ended ${ago(detail.sync.lastSessionEndedAt)}`
                  : `not connected since the hub started (last seen ${ago(detail.lastSeen)})`}
            </dd>
            <dt>Clock</dt>
            <dd>
              {detail.clock
                ? `${describeOffset(detail.clock, "the hub's")}, measured ${ago(detail.clock.at)}`
                : 'not measured yet (it is measured at each connection)'}
            </dd>
            <dt>Write limit</dt>
            <dd>
              {detail.sync.throttled ? (
                <>
                  {detail.sync.throttled.until > Date.now() ? 'holding back its writes now' : 'held back'}:{' '}
                  {changes(detail.sync.throttled.revisions)} in {detail.sync.throttled.batches} batch
                  {detail.sync.throttled.batches === 1 ? '' : 'es'},{' '}
                  {(detail.sync.throttled.heldMs / 1000).toFixed(1)} s held in all{' '}
                  <span class="sub">(since {ago(detail.sync.throttled.since)})</span>
                </>
              ) : (
                'never reached'
              )}
            </dd>
            <dt>Last error</dt>
            <dd>
              {detail.sync.lastError ? (
                <>
                  <code>{detail.sync.lastError.code}</code> {detail.sync.lastError.message}{' '}
                  <span class="sub">({ago(detail.sync.lastError.at)})</span>
                </>
              ) : (
                'none since the hub started'
              )}
            </dd>
          </dl>
          <Refused title="Writes of this device the hub refused" refused={detail.sync.refusedByHub} />
          <Refused title="Changes from the hub this device refused" refused={detail.sync.refusedByDevice} />
        </div>
      )}
      <div class="buttons">
        <button type="button" data-autofocus onClick={onClose}>
          Close
        </button>
      </div>
    </Dialog>
  );
}

function Refused({ title, refused }: { title: string; refused: RefusedWrites | null }) {
  if (!refused) return null;
  return (
    <div class="table-wrap">
      <table>
        <caption>
          {title}: {refused.total} since the hub started, the latest {refused.latest.length} here (last{' '}
          {ago(refused.at)})
        </caption>
        <thead>
          <tr>
            <th scope="col">Collection</th>
            <th scope="col">Record</th>
            <th scope="col">Why</th>
          </tr>
        </thead>
        <tbody>
          {refused.latest.map((r) => (
            <tr key={r.rev}>
              <td>{r.collection}</td>
              <th scope="row">{r.id}</th>
              <td>
                <code>{r.code}</code> {r.message}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
