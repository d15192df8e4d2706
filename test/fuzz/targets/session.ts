/**
 * Fuzz target: the sync session as the hub runs it for a paired child. A device
 * registered with the hub opens a real TLS connection to a real hub, says hello
 * (protocol version 2, with the `policy` feature), waits for the hub's `sync.open`,
 * then sends the input's writes: `sync.open`, `sync.start`, `sync.changes` pushing
 * records, `sync.ack` for the hub's batches, pings, requests and responses
 * (mutated, reordered, truncated, mixed with other messages and frames).
 *
 * The harness plays an honest child wherever the input lets it. Tokens in the input
 * are replaced by this run's values: the hub's change log and the cursor this
 * child holds for it (with its checkpoint token), the child's own log for this
 * input (a new one each input, so its positions start at 0), the previous input's
 * log, the log and position the hub's cursor names, the hub's batch to acknowledge,
 * the device ids, a fresh record-id prefix and clock per input, and in revisions
 * their parents (the record's last revision in this input, else its head on the
 * hub), body hash and revision hash, computed over the revision as mutated. So
 * mutants push valid revisions, conflicting, deleting, merging and refused ones,
 * and resume or restart both directions, not only break the framing.
 *
 * The oracle, per input: every message the hub sends decodes; each request and
 * ping is answered, each `sync.open` answered by `sync.start`, each `sync.changes`
 * by its `sync.ack`, or the connection closed; a connection the hub closes ends
 * with its `error` and nothing after it; error codes (in errors, failed responses
 * and refused revisions) are in the error table and never INTERNAL_ERROR. Behind
 * the session, the hub's apply of each pushed batch is watched: a batch it
 * applied accounts for every revision (applied, duplicate or refused), never
 * skips changes (`since` past the cursor), moves the cursor as PROTOCOL.md says,
 * and every revision it did not refuse is in its store exactly (hash, body);
 * a batch it did not apply left none of its revisions behind, and neither did a
 * revision it refused; each `sync.ack` reports its batch's apply. The hub's own
 * `sync.start` and batches follow the protocol: its current log, `from` the
 * cursor or 0, batches in order from `from`, at most four unacknowledged, only
 * collections the device may read, never the device's own changes back. After the
 * run a real child still syncs both ways.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Hub } from '../../../src/hub/hub.js';
import { compress, decompress } from '../../../src/protocol/compression.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../../../src/protocol/constants.js';
import { encodeFrame, FRAME_HEADER_BYTES, FrameKind } from '../../../src/protocol/frame.js';
import type { Message, SyncChangesMessage } from '../../../src/protocol/messages.js';
import type { ApplyReport } from '../../../src/sync/replica.js';
import type { StorageAdapter } from '../../../src/store/adapter.js';
import { SqliteStore } from '../../../src/store/sqlite.js';
import type { DeviceId, Revision } from '../../../src/store/types.js';
import { NODE_STORE_FILE } from '../../../src/sync/node-replica.js';
import { canonicalJson, isJsonObject, sha256Hex } from '../../../src/sync/canonical.js';
import { encodeHlc } from '../../../src/sync/hlc.js';
import { computeRevId, verifyRevision } from '../../../src/sync/revision.js';
import { createIdentity, type DeviceIdentity } from '../../../src/transport/identity.js';
import { pairedChildOf, startTestHub } from '../../fixtures/nodes.js';
import { eventually, tempDir } from '../../helpers.js';
import type { FuzzTarget } from '../engine.js';
import { type Input, messageFrame } from '../mutate.js';
import { expectErrorCode, FramePeer, fuzzHello, OracleError, SentFrames } from '../peer.js';

/**
 * Tokens replaced in the bytes of every write, whole frame or not: as long as the
 * values that replace them, so no length field needs fixing.
 */
export const TOKENS = {
  /** The fuzzing device's id (authors, version vectors). */
  me: '@ME@'.padEnd(64, '~'),
  /** The hub's device id: a revision claiming the hub wrote it. */
  hub: '@HUB@'.padEnd(64, '~'),
  /** This input's change log: a new one each input. */
  log: '@LOG@'.padEnd(32, '~'),
  /** The previous input's change log (the hub may have seen it retired). */
  oldLog: '@OLDLOG@'.padEnd(32, '~'),
  /** The log the hub's cursor for this device names (its `sync.open`), else this input's. */
  curLog: '@CURLOG@'.padEnd(32, '~'),
  /** The hub's change log, as the hub has it when the input starts. */
  hubLog: '@HUBLOG@'.padEnd(32, '~'),
  /** This input's record-id prefix. */
  id: '@ID@',
  /** A clock reading of now; each occurrence a later one. */
  hlc: '@HLC@'.padEnd(16, '~'),
} as const;

/** Tokens replaced as whole JSON values, in whole message frames only. */
export const VALUES = {
  /** The checkpoint token of this device's cursor for the hub's log. */
  hubCheck: '@HUBCHECK@',
  /** In a revision: SHA-256 of the canonical JSON of its `body`. */
  bodyHash: '@BODY@'.padEnd(64, '~'),
  /** In a revision's `parents`: the record's last revision sent in this input, else its head on the hub. */
  parent: '@PARENT@'.padEnd(64, '~'),
  /** In a revision: its hash, over the revision as it is then. */
  rev: '@REV@'.padEnd(64, '~'),
} as const;

/** Numbers replaced in whole message frames. */
export const NUMBERS = {
  /** The position of this device's cursor for the hub's log. */
  hubSeq: 4_000_000_001,
  /** The `upTo` of the hub's next batch to acknowledge. */
  ack: 4_000_000_002,
  /** The position of the hub's cursor for this device, and the one after it. */
  curSeq: 4_000_000_003,
  curNext: 4_000_000_004,
} as const;

/** How long the hub may take to answer one message (a bound against a hang, not a speed target). */
const ANSWER_LIMIT_MS = 10_000;
/** How long an acknowledgement waits for the hub's next batch when the hub said it has more. */
const BATCH_WAIT_MS = 2_000;
/** The id of the request that marks the end of an input: answered once all before it was handled. */
const BARRIER_ID = 999_999_999;
/** Collections this device may read and write (its group), and what the hub keeps to itself. */
const READ = ['docs', 'tickets', 'profile', 'notes', 'scratch', 'shared.*', 'audit.*'];
const WRITE = ['docs', 'tickets', 'profile', 'shared.*', 'audit.*'];
const HUB_ONLY = ['audit.*'];

const unlimited = { burst: 1e9, perMinute: 1e9 };

/** A position in a change log, as cursors and `sync.open` carry it. */
interface Cursor {
  log: string;
  seq: number;
  check: string;
}

/** One `applyChanges` of a batch this device pushed, as the hub ran it. */
interface Apply {
  batch: { log: string; since: number; upTo: number; revisions: unknown[] };
  /** The hub's cursor for the device before the batch. */
  cursorBefore: Cursor;
  /** Which revisions of the batch the hub held before it (by index). */
  heldBefore: boolean[];
  report?: ApplyReport;
  error?: unknown;
}

/** What the harness knows during one input. */
interface Session {
  log: string;
  idPrefix: string;
  hubLog: string;
  /** The hub's cursor for this device, from its `sync.open`. */
  hubCursor?: Cursor;
  /** The cursor of the first `sync.open` this device sent. */
  sentOpen?: Cursor;
  /** Revisions computed in this input, by collection and id: the next one's parent. */
  revs: Map<string, string>;
  /** ACK tokens resolved so far: the next one acknowledges the hub's batch of this index. */
  acked: number;
  opens: number;
  batches: number;
  acks: number;
  sentError: boolean;
  sentStart: boolean;
  /** The connection closed before the harness ended it. */
  closedByHub: boolean;
  /** The log of the hub's sync.start, once received before the write being sent. */
  startSeen?: string;
  /** The hub's log this device said was replaced before (CHANGE_LOG_ROLLED_BACK), once the hub had sent from it. */
  toldRolledBack?: string;
}

const str = (v: unknown): v is string => typeof v === 'string';

export interface SessionTargetOptions {
  /**
   * Changes the hub's store (a real SQLite store) before the hub starts: a fault
   * planted there, for the test that the oracle notices one. Undefined: the
   * product as it is.
   */
  plant?: (store: StorageAdapter) => void;
}

export function sessionTarget(options: SessionTargetOptions = {}): FuzzTarget {
  const dir = tempDir('trosyn-fuzz-session-');
  let hub: Hub;
  let identity: DeviceIdentity;
  let inputs = 0;
  let hlcCounter = 0;
  let previousLog = '';
  /** This device's cursor for the hub's log, kept across inputs as a child keeps it. */
  let cursor: Cursor = { log: '', seq: 0, check: '' };
  let applies: Apply[] = [];
  const applying = new Set<Promise<unknown>>();

  const newLog = () => (inputs * 2654435761).toString(16).padStart(8, '0').slice(-8).repeat(4);

  /** The revisions of `raw` the hub holds now, by index. */
  const held = async (revisions: unknown[]): Promise<boolean[]> =>
    Promise.all(
      revisions.map(async (r) => {
        if (!isJsonObject(r) || !str(r.collection) || !str(r.id) || !str(r.rev)) return false;
        const history = await hub.replica.history(r.collection, r.id).catch(() => []);
        return history.some((h) => h.rev === r.rev);
      }),
    );

  /** The stored revision `rev` of a record, if the hub holds it. */
  const storedRevision = async (collection: string, id: string, rev: string) =>
    (await hub.replica.history(collection, id).catch(() => [])).find((h) => h.rev === rev);

  const substituteBytes = (write: Buffer, s: Session): Buffer => {
    const values: [string, () => string][] = [
      [TOKENS.me, () => identity.deviceId],
      [TOKENS.hub, () => hub.deviceId],
      [TOKENS.log, () => s.log],
      [TOKENS.oldLog, () => previousLog || s.log],
      [TOKENS.curLog, () => (s.hubCursor?.log ? s.hubCursor.log : s.log)],
      [TOKENS.hubLog, () => s.hubLog],
      [TOKENS.id, () => s.idPrefix],
      [TOKENS.hlc, () => encodeHlc(Date.now(), hlcCounter++ & 0xffff)],
    ];
    let out = write;
    for (const [token, value] of values) {
      for (let at = out.indexOf(token, 0, 'latin1'); at >= 0; at = out.indexOf(token, at + 1, 'latin1')) {
        if (out === write) out = Buffer.from(write);
        out.write(value(), at, 'latin1');
      }
    }
    return out;
  };

  /** The hub's batches received so far. */
  const hubBatches = (peer: FramePeer): SyncChangesMessage[] =>
    peer.messages().filter((m): m is SyncChangesMessage => m.type === 'sync.changes');
  const hubStart = (peer: FramePeer) => peer.messages().find((m) => m.type === 'sync.start');

  /** The `upTo` of the hub's next batch to acknowledge, waiting briefly for it when the hub has more. */
  const nextAck = async (peer: FramePeer, s: Session): Promise<number> => {
    const index = s.acked++;
    const more = () => {
      const start = hubStart(peer);
      if (start?.type !== 'sync.start' || !s.sentStart) return false;
      const last = hubBatches(peer).at(-1);
      return last ? last.more || last.upTo < start.latest : start.latest > start.from;
    };
    if (hubBatches(peer).length <= index && more() && !peer.closed)
      await peer
        .until(() => hubBatches(peer).length > index || !more(), BATCH_WAIT_MS, 'the next batch')
        .catch(() => undefined);
    const batches = hubBatches(peer);
    const batch = batches[index] ?? batches.at(-1);
    if (!batch) return 0;
    // An honest child moves its cursor to what it acknowledges.
    if (batch.log === s.hubLog && batch.check !== undefined && batch.upTo >= cursor.seq)
      cursor = { log: batch.log, seq: batch.upTo, check: batch.check };
    return batch.upTo;
  };

  const parentOf = async (o: Record<string, unknown>, s: Session): Promise<string | undefined> => {
    if (!str(o.collection) || !str(o.id)) return undefined;
    const sent = s.revs.get(`${o.collection}\u0000${o.id}`);
    if (sent) return sent;
    const history = await hub.replica.history(o.collection, o.id).catch(() => []);
    return history.filter((h) => h.head).at(-1)?.rev;
  };

  /** Replaces the whole-value tokens in a decoded JSON value, revisions last-to-first inside out. */
  const fill = async (v: unknown, s: Session, peer: FramePeer): Promise<unknown> => {
    if (v === NUMBERS.hubSeq) return cursor.seq;
    if (v === NUMBERS.ack) return nextAck(peer, s);
    if (v === NUMBERS.curSeq) return s.hubCursor?.seq ?? 0;
    if (v === NUMBERS.curNext) return (s.hubCursor?.seq ?? 0) + 1;
    if (v === VALUES.hubCheck) return cursor.check;
    if (Array.isArray(v)) {
      const out: unknown[] = [];
      for (const x of v) out.push(await fill(x, s, peer));
      return out;
    }
    if (!isJsonObject(v)) return v;
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = await fill(x, s, peer);
    if (o.bodyHash === VALUES.bodyHash && isJsonObject(o.body)) {
      try {
        o.bodyHash = sha256Hex(canonicalJson(o.body));
      } catch {
        // A body canonical JSON refuses: the token stays, and the revision is refused.
      }
    }
    if (Array.isArray(o.parents) && o.parents.includes(VALUES.parent)) {
      const parent = await parentOf(o, s);
      if (parent) o.parents = o.parents.map((p) => (p === VALUES.parent ? parent : p));
    }
    if (o.rev === VALUES.rev) {
      try {
        o.rev = computeRevId(o as unknown as Revision);
        if (str(o.collection) && str(o.id)) s.revs.set(`${o.collection}\u0000${o.id}`, o.rev as string);
      } catch {
        // Not enough of a revision to hash: the token stays.
      }
    }
    return o;
  };

  /** The write with this session's values in: bytes for any write, JSON values in a whole message frame. */
  const substitute = async (raw: Buffer, s: Session, peer: FramePeer): Promise<Buffer> => {
    const write = substituteBytes(raw, s);
    if (write.length < FRAME_HEADER_BYTES || write[4] !== FrameKind.Message) return write;
    if (write.readUInt32BE(0) !== write.length - 4) return write;
    const codec = (['none', 'zstd', 'br'] as const)[write[5] as number];
    if (!codec) return write;
    let json: unknown;
    try {
      const payload = decompress(codec, write.subarray(FRAME_HEADER_BYTES), DEFAULT_MAX_FRAME_BYTES);
      json = JSON.parse(payload.toString('utf8'));
    } catch {
      return write;
    }
    const filled = await fill(json, s, peer);
    const payload = Buffer.from(JSON.stringify(filled));
    return encodeFrame(FrameKind.Message, compress(codec, payload), codec);
  };

  /** Waits for what the hub must make of one message it was sent, and checks it. */
  const answerTo = async (peer: FramePeer, m: Message, s: Session): Promise<void> => {
    const answered = (done: () => boolean, what: string) => peer.until(done, ANSWER_LIMIT_MS, what);
    const received = (type: string) => peer.messages().filter((x) => x.type === type).length;
    switch (m.type) {
      case 'ping':
        await answered(() => peer.claim((x) => x.type === 'pong' && x.t === m.t) !== undefined, 'ping');
        return;
      case 'request':
        await answered(
          () => peer.claim((x) => x.type === 'response' && x.re === m.id) !== undefined,
          `request ${m.method}`,
        );
        return;
      case 'sync.open':
        // The first is answered with sync.start; another is refused.
        if (s.opens++ === 0 && typeof m.cursor === 'object') s.sentOpen = m.cursor as Cursor;
        await answered(() => received('sync.start') >= s.opens, 'sync.open');
        return;
      case 'sync.changes':
        // One sync.ack per batch, in order, or the error and the close.
        s.batches++;
        await answered(() => received('sync.ack') >= s.batches, 'sync.changes');
        return;
      case 'sync.start':
        s.sentStart = true;
        return;
      case 'sync.ack':
        s.acks++;
        return;
      case 'pong':
      case 'response':
        return;
      default: {
        // error (the hub closes without a word), hello and welcome (refused): the close.
        if (m.type === 'error' && !s.sentError && m.code === 'CHANGE_LOG_ROLLED_BACK' && s.startSeen)
          s.toldRolledBack = s.startSeen;
        if (m.type === 'error') s.sentError = true;
        if (await peer.until(() => false, ANSWER_LIMIT_MS, `${m.type} on a sync connection`))
          throw new OracleError('unreachable');
      }
    }
  };

  /** Sends the input; returns the peer, closed. */
  const exchange = async (input: Input, s: Session): Promise<FramePeer> => {
    const peer = await FramePeer.connect(hub.port, identity);
    const sent = new SentFrames();
    try {
      peer.write(messageFrame({ ...fuzzHello(['policy']), versions: [1, 2] }));
      // A ping as the welcome arrives carries the acknowledgement of its segment at
      // once: without it the hub's next small writes wait for the delayed one (40 ms).
      await peer.until(
        () => peer.messages().some((m) => m.type === 'welcome'),
        ANSWER_LIMIT_MS,
        'the welcome',
      );
      peer.write(messageFrame({ type: 'ping', t: -0.5 }));
      await peer.until(
        () => peer.messages().some((m) => m.type === 'sync.open'),
        ANSWER_LIMIT_MS,
        "the hub's sync.open",
      );
      const open = peer.messages().find((m) => m.type === 'sync.open');
      if (open?.type !== 'sync.open' || typeof open.cursor !== 'object')
        throw new OracleError(`a paired child's connection got no sync.open of version 2`);
      s.hubCursor = open.cursor as Cursor;
      for (const raw of input) {
        if (peer.closed) break;
        const bytes = await substitute(raw, s, peer);
        s.startSeen =
          hubStart(peer)?.type === 'sync.start' ? (hubStart(peer) as { log: string }).log : undefined;
        peer.write(bytes);
        for (const d of sent.push(bytes)) {
          if (d.kind === 'chunk')
            // No `files` feature: nothing asked for a chunk.
            await peer.until(() => false, ANSWER_LIMIT_MS, 'a chunk frame on a sync connection');
          else await answerTo(peer, d.message, s);
          if (peer.closed) break;
        }
        if (sent.violation && !peer.closed)
          await peer.until(() => false, ANSWER_LIMIT_MS, `a stream with ${sent.violation}`);
      }
      if (!peer.closed && !sent.violation && sent.buffered === 0) {
        // Answered only once everything sent before it has been handled.
        peer.write(messageFrame({ type: 'request', id: BARRIER_ID, method: 'fuzz.barrier' }));
        await peer.until(
          () => peer.claim((x) => x.type === 'response' && x.re === BARRIER_ID) !== undefined,
          ANSWER_LIMIT_MS,
          'the barrier',
        );
      }
      s.closedByHub = peer.closed;
      await peer.end(ANSWER_LIMIT_MS);
      return peer;
    } finally {
      peer.destroy();
    }
  };

  /** What the hub sent: decodable, codes from the table, an error before any close of its own. */
  const checkWire = (peer: FramePeer, s: Session) => {
    if (peer.malformed) throw new OracleError(`the hub sent a frame that does not decode: ${peer.malformed}`);
    const messages = peer.messages();
    for (const m of messages) {
      if (m.type === 'error') expectErrorCode(m.code, 'error message');
      if (m.type === 'response' && !m.ok) expectErrorCode(m.error.code, 'error response');
      if (m.type === 'sync.ack') for (const r of m.rejected) expectErrorCode(r.code, 'refused revision');
    }
    const firstError = messages.findIndex((m) => m.type === 'error');
    if (firstError >= 0 && firstError < messages.length - 1)
      throw new OracleError(
        `the hub sent ${messages
          .slice(firstError + 1)
          .map((m) => m.type)
          .join(', ')} after its error ${(messages[firstError] as { code: string }).code}`,
      );
    if (s.closedByHub && !s.sentError && firstError < 0)
      throw new OracleError('the hub closed the connection without an error');
  };

  /** The hub's sync.start and batches, as PROTOCOL.md has them. */
  const checkHubSide = (peer: FramePeer, s: Session, ours: Set<string>) => {
    const messages = peer.messages();
    const start = messages.find((m) => m.type === 'sync.start');
    const batches = hubBatches(peer);
    if (!start) {
      if (batches.length > 0) throw new OracleError('the hub sent batches without a sync.start');
      return;
    }
    if (start.type !== 'sync.start') return;
    const theirs = s.sentOpen;
    if (start.from > start.latest)
      throw new OracleError(`sync.start from ${start.from} past its latest ${start.latest}`);
    if (start.from !== 0 && (!theirs || theirs.log !== start.log || theirs.seq !== start.from))
      throw new OracleError(
        `sync.start from ${start.from} on log ${start.log.slice(0, 8)}, for a cursor ${JSON.stringify(theirs)}`,
      );
    let at = start.from;
    batches.forEach((b, i) => {
      if (b.log !== start.log)
        throw new OracleError(`batch ${i} of log ${b.log}, the start said ${start.log}`);
      if (b.since !== at) throw new OracleError(`batch ${i} since ${b.since}, the previous ended at ${at}`);
      if (b.upTo <= b.since) throw new OracleError(`batch ${i} from ${b.since} to ${b.upTo}`);
      at = b.upTo;
      for (const r of b.revisions) {
        try {
          verifyRevision(r, Number.MAX_SAFE_INTEGER);
        } catch (err) {
          throw new OracleError(`the hub sent a revision that does not verify: ${(err as Error).message}`);
        }
        const readable = READ.some((p) =>
          p.endsWith('*') ? r.collection.startsWith(p.slice(0, -1)) : p === r.collection,
        );
        if (!readable || HUB_ONLY.some((p) => r.collection.startsWith(p.slice(0, -1))))
          throw new OracleError(`the hub sent collection ${r.collection}, outside the device's read scope`);
        if (ours.has(r.rev))
          throw new OracleError(`the hub sent the device's own ${r.rev.slice(0, 12)} back`);
      }
    });
    // Window: at most four unacknowledged (every ack the device sent counts at most once).
    if (batches.length > s.acks + 4)
      throw new OracleError(`${batches.length} batches for ${s.acks} acknowledgements`);
  };

  /** The hub's applies of the pushed batches against its store and its acks. Returns the revisions applied here. */
  const checkApplies = async (peer: FramePeer): Promise<Set<string>> => {
    const acks = peer.messages().filter((m) => m.type === 'sync.ack');
    const applied = applies.filter((a) => a.report);
    if (acks.length > applied.length)
      throw new OracleError(`${acks.length} sync.ack for ${applied.length} batches applied`);
    const ours = new Set<string>();
    // Revisions some apply of this input took: a refusal elsewhere may not remove them.
    const taken = new Set<string>();
    for (const a of applied) {
      const refused = new Set(a.report?.rejected.map((r) => `${r.rev}/${r.collection}/${r.id}`));
      a.batch.revisions.forEach((r) => {
        if (isJsonObject(r) && !refused.has(`${String(r.rev)}/${String(r.collection)}/${String(r.id)}`))
          taken.add(String(r.rev));
      });
    }
    for (const [i, a] of applies.entries()) {
      const { batch, report } = a;
      const where = `batch ${i} (since ${batch.since}, upTo ${batch.upTo}, ${batch.revisions.length} revisions)`;
      if (!report) {
        for (const [j, r] of batch.revisions.entries()) {
          if (a.heldBefore[j] || !isJsonObject(r) || !str(r.rev) || taken.has(r.rev)) continue;
          if (str(r.collection) && str(r.id) && (await storedRevision(r.collection, r.id, r.rev)))
            throw new OracleError(
              `${where} failed (${String((a.error as Error)?.message)}) but left ${r.rev.slice(0, 12)} stored`,
            );
        }
        continue;
      }
      const at = a.cursorBefore.log === batch.log ? a.cursorBefore.seq : 0;
      if (batch.since > at) throw new OracleError(`${where} applied although the cursor was at ${at}`);
      const expected = batch.upTo >= at || a.cursorBefore.log !== batch.log ? batch.upTo : at;
      if (report.cursor !== expected)
        throw new OracleError(`${where} moved the cursor to ${report.cursor}, not ${expected}`);
      if (report.applied + report.duplicates + report.rejected.length !== batch.revisions.length)
        throw new OracleError(
          `${where}: ${report.applied} applied, ${report.duplicates} duplicates, ${report.rejected.length} refused`,
        );
      const refused = new Set(report.rejected.map((r) => `${r.rev}/${r.collection}/${r.id}`));
      for (const [j, r] of batch.revisions.entries()) {
        const key = isJsonObject(r) ? `${String(r.rev)}/${String(r.collection)}/${String(r.id)}` : '';
        if (refused.has(key)) {
          if (a.heldBefore[j] || !isJsonObject(r) || !str(r.rev) || taken.has(r.rev)) continue;
          if (str(r.collection) && str(r.id) && (await storedRevision(r.collection, r.id, r.rev)))
            throw new OracleError(`${where}: ${r.rev.slice(0, 12)} was refused and is stored`);
          continue;
        }
        // Not refused: a valid revision, now in the store exactly as sent.
        let revision: Revision;
        try {
          revision = verifyRevision(r, Number.MAX_SAFE_INTEGER).revision;
        } catch (err) {
          throw new OracleError(
            `${where}: accepted a revision that does not verify: ${(err as Error).message}`,
          );
        }
        const stored = await storedRevision(revision.collection, revision.id, revision.rev);
        if (!stored)
          throw new OracleError(`${where}: ${revision.rev.slice(0, 12)} accepted and not in the hub's store`);
        if (
          stored.bodyHash !== revision.bodyHash ||
          stored.deleted !== revision.deleted ||
          (!stored.pruned &&
            revision.body !== null &&
            canonicalJson(stored.body) !== canonicalJson(revision.body))
        )
          throw new OracleError(`${where}: ${revision.rev.slice(0, 12)} is stored with other content`);
        if (!a.heldBefore[j]) ours.add(revision.rev);
      }
    }
    acks.forEach((ack, k) => {
      const report = applied[k]?.report as ApplyReport;
      if (
        ack.type !== 'sync.ack' ||
        ack.upTo !== report.cursor ||
        ack.applied !== report.applied ||
        ack.duplicates !== report.duplicates ||
        ack.rejected.length !== report.rejected.length
      )
        throw new OracleError(`sync.ack ${k} ${JSON.stringify(ack)} does not report its batch's apply`);
    });
    return ours;
  };

  const seeds = (): Input[] => {
    const request = (id: number, method: string, params?: unknown) =>
      messageFrame({ type: 'request', id, method, ...(params !== undefined && { params }) });
    const open = messageFrame({
      type: 'sync.open',
      cursor: { log: TOKENS.hubLog, seq: NUMBERS.hubSeq, check: VALUES.hubCheck },
    });
    const openFresh = messageFrame({ type: 'sync.open', cursor: { log: '', seq: 0, check: '' } });
    const start = (latest: number, from = 0, log: string = TOKENS.log) =>
      messageFrame({ type: 'sync.start', log, latest, from });
    const ack = messageFrame({
      type: 'sync.ack',
      upTo: NUMBERS.ack,
      applied: 0,
      duplicates: 0,
      rejected: [],
    });
    const rev = (
      collection: string,
      id: string,
      body: Record<string, unknown> | null,
      extra: Record<string, unknown> = {},
    ) => ({
      rev: VALUES.rev,
      collection,
      id: `${TOKENS.id}-${id}`,
      parents: [],
      vv: { [TOKENS.me]: 1 },
      hlc: TOKENS.hlc,
      author: TOKENS.me,
      hub: false,
      deleted: body === null,
      bodyHash: body === null ? '' : VALUES.bodyHash,
      body,
      ...extra,
    });
    const changes = (
      since: number,
      upTo: number,
      revisions: unknown[],
      more = false,
      log: string = TOKENS.log,
    ) => messageFrame({ type: 'sync.changes', log, since, upTo, check: `c${upTo}`, more, revisions });
    const update = (collection: string, id: string, body: Record<string, unknown> | null, n = 2) =>
      rev(collection, id, body, { parents: [VALUES.parent], vv: { [TOKENS.me]: n } });
    const split = (w: Buffer, at: number) => [w.subarray(0, at), w.subarray(at)];
    const push = changes(
      0,
      2,
      [rev('docs', 'a', { title: 'first', n: 1 }), rev('tickets', 'b', { state: 'open' })],
      true,
    );
    const pushMore = changes(2, 3, [update('docs', 'a', { title: 'second', n: 2 })]);
    const zstdFrame = (w: Buffer) => encodeFrame(FrameKind.Message, compress('zstd', w.subarray(6)), 'zstd');
    return [
      // A well-formed session: open on the cursor held, push records, take the hub's changes.
      [open, start(3), push, ack, pushMore, ack, ack, messageFrame({ type: 'ping', t: 1 })],
      // From the start of the hub's log, acknowledging every batch.
      [openFresh, start(0), ack, ack, ack, ack, ack],
      // Resuming this device's log where the hub's cursor is.
      [
        open,
        start(NUMBERS.curNext, NUMBERS.curSeq, TOKENS.curLog),
        messageFrame({
          type: 'sync.changes',
          log: TOKENS.curLog,
          since: NUMBERS.curSeq,
          upTo: NUMBERS.curNext,
          check: 'r1',
          more: false,
          revisions: [rev('shared.x', 'r', { v: [1, 2, { deep: true }] })],
        }),
        ack,
      ],
      // Deletes, a conflict on a hub record, field clocks, a record the hub's strategy merges.
      [
        open,
        start(4),
        changes(0, 2, [rev('docs', 'd', { x: 1 }), update('docs', 'd', null)]),
        messageFrame({
          type: 'sync.changes',
          log: TOKENS.log,
          since: 2,
          upTo: 4,
          check: 'c4',
          more: false,
          revisions: [
            { ...rev('tickets', 't', { state: 'mine' }), id: 't1' },
            {
              ...rev('profile', 'p', { name: 'n', age: 3 }),
              id: 'p1',
              parents: [VALUES.parent],
              fields: { name: TOKENS.hlc, age: TOKENS.hlc },
            },
          ],
        }),
        ack,
      ],
      // Revisions refused alone: not this device's, the hub's, hub-only, out of scope,
      // local-only at the hub, from the future, an unknown parent, a bad hash.
      [
        open,
        start(1),
        changes(0, 1, [
          rev('docs', 'h', { a: 1 }, { author: TOKENS.hub, vv: { [TOKENS.hub]: 1 } }),
          rev('docs', 'i', { a: 1 }, { hub: true }),
          rev('audit.log', 'j', { a: 1 }),
          rev('private', 'k', { a: 1 }),
          rev('scratch', 'l', { a: 1 }),
          rev('docs', 'm', { a: 1 }, { hlc: 'ffffffffffff0000' }),
          rev('docs', 'n', { a: 1 }, { parents: ['ab'.repeat(32)] }),
          rev('docs', 'o', { a: 1 }, { rev: 'cd'.repeat(32) }),
          rev('_reserved', 'p', { a: 1 }),
          { ...rev('docs', 'q', { a: 1 }), id: 'x\u0001' },
          { nope: true },
        ]),
        ack,
      ],
      // Out of turn and out of order: changes before the start, a gap, another log, the old one.
      [open, changes(0, 1, [rev('docs', 'g', { a: 1 })]), start(1)],
      [open, start(2), changes(1, 2, [rev('docs', 'g', { a: 1 })])],
      [open, start(1, 0, TOKENS.oldLog), changes(0, 1, [rev('docs', 'g', { a: 1 })], false, TOKENS.oldLog)],
      [open, start(1), changes(0, 1, [], false, TOKENS.oldLog)],
      [open, open, start(1)],
      [start(1), open, messageFrame({ type: 'sync.open', cursor: 0, latest: 0 })],
      // A cursor the hub's log does not hold: the hub takes its store for rolled back.
      [
        messageFrame({ type: 'sync.open', cursor: { log: TOKENS.hubLog, seq: 1, check: 'zz' } }),
        start(0),
        ack,
      ],
      // Requests, the answer to the hub's policy.set, pings and pongs, an error to close.
      [
        open,
        request(1, 'status'),
        messageFrame({ type: 'response', re: 1, ok: true, result: { version: 1 } }),
        messageFrame({ type: 'pong', t: 5 }),
        start(0),
        messageFrame({ type: 'ping', t: 2 }),
        ack,
      ],
      [
        open,
        messageFrame({
          type: 'response',
          re: 1,
          ok: false,
          error: { code: 'INVALID_POLICY', message: 'no' },
        }),
        start(1),
        push,
        messageFrame({ type: 'error', code: 'CHANGE_LOG_ROLLED_BACK', message: 'rolled back' }),
      ],
      // Messages a sync connection does not take.
      [open, messageFrame(fuzzHello()), start(0)],
      [open, start(0), encodeFrame(FrameKind.Chunk, Buffer.alloc(33, 2))],
      // Split and joined writes, a compressed batch.
      [...split(open, 9), Buffer.concat([start(3), push]), ...split(pushMore, 40), ack],
      [open, start(3), zstdFrame(push), ack],
    ];
  };

  return {
    name: 'session',
    sources: [
      'src/sync/',
      'src/hub/child-sessions.ts',
      'src/hub/recovery.ts',
      'src/hub/scopes.ts',
      'src/transport/connection.ts',
      'src/transport/sync-channel.ts',
      'src/protocol/',
      'src/store/sqlite.ts',
    ],
    dictionary: [
      ...Object.values(TOKENS),
      ...Object.values(VALUES),
      'sync.open',
      'sync.start',
      'sync.changes',
      'sync.ack',
      'request',
      'response',
      'ping',
      'pong',
      'error',
      'docs',
      'tickets',
      'profile',
      'notes',
      'scratch',
      'private',
      'audit.log',
      'shared.y',
      't1',
      'p1',
      'h1',
      'CHANGE_LOG_ROLLED_BACK',
      '0'.repeat(32),
      '0'.repeat(64),
      '',
    ],
    seeds,
    async start() {
      const hubDir = join(dir.path, 'hub');
      let store: StorageAdapter | undefined;
      if (options.plant) {
        mkdirSync(hubDir, { recursive: true });
        store = new SqliteStore({ path: join(hubDir, NODE_STORE_FILE), synchronous: 'off' });
        options.plant(store);
      }
      hub = await startTestHub(
        hubDir,
        {
          connectionLimit: unlimited,
          collections: {
            tickets: { conflict: 'manual' },
            profile: { conflict: 'merge' },
            scratch: { localOnly: true },
          },
          hubOnly: HUB_ONLY,
        },
        store ? { store } : {},
      );
      identity = await createIdentity('fuzz-session');
      await hub.registry.putGroup({
        name: 'fuzzers',
        description: 'the fuzzing device',
        read: READ,
        write: WRITE,
      });
      await hub.registry.register({
        deviceId: identity.deviceId as DeviceId,
        name: 'fuzzer',
        group: 'fuzzers',
      });
      await hub.replica.put('docs', 'h1', { title: 'from the hub' });
      await hub.replica.put('tickets', 't1', { state: 'new' });
      await hub.replica.put('profile', 'p1', { name: 'hub', age: 1 });
      await hub.replica.put('private', 'x1', { secret: true });
      await hub.replica.put('audit.log', 'a1', { who: 'hub' });
      // Every batch this device pushes, as the hub applies it.
      const original = hub.replica.applyChanges.bind(hub.replica);
      hub.replica.applyChanges = async (peer, batch, applyOptions) => {
        if (peer !== identity.deviceId) return original(peer, batch, applyOptions);
        const a: Apply = {
          batch: { log: batch.log, since: batch.since, upTo: batch.upTo, revisions: [...batch.revisions] },
          cursorBefore: await hub.replica.cursorFor(peer),
          heldBefore: await held(batch.revisions),
        };
        applies.push(a);
        const run = original(peer, batch, applyOptions).then(
          (report) => {
            a.report = report;
            return report;
          },
          (err: unknown) => {
            a.error = err;
            throw err;
          },
        );
        applying.add(run);
        run.then(
          () => applying.delete(run),
          () => applying.delete(run),
        );
        return run;
      };
    },
    async run(input) {
      inputs++;
      applies = [];
      const hubLog = (await hub.replica.changeLog()).id;
      if (cursor.log !== hubLog) cursor = { log: hubLog, seq: 0, check: '' };
      const s: Session = {
        log: newLog(),
        idPrefix: (inputs % 36 ** 4).toString(36).padStart(4, '0'),
        hubLog,
        revs: new Map(),
        acked: 0,
        opens: 0,
        batches: 0,
        acks: 0,
        sentError: false,
        sentStart: false,
        closedByHub: false,
      };
      let peer: FramePeer;
      try {
        peer = await exchange(input, s);
      } finally {
        previousLog = s.log;
        // Batches the hub still applies as the connection ends finish before the store is looked at.
        for (let i = 0; i < 100 && applying.size > 0; i++) await Promise.allSettled([...applying]);
      }
      checkWire(peer, s);
      // Told that its log was replaced before, the hub takes a new one only when shown a
      // position of a newer log that it gave (PROTOCOL.md, "Starting"): an input cannot
      // show one (it would need the store's secret), so the hub keeps its log.
      const told = s.toldRolledBack;
      if (told) {
        await new Promise((r) => setTimeout(r, 50));
        if ((await hub.replica.changeLog()).id !== told)
          throw new OracleError(
            'told CHANGE_LOG_ROLLED_BACK without a position of a newer log it gave, the hub replaced its log',
          );
      }
      const ours = await checkApplies(peer);
      checkHubSide(peer, s, ours);
    },
    async check() {
      const child = await pairedChildOf(hub, join(dir.path, 'after-fuzz'), { name: 'after-fuzz' });
      await child.start();
      try {
        const mine = await child.replica.put('docs', 'after-fuzz', { from: 'child' });
        const theirs = await hub.replica.put('docs', 'after-fuzz-hub', { from: 'hub' });
        await eventually(
          async () => (await hub.replica.get('docs', 'after-fuzz'))?.rev === mine.rev,
          ANSWER_LIMIT_MS,
          "the hub has the child's write",
        ).catch(() => {
          throw new OracleError("a real child's write did not reach the hub after the run");
        });
        await eventually(
          async () => (await child.replica.get('docs', 'after-fuzz-hub'))?.rev === theirs.rev,
          ANSWER_LIMIT_MS,
          "the child has the hub's write",
        ).catch(() => {
          throw new OracleError("the hub's write did not reach a real child after the run");
        });
      } finally {
        await child.stop();
      }
    },
    async stop() {
      await hub?.stop();
      dir.remove();
    },
  };
}
