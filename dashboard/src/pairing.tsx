import { useCallback, useEffect, useId, useState } from 'preact/hooks';
import { api, ApiError, type Device } from './api.js';
import { ago, at } from './format.js';
import type { HubState } from './hub-state.js';
import { QrCode } from './qr.js';

/** A new code as `POST /api/pairing-codes` answers it: the code is shown this once. */
interface IssuedCode {
  code: string;
  expiresAt: number;
  group: string;
  /** The text the QR code encodes: trosyn-sync://pair?code=...&hub=...&port=... */
  qr: string;
}

/** A code as `GET /api/pairing-codes` lists it: never the code itself. */
interface ListedCode {
  codeId: number;
  lookup: string;
  group: string;
  createdAt: number;
  expiresAt: number;
  failedAttempts: number;
  state: 'active' | 'used' | 'burned' | 'expired';
  usedBy: string | null;
}

/** The issued code on this page, with when it expires by this browser's clock. */
interface Shown extends IssuedCode {
  deadline: number;
}

const message = (err: unknown) => (err instanceof ApiError ? `${err.code}: ${err.message}` : String(err));

/** Where a child finds the hub when multicast is blocked: this page's host, if it is not this machine. */
function hubArg(syncPort: number | undefined): string {
  const host = window.location.hostname;
  if (!syncPort || host === 'localhost' || host === '[::1]' || host.startsWith('127.')) return '';
  return ` --hub ${host}:${syncPort}`;
}

/**
 * Pairing a new device: issue a single-use code for a group, show it with its QR
 * code, a countdown and the commands to run on the device; approve what pairs;
 * see the codes issued before (only their first group: the rest is never shown again).
 */
export function Pairing({ state, refresh }: { state: HubState; refresh: () => Promise<void> }) {
  const [group, setGroup] = useState('default');
  const [minutes, setMinutes] = useState('10');
  const [shown, setShown] = useState<Shown | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const [codes, setCodes] = useState<ListedCode[] | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const ids = { group: useId(), minutes: useId(), minutesHelp: useId() };

  const loadCodes = useCallback(async () => {
    try {
      setCodes((await api<{ codes: ListedCode[] }>('GET', '/pairing-codes')).codes);
    } catch (err) {
      setError(message(err));
    }
  }, []);
  // Again whenever the hub's state changes: a code used by a device that just paired.
  useEffect(() => void loadCodes(), [loadCodes, state.devices]);

  const issue = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    const ttlMinutes = Number(minutes);
    if (!Number.isInteger(ttlMinutes) || ttlMinutes < 1 || ttlMinutes > 1440) {
      setError('The lifetime is a whole number of minutes from 1 to 1440 (a day).');
      document.getElementById(ids.minutes)?.focus();
      return;
    }
    setBusy(true);
    try {
      const issued = await api<IssuedCode>('POST', '/pairing-codes', { ttlMinutes, group });
      setShown({ ...issued, deadline: Date.now() + ttlMinutes * 60_000 });
      setNotice(`Pairing code issued for group ${issued.group}`);
      await loadCodes();
    } catch (err) {
      setError(message(err));
    } finally {
      setBusy(false);
    }
  };

  const approve = async (d: Device) => {
    setError(undefined);
    try {
      await api('POST', `/devices/${d.deviceId}/approve`);
      setNotice(`${d.name} approved`);
      await refresh();
    } catch (err) {
      setError(message(err));
    }
  };

  const pending = state.devices.filter((d) => d.state === 'pending');
  const names = new Map(state.devices.map((d) => [d.deviceId, d.name]));

  return (
    <>
      <h1 tabIndex={-1}>Pairing</h1>
      <p role="status" class="notice">
        {notice}
      </p>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}

      <section aria-labelledby="issue-heading">
        <h2 id="issue-heading">Issue a pairing code</h2>
        <form class="inline-form" onSubmit={(e) => void issue(e)} noValidate>
          <div>
            <label for={ids.group}>Group</label>
            <select
              id={ids.group}
              value={group}
              onChange={(e) => setGroup((e.target as HTMLSelectElement).value)}
            >
              {(state.groups.length ? state.groups.map((g) => g.name) : ['default']).map((g) => (
                <option key={g} value={g}>
                  {g}
                </option>
              ))}
            </select>
          </div>
          <div>
            <label for={ids.minutes}>Valid for (minutes)</label>
            <input
              id={ids.minutes}
              type="number"
              inputMode="numeric"
              min={1}
              max={1440}
              step={1}
              required
              aria-describedby={ids.minutesHelp}
              value={minutes}
              onInput={(e) => setMinutes((e.target as HTMLInputElement).value)}
            />
            <p id={ids.minutesHelp} class="help">
              1 to 1440. The code works once.
            </p>
          </div>
          <div>
            <button type="submit" disabled={busy}>
              Issue code
            </button>
          </div>
        </form>
      </section>

      {shown && <IssuedCodePanel key={shown.code} shown={shown} syncPort={state.status?.syncPort} />}

      <section aria-labelledby="pending-heading">
        <h2 id="pending-heading">Waiting for approval</h2>
        {pending.length === 0 ? (
          <p>No device is waiting. A device paired while the hub requires approval shows here.</p>
        ) : (
          <ul class="pending" aria-label="Devices waiting for approval">
            {pending.map((d) => (
              <li key={d.deviceId}>
                <span>
                  <strong>{d.name}</strong>{' '}
                  <span class="sub">
                    group {d.group}, paired {ago(d.pairedAt)}
                    {d.lastAddress && ` from ${d.lastAddress}`}
                  </span>{' '}
                  <span class="mono sub">{d.readableId.slice(0, 15)}</span>
                </span>
                <button type="button" aria-label={`Approve ${d.name}`} onClick={() => void approve(d)}>
                  Approve
                </button>
              </li>
            ))}
          </ul>
        )}
      </section>

      <section aria-labelledby="codes-heading">
        <h2 id="codes-heading">Codes issued</h2>
        {codes === undefined ? (
          <p>Loading…</p>
        ) : codes.length === 0 ? (
          <p>No code has been issued yet.</p>
        ) : (
          <div class="table-wrap">
            <table>
              <caption>
                The latest codes; only their first group is shown, the rest is never shown again
              </caption>
              <thead>
                <tr>
                  <th scope="col">Code</th>
                  <th scope="col">Group</th>
                  <th scope="col">Issued</th>
                  <th scope="col">Expires</th>
                  <th scope="col">State</th>
                  <th scope="col">Used by</th>
                </tr>
              </thead>
              <tbody>
                {codes.map((c) => (
                  <tr key={c.codeId}>
                    <th scope="row" class="mono">
                      {c.lookup}-····-····
                    </th>
                    <td>{c.group}</td>
                    <td title={at(c.createdAt)}>{ago(c.createdAt)}</td>
                    <td>{at(c.expiresAt)}</td>
                    <td>
                      <span class={`badge code-${c.state}`}>{c.state}</span>
                      {c.failedAttempts > 0 && <span class="sub"> ({c.failedAttempts} wrong)</span>}
                    </td>
                    <td>{c.usedBy ? (names.get(c.usedBy) ?? c.usedBy.slice(0, 8)) : '-'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </>
  );
}

/** The code just issued: large, as a QR code, with its countdown and the commands for the device. */
function IssuedCodePanel({ shown, syncPort }: { shown: Shown; syncPort: number | undefined }) {
  const [now, setNow] = useState(Date.now());
  const left = Math.max(0, shown.deadline - now);
  useEffect(() => {
    if (left === 0) return;
    const timer = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(timer);
  }, [left === 0]);
  const hub = hubArg(syncPort);
  const commands = [
    { label: 'pair command', text: `trosyn-sync pair ${shown.code}${hub}` },
    { label: 'start command', text: `trosyn-sync child${hub}` },
  ];
  const expired = left === 0;
  const min = Math.floor(left / 60_000);
  const sec = Math.floor((left % 60_000) / 1000);

  return (
    <section aria-labelledby="code-heading" class={`card issued${expired ? ' expired' : ''}`}>
      <h2 id="code-heading">Pairing code</h2>
      <div class="issued-body">
        <div>
          <p class="code mono">{shown.code}</p>
          <p>
            Single use, for group <strong>{shown.group}</strong>.{' '}
            <span role="timer" aria-live="off" aria-label="Time left">
              {expired
                ? 'Expired.'
                : `Expires in ${min} min ${String(sec).padStart(2, '0')} s (at ${new Date(shown.expiresAt).toLocaleTimeString()}).`}
            </span>
          </p>
          {expired && (
            <p role="alert" class="error">
              This code has expired. Issue a new one.
            </p>
          )}
          <h3>On the device</h3>
          <p>Run these in a terminal (trosyn-sync installed, see the README):</p>
          {commands.map((c) => (
            <Command key={c.label} {...c} />
          ))}
          <p class="help">
            {hub
              ? 'Without --hub, the device looks for the hub on the LAN.'
              : 'The device finds the hub on the LAN; where the network blocks multicast, add --hub HOST:PORT (the hub’s address and sync port) to both.'}{' '}
            The QR code holds the code, the hub’s ID and its sync port; its text also works in place of the
            code: <code class="wrap">{shown.qr}</code>
          </p>
        </div>
        {!expired && <QrCode text={shown.qr} label={`QR code for pairing code ${shown.code}`} />}
      </div>
    </section>
  );
}

/** A command to copy: shown as code, with a button that puts it on the clipboard. */
function Command({ label, text }: { label: string; text: string }) {
  const [copied, setCopied] = useState<string | undefined>(undefined);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setCopied('Copied');
    } catch {
      setCopied('Could not copy: select the command and copy it');
    }
  };
  return (
    <div class="command">
      <pre>
        <code>{text}</code>
      </pre>
      <button type="button" aria-label={`Copy ${label}`} onClick={() => void copy()}>
        Copy
      </button>
      <span role="status" class="sub">
        {copied}
      </span>
    </div>
  );
}
