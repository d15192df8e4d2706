import type { ErrorCode } from '../error-codes.js';
import { TrosynError } from '../errors.js';

/** A device ID that is malformed or whose check characters do not match (a typo). */
export class InvalidDeviceIdError extends TrosynError {
  constructor(input: string, reason: string) {
    super('INVALID_DEVICE_ID', `invalid device ID ${JSON.stringify(input)}: ${reason}`, { input });
  }
}

/** The identity files in the data directory are missing, unreadable or do not match. */
export class IdentityError extends TrosynError {
  constructor(path: string, reason: string, cause?: unknown) {
    super(
      'IDENTITY_INVALID',
      `identity at ${path}: ${reason}`,
      { path },
      cause === undefined ? undefined : { cause },
    );
  }
}

/**
 * A transport failure with a stable code: the local side's reason for closing a
 * connection, or the code a peer sent in its `error` message before closing.
 */
export class TransportError extends TrosynError {
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message, details);
  }
}

/** The peer presented no client certificate (every connection is mutually authenticated). */
export class NoClientCertificateError extends TrosynError {
  constructor(address: string) {
    super(
      'NO_CLIENT_CERTIFICATE',
      `${address} presented no client certificate; every device authenticates with its own`,
      {
        address,
      },
    );
  }
}

/** The server's certificate is not the pinned one: another machine is answering (a man in the middle?). */
export class HubIdentityMismatchError extends TrosynError {
  constructor(expected: string, actual: string, address: string) {
    super(
      'HUB_IDENTITY_MISMATCH',
      `the server at ${address} is device ${actual}, not the pinned hub ${expected}; nothing was sent to it`,
      { expected, actual, address },
    );
  }
}

/** The authenticator refused this device. */
export class DeviceNotAllowedError extends TrosynError {
  constructor(
    deviceId: string,
    code: ErrorCode = 'DEVICE_NOT_ALLOWED',
    reason = 'this device is not registered with the hub; pair it first',
  ) {
    super(code, reason, { deviceId });
  }
}

/** No pong (or any frame) from the peer for three heartbeat intervals. */
export class HeartbeatTimeoutError extends TrosynError {
  constructor(silentMs: number) {
    super(
      'HEARTBEAT_TIMEOUT',
      `no answer from the peer for ${silentMs} ms (three heartbeats); connection presumed dead`,
      {
        silentMs,
      },
    );
  }
}

/** The peer did not complete the handshake in time. */
export class HandshakeTimeoutError extends TrosynError {
  constructor(ms: number) {
    super('HANDSHAKE_TIMEOUT', `the peer did not complete the handshake within ${ms} ms`, { ms });
  }
}

/** A request got no response in time. */
export class RequestTimeoutError extends TrosynError {
  constructor(method: string, ms: number) {
    super('REQUEST_TIMEOUT', `request ${method} got no response within ${ms} ms`, { method, ms });
  }
}

/** The connection closed while the operation was waiting on it. */
export class ConnectionClosedError extends TrosynError {
  constructor(cause?: Error) {
    super(
      'CONNECTION_CLOSED',
      `the connection closed${cause ? `: ${cause.message}` : ''}`,
      undefined,
      cause ? { cause } : undefined,
    );
  }
}

/** The peer sent a request for a method this side does not offer. */
export class UnknownMethodError extends TrosynError {
  constructor(method: string) {
    super('UNKNOWN_METHOD', `no request handler for ${method}`, { method });
  }
}

/**
 * What answered at the hub's address does not speak Trosyn Sync: its TLS
 * handshake failed, or its first bytes are not a frame (an HTTP server, another
 * TLS service, a proxy). Nothing was exchanged with it beyond that.
 */
export class NotATrosynHubError extends TrosynError {
  constructor(address: string, reason: string, cause?: unknown) {
    super(
      'NOT_A_TROSYN_HUB',
      `the server at ${address} is not a Trosyn Sync hub (${reason}); check the address and port (the hub's sync port is 17700 by default)`,
      { address },
      cause === undefined ? undefined : { cause },
    );
  }
}

/**
 * The named codes for Node's socket errors, so that no bare `ECONNRESET` reaches
 * an API, an event or the CLI. Node's own code stays in `details.syscallCode`.
 */
const SOCKET_ERROR_CODES: Readonly<Record<string, ErrorCode>> = {
  ECONNRESET: 'CONNECTION_RESET',
  ECONNABORTED: 'CONNECTION_RESET',
  EPIPE: 'CONNECTION_RESET',
  ECONNREFUSED: 'CONNECT_REFUSED',
  ETIMEDOUT: 'NETWORK_TIMEOUT',
  EHOSTUNREACH: 'HOST_UNREACHABLE',
  EHOSTDOWN: 'HOST_UNREACHABLE',
  ENETUNREACH: 'NETWORK_UNREACHABLE',
  ENETDOWN: 'NETWORK_UNREACHABLE',
  EADDRNOTAVAIL: 'ADDRESS_UNAVAILABLE',
  ENOTFOUND: 'HOST_NOT_FOUND',
  EAI_AGAIN: 'HOST_NOT_FOUND',
};

/** True for the errors OpenSSL raises when the other side does not speak TLS 1.3 as expected. */
export function isTlsHandshakeError(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && (code === 'EPROTO' || code.startsWith('ERR_SSL_'));
}

/**
 * A socket error as a TransportError with a documented code. `connecting` marks
 * failures before a session existed: there an unknown cause is CONNECT_FAILED and
 * a timeout CONNECT_TIMEOUT; on an open connection they are CONNECTION_FAILED and
 * NETWORK_TIMEOUT. A TrosynError passes through unchanged.
 */
export function fromSocketError(err: unknown, where: string, connecting: boolean): TrosynError {
  if (err instanceof TrosynError) return err;
  const e = err as NodeJS.ErrnoException | undefined;
  const nodeCode = typeof e?.code === 'string' ? e.code : undefined;
  let code = nodeCode === undefined ? undefined : SOCKET_ERROR_CODES[nodeCode];
  if (connecting && code === 'NETWORK_TIMEOUT') code = 'CONNECT_TIMEOUT';
  code ??= connecting ? 'CONNECT_FAILED' : 'CONNECTION_FAILED';
  const what = connecting ? `cannot reach the hub at ${where}` : `the connection with ${where} failed`;
  return new TransportError(code, `${what}: ${e?.message ?? String(err)}`, {
    address: where,
    ...(nodeCode !== undefined && { syscallCode: nodeCode }),
  });
}
