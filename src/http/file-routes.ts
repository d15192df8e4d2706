import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { assertFileName, type FileBody, NotAFileError } from '../files/file-body.js';
import type { FileVersion, NodeFiles } from '../files/node-files.js';
import { sendFileContent } from './file-content.js';
import {
  errorResponses,
  type FileContentQuery,
  fileContentQuery,
  fileHistory,
  fileList,
  type FileParams,
  fileParams,
  type FilesQuery,
  filesQuery,
  jsonSchema,
} from './schemas.js';

/** What the file read routes need of a node's files. */
export type FileReader = Pick<NodeFiles, 'version' | 'read' | 'list' | 'history' | 'isHere'>;

/** A file version as the APIs show it: without its chunk list, with whether its content is here. */
export interface FileView {
  collection: string;
  rev: string;
  name: string;
  size: number;
  type: string;
  modifiedAt: number;
  sha256: string;
  chunkCount: number;
  here: boolean;
}

/** How many versions are checked for their content at once when a list is answered. */
const HERE_CHECKS_AT_ONCE = 8;

/** `version` as the APIs show it. */
export async function fileView(files: Pick<FileReader, 'isHere'>, version: FileVersion): Promise<FileView> {
  return {
    collection: version.collection,
    rev: version.rev,
    ...info(version),
    here: await files.isHere(version),
  };
}

function info(body: FileBody): Omit<FileView, 'collection' | 'rev' | 'here'> {
  const { name, size, type, modifiedAt, sha256, chunkCount } = body;
  return { name, size, type, modifiedAt, sha256, chunkCount };
}

/** `fn` over `items`, at most `limit` at once, results in order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** The summary and responses of a download route, the same on both APIs. */
export const downloadResponses = {
  200: {
    description:
      'the whole content, streamed; `ETag` is its SHA-256, `Accept-Ranges: bytes`, `Content-Disposition: attachment`',
    content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
  },
  206: {
    description: 'one range of the content (`Range: bytes=a-b`, `a-` or `-n`), with `Content-Range`',
    content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
  },
  304: { description: '`If-None-Match` names the ETag: the client has this content' },
  ...errorResponses(400, 401, 404, 409, 416, 500, 503),
};

/**
 * Routes that read a node's files, the same on the hub's admin API and the child's
 * local API: the files of a collection, a file's versions, and a version's content
 * with byte ranges. `files` is asked on every request, so a node that is not
 * started answers 503 NOT_STARTED. File names are checked (INVALID_FILE_NAME)
 * before anything is read.
 */
export function fileReadRoutes(files: () => FileReader): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.get<{ Querystring: FilesQuery }>(
      '/files',
      {
        schema: {
          tags: ['files'],
          summary: 'The files of a collection (current versions, in name order) and whether each is here',
          querystring: jsonSchema(filesQuery),
          response: { 200: jsonSchema(fileList), ...errorResponses(400, 401, 503) },
        },
      },
      async (request) => {
        const node = files();
        const versions = await node.list(request.query.collection);
        return { files: await mapLimit(versions, HERE_CHECKS_AT_ONCE, (v) => fileView(node, v)) };
      },
    );

    app.get<{ Params: FileParams; Querystring: FilesQuery }>(
      '/files/:name/history',
      {
        schema: {
          tags: ['files'],
          summary: 'Every version of a file, oldest first, each with whether its content is here',
          params: jsonSchema(fileParams),
          querystring: jsonSchema(filesQuery),
          response: { 200: jsonSchema(fileHistory), ...errorResponses(400, 401, 404, 409, 503) },
        },
      },
      async (request) => {
        const { name } = request.params;
        assertFileName(name);
        const node = files();
        const entries = await node.history(name, request.query.collection);
        // A plain record of that name is not a file, whatever its history.
        if (!entries.some((e) => e.file) && entries.some((e) => e.body !== null)) {
          throw new NotAFileError(request.query.collection ?? 'files', name);
        }
        return {
          history: await mapLimit(entries, HERE_CHECKS_AT_ONCE, async (e) => ({
            rev: e.rev,
            author: e.author,
            hlc: e.hlc,
            time: e.time,
            deleted: e.deleted,
            pruned: e.pruned,
            parents: e.parents,
            head: e.head,
            current: e.current,
            seq: e.seq,
            file: e.file ? { ...info(e.file), here: await node.isHere(e.file) } : null,
          })),
        };
      },
    );

    app.get<{ Params: FileParams; Querystring: FileContentQuery }>(
      '/files/:name/content',
      {
        schema: {
          tags: ['files'],
          summary:
            "A version's content, streamed, with single byte ranges (`Range`); 409 FILE_CONTENT_MISSING while it is not all here. HEAD gives the headers alone.",
          params: jsonSchema(fileParams),
          querystring: jsonSchema(fileContentQuery),
          response: downloadResponses,
        },
      },
      async (request, reply) => {
        const { name } = request.params;
        assertFileName(name);
        const { collection, rev } = request.query;
        const node = files();
        const version = await node.version(name, {
          ...(collection !== undefined && { collection }),
          ...(rev !== undefined && { rev }),
        });
        return sendFileContent(request, reply, version, (range) => node.read(version, range));
      },
    );
  };
}
