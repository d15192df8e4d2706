import { z } from 'zod';
import type { Revision } from '../store/types.js';
import { PROTOCOL_NAME } from './constants.js';
import { ProtocolError } from './errors.js';

/*
 * One schema per message type. PROTOCOL.md lists the same fields and limits; change
 * both together. Fields a schema does not name are dropped, not refused, so a newer
 * peer may add fields. The sync messages take the shapes of both versions this build
 * speaks: version 2's (change log identities: a cursor object, `sync.start`, `log`
 * and `check` on each batch) and version 1's (a numeric cursor and `latest` in
 * `sync.open`, batches without `log` and `check`); the session checks that a peer
 * uses the shape of the version negotiated.
 */

const count = z.number().int().nonnegative();
const positiveInt = z.number().int().positive();
const deviceName = z.string().min(1).max(128);
const role = z.enum(['hub', 'child']);
const appVersion = z.string().max(64);
const features = z.array(z.string().max(64)).max(32);
/** A wall-clock time: ms since the Unix epoch, as the sender's clock reads it. */
const wallClock = z.number().int().nonnegative();
/** Error codes are upper snake case, like every TrosynError code. */
const errorCode = z
  .string()
  .max(64)
  .regex(/^[A-Z_]+$/);
const errorMessage = z.string().max(1024);
const details = z.record(z.string(), z.unknown());

/** `hello`: the client's first message, offering versions and capabilities. */
export const helloSchema = z.object({
  type: z.literal('hello'),
  protocol: z.literal(PROTOCOL_NAME),
  versions: z.array(positiveInt).min(1).max(16),
  name: deviceName,
  role,
  appVersion,
  compression: z.array(z.string().max(32)).max(8),
  features,
  heartbeatMs: positiveInt.optional(),
  /** The client's clock as it sends the hello, so the server can tell how far off it is. */
  time: wallClock.optional(),
});

/** `welcome`: the server's answer to `hello`, fixing version, codec and heartbeat. */
export const welcomeSchema = z.object({
  type: z.literal('welcome'),
  version: positiveInt,
  name: deviceName,
  role,
  appVersion,
  compression: z.enum(['none', 'zstd', 'br']),
  features,
  heartbeatMs: positiveInt,
  /** The server's clock as it sends the welcome: the client measures the offset over the round trip. */
  time: wallClock.optional(),
});

/** `ping`: a heartbeat; `t` is echoed in the `pong`. */
export const pingSchema = z.object({ type: z.literal('ping'), t: z.number() });

/** `pong`: the answer to a `ping`, with the same `t` and, optionally, the responder's clock. */
export const pongSchema = z.object({ type: z.literal('pong'), t: z.number(), time: wallClock.optional() });

/** `error`: a stable code and a readable message; the sender closes after it. */
export const errorSchema = z.object({
  type: z.literal('error'),
  code: errorCode,
  message: errorMessage,
  details: details.optional(),
});

/** `request`: a call the peer answers with a `response` whose `re` is this `id`. */
export const requestSchema = z.object({
  type: z.literal('request'),
  id: positiveInt,
  method: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[a-z0-9._-]+$/),
  params: z.unknown().optional(),
});

const responseError = z.object({ code: errorCode, message: errorMessage, details: details.optional() });

/** `response`: the answer to the `request` whose `id` is `re`; `error` iff not `ok`. */
export const responseSchema = z.discriminatedUnion('ok', [
  z.object({
    type: z.literal('response'),
    re: positiveInt,
    ok: z.literal(true),
    result: z.unknown().optional(),
    error: z.never().optional(),
  }),
  z.object({
    type: z.literal('response'),
    re: positiveInt,
    ok: z.literal(false),
    error: responseError,
  }),
]);

/** A change log identity: 32 hex characters ('' where none is known yet). */
const logId = z.string().regex(/^[0-9a-f]{0,64}$/);
/** A checkpoint token of a log position ('' for position 0). */
const checkToken = z.string().regex(/^[0-9a-z]{0,64}$/);

/**
 * `sync.open`: how far the sender has applied the receiver's change log: which log
 * (its identity), which position, and the receiver's checkpoint token for it.
 */
export const syncOpenSchema = z.object({
  type: z.literal('sync.open'),
  /** Version 2: an object. Version 1: the position alone (logs had no identity). */
  cursor: z.union([z.object({ log: logId, seq: count, check: checkToken }), count]),
  /** Version 1 only: the sender's latest position (version 2 says it in `sync.start`). */
  latest: count.optional(),
  receive: z.boolean().optional(),
});

/**
 * `sync.start`: the answer to the peer's `sync.open`: the sender's change log
 * identity, its latest position, and the position the sender sends changes after
 * (the peer's cursor if it still holds, else 0).
 */
export const syncStartSchema = z.object({
  type: z.literal('sync.start'),
  log: logId.min(1),
  latest: count,
  from: count,
});

/**
 * A revision inside `sync.changes`: only checked to be an object here. The engine
 * verifies each one (shape, names, hashes) before it touches the store and refuses
 * bad ones alone, so a full schema here would only double the cost of the largest
 * message. The element is typed as a Revision, as the engine receives it.
 */
const wireRevision = z.custom<Revision>(
  (value) => typeof value === 'object' && value !== null && !Array.isArray(value),
  { message: 'expected an object' },
);

/**
 * `sync.changes`: one batch of the sender's change log `log`, `since` < seq <=
 * `upTo`; `check` is the sender's checkpoint token for `upTo`.
 */
export const syncChangesSchema = z.object({
  type: z.literal('sync.changes'),
  /** Required from version 2; absent in version 1. */
  log: logId.min(1).optional(),
  since: count,
  upTo: count,
  /** Required from version 2; absent in version 1. */
  check: checkToken.optional(),
  more: z.boolean(),
  revisions: z.array(wireRevision).max(100_000),
});

/** Longest string in a refused revision's entry of a `sync.ack`: a sender cuts what the peer sent to it. */
export const MAX_REJECTED_FIELD = 4096;

const rejectedRevision = z.object({
  rev: z.string().max(MAX_REJECTED_FIELD),
  collection: z.string().max(MAX_REJECTED_FIELD),
  id: z.string().max(MAX_REJECTED_FIELD),
  code: errorCode,
  message: z.string().max(MAX_REJECTED_FIELD),
});

/** `sync.ack`: the receiver applied a batch and moved its cursor to `upTo`. */
export const syncAckSchema = z.object({
  type: z.literal('sync.ack'),
  upTo: count,
  applied: count,
  duplicates: count,
  rejected: z.array(rejectedRevision).max(100_000),
});

/** Every message of protocol version 1, discriminated by `type`. */
export const messageSchema = z.discriminatedUnion('type', [
  helloSchema,
  welcomeSchema,
  pingSchema,
  pongSchema,
  errorSchema,
  requestSchema,
  responseSchema,
  syncOpenSchema,
  syncStartSchema,
  syncChangesSchema,
  syncAckSchema,
]);

/** `hello` as decoded. */
export type HelloMessage = z.infer<typeof helloSchema>;
/** `welcome` as decoded. */
export type WelcomeMessage = z.infer<typeof welcomeSchema>;
/** `ping` as decoded. */
export type PingMessage = z.infer<typeof pingSchema>;
/** `pong` as decoded. */
export type PongMessage = z.infer<typeof pongSchema>;
/** `error` as decoded. */
export type ErrorMessage = z.infer<typeof errorSchema>;
/** `request` as decoded. */
export type RequestMessage = z.infer<typeof requestSchema>;
/** `response` as decoded: a success with `result`, or a failure with `error`. */
export type ResponseMessage = z.infer<typeof responseSchema>;
/** `sync.open` as decoded. */
export type SyncOpenMessage = z.infer<typeof syncOpenSchema>;
/** `sync.start` as decoded. */
export type SyncStartMessage = z.infer<typeof syncStartSchema>;
/** `sync.changes` as decoded (revisions not yet verified: see the engine). */
export type SyncChangesMessage = z.infer<typeof syncChangesSchema>;
/** `sync.ack` as decoded. */
export type SyncAckMessage = z.infer<typeof syncAckSchema>;
/** `error` as a sync session sends and receives it. */
export type SyncErrorMessage = ErrorMessage;

/**
 * The messages of a sync session, after the transport handshake: each side sends
 * `sync.open`, answers the peer's with `sync.start`, then changes flow both ways in
 * batches, each acknowledged.
 */
export type SyncMessage =
  SyncOpenMessage | SyncStartMessage | SyncChangesMessage | SyncAckMessage | SyncErrorMessage;

/** Any message of protocol version 1. Every SyncMessage is one. */
export type Message = z.infer<typeof messageSchema>;

/** The `type` of every message this build knows. */
export type MessageType = Message['type'];

const schemas = new Map<string, z.ZodType>([
  ['hello', helloSchema],
  ['welcome', welcomeSchema],
  ['ping', pingSchema],
  ['pong', pongSchema],
  ['error', errorSchema],
  ['request', requestSchema],
  ['response', responseSchema],
  ['sync.open', syncOpenSchema],
  ['sync.start', syncStartSchema],
  ['sync.changes', syncChangesSchema],
  ['sync.ack', syncAckSchema],
]);

/** Every message type this build knows, in protocol order. */
export const MESSAGE_TYPES: readonly MessageType[] = [...schemas.keys()] as MessageType[];

/** A peer's string in an error message: quoted, and cut short so huge input is never echoed. */
function quote(value: string, max = 64): string {
  return JSON.stringify(value.length > max ? `${value.slice(0, max)}...` : value);
}

/**
 * Validates a decoded JSON value as a message and returns a clean copy (unknown
 * fields dropped). Throws a ProtocolError: UNKNOWN_MESSAGE_TYPE when `type` is a
 * string this build does not know, INVALID_MESSAGE for anything else wrong (the
 * message names the first field that failed).
 */
export function parseMessage(value: unknown): Message {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ProtocolError('INVALID_MESSAGE', 'message: expected a JSON object');
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string')
    throw new ProtocolError('INVALID_MESSAGE', 'message: field type must be a string');
  const schema = schemas.get(type);
  if (schema === undefined)
    throw new ProtocolError('UNKNOWN_MESSAGE_TYPE', `unknown message type ${quote(type)}`, {
      type: type.slice(0, 64),
    });
  const result = schema.safeParse(value);
  if (result.success) return result.data as Message;
  const issue = result.error.issues[0];
  const path = issue?.path.length ? issue.path.map(String).join('.') : '(message)';
  throw new ProtocolError(
    'INVALID_MESSAGE',
    `${type} message: field ${path.slice(0, 128)}: ${(issue?.message ?? 'invalid').slice(0, 200)}`,
    { type, field: path.slice(0, 128) },
  );
}
