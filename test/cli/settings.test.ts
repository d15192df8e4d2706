/**
 * `trosyn-sync settings` on a hub's data directory, with real processes: the
 * collection policy taken from config.json, changed from the command line, kept
 * across restarts, and a child's config.json that tries to set what the hub decides.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir } from '../helpers.js';
import { freePort, hubArgs, runCli, runText, startAgent } from '../e2e/helpers.js';

const dir = tempDir('trosyn-settings-');
after(() => dir.remove());

interface Settings {
  requireApproval: boolean;
  policy: {
    version: number;
    collections: Record<string, { conflict?: string; localOnly?: boolean }>;
    hubOnly: string[];
    retention: { maxRevisions?: number; maxAgeDays?: number };
  };
  resettled?: number;
}

describe('trosyn-sync settings', () => {
  const data = join(dir.path, 'hub');

  async function runHub(): Promise<void> {
    const hub = startAgent([...hubArgs(data, await freePort()), '--no-admin-api']);
    try {
      await hub.waitFor((l) => l.event === 'started', 20_000, 'hub starts');
    } finally {
      await hub.kill();
    }
  }
  const settings = async (...args: string[]) =>
    (await runCli(['settings', ...args, '--data', data])) as unknown as Settings;

  it('takes the policy from config.json, changes it part by part, and keeps changes across restarts', async () => {
    mkdirSync(data, { recursive: true });
    const config = (tickets: string) =>
      writeFileSync(
        join(data, 'config.json'),
        JSON.stringify({
          collections: { tickets: { conflict: tickets }, diary: { localOnly: true } },
          retention: { maxRevisions: 5 },
        }),
      );
    config('manual');
    await runHub();
    let s = await settings();
    assert.equal(s.policy.version, 1);
    assert.deepEqual(s.policy.collections, { tickets: { conflict: 'manual' }, diary: { localOnly: true } });
    assert.deepEqual(s.policy.retention, { maxRevisions: 5 });

    s = await settings('collection', 'notes', '--conflict', 'merge');
    assert.equal(s.policy.version, 2);
    assert.equal(s.policy.collections.notes?.conflict, 'merge');
    s = await settings(
      'set',
      '--require-approval',
      'on',
      '--hub-only',
      'audit.*,payroll',
      '--retention-days',
      '30',
    );
    assert.equal(s.policy.version, 3);
    assert.equal(s.requireApproval, true);
    assert.deepEqual(s.policy.hubOnly, ['audit.*', 'payroll']);
    assert.deepEqual(s.policy.retention, { maxRevisions: 5, maxAgeDays: 30 });
    s = await settings('collection', 'diary', '--no-local-only');
    assert.equal(s.policy.collections.diary, undefined, 'back to the defaults: not listed');

    // The same config.json again: what the command line changed stays.
    await runHub();
    s = await settings();
    assert.equal(s.policy.version, 4);
    assert.equal(s.policy.collections.notes?.conflict, 'merge');
    assert.equal(s.policy.collections.diary, undefined);

    // An edited config.json changes what was edited, and only that.
    config('lww');
    await runHub();
    s = await settings();
    assert.equal(s.policy.version, 5);
    assert.equal(s.policy.collections.tickets, undefined, 'tickets back to lww');
    assert.equal(s.policy.collections.notes?.conflict, 'merge', 'the command line’s change stays');
    assert.deepEqual(s.policy.hubOnly, ['audit.*', 'payroll']);

    const text = await runText(['settings', '--data', data]);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /approval: +new devices wait for an admin/);
    assert.match(text.stdout, /notes +merge +synced/);
  });

  it('refuses bad values with a clear code and changes nothing', async () => {
    const before = await settings();
    const usage = await runText(['settings', 'collection', 'notes', '--conflict', 'newest', '--data', data]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--conflict is one of lww, hub-wins, merge, manual/);
    const nothing = await runText(['settings', 'set', '--data', data]);
    assert.equal(nothing.code, 2);
    const pattern = await runText(['settings', 'set', '--hub-only', '../x', '--data', data]);
    assert.equal(pattern.code, 1);
    assert.match(pattern.stderr, /INVALID_SCOPE_PATTERN/);
    const name = await runText(['settings', 'collection', '../x', '--conflict', 'manual', '--data', data]);
    assert.equal(name.code, 1);
    assert.match(name.stderr, /INVALID_POLICY/);
    assert.deepEqual(await settings(), before);
  });

  it("a child's config.json may not set what the hub decides", async () => {
    const child = join(dir.path, 'child');
    mkdirSync(child, { recursive: true });
    writeFileSync(
      join(child, 'config.json'),
      JSON.stringify({ collections: { tickets: { conflict: 'manual' } } }),
    );
    const r = await runText(['child', '--data', child, '--no-discovery']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /CHILD_POLICY_SETTING: .*collections\.tickets\.conflict is the hub's to set/);
  });
});
