import type { RejectedRevision, Revision } from '../store/types.js';

/**
 * The messages of a sync session, after the transport handshake. Each side sends
 * `sync.open` first; then changes flow both ways in batches, each acknowledged.
 */
export interface SyncOpenMessage {
  type: 'sync.open';
  /** The last sequence number of the receiver's change log that the sender has applied. */
  cursor: number;
  /** The sender's own latest sequence number, so the receiver knows when it has caught up. */
  latest: number;
  /** False when the sender does not want the receiver's changes (a push-only session). */
  receive?: boolean;
}

export interface SyncChangesMessage {
  type: 'sync.changes';
  since: number;
  upTo: number;
  more: boolean;
  revisions: Revision[];
}

export interface SyncAckMessage {
  type: 'sync.ack';
  upTo: number;
  applied: number;
  duplicates: number;
  rejected: RejectedRevision[];
}

export interface SyncErrorMessage {
  type: 'error';
  code: string;
  message: string;
}

export type SyncMessage = SyncOpenMessage | SyncChangesMessage | SyncAckMessage | SyncErrorMessage;
