import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { JsonObject } from '../store/types.js';
import { commonAncestor } from '../sync/ancestry.js';
import { ConflictNotFoundError, RecordNotFoundError } from '../sync/errors.js';
import type { Replica } from '../sync/replica.js';
import { HttpApiError } from './errors.js';
import {
  collectionParams,
  collections,
  conflictDetail,
  type ConflictParams,
  conflictParams,
  conflictQuery,
  type ConflictQuery,
  conflicts,
  errorResponses,
  history,
  jsonSchema,
  pageQuery,
  type PageQuery,
  type RecordParams,
  recordParams,
  recordsPage,
  recordView,
  resolveBody,
  type ResolveBody,
  writeResult,
} from './schemas.js';

/** What the read routes need of a replica: reads, history, conflicts and resolve. */
export type ReplicaReader = Pick<
  Replica,
  'collections' | 'list' | 'get' | 'history' | 'conflicts' | 'resolve'
>;

/**
 * Routes that read a replica and settle its conflicts, the same on the hub's admin
 * API and the child's local API: collections, records by page, one record, its
 * history, conflicts and their resolution. `replica` is asked on every request,
 * so a replica that is not started yet answers 503 NOT_STARTED.
 */
export function replicaReadRoutes(replica: () => ReplicaReader): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.get(
      '/collections',
      {
        schema: {
          tags: ['records'],
          summary: 'Collections that hold at least one record',
          response: { 200: jsonSchema(collections), ...errorResponses(401, 503) },
        },
      },
      async () => ({ collections: await replica().collections() }),
    );

    app.get<{ Params: { collection: string }; Querystring: PageQuery }>(
      '/records/:collection',
      {
        schema: {
          tags: ['records'],
          summary: 'Records of a collection in id order, one page at a time',
          params: jsonSchema(collectionParams),
          querystring: jsonSchema(pageQuery),
          response: { 200: jsonSchema(recordsPage), ...errorResponses(400, 401, 503) },
        },
      },
      async (request) => {
        const { after, limit } = request.query;
        // One more than asked tells whether another page follows, without an empty last page.
        const rows = await replica().list(request.params.collection, {
          ...(after && { after }),
          limit: limit + 1,
        });
        const records = rows.slice(0, limit);
        const last = records[records.length - 1];
        return { records, next: rows.length > limit && last ? last.id : null };
      },
    );

    app.get<{ Params: RecordParams }>(
      '/records/:collection/:id',
      {
        schema: {
          tags: ['records'],
          summary: 'One record (deleted records are not found)',
          params: jsonSchema(recordParams),
          response: { 200: jsonSchema(recordView), ...errorResponses(401, 404, 503) },
        },
      },
      async (request) => {
        const { collection, id } = request.params;
        const record = await replica().get(collection, id);
        if (!record) throw new RecordNotFoundError(collection, id);
        return record;
      },
    );

    app.get<{ Params: RecordParams }>(
      '/records/:collection/:id/history',
      {
        schema: {
          tags: ['records'],
          summary: "Every known revision of a record, oldest first (deleted records' too)",
          params: jsonSchema(recordParams),
          response: { 200: jsonSchema(history), ...errorResponses(401, 404, 503) },
        },
      },
      async (request) => {
        const { collection, id } = request.params;
        const entries = await replica().history(collection, id);
        if (entries.length === 0) throw new RecordNotFoundError(collection, id);
        return { history: entries };
      },
    );

    app.get<{ Querystring: ConflictQuery }>(
      '/conflicts',
      {
        schema: {
          tags: ['conflicts'],
          summary: 'Conflicts: open (waiting for a person), auto (settled by the strategy) and resolved',
          querystring: jsonSchema(conflictQuery),
          response: { 200: jsonSchema(conflicts), ...errorResponses(400, 401, 503) },
        },
      },
      async (request) => {
        const { status, collection } = request.query;
        return {
          conflicts: await replica().conflicts({
            ...(status && { status }),
            ...(collection && { collection }),
          }),
        };
      },
    );

    app.get<{ Params: ConflictParams }>(
      '/conflicts/:conflictId',
      {
        schema: {
          tags: ['conflicts'],
          summary:
            'One conflict with the revisions to compare: each side, their common ancestor and the resolution',
          params: jsonSchema(conflictParams),
          response: { 200: jsonSchema(conflictDetail), ...errorResponses(400, 401, 404, 503) },
        },
      },
      async (request) => {
        const { conflictId } = request.params;
        const all = await replica().conflicts();
        const conflict = all.find((c) => c.conflictId === conflictId);
        if (!conflict) throw new ConflictNotFoundError(conflictId);
        const entries = await replica().history(conflict.collection, conflict.id);
        const byRev = new Map(entries.map((e) => [e.rev as string, e]));
        const ancestor = commonAncestor(entries, conflict.heads);
        return {
          conflict,
          // A side the history lacks cannot happen in one store; left out rather than invented.
          sides: conflict.heads.flatMap((h) => byRev.get(h) ?? []),
          ancestor: (ancestor !== undefined && byRev.get(ancestor)) || null,
          resolution: (conflict.resolvedBy !== null && byRev.get(conflict.resolvedBy)) || null,
        };
      },
    );

    app.post<{ Params: RecordParams; Body: ResolveBody }>(
      '/conflicts/:collection/:id/resolve',
      {
        schema: {
          tags: ['conflicts'],
          summary:
            "Settles a conflict with one head's content ({rev}) or a new body ({body}); the write syncs",
          params: jsonSchema(recordParams),
          body: jsonSchema(resolveBody),
          response: { 200: jsonSchema(writeResult), ...errorResponses(400, 401, 404, 409, 503) },
        },
      },
      async (request) => {
        const { collection, id } = request.params;
        const { rev, body } = request.body;
        if ((rev === undefined) === (body === undefined)) {
          throw new HttpApiError(
            'INVALID_REQUEST',
            'send exactly one of "rev" (keep that head) or "body" (a new body)',
          );
        }
        return replica().resolve(
          collection,
          id,
          rev !== undefined ? { rev } : { body: (body ?? null) as JsonObject | null },
        );
      },
    );
  };
}
