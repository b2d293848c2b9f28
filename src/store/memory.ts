import type {
  CancelResult, ClaimedRun, EventPage, EventRecord, FinishResult, FinishRun, LeaseRenewal, ListFilter, LogPosition, MigrationReport,
  NewEvent, NewTask, PageLimit, PageRead, RecoveryEvents, RequeueRun, StateEvent, Store, TaskError, TaskRecord, TaskStatus,
} from './types.js';
import { TERMINAL_STATUSES } from './types.js';

/**
 * The in-memory reference store: the contract written as plainly as it can be, so the conformance
 * suite has something obviously correct to hold the real stores against. Every method does all its
 * work synchronously before its promise is returned, so each one is atomic (JavaScript runs one
 * method at a time), which is what makes a claim or a fenced append safe here.
 *
 * Several stores may share one `MemoryDatabase` (two runtimes on one "database", as two processes
 * on one SQLite file). Nothing is persisted; a database lives as long as someone holds it.
 */
export class MemoryDatabase {
  nextId = 1;
  nextSignalId = 1;
  readonly tasks = new Map<number, Row>();
  readonly events = new Map<number, EventRecord[]>();
  readonly signals: Array<{ id: number; taskId: number; name: string; payload: string }> = [];
}

interface Row {
  id: number; app: string; type: string; status: TaskStatus; input: string; attempt: number;
  timeoutMs: number | null; runAt: number; createdAt: number; startedAt: number | null; finishedAt: number | null;
  completedAt: number | null; finalValue: string | null; error: TaskError | null; cancelReason: string | null;
  cancelRequested: string | null; lastSeq: number; firstSeq: number; leaseOwner: string | null; leaseEpoch: number;
  leaseExpiresAt: number | null; idempotencyKey: string | null;
}

export interface MemoryStoreOptions {
  /** Share a database with other stores (default: a new one of its own). */
  readonly database?: MemoryDatabase;
}

export function memoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  return new MemoryStore(options.database ?? new MemoryDatabase());
}

export class MemoryStore implements Store {
  readonly database: MemoryDatabase;
  #closed = false;

  constructor(database: MemoryDatabase) {
    this.database = database;
  }

  get #db(): MemoryDatabase {
    if (this.#closed) throw new Error('memory store: closed');
    return this.database;
  }

  async migrate(): Promise<MigrationReport> {
    void this.#db;
    return { applied: [] };
  }

  async ping(): Promise<void> {
    void this.#db;
  }

  async createTask(t: NewTask): Promise<{ task: TaskRecord; created: boolean }> {
    const db = this.#db;
    if (t.idempotencyKey !== null) {
      for (const row of db.tasks.values()) {
        if (row.app === t.app && row.type === t.type && row.idempotencyKey === t.idempotencyKey) return { task: toTask(row), created: false };
      }
    }
    const row: Row = {
      id: db.nextId++, app: t.app, type: t.type, status: 'pending', input: JSON.stringify(t.input ?? null), attempt: 0,
      timeoutMs: t.timeoutMs, runAt: t.runAt ?? t.now, createdAt: t.now, startedAt: null, finishedAt: null, completedAt: null,
      finalValue: null, error: null, cancelReason: null, cancelRequested: null, lastSeq: 0, firstSeq: 1, leaseOwner: null,
      leaseEpoch: 0, leaseExpiresAt: null, idempotencyKey: t.idempotencyKey,
    };
    db.tasks.set(row.id, row);
    db.events.set(row.id, []);
    return { task: toTask(row), created: true };
  }

  async getTask(id: number): Promise<TaskRecord | undefined> {
    const row = this.#db.tasks.get(id);
    return row && toTask(row);
  }

  async listTasks(f: ListFilter): Promise<{ tasks: TaskRecord[]; next: number | null }> {
    const rows = [...this.#db.tasks.values()]
      .filter((r) => (f.app === undefined || r.app === f.app) && (f.type === undefined || r.type === f.type)
        && (f.status === undefined || r.status === f.status) && (f.before === undefined || r.id < f.before))
      .sort((a, b) => b.id - a.id);
    const tasks = rows.slice(0, f.limit).map(toTask);
    return { tasks, next: rows.length > f.limit ? (tasks.at(-1)?.id ?? null) : null };
  }

  async claimTasks(o: { owner: string; kinds: readonly string[]; limit: number; leaseMs: number; now: number }): Promise<ClaimedRun[]> {
    const kinds = new Set(o.kinds);
    const due = [...this.#db.tasks.values()]
      .filter((r) => r.status === 'pending' && r.runAt <= o.now && kinds.has(`${r.app}/${r.type}`))
      .sort((a, b) => a.runAt - b.runAt || a.id - b.id)
      .slice(0, Math.max(0, o.limit));
    return due.map((r) => {
      Object.assign(r, { status: 'running', attempt: r.attempt + 1, leaseEpoch: r.leaseEpoch + 1, leaseOwner: o.owner, leaseExpiresAt: o.now + o.leaseMs, startedAt: o.now });
      return { task: toTask(r), epoch: r.leaseEpoch };
    });
  }

  async renewLeases(owner: string, runs: ReadonlyArray<{ taskId: number; epoch: number }>, leaseMs: number, now: number): Promise<LeaseRenewal> {
    const db = this.#db;
    const lost: number[] = [];
    const cancelRequested: Array<{ taskId: number; reason: string }> = [];
    const signals: Array<{ taskId: number; names: string[] }> = [];
    for (const { taskId, epoch } of runs) {
      const r = db.tasks.get(taskId);
      if (!owns(r, epoch) || r.leaseOwner !== owner) {
        lost.push(taskId);
        continue;
      }
      r.leaseExpiresAt = now + leaseMs;
      if (r.cancelRequested !== null) cancelRequested.push({ taskId, reason: r.cancelRequested });
      const names = [...new Set(db.signals.filter((s) => s.taskId === taskId).map((s) => s.name))];
      if (names.length > 0) signals.push({ taskId, names });
    }
    return { lost, cancelRequested, signals };
  }

  async releaseRuns(runs: ReadonlyArray<{ taskId: number; epoch: number }>): Promise<void> {
    for (const { taskId, epoch } of runs) {
      const r = this.#db.tasks.get(taskId);
      if (owns(r, epoch)) Object.assign(r, { status: 'pending', attempt: r.attempt - 1, runAt: Date.now(), leaseOwner: null, leaseExpiresAt: null });
    }
  }

  async appendEvents(events: readonly NewEvent[]): Promise<number[]> {
    const db = this.#db;
    const byTask = new Map<number, NewEvent[]>();
    for (const e of events) {
      const list = byTask.get(e.taskId);
      if (list === undefined) byTask.set(e.taskId, [e]);
      else list.push(e);
    }
    // Check everything first, so a broken batch writes nothing (as a rolled-back transaction).
    const refused: number[] = [];
    const accepted: NewEvent[][] = [];
    for (const [taskId, list] of byTask) {
      list.forEach((e, i) => {
        if (i > 0 && e.seq !== list[i - 1]!.seq + 1) throw new Error(`task ${taskId}: event seq ${e.seq} does not follow ${list[i - 1]!.seq}`);
      });
      const r = db.tasks.get(taskId);
      const first = list[0]!.seq;
      const last = list.at(-1)!.seq;
      if (r === undefined || r.leaseEpoch !== list[0]!.epoch) refused.push(taskId);
      else if (r.lastSeq >= last) continue; // a retry of a stored batch
      else if (r.status !== 'running') refused.push(taskId);
      else if (r.lastSeq !== first - 1) throw new Error(`task ${taskId}: event seq ${first} does not follow ${r.lastSeq}`);
      else accepted.push(list);
    }
    for (const list of accepted) {
      const log = db.events.get(list[0]!.taskId)!;
      for (const e of list) log.push({ taskId: e.taskId, seq: e.seq, type: e.type, json: e.json, at: e.at });
      db.tasks.get(list[0]!.taskId)!.lastSeq = list.at(-1)!.seq;
    }
    return refused;
  }

  async finishRun(f: FinishRun): Promise<FinishResult> {
    const r = this.#db.tasks.get(f.taskId);
    if (!owns(r, f.epoch)) return this.#refusal(r, f.epoch, f.status);
    if (f.unlessCancelRequested && r.cancelRequested !== null) return { ok: false, reason: 'cancel_requested', cancelReason: r.cancelRequested };
    const event = this.#append(r, f.event, f.now);
    this.#finish(r, f.status, f.now, { finalValue: f.finalValue ?? null, error: f.error ?? null, cancelReason: f.cancelReason ?? null });
    if (f.retainEvents !== undefined) this.#trim(r, f.retainEvents);
    return { ok: true, event };
  }

  async requeueRun(q: RequeueRun): Promise<FinishResult> {
    const r = this.#db.tasks.get(q.taskId);
    if (!owns(r, q.epoch)) return this.#refusal(r, q.epoch, 'pending');
    if (r.cancelRequested !== null) return { ok: false, reason: 'cancel_requested', cancelReason: r.cancelRequested };
    const event = this.#append(r, q.event, q.now);
    Object.assign(r, { status: 'pending', runAt: q.now + q.delayMs, error: q.error ?? r.error, leaseOwner: null, leaseExpiresAt: null });
    return { ok: true, event };
  }

  async requestCancel(taskId: number, reason: string, event: StateEvent, now: number): Promise<CancelResult> {
    const r = this.#db.tasks.get(taskId);
    if (r === undefined) return { found: false };
    if (r.status === 'pending') {
      const stored = this.#append(r, event, now);
      this.#finish(r, 'cancelled', now, { finalValue: null, error: r.error, cancelReason: reason });
      return { found: true, accepted: true, status: 'cancelled', event: stored };
    }
    if (r.status === 'running') {
      r.cancelRequested ??= reason;
      return { found: true, accepted: true, status: 'running', reason: r.cancelRequested };
    }
    return { found: true, accepted: false, status: r.status };
  }

  async recoverExpired(now: number, alive: readonly number[], recovery: RecoveryEvents): Promise<EventRecord[]> {
    const mine = new Set(alive);
    const expired = [...this.#db.tasks.values()].filter((r) => r.status === 'running' && (r.leaseExpiresAt ?? 0) < now && !mine.has(r.id));
    return expired.map((r) => {
      r.leaseEpoch += 1; // fences the old owner even before anyone claims the task again
      if (r.cancelRequested !== null) {
        const event = this.#append(r, recovery.cancelled(r.cancelRequested), now);
        this.#finish(r, 'cancelled', now, { finalValue: null, error: r.error, cancelReason: r.cancelRequested });
        return event;
      }
      const event = this.#append(r, recovery.interrupted, now);
      Object.assign(r, { status: 'pending', runAt: now, leaseOwner: null, leaseExpiresAt: null });
      return event;
    });
  }

  async makeRunnable(taskId: number, now: number): Promise<boolean> {
    const r = this.#db.tasks.get(taskId);
    if (r === undefined || r.status !== 'pending' || r.runAt <= now) return false;
    r.runAt = now;
    return true;
  }

  async nextRunDelay(kinds: readonly string[], now: number): Promise<number | null> {
    const set = new Set(kinds);
    let at = Infinity;
    for (const r of this.#db.tasks.values()) {
      if (r.status === 'pending' && r.runAt > now && set.has(`${r.app}/${r.type}`)) at = Math.min(at, r.runAt);
    }
    return at === Infinity ? null : at - now;
  }

  async readEvents(taskId: number, afterSeq: number, page: PageLimit): Promise<EventPage | undefined> {
    const db = this.#db;
    const r = db.tasks.get(taskId);
    if (r === undefined) return undefined;
    const events: EventRecord[] = [];
    let bytes = 0;
    for (const e of db.events.get(taskId) ?? []) {
      if (e.seq <= afterSeq) continue;
      if (events.length >= page.limit || bytes >= (page.maxBytes ?? Infinity)) break;
      events.push(e);
      bytes += e.json.length;
    }
    return { events, firstSeq: r.firstSeq, lastSeq: r.lastSeq, status: r.status };
  }

  async readPages(reads: ReadonlyArray<PageRead>, page: PageLimit): Promise<Array<EventPage | undefined>> {
    // readEvents does all its work before it returns: every read sees the same state.
    const pages = reads.map((r) => this.readEvents(r.taskId, r.afterSeq, page));
    return Promise.all(pages);
  }

  async readPositions(taskIds: readonly number[]): Promise<Map<number, LogPosition>> {
    const positions = new Map<number, LogPosition>();
    for (const id of taskIds) {
      const r = this.#db.tasks.get(id);
      if (r !== undefined) positions.set(id, { firstSeq: r.firstSeq, lastSeq: r.lastSeq, status: r.status });
    }
    return positions;
  }

  async trimEvents(taskId: number, keepLast: number): Promise<number> {
    checkKeep(keepLast);
    const r = this.#db.tasks.get(taskId);
    return r === undefined ? 0 : this.#trim(r, keepLast);
  }

  async addSignal(taskId: number, name: string, payload: string): Promise<'added' | 'finished' | 'missing'> {
    const db = this.#db;
    const r = db.tasks.get(taskId);
    if (r === undefined) return 'missing';
    if (TERMINAL_STATUSES.has(r.status)) return 'finished';
    db.signals.push({ id: db.nextSignalId++, taskId, name, payload });
    return 'added';
  }

  async takeSignal(taskId: number, name: string): Promise<string | undefined> {
    const signals = this.#db.signals;
    const i = signals.findIndex((s) => s.taskId === taskId && s.name === name);
    return i < 0 ? undefined : signals.splice(i, 1)[0]!.payload;
  }

  async prune(o: { before: number; dryRun: boolean }): Promise<number> {
    const db = this.#db;
    const old = [...db.tasks.values()].filter((r) => TERMINAL_STATUSES.has(r.status) && r.finishedAt !== null && r.finishedAt < o.before);
    if (o.dryRun) return old.length;
    const ids = new Set(old.map((r) => r.id));
    for (const id of ids) {
      db.tasks.delete(id);
      db.events.delete(id);
    }
    const kept = db.signals.filter((s) => !ids.has(s.taskId));
    db.signals.splice(0, db.signals.length, ...kept);
    return ids.size;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  /** Fenced; or, for a retry of an outcome this epoch already wrote, that outcome's event (recovery bumps the epoch). */
  #refusal(r: Row | undefined, epoch: number, status: TaskStatus): FinishResult {
    if (r === undefined || r.leaseEpoch !== epoch || r.status !== status) return { ok: false, reason: 'fenced' };
    const event = this.#db.events.get(r.id)?.find((e) => e.seq === r.lastSeq);
    return event === undefined ? { ok: false, reason: 'fenced' } : { ok: true, event };
  }

  #append(r: Row, event: StateEvent, now: number): EventRecord {
    const stored = { taskId: r.id, seq: r.lastSeq + 1, type: event.type, json: event.json, at: now };
    this.#db.events.get(r.id)!.push(stored);
    r.lastSeq = stored.seq;
    return stored;
  }

  #finish(r: Row, status: TaskStatus, now: number, o: { finalValue: string | null; error: TaskError | null; cancelReason: string | null }): void {
    Object.assign(r, {
      status, finishedAt: now, completedAt: status === 'completed' ? now : null, finalValue: o.finalValue, error: o.error,
      cancelReason: o.cancelReason, leaseOwner: null, leaseExpiresAt: null,
    });
  }

  /** Keeps the `keepLast` newest events; moves firstSeq. */
  #trim(r: Row, keepLast: number): number {
    checkKeep(keepLast);
    const firstSeq = r.lastSeq - keepLast + 1;
    if (firstSeq <= r.firstSeq) return 0;
    const log = this.#db.events.get(r.id)!;
    const kept = log.filter((e) => e.seq >= firstSeq);
    const deleted = log.length - kept.length;
    this.#db.events.set(r.id, kept);
    r.firstSeq = firstSeq;
    return deleted;
  }
}

/** The run with this epoch still owns the row. */
function owns(r: Row | undefined, epoch: number): r is Row {
  return r !== undefined && r.status === 'running' && r.leaseEpoch === epoch;
}

function checkKeep(keepLast: number): void {
  if (!Number.isSafeInteger(keepLast) || keepLast < 1) throw new TypeError(`retention: keep must be a whole number >= 1, got ${keepLast}`);
}

function toTask(r: Row): TaskRecord {
  return {
    id: r.id, app: r.app, type: r.type, status: r.status, input: JSON.parse(r.input) as unknown, attempt: r.attempt,
    createdAt: new Date(r.createdAt), startedAt: date(r.startedAt), finishedAt: date(r.finishedAt), completedAt: date(r.completedAt),
    finalValue: r.finalValue === null ? null : (JSON.parse(r.finalValue) as unknown), error: r.error, cancelReason: r.cancelReason,
    lastSeq: r.lastSeq, firstSeq: r.firstSeq, timeoutMs: r.timeoutMs, idempotencyKey: r.idempotencyKey,
  };
}

function date(ms: number | null): Date | null {
  return ms === null ? null : new Date(ms);
}
