import Database from 'better-sqlite3';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { StoreUnavailableError } from '../../errors.js';
import type {
  CancelResult, ClaimedRun, EventPage, EventRecord, FinishResult, FinishRun, LeaseRenewal, ListFilter, LogPosition, MigrationReport,
  NewEvent, NewTask, PageLimit, PageRead, RecoveryEvents, RequeueRun, StateEvent, Store, TaskError, TaskRecord, TaskStatus,
} from '../types.js';

/**
 * The embedded store: one SQLite file in WAL mode through better-sqlite3.
 *
 * better-sqlite3 is synchronous, so every method does its work before it returns its promise, and a
 * transaction never spans an `await`: two stores on one file (two runtimes, one or two processes)
 * serialise on SQLite's write lock (`BEGIN IMMEDIATE`), which is what makes a claim atomic.
 */
export interface SqliteStoreOptions {
  /** File path, or ':memory:' (one connection, so one runtime only). */
  readonly path: string;
  /** PRAGMA synchronous: NORMAL (default) survives a process crash; FULL also survives power loss. */
  readonly synchronous?: 'NORMAL' | 'FULL';
}

interface TaskRow {
  id: number; app: string; type: string; status: TaskStatus; input: string; attempt: number;
  timeout_ms: number | null; created_at: number; started_at: number | null; finished_at: number | null;
  completed_at: number | null; final_value: string | null; error: string | null; cancel_reason: string | null;
  cancel_requested: string | null; last_seq: number; first_seq: number; lease_epoch: number; idempotency_key: string | null;
}
interface EventRow { task_id: number; seq: number; type: string; data: string; at: number }

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

export function sqliteStore(pathOrOptions: string | SqliteStoreOptions): SqliteStore {
  return new SqliteStore(typeof pathOrOptions === 'string' ? { path: pathOrOptions } : pathOrOptions);
}

export class SqliteStore implements Store {
  readonly #db: Database.Database;
  #statements: ReturnType<typeof prepare> | undefined;

  constructor(options: SqliteStoreOptions) {
    if (typeof options.path !== 'string' || options.path === '') {
      throw new TypeError('sqliteStore: path must be a file path or ":memory:"');
    }
    this.#db = new Database(options.path);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma(`synchronous = ${options.synchronous ?? 'NORMAL'}`);
    this.#db.pragma('busy_timeout = 5000');
  }

  get #q(): ReturnType<typeof prepare> {
    if (this.#statements === undefined) throw new Error('sqlite store: call migrate() before use');
    return this.#statements;
  }

  async migrate(): Promise<MigrationReport> {
    const db = this.#db;
    db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    const files = readdirSync(MIGRATIONS_DIR).filter((f) => /^\d+_.*\.sql$/.test(f)).sort();
    const applied = db.transaction(() => {
      const done = new Set(db.prepare('SELECT version FROM schema_migrations').pluck().all() as number[]);
      const now: string[] = [];
      for (const file of files) {
        const version = Number.parseInt(file, 10);
        if (done.has(version)) continue;
        db.exec(readFileSync(MIGRATIONS_DIR + file, 'utf8'));
        db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(version, file, Date.now());
        now.push(file);
      }
      return now;
    }).immediate();
    this.#statements ??= prepare(db);
    return { applied };
  }

  async ping(): Promise<void> {
    this.#db.prepare('SELECT 1').get();
  }

  async createTask(t: NewTask): Promise<{ task: TaskRecord; created: boolean }> {
    const q = this.#q;
    return this.#db.transaction(() => {
      if (t.idempotencyKey !== null) {
        const existing = q.byIdempotencyKey.get(t.app, t.type, t.idempotencyKey) as TaskRow | undefined;
        if (existing) return { task: toTask(existing), created: false };
      }
      const row = q.insertTask.get(t.app, t.type, JSON.stringify(t.input ?? null), t.timeoutMs, t.runAt ?? t.now, t.now, t.idempotencyKey) as TaskRow;
      return { task: toTask(row), created: true };
    }).immediate();
  }

  async getTask(id: number): Promise<TaskRecord | undefined> {
    const row = this.#q.getTask.get(id) as TaskRow | undefined;
    return row && toTask(row);
  }

  async listTasks(f: ListFilter): Promise<{ tasks: TaskRecord[]; next: number | null }> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (f.app !== undefined) { where.push('app = ?'); params.push(f.app); }
    if (f.type !== undefined) { where.push('type = ?'); params.push(f.type); }
    if (f.status !== undefined) { where.push('status = ?'); params.push(f.status); }
    if (f.before !== undefined) { where.push('id < ?'); params.push(f.before); }
    const sql = `SELECT * FROM tasks ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`;
    const rows = this.#db.prepare(sql).all(...params, f.limit + 1) as TaskRow[];
    const more = rows.length > f.limit;
    const tasks = rows.slice(0, f.limit).map(toTask);
    return { tasks, next: more ? (tasks.at(-1)?.id ?? null) : null };
  }

  async claimTasks(o: { owner: string; kinds: readonly string[]; limit: number; leaseMs: number; now: number }): Promise<ClaimedRun[]> {
    if (o.limit <= 0 || o.kinds.length === 0) return [];
    const q = this.#q;
    const kinds = JSON.stringify(o.kinds);
    return this.#db.transaction(() => {
      const ids = q.runnable.pluck().all(o.now, kinds, o.limit) as number[];
      return ids.map((id) => {
        const row = q.claim.get(o.owner, o.now + o.leaseMs, o.now, id) as TaskRow;
        return { task: toTask(row), epoch: row.lease_epoch };
      });
    }).immediate();
  }

  async renewLeases(owner: string, runs: ReadonlyArray<{ taskId: number; epoch: number }>, leaseMs: number, now: number): Promise<LeaseRenewal> {
    const q = this.#q;
    return this.#db.transaction(() => {
      const lost: number[] = [];
      const cancelRequested: Array<{ taskId: number; reason: string }> = [];
      const signals: Array<{ taskId: number; names: string[] }> = [];
      for (const { taskId, epoch } of runs) {
        const row = q.renew.get(now + leaseMs, taskId, epoch, owner) as { cancel_requested: string | null } | undefined;
        if (row === undefined) {
          lost.push(taskId);
          continue;
        }
        if (row.cancel_requested !== null) cancelRequested.push({ taskId, reason: row.cancel_requested });
        const names = q.signalNames.pluck().all(taskId) as string[];
        if (names.length > 0) signals.push({ taskId, names });
      }
      return { lost, cancelRequested, signals };
    }).immediate();
  }

  async releaseRuns(runs: ReadonlyArray<{ taskId: number; epoch: number }>): Promise<void> {
    const q = this.#q;
    this.#db.transaction(() => {
      for (const { taskId, epoch } of runs) q.release.run(Date.now(), taskId, epoch);
    }).immediate();
  }

  async appendEvents(events: readonly NewEvent[]): Promise<number[]> {
    const q = this.#q;
    return busy(() => this.#db.transaction(() => {
      // Group each task's events (they must follow on from one another), then one fenced UPDATE
      // per task checks its lease epoch and seq and moves last_seq; only a refusal reads the row.
      const runs = new Map<number, { epoch: number; first: number; last: number; broken: string | null; refused: boolean }>();
      for (const e of events) {
        const run = runs.get(e.taskId);
        if (run === undefined) {
          runs.set(e.taskId, { epoch: e.epoch, first: e.seq, last: e.seq, broken: null, refused: false });
        } else {
          if (run.broken === null && e.seq !== run.last + 1) run.broken = `task ${e.taskId}: event seq ${e.seq} does not follow ${run.last}`;
          run.last = e.seq;
        }
      }
      const refused: number[] = [];
      for (const [taskId, run] of runs) {
        if (q.advanceSeq.run(run.last, taskId, run.epoch, run.first - 1).changes === 1) {
          if (run.broken !== null) throw new Error(run.broken);
          continue;
        }
        const row = q.fence.get(taskId) as { status: string; lease_epoch: number; last_seq: number } | undefined;
        if (row === undefined || row.lease_epoch !== run.epoch) {
          run.refused = true;
          refused.push(taskId);
          continue;
        }
        // Same epoch and already at or past this batch: a retry of a batch that was stored.
        if (row.last_seq >= run.last) {
          run.refused = true;
          continue;
        }
        if (row.status !== 'running') {
          run.refused = true;
          refused.push(taskId);
          continue;
        }
        throw new Error(`task ${taskId}: event seq ${run.first} does not follow ${row.last_seq}`);
      }
      for (const e of events) {
        if (runs.get(e.taskId)!.refused) continue;
        q.insertEvent.run(e.taskId, e.seq, e.type, e.json, e.at);
      }
      return refused;
    }).immediate());
  }

  async finishRun(f: FinishRun): Promise<FinishResult> {
    const q = this.#q;
    return this.#db.transaction((): FinishResult => {
      const row = q.getTask.get(f.taskId) as TaskRow | undefined;
      if (!row || row.status !== 'running' || row.lease_epoch !== f.epoch) return this.#refusal(row, f.epoch, f.status);
      if (f.unlessCancelRequested && row.cancel_requested !== null) {
        return { ok: false, reason: 'cancel_requested', cancelReason: row.cancel_requested };
      }
      const event = this.#appendStateEvent(row, f.event.type, f.event.json, f.now);
      q.finish.run(f.status, f.now, f.status === 'completed' ? f.now : null, f.finalValue ?? null,
        f.error ? JSON.stringify(f.error) : null, f.cancelReason ?? null, event.seq, f.taskId);
      if (f.retainEvents !== undefined) this.#trim(f.taskId, event.seq, f.retainEvents);
      return { ok: true, event };
    }).immediate();
  }

  async requeueRun(r: RequeueRun): Promise<FinishResult> {
    const q = this.#q;
    return this.#db.transaction((): FinishResult => {
      const row = q.getTask.get(r.taskId) as TaskRow | undefined;
      if (!row || row.status !== 'running' || row.lease_epoch !== r.epoch) return this.#refusal(row, r.epoch, 'pending');
      if (row.cancel_requested !== null) return { ok: false, reason: 'cancel_requested', cancelReason: row.cancel_requested };
      const event = this.#appendStateEvent(row, r.event.type, r.event.json, r.now);
      q.requeue.run(r.now + r.delayMs, r.error ? JSON.stringify(r.error) : row.error, event.seq, r.taskId);
      return { ok: true, event };
    }).immediate();
  }

  async requestCancel(taskId: number, reason: string, cancelled: StateEvent, now: number): Promise<CancelResult> {
    const q = this.#q;
    return this.#db.transaction((): CancelResult => {
      const row = q.getTask.get(taskId) as TaskRow | undefined;
      if (!row) return { found: false };
      if (row.status === 'pending') {
        const event = this.#appendStateEvent(row, cancelled.type, cancelled.json, now);
        q.finish.run('cancelled', now, null, null, row.error, reason, event.seq, taskId);
        return { found: true, accepted: true, status: 'cancelled', event };
      }
      if (row.status === 'running') {
        if (row.cancel_requested === null) q.requestCancel.run(reason, taskId);
        return { found: true, accepted: true, status: 'running', reason: row.cancel_requested ?? reason };
      }
      return { found: true, accepted: false, status: row.status };
    }).immediate();
  }

  async recoverExpired(now: number, alive: readonly number[], recovery: RecoveryEvents): Promise<EventRecord[]> {
    const q = this.#q;
    return this.#db.transaction(() => {
      const rows = q.expired.all(now, JSON.stringify(alive)) as TaskRow[];
      return rows.map((row) => {
        q.bumpEpoch.run(row.id); // fences the dead owner even before anyone claims the task again
        if (row.cancel_requested !== null) {
          // Its owner died after a cancel was recorded: the cancel takes effect now.
          const cancelled = recovery.cancelled(row.cancel_requested);
          const event = this.#appendStateEvent(row, cancelled.type, cancelled.json, now);
          q.finish.run('cancelled', now, null, null, row.error, row.cancel_requested, event.seq, row.id);
          return event;
        }
        const event = this.#appendStateEvent(row, recovery.interrupted.type, recovery.interrupted.json, now);
        q.requeue.run(now, row.error, event.seq, row.id);
        return event;
      });
    }).immediate();
  }

  async makeRunnable(taskId: number, now: number): Promise<boolean> {
    return this.#q.makeRunnable.run(now, taskId, now).changes > 0;
  }

  async nextRunDelay(kinds: readonly string[], now: number): Promise<number | null> {
    const at = this.#q.nextRunAt.pluck().get(now, JSON.stringify(kinds)) as number | null | undefined;
    return at === null || at === undefined ? null : Math.max(0, at - now);
  }

  async readEvents(taskId: number, afterSeq: number, page: PageLimit): Promise<EventPage | undefined> {
    // One read transaction: the page and the log's position come from the same snapshot.
    return this.#db.transaction(() => this.#page(taskId, afterSeq, page)).deferred();
  }

  async readPages(reads: ReadonlyArray<PageRead>, page: PageLimit): Promise<Array<EventPage | undefined>> {
    // One read transaction for all of them.
    return this.#db.transaction(() => reads.map((r) => this.#page(r.taskId, r.afterSeq, page))).deferred();
  }

  /** One page and its log's position; inside a transaction. */
  #page(taskId: number, afterSeq: number, page: PageLimit): EventPage | undefined {
    const q = this.#q;
    const top = q.position.get(taskId) as { first_seq: number; last_seq: number; status: TaskStatus } | undefined;
    if (top === undefined) return undefined;
    const events: EventRecord[] = [];
    const maxBytes = page.maxBytes ?? Infinity;
    let bytes = 0;
    for (const row of q.readEvents.iterate(taskId, afterSeq, page.limit) as IterableIterator<EventRow>) {
      events.push(toEvent(row));
      bytes += row.data.length;
      if (bytes >= maxBytes) break; // leaving the loop finalises the statement's iterator
    }
    return { events, firstSeq: top.first_seq, lastSeq: top.last_seq, status: top.status };
  }

  async readPositions(taskIds: readonly number[]): Promise<Map<number, LogPosition>> {
    const positions = new Map<number, LogPosition>();
    this.#db.transaction(() => {
      for (const id of taskIds) {
        const top = this.#q.position.get(id) as { first_seq: number; last_seq: number; status: TaskStatus } | undefined;
        if (top !== undefined) positions.set(id, { firstSeq: top.first_seq, lastSeq: top.last_seq, status: top.status });
      }
    }).deferred();
    return positions;
  }

  async trimEvents(taskId: number, keepLast: number): Promise<number> {
    checkKeep(keepLast);
    return this.#db.transaction(() => {
      const top = this.#q.position.get(taskId) as { last_seq: number } | undefined;
      return top === undefined ? 0 : this.#trim(taskId, top.last_seq, keepLast);
    }).immediate();
  }

  async addSignal(taskId: number, name: string, payload: string, now: number): Promise<'added' | 'finished' | 'missing'> {
    const q = this.#q;
    return this.#db.transaction(() => {
      const status = q.status.pluck().get(taskId) as TaskStatus | undefined;
      if (status === undefined) return 'missing';
      if (status !== 'pending' && status !== 'running') return 'finished';
      q.insertSignal.run(taskId, name, payload, now);
      return 'added';
    }).immediate();
  }

  async takeSignal(taskId: number, name: string): Promise<string | undefined> {
    const row = this.#q.takeSignal.get(taskId, name) as { payload: string } | undefined;
    return row?.payload;
  }

  async prune(o: { before: number; dryRun: boolean }): Promise<number> {
    const q = this.#q;
    if (o.dryRun) return q.countPrunable.pluck().get(o.before) as number;
    return this.#db.transaction(() => {
      q.pruneEvents.run(o.before);
      q.pruneSignals.run(o.before);
      return q.pruneTasks.run(o.before).changes;
    }).immediate();
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }

  /**
   * A fenced outcome; or, when the row is already in the state this run's outcome put it in under
   * its epoch (a retry of a committed write), that outcome's event. Recovery bumps the epoch, so
   * a same-epoch row moved on by anyone else cannot exist.
   */
  #refusal(row: TaskRow | undefined, epoch: number, status: TaskStatus): FinishResult {
    if (row === undefined || row.lease_epoch !== epoch || row.status !== status) return { ok: false, reason: 'fenced' };
    const stored = this.#q.eventAt.get(row.id, row.last_seq) as EventRow | undefined;
    return stored === undefined ? { ok: false, reason: 'fenced' } : { ok: true, event: toEvent(stored) };
  }

  /** Keeps the `keepLast` newest events up to `lastSeq`; moves first_seq. Inside the caller's transaction. */
  #trim(taskId: number, lastSeq: number, keepLast: number): number {
    checkKeep(keepLast);
    const firstSeq = lastSeq - keepLast + 1;
    if (firstSeq <= 1) return 0;
    const deleted = this.#q.trimEvents.run(taskId, firstSeq).changes;
    this.#q.moveFirstSeq.run(firstSeq, taskId, firstSeq);
    return deleted;
  }

  /** Appends the runtime's own event at the next seq; the caller updates the row in the same transaction. */
  #appendStateEvent(row: TaskRow, type: string, json: string, now: number): EventRecord {
    const seq = row.last_seq + 1;
    this.#q.insertEvent.run(row.id, seq, type, json, now);
    return { taskId: row.id, seq, type, json, at: now };
  }
}

function prepare(db: Database.Database) {
  const kindFilter = "app || '/' || type IN (SELECT value FROM json_each(?))";
  const finished = "status IN ('completed','failed','cancelled','timed_out') AND finished_at < ?";
  return {
    getTask: db.prepare('SELECT * FROM tasks WHERE id = ?'),
    status: db.prepare('SELECT status FROM tasks WHERE id = ?'),
    byIdempotencyKey: db.prepare('SELECT * FROM tasks WHERE app = ? AND type = ? AND idempotency_key = ?'),
    insertTask: db.prepare(`INSERT INTO tasks (app, type, status, input, timeout_ms, run_at, created_at, idempotency_key)
      VALUES (?, ?, 'pending', ?, ?, ?, ?, ?) RETURNING *`),
    runnable: db.prepare(`SELECT id FROM tasks WHERE status = 'pending' AND run_at <= ? AND ${kindFilter} ORDER BY run_at, id LIMIT ?`),
    claim: db.prepare(`UPDATE tasks SET status = 'running', attempt = attempt + 1, lease_epoch = lease_epoch + 1,
      lease_owner = ?, lease_expires_at = ?, started_at = ? WHERE id = ? RETURNING *`),
    bumpEpoch: db.prepare('UPDATE tasks SET lease_epoch = lease_epoch + 1 WHERE id = ?'),
    eventAt: db.prepare('SELECT task_id, seq, type, data, at FROM events WHERE task_id = ? AND seq = ?'),
    signalNames: db.prepare('SELECT DISTINCT name FROM signals WHERE task_id = ?'),
    release: db.prepare(`UPDATE tasks SET status = 'pending', attempt = attempt - 1, run_at = ?, lease_owner = NULL, lease_expires_at = NULL
      WHERE id = ? AND status = 'running' AND lease_epoch = ?`),
    renew: db.prepare(`UPDATE tasks SET lease_expires_at = ? WHERE id = ? AND status = 'running' AND lease_epoch = ? AND lease_owner = ?
      RETURNING cancel_requested`),
    fence: db.prepare('SELECT status, lease_epoch, last_seq FROM tasks WHERE id = ?'),
    insertEvent: db.prepare('INSERT INTO events (task_id, seq, type, data, at) VALUES (?, ?, ?, ?, ?)'),
    advanceSeq: db.prepare("UPDATE tasks SET last_seq = ? WHERE id = ? AND status = 'running' AND lease_epoch = ? AND last_seq = ?"),
    finish: db.prepare(`UPDATE tasks SET status = ?, finished_at = ?, completed_at = ?, final_value = ?, error = ?, cancel_reason = ?,
      last_seq = ?, lease_owner = NULL, lease_expires_at = NULL WHERE id = ?`),
    requeue: db.prepare(`UPDATE tasks SET status = 'pending', run_at = ?, error = ?, last_seq = ?, lease_owner = NULL, lease_expires_at = NULL
      WHERE id = ?`),
    requestCancel: db.prepare('UPDATE tasks SET cancel_requested = ? WHERE id = ?'),
    expired: db.prepare(`SELECT * FROM tasks WHERE status = 'running' AND lease_expires_at < ?
      AND id NOT IN (SELECT value FROM json_each(?))`),
    makeRunnable: db.prepare("UPDATE tasks SET run_at = ? WHERE id = ? AND status = 'pending' AND run_at > ?"),
    nextRunAt: db.prepare(`SELECT MIN(run_at) FROM tasks WHERE status = 'pending' AND run_at > ? AND ${kindFilter}`),
    readEvents: db.prepare('SELECT task_id, seq, type, data, at FROM events WHERE task_id = ? AND seq > ? ORDER BY seq LIMIT ?'),
    position: db.prepare('SELECT first_seq, last_seq, status FROM tasks WHERE id = ?'),
    trimEvents: db.prepare('DELETE FROM events WHERE task_id = ? AND seq < ?'),
    moveFirstSeq: db.prepare('UPDATE tasks SET first_seq = ? WHERE id = ? AND first_seq < ?'),
    insertSignal: db.prepare('INSERT INTO signals (task_id, name, payload, created_at) VALUES (?, ?, ?, ?)'),
    takeSignal: db.prepare(`DELETE FROM signals WHERE id = (SELECT id FROM signals WHERE task_id = ? AND name = ? ORDER BY id LIMIT 1)
      RETURNING payload`),
    countPrunable: db.prepare(`SELECT COUNT(*) FROM tasks WHERE ${finished}`),
    pruneEvents: db.prepare(`DELETE FROM events WHERE task_id IN (SELECT id FROM tasks WHERE ${finished})`),
    pruneSignals: db.prepare(`DELETE FROM signals WHERE task_id IN (SELECT id FROM tasks WHERE ${finished})`),
    pruneTasks: db.prepare(`DELETE FROM tasks WHERE ${finished}`),
  };
}

function toTask(r: TaskRow): TaskRecord {
  return {
    id: r.id,
    app: r.app,
    type: r.type,
    status: r.status,
    input: JSON.parse(r.input) as unknown,
    attempt: r.attempt,
    createdAt: new Date(r.created_at),
    startedAt: toDate(r.started_at),
    finishedAt: toDate(r.finished_at),
    completedAt: toDate(r.completed_at),
    finalValue: r.final_value === null ? null : (JSON.parse(r.final_value) as unknown),
    error: r.error === null ? null : (JSON.parse(r.error) as TaskError),
    cancelReason: r.cancel_reason,
    lastSeq: r.last_seq,
    firstSeq: r.first_seq,
    timeoutMs: r.timeout_ms,
    idempotencyKey: r.idempotency_key,
  };
}

/** SQLITE_BUSY (another connection held the write lock past busy_timeout) is worth retrying. */
function busy<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if ((err as { code?: unknown }).code === 'SQLITE_BUSY') throw new StoreUnavailableError('sqlite store: database is busy', { cause: err });
    throw err;
  }
}

function checkKeep(keepLast: number): void {
  if (!Number.isSafeInteger(keepLast) || keepLast < 1) throw new TypeError(`retention: keep must be a whole number >= 1, got ${keepLast}`);
}

function toDate(ms: number | null): Date | null {
  return ms === null ? null : new Date(ms);
}

function toEvent(r: EventRow): EventRecord {
  return { taskId: r.task_id, seq: r.seq, type: r.type, json: r.data, at: r.at };
}
