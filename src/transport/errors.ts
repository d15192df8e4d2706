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
