/**
 * Two runtimes on one SQLite file, each with its own Redis bus on one prefix, are a cluster: a
 * stream opened on the runtime that does not run the task delivers every event live and ends; a
 * cancel or a signal sent through it reaches the running code (over the bus: leases are long
 * here, so the store fallback of lease renewal cannot be what delivered it).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { z } from 'zod';
import { defineTask, type Taskstream, type TaskRecord } from '../../src/index.js';
import { redisBus } from '../../src/bus/redis/index.js';
import { assertLog, collect, deferred, finished, open, tempDb } from '../core/helpers.js';
import { REDIS_URL, skipUnlessRedis } from '../support/services.js';
import { within } from '../support/within.js';

const skip = await skipUnlessRedis();
const tmp = tempDb('cluster');

/** Sends `steps` progress events, waits for `continue`, sends its payload, then ten more. */
const Stepper = defineTask({
  app: 'cluster',
  type: 'Stepper',
  input: z.object({ steps: z.number() }),
  async run(ctx, input) {
    for (let i = 0; i < input.steps; i++) await ctx.progress({ i });
    const payload = await ctx.waitForSignal<{ go: string }>('continue');
    await ctx.send('got', { payload });
    for (let i = 0; i < 10; i++) await ctx.progress({ i: input.steps + i });
    return { done: true };
  },
});

/** Runs until cancelled. */
const Forever = defineTask({
  app: 'cluster',
  type: 'Forever',
  input: z.object({}),
  async run(ctx) {
    await ctx.progress({ started: true });
    await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error), { once: true }));
  },
});

async function cluster(): Promise<[Taskstream, Taskstream]> {
  const file = tmp.db();
  const prefix = `ts-bus-${randomBytes(6).toString('hex')}`;
  const open1 = (): Promise<Taskstream> => open(file, { tasks: [Stepper, Forever], bus: redisBus({ url: REDIS_URL, prefix }), leaseMs: 60_000 });
  const a = await open1();
  const b = await open1();
  after(async () => {
    await a.close({ timeoutMs: 1000 });
    await b.close({ timeoutMs: 1000 });
  });
  return [a, b];
}

/** Creates on `via`, waits until one of the runtimes started it; returns [owner, other]. */
async function createRunning(rts: [Taskstream, Taskstream], via: Taskstream, kind: typeof Stepper | typeof Forever, input: object): Promise<{ task: TaskRecord; owner: Taskstream; other: Taskstream }> {
  const started = deferred<Taskstream>();
  const offs = rts.map((rt) => rt.on('task:started', () => started.resolve(rt)));
  try {
    const task = await via.create(kind as typeof Stepper, input as { steps: number });
    const owner = await within(10_000, started.promise, 'a runtime to start the task');
    return { task, owner, other: owner === rts[0] ? rts[1] : rts[0] };
  } finally {
    for (const off of offs) off();
  }
}

describe('two runtimes on one SQLite file with a Redis bus', { skip }, () => {
  test('a stream on the runtime that does not run the task gets every event and ends; a signal through it reaches the code', async () => {
    const rts = await cluster();
    const { task, owner, other } = await createRunning(rts, rts[0], Stepper, { steps: 5 });
    const stream = await other.subscribe(task.id);
    const all = collect(stream, 15_000, 'the stream on the other runtime to end');
    assert.equal(await other.signal(task.id, 'continue', { go: 'now' }), true);
    const events = await all;
    const done = await finished(owner, task.id);
    assert.equal(done.status, 'completed');
    const stored = await assertLog(owner, done, 'complete');
    assert.deepEqual(events.map((e) => e.seq), stored.map((e) => e.seq));
    assert.deepEqual(events.find((e) => e.type === 'got')?.data, { payload: { go: 'now' } });
  });

  test('a cancel sent through the other runtime stops the running code at once', async () => {
    const rts = await cluster();
    const { task, owner, other } = await createRunning(rts, rts[1], Forever, {});
    const stream = await owner.subscribe(task.id);
    const all = collect(stream, 15_000, 'the stream to end');
    assert.equal(await other.cancel(task.id, 'from the other process'), true);
    // The lease is 60 s: only the bus can have told the owner within this bound.
    const done = await finished(owner, task.id, 5000);
    assert.equal(done.status, 'cancelled');
    assert.equal(done.cancelReason, 'from the other process');
    const events = await all;
    assert.equal(events.at(-1)?.type, 'cancelled');
  });

  test('tasks created on either runtime run somewhere, and both runtimes stream each to its end', async () => {
    const rts = await cluster();
    const tasks = await Promise.all(Array.from({ length: 6 }, (_, i) => rts[i % 2]!.create(Stepper, { steps: 3 })));
    const streams = await Promise.all(tasks.flatMap((t) => rts.map((rt) => rt.subscribe(t.id))));
    const reads = streams.map((s) => collect(s, 20_000, 'every stream to end'));
    // Whoever runs a task waits for its signal (kept in the store until taken); send all through runtime 0.
    for (const t of tasks) assert.equal(await rts[0].signal(t.id, 'continue', { go: String(t.id) }), true);
    const results = await Promise.all(reads);
    for (const events of results) {
      assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1));
      assert.equal(events.at(-1)?.type, 'complete');
    }
  });
});
