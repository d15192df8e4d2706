import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import { HttpApiError } from '../../http/errors.js';
import {
  collectionParams,
  errorResponses,
  jsonSchema,
  recordBody,
  type RecordParams,
  recordParams,
  revertBody,
  writeResult,
} from '../../http/schemas.js';
import type { EventStreams } from '../../http/sse.js';
import type { JsonObject } from '../../store/types.js';
import { NotStartedError, RecordNotFoundError } from '../../sync/errors.js';
import type { ChangeEvent } from '../../sync/replica.js';
import type { LocalPort } from './port.js';
import { changesQuery, type ChangesQuery, syncStatus } from './schemas.js';

/** What the local routes share with the app that serves them. */
export interface LocalRoutesOptions {
  streams: EventStreams;
  eventHeartbeatMs: number;
  logger: Logger;
}

/**
 * The child-specific local routes: record writes, revert, the change stream and
 * sync control. Reads and conflicts are the shared replica routes; files are in
 * file-routes.ts and src/http/file-routes.ts.
 */
export function localRoutes(child: LocalPort, options: LocalRoutesOptions): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    // --- records ------------------------------------------------------------------------

    app.put<{ Params: RecordParams; Body: JsonObject }>(
      '/records/:collection/:id',
      {
        schema: {
          tags: ['records'],
          summary: 'Creates or replaces a record; the write syncs to the hub',
          params: jsonSchema(recordParams),
          body: jsonSchema(recordBody),
          response: { 200: jsonSchema(writeResult), ...errorResponses(400, 401, 413, 503) },
        },
      },
      async (request) => {
        return child.records().put(request.params.collection, request.params.id, request.body);
      },
    );

    app.post<{ Params: { collection: string }; Body: JsonObject }>(
      '/records/:collection',
      {
        schema: {
          tags: ['records'],
          summary: 'Creates a record with a new ULID id',
          params: jsonSchema(collectionParams),
          body: jsonSchema(recordBody),
          response: { 201: jsonSchema(writeResult), ...errorResponses(400, 401, 413, 503) },
        },
      },
      async (request, reply) => {
        return reply.code(201).send(await child.records().create(request.params.collection, request.body));
      },
    );

    app.delete<{ Params: RecordParams }>(
      '/records/:collection/:id',
      {
        schema: {
          tags: ['records'],
          summary:
            'Deletes a record (a tombstone, which syncs like any write; history keeps the old revisions)',
          params: jsonSchema(recordParams),
          response: { 200: jsonSchema(writeResult), ...errorResponses(400, 401, 404, 503) },
        },
      },
      async (request) => {
        const { collection, id } = request.params;
        // Deleting what is not there would write a tombstone for nothing and hide a mistaken id.
        if (!(await child.records().get(collection, id))) throw new RecordNotFoundError(collection, id);
        return child.records().delete(collection, id);
      },
    );

    app.post<{ Params: RecordParams; Body: { rev: string } }>(
      '/records/:collection/:id/revert',
      {
        schema: {
          tags: ['records'],
          summary: "Writes an old revision's content as a new revision (a tombstone deletes)",
          params: jsonSchema(recordParams),
          body: jsonSchema(revertBody),
          response: { 200: jsonSchema(writeResult), ...errorResponses(400, 401, 404, 410, 503) },
        },
      },
      async (request) =>
        child.records().revert(request.params.collection, request.params.id, request.body.rev),
    );

    // --- change stream ------------------------------------------------------------------------

    app.get<{ Querystring: ChangesQuery }>(
      '/changes',
      {
        config: { queryToken: true },
        schema: {
          tags: ['records'],
          summary:
            'Live record changes (local writes and those from the hub) as Server-Sent Events: `event: change`, `id: <seq>`, `data: <ChangeEvent JSON>`; without `collection`, also `event: files-progress`, `data: <the files object of the status, JSON>` as file content arrives (at most every 250 ms while chunks arrive)',
          querystring: jsonSchema(changesQuery),
          response: {
            200: {
              description: 'an endless text/event-stream; a `: heartbeat` comment every 15 s',
              content: { 'text/event-stream': { schema: { type: 'string' } } },
            },
            ...errorResponses(401, 429, 503),
          },
        },
      },
      async (request, reply) => {
        // Refused before the stream opens, while an error response can still be sent.
        if (!child.isStarted()) throw new NotStartedError('the child agent');
        const only = request.query.collection;
        const unsubscribe: Array<() => void> = [];
        const stream = options.streams.start(
          reply,
          { heartbeatMs: options.eventHeartbeatMs, logger: options.logger },
          () => {
            for (const off of unsubscribe) off();
          },
        );
        unsubscribe.push(
          child.records().subscribe((change: ChangeEvent) => {
            if (only === undefined || change.collection === only) stream.send('change', change, change.seq);
          }),
        );
        // A stream of one collection is that collection's changes; progress is the whole node's.
        if (only === undefined) {
          unsubscribe.push(child.watchFiles((progress) => stream.send('files-progress', progress)));
        }
      },
    );

    // --- sync control ---------------------------------------------------------------------------

    const statusResponse = { 200: jsonSchema(syncStatus), ...errorResponses(401, 503) };

    app.get(
      '/status',
      {
        schema: {
          tags: ['sync'],
          summary:
            'Sync state for the app to show (synced, syncing, offline, paused, error) and the outbox size',
          response: statusResponse,
        },
      },
      async () => child.status(),
    );

    app.post(
      '/sync/now',
      {
        schema: {
          tags: ['sync'],
          summary:
            'Tries to reach the hub now instead of waiting out the retry delay; 409 SYNC_PAUSED while paused',
          response: { 202: jsonSchema(syncStatus), ...errorResponses(401, 409, 503) },
        },
      },
      async (_request, reply) => {
        if (!child.isStarted()) throw new NotStartedError('the child agent');
        const status = await child.status();
        // A paused agent does not connect, so "now" would quietly do nothing: say so instead.
        if (status.state === 'paused') {
          throw new HttpApiError(
            'SYNC_PAUSED',
            'sync is paused, so it cannot run now; POST /api/sync/resume first (resuming also syncs at once)',
          );
        }
        child.syncNow();
        return reply.code(202).send(status);
      },
    );

    app.post(
      '/sync/pause',
      {
        schema: {
          tags: ['sync'],
          summary: 'Stops syncing; the app keeps reading and writing locally',
          response: statusResponse,
        },
      },
      async () => {
        if (!child.isStarted()) throw new NotStartedError('the child agent');
        await child.pause();
        return child.status();
      },
    );

    app.post(
      '/sync/resume',
      {
        schema: {
          tags: ['sync'],
          summary: 'Resumes syncing from where it stopped',
          response: statusResponse,
        },
      },
      async () => {
        if (!child.isStarted()) throw new NotStartedError('the child agent');
        await child.resume();
        return child.status();
      },
    );
  };
}
