/**
 * Task types for bench/cluster.ts, served with `taskstream serve --no-examples --tasks bench/cluster-tasks.ts`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { defineTask } from '../src/index.js';

/** `events` progress events as fast as they are stored (the throughput line). */
export const Burst = defineTask({
  app: 'bench',
  type: 'Burst',
  input: z.object({ events: z.number().int().min(0).max(10_000) }),
  async run(ctx, { events }) {
    for (let i = 0; i < events; i++) await ctx.progress({ i });
    return null;
  },
});

/** Waits for the signal `go`, then one progress event every `interval_ms` carrying its send time (the latency line). */
export const Ticker = defineTask({
  app: 'bench',
  type: 'Ticker',
  input: z.object({ count: z.number().int().min(1).max(100_000), interval_ms: z.number().int().min(0).max(10_000) }),
  async run(ctx, { count, interval_ms }) {
    await ctx.waitForSignal('go');
    for (let i = 0; i < count; i++) {
      await sleep(interval_ms, undefined, { signal: ctx.signal });
      await ctx.progress({ i, t: performance.timeOrigin + performance.now() });
    }
    return null;
  },
});
