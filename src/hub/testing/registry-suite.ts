/**
 * The acceptance suite every RegistryBackend must pass. A new backend's test file
 * is only its harness:
 *
 *   runRegistryBackendSuite('postgres', async () => ({ create, reopen, cleanup }));
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { DeviceId } from '../../store/types.js';
import type { NewDevice, RegistryBackend } from '../registry-backend.js';

export interface RegistryHarness {
  /** A new, started backend on empty storage. */
  create(): Promise<RegistryBackend>;
  /** Stops `backend` and returns a started backend on the same storage. */
  reopen(backend: RegistryBackend): Promise<RegistryBackend>;
  /** Removes everything the harness created. */
  cleanup(): Promise<void>;
}

const id = () => randomBytes(32).toString('hex') as DeviceId;
const T0 = 1_750_000_000_000;
const device = (deviceId: DeviceId, over: Partial<NewDevice> = {}): NewDevice => ({
  deviceId,
  name: 'desk',
  group: 'default',
  state: 'approved',
  ...over,
});
/** A code drawer that gives the codes in order, then repeats the last. */
const codes = (...list: string[]) => {
  let i = 0;
  return () => list[Math.min(i++, list.length - 1)] as string;
};
const code = (createdAt = T0, ttl = 60_000) => ({
  group: 'default',
  createdAt,
  expiresAt: createdAt + ttl,
  lookupLength: 4,
});

export function runRegistryBackendSuite(name: string, makeHarness: () => Promise<RegistryHarness>): void {
  describe(`RegistryBackend acceptance: ${name}`, () => {
    const withBackend = (
      title: string,
      fn: (b: RegistryBackend, h: RegistryHarness) => Promise<RegistryBackend | void>,
    ): void =>
      void it(title, async () => {
        const h = await makeHarness();
        let b = await h.create();
        try {
          b = (await fn(b, h)) ?? b;
        } finally {
          await b.stop();
          await h.cleanup();
        }
      });

    withBackend(
      'start and stop are idempotent; a stopped backend refuses with STORE_CLOSED',
      async (b, h) => {
        await b.start();
        assert.equal(b.isStarted(), true);
        await b.stop();
        await b.stop();
        assert.equal(b.isStarted(), false);
        await assert.rejects(b.listDevices(), { code: 'STORE_CLOSED' });
        return h.reopen(b);
      },
    );

    withBackend('devices: added, read, listed in pairing order; a known one keeps its state', async (b) => {
      const [a, c] = [id(), id()];
      const first = await b.putDevice(
        device(a, { state: 'pending', address: '10.0.0.5', appVersion: '1.0' }),
        T0,
      );
      assert.deepEqual(first, {
        deviceId: a,
        name: 'desk',
        group: 'default',
        state: 'pending',
        firstSeen: T0,
        lastSeen: T0,
        lastAddress: '10.0.0.5',
        appVersion: '1.0',
        pairedAt: T0,
        revokedAt: null,
      });
      await b.putDevice(device(c), T0 + 1);
      // Pairing again renames and regroups, never changes the state.
      const again = await b.putDevice(
        device(a, { name: 'laptop', group: 'sales', state: 'approved' }),
        T0 + 2,
      );
      assert.equal(again.state, 'pending');
      assert.equal(again.name, 'laptop');
      assert.equal(again.group, 'sales');
      assert.equal(again.pairedAt, T0 + 2);
      assert.equal(again.firstSeen, T0);
      assert.deepEqual(
        (await b.listDevices()).map((d) => d.deviceId),
        [c, a],
      );
      assert.equal(await b.getDevice(id()), undefined);
    });

    withBackend('devices: an update changes only the fields given; touch records a connection', async (b) => {
      const a = id();
      await b.putDevice(device(a, { appVersion: '1.0' }), T0);
      const revoked = await b.updateDevice(a, { state: 'revoked', revokedAt: T0 + 5 });
      assert.equal(revoked?.state, 'revoked');
      assert.equal(revoked?.revokedAt, T0 + 5);
      assert.equal(revoked?.name, 'desk');
      assert.equal((await b.updateDevice(a, { name: 'front desk', group: 'hr' }))?.group, 'hr');
      assert.equal(await b.updateDevice(id(), { name: 'x' }), undefined);
      await b.touchDevice(a, { at: T0 + 9, address: '10.0.0.9' });
      const seen = await b.getDevice(a);
      assert.equal(seen?.lastSeen, T0 + 9);
      assert.equal(seen?.lastAddress, '10.0.0.9');
      assert.equal(seen?.appVersion, '1.0', 'kept when not given');
      await b.touchDevice(a, { at: T0 + 10, address: '10.0.0.9', appVersion: '1.1' });
      assert.equal((await b.getDevice(a))?.appVersion, '1.1');
    });

    withBackend('groups: there is a default group; a group is created and replaced', async (b) => {
      const initial = await b.listGroups();
      assert.deepEqual(
        initial.map((g) => [g.name, g.read, g.write]),
        [['default', ['*'], ['*']]],
      );
      await b.putGroup({ name: 'sales', description: 'Sales', read: ['sales.*'], write: [] });
      const replaced = await b.putGroup({
        name: 'sales',
        description: 'Sales dept',
        read: ['*'],
        write: ['sales.*'],
      });
      assert.deepEqual(replaced, {
        name: 'sales',
        description: 'Sales dept',
        read: ['*'],
        write: ['sales.*'],
      });
      assert.deepEqual(
        (await b.listGroups()).map((g) => g.name),
        ['default', 'sales'],
      );
    });

    withBackend(
      'groups: deleted only while no device (not revoked) is in it and no active code names it',
      async (b) => {
        await b.putGroup({ name: 'sales', description: '', read: ['*'], write: [] });
        const a = id();
        await b.putDevice(device(a, { group: 'sales', state: 'pending' }), T0);
        assert.deepEqual(await b.deleteGroup('sales', T0), { deleted: false, devices: 1, activeCodes: 0 });
        await b.updateDevice(a, { state: 'revoked', revokedAt: T0 + 1 });
        await b.insertCode({ ...code(T0, 60_000), group: 'sales' }, codes('SALE11111111'));
        assert.deepEqual(
          await b.deleteGroup('sales', T0 + 1),
          { deleted: false, devices: 0, activeCodes: 1 },
          'a revoked device does not hold it; an active code does',
        );
        assert.ok(
          (await b.listGroups()).some((g) => g.name === 'sales'),
          'refused: the group is still there',
        );
        assert.deepEqual(
          await b.deleteGroup('sales', T0 + 60_000),
          { deleted: true, devices: 0, activeCodes: 0 },
          'the code has expired',
        );
        assert.deepEqual(
          (await b.listGroups()).map((g) => g.name),
          ['default'],
        );
        assert.deepEqual(await b.deleteGroup('sales', T0 + 60_000), {
          deleted: false,
          devices: 0,
          activeCodes: 0,
        });
      },
    );

    withBackend(
      'codes: a lookup an active code has is drawn again; found by lookup while active',
      async (b) => {
        assert.equal(await b.insertCode(code(), codes('AAAA11111111')), 'AAAA11111111');
        const second = await b.insertCode(code(), codes('AAAA22222222', 'BBBB22222222'));
        assert.equal(second, 'BBBB22222222', 'the colliding draw was drawn again');
        const found = await b.findActiveCode('AAAA', T0 + 1);
        assert.equal(found?.secret, 'AAAA11111111');
        assert.equal(found?.state, 'active');
        assert.equal(found?.failedAttempts, 0);
        assert.equal(await b.findActiveCode('CCCC', T0 + 1), undefined);
        assert.equal(await b.findActiveCode('AAAA', T0 + 60_000), undefined, 'not once expired');
      },
    );

    withBackend('codes: a right tag spends the code and registers the device, in one step', async (b) => {
      await b.insertCode({ ...code(), group: 'sales' }, codes('AAAA11111111'));
      const codeId = (await b.findActiveCode('AAAA', T0))?.codeId as number;
      const a = id();
      const settled = await b.settleCode(
        codeId,
        { tagMatched: true, deviceId: a, now: T0 + 1, maxAttempts: 3 },
        (group, existing) => {
          assert.equal(existing, undefined);
          return device(a, { group, state: 'pending' });
        },
      );
      assert.equal(settled.outcome, 'paired');
      assert.equal(settled.outcome === 'paired' && settled.result.group, 'sales');
      assert.equal((await b.getDevice(a))?.state, 'pending');
      const [listed] = await b.listCodes(T0 + 2, 10);
      assert.equal(listed?.state, 'used');
      assert.equal(listed?.usedBy, a);
      assert.ok(!('secret' in (listed ?? {})), 'a listed code never has its secret');
      const again = await b.settleCode(
        codeId,
        { tagMatched: true, deviceId: id(), now: T0 + 3, maxAttempts: 3 },
        () => assert.fail('a spent code registers nothing'),
      );
      assert.deepEqual(again, { outcome: 'code-invalid' });
    });

    withBackend('codes: wrong tags count and the last allowed one burns the code', async (b) => {
      await b.insertCode(code(), codes('AAAA11111111'));
      const codeId = (await b.findActiveCode('AAAA', T0))?.codeId as number;
      const wrong = (now: number) =>
        b.settleCode(codeId, { tagMatched: false, deviceId: id(), now, maxAttempts: 2 }, () =>
          assert.fail('a wrong tag registers nothing'),
        );
      assert.deepEqual(await wrong(T0 + 1), { outcome: 'wrong-code', codeState: 'active' });
      assert.equal((await b.findActiveCode('AAAA', T0 + 1))?.failedAttempts, 1);
      assert.deepEqual(await wrong(T0 + 2), { outcome: 'wrong-code', codeState: 'burned' });
      assert.deepEqual(await wrong(T0 + 3), { outcome: 'code-invalid' }, 'a burned code does not count on');
      assert.equal(await b.findActiveCode('AAAA', T0 + 3), undefined);
      assert.deepEqual(
        (await b.activeCodes(T0 + 3)).map((c) => c.codeId),
        [],
      );
    });

    withBackend('codes: a refused registration leaves the code active and stores nothing', async (b) => {
      await b.insertCode(code(), codes('AAAA11111111'));
      const codeId = (await b.findActiveCode('AAAA', T0))?.codeId as number;
      const a = id();
      await assert.rejects(
        b.settleCode(codeId, { tagMatched: true, deviceId: a, now: T0 + 1, maxAttempts: 3 }, () => {
          throw new Error('refused by the rules');
        }),
        /refused by the rules/,
      );
      assert.equal((await b.findActiveCode('AAAA', T0 + 1))?.state, 'active');
      assert.equal(await b.getDevice(a), undefined);
    });

    withBackend(
      'codes: expired codes are marked, their lookups free again; active ones listed newest first',
      async (b) => {
        await b.insertCode(code(T0, 10), codes('AAAA11111111'));
        await b.insertCode(code(T0, 1_000), codes('BBBB11111111'));
        assert.equal(await b.expireCodes(T0 + 10), 1);
        assert.equal(await b.expireCodes(T0 + 10), 0);
        assert.equal(
          await b.insertCode(code(T0 + 20), codes('AAAA33333333')),
          'AAAA33333333',
          'an expired code frees its lookup',
        );
        assert.deepEqual(
          (await b.activeCodes(T0 + 20)).map((c) => c.lookup),
          ['AAAA', 'BBBB'],
        );
        const states = (await b.listCodes(T0 + 20, 10)).map((c) => `${c.lookup}:${c.state}`);
        assert.deepEqual(states, ['AAAA:active', 'BBBB:active', 'AAAA:expired']);
        assert.equal((await b.listCodes(T0 + 20, 1)).length, 1, 'listing is bounded');
      },
    );

    withBackend('sign-in links: each is spent once, never after it expires', async (b) => {
      const hash = (c: string) => c.repeat(64);
      await b.putSignInLink({ hash: hash('a'), createdAt: T0, expiresAt: T0 + 600_000 });
      await b.putSignInLink({ hash: hash('b'), createdAt: T0, expiresAt: T0 + 10 });
      assert.equal(await b.takeSignInLink(hash('c'), T0 + 1), false, 'an unknown link');
      assert.equal(await b.takeSignInLink(hash('b'), T0 + 10), false, 'expired at its expiry');
      const both = await Promise.all([
        b.takeSignInLink(hash('a'), T0 + 1),
        b.takeSignInLink(hash('a'), T0 + 1),
      ]);
      assert.deepEqual(both.sort(), [false, true], 'spent once, by one of two at once');
      assert.equal(await b.takeSignInLink(hash('a'), T0 + 2), false, 'and never again');
    });

    withBackend('sessions: kept until they expire or are deleted', async (b, h) => {
      const s = { hash: 'd'.repeat(64), createdAt: T0, expiresAt: T0 + 1000, via: 'link' as const };
      await b.putAdminSession(s);
      await b.putAdminSession({ ...s, hash: 'e'.repeat(64), via: 'token' });
      assert.deepEqual(await b.getAdminSession(s.hash, T0 + 999), s);
      assert.equal(await b.getAdminSession(s.hash, T0 + 1000), undefined, 'expired');
      assert.equal(await b.getAdminSession('f'.repeat(64), T0), undefined);
      const again = await h.reopen(b);
      assert.deepEqual(await again.getAdminSession(s.hash, T0 + 1), s, 'a session survives a restart');
      await again.deleteAdminSession(s.hash);
      await again.deleteAdminSession(s.hash);
      assert.equal(await again.getAdminSession(s.hash, T0 + 1), undefined, 'signed out');
      assert.equal((await again.getAdminSession('e'.repeat(64), T0 + 1))?.via, 'token', 'others stay');
      return again;
    });

    withBackend('events: appended with increasing ids, filtered, paged both ways', async (b) => {
      const [a, c] = [id(), id()];
      assert.deepEqual(await b.eventBounds(), { oldest: undefined, latest: 0 }, 'none yet');
      const ev = (at: number, type: string, deviceId: string | null) => ({
        at,
        type,
        deviceId,
        data: JSON.stringify({ type, at, ...(deviceId && { deviceId }) }),
      });
      const first = await b.appendEvents([ev(T0, 'device-paired', a), ev(T0 + 1, 'scopes-changed', null)]);
      const second = await b.appendEvents([
        ev(T0 + 2, 'sync-failed', a),
        ev(T0 + 3, 'sync-failed', c),
        ev(T0 + 4, 'device-revoked', a),
      ]);
      const ids = [...first, ...second];
      assert.equal(ids.length, 5);
      for (let i = 1; i < ids.length; i++)
        assert.ok((ids[i] as number) > (ids[i - 1] as number), 'increasing');
      assert.deepEqual(await b.eventBounds(), { oldest: ids[0], latest: ids[4] });
      assert.equal(await b.appendEvents([]).then((x) => x.length), 0, 'an empty batch is nothing');

      const newest = await b.listEvents({ order: 'desc', limit: 2 });
      assert.deepEqual(
        newest.map((e) => e.id),
        [ids[4], ids[3]],
        'newest first',
      );
      assert.deepEqual(newest[0], {
        id: ids[4],
        at: T0 + 4,
        type: 'device-revoked',
        deviceId: a,
        data: JSON.stringify({ type: 'device-revoked', at: T0 + 4, deviceId: a }),
      });
      const older = await b.listEvents({ order: 'desc', limit: 10, beforeId: ids[3] as number });
      assert.deepEqual(
        older.map((e) => e.id),
        [ids[2], ids[1], ids[0]],
        'the next page',
      );
      const after = await b.listEvents({ order: 'asc', limit: 10, afterId: ids[1] as number });
      assert.deepEqual(
        after.map((e) => e.id),
        ids.slice(2),
        'oldest first after an id',
      );
      const ofA = await b.listEvents({
        order: 'desc',
        limit: 10,
        deviceId: a,
        types: ['sync-failed', 'device-paired'],
      });
      assert.deepEqual(
        ofA.map((e) => e.id),
        [ids[2], ids[0]],
        'by device and types',
      );
      const inTime = await b.listEvents({ order: 'asc', limit: 10, since: T0 + 1, until: T0 + 3 });
      assert.deepEqual(
        inTime.map((e) => e.id),
        [ids[1], ids[2]],
        'since inclusive, until exclusive',
      );
    });

    withBackend(
      'events: pruning drops the oldest by time, in batches; ids are never given again',
      async (b, h) => {
        const ids = await b.appendEvents(
          Array.from({ length: 5 }, (_, i) => ({
            at: T0 + i * 1000,
            type: 'error',
            deviceId: null,
            data: '{}',
          })),
        );
        assert.equal(await b.pruneEvents(T0 + 3000, 2), 2, 'at most the limit');
        assert.equal(await b.pruneEvents(T0 + 3000, 2), 1, 'then the rest before the time');
        assert.equal(await b.pruneEvents(T0 + 3000, 2), 0);
        assert.deepEqual(await b.eventBounds(), { oldest: ids[3], latest: ids[4] });
        assert.equal(await b.pruneEvents(T0 + 10_000, 100), 2);
        assert.deepEqual(
          await b.eventBounds(),
          { oldest: undefined, latest: ids[4] },
          'the latest id is remembered',
        );
        const again = await h.reopen(b);
        const [next] = await again.appendEvents([
          { at: T0 + 20_000, type: 'error', deviceId: null, data: '{}' },
        ]);
        assert.ok(
          (next as number) > (ids[4] as number),
          'a new id, also after everything was pruned and a reopen',
        );
        return again;
      },
    );

    withBackend('settings and everything else survive a reopen', async (b, h) => {
      const a = id();
      await b.setSetting('k', 'v1');
      await b.setSetting('k', 'v2');
      // An observation written without waiting for the disk is a commit all the same.
      await b.setSetting('seen', 'o1', { durable: false });
      await b.setSetting('seen', 'o2', { durable: false });
      await b.putDevice(device(a), T0);
      await b.putGroup({ name: 'hr', description: '', read: ['hr.*'], write: ['hr.*'] });
      await b.insertCode(code(), codes('AAAA11111111'));
      const again = await h.reopen(b);
      assert.equal(await again.getSetting('k'), 'v2');
      assert.equal(await again.getSetting('missing'), undefined);
      assert.equal(await again.getSetting('seen'), 'o2');
      assert.equal((await again.getDevice(a))?.name, 'desk');
      assert.ok((await again.listGroups()).some((g) => g.name === 'hr'));
      assert.equal((await again.findActiveCode('AAAA', T0 + 1))?.secret, 'AAAA11111111');
      return again;
    });
  });
}
