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

/** Each component logger's root and path, so that nested components do not repeat keys. */
const lineage = new WeakMap<Logger, { root: Logger; path: string | undefined }>();

/** The root logger of a program: JSON lines, secrets redacted, `component` set to `name`. */
export function createLogger(options: LoggerFactoryOptions = {}): Logger {
  const config: LoggerOptions = {
    level: options.level ?? 'info',
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: {},
  };
  const root = options.destination ? pino(config, options.destination) : pino(config);
  if (!options.name) return root;
  const named = root.child({ component: options.name });
  lineage.set(named, { root, path: options.name });
  return named;
}

/** A logger that writes nothing: the default for library use. */
export const silentLogger: Logger = pino({ level: 'silent' });

/**
 * A child logger whose `component` extends the parent's, e.g. `hub:sync:<deviceId>`.
 * It is made from the root logger with the parent's other bindings, because pino
 * would otherwise write a second `component` key instead of replacing the first.
 */
export function componentLogger(
  parent: Logger,
  component: string,
  bindings: Record<string, unknown> = {},
): Logger {
  const known = lineage.get(parent);
  const inherited = { ...(parent.bindings() as Record<string, unknown>) };
  const path = known ? known.path : (inherited.component as string | undefined);
  delete inherited.component;
  const root = known?.root ?? parent;
  const full = path ? `${path}:${component}` : component;
  const child = (known ? root : parent).child({ ...(known ? inherited : {}), ...bindings, component: full });
  lineage.set(child, { root, path: full });
  return child;
}
