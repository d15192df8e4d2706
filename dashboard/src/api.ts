/** The hub's admin API as the dashboard uses it: same origin, signed in by the session cookie. */

/** An error answer of the API: `{ code, message }`, with its HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Called when any request finds the session gone (401): the app shows the sign-in form. */
let onSignedOut: () => void = () => undefined;
export function whenSignedOut(fn: () => void): void {
  onSignedOut = fn;
}

/**
 * One API call. Changes carry the CSRF header the hub asks of cookie sessions;
 * the cookie itself is sent by the browser (HttpOnly: this code never sees it).
 */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (method !== 'GET') headers['x-trosyn-csrf'] = '1';
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`/api${path}`, {
    method,
    headers,
    credentials: 'same-origin',
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  const data: unknown = text ? JSON.parse(text) : undefined;
  if (!res.ok) {
    const err = (data ?? {}) as { code?: string; message?: string };
    if (res.status === 401 && path !== '/session') onSignedOut();
    throw new ApiError(res.status, err.code ?? 'HTTP_ERROR', err.message ?? `HTTP ${res.status}`);
  }
  return data as T;
}

export interface ChildSession {
  deviceId: string;
  address: string;
  name: string;
  appVersion: string;
  connectedAt: number;
  caughtUp: boolean;
  stats: { sent: number; applied: number; appliedUpTo: number; peerLatest: number; ackedUpTo: number };
}

export interface HubStatus {
  deviceId: string;
  readableId: string;
  name: string;
  version: string;
  startedAt: number;
  syncPort: number;
  adminPort?: number;
  devices: { approved: number; pending: number; revoked: number };
  connected: ChildSession[];
  store: { records: number; revisions: number; latestSeq: number; openConflicts: number };
  storeBytes?: number;
  /** Scheduled backups, when the hub makes them (`--backup-dir`). */
  backups?: {
    dir: string;
    everyHours: number;
    keep: number;
    last: { at: number; dir: string; bytes: number } | null;
    lastError: { at: number; code: string; message: string } | null;
    nextAt: number | null;
    running: boolean;
  };
}

export interface Device {
  deviceId: string;
  readableId: string;
  name: string;
  group: string;
  state: 'pending' | 'approved' | 'revoked';
  firstSeen: number;
  lastSeen: number | null;
  lastAddress: string | null;
  appVersion: string | null;
  pairedAt: number;
  revokedAt: number | null;
  connected: boolean;
  /** The device's clock against the hub's, as last measured (null: never). */
  clock?: { offsetMs: number; rttMs: number; at: number } | null;
}

export interface Group {
  name: string;
  description: string;
  read: string[];
  write: string[];
}

export interface Session {
  signedIn: true;
  via: 'link' | 'token' | 'bearer';
  expiresAt: number | null;
}

/** A hub event from the event stream (`/api/events`); see docs/API.md. */
export interface HubEvent {
  type: string;
  at: number;
  deviceId?: string;
  name?: string;
  code?: string;
  message?: string;
  count?: number;
  codes?: string[];
  session?: ChildSession;
  group?: string;
  state?: string;
  collection?: string;
  id?: string;
  collections?: string[];
  reason?: string;
  by?: 'hub' | 'device';
  /** `files-progress`: the hub's file content still arriving. */
  progress?: { pending: number; bytesHere: number; bytesTotal: number; busy: boolean };
}

/** A kept hub event with its id (`GET /api/events/log`, and the `id:` of the event stream). */
export interface LoggedEvent {
  id: number;
  event: HubEvent;
}

/** One page of the event log, newest first. */
export interface EventLogPage {
  events: LoggedEvent[];
  next: number | null;
  latestId: number;
  retentionDays: number;
}

/** The hub's throughput and connected devices over a window (`GET /api/metrics/history`). */
export interface MetricsSeries {
  window: '1h' | '24h';
  stepMs: number;
  samples: {
    at: number;
    changesIn: number;
    changesOut: number;
    bytesIn: number;
    bytesOut: number;
    connected: number;
  }[];
}
