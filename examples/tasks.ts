/**
 * The example task types of the protocol (docs/http-api.md), served under app `examples` by `taskstream serve`.
 * Every delay is an input in milliseconds, so tests can make them fast.
 *
 * @module taskstream/examples
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { defineTask } from '../src/task/define.js';

/** `start`, then one `progress` per step; returns "Completed processing: <message>". */
export const ExampleTask = defineTask({
  app: 'examples',
  type: 'ExampleTask',
  input: z.object({
    message: z.string().max(255).default('Hello from ExampleTask'),
    steps: z.number().int().min(0).max(10_000).default(3),
    delay_ms: z.number().int().min(0).max(3_600_000).default(2000),
  }),
  async run(ctx, { message, steps, delay_ms }) {
    await ctx.send('start', { message, total_steps: steps });
    for (let step = 1; step <= steps; step++) {
      await sleep(delay_ms, undefined, { signal: ctx.signal });
      await ctx.progress({ step, total_steps: steps, message: `Step ${step} of ${steps}`, data: `Processing step ${step}...` });
    }
    return `Completed processing: ${message}`;
  },
});

/** One `progress` per item of an async generator; returns the last item. */
export const AsyncGeneratorTask = defineTask({
  app: 'examples',
  type: 'AsyncGeneratorTask',
  input: z.object({
    count: z.number().int().min(0).max(100_000).default(5),
    delay_ms: z.number().int().min(0).max(3_600_000).default(100),
  }),
  async run(ctx, { count, delay_ms }) {
    async function* steps() {
      for (let step = 1; step <= count; step++) {
        await sleep(delay_ms, undefined, { signal: ctx.signal });
        yield { step, total: count, message: `Processing step ${step} of ${count}`, percentage: (step / count) * 100 };
      }
    }
    return (await ctx.iterate(steps())) ?? null;
  },
});

/** One `progress` per item of a plain (sync) iterable; returns the last item. */
export const SyncGeneratorTask = defineTask({
  app: 'examples',
  type: 'SyncGeneratorTask',
  input: z.object({ items: z.array(z.unknown()).max(100_000).default([]) }),
  async run(ctx, { items }) {
    function* processed() {
      for (const [index, item] of items.entries()) yield { index, item, processed: `Processed: ${String(item)}` };
    }
    return (await ctx.iterate(processed())) ?? null;
  },
});

/** `started`, then waits (pushed, never polled) for the signal `continue`; without it, ends with `timeout`. */
export const ContinueTask = defineTask({
  app: 'examples',
  type: 'ContinueTask',
  input: z.object({
    message: z.string().max(255).default('Waiting for continue signal'),
    timeout_ms: z.number().int().min(1).max(86_400_000).default(5000),
  }),
  timeoutMs: (input) => input.timeout_ms,
  async run(ctx, { message }) {
    await ctx.send('started', { message });
    const payload = await ctx.waitForSignal('continue');
    await ctx.send('final', { message: 'Continue signal received', payload: payload ?? null });
    return 'Continue signal received - task completed';
  },
});

/** GETs a URL with `ctx.signal`, so a cancel stops the request in flight; returns the parsed JSON. */
export const HttpFetchTask = defineTask({
  app: 'examples',
  type: 'HttpFetchTask',
  input: z.object({
    url: z.string().url().refine((u) => /^https?:/.test(u), 'url must be http or https'),
    timeout_ms: z.number().int().min(1).max(3_600_000).default(30_000),
  }),
  timeoutMs: (input) => input.timeout_ms,
  async run(ctx, { url }) {
    await ctx.send('start', { url });
    await ctx.progress({ status: 'fetching', message: `Fetching data from ${url}` });
    const response = await fetch(url, { signal: ctx.signal });
    if (!response.ok) throw new Error(`HTTP error: ${response.status} ${response.statusText} for ${url}`);
    const text = await response.text();
    const data = JSON.parse(text) as unknown;
    await ctx.progress({ status: 'fetched', status_code: response.status, data_size: text.length });
    return data;
  },
});

export const exampleTasks = [ExampleTask, AsyncGeneratorTask, SyncGeneratorTask, ContinueTask, HttpFetchTask];
