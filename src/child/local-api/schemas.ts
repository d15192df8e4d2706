/** Request and response schemas of the child's local API (zod; see src/http/schemas.ts). */
import { z } from 'zod';
import { contentProgress, recordBody, refusedRevision } from '../../http/schemas.js';

const deviceIdHex = z.string().regex(/^[0-9a-f]{64}$/);

/** The child's sync status, as the app shows it. */
export const syncStatus = z.object({
  state: z.enum(['synced', 'syncing', 'offline', 'paused', 'error']).describe('what the app shows the user'),
  connection: z
    .object({ state: z.string(), attempts: z.number().int() })
    .describe('the connection to the hub: state, attempts, address, last error, next attempt'),
  hubId: deviceIdHex,
  deviceId: deviceIdHex,
  pending: z.number().int().describe('local changes the hub has not acknowledged yet'),
  refused: z
    .array(refusedRevision)
    .describe('the latest writes of this device the hub refused, newest last; they stay on this device'),
  files: contentProgress,
  session: z.record(z.string(), z.unknown()).optional().describe('counters of the live sync session'),
  hubClock: z
    .object({
      offsetMs: z
        .number()
        .int()
        .describe("the hub's clock minus this device's (ms): positive when the hub's clock is ahead"),
      rttMs: z
        .number()
        .int()
        .describe('the round trip of the measurement (ms); the offset is within half of it'),
      at: z.number().int().describe('when it was measured (ms since 1970-01-01 UTC, this device)'),
    })
    .optional()
    .describe("the hub's clock against this device's, as last measured; absent before the first connection"),
  clockWarning: z
    .string()
    .optional()
    .describe(
      "present while the hub's clock is a minute or more off this device's: what it means and what to do",
    ),
});

/** One change of a record's current state, as the change stream sends it. */
export const changeEvent = z.object({
  collection: z.string(),
  id: z.string(),
  rev: deviceIdHex,
  seq: z.number().int(),
  deleted: z.boolean(),
  body: recordBody.nullable(),
  conflict: z.enum(['none', 'open', 'auto']),
  origin: z.string().describe("'local' for writes made on this device, else the hub's device ID"),
});

/** Query of the change stream. */
export const changesQuery = z.object({
  collection: z.string().min(1).max(64).optional().describe('only changes of this collection'),
  token: z
    .string()
    .optional()
    .describe('the API token, for browsers whose EventSource cannot set headers; prefer the header'),
});

/** Parsed change stream query. */
export type ChangesQuery = z.infer<typeof changesQuery>;

/** Headers of a file upload. */
export const uploadHeaders = z.object({
  'content-type': z
    .string()
    .max(255)
    .optional()
    .describe(
      "the file's media type; left out, `application/octet-stream` or `application/x-www-form-urlencoded`, it is guessed from the name",
    ),
  'x-modified-at': z
    .number()
    .int()
    .nonnegative()
    .optional()
    .describe("the file's modification time, in ms since 1970-01-01 UTC; default now"),
});

/** Parsed upload headers (ajv has made `x-modified-at` a number). */
export type UploadHeaders = z.infer<typeof uploadHeaders>;
