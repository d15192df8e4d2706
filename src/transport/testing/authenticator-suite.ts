/**
 * The acceptance suite every Authenticator must pass. A new implementation's test
 * is its harness: how to make a device allowed, and how to take that back.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { DeviceId } from '../../store/types.js';
import type { AuthDecision, Authenticator } from '../authenticator.js';

export interface AuthenticatorHarness {
  authenticator: Authenticator;
  /** Makes a device allowed to sync (registered, approved). */
  allow(deviceId: DeviceId): Promise<void> | void;
  /** Takes a device's permission away for good (revoked, removed). */
  withdraw(deviceId: DeviceId): Promise<void> | void;
  cleanup(): Promise<void> | void;
}

const device = () => randomBytes(32).toString('hex') as DeviceId;

export function runAuthenticatorSuite(name: string, make: () => Promise<AuthenticatorHarness>): void {
  describe(`Authenticator acceptance: ${name}`, () => {
    const withHarness = (title: string, fn: (h: AuthenticatorHarness) => Promise<void>): void =>
      void it(title, async () => {
        const h = await make();
        try {
          await fn(h);
        } finally {
          await h.cleanup();
        }
      });

    const decide = async (
      h: AuthenticatorHarness,
      deviceId: DeviceId,
      address = '10.0.0.5',
    ): Promise<AuthDecision> => h.authenticator.authenticate({ deviceId, address });

    withHarness('an allowed device may sync', async (h) => {
      const id = device();
      await h.allow(id);
      assert.deepEqual(await decide(h, id), { allow: 'sync' });
    });

    withHarness('an unknown device never gets sync access', async (h) => {
      const d = await decide(h, device());
      assert.ok(!('allow' in d) || d.allow !== 'sync');
    });

    withHarness('a withdrawn device is refused with a stable code and a reason', async (h) => {
      const id = device();
      await h.allow(id);
      await h.withdraw(id);
      const d = await decide(h, id);
      assert.ok('deny' in d, 'refused');
      assert.match(d.deny, /^[A-Z][A-Z_]+$/);
      assert.ok(d.reason.length > 0);
    });

    withHarness("the decision depends on the certificate's device ID, not on the address", async (h) => {
      const id = device();
      await h.allow(id);
      for (const address of ['10.0.0.5', 'fd77::9', '127.0.0.1'])
        assert.deepEqual(await decide(h, id, address), { allow: 'sync' });
    });
  });
}
