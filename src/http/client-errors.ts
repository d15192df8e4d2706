import type { Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import type { Logger } from 'pino';
import { type ErrorBody, HTTP_STATUS_BY_CODE } from './errors.js';

/**
 * Answers a request that Node's HTTP parser refused before fastify saw it
 * (malformed request line or headers, headers over the size limit, a request
 * that took too long to arrive) in the same `{ code, message }` shape as every
 * other error, then closes the connection: after a parse error nothing more on
 * it can be trusted. Fastify's own handler would answer in its own shape.
 */
export function clientErrorHandler(logger: Logger): (err: NodeJS.ErrnoException, socket: Socket) => void {
  return (err, socket) => {
    // A reset connection has nobody left to answer.
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const body = clientErrorBody(err);
    const status = HTTP_STATUS_BY_CODE[body.code] ?? 400;
    logger.debug({ code: body.code, cause: err.code }, 'malformed request refused');
    if (socket.writable) {
      const text = JSON.stringify(body);
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
          'Content-Type: application/json; charset=utf-8\r\n' +
          `Content-Length: ${Buffer.byteLength(text)}\r\n` +
          'Connection: close\r\n\r\n' +
          text,
      );
    }
    socket.destroy();
  };
}

/** The error body for a parse failure, by Node's error code. */
export function clientErrorBody(err: NodeJS.ErrnoException): ErrorBody {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return {
      code: 'REQUEST_TIMEOUT',
      message: 'the request did not arrive in time; send it again',
    };
  }
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    return {
      code: 'HEADERS_TOO_LARGE',
      message: 'the request line and headers together are over 16 KiB; send a shorter URL or fewer headers',
    };
  }
  return {
    code: 'INVALID_REQUEST',
    message: 'the request is not valid HTTP/1.1',
    details: { issues: [{ where: 'http', path: '', message: err.code ?? 'unparseable' }] },
  };
}
