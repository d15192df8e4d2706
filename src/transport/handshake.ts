import { PROTOCOL_NAME, PROTOCOL_VERSIONS } from '../protocol/constants.js';
import { negotiateVersion } from '../protocol/codec.js';
import { chooseCodec, type CompressionCodec, supportedCodecs } from '../protocol/compression.js';
import type { Message } from '../protocol/messages.js';
import { ProtocolError } from '../protocol/errors.js';
import { isTrosynError } from '../errors.js';
import { type ClockOffset, measureOffset } from './clock-offset.js';
import { type Connection, PeerError } from './connection.js';
import { ConnectionClosedError, HandshakeTimeoutError, NotATrosynHubError } from './errors.js';

type Hello = Extract<Message, { type: 'hello' }>;
type Welcome = Extract<Message, { type: 'welcome' }>;

/** What the frame decoder reports for a byte stream that is not Trosyn Sync frames at all. */
const NOT_FRAMES: ReadonlySet<string> = new Set([
  'FRAME_TOO_LARGE',
  'BAD_FRAME',
  'INVALID_MESSAGE',
  'UNKNOWN_MESSAGE_TYPE',
  'DECOMPRESSION_FAILED',
  'UNSUPPORTED_COMPRESSION',
]);

/** What this side says about itself in the handshake. */
export interface LocalPeer {
  name: string;
  role: 'hub' | 'child';
  appVersion: string;
  /** Heartbeat interval (ms) this side wants; the server's choice wins. */
  heartbeatMs: number;
  /** Compression codecs offered or accepted, in order of preference. Default: all supported. */
  compression?: CompressionCodec[];
  features?: string[];
}

export interface HandshakeResult {
  version: number;
  compression: CompressionCodec;
  heartbeatMs: number;
  /** The peer's own description. */
  peerName: string;
  peerRole: 'hub' | 'child';
  peerAppVersion: string;
  features: string[];
  /**
   * The client only: the server's clock against ours, measured over the hello and
   * welcome (absent when the server does not send its time).
   */
  peerClock?: ClockOffset;
  /** The server only: the client's clock as it sent the hello, if it sent it (unmeasured: one way). */
  peerTime?: number;
}

/**
 * Waits for the first message on a fresh connection (any but `error`), or fails after
 * `timeoutMs` (on the connection's clock) with HANDSHAKE_TIMEOUT, so the peer is
 * told why it is dropped. Every listener and timer it sets is removed whichever way
 * it ends.
 */
function firstMessage(conn: Connection, timeoutMs: number): Promise<Message> {
  return new Promise<Message>((resolve, reject) => {
    const settle = () => {
      timer.cancel();
      conn.off('close', onClose);
      conn.onFirstMessage(undefined);
    };
    const onClose = (cause: Error | undefined) => {
      settle();
      reject(cause ?? new ConnectionClosedError());
    };
    const timer = conn.clock.setTimeout(() => {
      settle();
      reject(new HandshakeTimeoutError(timeoutMs));
    }, timeoutMs);
    conn.once('close', onClose);
    // Every message goes to the wait, pings and requests too: before the handshake's
    // first message nothing else is allowed (PROTOCOL.md, "Handshake", step 5).
    conn.onFirstMessage((message) => {
      settle();
      resolve(message);
    });
  });
}

/** Client side: sends `hello`, expects `welcome`; switches on the chosen compression. */
export async function clientHandshake(
  conn: Connection,
  local: LocalPeer,
  timeoutMs: number,
): Promise<HandshakeResult> {
  const reply = firstMessage(conn, timeoutMs);
  // If the send fails the connection is closed, and the reply's rejection is the
  // same failure: keep it from surfacing as an unhandled rejection.
  reply.catch(() => undefined);
  const sentAt = conn.clock.now();
  await conn.send({
    type: 'hello',
    protocol: PROTOCOL_NAME,
    versions: [...PROTOCOL_VERSIONS],
    name: local.name,
    role: local.role,
    appVersion: local.appVersion,
    compression: local.compression ?? supportedCodecs(),
    features: local.features ?? [],
    heartbeatMs: local.heartbeatMs,
    time: Math.round(sentAt),
  });
  let message: Message;
  try {
    message = await reply;
  } catch (err) {
    // Bytes that do not even decode as frames did not come from a Trosyn Sync hub
    // (an HTTP or other TLS service on the port): say so, rather than name the
    // decoder's complaint about a length field that is really "HTTP".
    if (isTrosynError(err) && !(err instanceof PeerError) && NOT_FRAMES.has(err.code)) {
      throw new NotATrosynHubError(
        conn.remoteAddress,
        'it answered with bytes that are not Trosyn Sync frames',
        err,
      );
    }
    throw err;
  }
  if (message.type !== 'welcome') {
    const err = new ProtocolError('UNEXPECTED_MESSAGE', `expected welcome, got ${message.type}`);
    conn.close(err);
    throw err;
  }
  const welcome = message as Welcome;
  const offered = local.compression ?? supportedCodecs();
  let refusal: ProtocolError | undefined;
  if (!PROTOCOL_VERSIONS.includes(welcome.version)) {
    refusal = new ProtocolError(
      'UNSUPPORTED_VERSION',
      `the hub chose protocol version ${welcome.version}, which this device did not offer`,
    );
  } else if (welcome.compression !== 'none' && !offered.includes(welcome.compression)) {
    refusal = new ProtocolError(
      'UNSUPPORTED_COMPRESSION',
      `the hub chose ${welcome.compression} compression, which this device did not offer`,
    );
  }
  if (refusal) {
    conn.close(refusal);
    throw refusal;
  }
  conn.setCompression(welcome.compression);
  const peerClock =
    welcome.time === undefined ? undefined : measureOffset(sentAt, welcome.time, conn.clock.now());
  if (peerClock) conn.notePeerClock(peerClock);
  conn.open();
  return {
    version: welcome.version,
    compression: welcome.compression,
    heartbeatMs: welcome.heartbeatMs,
    peerName: welcome.name,
    peerRole: welcome.role,
    peerAppVersion: welcome.appVersion,
    features: welcome.features,
    ...(peerClock && { peerClock }),
  };
}

/**
 * Server side: expects `hello`, picks the highest common version and the first of
 * its own codecs the client offered, answers `welcome` (or UNSUPPORTED_VERSION and
 * closes).
 */
export async function serverHandshake(
  conn: Connection,
  local: LocalPeer,
  timeoutMs: number,
): Promise<HandshakeResult> {
  const message = await firstMessage(conn, timeoutMs);
  if (message.type !== 'hello') {
    const err = new ProtocolError('UNEXPECTED_MESSAGE', `expected hello, got ${message.type}`);
    conn.close(err);
    throw err;
  }
  const hello = message as Hello;
  const version = negotiateVersion(hello.versions);
  if (hello.protocol !== PROTOCOL_NAME || version === undefined) {
    const err = new ProtocolError(
      'UNSUPPORTED_VERSION',
      `this hub speaks ${PROTOCOL_NAME} versions ${PROTOCOL_VERSIONS.join(', ')}; the client offered ${hello.protocol} ${hello.versions.join(', ')}`,
    );
    conn.close(err);
    throw err;
  }
  const compression = chooseCodec(hello.compression, local.compression ?? supportedCodecs());
  const heartbeatMs = local.heartbeatMs;
  await conn.send({
    type: 'welcome',
    version,
    name: local.name,
    role: local.role,
    appVersion: local.appVersion,
    compression,
    features: local.features ?? [],
    heartbeatMs,
    time: Math.round(conn.clock.now()),
  });
  conn.setCompression(compression);
  return {
    version,
    compression,
    heartbeatMs,
    peerName: hello.name,
    peerRole: hello.role,
    peerAppVersion: hello.appVersion,
    features: hello.features,
    ...(hello.time !== undefined && { peerTime: hello.time }),
  };
}
