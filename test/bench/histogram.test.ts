/** The load client's latency histogram: percentiles within its stated 0.8 %, merging across threads. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Histogram } from '../../bench/ssebench/histogram.js';

test('percentiles are within 0.8 % of the exact nearest-rank value, from microseconds to minutes', () => {
  const values: number[] = [];
  for (let i = 0; i < 20_000; i++) values.push(0.001 * Math.floor(1.0007 ** i)); // 1 µs … ~20 minutes
  const h = new Histogram();
  for (const v of values) h.record(v);
  const sorted = [...values].sort((a, b) => a - b);
  for (const p of [1, 10, 50, 90, 99, 99.9]) {
    const exact = sorted[Math.ceil((p / 100) * sorted.length) - 1]!;
    const got = h.percentile(p)!;
    assert.ok(Math.abs(got - exact) <= exact * 0.008 + 0.0005, `p${p}: ${got} vs ${exact}`);
  }
  assert.equal(h.percentile(100), sorted.at(-1));
});

test('two merged histograms equal one that saw every value; negatives count as 0', () => {
  const a = new Histogram(), b = new Histogram(), all = new Histogram();
  for (let i = 0; i < 1000; i++) {
    const v = (i * 7919) % 5000 / 10;
    (i % 2 === 0 ? a : b).record(v);
    all.record(v);
  }
  a.merge(new Histogram(b.data()).data());
  assert.deepEqual(a.summary(), all.summary());
  const n = new Histogram();
  n.record(-3);
  assert.deepEqual([n.summary().count, n.summary().max, n.percentile(50)], [1, 0, 0]);
});
