/** Versions of a record compared field by field: no DOM, so the tests run it in Node. */

/** A JSON object: a record body. */
export type Body = Record<string, unknown>;

/** One version in a comparison: what it is called, and its body (null for a deletion or a dropped body). */
export interface DiffColumn {
  label: string;
  body: Body | null;
  /** Why the body is null, shown in its cells: `deleted`, `body dropped by retention`. */
  missing?: string;
}

/** What a version did to a field, against the base. */
export type FieldChange = 'same' | 'changed' | 'added' | 'removed';

export interface FieldRow {
  field: string;
  base: { present: boolean; text: string } | undefined;
  cells: { present: boolean; text: string; change: FieldChange }[];
  /** Two versions or more changed the field, differently. */
  conflicting: boolean;
}

/** JSON with object keys sorted, so equal values give equal text whatever the key order. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Body)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value) ?? 'null';
}

function cell(body: Body | null, field: string): { present: boolean; text: string } {
  const present = body !== null && Object.hasOwn(body, field);
  return { present, text: present ? canonical(body[field]) : '' };
}

/**
 * Field by field (top-level fields, as the `merge` strategy settles them): each
 * version's value and what it did against `base`. Without a base (two versions with
 * no common ancestor) a field counts as changed where the versions disagree.
 */
export function fieldRows(base: DiffColumn | undefined, columns: readonly DiffColumn[]): FieldRow[] {
  const names = new Set<string>();
  for (const c of [...(base ? [base] : []), ...columns])
    if (c.body) for (const k of Object.keys(c.body)) names.add(k);
  return [...names].sort().map((field) => {
    const b = base && cell(base.body, field);
    const values = columns.map((c) => cell(c.body, field));
    const cells = values.map((v) => {
      let change: FieldChange = 'same';
      if (b) {
        if (v.present && !b.present) change = 'added';
        else if (!v.present && b.present) change = 'removed';
        else if (v.text !== b.text) change = 'changed';
      } else if (values.some((o) => o.present !== v.present || o.text !== v.text)) change = 'changed';
      return { ...v, change };
    });
    const changedTo = new Set(cells.filter((c) => c.change !== 'same').map((c) => `${c.present}:${c.text}`));
    return { field, base: b, cells, conflicting: b !== undefined && changedTo.size > 1 };
  });
}

/**
 * A three-way merge to start from: a field changed on one side keeps that change,
 * a field changed on several sides takes `preferred`'s value (the provisional
 * winner), the rest stays as in the base.
 */
export function suggestedMerge(rows: readonly FieldRow[], preferred: number): Body {
  const out: Body = {};
  for (const row of rows) {
    const changed = row.cells.map((c, i) => ({ ...c, i })).filter((c) => c.change !== 'same');
    const pick =
      changed.length === 0
        ? (row.base ?? row.cells[preferred])
        : (changed.find((c) => c.i === preferred) ?? changed[0]);
    if (pick?.present) out[row.field] = JSON.parse(pick.text) as unknown;
  }
  return out;
}
