/**
 * The store contract: task rows and each task's event log, behind operations named for what the
 * runtime does with them. Every write that belongs to a run is fenced by the run's lease epoch, so
 * a process that lost its lease cannot change the task.
 *
 * Clocks: `now` parameters are the caller's clock. A store with a clock of its own (PostgreSQL)
 * ignores them for `run_at` and lease comparisons and uses the database's, so clock skew between
 * processes can neither expire nor extend a lease. Delays (`RequeueRun.delayMs`, `nextRunDelay`)
 * are therefore relative, never absolute times of one process.
 *
 * Errors: a store throws `StoreUnavailableError` for what may succeed if tried again (a dropped
 * connection, a busy database); anything else is permanent. `appendEvents`, `finishRun` and
 * `requeueRun` may be retried after such an error: a batch or outcome that was in fact committed
 * is recognised, never written twice.
 */

export type TaskStatus = 'pending' | 'running' | 'completed' | 'failed' | 'cancelled' | 'timed_out';
export const TERMINAL_STATUSES: ReadonlySet<TaskStatus> = new Set(['completed', 'failed', 'cancelled', 'timed_out']);

export interface TaskError {
  readonly message: string;
  readonly type: string;
  readonly stack?: string | undefined;
}

export interface TaskRecord {
  readonly id: number;
  readonly app: string;
  readonly type: string;
  readonly status: TaskStatus;
  readonly input: unknown;
  /** How many runs have started (1 on the first run; interrupted and retried runs count). */
  readonly attempt: number;
  readonly createdAt: Date;
  readonly startedAt: Date | null;
  readonly finishedAt: Date | null;
  readonly completedAt: Date | null;
  readonly finalValue: unknown;
  readonly error: TaskError | null;
  readonly cancelReason: string | null;
  readonly lastSeq: number;
  /** The lowest seq still stored: 1, unless retention pruned older events (then `firstSeq - 1` events are gone). */
  readonly firstSeq: number;
  readonly timeoutMs: number | null;
  readonly idempotencyKey: string | null;
}

/** One stored event. `json` is the event's data object, serialised once when it was sent. */
export interface EventRecord {
  readonly taskId: number;
  readonly seq: number;
  readonly type: string;
  readonly json: string;
  /** Milliseconds since the epoch. */
  readonly at: number;
}

/** How much one history read may return: at most `limit` rows, and past `maxBytes` of `json` no further row (a page always holds at least one row). */
export interface PageLimit {
  readonly limit: number;
  readonly maxBytes?: number | undefined;
}

/**
 * A page of a task's log, read together with the log's position in one snapshot, so a reader knows
 * without a second round trip whether it has reached the end (`lastSeq`), whether the task is
 * finished (then nothing will follow `lastSeq`), and whether retention removed what it asked for
 * (`firstSeq` above `afterSeq + 1`).
 */
/** Where a task's log stands: its retained window and its status. */
export interface LogPosition {
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly status: TaskStatus;
}

export interface EventPage extends LogPosition {
  readonly events: EventRecord[];
}

export interface NewTask {
  readonly app: string;
  readonly type: string;
  readonly input: unknown;
  readonly timeoutMs: number | null;
  readonly idempotencyKey: string | null;
  /** Do not run before this time (ms since the epoch); null: runnable now, by the store's clock. */
  readonly runAt: number | null;
  readonly now: number;
}

export interface ClaimedRun {
  readonly task: TaskRecord;
  readonly epoch: number;
}

export interface NewEvent {
  readonly taskId: number;
  readonly epoch: number;
  readonly seq: number;
  readonly type: string;
  readonly json: string;
  readonly at: number;
}

/** The runtime-written event that goes with a state change, in the same transaction. */
export interface StateEvent {
  readonly type: string;
  readonly json: string;
}

export interface FinishRun {
  readonly taskId: number;
  readonly epoch: number;
  readonly status: 'completed' | 'failed' | 'cancelled' | 'timed_out';
  readonly finalValue?: string | undefined;
  readonly error?: TaskError | undefined;
  readonly cancelReason?: string | undefined;
  readonly event: StateEvent;
  /** Refuse (with `cancelRequested`) when a cancel was recorded: cancel wins any race it was told it won. */
  readonly unlessCancelRequested: boolean;
  /** Retention: keep only this many newest events (the terminal one included), pruned in the same transaction. */
  readonly retainEvents?: number | undefined;
  readonly now: number;
}

export type FinishResult =
  | { readonly ok: true; readonly event: EventRecord }
  | { readonly ok: false; readonly reason: 'fenced' }
  | { readonly ok: false; readonly reason: 'cancel_requested'; readonly cancelReason: string };

export interface RequeueRun {
  readonly taskId: number;
  readonly epoch: number;
  /** Runnable again this long after the store's now (a retry's backoff; 0 for an interruption). */
  readonly delayMs: number;
  readonly event: StateEvent;
  readonly error?: TaskError | undefined;
  readonly now: number;
}

export type CancelResult =
  | { readonly found: false }
  | {
      readonly found: true;
      readonly accepted: boolean;
      readonly status: TaskStatus;
      /** The terminal event, when a pending task was cancelled at once. */
      readonly event?: EventRecord;
      /** A running task: the reason recorded, which is the first cancel's (concurrent cancels may reach the store in any order). */
      readonly reason?: string;
    };

export interface ListFilter {
  readonly app?: string | undefined;
  readonly type?: string | undefined;
  readonly status?: TaskStatus | undefined;
  readonly limit: number;
  /** Only tasks with a smaller id (the previous page's `next`). */
  readonly before?: number | undefined;
}

export interface LeaseRenewal {
  /** Runs whose lease this process no longer holds. */
  readonly lost: readonly number[];
  /** Runs with a cancel recorded in the store (a cancel from a process the bus did not reach). */
  readonly cancelRequested: ReadonlyArray<{ readonly taskId: number; readonly reason: string }>;
  /**
   * Renewed runs with signals stored and not yet taken, by name: the fallback for a signal whose
   * bus message was lost (the owner wakes the run's `waitForSignal`, which takes it from the store).
   */
  readonly signals: ReadonlyArray<{ readonly taskId: number; readonly names: readonly string[] }>;
}

/** Runtime-written events a store needs for recovery; their payloads are defined once, in the task layer. */
export interface RecoveryEvents {
  /** The event of a run whose lease expired and that goes back to pending. */
  readonly interrupted: StateEvent;
  /** The terminal event of a run whose owner died after a cancel was recorded. */
  cancelled(reason: string): StateEvent;
}

export interface MigrationReport {
  /** Migrations applied by this call, by file name, in order (empty when the schema was current). */
  readonly applied: readonly string[];
}

export interface Store {
  /** Applies pending migrations; safe to call from several processes at once. */
  migrate(): Promise<MigrationReport>;
  /** Resolves when the store answers a trivial query; rejects with the driver's error otherwise (readiness checks). */
  ping(): Promise<void>;
  createTask(task: NewTask): Promise<{ task: TaskRecord; created: boolean }>;
  getTask(id: number): Promise<TaskRecord | undefined>;
  listTasks(filter: ListFilter): Promise<{ tasks: TaskRecord[]; next: number | null }>;
  /** Atomically moves up to `limit` runnable pending tasks of the given kinds (`app/type`) to running under a new lease. */
  claimTasks(options: { owner: string; kinds: readonly string[]; limit: number; leaseMs: number; now: number }): Promise<ClaimedRun[]>;
  renewLeases(owner: string, runs: ReadonlyArray<{ taskId: number; epoch: number }>, leaseMs: number, now: number): Promise<LeaseRenewal>;
  /**
   * Gives back runs this process claimed but never started (claims that arrived after shutdown
   * began): pending again, runnable now, their attempt count as before the claim. Fenced by epoch.
   */
  releaseRuns(runs: ReadonlyArray<{ taskId: number; epoch: number }>): Promise<void>;
  /**
   * Appends events in one transaction. Returns the task ids whose events were refused (lease
   * lost). Appending a task's batch that is already stored under the same epoch (a retry after a
   * commit whose reply was lost) succeeds without writing it again.
   */
  appendEvents(events: readonly NewEvent[]): Promise<number[]>;
  finishRun(finish: FinishRun): Promise<FinishResult>;
  /** Puts a run back to pending (retry, interruption) with its event; refused like `finishRun`. */
  requeueRun(requeue: RequeueRun): Promise<FinishResult>;
  /**
   * Cancels a pending task at once (writing `event`, its terminal event); records the request on a
   * running one; refuses a finished one.
   */
  requestCancel(taskId: number, reason: string, event: StateEvent, now: number): Promise<CancelResult>;
  /**
   * Running tasks whose lease expired (their process died) go back to pending with an `interrupted`
   * event. `alive` are the caller's own runs, which it knows are running even if their lease lapsed.
   */
  recoverExpired(now: number, alive: readonly number[], events: RecoveryEvents): Promise<EventRecord[]>;
  /** Moves a pending task's next run to now. */
  makeRunnable(taskId: number, now: number): Promise<boolean>;
  /** Milliseconds from the store's now until the earliest future `run_at` of a pending task of these kinds; null if none. */
  nextRunDelay(kinds: readonly string[], now: number): Promise<number | null>;
  /** Events after `afterSeq` in seq order, within `page`, with the log's position; undefined when the task does not exist. */
  readEvents(taskId: number, afterSeq: number, page: PageLimit): Promise<EventPage | undefined>;
  /** The positions of many tasks' logs in one read (the hub's position check); tasks that do not exist are absent. */
  readPositions(taskIds: readonly number[]): Promise<Map<number, LogPosition>>;
  /**
   * Retention: deletes the task's events older than its `keepLast` newest (never the newest one)
   * and moves `firstSeq`. Returns how many were deleted. Not fenced: it never touches what a
   * reader of the retained window needs.
   */
  trimEvents(taskId: number, keepLast: number): Promise<number>;
  addSignal(taskId: number, name: string, payload: string, now: number): Promise<'added' | 'finished' | 'missing'>;
  /** Removes and returns the oldest unconsumed signal of that name. */
  takeSignal(taskId: number, name: string): Promise<string | undefined>;
  /** Deletes finished tasks (and their events) that finished before `before`; with `dryRun`, only counts. */
  prune(options: { before: number; dryRun: boolean }): Promise<number>;
  close(): Promise<void>;
}
