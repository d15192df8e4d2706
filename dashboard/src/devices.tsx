import { useState } from 'preact/hooks';
import { api, ApiError, type Device } from './api.js';
import { DeviceDetails } from './device-details.js';
import { Dialog } from './dialog.js';
import { ago, at } from './format.js';
import { deviceState, type HubState } from './hub-state.js';
import { Link } from './router.js';

type Action = { kind: 'rename' | 'move' | 'revoke' | 'details'; device: Device };

/**
 * Every device the hub knows, by its registry name, with what it is doing and
 * what last went wrong; approve, revoke (confirmed), rename and move to a group.
 */
export function Devices({ state, refresh }: { state: HubState; refresh: () => Promise<void> }) {
  const [action, setAction] = useState<Action | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [notice, setNotice] = useState<string | undefined>(undefined);

  const run = async (what: string, call: () => Promise<unknown>) => {
    setError(undefined);
    try {
      await call();
      setNotice(what);
      setAction(undefined);
      await refresh();
    } catch (err) {
      setError(err instanceof ApiError ? `${err.code}: ${err.message}` : String(err));
    }
  };
  const path = (d: Device) => `/devices/${d.deviceId}`;

  return (
    <>
      <h1 tabIndex={-1}>Devices</h1>
      <p role="status" class="notice">
        {notice}
      </p>
      {error && !action && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {state.devices.length === 0 ? (
        <p>
          No device is paired yet. <Link href="/pairing">Issue a pairing code</Link> and pair one.
        </p>
      ) : (
        <div class="table-wrap">
          <table>
            <caption>Devices paired with this hub</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Group</th>
                <th scope="col">State</th>
                <th scope="col">Last seen</th>
                <th scope="col">Address</th>
                <th scope="col">App version</th>
                <th scope="col">Last error</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {state.devices.map((d) => {
                const s = deviceState(d, state);
                const err = state.deviceErrors[d.deviceId];
                return (
                  <tr key={d.deviceId}>
                    <th scope="row">
                      <span class="name">{d.name}</span>
                      <span class="mono sub" title={d.deviceId}>
                        {d.readableId.slice(0, 15)}
                      </span>
                    </th>
                    <td>{d.group}</td>
                    <td>
                      <span class={`badge state-${s}`}>{s}</span>
                    </td>
                    <td>
                      {d.connected ? (
                        'now'
                      ) : (
                        <span title={d.lastSeen ? at(d.lastSeen) : ''}>{ago(d.lastSeen)}</span>
                      )}
                    </td>
                    <td class="mono">{d.lastAddress ?? '-'}</td>
                    <td>{d.appVersion ?? '-'}</td>
                    <td>
                      {err ? (
                        <span title={`${at(err.at)}: ${err.message}`}>{`${err.code}: ${err.message}`}</span>
                      ) : (
                        '-'
                      )}
                    </td>
                    <td class="actions">
                      <button
                        type="button"
                        aria-label={`Sync details of ${d.name}`}
                        onClick={() => setAction({ kind: 'details', device: d })}
                      >
                        Details
                      </button>
                      {d.state === 'pending' && (
                        <button
                          type="button"
                          aria-label={`Approve ${d.name}`}
                          onClick={() =>
                            void run(`${d.name} approved`, () => api('POST', `${path(d)}/approve`))
                          }
                        >
                          Approve
                        </button>
                      )}
                      {d.state !== 'revoked' && (
                        <>
                          <button
                            type="button"
                            aria-label={`Rename ${d.name}`}
                            onClick={() => setAction({ kind: 'rename', device: d })}
                          >
                            Rename
                          </button>
                          <button
                            type="button"
                            aria-label={`Move ${d.name} to a group`}
                            onClick={() => setAction({ kind: 'move', device: d })}
                          >
                            Move
                          </button>
                          <button
                            type="button"
                            class="danger"
                            aria-label={`Revoke ${d.name}`}
                            onClick={() => setAction({ kind: 'revoke', device: d })}
                          >
                            Revoke
                          </button>
                        </>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}

      {action?.kind === 'details' && (
        <DeviceDetails device={action.device} state={state} onClose={() => setAction(undefined)} />
      )}
      {action?.kind === 'rename' && (
        <RenameDialog
          device={action.device}
          error={error}
          onCancel={() => setAction(undefined)}
          onSave={(name) =>
            void run(`${action.device.name} renamed to ${name}`, () =>
              api('PATCH', path(action.device), { name }),
            )
          }
        />
      )}
      {action?.kind === 'move' && (
        <MoveDialog
          device={action.device}
          groups={state.groups.map((g) => g.name)}
          error={error}
          onCancel={() => setAction(undefined)}
          onSave={(group) =>
            void run(`${action.device.name} moved to ${group}`, () =>
              api('PATCH', path(action.device), { group }),
            )
          }
        />
      )}
      {action?.kind === 'revoke' && (
        <Dialog
          role="alertdialog"
          title={`Revoke ${action.device.name}?`}
          description="The device is disconnected at once and can never sync with this hub again, not even by pairing anew with the same identity."
          onClose={() => setAction(undefined)}
        >
          {error && (
            <p role="alert" class="error">
              {error}
            </p>
          )}
          <div class="buttons">
            <button type="button" data-autofocus onClick={() => setAction(undefined)}>
              Cancel
            </button>
            <button
              type="button"
              class="danger"
              onClick={() =>
                void run(`${action.device.name} revoked`, () => api('POST', `${path(action.device)}/revoke`))
              }
            >
              Revoke device
            </button>
          </div>
        </Dialog>
      )}
    </>
  );
}

function RenameDialog(props: {
  device: Device;
  error?: string;
  onCancel: () => void;
  onSave: (name: string) => void;
}) {
  const [name, setName] = useState(props.device.name);
  return (
    <Dialog title={`Rename ${props.device.name}`} onClose={props.onCancel}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          props.onSave(name.trim());
        }}
      >
        <label for="device-name">New name</label>
        <input
          id="device-name"
          data-autofocus
          required
          maxLength={128}
          value={name}
          onInput={(e) => setName((e.target as HTMLInputElement).value)}
        />
        {props.error && (
          <p role="alert" class="error">
            {props.error}
          </p>
        )}
        <div class="buttons">
          <button type="button" onClick={props.onCancel}>
            Cancel
          </button>
          <button type="submit">Save</button>
        </div>
      </form>
    </Dialog>
  );
}

function MoveDialog(props: {
  device: Device;
  groups: string[];
  error?: string;
  onCancel: () => void;
  onSave: (group: string) => void;
}) {
  const [group, setGroup] = useState(props.device.group);
  return (
    <Dialog
      title={`Move ${props.device.name} to a group`}
      description="Its group decides which collections it may read and write; it reconnects at once under the new scopes."
      onClose={props.onCancel}
    >
      <form
        onSubmit={(e) => {
          e.preventDefault();
          props.onSave(group);
        }}
      >
        <label for="device-group">Group</label>
        <select
          id="device-group"
          data-autofocus
          value={group}
          onChange={(e) => setGroup((e.target as HTMLSelectElement).value)}
        >
          {props.groups.map((g) => (
            <option key={g} value={g}>
              {g}
            </option>
          ))}
        </select>
        {props.error && (
          <p role="alert" class="error">
            {props.error}
          </p>
        )}
        <div class="buttons">
          <button type="button" onClick={props.onCancel}>
            Cancel
          </button>
          <button type="submit">Move</button>
        </div>
      </form>
    </Dialog>
  );
}
