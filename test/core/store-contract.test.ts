/**
 * The store contract itself, on every backend: what the runtime and the hub rely on from
 * `readEvents` pages, retention (`trimEvents`, `retainEvents`), `migrate()` reports, `ping()`,
 * retried writes, fencing and the store's fallbacks (signals in renewal, giving claims back).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { type TestContext, test } from 'node:test';
import pg from 'pg';
import type { Store } from '../../src/index.js';
import { type PgPool, postgresStore } from '../../src/store/postgres/index.js';
import { recoveryEvents, runtimeEvents } from '../../src/task/events.js';
import { describeBackends, within } from './helpers.js';

const KIND = 'core/Contract';

await describeBackends('store contract', 'contract', (tmp) => {
  async function fresh(): Promise<{ store: Store; handle: string; close(): Promise<void> }> {
    const handle = tmp.db();
    const store = await tmp.store(handle);
    await store.migrate();
    return { store, handle, close: () => store.close() };
  }

  /** Runs `body` on a new database of its own when the backend is PostgreSQL; elsewhere skips, saying why. */
  async function onPostgres(t: TestContext, why: string, body: (where: { url: string; schema: string }) => Promise<void>): Promise<void> {
    if (tmp.where === undefined) {
      t.skip(why);
      return;
    }
    await body(await tmp.where(tmp.db()));
  }

  /** A running task with `n` stored events (`json` of each given by `data(i)`). */
  async function running(store: Store, n: number, data = (i: number) => `{"i":${i}}`): Promise<{ id: number; taskId: number; epoch: number }> {
    const { task } = await store.createTask({ app: 'core', type: 'Contract', input: {}, timeoutMs: null, idempotencyKey: null, runAt: null, now: Date.now() });
    const [claim] = await store.claimTasks({ owner: 'me', kinds: [KIND], limit: 1, leaseMs: 60_000, now: Date.now() });
    assert.equal(claim?.task.id, task.id);
    if (n > 0) {
      const events = Array.from({ length: n }, (_, i) => ({ taskId: task.id, epoch: claim.epoch, seq: i + 1, type: 'progress', json: data(i + 1), at: Date.now() }));
      assert.deepEqual(await store.appendEvents(events), []);
    }
    return { id: task.id, taskId: task.id, epoch: claim.epoch };
  }

  void test('readEvents: a page bounded by limit and maxBytes, with the log position from the same read', async () => {
    const db = await fresh();
    try {
      const { id } = await running(db.store, 10, (i) => JSON.stringify({ i, pad: 'x'.repeat(90) }));
      const page = await db.store.readEvents(id, 0, { limit: 3 });
      assert.deepEqual(page?.events.map((e) => e.seq), [1, 2, 3]);
      assert.deepEqual({ first: page?.firstSeq, last: page?.lastSeq, status: page?.status }, { first: 1, last: 10, status: 'running' });
      assert.deepEqual(JSON.parse(page!.events[0]!.json), { i: 1, pad: 'x'.repeat(90) }, 'the JSON as sent');
      const after = await db.store.readEvents(id, 7, { limit: 100 });
      assert.deepEqual(after?.events.map((e) => e.seq), [8, 9, 10]);
      // Each event is ~100 bytes: 250 bytes stops the page after the row that crosses it.
      const bounded = await db.store.readEvents(id, 0, { limit: 100, maxBytes: 250 });
      assert.deepEqual(bounded?.events.map((e) => e.seq), [1, 2, 3]);
      const tiny = await db.store.readEvents(id, 4, { limit: 100, maxBytes: 1 });
      assert.deepEqual(tiny?.events.map((e) => e.seq), [5], 'a page always holds at least one row');
      const end = await db.store.readEvents(id, 10, { limit: 100 });
      assert.deepEqual({ n: end?.events.length, last: end?.lastSeq }, { n: 0, last: 10 });
      assert.equal(await db.store.readEvents(999_999, 0, { limit: 10 }), undefined, 'no such task');
    } finally {
      await db.close();
    }
  });

  void test('readPositions: many logs\' positions in one read; a task that does not exist is absent', async () => {
    const db = await fresh();
    try {
      const a = await running(db.store, 3);
      const b = await running(db.store, 0);
      await db.store.trimEvents(a.id, 2);
      const positions = await db.store.readPositions([a.id, 999_999, b.id]);
      assert.deepEqual(Object.fromEntries(positions), {
        [a.id]: { firstSeq: 2, lastSeq: 3, status: 'running' },
        [b.id]: { firstSeq: 1, lastSeq: 0, status: 'running' },
      });
      assert.equal((await db.store.readPositions([])).size, 0);
    } finally {
      await db.close();
    }
  });

  void test('readPages: many reads in one, each as readEvents would answer it (bounded per read, in order, undefined when missing)', async () => {
    const db = await fresh();
    try {
      const read = db.store.readPages?.bind(db.store);
      assert.ok(read !== undefined, 'every built-in store reads pages together');
      const pad = (i: number) => JSON.stringify({ i, pad: 'x'.repeat(90) });
      const a = await running(db.store, 10, pad);
      const b = await running(db.store, 0);
      const c = await running(db.store, 4, pad);
      await db.store.trimEvents(c.id, 2);
      const reads = [
        { taskId: a.id, afterSeq: 0 }, { taskId: 999_999, afterSeq: 0 }, { taskId: b.id, afterSeq: 0 },
        { taskId: a.id, afterSeq: 7 }, { taskId: c.id, afterSeq: 0 }, { taskId: a.id, afterSeq: 10 },
      ];
      const limit = { limit: 4, maxBytes: 250 };
      const pages = await read(reads, limit);
      assert.equal(pages.length, reads.length, 'one result per read');
      assert.deepEqual(pages, await Promise.all(reads.map((r) => db.store.readEvents(r.taskId, r.afterSeq, limit))), 'each as readEvents');
      assert.deepEqual(pages.map((p) => p?.events.map((e) => e.seq)), [[1, 2, 3], undefined, [], [8, 9, 10], [3, 4], []]);
      assert.deepEqual(pages.map((p) => p && { first: p.firstSeq, last: p.lastSeq, status: p.status }), [
        { first: 1, last: 10, status: 'running' }, undefined, { first: 1, last: 0, status: 'running' },
        { first: 1, last: 10, status: 'running' }, { first: 3, last: 4, status: 'running' }, { first: 1, last: 10, status: 'running' },
      ]);
      assert.ok(pages[0]!.events.every((e) => e.taskId === a.id) && pages[4]!.events.every((e) => e.taskId === c.id), 'each event names its task');
      assert.deepEqual(await read([], limit), []);
    } finally {
      await db.close();
    }
  });

  void test('nextRunDelay: null when nothing of these kinds is delayed (not "due now"), else the time until the earliest', async () => {
    const db = await fresh();
    try {
      assert.equal(await db.store.nextRunDelay([KIND], Date.now()), null, 'an empty store');
      await running(db.store, 0);
      assert.equal(await db.store.nextRunDelay([KIND], Date.now()), null, 'a running task is not delayed');
      await db.store.createTask({ app: 'core', type: 'Contract', input: {}, timeoutMs: null, idempotencyKey: null, runAt: Date.now() + 60_000, now: Date.now() });
      const delay = await db.store.nextRunDelay([KIND], Date.now());
      assert.ok(delay !== null && delay > 50_000 && delay <= 60_000, `about a minute, got ${delay}`);
      assert.equal(await db.store.nextRunDelay(['core/Other'], Date.now()), null, 'another kind');
    } finally {
      await db.close();
    }
  });

  void test('trimEvents keeps the newest, moves firstSeq, never removes the last event; retainEvents does it on finish', async () => {
    const db = await fresh();
    try {
      const { id, epoch } = await running(db.store, 10);
      assert.equal(await db.store.trimEvents(id, 4), 6);
      const page = await db.store.readEvents(id, 0, { limit: 100 });
      assert.deepEqual(page?.events.map((e) => e.seq), [7, 8, 9, 10]);
      assert.equal(page?.firstSeq, 7);
      assert.equal((await db.store.getTask(id))?.firstSeq, 7);
      assert.equal(await db.store.trimEvents(id, 4), 0, 'idempotent');
      assert.equal(await db.store.trimEvents(id, 1), 3);
      await assert.rejects(db.store.trimEvents(id, 0), TypeError);

      const other = await running(db.store, 5);
      const finish = await db.store.finishRun({
        taskId: other.id, epoch: other.epoch, status: 'completed', finalValue: '1', event: runtimeEvents.complete('1'),
        unlessCancelRequested: true, retainEvents: 3, now: Date.now(),
      });
      assert.ok(finish.ok);
      assert.equal(finish.event.seq, 6);
      const kept = await db.store.readEvents(other.id, 0, { limit: 100 });
      assert.deepEqual(kept?.events.map((e) => e.type), ['progress', 'progress', 'complete'], 'the terminal event is among those kept');
      assert.deepEqual({ first: kept?.firstSeq, last: kept?.lastSeq, status: kept?.status }, { first: 4, last: 6, status: 'completed' });
      // The first task is untouched by the second's retention.
      assert.equal((await db.store.readEvents(id, 0, { limit: 100 }))?.events.length, 1);
      void epoch;
    } finally {
      await db.close();
    }
  });

  void test('migrate() reports what it applied, once; concurrent migrations apply each file exactly once', async () => {
    const handle = tmp.db();
    const stores = await Promise.all([tmp.store(handle), tmp.store(handle), tmp.store(handle)]);
    try {
      const reports = await Promise.all(stores.map((s) => s.migrate()));
      const applied = reports.flatMap((r) => r.applied);
      assert.equal(new Set(applied).size, applied.length, `no file applied twice: ${applied.join(', ')}`);
      assert.ok(applied.every((f) => /^\d+_.*\.sql$/.test(f)));
      if (tmp.backend.store.name !== 'memory') assert.ok(applied.length > 0, 'a fresh database gets its schema');
      assert.deepEqual((await stores[0]!.migrate()).applied, [], 'nothing left to apply');
      await running(stores[1]!, 1);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  void test('a retried append or outcome (its reply lost) is recognised, never written twice; a stale epoch is fenced', async () => {
    const db = await fresh();
    try {
      const { id, epoch } = await running(db.store, 0);
      const batch = [1, 2, 3].map((seq) => ({ taskId: id, epoch, seq, type: 'progress', json: `{"seq":${seq}}`, at: Date.now() }));
      assert.deepEqual(await db.store.appendEvents(batch), []);
      assert.deepEqual(await db.store.appendEvents(batch), [], 'the same batch again is not a refusal');
      assert.deepEqual((await db.store.readEvents(id, 0, { limit: 10 }))?.events.map((e) => e.seq), [1, 2, 3]);
      await assert.rejects(db.store.appendEvents([{ ...batch[0]!, seq: 5 }]), /does not follow/);
      const finish = { taskId: id, epoch, status: 'completed' as const, finalValue: '"v"', event: runtimeEvents.complete('"v"'), unlessCancelRequested: true, now: Date.now() };
      const first = await db.store.finishRun(finish);
      const again = await db.store.finishRun(finish);
      assert.ok(first.ok && again.ok);
      assert.deepEqual(again.event, first.event, 'the committed outcome, not a second terminal event');
      assert.equal((await db.store.getTask(id))?.lastSeq, 4);
      assert.deepEqual(await db.store.appendEvents([{ ...batch[0]!, seq: 5 }]), [id], 'a finished run is fenced');
      const stale = await db.store.finishRun({ ...finish, epoch: epoch + 1 });
      assert.deepEqual(stale, { ok: false, reason: 'fenced' });
    } finally {
      await db.close();
    }
  });

  void test('batched creates, appends and outcomes keep any text byte for byte (quotes, backslashes, braces, brackets, commas, "NULL", non-ASCII, NUL and lone surrogates)', async () => {
    const db = await fresh();
    try {
      const odd = ['', 'NULL', 'null', '"', '\\', '\\"', '{}', '{a,b}', 'a,b', ' spaced ', 'line\nbreak\ttab', 'é ✓ 𝄞', '\\\\N', "it's", '\u0000', '\ud800 lone', '[1,2]', '\u2028'];
      const inputs = odd.map((s, i) => ({ s, i }));
      const created = await Promise.all(inputs.map((input) => db.store.createTask({
        app: 'core', type: 'Contract', input, timeoutMs: null, idempotencyKey: null, runAt: null, now: Date.now(),
      })));
      assert.deepEqual(created.map((c) => c.task.input), inputs, 'inputs as created');
      const claims = await db.store.claimTasks({ owner: 'me', kinds: [KIND], limit: odd.length, leaseMs: 60_000, now: Date.now() });
      assert.equal(claims.length, odd.length);
      // One event per task, all in one append (one statement on PostgreSQL).
      const json = (c: (typeof claims)[number]) => JSON.stringify({ s: odd[(c.task.input as { i: number }).i] });
      assert.deepEqual(await db.store.appendEvents(claims.map((c) => ({ taskId: c.task.id, epoch: c.epoch, seq: 1, type: 'progress', json: json(c), at: Date.now() }))), []);
      const results = await Promise.all(claims.map((c) => db.store.finishRun({
        taskId: c.task.id, epoch: c.epoch, status: 'completed', finalValue: json(c), event: runtimeEvents.complete(json(c)),
        unlessCancelRequested: false, retainEvents: undefined, now: Date.now(),
      })));
      for (const [i, c] of claims.entries()) {
        assert.ok(results[i]!.ok);
        const page = await db.store.readEvents(c.task.id, 0, { limit: 10 });
        assert.deepEqual(page?.events.map((e) => e.type), ['progress', 'complete']);
        assert.equal(page?.events[0]!.json, json(c), 'event data as sent');
        assert.equal(page?.events[1]!.json, runtimeEvents.complete(json(c)).json, 'terminal event as sent');
        assert.deepEqual((await db.store.getTask(c.task.id))?.finalValue, JSON.parse(json(c)), 'final value as sent');
      }
    } finally {
      await db.close();
    }
  });

  void test('creates and outcomes made at once each get their own result (stores may write them as one statement)', async () => {
    const db = await fresh();
    try {
      const inputs = Array.from({ length: 30 }, (_, i) => ({ n: i }));
      const created = await Promise.all(inputs.map((input) => db.store.createTask({
        app: 'core', type: 'Contract', input, timeoutMs: input.n, idempotencyKey: null, runAt: null, now: Date.now(),
      })));
      assert.deepEqual(created.map((c) => c.task.input), inputs, 'each caller gets its own task');
      assert.deepEqual(created.map((c) => c.task.timeoutMs), inputs.map((i) => i.n));
      assert.equal(new Set(created.map((c) => c.task.id)).size, 30);
      const claims = await db.store.claimTasks({ owner: 'me', kinds: [KIND], limit: 30, leaseMs: 60_000, now: Date.now() });
      assert.equal(claims.length, 30);
      const [fenced, yields, ...rest] = claims;
      await db.store.requestCancel(yields!.task.id, 'stop', runtimeEvents.cancelled('stop'), Date.now());
      const finish = (c: typeof fenced, epoch = c!.epoch) => db.store.finishRun({
        taskId: c!.task.id, epoch, status: 'completed', finalValue: String(c!.task.id), event: runtimeEvents.complete(String(c!.task.id)),
        unlessCancelRequested: true, retainEvents: undefined, now: Date.now(),
      });
      const results = await Promise.all([finish(fenced, fenced!.epoch + 1), finish(yields), ...rest.map((c) => finish(c))]);
      assert.deepEqual(results[0], { ok: false, reason: 'fenced' });
      assert.deepEqual(results[1], { ok: false, reason: 'cancel_requested', cancelReason: 'stop' });
      for (const [i, r] of results.slice(2).entries()) {
        assert.ok(r.ok, `run ${rest[i]!.task.id} finished`);
        assert.deepEqual({ taskId: r.event.taskId, seq: r.event.seq, json: r.event.json }, { taskId: rest[i]!.task.id, seq: 1, json: runtimeEvents.complete(String(rest[i]!.task.id)).json });
        assert.equal((await db.store.getTask(rest[i]!.task.id))?.finalValue, rest[i]!.task.id);
      }
    } finally {
      await db.close();
    }
  });

  void test('renewal carries stored signals and recorded cancels; lost leases are named; released claims are pending again', async () => {
    const db = await fresh();
    try {
      const a = await running(db.store, 0);
      const b = await running(db.store, 0);
      assert.equal(await db.store.addSignal(a.id, 'continue', '{"go":1}', Date.now()), 'added');
      assert.equal(await db.store.addSignal(a.id, 'continue', '{"go":2}', Date.now()), 'added');
      const cancel = await db.store.requestCancel(b.id, 'stop', runtimeEvents.cancelled('stop'), Date.now());
      assert.deepEqual(cancel, { found: true, accepted: true, status: 'running', reason: 'stop' });
      const renewal = await db.store.renewLeases('me', [a, b, { taskId: 999_999, epoch: 1 }], 60_000, Date.now());
      assert.deepEqual(renewal.lost, [999_999]);
      assert.deepEqual(renewal.signals, [{ taskId: a.id, names: ['continue'] }]);
      assert.deepEqual(renewal.cancelRequested, [{ taskId: b.id, reason: 'stop' }]);
      assert.deepEqual((await db.store.renewLeases('someone else', [a], 60_000, Date.now())).lost, [a.id], 'another owner cannot renew');
      assert.equal(await db.store.takeSignal(a.id, 'continue'), '{"go":1}');

      await db.store.releaseRuns([a, { taskId: b.id, epoch: b.epoch + 1 }]);
      const released = await db.store.getTask(a.id);
      assert.deepEqual({ status: released?.status, attempt: released?.attempt }, { status: 'pending', attempt: 0 });
      assert.equal((await db.store.getTask(b.id))?.status, 'running', 'a stale epoch releases nothing');
      const [again] = await db.store.claimTasks({ owner: 'me', kinds: [KIND], limit: 1, leaseMs: 60_000, now: Date.now() });
      assert.equal(again?.task.id, a.id);
      assert.equal(again?.task.attempt, 1);
    } finally {
      await db.close();
    }
  });

  void test('an expired lease is recovered with an interrupted event and a new epoch; the old owner is fenced', async () => {
    const db = await fresh();
    try {
      const { task } = await db.store.createTask({ app: 'core', type: 'Contract', input: {}, timeoutMs: null, idempotencyKey: null, runAt: null, now: Date.now() });
      // A lease that ended a minute before it was taken: expired by every clock involved, the
      // caller's (memory, SQLite) and the database's (PostgreSQL).
      const [claim] = await db.store.claimTasks({ owner: 'dead', kinds: [KIND], limit: 1, leaseMs: -60_000, now: Date.now() });
      assert.ok(claim);
      const recovered = await db.store.recoverExpired(Date.now(), [], recoveryEvents);
      assert.deepEqual(recovered.map((e) => [e.taskId, e.seq, e.type, JSON.parse(e.json)]), [[task.id, 1, 'interrupted', { reason: 'lease_expired' }]]);
      assert.equal((await db.store.getTask(task.id))?.status, 'pending');
      const late = await db.store.finishRun({
        taskId: task.id, epoch: claim.epoch, status: 'completed', finalValue: '1', event: runtimeEvents.complete('1'), unlessCancelRequested: true, now: Date.now(),
      });
      assert.deepEqual(late, { ok: false, reason: 'fenced' });
      assert.deepEqual(await db.store.appendEvents([{ taskId: task.id, epoch: claim.epoch, seq: 2, type: 'progress', json: '{}', at: Date.now() }]), [task.id]);
    } finally {
      await db.close();
    }
  });

  void test('an append never waits for a task row another transaction holds; a renewal of the same runs meanwhile completes (PostgreSQL)', async (t) => onPostgres(t, 'only PostgreSQL locks rows', async ({ url, schema }) => {
    // Regression: the append used to lock every task row of its batch (the fence moved
    // last_seq) and, at once with a renewal locking them in another order, deadlocked until
    // PostgreSQL broke the cycle after deadlock_timeout (1 s) (seen in bench/ingest-pg). The
    // fence now reads the row: an append waits for no row lock at all.
    // No retries: a deadlock surfaces as an error instead of a one-second stall.
    const store: Store = postgresStore({ connectionString: url, schema, retries: 1 });
    const blocker = new pg.Client({ connectionString: url });
    await blocker.connect();
    try {
      await store.migrate();
      const runs = [];
      for (let i = 0; i < 20; i++) runs.push(await running(store, 0));
      const middle = runs[10]!;
      await blocker.query('BEGIN');
      await blocker.query(`SELECT id FROM "${schema}".tasks WHERE id = $1 FOR UPDATE`, [middle.id]);
      const renew = store.renewLeases('me', [...runs].reverse().map((r) => ({ taskId: r.id, epoch: r.epoch })), 60_000, Date.now());
      renew.catch(() => {});
      const batch = runs.map((r) => ({ taskId: r.id, epoch: r.epoch, seq: 1, type: 'progress', json: '{}', at: Date.now() }));
      assert.deepEqual(await within(10_000, store.appendEvents(batch), 'the append, while the row is held'), []);
      await blocker.query('COMMIT');
      const renewal = await within(15_000, renew, 'the renewal');
      assert.deepEqual(renewal.lost, []);
      assert.equal((await store.getTask(middle.id))?.lastSeq, 1);
    } finally {
      await blocker.end();
      await store.close();
    }
  }));

  void test('an append racing a takeover of one of its runs: that run is refused, the rest of the batch is stored (PostgreSQL)', async (t) => onPostgres(t, 'only PostgreSQL: the others write one transaction at a time', async ({ url, schema }) => {
    // The fence reads the task row in the append's snapshot; a takeover that commits while the
    // append runs is caught by the primary key instead (the takeover's event holds the seq the
    // late batch starts at). Here a transaction of the test's own does what recovery does (new
    // epoch, its event at the next seq) and commits once the append has reached that event's row.
    // The store has one connection, holding an advisory lock; a trigger on the events table
    // releases it as the append inserts that row, which is what the taker waits for.
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    const store: Store = postgresStore({ pool, schema });
    const taker = new pg.Client({ connectionString: url });
    await taker.connect();
    const reached = 7_031_742;
    try {
      await store.migrate();
      const [lost, kept] = [await running(store, 1), await running(store, 1)];
      await taker.query(`CREATE FUNCTION "${schema}".reached() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        IF NEW.task_id = ${lost.id} AND NEW.seq = 2 AND NEW.type = 'progress' THEN PERFORM pg_advisory_unlock(${reached}); END IF;
        RETURN NEW; END $$`);
      await taker.query(`CREATE TRIGGER reached BEFORE INSERT ON "${schema}".events FOR EACH ROW EXECUTE FUNCTION "${schema}".reached()`);
      await pool.query('SELECT pg_advisory_lock($1)', [reached]);
      await taker.query('BEGIN');
      await taker.query(`UPDATE "${schema}".tasks SET lease_epoch = lease_epoch + 1, status = 'pending', last_seq = 2 WHERE id = $1`, [lost.id]);
      await taker.query(`INSERT INTO "${schema}".events (task_id, seq, type, data, at) VALUES ($1, 2, 'interrupted', '{}', 0)`, [lost.id]);
      const append = store.appendEvents([lost, kept].flatMap((r) => [2, 3].map((seq) => ({
        taskId: r.id, epoch: r.epoch, seq, type: 'progress', json: `{"seq":${seq}}`, at: Date.now() }))));
      append.catch(() => {});
      await within(10_000, taker.query('SELECT pg_advisory_lock($1)', [reached]), 'the append to reach the takeover\'s row');
      await taker.query('COMMIT');
      assert.deepEqual(await within(10_000, append, 'the append'), [lost.id]);
      const types = async (id: number) => (await store.readEvents(id, 0, { limit: 10 }))?.events.map((e) => `${e.seq}:${e.type}`);
      assert.deepEqual(await types(lost.id), ['1:progress', '2:interrupted'], 'nothing of the late batch');
      assert.deepEqual(await types(kept.id), ['1:progress', '2:progress', '3:progress']);
      assert.equal((await store.getTask(kept.id))?.lastSeq, 3, 'a running task\'s last seq is its log\'s');
    } finally {
      await taker.end();
      await store.close();
      await pool.end();
    }
  }));

  void test('a cancel whose COMMIT reply is lost is retried and still reported as accepted (PostgreSQL)', async (t) => onPostgres(t, 'only a networked store can lose a reply', async ({ url, schema }) => {
    // Regression: the retry found the task already cancelled, by the try whose reply was lost,
    // and answered "already cancelled" (a 409 over HTTP) for a cancel that had succeeded.
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    let loseCommit = false;
    // The slice of a pool the store takes: the same pool, whose client loses one COMMIT's reply.
    const lossy: PgPool = {
      query: (q, v) => pool.query(q as string, v as unknown[]) as never,
      end: () => pool.end(),
      async connect() {
        const client = await pool.connect();
        return {
          async query(q, v) {
            const result = await client.query(q as string, v as unknown[]);
            if (q === 'COMMIT' && loseCommit) {
              loseCommit = false;
              throw Object.assign(new Error('injected: connection lost after COMMIT'), { code: '08006' });
            }
            return result as never;
          },
          release: (err) => client.release(err),
        };
      },
    };
    const store: Store = postgresStore({ pool: lossy, schema });
    try {
      await store.migrate();
      const { task } = await store.createTask({ app: 'core', type: 'Contract', input: {}, timeoutMs: null, idempotencyKey: null, runAt: null, now: Date.now() });
      loseCommit = true;
      const result = await store.requestCancel(task.id, 'stop', runtimeEvents.cancelled('stop'), Date.now());
      assert.equal(loseCommit, false, 'the COMMIT reply was lost once');
      assert.ok(result.found);
      assert.deepEqual({ accepted: result.accepted, status: result.status, type: result.event?.type, seq: result.event?.seq },
        { accepted: true, status: 'cancelled', type: 'cancelled', seq: 1 });
      const page = await store.readEvents(task.id, 0, { limit: 10 });
      assert.deepEqual(page?.events.map((e) => e.type), ['cancelled'], 'one terminal event');
      const again = await store.requestCancel(task.id, 'stop', runtimeEvents.cancelled('stop'), Date.now());
      assert.ok(again.found && !again.accepted, 'a second cancel is still refused');
    } finally {
      await store.close();
      await pool.end();
    }
  }));

  void test('an append whose reply is lost is retried: its events are stored once and the next batch follows (PostgreSQL)', async (t) => onPostgres(t, 'only a networked store can lose a reply', async ({ url, schema }) => {
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    let lose = 0;
    // The pool the store takes, losing the reply of the next `lose` append statements: the
    // database stored the rows, the store hears a dropped connection.
    const lossy: PgPool = {
      async query(q, v) {
        const result = await pool.query(q as never, v as unknown[]);
        if (lose > 0 && typeof q === 'object' && /_append(One|Many)$/.test(q.name ?? '')) {
          lose--;
          throw Object.assign(new Error('injected: connection lost after the append'), { code: '08006' });
        }
        return result as never;
      },
      end: () => pool.end(),
      connect: () => pool.connect() as never,
    };
    const store: Store = postgresStore({ pool: lossy, schema });
    try {
      await store.migrate();
      const [one, two] = [await running(store, 2), await running(store, 2)];
      const events = (run: typeof one, ...seqs: number[]) => seqs.map((seq) => ({
        taskId: run.id, epoch: run.epoch, seq, type: 'progress', json: `{"seq":${seq}}`, at: Date.now() }));
      lose = 1;
      assert.deepEqual(await store.appendEvents(events(one, 3, 4)), [], 'one run: accepted on the retry');
      lose = 1;
      assert.deepEqual(await store.appendEvents([...events(one, 5), ...events(two, 3, 4)]), [], 'many runs: accepted on the retry');
      assert.equal(lose, 0, 'both replies were lost');
      assert.deepEqual(await store.appendEvents([...events(one, 6), ...events(two, 5)]), [], 'the next batch follows on');
      const seqs = async (id: number) => (await store.readEvents(id, 0, { limit: 100 }))?.events.map((e) => e.seq);
      assert.deepEqual(await seqs(one.id), [1, 2, 3, 4, 5, 6], 'every event once');
      assert.deepEqual(await seqs(two.id), [1, 2, 3, 4, 5], 'every event once');
    } finally {
      await store.close();
      await pool.end();
    }
  }));

  void test('ping() answers while the store is reachable (PostgreSQL: rejects for a server that is not there)', async (t) => {
    const db = await fresh();
    await db.store.ping();
    await db.close();
    if (tmp.backend.store.name !== 'postgres') {
      t.diagnostic('only a networked store can be unreachable');
      return;
    }
    // A port nobody listens on: take one, then close it.
    const port = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const { port: p } = server.address() as net.AddressInfo;
        server.close(() => resolve(p));
      });
    });
    const nowhere = postgresStore({ connectionString: `postgres://postgres@127.0.0.1:${port}/none`, connectionTimeoutMs: 2000 });
    try {
      await assert.rejects(nowhere.ping(), (err: Error & { code?: string }) => err.code === 'ECONNREFUSED' || /ECONNREFUSED/.test(String(err)));
      await assert.rejects(nowhere.getTask(1), (err: Error & { code?: string }) => err.code === 'store_unavailable', 'operations fail as unavailable after their retries');
    } finally {
      await nowhere.close();
    }
  });
});
