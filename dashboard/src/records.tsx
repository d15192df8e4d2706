import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api.js';
import { Dialog } from './dialog.js';
import { type DiffColumn, FieldDiff } from './diff.js';
import { ago, at } from './format.js';
import type { HubState } from './hub-state.js';
import { useQuery, withQuery } from './query.js';
import {
  authorName,
  errorText,
  type HistoryEntry,
  recordPath,
  type RecordsPage,
  shortRev,
  useLoaded,
  type WriteResult,
} from './records-api.js';
import { Link, navigate } from './router.js';

const PAGE_SIZE = 25;

/** The hub's latest change: a reload key. */
function latestSeq(state: HubState): string {
  return String((state.status?.store as { latestSeq?: number } | undefined)?.latestSeq ?? '');
}

/**
 * The hub's records: collections, a collection page by page, a record found by its
 * id, and one record (`?collection=&id=`) with its history, a comparison of any two
 * of its revisions and a revert to one of them.
 */
export function Records({ state }: { state: HubState }) {
  const query = useQuery();
  const collection = query.get('collection') ?? '';
  const id = query.get('id');
  return id !== null && collection ? (
    <RecordView state={state} collection={collection} id={id} />
  ) : (
    <RecordList state={state} collection={collection} after={query.get('after') ?? ''} />
  );
}

function RecordList({ state, collection, after }: { state: HubState; collection: string; after: string }) {
  const collections = useLoaded(
    () => api<{ collections: string[] }>('GET', '/collections'),
    latestSeq(state),
  );
  const page = useLoaded(
    () =>
      collection
        ? api<RecordsPage>(
            'GET',
            withQuery(`/records/${encodeURIComponent(collection)}`, { after, limit: PAGE_SIZE }),
          )
        : Promise.resolve(undefined),
    `${collection}:${after}:${latestSeq(state)}`,
  );
  // The cursors of the pages before this one, for "Previous page": kept in the history entry.
  const [trail, setTrail] = useState<string[]>([]);
  const [findId, setFindId] = useState('');
  const names = collections.value?.collections ?? [];

  return (
    <>
      <h1 tabIndex={-1}>Records</h1>
      {collections.error && (
        <p role="alert" class="error">
          Could not load the collections: {collections.error}
        </p>
      )}
      <div class="toolbar">
        <div>
          <label for="records-collection">Collection</label>
          <select
            id="records-collection"
            value={collection}
            onChange={(e) => {
              setTrail([]);
              navigate(withQuery('/records', { collection: (e.target as HTMLSelectElement).value }));
            }}
          >
            <option value="">Choose a collection</option>
            {names.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </div>
        <form
          role="search"
          aria-label="Find a record by id"
          onSubmit={(e) => {
            e.preventDefault();
            if (collection && findId.trim())
              navigate(withQuery('/records', { collection, id: findId.trim() }));
          }}
        >
          <label for="records-find">Record id</label>
          <input
            id="records-find"
            value={findId}
            maxLength={256}
            disabled={!collection}
            onInput={(e) => setFindId((e.target as HTMLInputElement).value)}
          />{' '}
          <button type="submit" disabled={!collection}>
            Find
          </button>
        </form>
      </div>
      {!collection && names.length === 0 && collections.value && <p>The hub holds no records yet.</p>}
      {page.error && (
        <p role="alert" class="error">
          Could not load the records: {page.error}
        </p>
      )}
      {collection && page.value && (
        <>
          <div class="table-wrap">
            <table>
              <caption>
                Records of {collection}
                {after ? `, after ${after}` : ''}
              </caption>
              <thead>
                <tr>
                  <th scope="col">Id</th>
                  <th scope="col">Revision</th>
                  <th scope="col">Conflict</th>
                  <th scope="col">Fields</th>
                </tr>
              </thead>
              <tbody>
                {page.value.records.map((r) => (
                  <tr key={r.id}>
                    <th scope="row">
                      <Link href={withQuery('/records', { collection, id: r.id })}>{r.id}</Link>
                    </th>
                    <td class="mono">{shortRev(r.rev)}</td>
                    <td>
                      {r.conflict === 'none' ? (
                        '-'
                      ) : (
                        <span class={`badge conflict-${r.conflict}`}>{r.conflict}</span>
                      )}
                    </td>
                    <td class="mono clip">{r.body ? Object.keys(r.body).join(', ') : ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <nav aria-label="Pages of records" class="buttons start">
            <button
              type="button"
              disabled={!after}
              onClick={() => {
                const prev = trail[trail.length - 1] ?? '';
                setTrail(trail.slice(0, -1));
                navigate(withQuery('/records', { collection, after: prev }));
              }}
            >
              Previous page
            </button>
            <button
              type="button"
              disabled={page.value.next === null}
              onClick={() => {
                setTrail([...trail, after]);
                navigate(withQuery('/records', { collection, after: page.value?.next ?? '' }));
              }}
            >
              Next page
            </button>
          </nav>
        </>
      )}
    </>
  );
}

function revisionLabel(state: HubState, e: HistoryEntry): string {
  return `${shortRev(e.rev)} by ${authorName(state, e.author)}, ${at(e.time)}`;
}

function diffColumn(state: HubState, e: HistoryEntry): DiffColumn {
  return {
    label: `Revision ${revisionLabel(state, e)}`,
    body: e.body,
    ...(e.deleted && { missing: 'deleted' }),
    ...(e.pruned && { missing: 'body dropped by retention' }),
  };
}

function RecordView({ state, collection, id }: { state: HubState; collection: string; id: string }) {
  const history = useLoaded(
    () => api<{ history: HistoryEntry[] }>('GET', `${recordPath(collection, id)}/history`),
    `${collection}\u0000${id}:${latestSeq(state)}`,
  );
  const entries = history.value?.history ?? [];
  const [from, setFrom] = useState<string | undefined>(undefined);
  const [to, setTo] = useState<string | undefined>(undefined);
  const [revert, setRevert] = useState<HistoryEntry | undefined>(undefined);
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), [collection, id]);

  const current = entries.find((e) => e.current) ?? entries[entries.length - 1];
  // By default, what the latest write changed: the revision before the current one against it.
  const toEntry = entries.find((e) => e.rev === to) ?? current;
  const fromEntry =
    entries.find((e) => e.rev === from) ?? entries[Math.max(0, entries.indexOf(toEntry as HistoryEntry) - 1)];
  const name = `${collection}/${id}`;

  const doRevert = async (target: HistoryEntry) => {
    setError(undefined);
    try {
      const write = await api<WriteResult>('POST', `${recordPath(collection, id)}/revert`, {
        rev: target.rev,
      });
      setRevert(undefined);
      setTo(undefined);
      setFrom(undefined);
      setNotice(
        `${name} reverted to ${shortRev(target.rev)}: new revision ${shortRev(write.rev)}, on its way to every device`,
      );
      history.reload();
    } catch (err) {
      setError(errorText(err));
    }
  };

  return (
    <>
      <p>
        <Link href={withQuery('/records', { collection })}>All records of {collection}</Link>
      </p>
      <h1 tabIndex={-1} ref={heading}>
        <span class="mono">{name}</span>
      </h1>
      <p role="status" class="notice">
        {notice}
      </p>
      {history.error && (
        <p role="alert" class="error">
          {history.error.startsWith('RECORD_NOT_FOUND')
            ? `No record ${id} in ${collection}.`
            : `Could not load the record: ${history.error}`}
        </p>
      )}
      {error && !revert && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {current && (
        <section aria-labelledby="current-heading">
          <h2 id="current-heading">Current version</h2>
          {current.deleted ? (
            <p>Deleted {ago(current.time)}.</p>
          ) : (
            <pre class="json" aria-label={`Body of ${name}`}>
              {JSON.stringify(current.body, null, 2)}
            </pre>
          )}
          {entries.filter((e) => e.head).length > 1 && (
            <p>
              This record has a conflict: <Link href="/conflicts">review it on the Conflicts page</Link>.
            </p>
          )}
        </section>
      )}
      {entries.length > 0 && (
        <section aria-labelledby="history-heading">
          <h2 id="history-heading">History</h2>
          <ol class="timeline" aria-label={`Revisions of ${name}, oldest first`}>
            {entries.map((e) => (
              <li key={e.rev} class={e.current ? 'current' : undefined}>
                <time dateTime={new Date(e.time).toISOString()} title={at(e.time)}>
                  {at(e.time)}
                </time>{' '}
                <span class="mono">{shortRev(e.rev)}</span> by {authorName(state, e.author)}
                {e.current && <span class="badge state-online">current</span>}
                {e.head && !e.current && <span class="badge state-pending">competing head</span>}
                {e.deleted && <span class="badge state-offline">deleted</span>}
                {e.pruned && <span class="badge state-offline">body dropped</span>}
                {!e.current && !e.pruned && (
                  <button
                    type="button"
                    aria-label={`Revert to ${shortRev(e.rev)}`}
                    onClick={() => setRevert(e)}
                  >
                    Revert to this
                  </button>
                )}
              </li>
            ))}
          </ol>
        </section>
      )}
      {entries.length > 1 && fromEntry && toEntry && (
        <section aria-labelledby="compare-heading">
          <h2 id="compare-heading">Compare two revisions</h2>
          <div class="toolbar">
            <div>
              <label for="compare-from">From</label>
              <select
                id="compare-from"
                value={fromEntry.rev}
                onChange={(e) => setFrom((e.target as HTMLSelectElement).value)}
              >
                {entries.map((e) => (
                  <option key={e.rev} value={e.rev}>
                    {revisionLabel(state, e)}
                  </option>
                ))}
              </select>
            </div>
            <div>
              <label for="compare-to">To</label>
              <select
                id="compare-to"
                value={toEntry.rev}
                onChange={(e) => setTo((e.target as HTMLSelectElement).value)}
              >
                {entries.map((e) => (
                  <option key={e.rev} value={e.rev}>
                    {revisionLabel(state, e)}
                  </option>
                ))}
              </select>
            </div>
          </div>
          <FieldDiff
            caption={`${shortRev(fromEntry.rev)} against ${shortRev(toEntry.rev)}`}
            base={diffColumn(state, fromEntry)}
            columns={[diffColumn(state, toEntry)]}
          />
        </section>
      )}
      {revert && (
        <Dialog
          role="alertdialog"
          title={`Revert ${name} to ${shortRev(revert.rev)}?`}
          description={`The hub writes the content of that revision (${at(revert.time)}) as a new revision${revert.deleted ? ', which deletes the record' : ''}; it syncs to every device that reads ${collection}. The current version stays in history.`}
          onClose={() => setRevert(undefined)}
        >
          {error && (
            <p role="alert" class="error">
              {error}
            </p>
          )}
          <div class="buttons">
            <button type="button" data-autofocus onClick={() => setRevert(undefined)}>
              Cancel
            </button>
            <button type="button" class="danger" onClick={() => void doRevert(revert)}>
              Revert
            </button>
          </div>
        </Dialog>
      )}
    </>
  );
}
