import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { isTrosynError } from '../../errors.js';
import { assertFileName } from '../../files/file-body.js';
import { HttpApiError } from '../../http/errors.js';
import { fileView } from '../../http/file-routes.js';
import {
  errorResponses,
  type FileParams,
  fileParams,
  type FilesQuery,
  filesQuery,
  fileView as fileViewSchema,
  jsonSchema,
  revertBody,
} from '../../http/schemas.js';
import type { LocalPort } from './port.js';
import { type UploadHeaders, uploadHeaders } from './schemas.js';

/** The default upload limit: 16 GiB. */
export const DEFAULT_MAX_UPLOAD_BYTES = 16 * 1024 ** 3;

/**
 * Upload types that say nothing about the file: a generic client's default
 * (`curl --data-binary` sends a form type), so the type is taken from the name.
 */
const NO_TYPE = new Set(['application/octet-stream', 'application/x-www-form-urlencoded']);

/** What the file write routes are configured with. */
export interface LocalFileRoutesOptions {
  /** Largest upload in bytes (413 REQUEST_TOO_LARGE above it). */
  maxUploadBytes: number;
}

/**
 * The child's file writes: a streaming upload, revert and delete. The reads are
 * the shared file routes (src/http/file-routes.ts).
 *
 * The upload is read as a stream, chunk by chunk into the chunk store, so memory
 * stays flat whatever the file's size; the 2 MiB limit of JSON bodies does not
 * apply to it, `maxUploadBytes` does. Its own parser takes any content type (the
 * file's type), in a context of its own so the JSON routes still refuse them.
 */
export function localFileRoutes(child: LocalPort, options: LocalFileRoutesOptions): FastifyPluginAsync {
  const limit = options.maxUploadBytes;
  return async (app: FastifyInstance) => {
    await app.register(async (upload) => {
      upload.removeAllContentTypeParsers();
      // The body stays the request's own stream, read only by the handler.
      upload.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

      upload.put<{ Params: FileParams; Querystring: FilesQuery; Headers: UploadHeaders }>(
        '/files/:name',
        {
          schema: {
            tags: ['files'],
            summary:
              "Records the request body as a new version of the file (streamed, any size up to the upload limit); the version syncs to the hub, its content follows as chunks. The type is `Content-Type`'s, or guessed from the name.",
            params: jsonSchema(fileParams),
            querystring: jsonSchema(filesQuery),
            headers: jsonSchema(uploadHeaders),
            body: {
              content: {
                'application/octet-stream': {
                  schema: { description: "the file's bytes, in any Content-Type" },
                },
              },
            },
            response: { 201: jsonSchema(fileViewSchema), ...errorResponses(400, 401, 413, 415, 503) },
          },
        },
        async (request, reply) => {
          const raw = request.body as IncomingMessage | undefined;
          try {
            const files = child.files;
            const { name } = request.params;
            assertFileName(name);
            const encoding = request.headers['content-encoding']?.trim().toLowerCase();
            if (encoding !== undefined && encoding !== '' && encoding !== 'identity') {
              throw new HttpApiError(
                'UNSUPPORTED_MEDIA_TYPE',
                `an upload is the file's own bytes; this one has Content-Encoding ${JSON.stringify(encoding)}`,
              );
            }
            const declared = Number(request.headers['content-length'] ?? 0);
            if (declared > limit) throw tooLarge(limit);
            const type = uploadType(request.headers['content-type']);
            const modifiedAt = request.headers['x-modified-at'];
            const version = await files.putStream(raw ? limited(raw, limit) : emptyBody(), {
              name,
              ...(type !== undefined && { type }),
              ...(modifiedAt !== undefined && { modifiedAt }),
              ...(request.query.collection !== undefined && { collection: request.query.collection }),
            });
            return reply.code(201).send(await fileView(files, version));
          } catch (err) {
            // The rest of a refused upload is not read: the connection closes after the answer.
            if (raw && !raw.readableEnded) reply.header('connection', 'close');
            throw err;
          }
        },
      );
    });

    app.post<{ Params: FileParams; Querystring: FilesQuery; Body: { rev: string } }>(
      '/files/:name/revert',
      {
        schema: {
          tags: ['files'],
          summary: 'Makes an old version current again: a new version with its content (no chunk is copied)',
          params: jsonSchema(fileParams),
          querystring: jsonSchema(filesQuery),
          body: jsonSchema(revertBody),
          response: { 200: jsonSchema(fileViewSchema), ...errorResponses(400, 401, 404, 409, 503) },
        },
      },
      async (request) => {
        const files = child.files;
        const { name } = request.params;
        assertFileName(name);
        const version = await files.revert(name, request.body.rev, request.query.collection);
        return fileView(files, version);
      },
    );

    app.delete<{ Params: FileParams; Querystring: FilesQuery }>(
      '/files/:name',
      {
        schema: {
          tags: ['files'],
          summary: 'Deletes a file (its versions stay in history; revert brings one back)',
          params: jsonSchema(fileParams),
          querystring: jsonSchema(filesQuery),
          response: {
            204: { description: 'deleted', type: 'null' },
            ...errorResponses(400, 401, 404, 503),
          },
        },
      },
      async (request, reply) => {
        const files = child.files;
        const { name } = request.params;
        assertFileName(name);
        await files.remove(name, request.query.collection);
        return reply.code(204).send();
      },
    );
  };
}

/** The file's type from the upload's Content-Type, unless it says nothing about the file. */
function uploadType(header: string | undefined): string | undefined {
  const type = header?.trim();
  if (type === undefined || type === '') return undefined;
  const media = type.split(';')[0]?.trim().toLowerCase() ?? '';
  return NO_TYPE.has(media) ? undefined : type;
}

function tooLarge(limit: number): HttpApiError {
  return new HttpApiError(
    'REQUEST_TOO_LARGE',
    `the upload is over this API's upload limit of ${limit} bytes; nothing was recorded`,
    { limit },
  );
}

async function* emptyBody(): AsyncGenerator<Buffer> {}

/**
 * The upload's bytes as they arrive, up to `limit`. Stopping early (a refusal)
 * leaves the request to the HTTP layer, which can still answer it; a client that
 * goes away part-way is an upload that did not finish, and nothing is recorded.
 */
async function* limited(body: IncomingMessage, limit: number): AsyncGenerator<Buffer> {
  let received = 0;
  const pieces = body.iterator({ destroyOnReturn: false }) as AsyncIterator<Buffer>;
  for (;;) {
    let next: IteratorResult<Buffer>;
    try {
      next = await pieces.next();
    } catch (err) {
      if (isTrosynError(err)) throw err;
      throw new HttpApiError(
        'INVALID_REQUEST',
        'the upload ended before all of its bytes arrived; nothing was recorded',
        undefined,
        { cause: err },
      );
    }
    if (next.done === true) return;
    received += next.value.length;
    if (received > limit) {
      await pieces.return?.();
      throw tooLarge(limit);
    }
    yield next.value;
  }
}
