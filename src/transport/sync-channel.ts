import type { SyncMessage } from '../protocol/messages.js';
import type { MessageChannel } from '../sync/channel.js';
import type { Connection } from './connection.js';

/**
 * The sync engine's MessageChannel over a transport connection: `sync.*` messages
 * go to the session; the handler's promise holds back further reading, so a
 * receiver applying a large batch slows its sender. A close reaches the peer after
 * the messages sent before it (the connection delivers them before its `close`).
 */
export function syncChannel(conn: Connection): MessageChannel<SyncMessage> {
  return {
    send: (message) => conn.send(message),
    sendShared: (message, frames) => conn.sendCached(message, frames),
    onMessage: (handler) => conn.setHandler((message) => handler(message as SyncMessage)),
    onClose: (handler) => {
      const ended = conn.ended;
      // Called after the close: still once, with its cause, and never synchronously.
      if (ended) setImmediate(() => handler(ended.cause));
      else conn.once('close', (cause) => handler(cause));
    },
    close: (cause) => conn.close(cause),
  };
}
