import { type DiffColumn, type FieldChange, fieldRows } from './field-diff.js';

export type { Body, DiffColumn } from './field-diff.js';
export { fieldRows, suggestedMerge } from './field-diff.js';

const CHANGE_TEXT: Record<FieldChange, string> = {
  same: '',
  changed: 'changed',
  added: 'added',
  removed: 'removed',
};

function Value({ present, text, missing }: { present: boolean; text: string; missing?: string }) {
  if (present) return <code class="value">{text}</code>;
  return <span class="absent">{missing ?? 'absent'}</span>;
}

/**
 * Versions side by side, one row per field: the base (a common ancestor or the
 * older revision) first, then each version with what it did to the field, in words
 * as well as colour. Fields several versions changed differently are marked.
 */
export function FieldDiff({
  caption,
  base,
  columns,
}: {
  caption: string;
  base?: DiffColumn;
  columns: readonly DiffColumn[];
}) {
  const rows = fieldRows(base, columns);
  const changed = rows.filter((r) => r.cells.some((c) => c.change !== 'same')).length;
  return (
    <div class="table-wrap">
      <table class="diff">
        <caption>
          {caption}: {changed === 0 ? 'no field differs' : `${changed} of ${rows.length} fields differ`}
        </caption>
        <thead>
          <tr>
            <th scope="col">Field</th>
            {base && <th scope="col">{base.label}</th>}
            {columns.map((c, i) => (
              <th scope="col" key={i}>
                {c.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 && (
            <tr>
              <td colSpan={1 + (base ? 1 : 0) + columns.length}>No fields.</td>
            </tr>
          )}
          {rows.map((row) => (
            <tr key={row.field} class={row.conflicting ? 'conflicting' : undefined}>
              <th scope="row">
                <code>{row.field}</code>
                {row.conflicting && <span class="mark mark-conflicting">changed on both sides</span>}
              </th>
              {base && row.base && (
                <td>
                  <Value {...row.base} {...(base.missing && { missing: base.missing })} />
                </td>
              )}
              {row.cells.map((c, i) => {
                const missing = columns[i]?.missing;
                return (
                  <td key={i} class={`change-${c.change}`}>
                    <Value {...c} {...(missing && { missing })} />
                    {c.change !== 'same' && <span class="mark">{CHANGE_TEXT[c.change]}</span>}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
