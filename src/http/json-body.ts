import type { FastifyInstance } from 'fastify';
import { HttpApiError } from './errors.js';

/**
 * Makes JSON the only body either API reads, parsed so that every valid JSON
 * document is accepted as it is:
 *
 * - `JSON.parse` keeps a `__proto__` or `constructor` key as a plain own property
 *   (it defines properties, it does not assign them), so such a key is data like
 *   any other and no prototype is touched. Fastify's default parser refuses these
 *   documents (secure-json-parse's "error" action) with "not valid JSON", which
 *   is false, and its "remove" action would drop the user's data without a word.
 * - An empty body is no body: a POST to an action route (`/api/sync/pause`) with
 *   `Content-Type: application/json` and nothing after it is what many HTTP
 *   clients send. Routes that need a body still refuse it through their schema.
 * - Anything but JSON (`text/plain`, forms) is 415 UNSUPPORTED_MEDIA_TYPE, as the
 *   docs say, rather than a string that then fails the route's schema with 400.
 */
export function acceptJsonBodiesOnly(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, text, done) => {
    const body = text as string;
    if (body.length === 0) {
      done(null, undefined);
      return;
    }
    try {
      done(null, JSON.parse(body));
    } catch (err) {
      const reason = err instanceof SyntaxError ? err.message : 'unreadable JSON';
      done(
        new HttpApiError('INVALID_REQUEST', `the request body is not valid JSON: ${reason}`, {
          issues: [{ where: 'body', path: '', message: reason }],
        }),
        undefined,
      );
    }
  });
}
