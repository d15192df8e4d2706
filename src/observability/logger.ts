import pino, { type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

/** Paths that never reach a log line, wherever they appear in a logged object. */
export const REDACTED_PATHS = [
  'token',
  '*.token',
  'adminToken',
  '*.adminToken',
  'apiToken',
  '*.apiToken',
  'pairingCode',
  '*.pairingCode',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'key',
  '*.key',
  'privateKey',
  '*.privateKey',
];

export interface LoggerFactoryOptions {
  /** pino level: trace, debug, info, warn, error, fatal or silent. Default info. */
  level?: string;
  /** Component name, the root of every child logger's `component` path. */
  name?: string;
  /** Where lines go; default standard output. */
  destination?: pino.DestinationStream;
}

/** The root logger of a program: JSON lines, secrets redacted. */
export function createLogger(options: LoggerFactoryOptions = {}): Logger {
  const config: LoggerOptions = {
    level: options.level ?? 'info',
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: options.name ? { component: options.name } : {},
  };
  return options.destination ? pino(config, options.destination) : pino(config);
}

/** A logger that writes nothing: the default for library use. */
export const silentLogger: Logger = pino({ level: 'silent' });

/** A child logger whose `component` extends the parent's, e.g. `hub:sync:<deviceId>`. */
export function componentLogger(
  parent: Logger,
  component: string,
  bindings: Record<string, unknown> = {},
): Logger {
  const base = (parent.bindings() as { component?: string }).component;
  return parent.child({ ...bindings, component: base ? `${base}:${component}` : component });
}
