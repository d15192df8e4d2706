/**
 * The fuzzer's end of a real TLS connection: it writes whatever bytes it is given,
 * decodes what the product sends back (which must always be well formed), and
 * lets the harness wait, within a limit, for an answer or for the close.
 */
import { once } from 'node:events';
import { connect, type TLSSocket } from 'node:tls';
import { isErrorCode } from '../../src/error-codes.js';
import { MessageCodec, type Decoded } from '../../src/protocol/codec.js';
import { FrameDecoder } from '../../src/protocol/frame.js';
import type { Message } from '../../src/protocol/messages.js';

/** What the peer saw: a message, or a chunk frame's payload. */
export type Received = Decoded;

/** A finding: the product answered wrongly. The engine records it with the input. */
export class OracleError extends Error {
  override name = 'OracleError';
}

/** Throws unless `code` is one of the error table's codes, and not an internal error. */
export function expectErrorCode(code: string, where: string): void {
  if (!isErrorCode(code)) throw new OracleError(`${where}: code ${code} is not in the error table`);
  if (code === 'INTERNAL_ERROR') throw new OracleError(`${where}: INTERNAL_ERROR (a handler failed)`);
}

export const fuzzHello = (features: string[] = []): Message => ({
  type: 'hello',
  protocol: 'trosyn-sync',
  versions: [1],
  name: 'fuzzer',
  role: 'child',
  appVersion: '0.0.0',
  compression: ['zstd', 'br', 'none'],
  features,
});

export class FramePeer {
  readonly received: Received[] = [];
  closed = false;
  private readonly socket: TLSSocket;
  private readonly decoder = new FrameDecoder();
  private readonly codec = new MessageCodec();
  private readonly waiters = new Set<() => void>();
  private readonly claimed = new Set<Message>();
  /** Set when the product sent bytes that do not decode: a finding. */
  malformed: string | undefined;

  private constructor(socket: TLSSocket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const frame of this.decoder.push(chunk)) this.received.push(this.codec.decode(frame));
      } catch (err) {
        this.malformed ??= (err as Error).message;
      }
      this.wake();
    });
    socket.on('error', () => undefined);
    socket.once('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static async connect(port: number, identity: { keyPem: string; certPem: string }): Promise<FramePeer> {
    const socket = connect({
      host: '127.0.0.1',
      port,
      key: identity.keyPem,
      cert: identity.certPem,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
    });
    const peer = new FramePeer(socket);
    // Each write goes out at once: an input is many small frames, some not answered.
    socket.setNoDelay(true);
    await once(socket, 'secureConnect');
    return peer;
  }

  write(bytes: Buffer): void {
    if (!this.closed && bytes.length > 0) this.socket.write(bytes);
  }

  /** Messages received so far. */
  messages(): Message[] {
    return this.received.flatMap((d) => (d.kind === 'message' ? [d.message] : []));
  }

  /**
   * The first message received that `matches` and was not claimed before: what
   * answers this request or ping, when the fuzzer sends the same id or ping twice.
   */
  claim(matches: (m: Message) => boolean): Message | undefined {
    const found = this.messages().find((m) => !this.claimed.has(m) && matches(m));
    if (found) this.claimed.add(found);
    return found;
  }

  /** The codes of the `error` messages received so far. */
  errorCodes(): string[] {
    return this.messages().flatMap((m) => (m.type === 'error' ? [m.code] : []));
  }

  /**
   * Waits until `done` holds (checked on every frame received) or the connection
   * closes; returns whether `done` held. Throws after `limitMs`: the product neither
   * answered nor closed, a hang; and at once when it sent a frame that does not decode.
   */
  async until(done: () => boolean, limitMs: number, what: string): Promise<boolean> {
    if (done()) return true;
    if (this.closed) return false;
    // What did not decode may be the awaited answer: not a hang, a malformed frame.
    if (this.malformed)
      throw new OracleError(`the product sent a frame that does not decode: ${this.malformed}`);
    let timer: NodeJS.Timeout | undefined;
    let wake: (() => void) | undefined;
    try {
      return await new Promise<boolean>((resolve, reject) => {
        wake = () => {
          if (done()) resolve(true);
          else if (this.closed) resolve(false);
          else if (this.malformed)
            reject(new OracleError(`the product sent a frame that does not decode: ${this.malformed}`));
        };
        this.waiters.add(wake);
        timer = setTimeout(
          () => reject(new OracleError(`no answer and no close within ${limitMs} ms: ${what}`)),
          limitMs,
        );
      });
    } finally {
      clearTimeout(timer);
      if (wake) this.waiters.delete(wake);
    }
  }

  /** Ends our side and waits (within the limit) for the product to close. */
  async end(limitMs: number): Promise<void> {
    if (!this.closed) this.socket.end();
    await this.until(() => false, limitMs, 'the close after our end');
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

/**
 * Decodes what the fuzzer sends exactly as the product does, to know what the
 * product must make of it: the messages and chunks, or the protocol error (its
 * code) after which the product must close.
 */
export class SentFrames {
  private readonly decoder = new FrameDecoder();
  private readonly codec = new MessageCodec();
  /** The code of the first error in the stream sent; nothing after it counts. */
  violation: string | undefined;

  /** Bytes of a frame not complete yet. */
  get buffered(): number {
    return this.decoder.bufferedBytes;
  }

  push(bytes: Buffer): Decoded[] {
    if (this.violation) return [];
    const out: Decoded[] = [];
    try {
      for (const frame of this.decoder.push(bytes)) out.push(this.codec.decode(frame));
    } catch (err) {
      this.violation = (err as { code?: string }).code ?? 'BAD_FRAME';
    }
    return out;
  }
}
