/**
 * bench/heap-diff: what N open streams add to a server's V8 heap, by object kind, per stream.
 *
 *   node --import tsx bench/heap-diff.ts BEFORE.heapsnapshot AFTER.heapsnapshot N [--top 40]
 *
 * Both snapshots come from the same server process (bench/fanout.ts `--heap DIR` takes one before
 * the idle run's streams connect and one with them open, each after a GC). Every node of a
 * snapshot is counted under its type and name (`object Socket`, `closure onClose`, `array`,
 * `string`, `hidden system / Map`…); the table lists the kinds whose total self size grew most,
 * divided by N: count per stream and bytes per stream. Self sizes only: a kind's row is the bytes
 * its own objects take, not what they retain, so the rows add up to the heap's growth.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '40' } } });
if (positionals.length !== 3) throw new TypeError('usage: heap-diff BEFORE.heapsnapshot AFTER.heapsnapshot N [--top 40]');
const [beforeFile, afterFile, nText] = positionals as [string, string, string];
const N = Number(nText);
const TOP = Number(values.top);

interface Snapshot {
  readonly snapshot: { readonly meta: { readonly node_fields: string[]; readonly node_types: [string[], ...unknown[]] } };
  readonly nodes: number[];
  readonly strings: string[];
}

/** Count and total self size per `type name`. */
function kinds(file: string): Map<string, { count: number; bytes: number }> {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number];
  const out = new Map<string, { count: number; bytes: number }>();
  const nodes = snap.nodes;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]!]!;
    // Strings and numbers are named by their value: count them under their type alone.
    const named = type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'number' || type === 'code';
    const name = named ? '' : snap.strings[nodes[i + nameAt]!]!.slice(0, 60);
    const key = `${type} ${name}`.trim();
    const k = out.get(key) ?? { count: 0, bytes: 0 };
    k.count++;
    k.bytes += nodes[i + sizeAt]!;
    out.set(key, k);
  }
  return out;
}

const before = kinds(beforeFile);
const after = kinds(afterFile);
const rows = [...after].map(([key, a]) => {
  const b = before.get(key) ?? { count: 0, bytes: 0 };
  return { key, count: (a.count - b.count) / N, bytes: (a.bytes - b.bytes) / N };
});
rows.sort((x, y) => y.bytes - x.bytes);
const total = rows.reduce((s, r) => s + r.bytes, 0);
console.log(`heap growth per stream: ${total.toFixed(0)} bytes (${N} streams)\n`);
console.log('| object kind | count / stream | bytes / stream |');
console.log('|---|---:|---:|');
for (const r of rows.slice(0, TOP)) console.log(`| ${r.key.replace(/\|/g, '\\|')} | ${r.count.toFixed(2)} | ${r.bytes.toFixed(0)} |`);
