import type { ChunkLink } from '../files/chunk-exchange.js';
import type { Connection } from './connection.js';

/** The file exchange's link over a transport connection: its requests and chunk frames. */
export function chunkLink(conn: Connection): ChunkLink {
  return {
    request: (method, params) => conn.request(method, params),
    handle: (method, handler) => conn.handle(method, async (params) => handler(params)),
    sendChunk: (head, body, options) => conn.sendChunk(head, body, options),
    onChunk: (handler) => conn.setChunkHandler(handler),
    close: (error) => conn.close(error),
    get closed() {
      return conn.closed;
    },
  };
}
