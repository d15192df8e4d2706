import { HUB_EVENT_TYPES, LIVE_ONLY_EVENT_TYPES } from '../../src/hub/event-types.js';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import {
  api,
  ApiError,
  type Device,
  type EventLogPage,
  type Group,
  type HubEvent,
  type HubStatus,
  type LoggedEvent,
} from './api.js';

/** An error the hub reported, kept for the page (newest first). */
export interface ErrorEntry {
  at: number;
  code: string;
  message: string;
  deviceId?: string;
}

/** Everything the pages show, kept current by the event stream. */
export interface HubState {
  status?: HubStatus;
  devices: Device[];
  groups: Group[];
  /** The hub's latest errors from its event log, then live, newest first (at most 20). */
  errors: ErrorEntry[];
  /** Kept events received live since the page opened, newest first (at most 500). */
  recent: LoggedEvent[];
  /** The stream resumed after events its retention had already dropped (or from an id it never gave). */
  historyTruncated: boolean;
  /** Each device's last error since the page opened; cleared when it syncs again. */
  deviceErrors: Record<string, ErrorEntry>;
  /**
   * Counts the changes to which file content the hub holds (a fetch ended, or the
   * number of versions still arriving moved): pages that show whether a version's
   * content is here load again when it moves. The records say nothing of it.
   */
  contentChanges: number;
  /** The event stream: `live`, or reconnecting after a drop. */
  live: 'connecting' | 'live' | 'reconnecting';
  loadError?: string;
}

/** Events the hub sends live only, never with an id (docs/API.md, event stream). */
export const LIVE_ONLY_TYPES: ReadonlySet<string> = new Set<string>(LIVE_ONLY_EVENT_TYPES);

/** The event types that are errors, as the event log's `type` filter writes them. */
export const ERROR_TYPES = 'sync-failed,writes-refused,backup-failed,error';

/** Every event type the hub sends (docs/API.md, event stream). */
export const EVENT_TYPES: readonly string[] = HUB_EVENT_TYPES;

/** Disconnect reasons that are an admin's own doing, not a device's trouble. */
const ROUTINE_DISCONNECTS = new Set(['SCOPES_CHANGED']);

/** What an event says went wrong, if anything. */
export function errorOf(e: HubEvent): ErrorEntry | undefined {
  const base = { at: e.at, ...(e.deviceId && { deviceId: e.deviceId }) };
  switch (e.type) {
    case 'sync-failed':
    case 'backup-failed':
    case 'error':
      return { ...base, code: e.code ?? 'ERROR', message: e.message ?? '' };
    case 'writes-refused':
      return {
        ...base,
        code: e.codes?.[0] ?? 'WRITES_REFUSED',
        message: `${e.count ?? 0} write(s) refused by the ${e.by === 'device' ? 'device' : 'hub'}: ${(e.codes ?? []).join(', ')}`,
      };
    default:
      return undefined;
  }
}

/**
 * Loads the hub's status, devices and groups, then follows the event stream and
 * loads again (at most every 250 ms) when an event says something changed, so
 * every page updates without a reload. The stream carries the session cookie.
 */
export function useHubState(): [HubState, () => Promise<void>] {
  const [state, setState] = useState<HubState>({
    devices: [],
    groups: [],
    errors: [],
    recent: [],
    historyTruncated: false,
    deviceErrors: {},
    contentChanges: 0,
    live: 'connecting',
  });
  const pending = useRef<number | undefined>(undefined);
  /** Loads started: only the latest one's answer counts, so a load that failed while the
   * hub was down cannot land after a later one that succeeded. */
  const loads = useRef(0);

  const refresh = useCallback(async () => {
    const load = ++loads.current;
    try {
      const [status, devices, groups] = await Promise.all([
        api<HubStatus>('GET', '/status'),
        api<{ devices: Device[] }>('GET', '/devices'),
        api<{ groups: Group[] }>('GET', '/groups'),
      ]);
      if (load !== loads.current) return;
      setState((s) => {
        const { loadError: _gone, ...rest } = s;
        return { ...rest, status, devices: devices.devices, groups: groups.groups };
      });
    } catch (err) {
      if (load !== loads.current) return;
      setState((s) => ({ ...s, loadError: (err as Error).message }));
    }
  }, []);

  const soon = useCallback(() => {
    if (pending.current !== undefined) return;
    pending.current = window.setTimeout(() => {
      pending.current = undefined;
      void refresh();
    }, 250);
  }, [refresh]);

  useEffect(() => {
    void refresh();
    let source: EventSource | undefined;
    let retry: number | undefined;
    let stopped = false;
    /** The last kept event's id: a new connection resumes after it, so nothing is missed. */
    let lastId: number | undefined;
    /** The last `files-progress` seen: content arrived when its fetch ends or its count moves. */
    let lastProgress: { pending: number; busy: boolean } | undefined;
    const onProgress = (p: NonNullable<HubEvent['progress']>) => {
      const moved =
        lastProgress === undefined || p.pending !== lastProgress.pending || (lastProgress.busy && !p.busy);
      lastProgress = { pending: p.pending, busy: p.busy };
      if (moved) setState((s) => ({ ...s, contentChanges: s.contentChanges + 1 }));
    };
    const onEvent = (e: HubEvent, id: number | undefined) => {
      if (e.type === 'files-progress') {
        if (e.progress) onProgress(e.progress);
        return;
      }
      if (id !== undefined) {
        if (lastId !== undefined && id <= lastId) return;
        lastId = id;
      }
      const error = errorOf(e);
      setState((s) => {
        const deviceErrors = { ...s.deviceErrors };
        if (e.type === 'sync-completed' && e.session) delete deviceErrors[e.session.deviceId];
        if (e.type === 'device-disconnected' && e.deviceId && e.code && !ROUTINE_DISCONNECTS.has(e.code))
          deviceErrors[e.deviceId] = {
            at: e.at,
            code: e.code,
            message: e.message ?? '',
            deviceId: e.deviceId,
          };
        if (error?.deviceId) deviceErrors[error.deviceId] = error;
        return {
          ...s,
          deviceErrors,
          errors: error ? [error, ...s.errors].slice(0, 20) : s.errors,
          recent: id === undefined ? s.recent : [{ id, event: e }, ...s.recent].slice(0, 500),
        };
      });
      soon();
    };
    const connect = () => {
      // EventSource resends the last id itself when it reconnects; a new one is told in the query.
      source = new EventSource(lastId === undefined ? '/api/events' : `/api/events?lastEventId=${lastId}`);
      source.onopen = () => {
        setState((s) => ({ ...s, live: 'live' }));
        // Whatever happened while the stream was down is in the state, not in events.
        soon();
      };
      source.onerror = () => {
        setState((s) => ({ ...s, live: 'reconnecting' }));
        if (source?.readyState !== EventSource.CLOSED || stopped) return;
        // Refused (not just dropped): a lost session shows the sign-in form; anything else
        // (a hub stopping or not back yet, which answers 503 or nothing), try again.
        void api('GET', '/session').then(
          () => (retry = window.setTimeout(connect, 3000)),
          (err: unknown) => {
            if (!(err instanceof ApiError && err.status === 401) && !stopped)
              retry = window.setTimeout(connect, 3000);
          },
        );
      };
      for (const type of EVENT_TYPES)
        source.addEventListener(type, (m) => {
          const message = m as MessageEvent<string>;
          // A live-only event has no id of its own: lastEventId still names the one before it.
          const id =
            LIVE_ONLY_TYPES.has(type) || !message.lastEventId ? undefined : Number(message.lastEventId);
          onEvent(JSON.parse(message.data) as HubEvent, id);
        });
      source.addEventListener('history-truncated', () => setState((s) => ({ ...s, historyTruncated: true })));
    };
    // The latest errors come from the hub's event log; the stream then starts right after
    // the log's latest event, so none that happens in between is missed.
    api<EventLogPage>('GET', `/events/log?type=${ERROR_TYPES}&limit=20`).then(
      (page) => {
        if (stopped) return;
        lastId = page.latestId;
        const errors = page.events.flatMap((l) => errorOf(l.event) ?? []);
        setState((s) => ({ ...s, errors: [...s.errors, ...errors].slice(0, 20) }));
        connect();
      },
      () => {
        if (!stopped) connect();
      },
    );
    return () => {
      stopped = true;
      source?.close();
      window.clearTimeout(retry);
      window.clearTimeout(pending.current);
    };
  }, [refresh, soon]);

  return [state, refresh];
}

/** What the dashboard calls a device's state: registry state, connection, sync and errors together. */
export type DeviceState = 'online' | 'syncing' | 'offline' | 'error' | 'pending' | 'revoked';

export const DEVICE_STATES: DeviceState[] = ['online', 'syncing', 'offline', 'error', 'pending', 'revoked'];

export function deviceState(device: Device, state: HubState): DeviceState {
  if (device.state === 'revoked') return 'revoked';
  if (device.state === 'pending') return 'pending';
  const session = state.status?.connected.find((c) => c.deviceId === device.deviceId);
  if (session || device.connected) return session && !session.caughtUp ? 'syncing' : 'online';
  return state.deviceErrors[device.deviceId] ? 'error' : 'offline';
}
