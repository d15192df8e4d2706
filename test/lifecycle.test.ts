/**
 * The one lifecycle: `startAll` and `stopAll` over a list of parts, and the guard
 * that runs one component's start and stop one at a time. The parts here record
 * what was asked of them and can be made to fail or to wait; the last test runs the
 * helpers over real parts (a SQLite replica and TLS servers on 127.0.0.1).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openReplica } from '../src/index.js';
import { LifecycleGuard, type Startable, startAll, stopAll } from '../src/lifecycle.js';
import { randomDeviceId } from '../src/sync/ids.js';
import { StaticAuthenticator } from '../src/transport/authenticator.js';
import { createIdentity } from '../src/transport/identity.js';
import { TransportServer } from '../src/transport/server.js';
import { tempDir } from './helpers.js';

const dir = tempDir();
after(() => dir.remove());

/** A way to hold a start or stop open until the test lets it finish. */
function gate() {
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

/** A part that records its start and stop in `log`, behind a LifecycleGuard. */
class Part implements Startable {
  private readonly guard = new LifecycleGuard();
  startGate: Promise<void> | undefined;
  failStart: Error | undefined;
  failStop: Error | undefined;

  constructor(
    readonly name: string,
    private readonly log: string[],
  ) {}

  isStarted(): boolean {
    return this.guard.isStarted();
  }

  start(): Promise<void> {
    return this.guard.start(async () => {
      this.log.push(`start ${this.name}`);
      await this.startGate;
      if (this.failStart) throw this.failStart;
      this.log.push(`started ${this.name}`);
    });
  }

  stop(): Promise<void> {
    return this.guard.stop(async () => {
      this.log.push(`stop ${this.name}`);
      if (this.failStop) throw this.failStop;
    });
  }
}

describe('startAll and stopAll', () => {
  it('start in order and stop in reverse', async () => {
    const log: string[] = [];
    const parts = ['a', 'b', 'c'].map((n) => new Part(n, log));
    await startAll(parts);
    assert.deepEqual(
      parts.map((p) => p.isStarted()),
      [true, true, true],
    );
    await stopAll(parts);
    assert.deepEqual(log, [
      'start a',
      'started a',
      'start b',
      'started b',
      'start c',
      'started c',
      'stop c',
      'stop b',
      'stop a',
    ]);
    assert.deepEqual(
      parts.map((p) => p.isStarted()),
      [false, false, false],
    );
  });

  it('a part that fails to start stops those already started, in reverse, and the failure is thrown', async () => {
    const log: string[] = [];
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((n) => new Part(n, log)) as [Part, Part, Part, Part];
    const failure = new Error('c cannot start');
    c.failStart = failure;
    await assert.rejects(startAll([a, b, c, d]), (err) => err === failure);
    assert.deepEqual(log, ['start a', 'started a', 'start b', 'started b', 'start c', 'stop b', 'stop a']);
    assert.deepEqual(
      [a, b, c, d].map((p) => p.isStarted()),
      [false, false, false, false],
    );
  });

  it('stopAll stops every part even when one fails, then throws the first failure', async () => {
    const log: string[] = [];
    const [a, b, c] = ['a', 'b', 'c'].map((n) => new Part(n, log)) as [Part, Part, Part];
    await startAll([a, b, c]);
    const first = new Error('c cannot stop');
    c.failStop = first;
    b.failStop = new Error('b cannot stop either');
    log.length = 0;
    await assert.rejects(stopAll([a, b, c]), (err) => err === first);
    assert.deepEqual(log, ['stop c', 'stop b', 'stop a']);
  });
});

describe('LifecycleGuard', () => {
  it('two starts at once start once, and both wait for it', async () => {
    const log: string[] = [];
    const part = new Part('p', log);
    const { open, opened } = gate();
    part.startGate = opened;
    let resolved = 0;
    const starts = [part.start(), part.start()].map((p) => p.then(() => resolved++));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(resolved, 0, 'neither start resolves while the start runs');
    open();
    await Promise.all(starts);
    assert.deepEqual(log, ['start p', 'started p']);
    assert.equal(part.isStarted(), true);
  });

  it('start twice starts once; stop twice stops once', async () => {
    const log: string[] = [];
    const part = new Part('p', log);
    await part.start();
    await part.start();
    await part.stop();
    await part.stop();
    assert.deepEqual(log, ['start p', 'started p', 'stop p']);
  });

  it('stop before start does nothing, and a start afterwards still starts', async () => {
    const log: string[] = [];
    const part = new Part('p', log);
    await part.stop();
    assert.deepEqual(log, []);
    assert.equal(part.isStarted(), false);
    await part.start();
    assert.deepEqual(log, ['start p', 'started p']);
    assert.equal(part.isStarted(), true);
  });

  it('stop waits for a start in progress, then stops', async () => {
    const log: string[] = [];
    const part = new Part('p', log);
    const { open, opened } = gate();
    part.startGate = opened;
    const start = part.start();
    const stop = part.stop();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(log, ['start p'], 'the stop waits');
    open();
    await Promise.all([start, stop]);
    assert.deepEqual(log, ['start p', 'started p', 'stop p']);
    assert.equal(part.isStarted(), false);
  });

  it('a failed start leaves the part stopped; the next start tries again', async () => {
    const log: string[] = [];
    const part = new Part('p', log);
    part.failStart = new Error('not now');
    await assert.rejects(part.start(), /not now/);
    assert.equal(part.isStarted(), false);
    await part.stop();
    part.failStart = undefined;
    await part.start();
    assert.deepEqual(log, ['start p', 'start p', 'started p']);
    assert.equal(part.isStarted(), true);
  });

  it('start after stop starts again', async () => {
    const log: string[] = [];
    const part = new Part('p', log);
    await part.start();
    await part.stop();
    await part.start();
    assert.equal(part.isStarted(), true);
    assert.deepEqual(log, ['start p', 'started p', 'stop p', 'start p', 'started p']);
  });
});

describe('startAll over real parts', () => {
  it('a sync port in use stops the replica and the server already started, and frees them', async () => {
    const identity = await createIdentity('lifecycle-hub');
    const server = (port: number) =>
      new TransportServer({
        identity,
        local: { name: 'hub', role: 'hub', appVersion: '0.0.0', heartbeatMs: 15_000 },
        authenticator: new StaticAuthenticator([]),
        host: '127.0.0.1',
        port,
        onConnection: (conn) => conn.close(),
      });
    const holder = server(0);
    await holder.start();
    const busy = holder.port;
    const path = join(dir.path, 'lifecycle.db');
    const deviceId = randomDeviceId();
    const replica = await openReplica({ path, deviceId, synchronous: 'off' });
    await replica.stop();
    const first = server(0);
    const clash = server(busy);
    await assert.rejects(startAll([replica, first, clash]), { code: 'PORT_IN_USE' });
    assert.deepEqual([replica.isStarted(), first.isStarted(), clash.isStarted()], [false, false, false]);
    // Everything was released: the replica's file opens again and the holder's port frees.
    await holder.stop();
    const again = server(busy);
    await startAll([replica, again]);
    assert.equal(again.port, busy);
    await stopAll([replica, again]);
  });
});
