/**
 * PostgreSQL array literals for the batched statements' `unnest` parameters.
 *
 * node-postgres turns a JS array into the same literal, but quotes every element (numbers too)
 * through two regex passes and a generic per-value conversion: a tenth of the node-side CPU of an
 * append batch in a profile of the PostgreSQL ingest bench. These build it in one pass.
 * Inside double quotes only `\` and `"` need a backslash; unquoted `NULL` is SQL NULL.
 */
const ESCAPED = /[\\"]/g;

/** `{e1,e2,…}`, with `NULL` for null and undefined and `element` for the rest. */
function literal<T>(values: readonly (T | null | undefined)[], element: (v: T) => string): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ',';
    const v = values[i];
    out += v === null || v === undefined ? 'NULL' : element(v);
  }
  return `${out}}`;
}

const quoted = (v: string): string => `"${v.replace(ESCAPED, '\\$&')}"`;

function finite(v: number): string {
  if (!Number.isFinite(v)) throw new TypeError(`postgres store: ${v} is not a finite number`);
  return String(v);
}

export function textArray(values: readonly (string | null | undefined)[]): string {
  return literal(values, quoted);
}

/** Integers or finite numbers (ids, seqs, epochs, ms timestamps). */
export function numberArray(values: readonly (number | null | undefined)[]): string {
  return literal(values, finite);
}

export function boolArray(values: readonly boolean[]): string {
  return literal(values, (v) => (v ? 't' : 'f'));
}

/** A JSON array of JSON texts (each one a whole JSON value, as JSON.stringify wrote it): no escaping at all. */
export function jsonArray(values: readonly string[]): string {
  return `[${values.join(',')}]`;
}
