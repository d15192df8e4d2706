import { type Clock, systemClock } from '../lifecycle.js';
import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import type { Logger } from 'pino';

/** Settings of one event stream. */
export interface EventStreamOptions {
  /** A comment line is sent this often (ms), so proxies and clients see the stream is alive. Default 15 s. */
  heartbeatMs?: number;
  /**
   * Bytes a client may leave unread before it is dropped. Default 1 MiB: a client
   * that stopped reading must not make the server buffer without limit; it can
   * reconnect and re-read the state.
   */
  maxBufferedBytes?: number;
  logger: Logger;
}

/** One open Server-Sent Events response. */
export interface EventStream {
  /** Sends one event: `event: <name>`, an optional `id:`, and the JSON data on one line. */
  send(event: string, data: unknown, id?: string | number): void;
  /** Ends the stream from the server's side. */
  close(): void;
  readonly closed: boolean;
}

/**
 * The Server-Sent Events responses an API has open. Each cleans up after itself
 * when its client goes away; `closeAll()` ends them when the server stops, since
 * a server waits for open responses before it closes.
 */
export class EventStreams {
  private readonly open = new Set<EventStream>();

  /** `clock` runs the heartbeats. */
  constructor(private readonly clock: Clock = systemClock) {}

  get size(): number {
    return this.open.size;
  }

  /**
   * Takes over the reply and starts an event stream. `onClose` runs exactly once,
   * whoever ends the stream (client, server, or a client too slow to read).
   */
  start(reply: FastifyReply, options: EventStreamOptions, onClose: () => void): EventStream {
    reply.hijack();
    const res: ServerResponse = reply.raw;
    const heartbeatMs = options.heartbeatMs ?? 15_000;
    const maxBuffered = options.maxBufferedBytes ?? 1024 * 1024;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // Reverse proxies (nginx) would otherwise hold events back in their buffers.
      'x-accel-buffering': 'no',
    });
    // The retry hint and a first comment flush the headers, so the client knows it is connected.
    res.write('retry: 3000\n: connected\n\n');

    let closed = false;
    const stream: EventStream = {
      get closed() {
        return closed;
      },
      send: (event, data, id) => {
        if (closed) return;
        const idLine = id === undefined ? '' : `id: ${String(id)}\n`;
        // JSON.stringify escapes line breaks inside strings, so the data is always one line.
        write(`event: ${event}\n${idLine}data: ${JSON.stringify(data)}\n\n`);
      },
      close: () => {
        if (closed) return;
        cleanup();
        res.end();
      },
    };
    const write = (text: string) => {
      res.write(text);
      if (res.writableLength > maxBuffered) {
        options.logger.warn(
          { buffered: res.writableLength },
          'event stream client is not reading; dropping it',
        );
        cleanup();
        res.destroy();
      }
    };
    const heartbeat = this.clock.setInterval(() => write(': heartbeat\n\n'), heartbeatMs);
    const cleanup = () => {
      if (closed) return;
      closed = true;
      heartbeat.cancel();
      this.open.delete(stream);
      try {
        onClose();
      } catch (err) {
        options.logger.error({ err }, 'event stream cleanup failed');
      }
    };
    // The response's close fires whichever side ends it, including a vanished client.
    res.once('close', cleanup);
    res.on('error', (err) => options.logger.debug({ err: err.message }, 'event stream write failed'));
    this.open.add(stream);
    return stream;
  }

  /** Ends every open stream. */
  closeAll(): void {
    for (const stream of [...this.open]) stream.close();
  }
}
