import type { ErrorCode } from '../error-codes.js';
import { TrosynError } from '../errors.js';

/**
 * A violation of the wire protocol: a malformed frame, a message that fails its
 * schema, an unknown message type, no common version or codec, or a payload that
 * does not decompress. The connection answers with an `error` message carrying
 * `code`, then closes. Codes are listed in docs/ERRORS.md and PROTOCOL.md.
 */
export class ProtocolError extends TrosynError {
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message, details);
  }
}
