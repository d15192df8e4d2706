import { useId, useState } from 'preact/hooks';
import { api, ApiError, type Group } from './api.js';
import { Dialog } from './dialog.js';
import type { HubState } from './hub-state.js';
import { groupNameProblem, parsePatterns, scopePatternProblem } from './scope-patterns.js';

type Action = { kind: 'create' } | { kind: 'edit'; group: Group } | { kind: 'delete'; group: Group };

const message = (err: unknown) => (err instanceof ApiError ? `${err.code}: ${err.message}` : String(err));

/**
 * Device groups and the collections each may read and write: create, edit and
 * delete (confirmed). The page checks names and patterns as they are typed; the
 * hub checks them again, and its answer (with its error code) is shown as it is.
 */
export function Groups({ state, refresh }: { state: HubState; refresh: () => Promise<void> }) {
  const [action, setAction] = useState<Action | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [notice, setNotice] = useState<string | undefined>(undefined);

  const members = (g: Group) => state.devices.filter((d) => d.group === g.name && d.state !== 'revoked');
  const close = () => {
    setAction(undefined);
    setError(undefined);
  };
  const run = async (what: string, call: () => Promise<unknown>) => {
    setError(undefined);
    try {
      await call();
      setNotice(what);
      setAction(undefined);
      await refresh();
    } catch (err) {
      setError(message(err));
    }
  };
  const path = (name: string) => `/groups/${encodeURIComponent(name)}`;

  return (
    <>
      <h1 tabIndex={-1}>Groups and scopes</h1>
      <p>
        A device’s group decides which collections it may read and write. Patterns are collection names,{' '}
        <code>*</code> for every collection, or a name’s beginning and one <code>*</code> (
        <code>sales.*</code>). Devices of a changed group reconnect at once under its new scopes.
      </p>
      <p role="status" class="notice">
        {notice}
      </p>
      <p>
        <button type="button" onClick={() => setAction({ kind: 'create' })}>
          New group
        </button>
      </p>
      <div class="table-wrap">
        <table>
          <caption>Device groups</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Description</th>
              <th scope="col">May read</th>
              <th scope="col">May write</th>
              <th scope="col">Devices</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {state.groups.map((g) => (
              <tr key={g.name}>
                <th scope="row">{g.name}</th>
                <td>{g.description || '-'}</td>
                <td>
                  <Patterns list={g.read} />
                </td>
                <td>
                  <Patterns list={g.write} />
                </td>
                <td>{members(g).length}</td>
                <td class="actions">
                  <button
                    type="button"
                    aria-label={`Edit ${g.name}`}
                    onClick={() => setAction({ kind: 'edit', group: g })}
                  >
                    Edit
                  </button>
                  {g.name !== 'default' && (
                    <button
                      type="button"
                      class="danger"
                      aria-label={`Delete ${g.name}`}
                      onClick={() => setAction({ kind: 'delete', group: g })}
                    >
                      Delete
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <p class="help">The default group, where devices paired without a group go, cannot be deleted.</p>

      {(action?.kind === 'create' || action?.kind === 'edit') && (
        <GroupDialog
          {...(action.kind === 'edit' && { group: action.group })}
          taken={state.groups.map((g) => g.name)}
          error={error}
          onCancel={close}
          onSave={(g) =>
            void run(action.kind === 'create' ? `Group ${g.name} created` : `Group ${g.name} saved`, () =>
              api('PUT', path(g.name), { description: g.description, read: g.read, write: g.write }),
            )
          }
        />
      )}
      {action?.kind === 'delete' && (
        <Dialog
          role="alertdialog"
          title={`Delete group ${action.group.name}?`}
          description={
            members(action.group).length > 0
              ? `${members(action.group).length} device(s) are in it: the hub refuses to delete it until they are moved to another group.`
              : 'The group and its scopes are removed. The hub refuses while a pairing code for it is still active.'
          }
          onClose={close}
        >
          {error && (
            <p role="alert" class="error">
              {error}
            </p>
          )}
          <div class="buttons">
            <button type="button" data-autofocus onClick={close}>
              Cancel
            </button>
            <button
              type="button"
              class="danger"
              onClick={() =>
                void run(`Group ${action.group.name} deleted`, () => api('DELETE', path(action.group.name)))
              }
            >
              Delete group
            </button>
          </div>
        </Dialog>
      )}
    </>
  );
}

function Patterns({ list }: { list: string[] }) {
  if (list.length === 0) return <span class="sub">nothing</span>;
  return (
    <ul class="patterns">
      {list.map((p) => (
        <li key={p}>
          <code>{p}</code>
        </li>
      ))}
    </ul>
  );
}

type Field = 'name' | 'read' | 'write';

/** Create (no `group`) or edit a group: name, description, read and write patterns, checked before sending. */
function GroupDialog(props: {
  group?: Group;
  taken: string[];
  error?: string;
  onCancel: () => void;
  onSave: (group: Group) => void;
}) {
  const editing = props.group !== undefined;
  const [name, setName] = useState(props.group?.name ?? '');
  const [description, setDescription] = useState(props.group?.description ?? '');
  const [read, setRead] = useState((props.group?.read ?? []).join('\n'));
  const [write, setWrite] = useState((props.group?.write ?? []).join('\n'));
  const [problems, setProblems] = useState<Partial<Record<Field, string>>>({});
  const id = useId();
  const fieldId = (f: Field | 'description') => `${id}-${f}`;

  const check = (): Partial<Record<Field, string>> => {
    const found: Partial<Record<Field, string>> = {};
    if (!editing) {
      const n = groupNameProblem(name.trim());
      if (n) found.name = n;
      else if (props.taken.includes(name.trim()))
        found.name = `A group named ${name.trim()} exists already: edit it instead.`;
    }
    for (const [field, text] of [
      ['read', read],
      ['write', write],
    ] as const) {
      const bad = parsePatterns(text)
        .map(scopePatternProblem)
        .find((p) => p !== undefined);
      if (bad) found[field] = bad;
    }
    return found;
  };

  const submit = (e: Event) => {
    e.preventDefault();
    const found = check();
    setProblems(found);
    const first = (['name', 'read', 'write'] as const).find((f) => found[f]);
    if (first) {
      document.getElementById(fieldId(first))?.focus();
      return;
    }
    props.onSave({
      name: name.trim(),
      description: description.trim(),
      read: parsePatterns(read),
      write: parsePatterns(write),
    });
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
    <Dialog
      title={editing ? `Edit group ${props.group?.name}` : 'New group'}
      description="Separate patterns with commas, spaces or new lines. Leave a field empty for nothing."
      onClose={props.onCancel}
    >
      <form onSubmit={submit} noValidate>
        {!editing && (
          <>
            <label for={fieldId('name')}>Name</label>
            <input
              id={fieldId('name')}
              data-autofocus
              maxLength={64}
              value={name}
              onInput={(e) => setName((e.target as HTMLInputElement).value)}
              {...invalid('name')}
            />
            {problem('name')}
          </>
        )}
        <label for={fieldId('description')}>Description</label>
        <input
          id={fieldId('description')}
          maxLength={500}
          value={description}
          {...(editing && { 'data-autofocus': true })}
          onInput={(e) => setDescription((e.target as HTMLInputElement).value)}
        />
        <label for={fieldId('read')}>May read</label>
        <textarea
          id={fieldId('read')}
          rows={3}
          value={read}
          onInput={(e) => setRead((e.target as HTMLTextAreaElement).value)}
          {...invalid('read')}
        />
        {problem('read')}
        <label for={fieldId('write')}>May write</label>
        <textarea
          id={fieldId('write')}
          rows={3}
          value={write}
          onInput={(e) => setWrite((e.target as HTMLTextAreaElement).value)}
          {...invalid('write')}
        />
        {problem('write')}
        {props.error && (
          <p role="alert" class="error">
            {props.error}
          </p>
        )}
        <div class="buttons">
          <button type="button" onClick={props.onCancel}>
            Cancel
          </button>
          <button type="submit">{editing ? 'Save' : 'Create group'}</button>
        </div>
      </form>
    </Dialog>
  );
}
