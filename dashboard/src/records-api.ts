/** What the records, conflicts and files routes answer (docs/API.md, "Records, history and conflicts" and "Files"). */
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api.js';
import type { Body } from './diff.js';
import type { HubState } from './hub-state.js';

export interface RecordView {
  collection: string;
  id: string;
  rev: string;
  deleted: boolean;
  body: Body | null;
  hlc: string;
  conflict: 'none' | 'open' | 'auto';
  seq: number;
}

export interface RecordsPage {
  records: RecordView[];
  next: string | null;
}

export interface HistoryEntry {
  rev: string;
  author: string;
  hlc: string;
  time: number;
  bodyHash: string;
  deleted: boolean;
  body: Body | null;
  pruned: boolean;
  parents: string[];
  head: boolean;
  current: boolean;
  seq: number;
}

export interface Conflict {
  conflictId: number;
  collection: string;
  id: string;
  status: 'open' | 'auto' | 'resolved';
  strategy: string;
  heads: string[];
  winner: string;
  openedAt: number;
  updatedAt: number;
  resolvedAt: number | null;
  resolvedBy: string | null;
}

export interface ConflictDetail {
  conflict: Conflict;
  sides: HistoryEntry[];
  ancestor: HistoryEntry | null;
  resolution: HistoryEntry | null;
}

export interface WriteResult {
  collection: string;
  id: string;
  rev: string;
  seq: number;
  record: RecordView;
}

export interface FileInfo {
  name: string;
  size: number;
  type: string;
  modifiedAt: number;
  sha256: string;
  chunkCount: number;
  here: boolean;
}

export interface FileView extends FileInfo {
  collection: string;
  rev: string;
}

export interface FileHistoryEntry {
  rev: string;
  author: string;
  time: number;
  deleted: boolean;
  pruned: boolean;
  head: boolean;
  current: boolean;
  file: FileInfo | null;
}

export interface FileProgress {
  collection: string;
  name: string;
  rev: string;
  bytesHere: number;
  bytesTotal: number;
}

export interface FileTransfers {
  progress: {
    pending: number;
    bytesHere: number;
    bytesTotal: number;
    busy: boolean;
    files: FileProgress[];
    error?: { code: string; message: string };
  };
  devices: {
    deviceId: string;
    readableId: string;
    name: string | null;
    bytesIn: number;
    bytesOut: number;
    waiting: number;
  }[];
}

/** `/api/records/{collection}/{id}` and below, with both parts URL-encoded. */
export function recordPath(collection: string, id: string): string {
  return `/records/${encodeURIComponent(collection)}/${encodeURIComponent(id)}`;
}

/** Where a file version downloads from: the same origin, so the session cookie goes along. */
export function downloadUrl(collection: string, name: string, rev?: string): string {
  const q = new URLSearchParams({ collection, ...(rev && { rev }) });
  return `/api/files/${encodeURIComponent(name)}/content?${q.toString()}`;
}

/** A revision as people compare them: its first 8 hex digits. */
export function shortRev(rev: string): string {
  return rev.slice(0, 8);
}

/** Who wrote a revision, by the name the registry gives the device; the hub by its own name. */
export function authorName(state: HubState, deviceId: string): string {
  if (state.status?.deviceId === deviceId) return `${state.status.name} (hub)`;
  return state.devices.find((d) => d.deviceId === deviceId)?.name ?? `device ${deviceId.slice(0, 8)}`;
}

/** What a failed call says, for an alert. */
export function errorText(err: unknown): string {
  return err instanceof ApiError ? `${err.code}: ${err.message}` : String(err);
}

/**
 * Loads with `load` when `key` changes (and when `reload` is called): the value,
 * or the error, of the latest load only.
 */
export function useLoaded<T>(
  load: () => Promise<T>,
  key: string,
): { value?: T; error?: string; reload: () => void } {
  const [state, setState] = useState<{ value?: T; error?: string }>({});
  const [tick, setTick] = useState(0);
  const latest = useRef(0);
  useEffect(() => {
    const mine = ++latest.current;
    load().then(
      (value) => mine === latest.current && setState({ value }),
      (err: unknown) => mine === latest.current && setState((s) => ({ ...s, error: errorText(err) })),
    );
    // `load` is a new closure each render; `key` says when what it loads changed.
  }, [key, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}
