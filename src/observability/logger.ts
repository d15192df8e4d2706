import { extname } from 'node:path';
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
  /**
   * `json` (default): one JSON object per line, for services and log collectors.
   * `text`: one readable line per entry, for a person at a terminal.
   */
  format?: 'json' | 'text';
}

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/** Renders one pino JSON line as `12:00:00.123 WARN hub:sync: message key=value ...`. */
export function formatLogLine(line: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { time, level, component, msg, err, ...rest } = entry;
  const at = typeof time === 'number' ? new Date(time).toISOString().slice(11, 23) : '';
  const name = LEVEL_NAMES[level as number] ?? String(level);
  const fields = Object.entries(rest).map(
    ([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`,
  );
  const error = err && typeof err === 'object' ? (err as { message?: string }).message : err;
  return `${[
    at,
    name,
    component ? `${String(component)}:` : '',
    msg,
    ...(error ? [`(${String(error)})`] : []),
    ...fields,
  ]
    .filter((p) => p !== '' && p !== undefined)
    .join(' ')}\n`;
}

/** A destination that writes readable lines to `out` instead of JSON. */
export function textDestination(out: NodeJS.WritableStream = process.stderr): pino.DestinationStream {
  return { write: (line: string) => void out.write(formatLogLine(line)) };
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
  const destination =
    options.format === 'text'
      ? textDestination(options.destination ? asWritable(options.destination) : process.stdout)
      : options.destination;
  const root = destination ? pino(config, destination) : pino(config);
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

function asWritable(d: pino.DestinationStream): NodeJS.WritableStream {
  return { write: (chunk: string) => d.write(chunk) } as unknown as NodeJS.WritableStream;
}

/** Where an agent's log goes (--log-file): a file that rolls over at `size`, `keep` older ones kept. */
export interface LogFileOptions {
  path: string;
  /** Bytes, or with k, m or g (pino-roll's units). */
  size: string;
  keep: number;
}

/**
 * A destination that writes to numbered files beside `path` and starts the next one
 * when one reaches `size`: `hub.log` is written as `hub.1.log`, `hub.2.log`, ...,
 * the highest number the current one; the oldest beyond `keep` are deleted, also
 * those an earlier run left. `flush` writes out what is buffered (call it before exit).
 */
export async function rollingLogFile(
  options: LogFileOptions,
): Promise<{ destination: pino.DestinationStream; flush: () => void }> {
  const { default: build } = await import('pino-roll');
  const ext = extname(options.path);
  const stream = await build({
    file: ext ? options.path.slice(0, -ext.length) : options.path,
    ...(ext && { extension: ext }),
    size: options.size,
    mkdir: true,
    limit: { count: options.keep, removeOtherLogFiles: true },
  });
  // A full or read-only disk must not stop the agent: a write the file refuses is
  // said once on stderr, its lines stay buffered, and the next line written after the
  // disk takes writes again brings them out (an unhandled 'error' would end the process).
  let failing = false;
  stream.on('error', (err: Error) => {
    if (failing) return;
    failing = true;
    process.stderr.write(
      `trosyn-sync: cannot write the log file ${options.path} (${err.message}); its lines are kept in memory until it can be written again\n`,
    );
  });
  stream.on('write', () => {
    failing = false;
  });
  return {
    destination: stream,
    flush: () => {
      try {
        stream.flushSync();
      } catch {
        // Nothing buffered, or the file is gone: nothing more to write.
      }
    },
  };
}
