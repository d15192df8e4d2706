import { useEffect, useId, useLayoutEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import type { HubState } from './hub-state.js';
import { errorText, useLoaded } from './records-api.js';
import { collectionNameProblem } from './scope-patterns.js';
import {
  changeOf,
  type Field,
  type Form,
  formOf,
  type HubSettings,
  problemsOf,
  type Row,
  sameForm,
  type Strategy,
} from './settings-form.js';

const STRATEGIES: { value: Strategy; label: string }[] = [
  { value: 'lww', label: 'lww: the last write wins' },
  { value: 'hub-wins', label: 'hub-wins: the hub’s write wins' },
  { value: 'merge', label: 'merge: field by field' },
  { value: 'manual', label: 'manual: a person decides' },
];

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/**
 * The hub's settings: approval mode, history retention, hub-only collections and
 * each collection's conflict strategy and local-only flag, saved together with one
 * PUT. A change made elsewhere (the CLI, another browser) shows at once unless the
 * form holds unsaved edits; then the page says so and keeps the edits.
 */
export function Settings({ state }: { state: HubState }) {
  // Each settings-changed event loads the settings again.
  const changed = state.recent.find((l) => l.event.type === 'settings-changed')?.id ?? 0;
  const loaded = useLoaded(() => api<HubSettings>('GET', '/settings'), String(changed));
  const known = useLoaded(() => api<{ collections: string[] }>('GET', '/collections'), '');
  const [base, setBase] = useState<HubSettings | undefined>(undefined);
  const [form, setForm] = useState<Form | undefined>(undefined);
  const [elsewhere, setElsewhere] = useState<HubSettings | undefined>(undefined);
  const [problems, setProblems] = useState<Partial<Record<Field, string>>>({});
  const [adding, setAdding] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const [saving, setSaving] = useState(false);
  const [focusRow, setFocusRow] = useState<string | undefined>(undefined);
  const id = useId();
  const fieldId = (f: Field | 'approval') => `${id}-${f}`;
  const rowId = (name: string) => `${id}-row-${name}`;

  const show = (s: HubSettings) => {
    setBase(s);
    setForm(formOf(s));
    setElsewhere(undefined);
    setProblems({});
  };
  const dirty = base !== undefined && form !== undefined && !sameForm(form, formOf(base));

  useEffect(() => {
    const latest = loaded.value;
    if (!latest) return;
    if (!dirty) show(latest);
    else if (JSON.stringify(latest) !== JSON.stringify(base)) setElsewhere(latest);
    // Only a new load decides; edits alone never take the loaded settings.
  }, [loaded.value]);

  // Before the paint, so the keyboard never lands on the old field for a frame.
  useLayoutEffect(() => {
    if (focusRow) document.getElementById(rowId(focusRow))?.focus();
    setFocusRow(undefined);
  }, [focusRow]);

  if (!form || !base)
    return (
      <>
        <h1 tabIndex={-1}>Settings</h1>
        {loaded.error ? (
          <p role="alert" class="error">
            Could not load the settings: {loaded.error}
          </p>
        ) : (
          <p role="status">Loading…</p>
        )}
      </>
    );

  const edit = (patch: Partial<Form>) => setForm({ ...form, ...patch });
  const editRow = (name: string, patch: Partial<Row>) =>
    edit({ collections: form.collections.map((r) => (r.name === name ? { ...r, ...patch } : r)) });
  const listed = new Set(form.collections.map((r) => r.name));
  const suggestions = (known.value?.collections ?? []).filter((c) => !listed.has(c));

  const add = () => {
    const name = adding.trim();
    const problem =
      collectionNameProblem(name) ?? (listed.has(name) ? `${name} is in the table already.` : undefined);
    setProblems({ ...problems, add: problem });
    if (problem) return;
    edit({ collections: [...form.collections, { name, conflict: 'lww', localOnly: false }] });
    setAdding('');
    setFocusRow(name);
  };

  const save = async (e: Event) => {
    e.preventDefault();
    const found = problemsOf(form);
    setProblems(found);
    setNotice(undefined);
    setError(undefined);
    const first = (['maxRevisions', 'maxAgeDays', 'hubOnly'] as const).find((f) => found[f]);
    if (first) {
      document.getElementById(fieldId(first))?.focus();
      return;
    }
    const change = changeOf(form, base);
    if (Object.keys(change).length === 0) {
      setNotice('Nothing to save: the form shows the settings in force.');
      return;
    }
    setSaving(true);
    try {
      const { resettled = 0, ...now } = await api<HubSettings & { resettled?: number }>(
        'PUT',
        '/settings',
        change,
      );
      show(now);
      setNotice(
        `Saved: policy version ${now.policy.version}` +
          (resettled > 0 ? `, ${plural(resettled, 'conflict', 'conflicts')} settled again.` : '.'),
      );
    } catch (err) {
      setError(errorText(err));
    } finally {
      setSaving(false);
    }
  };

  /** Props that tie a field to its problem, read out with it. */
  const invalid = (f: Field) =>
    problems[f] ? { 'aria-invalid': true, 'aria-describedby': `${fieldId(f)}-problem` } : {};
  const problem = (f: Field) =>
    problems[f] && (
      <p id={`${fieldId(f)}-problem`} class="error">
        {problems[f]}
      </p>
    );

  return (
    <>
      <h1 tabIndex={-1}>Settings</h1>
      <p>
        These settings reach every child: each applies the same collection policy as soon as it is connected.
        Changing a collection’s conflict strategy settles its existing conflicts again, on every device, by
        the new strategy.
      </p>
      <p class="help">
        Policy version {base.policy.version}
        {base.policy.updatedAt > 0 && `, changed ${new Date(base.policy.updatedAt).toLocaleString()}`}.
      </p>
      <div role="status">
        {elsewhere && (
          <p class="warning">
            The settings were changed elsewhere (now policy version {elsewhere.policy.version}) while you were
            editing.{' '}
            <button type="button" onClick={() => show(elsewhere)}>
              Reload settings
            </button>{' '}
            <span class="sub">Reloading drops your unsaved edits; saving replaces what you changed.</span>
          </p>
        )}
      </div>
      <form class="settings" onSubmit={(e) => void save(e)} noValidate>
        <fieldset>
          <legend>Approval</legend>
          <label class="check">
            <input
              type="checkbox"
              checked={form.requireApproval}
              onChange={(e) => edit({ requireApproval: (e.target as HTMLInputElement).checked })}
            />
            New devices wait for an admin’s approval before they sync
          </label>
        </fieldset>

        <fieldset>
          <legend>History retention</legend>
          <p class="help">
            Leave a field empty to keep all. The current version and conflict sides are always kept.
          </p>
          <label for={fieldId('maxRevisions')}>Revisions kept per record</label>
          <input
            id={fieldId('maxRevisions')}
            type="number"
            min={1}
            step={1}
            placeholder="keep all"
            value={form.maxRevisions}
            onInput={(e) => edit({ maxRevisions: (e.target as HTMLInputElement).value })}
            {...invalid('maxRevisions')}
          />
          {problem('maxRevisions')}
          <label for={fieldId('maxAgeDays')}>Oldest history kept (days)</label>
          <input
            id={fieldId('maxAgeDays')}
            type="number"
            min={1}
            placeholder="keep all"
            value={form.maxAgeDays}
            onInput={(e) => edit({ maxAgeDays: (e.target as HTMLInputElement).value })}
            {...invalid('maxAgeDays')}
          />
          {problem('maxAgeDays')}
        </fieldset>

        <fieldset>
          <legend>Hub-only collections</legend>
          <label for={fieldId('hubOnly')}>Kept on the hub, never sent to children nor taken from them</label>
          <textarea
            id={fieldId('hubOnly')}
            rows={2}
            value={form.hubOnly}
            onInput={(e) => edit({ hubOnly: (e.target as HTMLTextAreaElement).value })}
            {...invalid('hubOnly')}
          />
          <p class="help">
            Collection names, or a name’s beginning and one <code>*</code> (<code>audit.*</code>), separated
            by commas, spaces or new lines. Children reconnect when these change.
          </p>
          {problem('hubOnly')}
        </fieldset>

        <fieldset>
          <legend>Collections</legend>
          <div class="table-wrap">
            <table>
              <caption>
                Conflict strategy and sync of each collection; collections not listed: lww, synced
              </caption>
              <thead>
                <tr>
                  <th scope="col">Collection</th>
                  <th scope="col">Conflict strategy</th>
                  <th scope="col">Local only</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {form.collections.map((r) => (
                  <tr key={r.name}>
                    <th scope="row">{r.name}</th>
                    <td>
                      <select
                        id={rowId(r.name)}
                        aria-label={`Conflict strategy of ${r.name}`}
                        value={r.conflict}
                        onChange={(e) =>
                          editRow(r.name, { conflict: (e.target as HTMLSelectElement).value as Strategy })
                        }
                      >
                        {STRATEGIES.map((s) => (
                          <option key={s.value} value={s.value}>
                            {s.label}
                          </option>
                        ))}
                      </select>
                    </td>
                    <td>
                      <input
                        type="checkbox"
                        aria-label={`${r.name} is local only`}
                        checked={r.localOnly}
                        onChange={(e) =>
                          editRow(r.name, { localOnly: (e.target as HTMLInputElement).checked })
                        }
                      />
                    </td>
                    <td>
                      <button
                        type="button"
                        class="danger"
                        aria-label={`Remove ${r.name}`}
                        onClick={() => {
                          edit({ collections: form.collections.filter((x) => x.name !== r.name) });
                          document.getElementById(fieldId('add'))?.focus();
                        }}
                      >
                        Remove
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <p class="help">
            Local-only collections never leave the device that writes them. A removed collection goes back to
            lww, synced.
          </p>
          <div class="inline-form">
            <div>
              <label for={fieldId('add')}>Collection name</label>
              <input
                id={fieldId('add')}
                list={`${id}-known`}
                value={adding}
                onInput={(e) => setAdding((e.target as HTMLInputElement).value)}
                onKeyDown={(e) => {
                  // Enter here adds the collection rather than saving the whole form.
                  if (e.key === 'Enter') {
                    e.preventDefault();
                    add();
                  }
                }}
                {...invalid('add')}
              />
              <datalist id={`${id}-known`}>
                {suggestions.map((c) => (
                  <option key={c} value={c} />
                ))}
              </datalist>
              {problem('add')}
            </div>
            <button type="button" onClick={add}>
              Add collection
            </button>
          </div>
        </fieldset>

        {error && (
          <p role="alert" class="error">
            {error}
          </p>
        )}
        <div class="buttons start">
          <button type="submit" disabled={saving}>
            Save settings
          </button>
          <button type="button" disabled={!dirty} onClick={() => show(base)}>
            Discard changes
          </button>
        </div>
        <p role="status" class="notice">
          {notice}
        </p>
      </form>
    </>
  );
}
