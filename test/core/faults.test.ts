/**
 * Faults a network brings, injected around the real store and bus: the runtime survives each
 * one and loses nothing. A bus that throws, a store that fails for a moment, a claim still in
 * flight at shutdown, a lost signal message, PostgreSQL connections killed mid-run.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { createHandler, createTaskstream, defineTask, localBus, type Logger, type Taskstream } from '../../src/index.js';
import { faultyBus, faultyStore, outage } from '../support/faults.js';
import { assertLog, capturingLogger, deferred, describeBackends, finished, open, within } from './helpers.js';

const Counter = defineTask({
  app: 'core',
  type: 'Counter',
  input: z.object({ n: z.number().int(), pauseMs: z.number().int().default(0) }),
  retries: { limit: 0 },
  async run(ctx, { n, pauseMs }) {
    for (let i = 1; i <= n; i++) {
      await ctx.progress({ i });
      if (pauseMs > 0) await sleep(pauseMs, undefined, { signal: ctx.signal });
    }
    return n;
  },
});

await describeBackends('faults', 'faults', (tmp) => {
  void test('a bus whose publishEvents throws: the writer goes on, every later event is stored, the run completes', async () => {
    const faulty = faultyBus(localBus());
    const logger = capturingLogger();
    await using rt = await open(tmp.db(), { tasks: [Counter], bus: faulty.bus, logger });
    faulty.throwOnPublish(1);
    const task = await rt.create(Counter, { n: 20, pauseMs: 0 });
    const done = await finished(rt, task.id);
    assert.equal(done.status, 'completed');
    const events = await assertLog(rt, done, 'complete');
    assert.deepEqual(events.slice(0, -1).map((e) => e.data.i), Array.from({ length: 20 }, (_, i) => i + 1));
    assert.ok(logger.entries.some((e) => e.level === 'warn' && /publishing events failed/.test(e.msg)), 'the bus error is reported');
  });

  void test('a store error worth retrying on append is retried in seq order; it is not a lost lease', async () => {
    const faulty = faultyStore(await tmp.store(tmp.db()));
    await using rt = await createTaskstream({ store: faulty.store, tasks: [Counter], sweepIntervalMs: 60_000 });
    faulty.fail('appendEvents', 3);
    const task = await rt.create(Counter, { n: 30, pauseMs: 0 });
    const done = await finished(rt, task.id);
    assert.equal(done.status, 'completed', 'the run was not abandoned as if its lease were lost');
    assert.equal(done.attempt, 1);
    const events = await assertLog(rt, done, 'complete');
    assert.deepEqual(events.slice(0, -1).map((e) => e.data.i), Array.from({ length: 30 }, (_, i) => i + 1), 'every event, once, in order');
    assert.ok(faulty.calls('appendEvents') > 3);
  });

  void test('a store that answers late: runs that started at different moments still share one append per round trip', async () => {
    // Regression: the writer took the queue when a batch was scheduled, not when it could be
    // written, so a run that first sent while another run's batch was in flight stayed in a batch
    // of its own for good: N runs cost N appends per round trip instead of one.
    const faulty = faultyStore(await tmp.store(tmp.db()));
    const RUNS = 8;
    const EVENTS = 30;
    const Staggered = defineTask({
      app: 'core',
      type: 'Staggered',
      input: z.object({ k: z.number().int() }),
      async run(ctx, { k }) {
        // Run k starts sending while the k-th append is in flight, each run at a different moment.
        await within(5000, faulty.called('appendEvents', k), `append ${k} to begin`);
        for (let i = 1; i <= EVENTS; i++) await ctx.progress({ i });
        return k;
      },
    });
    await using rt = await createTaskstream({ store: faulty.store, tasks: [Staggered], concurrency: RUNS, sweepIntervalMs: 60_000 });
    faulty.latency('appendEvents', 5);
    const tasks = [];
    for (let k = 0; k < RUNS; k++) tasks.push(await rt.create(Staggered, { k }));
    for (const task of tasks) {
      const done = await finished(rt, task.id, 20_000);
      assert.equal(done.status, 'completed');
      await assertLog(rt, done, 'complete');
    }
    const appends = faulty.calls('appendEvents');
    // Every run's i-th send rides in one append with the others': about EVENTS + RUNS appends
    // (the runs join one by one), where separate batches would take RUNS × EVENTS.
    assert.ok(appends <= EVENTS + 2 * RUNS, `${RUNS} runs × ${EVENTS} events took ${appends} appends`);
  });

  void test('a permanent store error on append is the run\'s error (the send rejects), not a lost lease', async () => {
    const faulty = faultyStore(await tmp.store(tmp.db()));
    await using rt = await createTaskstream({ store: faulty.store, tasks: [Counter], sweepIntervalMs: 60_000 });
    faulty.fail('appendEvents', 1, () => new Error('injected: value too long for type character varying'));
    const task = await rt.create(Counter, { n: 3, pauseMs: 0 });
    const done = await finished(rt, task.id);
    assert.equal(done.status, 'failed');
    assert.match(done.error?.message ?? '', /injected: value too long/);
    await assertLog(rt, done, 'error');
  });

  void test('close() while a claim is in flight: what it claimed is given back, and no task code runs', async () => {
    const handle = tmp.db();
    let ran = 0;
    const Probe = defineTask({ app: 'core', type: 'Probe', input: z.object({}), run: () => (ran += 1) });
    const faulty = faultyStore(await tmp.store(handle));
    const rt = await createTaskstream({ store: faulty.store, tasks: [Probe], sweepIntervalMs: 60_000 });
    const held = faulty.hold('claimTasks');
    const task = await rt.create(Probe, {});
    await within(2000, held.entered, 'the claim to be in flight');
    const closing = rt.close({ timeoutMs: 1000 });
    held.release();
    await within(5000, closing, 'close()');
    assert.equal(ran, 0, 'no task code started after shutdown began');
    const check = await tmp.store(handle);
    await check.migrate();
    const back = await check.getTask(task.id);
    await check.close();
    assert.equal(back?.status, 'pending', 'given back: pending again');
    assert.equal(back?.attempt, 0, 'given back: the claim did not count as an attempt');
    await using again = await open(handle, { tasks: [Probe] });
    const done = await finished(again, task.id);
    assert.equal(done.status, 'completed');
    assert.equal(done.attempt, 1, 'the given-back claim did not count as an attempt');
    assert.equal(ran, 1);
  });

  void test('claims that fail are tried again by the sweep; the runtime goes on and runs the task once', async () => {
    const faulty = faultyStore(await tmp.store(tmp.db()));
    const logger = capturingLogger();
    // The claim at start and the one the create asks for both fail; the sweep's claim succeeds.
    faulty.fail('claimTasks', 2);
    await using rt = await createTaskstream({ store: faulty.store, tasks: [Counter], sweepIntervalMs: 100, logger });
    const task = await rt.create(Counter, { n: 3, pauseMs: 0 });
    const done = await finished(rt, task.id, 10_000);
    assert.equal(done.status, 'completed');
    assert.equal(done.attempt, 1);
    await assertLog(rt, done, 'complete');
    assert.ok(faulty.calls('claimTasks') >= 3);
    assert.ok(logger.entries.some((e) => e.level === 'error' && /claiming tasks failed/.test(e.msg)), 'the failed claim is reported');
  });

  void test('a slow claim: tasks created while it is in flight are claimed after it, each run once', async () => {
    const faulty = faultyStore(await tmp.store(tmp.db()));
    await using rt = await createTaskstream({ store: faulty.store, tasks: [Counter], sweepIntervalMs: 60_000 });
    const held = faulty.hold('claimTasks');
    const tasks = [await rt.create(Counter, { n: 2, pauseMs: 0 })];
    await within(2000, held.entered, 'a claim to be in flight');
    for (let k = 0; k < 3; k++) tasks.push(await rt.create(Counter, { n: 2, pauseMs: 0 }));
    held.release();
    for (const task of tasks) {
      const done = await finished(rt, task.id, 10_000);
      assert.equal(done.status, 'completed');
      assert.equal(done.attempt, 1, `task ${task.id} ran once`);
      await assertLog(rt, done, 'complete');
    }
  });

  void test('a claim whose reply arrives after its lease expired: its own sweep does not take the run for a dead owner\'s', async () => {
    // Regression (seen in CI under load on PostgreSQL): the sweep named only the runs already
    // started, so rows a claim in flight had taken looked like a dead owner's once their lease
    // expired, and were recovered and run again.
    const faulty = faultyStore(await tmp.store(tmp.db()));
    faulty.latency('claimTasks', 300); // five leases: the sweep (every 5 ms) comes due many times meanwhile
    await using rt = await createTaskstream({ store: faulty.store, tasks: [Counter], leaseMs: 60, sweepIntervalMs: 5 });
    const task = await rt.create(Counter, { n: 2, pauseMs: 0 });
    const done = await finished(rt, task.id, 10_000);
    assert.equal(done.status, 'completed');
    assert.equal(done.attempt, 1, 'run once');
    await assertLog(rt, done, 'complete');
  });

  void test('PostgreSQL unreachable mid-run (its port closed): ping() and /ready fail, the run waits, then recovers with every event', async (t) => {
    if (tmp.server === undefined || tmp.storeAt === undefined) {
      t.skip('only a store with a server can become unreachable');
      return;
    }
    const relay = await outage(tmp.server);
    const halfway = deferred();
    const proceed = deferred();
    const Outlast = defineTask({
      app: 'core',
      type: 'Outlast',
      input: z.object({}),
      async run(ctx) {
        for (let i = 1; i <= 10; i++) await ctx.progress({ i });
        halfway.resolve();
        await proceed.promise;
        for (let i = 11; i <= 20; i++) await ctx.progress({ i });
        return 'outlasted';
      },
    });
    const retrying = deferred();
    const logger = watchingLogger(/appending events failed; retrying/, retrying.resolve);
    let server: http.Server | undefined;
    try {
      const store = await tmp.storeAt(tmp.db(), relay.port);
      await using rt = await createTaskstream({ store, tasks: [Outlast], logger, sweepIntervalMs: 60_000, leaseMs: 30_000 });
      server = http.createServer(createHandler(rt));
      await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
      const ready = readyProbe(server);
      const task = await rt.create(Outlast, {});
      await within(5000, halfway.promise, 'the first 10 events to be stored');
      assert.equal((await ready()).status, 200);

      await relay.cut();
      await assert.rejects(within(10_000, rt.store.ping(), 'ping() to fail'));
      const down = await ready();
      assert.equal(down.status, 503);
      assert.equal(down.body.checks.store, 'error');
      proceed.resolve();
      await within(10_000, retrying.promise, 'the writer to retry an append');

      await relay.restore();
      await within(15_000, untilPing(rt), 'ping() to answer again');
      assert.equal((await ready()).status, 200);
      const done = await finished(rt, task.id, 30_000);
      assert.equal(done.status, 'completed');
      assert.equal(done.attempt, 1, 'the run kept its lease through the outage');
      const events = await assertLog(rt, done, 'complete');
      assert.deepEqual(events.slice(0, -1).map((e) => e.data.i), Array.from({ length: 20 }, (_, i) => i + 1));
    } finally {
      await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
      await relay.close();
    }
  });

  void test('a signal whose bus message is lost reaches the waiting run through lease renewal', async () => {
    const handle = tmp.db();
    const waiting = deferred<number>();
    const Wait = defineTask({
      app: 'core',
      type: 'Wait',
      input: z.object({}),
      timeoutMs: 60_000,
      async run(ctx) {
        const got = ctx.waitForSignal<{ go: number }>('continue');
        waiting.resolve(ctx.task.id);
        return got;
      },
    });
    const lossy = faultyBus(localBus());
    lossy.dropCommands('signal');
    await using owner = await open(handle, { tasks: [Wait], bus: lossy.bus, leaseMs: 300 });
    // Another process (its own bus, which never reaches the owner) sends the signal.
    await using other = await open(handle, { tasks: [], bus: lossy.bus });
    const task = await owner.create(Wait, {});
    await within(2000, waiting.promise, 'the run to wait for its signal');
    assert.equal(await other.signal(task.id, 'continue', { go: 7 }), true);
    const done = await finished(owner, task.id, 5000);
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.finalValue, { go: 7 });
  });

  void test('PostgreSQL connections terminated mid-run (pg_terminate_backend): the run completes, nothing lost or doubled', async (t) => {
    if (tmp.terminateConnections === undefined) {
      t.skip('only PostgreSQL has server connections to kill');
      return;
    }
    const kill = tmp.terminateConnections;
    const halfway = deferred();
    const later = deferred();
    const Long = defineTask({
      app: 'core',
      type: 'Long',
      input: z.object({}),
      async run(ctx) {
        for (let i = 1; i <= 60; i++) {
          await ctx.progress({ i });
          if (i === 20) halfway.resolve();
          if (i === 40) later.resolve();
          await sleep(5); // pacing: the kills land while events are being written
        }
        return 'done';
      },
    });
    await using rt = await open(tmp.db(), { tasks: [Long], leaseMs: 2000 });
    const task = await rt.create(Long, {});
    await within(5000, halfway.promise, 'the run to be halfway');
    assert.ok((await kill()) > 0, 'some connections were terminated');
    await within(5000, later.promise, 'the run to go on after the first kill');
    await kill();
    const done = await finished(rt, task.id, 10_000);
    assert.equal(done.status, 'completed');
    assert.equal(done.attempt, 1, 'never taken over');
    const events = await assertLog(rt, done, 'complete');
    assert.deepEqual(events.slice(0, -1).map((e) => e.data.i), Array.from({ length: 60 }, (_, i) => i + 1));
    await rt.store.ping();
  });
});

/** A silent logger that calls `hit` once a warning or error matches `pattern`. */
function watchingLogger(pattern: RegExp, hit: () => void): Logger {
  const check = (_obj: object, msg = ''): void => {
    if (pattern.test(msg)) hit();
  };
  const logger: Logger = { debug: () => {}, info: () => {}, warn: check, error: check, child: () => logger };
  return logger;
}

/** GET /ready on `server`, as a load balancer would ask it. */
function readyProbe(server: http.Server): () => Promise<{ status: number; body: { checks: { store: string } } }> {
  const { port } = server.address() as AddressInfo;
  return async () => {
    const res = await fetch(`http://127.0.0.1:${port}/ready`);
    return { status: res.status, body: (await res.json()) as { checks: { store: string } } };
  };
}

/**
 * Resolves once `ping()` succeeds, retrying at once: with the relay back, each failure is the pool
 * discarding one connection the cut left dead, so a pool's worth of tries is enough.
 */
async function untilPing(rt: Taskstream): Promise<void> {
  let last: unknown;
  for (let i = 0; i < 50; i++) {
    try {
      await rt.store.ping();
      return;
    } catch (err) {
      last = err;
    }
  }
  throw new Error('ping() never answered', { cause: last });
}
