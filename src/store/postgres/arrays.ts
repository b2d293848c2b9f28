/**
 * PostgreSQL array literals for the batched statements' `unnest` parameters.
 *
 * node-postgres turns a JS array into the same literal, but quotes every element (numbers too)
 * through two regex passes and a generic per-value conversion: a tenth of the node-side CPU of an
 * append batch in a profile of the PostgreSQL ingest bench. These build it in one pass.
 * Inside double quotes only `\` and `"` need a backslash; unquoted `NULL` is SQL NULL.
 */
const NEEDS_ESCAPE = /[\\"]/;
const ESCAPED = /[\\"]/g;

export function textArray(values: readonly (string | null | undefined)[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ',';
    const v = values[i];
    if (v === null || v === undefined) out += 'NULL';
    else out += `"${NEEDS_ESCAPE.test(v) ? v.replace(ESCAPED, '\\$&') : v}"`;
  }
  return `${out}}`;
}

/** Integers or finite numbers (ids, seqs, epochs, ms timestamps); null and undefined are NULL. */
export function numberArray(values: readonly (number | null | undefined)[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ',';
    const v = values[i];
    if (v === null || v === undefined) out += 'NULL';
    else if (Number.isFinite(v)) out += String(v);
    else throw new TypeError(`postgres store: ${v} is not a finite number`);
  }
  return `${out}}`;
}

export function boolArray(values: readonly boolean[]): string {
  return `{${values.map((v) => (v ? 't' : 'f')).join(',')}}`;
}
