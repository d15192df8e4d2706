import { TrosynError } from '../errors.js';

/**
 * A discovery option is invalid or conflicts with another. Shares the project-wide
 * `INVALID_OPTION` code: the message names the option and what to change.
 */
export class DiscoveryOptionError extends TrosynError {
  constructor(option: string, reason: string) {
    super('INVALID_OPTION', `discovery option ${option}: ${reason}`, { option });
  }
}

/** A static hub address (`host:port`) that cannot be parsed. */
export class InvalidStaticAddressError extends TrosynError {
  constructor(input: string, reason: string) {
    super('INVALID_STATIC_ADDRESS', `invalid hub address ${JSON.stringify(input)}: ${reason}`, {
      input,
      reason,
    });
  }
}

/**
 * No discovery socket could be bound for any address family (every family failed,
 * e.g. the port is taken by a program without SO_REUSEADDR, or IPv4 and IPv6 are both
 * unavailable). When at least one family binds, start() succeeds and the failure of
 * the other is only recorded in the diagnostics.
 */
export class DiscoveryBindError extends TrosynError {
  constructor(port: number, causes: readonly string[], cause?: unknown) {
    super(
      'DISCOVERY_BIND_FAILED',
      `cannot bind UDP port ${port} for discovery: ${causes.join('; ')}`,
      { port, causes: [...causes] },
      cause === undefined ? undefined : { cause },
    );
  }
}

/** The hub's last good address could not be written to the data directory. */
export class LastAddressSaveError extends TrosynError {
  constructor(path: string, cause: unknown) {
    super(
      'LAST_ADDRESS_SAVE_FAILED',
      `cannot save the hub's last address to ${path}: ${cause instanceof Error ? cause.message : String(cause)}`,
      { path },
      { cause },
    );
  }
}
