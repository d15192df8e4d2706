/**
 * Schemas shared by the hub's admin API and the child's local API. Each is written
 * once in zod and turned into JSON Schema for the routes, which both validate
 * requests and generate the OpenAPI documents; the tests parse responses with
 * the same zod schemas, so the documents cannot drift from what is sent.
 */
import { z } from 'zod';

/** A zod schema as the JSON Schema (draft-07) that fastify validates with and OpenAPI shows. */
export function jsonSchema(schema: z.ZodType, description?: string): Record<string, unknown> {
  // 'input' leaves objects open (no additionalProperties: false): new fields in a
  // response are not a breaking change, and unknown request fields are ignored.
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { target: 'draft-7', io: 'input' }) as Record<
    string,
    unknown
  >;
  return description === undefined ? rest : { ...rest, description };
}

const ms = z.number().int().describe('milliseconds since 1970-01-01 UTC');
const hex64 = z.string().regex(/^[0-9a-f]{64}$/);

/** The body of every error response. */
export const errorBody = z
  .object({
    code: z.string().describe('stable error code, listed in docs/ERRORS.md'),
    message: z.string(),
    details: z.record(z.string(), z.unknown()).optional(),
  })
  .describe('every error response');

/** A JSON object: a record body. */
export const recordBody = z.record(z.string(), z.unknown()).describe('a record body: any JSON object');

/** Path parameters naming a collection. */
export const collectionParams = z.object({ collection: z.string().min(1).max(64) });
/** Path parameters naming a record. */
export const recordParams = z.object({
  collection: z.string().min(1).max(64),
  id: z.string().min(1).max(256).describe('record id (URL-encode it)'),
});

/** A record's current state. */
export const recordView = z.object({
  collection: z.string(),
  id: z.string(),
  rev: hex64.describe('the current revision'),
  deleted: z.boolean(),
  body: recordBody.nullable(),
  hlc: z.string(),
  conflict: z.enum(['none', 'open', 'auto']),
  seq: z.number().int(),
});

/** Paging of a record list: `after` the previous page's `next`, `limit` per page. */
export const pageQuery = z.object({
  after: z.string().min(1).max(256).optional().describe('the `next` value of the previous page'),
  limit: z.number().int().min(1).max(1000).default(100),
});

/** One page of records and the cursor of the next. */
export const recordsPage = z.object({
  records: z.array(recordView),
  next: z.string().nullable().describe('pass as `after` for the next page; null on the last page'),
});

/** What a write answers: the new revision and the record's state after it. */
export const writeResult = z.object({
  collection: z.string(),
  id: z.string(),
  rev: hex64,
  seq: z.number().int(),
  record: recordView,
});

/** One revision in a record's history. */
/** A revision refused by the hub or by a device, and why. */
export const refusedRevision = z.object({
  rev: z.string(),
  collection: z.string(),
  id: z.string(),
  code: z.string().describe('why, e.g. SCOPE_WRITE_DENIED'),
  message: z.string(),
});

export const historyEntry = z.object({
  rev: hex64,
  author: hex64.describe('device ID of the writer'),
  hlc: z.string(),
  time: ms,
  bodyHash: z.string(),
  deleted: z.boolean(),
  body: recordBody.nullable(),
  pruned: z.boolean(),
  parents: z.array(hex64),
  head: z.boolean(),
  current: z.boolean(),
  seq: z.number().int(),
});

/** A record's history. */
export const history = z.object({ history: z.array(historyEntry).describe('oldest first') });

/** Filters of the conflict list. */
export const conflictQuery = z.object({
  status: z.enum(['open', 'auto', 'resolved']).optional(),
  collection: z.string().min(1).max(64).optional(),
});

/** A recorded conflict. */
export const conflict = z.object({
  conflictId: z.number().int(),
  collection: z.string(),
  id: z.string(),
  status: z.enum(['open', 'auto', 'resolved']),
  strategy: z.string(),
  heads: z.array(hex64),
  winner: hex64,
  openedAt: ms,
  updatedAt: ms,
  resolvedAt: ms.nullable(),
  resolvedBy: hex64.nullable(),
});

/** The conflict list. */
export const conflicts = z.object({ conflicts: z.array(conflict) });

/** Path parameter naming a conflict entry. */
export const conflictParams = z.object({
  conflictId: z.number().int().min(1).describe('the `conflictId` from the conflict list'),
});

/** A conflict with the revisions a person compares to settle it. */
export const conflictDetail = z.object({
  conflict,
  sides: z
    .array(historyEntry)
    .describe("the competing versions: the conflict's heads, in the order of `conflict.heads`"),
  ancestor: historyEntry
    .nullable()
    .describe(
      'the latest revision every side descends from: what a side changed is what differs from it; null when the sides share none (the record was created on two devices)',
    ),
  resolution: historyEntry
    .nullable()
    .describe('the revision that settled the conflict (`conflict.resolvedBy`), once resolved'),
});

/** How to settle a conflict. */
export const resolveBody = z
  .union([
    z.object({ rev: z.string().min(4).max(64).describe('keep this head (a unique prefix is enough)') }),
    z.object({ body: recordBody.nullable().describe('write this body instead (null deletes)') }),
  ])
  .describe('exactly one of `rev` or `body`');

/** Which revision to restore. */
export const revertBody = z.object({
  rev: z.string().min(4).max(64).describe('the revision to restore (a unique prefix is enough)'),
});

/** The collection list. */
export const collections = z.object({ collections: z.array(z.string()) });

// --- files ---------------------------------------------------------------------------------

const filesCollection = z
  .string()
  .min(1)
  .max(64)
  .optional()
  .describe('the files collection; default `files`');

/** Path parameter naming a file. */
export const fileParams = z.object({
  name: z
    .string()
    .min(1)
    .describe('the file name, 1-255 characters, `/` between folders (URL-encode it: `a%2Fb.pdf`)'),
});

/** Query naming a files collection. */
export const filesQuery = z.object({ collection: filesCollection });

/** Query of a download: the collection, and an older version by its revision. */
export const fileContentQuery = z.object({
  collection: filesCollection,
  rev: z
    .string()
    .min(4)
    .max(64)
    .optional()
    .describe('an older version (a unique prefix of its revision is enough); default the current one'),
});

/** What a file version is, without where its chunks are. */
const fileInfo = z.object({
  name: z.string(),
  size: z.number().int().describe('bytes'),
  type: z.string().describe('media type'),
  modifiedAt: ms,
  sha256: hex64.describe("SHA-256 of the whole content: the download's ETag"),
  chunkCount: z.number().int(),
  here: z.boolean().describe('all of its content is on this node, so a download can start now'),
});

/** One file version as listed, uploaded or reverted to. */
export const fileView = fileInfo.extend({
  collection: z.string(),
  rev: hex64.describe('the revision of the record that is this version'),
});

/** The files of a collection. */
export const fileList = z.object({ files: z.array(fileView).describe('current versions, in name order') });

/** One version in a file's history. */
export const fileHistoryEntry = z.object({
  rev: hex64,
  author: hex64.describe('device ID of the writer'),
  hlc: z.string(),
  time: ms,
  deleted: z.boolean(),
  pruned: z.boolean(),
  parents: z.array(hex64),
  head: z.boolean(),
  current: z.boolean(),
  seq: z.number().int(),
  file: fileInfo.nullable().describe('the version; null for a deletion or a pruned revision'),
});

/** A file's history. */
export const fileHistory = z.object({ history: z.array(fileHistoryEntry).describe('oldest first') });

/** One file version whose content is arriving. */
export const fileProgress = z.object({
  collection: z.string(),
  name: z.string(),
  rev: z.string(),
  bytesHere: z.number().int(),
  bytesTotal: z.number().int(),
});

/** Where the content of a node's file versions stands. */
export const contentProgress = z
  .object({
    pending: z.number().int().describe('versions whose content is not all here yet'),
    bytesHere: z.number().int(),
    bytesTotal: z.number().int(),
    busy: z.boolean().describe('a fetch is under way'),
    files: z.array(fileProgress).describe('the first 20 of those versions, each with its bytes'),
    error: z
      .object({ code: z.string(), message: z.string() })
      .optional()
      .describe('why the last fetch stopped early (e.g. CHUNK_STORE_FULL), until one goes through'),
  })
  .describe('file versions whose content is still arriving, and its bytes here and in all');

/** Parsed file path parameter. */
export type FileParams = z.infer<typeof fileParams>;
/** Parsed files collection query. */
export type FilesQuery = z.infer<typeof filesQuery>;
/** Parsed download query. */
export type FileContentQuery = z.infer<typeof fileContentQuery>;

/** Parsed paging query (ajv has applied the default limit). */
export type PageQuery = z.infer<typeof pageQuery>;
/** Parsed record path parameters. */
export type RecordParams = z.infer<typeof recordParams>;
/** Parsed conflict filters. */
export type ConflictQuery = z.infer<typeof conflictQuery>;
/** Parsed conflict path parameter. */
export type ConflictParams = z.infer<typeof conflictParams>;
/** A resolve request as validated: one of `rev` or `body` (the handler checks it is exactly one). */
export type ResolveBody = { rev?: string; body?: Record<string, unknown> | null };

/** Standard error responses to list on a route (documentation; errors are sent by the error handler). */
export function errorResponses(...statuses: number[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of statuses) out[String(s)] = jsonSchema(errorBody, ERROR_TEXT[s] ?? 'error');
  return out;
}

const ERROR_TEXT: Record<number, string> = {
  400: 'invalid request (INVALID_REQUEST or an engine validation code)',
  401: 'missing or wrong token (UNAUTHORIZED)',
  404: 'not found',
  409: 'the target is not in a state that allows this',
  410: 'the revision was pruned (REVISION_PRUNED)',
  413: 'too large',
  415: 'unsupported body (UNSUPPORTED_MEDIA_TYPE)',
  416: 'the range is outside the file (RANGE_NOT_SATISFIABLE)',
  429: 'too many wrong tokens (RATE_LIMITED)',
  500: 'INTERNAL_ERROR, e.g. file content found damaged here (the log has the code)',
  503: 'not started yet or stopping (NOT_STARTED), or something it needs is unavailable now',
};
