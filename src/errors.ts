import type { ErrorCode } from './error-codes.js';

/**
 * Base class of every error Trosyn Sync raises on purpose. Each layer defines its
 * own subclasses in its `errors.ts`; every `code` is stable and listed with its
 * meaning and fix in docs/ERRORS.md (a test keeps the two in step).
 */
export class TrosynError extends Error {
  /** Stable, upper-snake-case code that APIs, the CLI and the wire protocol return (see src/error-codes.ts). */
  readonly code: ErrorCode;
  /** Extra machine-readable facts about the failure (never secrets). */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }

  /** A plain object safe to send to a peer or an API client. */
  toJSON(): { code: string; message: string; details?: Record<string, unknown> } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: { ...this.details } };
  }
}

/** True when `err` is a TrosynError, optionally with the given code. */
export function isTrosynError(err: unknown, code?: ErrorCode): err is TrosynError {
  return err instanceof TrosynError && (code === undefined || err.code === code);
}
