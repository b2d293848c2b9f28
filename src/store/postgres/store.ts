import { createHash } from 'node:crypto';
import type {
  CancelResult, ClaimedRun, EventPage, EventRecord, FinishResult, FinishRun, LeaseRenewal, ListFilter, LogPosition, MigrationReport,
  NewEvent, NewTask, PageLimit, PageRead, RecoveryEvents, RequeueRun, StateEvent, Store, TaskRecord, TaskStatus,
} from '../types.js';
import { TERMINAL_STATUSES } from '../types.js';
import { TickBatch } from './batch.js';
import { boolArray, jsonArray, numberArray, textArray } from './arrays.js';
import { migrate } from './migrate.js';
import { isTransient, openPool, type PgClient, type PgPool, type PgQueryConfig, withRetry } from './pool.js';
import { checkKeep, type EventRow, type FenceRow, groupRuns, type Run, stateEvent, type TaskRow, toEvent, toTask } from './rows.js';
import { type Statements, statements } from './sql.js';

export interface PostgresStoreOptions {
  /** `postgres://user:pass@host:port/db`; the store opens (and closes) its own `pg.Pool`. */
  readonly connectionString?: string;
  /** A pool of your own (a `pg.Pool`, or anything with its `query`/`connect`/`end`); left open by `close()`. */
  readonly pool?: PgPool;
  /** The schema holding the tables, created by `migrate()`. Default `taskstream`. */
  readonly schema?: string;
  /** Connections of the store's own pool. Default 10. */
  readonly max?: number;
  /** How long to wait for a connection before an operation fails as unavailable. Default 5000 ms. */
  readonly connectionTimeoutMs?: number;
  /** Tries of an operation that failed on a dropped connection (only operations safe to repeat). Default 6. */
  readonly retries?: number;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function postgresStore(options: PostgresStoreOptions): PostgresStore {
  return new PostgresStore(options);
}

/**
 * The PostgreSQL store, for several processes on one database. Claims lock due rows with
 * `FOR UPDATE SKIP LOCKED`; every run-owned write is fenced by the lease epoch; the terminal event
 * and the status are written in one statement; a tick's events from every run are appended in one
 * statement (group commit). The store never NOTIFYs: a bus announces what it committed.
 *
 * A dropped connection is retried on another one for operations that are safe to repeat (reads,
 * claims, appends and outcomes, which recognise a batch or an outcome already committed); past
 * the retries the operation fails with a StoreUnavailableError, and nothing acknowledged is lost.
 */
export class PostgresStore implements Store {
  readonly schema: string;
  readonly #q: Statements;
  readonly #names: string;
  readonly #retries: number;
  readonly #ownsPool: boolean;
  readonly #poolPromise: Promise<PgPool>;
  #closed = false;
  /**
   * Each run this store claimed (or appended for): its epoch and the last seq it knows stored. An
   * append checks that a batch follows on from it, so the statement reads no log; dropped when the
   * run ends here (outcome, release, refusal, lost lease).
   */
  readonly #stored = new Map<number, { epoch: number; last: number }>();
  /** The last multi-row write of run-owned rows started (renewal, release, outcomes); see #oneAtATime. */
  #rowWrites: Promise<unknown> = Promise.resolve();
  /** Creates without an idempotency key, one statement per tick. */
  readonly #creates = new TickBatch<NewTask, TaskRow>((tasks) => this.#insertTasks(tasks));
  /** Outcomes, one statement per tick; each gets its stored last seq, or undefined when refused. */
  readonly #finishes = new TickBatch<FinishRun, number | undefined>((runs) => this.#finishRuns(runs), (f) => f.taskId);

  constructor(options: PostgresStoreOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('postgresStore: options are required');
    if ((options.connectionString === undefined) === (options.pool === undefined)) {
      throw new TypeError('postgresStore: give exactly one of connectionString or pool');
    }
    if (options.connectionString !== undefined && !/^postgres(ql)?:\/\//.test(options.connectionString)) {
      throw new TypeError('postgresStore: connectionString must start with postgres:// or postgresql://');
    }
    this.schema = options.schema ?? 'taskstream';
    if (!SCHEMA_NAME.test(this.schema)) throw new TypeError(`postgresStore: schema must match ${SCHEMA_NAME}, got ${JSON.stringify(this.schema)}`);
    this.#q = statements(this.schema);
    this.#names = `ts${createHash('sha1').update(this.schema).digest('hex').slice(0, 8)}`;
    this.#retries = options.retries ?? 6;
    this.#ownsPool = options.pool === undefined;
    const pool = options.pool !== undefined
      ? Promise.resolve(options.pool)
      : openPool({ connectionString: options.connectionString!, max: options.max ?? 10, connectionTimeoutMillis: options.connectionTimeoutMs ?? 5000 });
    this.#poolPromise = pool.then((p) => {
      // An idle connection the server closed (restart, pg_terminate_backend) is reported here; the
      // pool drops it and the next query gets a new one.
      p.on?.('error', () => {});
      return p;
    });
    this.#poolPromise.catch(() => {});
  }

  async migrate(): Promise<MigrationReport> {
    return this.#retry('migrate', async (pool) => migrate(pool, this.schema));
  }

  async ping(): Promise<void> {
    const pool = await this.#pool();
    await pool.query('SELECT 1');
  }

  async createTask(t: NewTask): Promise<{ task: TaskRecord; created: boolean }> {
    // Without an idempotency key a second try could create the task twice: one try only.
    if (t.idempotencyKey === null) return withRetry('createTask', 1, async () => ({ task: toTask(await this.#creates.add(t)), created: true }));
    return withRetry('createTask', this.#retries, async () => {
      const values = [t.app, t.type, JSON.stringify(t.input ?? null), t.timeoutMs, t.runAt, t.idempotencyKey];
      const inserted = await this.#run<TaskRow>('insertTask', values);
      if (inserted[0] !== undefined) return { task: toTask(inserted[0]), created: true };
      const existing = await this.#run<TaskRow>('byIdempotencyKey', [t.app, t.type, t.idempotencyKey]);
      return { task: toTask(existing[0]!), created: false };
    });
  }

  async getTask(id: number): Promise<TaskRecord | undefined> {
    const rows = await this.#read<TaskRow>('getTask', [id]);
    return rows[0] && toTask(rows[0]);
  }

  async listTasks(f: ListFilter): Promise<{ tasks: TaskRecord[]; next: number | null }> {
    const where: string[] = [];
    const values: unknown[] = [f.limit + 1];
    const add = (sql: string, value: unknown): void => {
      values.push(value);
      where.push(`${sql} $${values.length}`);
    };
    if (f.app !== undefined) add('app =', f.app);
    if (f.type !== undefined) add('type =', f.type);
    if (f.status !== undefined) add('status =', f.status);
    if (f.before !== undefined) add('id <', f.before);
    const text = this.#q.listTasks(where.length > 0 ? `WHERE ${where.join(' AND ')}` : '');
    const rows = await this.#retry('listTasks', async (pool) => (await pool.query<TaskRow>({ text, values })).rows);
    const tasks = rows.slice(0, f.limit).map(toTask);
    return { tasks, next: rows.length > f.limit ? (tasks.at(-1)?.id ?? null) : null };
  }

  async claimTasks(o: { owner: string; kinds: readonly string[]; limit: number; leaseMs: number }): Promise<ClaimedRun[]> {
    if (o.limit <= 0 || o.kinds.length === 0) return [];
    // A claim whose reply was lost leaves its rows running under this owner until the lease
    // expires and the sweep recovers them: a retry is safe.
    const rows = await this.#read<TaskRow>('claim', [o.kinds, o.limit, o.owner, o.leaseMs]);
    for (const row of rows) this.#stored.set(Number(row.id), { epoch: row.lease_epoch, last: row.last_seq });
    return rows.sort((a, b) => Number(a.id) - Number(b.id)).map((row) => ({ task: toTask(row), epoch: row.lease_epoch }));
  }

  async renewLeases(owner: string, runs: ReadonlyArray<{ taskId: number; epoch: number }>, leaseMs: number): Promise<LeaseRenewal> {
    const rows = await this.#oneAtATime(() => this.#read<{ id: string; cancel_requested: string | null; signals: string[] | null }>(
      'renew', [runs.map((r) => r.taskId), runs.map((r) => r.epoch), owner, leaseMs]));
    const renewed = new Set(rows.map((r) => Number(r.id)));
    const lost = runs.filter((r) => !renewed.has(r.taskId));
    for (const r of lost) this.#forget(r.taskId, r.epoch);
    return {
      lost: lost.map((r) => r.taskId),
      cancelRequested: rows.filter((r) => r.cancel_requested !== null).map((r) => ({ taskId: Number(r.id), reason: r.cancel_requested! })),
      signals: rows.filter((r) => r.signals !== null && r.signals.length > 0).map((r) => ({ taskId: Number(r.id), names: r.signals! })),
    };
  }

  async releaseRuns(runs: ReadonlyArray<{ taskId: number; epoch: number }>): Promise<void> {
    if (runs.length === 0) return;
    await this.#oneAtATime(() => this.#read('release', [runs.map((r) => r.taskId), runs.map((r) => r.epoch)]));
    for (const r of runs) this.#forget(r.taskId, r.epoch);
  }

  async appendEvents(events: readonly NewEvent[]): Promise<number[]> {
    if (events.length === 0) return [];
    const runs = groupRuns(events);
    return this.#retry('appendEvents', async (pool) => {
      const unknown = [...runs].filter(([taskId, run]) => this.#stored.get(taskId)?.epoch !== run.epoch).map(([taskId]) => taskId);
      // A run this store did not claim (another store object's): where its log ends, read once.
      if (unknown.length > 0) this.#learn(await this.#fenceRows(pool, unknown), runs);
      const refused: number[] = [];
      let pending = new Map<number, Run>();
      for (const [taskId, run] of runs) {
        const known = this.#stored.get(taskId);
        if (known?.epoch !== run.epoch) refused.push(taskId);
        else if (run.last <= known.last) continue; // stored by an earlier try whose reply was lost
        else if (run.first !== known.last + 1) throw new Error(`task ${taskId}: event seq ${run.first} does not follow ${known.last}`);
        else pending.set(taskId, run);
      }
      // A takeover that committed while this statement ran fails it (23505, see appendMany):
      // what is still ours goes again, without the runs that were taken over.
      for (let tries = 0; pending.size > 0; tries++) {
        let accepted: ReadonlySet<number>;
        try {
          accepted = await this.#insertEvents(pool, pending.size === runs.size ? events : events.filter((e) => pending.has(e.taskId)), pending);
        } catch (err) {
          if ((err as { code?: unknown }).code !== '23505' || tries >= 3) throw err;
          accepted = new Set();
        }
        for (const taskId of accepted) this.#stored.set(taskId, { epoch: pending.get(taskId)!.epoch, last: pending.get(taskId)!.last });
        const others = [...pending.keys()].filter((id) => !accepted.has(id));
        if (others.length === 0) break;
        // Only a refusal or a conflict reads the rows: a lost lease, or a batch stored after all.
        const rows = await this.#fenceRows(pool, others);
        const next = new Map<number, Run>();
        for (const taskId of others) {
          const run = pending.get(taskId)!;
          const row = rows.get(taskId);
          if (row === undefined || row.lease_epoch !== run.epoch) refused.push(taskId);
          else if (row.last_seq >= run.last) this.#stored.set(taskId, { epoch: run.epoch, last: run.last });
          else if (row.status !== 'running') refused.push(taskId);
          else if (row.last_seq === run.first - 1) next.set(taskId, run);
          else throw new Error(`task ${taskId}: event seq ${run.first} does not follow ${row.last_seq}`);
        }
        pending = next;
      }
      for (const taskId of refused) this.#forget(taskId, runs.get(taskId)!.epoch);
      return refused;
    });
  }

  /** One append statement for the runs in `runs`; the ids whose events it stored. */
  async #insertEvents(pool: PgPool, rows: readonly NewEvent[], runs: ReadonlyMap<number, Run>): Promise<ReadonlySet<number>> {
    if (runs.size === 1) {
      const [taskId, run] = [...runs][0]!;
      const r = await this.#exec(pool, 'appendOne', [taskId, run.epoch,
        rows.map((e) => e.seq), rows.map((e) => e.type), rows.map((e) => e.json), rows.map((e) => e.at)]);
      return new Set(r.rowCount ? [taskId] : []);
    }
    const ids = [...runs.keys()];
    const r = await this.#exec<{ accepted: string[] }>(pool, 'appendMany', [
      numberArray(ids), numberArray(ids.map((id) => runs.get(id)!.epoch)),
      numberArray(rows.map((e) => e.taskId)), numberArray(rows.map((e) => e.seq)),
      textArray(rows.map((e) => e.type)), jsonArray(rows.map((e) => e.json)), numberArray(rows.map((e) => e.at)),
    ]);
    return new Set(r.rows[0]!.accepted.map(Number));
  }

  async #fenceRows(pool: PgPool, taskIds: readonly number[]): Promise<Map<number, FenceRow>> {
    const rows = (await this.#exec<FenceRow>(pool, 'fence', [taskIds])).rows;
    return new Map(rows.map((r) => [Number(r.id), r]));
  }

  /** Where the logs of runs this store did not claim end, from their rows (runs no longer ours are left out: the append refuses them). */
  #learn(rows: ReadonlyMap<number, FenceRow>, runs: ReadonlyMap<number, Run>): void {
    for (const [taskId, row] of rows) {
      if (row.status === 'running' && row.lease_epoch === runs.get(taskId)?.epoch) this.#stored.set(taskId, { epoch: row.lease_epoch, last: row.last_seq });
    }
  }

  async finishRun(f: FinishRun): Promise<FinishResult> {
    this.#forget(f.taskId, f.epoch);
    return this.#retry('finishRun', async (pool) => {
      const lastSeq = await this.#finishes.add(f);
      if (lastSeq !== undefined) return { ok: true, event: stateEvent(f.taskId, lastSeq, f.event, f.now) };
      return this.#refusal(pool, f.taskId, f.epoch, (row) => row.status === f.status);
    });
  }

  async #insertTasks(tasks: readonly NewTask[]): Promise<TaskRow[]> {
    const rows = await this.#run<TaskRow>('insertTasks', [
      textArray(tasks.map((t) => t.app)), textArray(tasks.map((t) => t.type)), textArray(tasks.map((t) => JSON.stringify(t.input ?? null))),
      numberArray(tasks.map((t) => t.timeoutMs)), numberArray(tasks.map((t) => t.runAt)),
    ]);
    return rows.sort((a, b) => Number(a.id) - Number(b.id));
  }

  /** One statement for a tick's outcomes; one at a time with appends and renewals (it locks many task rows). */
  async #finishRuns(runs: readonly FinishRun[]): Promise<Array<number | undefined>> {
    const rows = await this.#oneAtATime(() => this.#run<{ id: string; last_seq: number }>('finish', [
      numberArray(runs.map((f) => f.taskId)), numberArray(runs.map((f) => f.epoch)), textArray(runs.map((f) => f.status)),
      textArray(runs.map((f) => f.finalValue ?? null)), textArray(runs.map((f) => (f.error ? JSON.stringify(f.error) : null))),
      textArray(runs.map((f) => f.cancelReason ?? null)), textArray(runs.map((f) => f.event.type)), textArray(runs.map((f) => f.event.json)),
      numberArray(runs.map((f) => f.retainEvents ?? null)), boolArray(runs.map((f) => f.unlessCancelRequested)), numberArray(runs.map((f) => f.now)),
    ]));
    const stored = new Map(rows.map((r) => [Number(r.id), r.last_seq]));
    return runs.map((f) => stored.get(f.taskId));
  }

  async requeueRun(q: RequeueRun): Promise<FinishResult> {
    this.#forget(q.taskId, q.epoch);
    return this.#retry('requeueRun', async (pool) => {
      const r = await this.#exec<{ last_seq: number }>(pool, 'requeue', [
        q.taskId, q.epoch, q.delayMs, q.error ? JSON.stringify(q.error) : null, q.event.type, q.event.json, q.now,
      ]);
      if (r.rows[0] !== undefined) return { ok: true, event: stateEvent(q.taskId, r.rows[0].last_seq, q.event, q.now) };
      return this.#refusal(pool, q.taskId, q.epoch, (row) => row.status === 'pending');
    });
  }

  async requestCancel(taskId: number, reason: string, event: StateEvent, now: number): Promise<CancelResult> {
    let tries = 0;
    return this.#transaction(async (c) => {
      tries += 1;
      type Row = { status: TaskStatus; last_seq: number; cancel_requested: string | null; cancel_reason: string | null };
      const row = (await c.query<Row>({ text: this.#q.lockTask, values: [taskId] })).rows[0];
      if (row === undefined) return { found: false };
      if (row.status === 'pending') {
        const seq = (await c.query<{ last_seq: number }>({ text: this.#q.cancelPending, values: [taskId, reason] })).rows[0]!.last_seq;
        await c.query({ text: this.#q.insertEvent, values: [taskId, seq, event.type, event.json, now] });
        return { found: true, accepted: true, status: 'cancelled', event: stateEvent(taskId, seq, event, now) };
      }
      if (row.status === 'running') {
        await c.query({ text: this.#q.requestCancel, values: [taskId, reason] });
        return { found: true, accepted: true, status: 'running', reason: row.cancel_requested ?? reason };
      }
      // A retry that finds the task cancelled for this reason, by this event: an earlier try
      // committed and only its reply was lost. That cancel was this one.
      if (tries > 1 && row.status === 'cancelled' && row.cancel_reason === reason) {
        const stored = (await c.query<EventRow>({ text: this.#q.eventAt, values: [taskId, row.last_seq] })).rows[0];
        if (stored?.type === event.type && stored.data === event.json) return { found: true, accepted: true, status: 'cancelled', event: toEvent(stored) };
      }
      return { found: true, accepted: false, status: row.status };
    });
  }

  async recoverExpired(now: number, alive: readonly number[], recovery: RecoveryEvents): Promise<EventRecord[]> {
    for (let tries = 1; ; tries++) {
      try {
        return await this.#recover(now, alive, recovery);
      } catch (err) {
        // A late append of a dead owner committed the seq this recovery meant to write (see
        // sql.ts, recover): read the log's end again. Past a few tries, the next sweep does.
        if ((err as { code?: unknown }).code !== '23505') throw err;
        if (tries === 3) return [];
      }
    }
  }

  async #recover(now: number, alive: readonly number[], recovery: RecoveryEvents): Promise<EventRecord[]> {
    return this.#transaction(async (c) => {
      const rows = (await c.query<{ id: string; cancel_requested: string | null }>({ text: this.#q.expired, values: [alive] })).rows;
      if (rows.length === 0) return [];
      const plan = rows.map((r) => {
        const event = r.cancel_requested === null ? recovery.interrupted : recovery.cancelled(r.cancel_requested);
        return { id: r.id, status: r.cancel_requested === null ? 'pending' : 'cancelled', event };
      });
      const stored = await c.query<EventRow>({
        text: this.#q.recover,
        values: [plan.map((p) => p.id), plan.map((p) => p.status), plan.map((p) => p.event.type), plan.map((p) => p.event.json), now],
      });
      return stored.rows.map(toEvent);
    });
  }

  async makeRunnable(taskId: number): Promise<boolean> {
    return this.#retry('makeRunnable', async (pool) => ((await this.#exec(pool, 'makeRunnable', [taskId])).rowCount ?? 0) > 0);
  }

  async nextRunDelay(kinds: readonly string[]): Promise<number | null> {
    const rows = await this.#read<{ ms: number | null }>('nextRunDelay', [kinds]);
    return rows[0]?.ms ?? null;
  }

  async readEvents(taskId: number, afterSeq: number, page: PageLimit): Promise<EventPage | undefined> {
    type Row = { first_seq: number; last_seq: number; status: TaskStatus; seq: number | null; type: string; data: string; at: string };
    const rows = await this.#read<Row>('readEvents', [taskId, afterSeq, page.limit, page.maxBytes ?? Number.MAX_SAFE_INTEGER]);
    const top = rows[0];
    if (top === undefined) return undefined;
    const events = rows.filter((r) => r.seq !== null).map((r) => ({ taskId, seq: r.seq!, type: r.type, json: r.data, at: Number(r.at) }));
    return { events, firstSeq: top.first_seq, lastSeq: top.last_seq, status: top.status };
  }

  async readPositions(taskIds: readonly number[]): Promise<Map<number, LogPosition>> {
    if (taskIds.length === 0) return new Map();
    const rows = await this.#read<{ id: string; first_seq: number; last_seq: number; status: TaskStatus }>('positions', [taskIds]);
    return new Map(rows.map((r) => [Number(r.id), { firstSeq: r.first_seq, lastSeq: r.last_seq, status: r.status }]));
  }

  async readPages(reads: ReadonlyArray<PageRead>, page: PageLimit): Promise<Array<EventPage | undefined>> {
    if (reads.length === 0) return [];
    type Row = { i: string; first_seq: number; last_seq: number; status: TaskStatus; seq: number | null; type: string; data: string; at: string };
    const rows = await this.#read<Row>('readPages', [
      numberArray(reads.map((r) => r.taskId)), numberArray(reads.map((r) => r.afterSeq)), page.limit, page.maxBytes ?? Number.MAX_SAFE_INTEGER,
    ]);
    const pages: Array<EventPage | undefined> = new Array<EventPage | undefined>(reads.length).fill(undefined);
    for (const r of rows) {
      const at = Number(r.i) - 1;
      const taskId = reads[at]!.taskId;
      const p = pages[at] ??= { events: [], firstSeq: r.first_seq, lastSeq: r.last_seq, status: r.status };
      if (r.seq !== null) p.events.push({ taskId, seq: r.seq, type: r.type, json: r.data, at: Number(r.at) });
    }
    return pages;
  }

  async trimEvents(taskId: number, keepLast: number): Promise<number> {
    checkKeep(keepLast);
    return (await this.#read<{ deleted: number }>('trim', [taskId, keepLast]))[0]?.deleted ?? 0;
  }

  async addSignal(taskId: number, name: string, payload: string): Promise<'added' | 'finished' | 'missing'> {
    // A second try could store the signal twice: one try only.
    return withRetry('addSignal', 1, async () => {
      const status = (await this.#run<{ status: TaskStatus | null }>('addSignal', [taskId, name, payload]))[0]?.status ?? null;
      if (status === null) return 'missing';
      return TERMINAL_STATUSES.has(status) ? 'finished' : 'added';
    });
  }

  async takeSignal(taskId: number, name: string): Promise<string | undefined> {
    // A second try after a lost reply would lose the signal taken by the first: one try only.
    return withRetry('takeSignal', 1, async () => (await this.#run<{ payload: string }>('takeSignal', [taskId, name]))[0]?.payload);
  }

  async prune(o: { before: number; dryRun: boolean }): Promise<number> {
    return (await this.#read<{ n: number }>(o.dryRun ? 'countPrunable' : 'prune', [o.before]))[0]?.n ?? 0;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stored.clear();
    if (!this.#ownsPool) return;
    const pool = await this.#poolPromise.catch(() => undefined);
    await pool?.end();
  }

  /** The run (this epoch of the task) ends here: its position is no longer needed. */
  #forget(taskId: number, epoch: number): void {
    if (this.#stored.get(taskId)?.epoch === epoch) this.#stored.delete(taskId);
  }

  async #pool(): Promise<PgPool> {
    if (this.#closed) throw new Error('postgres store: closed');
    return this.#poolPromise;
  }

  /**
   * Runs `work` once every multi-row write of run-owned rows this store started before it has
   * settled. A renewal and a tick's outcomes each lock many task rows, each in its own order; at
   * once, on two connections, they can deadlock, which PostgreSQL breaks only after
   * `deadlock_timeout` (1 s by default) by failing one. One at a time they cannot. Other
   * processes' runs are other rows (a run has one owner, and takeovers skip locked rows), so this
   * is needed per store only. Appends lock no task row and do not queue here.
   */
  #oneAtATime<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#rowWrites.then(work);
    this.#rowWrites = result.catch(() => {});
    return result;
  }

  #retry<T>(what: string, work: (pool: PgPool) => Promise<T>): Promise<T> {
    return withRetry(what, this.#retries, async () => work(await this.#pool()));
  }

  /** A named (prepared once per connection) statement on the pool, without retry. */
  async #run<R>(name: Exclude<keyof Statements, 'listTasks'>, values: readonly unknown[]): Promise<R[]> {
    return (await this.#exec<R>(await this.#pool(), name, values)).rows;
  }

  /** A named statement, retried on a dropped connection: for statements safe to repeat. */
  #read<R>(name: Exclude<keyof Statements, 'listTasks'>, values: readonly unknown[]): Promise<R[]> {
    return this.#retry(name, async (pool) => (await this.#exec<R>(pool, name, values)).rows);
  }

  #exec<R = Record<string, unknown>>(pool: PgPool, name: Exclude<keyof Statements, 'listTasks'>, values: readonly unknown[]) {
    const query: PgQueryConfig = { name: `${this.#names}_${name}`, text: this.#q[name], values };
    return pool.query<R>(query);
  }

  /** Why a fenced outcome matched no row; or, for a retry of one that was committed, that outcome. */
  async #refusal(pool: PgPool, taskId: number, epoch: number, stored: (row: FenceRow) => boolean): Promise<FinishResult> {
    const row = (await this.#exec<FenceRow>(pool, 'fence', [[taskId]])).rows[0];
    if (row === undefined || row.lease_epoch !== epoch) return { ok: false, reason: 'fenced' };
    if (row.status === 'running' && row.cancel_requested !== null) return { ok: false, reason: 'cancel_requested', cancelReason: row.cancel_requested };
    // Same epoch, no longer running: only this run (an earlier try whose reply was lost) moved it on.
    if (row.status !== 'running' && stored(row)) {
      const event = (await this.#exec<EventRow>(pool, 'eventAt', [taskId, row.last_seq])).rows[0];
      if (event !== undefined) return { ok: true, event: toEvent(event) };
    }
    return { ok: false, reason: 'fenced' };
  }

  /** BEGIN … COMMIT on one connection; retried as a whole when the connection drops before COMMIT answers. */
  #transaction<T>(work: (client: PgClient) => Promise<T>): Promise<T> {
    return this.#retry('transaction', async (pool) => {
      const client = await pool.connect();
      let failure: unknown;
      try {
        await client.query('BEGIN');
        const result = await work(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        failure = err;
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.release(failure !== undefined && isTransient(failure) ? (failure as Error) : undefined);
      }
    });
  }
}
