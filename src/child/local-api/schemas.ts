/** Request and response schemas of the child's local API (zod; see src/http/schemas.ts). */
import { z } from 'zod';
import { recordBody } from '../../http/schemas.js';

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
  files: z
    .object({
      pending: z.number().int(),
      bytesHere: z.number().int(),
      bytesTotal: z.number().int(),
      busy: z.boolean(),
    })
    .describe('file versions whose content is still arriving, and its bytes here and in all'),
  session: z.record(z.string(), z.unknown()).optional().describe('counters of the live sync session'),
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
