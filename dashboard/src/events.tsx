import { useEffect, useId, useMemo, useRef, useState } from 'preact/hooks';
import { api, ApiError, type EventLogPage, type HubEvent, type LoggedEvent } from './api.js';
import { at } from './format.js';
import { ERROR_TYPES, EVENT_TYPES, type HubState, LIVE_ONLY_TYPES } from './hub-state.js';

/** The kinds of event the log keeps (progress events are live only). */
const KEPT_TYPES = EVENT_TYPES.filter((t) => !LIVE_ONLY_TYPES.has(t));

interface Filter {
  device: string;
  /** One type, ERROR_TYPES, or '' for all. */
  type: string;
  /** `datetime-local` values ('' for none): local time, no zone. */
  from: string;
  to: string;
}

const NO_FILTER: Filter = { device: '', type: '', from: '', to: '' };

/** The filter as the event log's query string (without `limit`, `before` or `format`). */
function queryOf(f: Filter): string {
  const q = new URLSearchParams();
  if (f.device) q.set('device', f.device);
  if (f.type) q.set('type', f.type);
  const since = f.from ? new Date(f.from).getTime() : NaN;
  const until = f.to ? new Date(f.to).getTime() : NaN;
  if (Number.isFinite(since)) q.set('since', String(since));
  if (Number.isFinite(until)) q.set('until', String(until));
  return q.toString();
}

/** The device an event is about, if any. */
function deviceOf(e: HubEvent): string | undefined {
  return e.deviceId ?? e.session?.deviceId;
}

/** Whether a live event passes the filter, as the hub's log would decide. */
function matches(e: HubEvent, f: Filter): boolean {
  if (f.device && deviceOf(e) !== f.device) return false;
  if (f.type && !f.type.split(',').includes(e.type)) return false;
  if (f.from && e.at < new Date(f.from).getTime()) return false;
  if (f.to && e.at >= new Date(f.to).getTime()) return false;
  return true;
}

/** One line a person reads: what the event says beyond its kind and device. */
function details(e: HubEvent): string {
  switch (e.type) {
    case 'device-paired':
      return `group ${e.group ?? ''}, ${e.state ?? ''}`;
    case 'sync-failed':
    case 'error':
    case 'device-disconnected':
      return [e.code, e.message].filter(Boolean).join(': ');
    case 'writes-refused':
      return `${e.count ?? 0} write(s) refused by the ${e.by === 'device' ? 'device' : 'hub'}: ${(e.codes ?? []).join(', ')} in ${(e.collections ?? []).join(', ')}`;
    case 'conflict-opened':
    case 'conflict-resolved':
      return `${e.collection ?? ''}/${e.id ?? ''}`;
    case 'scopes-changed':
      return `group ${e.group ?? ''}`;
    case 'sync-restarted':
    case 'recovery-started':
      return e.reason ?? '';
    case 'device-connected':
      return e.session?.address ?? '';
    default:
      return '';
  }
}

const ERRORS = new Set(ERROR_TYPES.split(','));

/**
 * The hub's event log: newest first, by device, kind and time, with older pages on
 * demand; new events appear as they happen. Exports download what the filter matches.
 */
export function Events({ state }: { state: HubState }) {
  const [filter, setFilter] = useState<Filter>(NO_FILTER);
  const [page, setPage] = useState<EventLogPage | undefined>(undefined);
  const [older, setOlder] = useState<LoggedEvent[]>([]);
  const [next, setNext] = useState<number | null>(null);
  const [error, setError] = useState<string | undefined>(undefined);
  const [loading, setLoading] = useState(true);
  const ids = { device: useId(), type: useId(), from: useId(), to: useId() };
  const query = queryOf(filter);
  // A read that failed while the hub was away is read again once the stream is live
  // again (once: a read that fails on a live hub stays failed until the filter moves).
  const [retries, setRetries] = useState(0);
  const failed = useRef(false);
  failed.current = error !== undefined;
  useEffect(() => {
    if (state.live === 'live' && failed.current) setRetries((n) => n + 1);
  }, [state.live]);

  useEffect(() => {
    let current = true;
    setLoading(true);
    setError(undefined);
    api<EventLogPage>('GET', `/events/log?limit=100${query ? `&${query}` : ''}`).then(
      (p) => {
        if (!current) return;
        setPage(p);
        setOlder([]);
        setNext(p.next);
        setLoading(false);
      },
      (err: unknown) => {
        if (!current) return;
        setError(err instanceof ApiError ? `${err.code}: ${err.message}` : String(err));
        setLoading(false);
      },
    );
    return () => {
      current = false;
    };
  }, [query, retries]);

  const loadOlder = async () => {
    if (next === null) return;
    try {
      const p = await api<EventLogPage>(
        'GET',
        `/events/log?limit=100&before=${next}${query ? `&${query}` : ''}`,
      );
      setOlder((o) => [...o, ...p.events]);
      setNext(p.next);
    } catch (err) {
      setError(err instanceof ApiError ? `${err.code}: ${err.message}` : String(err));
    }
  };

  // Events that arrived since the page was read, newest first, then the pages read.
  const rows = useMemo(() => {
    if (!page) return [];
    const live = state.recent.filter((l) => l.id > page.latestId && matches(l.event, filter));
    return [...live, ...page.events, ...older];
  }, [page, older, state.recent, filter]);

  const names = new Map(state.devices.map((d) => [d.deviceId, d.name]));
  const set = (change: Partial<Filter>) => setFilter((f) => ({ ...f, ...change }));
  const exportHref = (format: 'json' | 'csv') =>
    `/api/events/log?format=${format}${query ? `&${query}` : ''}`;

  return (
    <>
      <h1 tabIndex={-1}>Events</h1>
      <form class="filters" aria-label="Filter events" onSubmit={(e) => e.preventDefault()}>
        <div>
          <label for={ids.device}>Device</label>
          <select
            id={ids.device}
            value={filter.device}
            onChange={(e) => set({ device: e.currentTarget.value })}
          >
            <option value="">All devices</option>
            {state.devices.map((d) => (
              <option key={d.deviceId} value={d.deviceId}>
                {d.name}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label for={ids.type}>Kind</label>
          <select id={ids.type} value={filter.type} onChange={(e) => set({ type: e.currentTarget.value })}>
            <option value="">All kinds</option>
            <option value={ERROR_TYPES}>Errors only</option>
            {KEPT_TYPES.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label for={ids.from}>From</label>
          <input
            id={ids.from}
            type="datetime-local"
            value={filter.from}
            onChange={(e) => set({ from: e.currentTarget.value })}
          />
        </div>
        <div>
          <label for={ids.to}>To</label>
          <input
            id={ids.to}
            type="datetime-local"
            value={filter.to}
            onChange={(e) => set({ to: e.currentTarget.value })}
          />
        </div>
        <div class="filter-actions">
          <button type="button" disabled={filter === NO_FILTER} onClick={() => setFilter(NO_FILTER)}>
            Clear filters
          </button>
          <a class="button" href={exportHref('json')} download>
            Export JSON
          </a>
          <a class="button" href={exportHref('csv')} download>
            Export CSV
          </a>
        </div>
      </form>
      {state.historyTruncated && (
        <p role="alert" class="warning">
          Some events happened while this page was away and are no longer kept (the hub keeps{' '}
          {page?.retentionDays ?? 30} days).
        </p>
      )}
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      <p role="status" class="sub">
        {loading
          ? 'Loading…'
          : `${rows.length} event${rows.length === 1 ? '' : 's'} shown, newest first; new ones appear as they happen.`}
      </p>
      {!loading && rows.length === 0 ? (
        <p>No events match.</p>
      ) : (
        <div class="table-wrap">
          <table class="events">
            <caption>Hub events</caption>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Kind</th>
                <th scope="col">Device</th>
                <th scope="col">Details</th>
              </tr>
            </thead>
            <tbody>
              {rows.map(({ id, event: e }) => {
                const device = deviceOf(e);
                return (
                  <tr key={id} data-event-id={id}>
                    <td>
                      <time dateTime={new Date(e.at).toISOString()}>{at(e.at)}</time>
                    </td>
                    <td>
                      <span class={ERRORS.has(e.type) ? 'kind kind-error' : 'kind'}>{e.type}</span>
                    </td>
                    <td>
                      {device ? (names.get(device) ?? e.name ?? e.session?.name ?? device.slice(0, 8)) : '—'}
                    </td>
                    <td>{details(e)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {next !== null && !loading && (
        <button type="button" onClick={() => void loadOlder()}>
          Load older events
        </button>
      )}
    </>
  );
}
