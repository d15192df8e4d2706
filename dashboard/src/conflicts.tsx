import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api.js';
import { Dialog } from './dialog.js';
import { type Body, type DiffColumn, FieldDiff, fieldRows, suggestedMerge } from './diff.js';
import { ago, at } from './format.js';
import type { HubState } from './hub-state.js';
import { useQuery, withQuery } from './query.js';
import {
  authorName,
  type Conflict,
  type ConflictDetail,
  errorText,
  type HistoryEntry,
  shortRev,
  useLoaded,
  type WriteResult,
} from './records-api.js';
import { Link, navigate } from './router.js';

const SHOW = [
  { value: 'open', label: 'Open: waiting for a person' },
  { value: 'auto', label: 'Settled by the strategy' },
  { value: 'resolved', label: 'Resolved' },
  { value: 'all', label: 'All' },
] as const;

const STATUS_TEXT: Record<Conflict['status'], string> = {
  open: 'open',
  auto: 'settled by strategy',
  resolved: 'resolved',
};

/** What the hub's store has changed to: reloads follow it. */
function storeKey(state: HubState): string {
  const s = state.status?.store as { latestSeq?: number; openConflicts?: number } | undefined;
  return `${s?.latestSeq ?? ''}:${s?.openConflicts ?? ''}`;
}

/**
 * Conflicts, open and settled; one of them in detail (`?conflict=N`): its sides
 * side by side against their common ancestor, and the three ways to settle it.
 */
export function Conflicts({ state }: { state: HubState }) {
  const query = useQuery();
  const selected = Number(query.get('conflict') ?? '') || undefined;
  return selected === undefined ? (
    <ConflictList state={state} show={query.get('show') ?? 'open'} />
  ) : (
    <ConflictView state={state} conflictId={selected} />
  );
}

function ConflictList({ state, show }: { state: HubState; show: string }) {
  const list = useLoaded(
    () =>
      api<{ conflicts: Conflict[] }>(
        'GET',
        withQuery('/conflicts', { status: show === 'all' ? undefined : show }),
      ),
    `${show}:${storeKey(state)}`,
  );
  const conflicts = [...(list.value?.conflicts ?? [])].reverse();
  const showLabel = SHOW.find((s) => s.value === show)?.label ?? show;
  return (
    <>
      <h1 tabIndex={-1}>Conflicts</h1>
      <p>
        Two devices changed the same record before they had seen each other's change. Each collection's
        strategy settles it at once everywhere; a <code>manual</code> collection keeps it open, on a
        provisional winner, until someone here picks the result.
      </p>
      <label for="conflict-show">Show</label>
      <select
        id="conflict-show"
        value={show}
        onChange={(e) => navigate(withQuery('/conflicts', { show: (e.target as HTMLSelectElement).value }))}
      >
        {SHOW.map((s) => (
          <option key={s.value} value={s.value}>
            {s.label}
          </option>
        ))}
      </select>
      {list.error && (
        <p role="alert" class="error">
          Could not load the conflicts: {list.error}
        </p>
      )}
      {list.value && conflicts.length === 0 ? (
        <p>No conflicts here{show === 'open' ? ': nothing waits for a person.' : '.'}</p>
      ) : (
        <div class="table-wrap">
          <table>
            <caption>Conflicts on the hub: {showLabel}</caption>
            <thead>
              <tr>
                <th scope="col">Record</th>
                <th scope="col">Status</th>
                <th scope="col">Strategy</th>
                <th scope="col">Sides</th>
                <th scope="col">Opened</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {conflicts.map((c) => (
                <tr key={c.conflictId}>
                  <th scope="row" class="mono">
                    {c.collection}/{c.id}
                  </th>
                  <td>
                    <span class={`badge conflict-${c.status}`}>{STATUS_TEXT[c.status]}</span>
                  </td>
                  <td>{c.strategy}</td>
                  <td>{c.heads.length}</td>
                  <td title={at(c.openedAt)}>{ago(c.openedAt)}</td>
                  <td class="actions">
                    <button
                      type="button"
                      aria-label={`Review ${c.collection}/${c.id}`}
                      onClick={() => navigate(withQuery('/conflicts', { conflict: c.conflictId }))}
                    >
                      Review
                    </button>
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

/** A column of the comparison: which version, by whom, when. */
function column(state: HubState, label: string, e: HistoryEntry): DiffColumn {
  return {
    label: `${label}: ${authorName(state, e.author)}, ${at(e.time)} (${shortRev(e.rev)})`,
    body: e.body,
    ...(e.deleted && { missing: 'deleted' }),
    ...(e.pruned && { missing: 'body dropped by retention' }),
  };
}

type Pending = { kind: 'delete' } | undefined;

function ConflictView({ state, conflictId }: { state: HubState; conflictId: number }) {
  const detail = useLoaded(
    () => api<ConflictDetail>('GET', `/conflicts/${conflictId}`),
    `${conflictId}:${storeKey(state)}`,
  );
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [pending, setPending] = useState<Pending>(undefined);
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), [conflictId]);

  const d = detail.value;
  const c = d?.conflict;
  const name = c ? `${c.collection}/${c.id}` : `conflict ${conflictId}`;

  const resolve = async (what: string, choice: { rev: string } | { body: Body | null }) => {
    if (!c) return;
    setError(undefined);
    try {
      const write = await api<WriteResult>(
        'POST',
        `/conflicts/${encodeURIComponent(c.collection)}/${encodeURIComponent(c.id)}/resolve`,
        choice,
      );
      setPending(undefined);
      setNotice(
        `${name} resolved (${what}): new revision ${shortRev(write.rev)}, on its way to every device`,
      );
      detail.reload();
    } catch (err) {
      setError(errorText(err));
    }
  };

  const sides = d?.sides ?? [];
  const columns = sides.map((s, i) =>
    column(
      state,
      `Side ${i + 1}${s.rev === c?.winner && c.status !== 'resolved' ? ' (provisional winner)' : ''}`,
      s,
    ),
  );
  const base = d?.ancestor ? column(state, 'Common ancestor', d.ancestor) : undefined;
  const all = d?.resolution ? [...columns, column(state, 'Resolution', d.resolution)] : columns;

  return (
    <>
      <p>
        <Link href="/conflicts">All conflicts</Link>
      </p>
      <h1 tabIndex={-1} ref={heading}>
        Conflict on <span class="mono">{name}</span>
      </h1>
      <p role="status" class="notice">
        {notice}
      </p>
      {detail.error && (
        <p role="alert" class="error">
          Could not load the conflict: {detail.error}
        </p>
      )}
      {error && !pending && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {c && d && (
        <>
          <p>
            <span class={`badge conflict-${c.status}`}>{STATUS_TEXT[c.status]}</span> Strategy{' '}
            <code>{c.strategy}</code>, opened {ago(c.openedAt)}
            {c.resolvedAt !== null && `, resolved ${ago(c.resolvedAt)}`}.{' '}
            {d.ancestor
              ? 'Each side is compared with the version both started from.'
              : 'The sides share no earlier version (the record was created on two devices), so they are compared with each other.'}{' '}
            <Link href={withQuery('/records', { collection: c.collection, id: c.id })}>
              History of this record
            </Link>
          </p>
          <FieldDiff
            caption={`The versions of ${name}, field by field`}
            {...(base && { base })}
            columns={all}
          />
          {c.status !== 'resolved' && sides.length > 1 && (
            <Resolve
              key={`${conflictId}:${c.heads.join()}`}
              name={name}
              sides={sides}
              labels={sides.map((s) => authorName(state, s.author))}
              base={base}
              columns={columns}
              winner={Math.max(
                0,
                sides.findIndex((s) => s.rev === c.winner),
              )}
              onPick={(i) => void resolve(`side ${i + 1} kept`, { rev: sides[i]?.rev ?? '' })}
              onBody={(body) => void resolve('merged body', { body })}
              onDelete={() => setPending({ kind: 'delete' })}
            />
          )}
        </>
      )}
      {pending?.kind === 'delete' && (
        <Dialog
          role="alertdialog"
          title={`Delete ${name}?`}
          description="The record is deleted on every device, superseding every side. Its versions stay in history, and a revert brings one back."
          onClose={() => setPending(undefined)}
        >
          {error && (
            <p role="alert" class="error">
              {error}
            </p>
          )}
          <div class="buttons">
            <button type="button" data-autofocus onClick={() => setPending(undefined)}>
              Cancel
            </button>
            <button type="button" class="danger" onClick={() => void resolve('deleted', { body: null })}>
              Delete record
            </button>
          </div>
        </Dialog>
      )}
    </>
  );
}

/** The three ways to settle: keep a side, write a merged body, or delete. */
function Resolve(props: {
  name: string;
  sides: HistoryEntry[];
  labels: string[];
  base: DiffColumn | undefined;
  columns: DiffColumn[];
  winner: number;
  onPick: (side: number) => void;
  onBody: (body: Body) => void;
  onDelete: () => void;
}) {
  const [text, setText] = useState(() =>
    JSON.stringify(suggestedMerge(fieldRows(props.base, props.columns), props.winner), null, 2),
  );
  const [invalid, setInvalid] = useState<string | undefined>(undefined);

  const check = (value: string): Body | undefined => {
    try {
      const parsed: unknown = JSON.parse(value);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
        setInvalid('The body must be a JSON object: { "field": value, … }');
        return undefined;
      }
      setInvalid(undefined);
      return parsed as Body;
    } catch (err) {
      setInvalid(`Not valid JSON: ${(err as Error).message}`);
      return undefined;
    }
  };

  return (
    <section aria-labelledby="resolve-heading">
      <h2 id="resolve-heading">Resolve</h2>
      <p>
        The result is a new version that supersedes every side; it syncs to every device that reads{' '}
        {props.name.split('/')[0]}.
      </p>
      <h3>Keep one side as it is</h3>
      <div class="buttons start">
        {props.sides.map((s, i) => (
          <button
            type="button"
            key={s.rev}
            aria-label={`Keep side ${i + 1} (${props.labels[i]})${s.deleted ? ': the deletion' : ''}`}
            onClick={() => props.onPick(i)}
          >
            Keep side {i + 1} ({props.labels[i]})
          </button>
        ))}
      </div>
      <h3>Or write a merged body</h3>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const body = check(text);
          if (body) props.onBody(body);
        }}
      >
        <label for="merged-body">Merged body (JSON)</label>
        <p id="merged-hint" class="sub">
          Starts from each side's changes against the common ancestor; where both sides changed a field, from
          the provisional winner.
        </p>
        <textarea
          id="merged-body"
          class="json"
          rows={Math.min(20, text.split('\n').length + 1)}
          spellcheck={false}
          aria-invalid={invalid ? 'true' : 'false'}
          aria-describedby={invalid ? 'merged-hint merged-error' : 'merged-hint'}
          value={text}
          onInput={(e) => {
            const value = (e.target as HTMLTextAreaElement).value;
            setText(value);
            check(value);
          }}
        />
        {invalid && (
          <p id="merged-error" role="alert" class="error">
            {invalid}
          </p>
        )}
        <div class="buttons start">
          <button type="submit">Resolve with this body</button>
          <button type="button" class="danger" onClick={props.onDelete}>
            Delete the record
          </button>
        </div>
      </form>
    </section>
  );
}
