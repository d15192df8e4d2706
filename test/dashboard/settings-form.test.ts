/**
 * The Settings page's form: what a save sends is only what was edited, in the
 * shape the admin API takes, and its checks refuse what the hub would.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { changeOf, formOf, type HubSettings, problemsOf } from '../../dashboard/src/settings-form.js';
import { settingsPut } from '../../src/hub/admin-api/schemas.js';

const base: HubSettings = {
  requireApproval: false,
  policy: {
    version: 3,
    updatedAt: 1,
    collections: { tickets: { conflict: 'manual' }, diary: { localOnly: true } },
    hubOnly: ['audit.*'],
    retention: { maxRevisions: 50 },
  },
};

describe('the Settings form', () => {
  it('unedited, it changes nothing', () => {
    assert.deepEqual(changeOf(formOf(base), base), {});
  });

  it('sends only the parts edited, in the shape PUT /api/settings takes', () => {
    const form = formOf(base);
    form.collections = form.collections.map((r) => (r.name === 'tickets' ? { ...r, conflict: 'merge' } : r));
    let change = changeOf(form, base);
    assert.deepEqual(change, {
      collections: { diary: { localOnly: true }, tickets: { conflict: 'merge' } },
    });
    assert.ok(settingsPut.safeParse(change).success);

    change = changeOf({ ...formOf(base), maxRevisions: '', maxAgeDays: '30', requireApproval: true }, base);
    assert.deepEqual(change, { requireApproval: true, retention: { maxAgeDays: 30 } });
    assert.ok(settingsPut.safeParse(change).success);

    change = changeOf({ ...formOf(base), hubOnly: 'audit.*, payroll\n' }, base);
    assert.deepEqual(change, { hubOnly: ['audit.*', 'payroll'] });
  });

  it('a row at the defaults (lww, synced) is no change; a removed row is', () => {
    const form = formOf(base);
    form.collections.push({ name: 'notes', conflict: 'lww', localOnly: false });
    assert.deepEqual(changeOf(form, base), {});
    form.collections = form.collections.filter((r) => r.name !== 'diary');
    assert.deepEqual(changeOf(form, base), { collections: { tickets: { conflict: 'manual' } } });
  });

  it('refuses retention and hub-only patterns the hub refuses', () => {
    const form = formOf(base);
    assert.deepEqual(problemsOf(form), {});
    const problems = problemsOf({ ...form, maxRevisions: '2.5', maxAgeDays: '40000', hubOnly: 'audit.* *x' });
    assert.deepEqual(Object.keys(problems).sort(), ['hubOnly', 'maxAgeDays', 'maxRevisions']);
    assert.ok(problemsOf({ ...form, maxRevisions: '0' }).maxRevisions, 'at least one revision');
    assert.equal(problemsOf({ ...form, maxAgeDays: '0.5' }).maxAgeDays, undefined, 'half a day is allowed');
  });
});
