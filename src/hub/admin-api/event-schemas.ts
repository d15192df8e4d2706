/** Schemas of the admin API's event log and metrics routes (zod; see src/http/schemas.ts). */
import { z } from 'zod';
import { HUB_EVENT_TYPES } from '../events.js';

const ms = z.number().int().min(0).describe('milliseconds since 1970-01-01 UTC');

/** Most events one export holds: the newest that match. */
export const MAX_EXPORTED_EVENTS = 100_000;

/** Filters and paging of the event log, or its export. */
export const eventLogQuery = z.object({
  device: z
    .string()
    .min(1)
    .max(128)
    .optional()
    .describe('only events about this device: 64 hex characters or the readable form'),
  type: z
    .string()
    .min(1)
    .max(1000)
    .optional()
    .describe(`only events of these types, comma-separated: ${HUB_EVENT_TYPES.join(', ')}`),
  since: ms.optional().describe('only events at or after this time (ms)'),
  until: ms.optional().describe('only events before this time (ms)'),
  before: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe('only events with a lower id: the `next` of the previous page'),
  limit: z
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(100)
    .describe('events per page (an export ignores it and holds every match, at most 100 000)'),
  format: z
    .enum(['json', 'csv'])
    .optional()
    .describe('download every matching event as a file (`Content-Disposition: attachment`), newest first'),
});
export type EventLogQuery = z.infer<typeof eventLogQuery>;

/** A kept event: its id, and the event as the stream sends it. */
export const loggedEvent = z.object({
  id: z.number().int().describe('increasing; the `id:` the event stream sent it with'),
  event: z
    .looseObject({ type: z.string(), at: ms })
    .describe('the HubEvent, as the event stream sends it in `data`'),
});

/** One page of the event log, newest first. */
export const eventLogPage = z.object({
  events: z.array(loggedEvent),
  next: z
    .number()
    .int()
    .nullable()
    .describe('pass as `before` for the next (older) page; null on the last page'),
  latestId: z
    .number()
    .int()
    .describe('the latest id the log has given (0 before any): where a new event stream can resume from'),
  retentionDays: z.number().describe('days events are kept'),
});

/** Query of the metrics history. */
export const metricsQuery = z.object({
  window: z
    .enum(['1h', '24h'])
    .default('1h')
    .describe('the last hour (a sample every 10 s) or day (every minute)'),
});

/** A window of the hub's throughput and connected devices. */
export const metricsHistory = z.object({
  window: z.enum(['1h', '24h']),
  stepMs: z.number().int().describe('milliseconds between samples'),
  samples: z
    .array(
      z.object({
        at: ms.describe('end of the step'),
        changesIn: z.number().describe('revisions received from children and applied, per second'),
        changesOut: z.number().describe('revisions sent to children, per second'),
        bytesIn: z.number().describe('bytes received from children on the wire, per second'),
        bytesOut: z.number().describe('bytes sent to children on the wire, per second'),
        connected: z.number().int().describe('devices connected at `at`'),
      }),
    )
    .describe('oldest first; kept in memory since the hub started'),
});
