import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api.js';
import { at, bytes } from './format.js';
import type { HubState } from './hub-state.js';
import { useQuery, withQuery } from './query.js';
import {
  authorName,
  downloadUrl,
  type FileHistoryEntry,
  type FileTransfers,
  type FileView,
  shortRev,
  useLoaded,
} from './records-api.js';
import { Link, navigate } from './router.js';

/** How often the transfers are asked for while the page is open. */
const TRANSFERS_EVERY_MS = 2000;

/** Changes when the hub's records or the file content it holds do: the key to load again on. */
function filesKey(state: HubState): string {
  const seq = (state.status?.store as { latestSeq?: number } | undefined)?.latestSeq ?? '';
  return `${seq}/${state.contentChanges}`;
}

/** `here` of `total` as a percentage with no decimals, for a progress bar's text. */
function percent(here: number, total: number): string {
  return total > 0 ? `${Math.floor((here / total) * 100)}%` : '100%';
}

/**
 * The hub's files: what arrives now and from which device, the files of a
 * collection, and one file (`?name=`) with its versions, each downloadable.
 */
export function Files({ state }: { state: HubState }) {
  const query = useQuery();
  const collection = query.get('collection') || 'files';
  const name = query.get('name');
  return (
    <>
      {name === null ? (
        <FileList state={state} collection={collection} />
      ) : (
        <FileVersions state={state} collection={collection} name={name} />
      )}
      <Transfers state={state} />
    </>
  );
}

function FileList({ state, collection }: { state: HubState; collection: string }) {
  const collections = useLoaded(() => api<{ collections: string[] }>('GET', '/collections'), filesKey(state));
  const files = useLoaded(
    () => api<{ files: FileView[] }>('GET', withQuery('/files', { collection })),
    `${collection}:${filesKey(state)}`,
  );
  const names = [...new Set(['files', ...(collections.value?.collections ?? [])])].sort();
  return (
    <>
      <h1 tabIndex={-1}>Files</h1>
      <label for="files-collection">Files collection</label>
      <select
        id="files-collection"
        value={collection}
        onChange={(e) => navigate(withQuery('/files', { collection: (e.target as HTMLSelectElement).value }))}
      >
        {names.map((n) => (
          <option key={n} value={n}>
            {n}
          </option>
        ))}
      </select>
      {files.error && (
        <p role="alert" class="error">
          Could not load the files: {files.error}
        </p>
      )}
      {files.value &&
        (files.value.files.length === 0 ? (
          <p>No files in {collection}.</p>
        ) : (
          <div class="table-wrap">
            <table>
              <caption>Files of {collection}, current versions</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Size</th>
                  <th scope="col">Type</th>
                  <th scope="col">Modified</th>
                  <th scope="col">On the hub</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {files.value.files.map((f) => (
                  <tr key={f.name}>
                    <th scope="row">
                      <Link href={withQuery('/files', { collection, name: f.name })}>{f.name}</Link>
                    </th>
                    <td>{bytes(f.size)}</td>
                    <td>{f.type}</td>
                    <td>{at(f.modifiedAt)}</td>
                    <td>{f.here ? 'yes' : 'arriving'}</td>
                    <td class="actions">
                      {f.here && (
                        <a class="button" href={downloadUrl(collection, f.name)} download={baseName(f.name)}>
                          Download <span class="sr-only">{f.name}</span>
                        </a>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ))}
    </>
  );
}

function baseName(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}

function FileVersions({ state, collection, name }: { state: HubState; collection: string; name: string }) {
  const history = useLoaded(
    () =>
      api<{ history: FileHistoryEntry[] }>(
        'GET',
        withQuery(`/files/${encodeURIComponent(name)}/history`, { collection }),
      ),
    `${collection}\u0000${name}:${filesKey(state)}`,
  );
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), [collection, name]);
  const versions = [...(history.value?.history ?? [])].reverse();
  return (
    <>
      <p>
        <Link href={withQuery('/files', { collection })}>All files of {collection}</Link>
      </p>
      <h1 tabIndex={-1} ref={heading}>
        <span class="mono">{name}</span>
      </h1>
      {history.error && (
        <p role="alert" class="error">
          Could not load the file: {history.error}
        </p>
      )}
      {versions.length > 0 && (
        <div class="table-wrap">
          <table>
            <caption>Versions of {name}, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Version</th>
                <th scope="col">Written</th>
                <th scope="col">By</th>
                <th scope="col">Size</th>
                <th scope="col">SHA-256</th>
                <th scope="col">On the hub</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {versions.map((v) => (
                <tr key={v.rev}>
                  <th scope="row">
                    <span class="mono">{shortRev(v.rev)}</span>
                    {v.current && <span class="badge state-online">current</span>}
                  </th>
                  <td>{at(v.time)}</td>
                  <td>{authorName(state, v.author)}</td>
                  <td>{v.file ? bytes(v.file.size) : v.deleted ? 'deleted' : '-'}</td>
                  <td class="mono" title={v.file?.sha256}>
                    {v.file?.sha256.slice(0, 12) ?? '-'}
                  </td>
                  <td>{v.file ? (v.file.here ? 'yes' : 'arriving') : '-'}</td>
                  <td class="actions">
                    {v.file?.here && (
                      <a
                        class="button"
                        href={downloadUrl(collection, name, v.rev)}
                        download={baseName(name)}
                        aria-label={`Download version ${shortRev(v.rev)}`}
                      >
                        Download
                      </a>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

/** File content arriving at the hub, and what moves to and from each connected device. */
function Transfers({ state }: { state: HubState }) {
  const [transfers, setTransfers] = useState<FileTransfers | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  // Asked again at once when the hub's records or content change, else every 2 s.
  const changed = filesKey(state);
  useEffect(() => {
    let stopped = false;
    let timer: number | undefined;
    const poll = async () => {
      try {
        const t = await api<FileTransfers>('GET', '/files/transfers');
        if (!stopped) {
          setTransfers(t);
          setError(undefined);
        }
      } catch (err) {
        if (!stopped) setError((err as Error).message);
      }
      if (!stopped) timer = window.setTimeout(() => void poll(), TRANSFERS_EVERY_MS);
    };
    void poll();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [changed]);
  const p = transfers?.progress;
  return (
    <section aria-labelledby="transfers-heading">
      <h2 id="transfers-heading">Transfers</h2>
      {error && (
        <p role="alert" class="error">
          Could not load the transfers: {error}
        </p>
      )}
      {p && (
        <>
          {p.pending === 0 ? (
            <p>All file content is on the hub.</p>
          ) : (
            <>
              <label for="transfer-all">
                Arriving at the hub: {p.pending} version(s), {bytes(p.bytesHere)} of {bytes(p.bytesTotal)}
              </label>
              <progress id="transfer-all" max={p.bytesTotal} value={p.bytesHere}>
                {percent(p.bytesHere, p.bytesTotal)}
              </progress>
              <ul class="plain" aria-label="Versions arriving">
                {p.files.map((f) => (
                  <li key={f.rev}>
                    <span class="mono">{f.name}</span> ({shortRev(f.rev)}): {bytes(f.bytesHere)} of{' '}
                    {bytes(f.bytesTotal)}, {percent(f.bytesHere, f.bytesTotal)}
                  </li>
                ))}
              </ul>
            </>
          )}
          {p.error && (
            <p class="error">
              The last fetch stopped early: <code>{p.error.code}</code> {p.error.message}
            </p>
          )}
          {transfers.devices.length === 0 ? (
            <p>No device is connected.</p>
          ) : (
            <div class="table-wrap">
              <table>
                <caption>
                  File content exchanged with each connected device, over its current connection
                </caption>
                <thead>
                  <tr>
                    <th scope="col">Device</th>
                    <th scope="col">Fetched from it</th>
                    <th scope="col">Served to it</th>
                    <th scope="col">Versions still to fetch from it</th>
                  </tr>
                </thead>
                <tbody>
                  {transfers.devices.map((d) => (
                    <tr key={d.deviceId}>
                      <th scope="row">{d.name ?? authorName(state, d.deviceId)}</th>
                      <td>{bytes(d.bytesIn)}</td>
                      <td>{bytes(d.bytesOut)}</td>
                      <td>{d.waiting}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </section>
  );
}
