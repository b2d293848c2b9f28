import type { RunContext } from '../../src/index.js';

/**
 * Task code for the replay suites: sends `tick` events 1..count, each padded to about `size`
 * bytes, 50 sends in flight at a time (several group-commit batches, not one per event).
 */
export async function sendTicks(ctx: Pick<RunContext, 'send'>, count: number, size: number): Promise<void> {
  const pad = 'x'.repeat(size);
  let batch: Array<Promise<void>> = [];
  for (let i = 1; i <= count; i++) {
    batch.push(ctx.send('tick', { i, pad }));
    if (batch.length === 50) {
      await Promise.all(batch);
      batch = [];
    }
  }
  await Promise.all(batch);
}
