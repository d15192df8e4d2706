/**
 * The acceptance suite every MessageChannel carrier must pass. A carrier's test file
 * is only its harness: how to open two connected ends, what a test message looks
 * like on it, and which optional capabilities it has:
 *
 *   runMessageChannelSuite('in-memory pair', { capabilities, open, message, numberOf });
 *
 * A capability a carrier lacks is not skipped: the suite checks what the carrier
 * promises instead (without backpressure, that order is kept anyway).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MessageChannel } from '../channel.js';
import { SyncProtocolError } from '../errors.js';

export interface ChannelCapabilities {
  /**
   * A handler's promise holds back further delivery until it settles (the carrier
   * stops reading, which in turn slows the sender).
   */
  backpressure: boolean;
}

export interface ChannelEnds<M> {
  a: MessageChannel<M>;
  b: MessageChannel<M>;
  /**
   * Resolves once `count` messages sent to end `to` have reached its carrier,
   * delivered or held back. Required with backpressure: it is how the suite knows
   * a message was there to deliver while a handler held it back.
   */
  arrived?(to: 'a' | 'b', count: number): Promise<void>;
  /** Releases everything the ends hold (sockets, servers). */
  cleanup(): Promise<void>;
}

export interface ChannelHarness<M> {
  capabilities: ChannelCapabilities;
  /** Two connected ends, with no handlers set yet. */
  open(): Promise<ChannelEnds<M>>;
  /** Test message number `n` (from 1), carrying about `padBytes` bytes of incompressible data. */
  message(n: number, padBytes?: number): M;
  /** The number `message` made `m` with. */
  numberOf(m: M): number;
}

/** What one end received, and when it closed. */
interface Watched {
  /** Numbers of the messages delivered, in delivery order. */
  got: number[];
  /** The messages delivered, as they arrived. */
  messages: unknown[];
  /** Every call of the close handler, with the messages delivered by then. */
  closes: Array<{ cause: Error | undefined; delivered: number }>;
  /** Resolves once `n` messages were delivered; rejects if the end closes first. */
  until(n: number): Promise<void>;
  /** Resolves with the cause of the first close. */
  closed: Promise<Error | undefined>;
}

/** Lets callbacks already due (promise reactions, ready I/O) run: a few turns of the event loop. */
async function settle(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

export function runMessageChannelSuite<M>(name: string, harness: ChannelHarness<M>): void {
  const { capabilities, message, numberOf } = harness;

  /** Sets `end`'s handlers: records deliveries and closes; `handle` runs for each message. */
  function watch(end: MessageChannel<M>, handle?: (n: number) => void | Promise<void>): Watched {
    const got: number[] = [];
    const messages: unknown[] = [];
    const closes: Watched['closes'] = [];
    const waiters = new Set<{ n: number; resolve(): void; reject(e: Error): void }>();
    let onFirstClose: (cause: Error | undefined) => void = () => undefined;
    const closed = new Promise<Error | undefined>((resolve) => {
      onFirstClose = resolve;
    });
    end.onMessage((m) => {
      const n = numberOf(m);
      got.push(n);
      messages.push(m);
      for (const w of waiters) {
        if (got.length < w.n) continue;
        waiters.delete(w);
        w.resolve();
      }
      return handle?.(n);
    });
    end.onClose((cause) => {
      closes.push({ cause, delivered: got.length });
      onFirstClose(cause);
      for (const w of waiters)
        w.reject(new Error(`the channel closed after ${got.length} of ${w.n} messages were delivered`));
      waiters.clear();
    });
    return {
      got,
      messages,
      closes,
      closed,
      until: (n) =>
        got.length >= n
          ? Promise.resolve()
          : closes.length > 0
            ? Promise.reject(new Error(`the channel closed after ${got.length} of ${n} messages`))
            : new Promise((resolve, reject) => waiters.add({ n, resolve, reject })),
    };
  }

  async function sendAll(end: MessageChannel<M>, numbers: number[], padBytes = 0): Promise<void> {
    for (const n of numbers) await end.send(message(n, padBytes));
  }

  const codeOf = (cause: Error | undefined) => (cause as { code?: unknown } | undefined)?.code;

  describe(`MessageChannel acceptance: ${name}`, () => {
    const withEnds = (title: string, fn: (ends: ChannelEnds<M>) => Promise<void>): void =>
      void it(title, { timeout: 60_000 }, async () => {
        const ends = await harness.open();
        try {
          await fn(ends);
        } finally {
          await ends.cleanup();
        }
      });

    withEnds('delivers every message once, in order, both ways at once', async ({ a, b }) => {
      const atA = watch(a);
      const atB = watch(b);
      await Promise.all([sendAll(a, range(300)), sendAll(b, range(300))]);
      await Promise.all([atA.until(300), atB.until(300)]);
      await settle();
      assert.deepEqual(atB.got, range(300));
      assert.deepEqual(atA.got, range(300));
    });

    withEnds('messages that arrive before the handler is set wait for it, in order', async (ends) => {
      await sendAll(ends.a, range(5));
      await ends.arrived?.('b', 5);
      await settle();
      const atB = watch(ends.b);
      await atB.until(5);
      assert.deepEqual(atB.got, range(5));
    });

    withEnds('large messages arrive whole, as they were sent', async ({ a, b }) => {
      const atB = watch(b);
      const sent = [message(1, 1 << 20), message(2), message(3, 4 << 20)];
      for (const m of sent) await a.send(m);
      await atB.until(sent.length);
      assert.deepEqual(atB.messages, JSON.parse(JSON.stringify(sent)));
    });

    if (capabilities.backpressure) {
      withEnds(
        'backpressure: a handler’s promise holds back the next delivery until it settles',
        async (ends) => {
          assert.ok(ends.arrived, 'a carrier with backpressure says when messages have arrived');
          let release: () => void = () => undefined;
          const gate = new Promise<void>((resolve) => {
            release = resolve;
          });
          let running = 0;
          let most = 0;
          const atB = watch(ends.b, async (n) => {
            running++;
            most = Math.max(most, running);
            if (n === 1) await gate;
            else await settle(1);
            running--;
          });
          await sendAll(ends.a, range(6));
          await ends.arrived('b', 6);
          await settle();
          assert.deepEqual(atB.got, [1], 'the five that arrived wait for the first handler');
          release();
          await atB.until(6);
          assert.deepEqual(atB.got, range(6));
          assert.equal(most, 1, 'one handler at a time');
        },
      );
    } else {
      withEnds(
        'without backpressure (capability off): delivery does not wait for a handler’s promise, and keeps order',
        async ({ a, b }) => {
          let release: () => void = () => undefined;
          const gate = new Promise<void>((resolve) => {
            release = resolve;
          });
          const atB = watch(b, async (n) => {
            if (n === 1) await gate;
          });
          await sendAll(a, range(6));
          await atB.until(6);
          assert.deepEqual(atB.got, range(6), 'delivered in order while the first handler still waits');
          release();
        },
      );
    }

    withEnds(
      'close with a cause: each end is told once; the peer gets the cause’s code',
      async ({ a, b }) => {
        const atA = watch(a);
        const atB = watch(b);
        const cause = new SyncProtocolError('UNEXPECTED_MESSAGE', 'closed by the channel suite');
        a.close(cause);
        const [causeA, causeB] = await Promise.all([atA.closed, atB.closed]);
        await settle();
        assert.equal(causeA, cause, 'the closing end gets its own cause');
        assert.equal(codeOf(causeB), 'UNEXPECTED_MESSAGE', 'the peer gets the cause’s code');
        assert.equal(causeB?.message, cause.message);
        assert.equal(atA.closes.length, 1);
        assert.equal(atB.closes.length, 1);
      },
    );

    withEnds(
      'close is idempotent: closing again, and from the other end, tells no one twice',
      async ({ a, b }) => {
        const atA = watch(a);
        const atB = watch(b);
        a.close();
        a.close();
        b.close();
        await Promise.all([atA.closed, atB.closed]);
        a.close();
        b.close();
        await settle();
        assert.equal(atA.closes.length, 1);
        assert.equal(atB.closes.length, 1);
      },
    );

    for (const withCause of [false, true]) {
      withEnds(
        `a close ${withCause ? 'with a cause ' : ''}reaches the peer after every message sent before it`,
        async ({ a, b }) => {
          // A slow reader: each message takes a turn of the event loop, so some are
          // still waiting when the close arrives.
          const atB = watch(b, () => settle(1));
          await sendAll(a, range(50), 1024);
          a.close(
            withCause
              ? new SyncProtocolError('UNEXPECTED_MESSAGE', 'closed by the channel suite')
              : undefined,
          );
          const cause = await atB.closed;
          assert.deepEqual(atB.got, range(50));
          assert.equal(atB.closes[0]?.delivered, 50, 'the close came after the last message');
          if (withCause) assert.equal(codeOf(cause), 'UNEXPECTED_MESSAGE');
          else
            assert.ok(
              cause === undefined || codeOf(cause) === 'CONNECTION_CLOSED',
              `a plain close is no failure at the peer (got ${String(codeOf(cause) ?? cause)})`,
            );
        },
      );
    }

    withEnds('send after close rejects, at either end, and delivers nothing', async ({ a, b }) => {
      const atA = watch(a);
      const atB = watch(b);
      a.close();
      await assert.rejects(a.send(message(1)));
      await atB.closed;
      await assert.rejects(b.send(message(2)));
      await settle();
      assert.deepEqual(atA.got, []);
      assert.deepEqual(atB.got, []);
    });

    withEnds('a close handler set after the close still runs, once, with the cause', async ({ a, b }) => {
      const atA = watch(a);
      const atB = watch(b);
      const cause = new SyncProtocolError('UNEXPECTED_MESSAGE', 'closed by the channel suite');
      a.close(cause);
      await Promise.all([atA.closed, atB.closed]);
      const late: Record<'a' | 'b', Array<Error | undefined>> = { a: [], b: [] };
      let setting = true;
      const calledWhileSetting: string[] = [];
      const told = (['a', 'b'] as const).map(
        (key) =>
          new Promise<void>((resolve) => {
            (key === 'a' ? a : b).onClose((c) => {
              if (setting) calledWhileSetting.push(key);
              late[key].push(c);
              resolve();
            });
          }),
      );
      setting = false;
      await Promise.all(told);
      await settle();
      assert.deepEqual(calledWhileSetting, [], 'never from inside onClose');
      assert.equal(late.a.length, 1);
      assert.equal(late.b.length, 1);
      assert.equal(late.a[0], cause);
      assert.equal(codeOf(late.b[0]), 'UNEXPECTED_MESSAGE');
    });
  });
}
