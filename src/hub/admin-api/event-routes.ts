import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { HttpApiError } from '../../http/errors.js';
import { errorResponses, jsonSchema } from '../../http/schemas.js';
import type { EventStreams } from '../../http/sse.js';
import type { Clock } from '../../lifecycle.js';
import { NotStartedError } from '../../sync/errors.js';
import { parseDeviceId } from '../../transport/device-id.js';
import type { EventLogQuery as LogFilter, LoggedEvent } from '../event-log.js';
import { HUB_EVENT_TYPES, type HubEvent } from '../events.js';
import {
  type EventLogQuery,
  eventLogPage,
  eventLogQuery,
  MAX_EXPORTED_EVENTS,
  metricsHistory,
  metricsQuery,
} from './event-schemas.js';
import type { AdminPort } from './port.js';
import { eventsQuery } from './schemas.js';

/** What the event routes share with the app that serves them. */
export interface EventRoutesOptions {
  streams: EventStreams;
  eventHeartbeatMs: number;
  logger: Logger;
  clock: Clock;
}

/** Events read from the log per query while a stream catches up or an export is written. */
const PAGE = 500;

/**
 * The hub's events: the live stream (resumable from an id), the kept log with
 * filters and paging, its export as JSON or CSV, and the metrics history.
 */
export function eventRoutes(hub: AdminPort, options: EventRoutesOptions): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.get<{ Querystring: { lastEventId?: number } }>(
      '/events',
      {
        schema: {
          tags: ['events'],
          summary:
            'Hub events as Server-Sent Events: `event: <type>`, `id: <id>` for kept events, `data: <HubEvent JSON>`; resumes after `Last-Event-ID`',
          querystring: jsonSchema(eventsQuery),
          response: {
            200: {
              description: 'an endless text/event-stream; a `: heartbeat` comment every 15 s',
              content: { 'text/event-stream': { schema: { type: 'string' } } },
            },
            ...errorResponses(400, 401, 429, 503),
          },
        },
      },
      async (request, reply) => {
        // Refused before the stream opens, while an error response can still be sent.
        if (!hub.isStarted()) throw new NotStartedError('the hub');
        const from = resumePoint(request);
        const log = hub.eventLog;
        // Subscribed before the backlog is read: an event written meanwhile is held
        // back, then sent unless the backlog had it (ids say which), so none is lost
        // or sent twice.
        let held: LoggedEvent[] | undefined = from === undefined ? undefined : [];
        let sentUpTo = from ?? 0;
        let unsubscribe: () => void = () => undefined;
        const stream = options.streams.start(
          reply,
          { heartbeatMs: options.eventHeartbeatMs, logger: options.logger },
          () => unsubscribe(),
        );
        const send = (logged: LoggedEvent) => {
          if (logged.id !== undefined) {
            if (logged.id <= sentUpTo) return;
            sentUpTo = logged.id;
          }
          stream.send(logged.event.type, logged.event, logged.id);
        };
        unsubscribe = log.subscribe((logged) => (held ? held.push(logged) : send(logged)));
        if (from === undefined) return;
        try {
          const { oldest, latest } = await log.bounds();
          const unknown = from > latest;
          const pruned = oldest === undefined ? latest > from : oldest > from + 1;
          if (unknown || pruned)
            stream.send('history-truncated', {
              type: 'history-truncated',
              at: options.clock.now(),
              reason: unknown ? 'unknown-id' : 'pruned',
              lastEventId: from,
              oldestId: oldest ?? null,
              latestId: latest,
            });
          // An id this log never gave (another hub's, or a registry restored from an
          // older copy): carry on from the latest, so new events are not taken for seen ones.
          sentUpTo = Math.min(from, latest);
          for (let page = await log.after(sentUpTo, PAGE); !stream.closed;) {
            for (const logged of page) send(logged);
            if (page.length < PAGE) break;
            page = await log.after(sentUpTo, PAGE);
          }
        } catch (err) {
          options.logger.warn({ err }, 'could not read the event log for a resuming stream');
          stream.close();
          return;
        }
        const backlog = held ?? [];
        held = undefined;
        for (const logged of backlog) send(logged);
      },
    );

    app.get<{ Querystring: EventLogQuery }>(
      '/events/log',
      {
        schema: {
          tags: ['events'],
          summary:
            'Kept hub events, newest first, by device, type and time, in pages; `format=json` or `csv` downloads every match',
          querystring: jsonSchema(eventLogQuery),
          response: {
            200: {
              description:
                'a page (JSON); with `format`, an attachment: a JSON array of events, or CSV with a header row',
              content: {
                'application/json': { schema: jsonSchema(eventLogPage) },
                'text/csv': { schema: { type: 'string' } },
              },
            },
            ...errorResponses(400, 401, 429, 503),
          },
        },
      },
      async (request, reply) => {
        const query = request.query;
        const filter = logFilter(query);
        const log = hub.eventLog;
        if (query.format === undefined) {
          const events = await log.list({ ...filter, limit: query.limit + 1 });
          const page = events.slice(0, query.limit);
          const { latest } = await log.bounds();
          return {
            events: page.map(flatten),
            next: events.length > query.limit ? (page[page.length - 1]?.id ?? null) : null,
            latestId: latest,
            retentionDays: log.retentionDays,
          };
        }
        const names = new Map((await hub.listDevices()).map((d) => [d.deviceId as string, d.name]));
        const stamp = new Date(options.clock.now()).toISOString().replace(/[:.]/g, '-');
        const csv = query.format === 'csv';
        const rows = exportRows(log, filter, (logged) =>
          csv ? csvRow(logged, names) : JSON.stringify(flatten(logged)),
        );
        return reply
          .header('content-type', csv ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8')
          .header('content-disposition', `attachment; filename="trosyn-events-${stamp}.${query.format}"`)
          .header('cache-control', 'no-store')
          .send(Readable.from(csv ? csvFile(rows) : jsonFile(rows)));
      },
    );

    app.get<{ Querystring: { window: '1h' | '24h' } }>(
      '/metrics/history',
      {
        schema: {
          tags: ['status'],
          summary:
            'Changes and bytes per second with the children, and devices connected: the last hour by 10 s, or the last day by minute',
          querystring: jsonSchema(metricsQuery),
          response: { 200: jsonSchema(metricsHistory), ...errorResponses(400, 401, 429, 503) },
        },
      },
      async (request) => hub.metricsHistory(request.query.window),
    );
  };
}

/** The id to resume after: the `Last-Event-ID` header (what EventSource sends on reconnect), else `?lastEventId=`. */
function resumePoint(request: FastifyRequest<{ Querystring: { lastEventId?: number } }>): number | undefined {
  const header = request.headers['last-event-id'];
  if (typeof header === 'string' && header.trim() !== '') {
    if (!/^\d{1,15}$/.test(header.trim()))
      throw new HttpApiError('INVALID_REQUEST', 'Last-Event-ID must be the id of an event this stream sent', {
        issues: [{ path: 'headers.last-event-id', message: 'expected a non-negative integer' }],
      });
    return Number(header.trim());
  }
  return request.query.lastEventId;
}

/** The log's filters from the query; an unknown type or a malformed device is a 400. */
function logFilter(query: EventLogQuery): Omit<LogFilter, 'limit'> {
  const types = query.type?.split(',').map((t) => t.trim());
  const unknown = types?.filter((t) => !(HUB_EVENT_TYPES as readonly string[]).includes(t));
  if (unknown && unknown.length > 0)
    throw new HttpApiError(
      'INVALID_REQUEST',
      `no event type ${unknown.map((t) => JSON.stringify(t)).join(', ')}`,
      {
        issues: [{ path: 'querystring.type', message: `expected types among ${HUB_EVENT_TYPES.join(', ')}` }],
      },
    );
  if (query.since !== undefined && query.until !== undefined && query.since >= query.until)
    throw new HttpApiError('INVALID_REQUEST', '"since" must be before "until"', {
      issues: [{ path: 'querystring.since', message: 'must be less than until' }],
    });
  return {
    ...(query.device !== undefined && { deviceId: parseDeviceId(query.device) }),
    ...(types && { types }),
    ...(query.since !== undefined && { since: query.since }),
    ...(query.until !== undefined && { until: query.until }),
    ...(query.before !== undefined && { beforeId: query.before }),
  };
}

/** A kept event as the log's JSON shows it: its id beside the event (which may have an `id` of its own). */
function flatten(logged: Required<LoggedEvent>): { id: number; event: HubEvent } {
  return { id: logged.id, event: logged.event };
}

/** Every matching event, newest first, at most MAX_EXPORTED_EVENTS, read a page at a time. */
async function* exportRows(
  log: AdminPort['eventLog'],
  filter: Omit<LogFilter, 'limit'>,
  row: (logged: Required<LoggedEvent>) => string,
): AsyncGenerator<string> {
  let before = filter.beforeId;
  for (let left = MAX_EXPORTED_EVENTS; left > 0;) {
    const page = await log.list({
      ...filter,
      ...(before !== undefined && { beforeId: before }),
      limit: Math.min(PAGE, left),
    });
    for (const logged of page) yield row(logged);
    left -= page.length;
    if (page.length < PAGE) return;
    before = page[page.length - 1]?.id;
  }
}

async function* jsonFile(rows: AsyncGenerator<string>): AsyncGenerator<string> {
  yield '[';
  let first = true;
  for await (const row of rows) {
    yield `${first ? '\n' : ',\n'}${row}`;
    first = false;
  }
  yield '\n]\n';
}

const CSV_COLUMNS = ['id', 'time', 'type', 'device_id', 'device_name', 'code', 'message', 'details'];

async function* csvFile(rows: AsyncGenerator<string>): AsyncGenerator<string> {
  yield `${CSV_COLUMNS.join(',')}\r\n`;
  for await (const row of rows) yield `${row}\r\n`;
}

/** One CSV line (RFC 4180): the fields people filter on, and the rest of the event as JSON. */
function csvRow(logged: Required<LoggedEvent>, names: Map<string, string>): string {
  const e = logged.event as HubEvent & Record<string, unknown>;
  const deviceId =
    typeof e['deviceId'] === 'string'
      ? e['deviceId']
      : ((e['session'] as { deviceId?: string } | undefined)?.deviceId ?? '');
  const { type, at, code, message, deviceId: _d, name, ...rest } = e;
  const deviceName = names.get(deviceId) ?? (typeof name === 'string' ? name : '');
  return [
    String(logged.id),
    new Date(at).toISOString(),
    type,
    deviceId,
    deviceName,
    typeof code === 'string' ? code : '',
    typeof message === 'string' ? message : '',
    Object.keys(rest).length > 0 ? JSON.stringify(rest) : '',
  ]
    .map(csvField)
    .join(',');
}

/**
 * A CSV field: quoted when it holds a comma, quote or line break; text a
 * spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) gets a leading `'`.
 */
function csvField(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
