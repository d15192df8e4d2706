import type { FrameCache } from '../protocol/codec.js';

/**
 * The seam between the sync engine and whatever carries its messages: an in-memory
 * pair in tests and benchmarks, a TLS session in production. Messages are delivered
 * in order; `send` resolves once the carrier has accepted the message (a slow
 * carrier makes `send` slow: that is the backpressure). Every carrier passes the
 * acceptance suite in `testing/channel-suite.ts`.
 */
export interface MessageChannel<M> {
  /** Rejects once the channel is closed, by either end. */
  send(message: M): Promise<void>;
  /**
   * Optional: sends `message` as `send` does, reusing its encoded bytes from
   * `frames` when another channel of the same settings encoded it already. For a
   * message sent unchanged to many peers; `frames` must belong to this message.
   */
  sendShared?(message: M, frames: FrameCache): Promise<void>;
  /**
   * Sets the one handler for incoming messages; messages that arrive before it is
   * set wait for it. When it returns a promise, a carrier that supports
   * backpressure delivers nothing more until it settles.
   */
  onMessage(handler: (message: M) => void | Promise<void>): void;
  /**
   * Sets the one handler called once when the channel closes, with the cause if
   * any (at the peer, a cause with a code arrives with that code). Set after the
   * close, it is still called, once.
   */
  onClose(handler: (cause?: Error) => void): void;
  /**
   * Closes both directions; the peer's close handler runs too, after the messages
   * sent before the close have been delivered. Idempotent.
   */
  close(cause?: Error): void;
}

/**
 * Two connected in-memory channels. Each message is copied through JSON, as a wire
 * would, and delivered asynchronously in order. Without backpressure: `send`
 * resolves at once and delivery does not wait for a handler's promise.
 */
export function createChannelPair<M>(): [MessageChannel<M>, MessageChannel<M>] {
  type End = {
    handler: ((m: M) => void | Promise<void>) | undefined;
    closeHandler: ((cause?: Error) => void) | undefined;
    inbox: M[];
    /** No more sends accepted. */
    closing: boolean;
    /** Close handler has run; nothing more is delivered. */
    closed: boolean;
    cause: Error | undefined;
  };
  const newEnd = (): End => ({
    handler: undefined,
    closeHandler: undefined,
    inbox: [],
    closing: false,
    closed: false,
    cause: undefined,
  });
  const ends: [End, End] = [newEnd(), newEnd()];
  const deliver = (to: End) => {
    while (to.handler && to.inbox.length > 0 && !to.closed) {
      const m = to.inbox.shift() as M;
      void to.handler(m);
    }
    // Like a socket, a close reaches the reader after the data sent before it.
    if (to.closing && !to.closed && to.inbox.length === 0) {
      to.closed = true;
      to.closeHandler?.(to.cause);
    }
  };
  const closeBoth = (cause?: Error) => {
    for (const end of ends) {
      if (end.closing) continue;
      end.closing = true;
      end.cause = cause;
      setImmediate(() => deliver(end));
    }
  };
  const make = (self: End, peer: End): MessageChannel<M> => ({
    send: async (message) => {
      if (self.closing) throw new Error('channel closed');
      peer.inbox.push(JSON.parse(JSON.stringify(message)) as M);
      setImmediate(() => deliver(peer));
    },
    onMessage: (handler) => {
      self.handler = handler;
      setImmediate(() => deliver(self));
    },
    onClose: (handler) => {
      self.closeHandler = handler;
      // Set after the close was reported: it still runs, once, never synchronously.
      if (self.closed) setImmediate(() => handler(self.cause));
    },
    close: (cause) => closeBoth(cause),
  });
  return [make(ends[0], ends[1]), make(ends[1], ends[0])];
}
