/**
 * The Settings page's form: the hub's settings as the form holds them while they
 * are edited, their checks, and the change a save sends (only the parts that
 * differ from the settings the edit started from). No I/O.
 */
import { parsePatterns, scopePatternProblem } from './scope-patterns.js';

export type Strategy = 'lww' | 'hub-wins' | 'merge' | 'manual';

/** `GET /api/settings` (docs/API.md, "Settings and the collection policy"). */
export interface HubSettings {
  requireApproval: boolean;
  policy: {
    version: number;
    updatedAt: number;
    collections: Record<string, { conflict?: Strategy; localOnly?: boolean }>;
    hubOnly: string[];
    retention: { maxRevisions?: number; maxAgeDays?: number };
  };
}

/** The body of `PUT /api/settings`: only the parts that change. */
export interface SettingsChange {
  requireApproval?: boolean;
  collections?: HubSettings['policy']['collections'];
  hubOnly?: string[];
  retention?: HubSettings['policy']['retention'];
}

export interface Row {
  name: string;
  conflict: Strategy;
  localOnly: boolean;
}

/** The settings as the form holds them while they are edited: text as typed. */
export interface Form {
  requireApproval: boolean;
  maxRevisions: string;
  maxAgeDays: string;
  hubOnly: string;
  collections: Row[];
}

/** A form field that can hold a problem. */
export type Field = 'maxRevisions' | 'maxAgeDays' | 'hubOnly' | 'add';

/** The form showing `s`: numbers as text, empty for "keep all", collections by name. */
export function formOf(s: HubSettings): Form {
  const r = s.policy.retention;
  return {
    requireApproval: s.requireApproval,
    maxRevisions: r.maxRevisions === undefined ? '' : String(r.maxRevisions),
    maxAgeDays: r.maxAgeDays === undefined ? '' : String(r.maxAgeDays),
    hubOnly: s.policy.hubOnly.join('\n'),
    collections: Object.entries(s.policy.collections)
      .map(([name, c]) => ({ name, conflict: c.conflict ?? 'lww', localOnly: c.localOnly === true }))
      .sort((a, b) => a.name.localeCompare(b.name)),
  };
}

/** The two forms show the same thing (edits that came back to the start count as none). */
export const sameForm = (a: Form, b: Form) => JSON.stringify(a) === JSON.stringify(b);

/** The collection table as the hub keeps it: defaults (lww, synced) left out, names in order. */
function collectionsOf(rows: Row[]): HubSettings['policy']['collections'] {
  const out: HubSettings['policy']['collections'] = {};
  for (const r of [...rows].sort((a, b) => a.name.localeCompare(b.name))) {
    if (r.conflict === 'lww' && !r.localOnly) continue;
    out[r.name] = {
      ...(r.conflict !== 'lww' && { conflict: r.conflict }),
      ...(r.localOnly && { localOnly: true }),
    };
  }
  return out;
}

/** What is wrong with the form's fields, by field: the hub's own limits, checked before sending. */
export function problemsOf(form: Form): Partial<Record<Field, string>> {
  const found: Partial<Record<Field, string>> = {};
  const revisions = form.maxRevisions.trim();
  if (revisions && !(Number.isInteger(Number(revisions)) && Number(revisions) >= 1))
    found.maxRevisions = 'A whole number of 1 or more, or empty to keep every revision.';
  const days = form.maxAgeDays.trim();
  if (days && !(Number(days) > 0 && Number(days) <= 36500))
    found.maxAgeDays = 'A number of days above 0 and at most 36500, or empty to keep history of any age.';
  const bad = parsePatterns(form.hubOnly)
    .map(scopePatternProblem)
    .find((p) => p !== undefined);
  if (bad) found.hubOnly = bad;
  return found;
}

/** What the form changes in the settings it started from; an empty object when nothing. */
export function changeOf(form: Form, base: HubSettings): SettingsChange {
  const change: SettingsChange = {};
  if (form.requireApproval !== base.requireApproval) change.requireApproval = form.requireApproval;
  const collections = collectionsOf(form.collections);
  if (JSON.stringify(collections) !== JSON.stringify(collectionsOf(formOf(base).collections)))
    change.collections = collections;
  const hubOnly = parsePatterns(form.hubOnly);
  if (JSON.stringify(hubOnly) !== JSON.stringify(base.policy.hubOnly)) change.hubOnly = hubOnly;
  const revisions = form.maxRevisions.trim();
  const days = form.maxAgeDays.trim();
  const retention = {
    ...(revisions && { maxRevisions: Number(revisions) }),
    ...(days && { maxAgeDays: Number(days) }),
  };
  const was = base.policy.retention;
  if (retention.maxRevisions !== was.maxRevisions || retention.maxAgeDays !== was.maxAgeDays)
    change.retention = retention;
  return change;
}
