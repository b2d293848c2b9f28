import { randomUUID } from 'node:crypto';
import type { Bus } from '../bus/types.js';
import { LocalBus } from '../bus/local.js';
import { RuntimeClosedError, TaskNotFoundError, TaskStateError, UnknownTaskTypeError } from '../errors.js';
import { Hub, type Sink } from '../hub/hub.js';
import { type Logger, silentLogger } from '../logger.js';
import type { EventRecord, Store, TaskRecord, TaskStatus } from '../store/types.js';
import { TERMINAL_STATUSES } from '../store/types.js';
import { type AnyTaskDefinition, checkCount, checkDelay, checkPositive, type InputOf, type TaskDefinition } from '../task/define.js';
import { validateInput } from '../task/validate.js';
import { assertName } from '../task/names.js';
import { runtimeEvents } from '../task/events.js';
import { checkRetainEvents, keepFor } from '../task/retention.js';
import { Commands } from './commands.js';
import { type HttpEventName, SafeEmitter, type TaskstreamEvents } from './emitter.js';
import { type ExecuteDeps, executeRun, runInfo } from './execute.js';
import { Leases } from './leases.js';
import { Pruner } from './pruner.js';
import { ActiveRun } from './run.js';
import { Scheduler } from './scheduler.js';
import { Subscription, type TaskEvent } from './subscription.js';
import { EventWriter } from './writer.js';

export interface TaskstreamOptions {
  readonly store: Store;
  /** Defaults to an in-process bus (one process). */
  readonly bus?: Bus;
  readonly tasks: readonly AnyTaskDefinition[];
  /**
   * Runs at once in this runtime; the rest wait as pending. Default 10. 0: this runtime runs
   * nothing (it creates, watches, cancels and signals tasks that other processes on the same store
   * run), like a web tier in front of workers.
   */
  readonly concurrency?: number;
  /** A run's lease; renewed every third of it. A dead process's runs are taken over after it. Default 10 s. */
  readonly leaseMs?: number;
  /** How often to look for runs whose lease expired and for work another process created. Default 1000 ms. */
  readonly sweepIntervalMs?: number;
  /** Default grace for a run that ignores its aborted signal (cancel, timeout). Default 5000 ms. */
  readonly graceMs?: number;
  /** Largest event data, serialised. Default 1 MiB. */
  readonly maxEventBytes?: number;
  /** Events a `subscribe()` reader may fall behind before it reads from the store instead. Default 1000. */
  readonly subscriberBuffer?: number;
  /**
   * How often each watched task's stored last seq is compared with what its watchers got (one read
   * per watched task): repairs a lost bus message, or events written by another process on the
   * same store that this process's bus does not hear. Default 1000 ms.
   */
  readonly positionCheckMs?: number;
  /**
   * Retention: each task keeps at most its N newest events (the terminal one is never pruned); a
   * type's own `retention` overrides this. Pruned in the background while a task runs (its log may
   * briefly hold up to a tenth more), and exactly with the terminal write. Default: keep every event.
   */
  readonly retainEvents?: number;
  readonly logger?: Logger;
  /** This process's name in leases. Default: a random UUID. */
  readonly owner?: string;
}

/** A task by id, optionally checked against its app and type (a mismatch is "not found", never another task). */
export type TaskRef = number | { readonly id: number; readonly app?: string; readonly type?: string };
export type TaskKind = string | { readonly app: string; readonly type: string };

export interface CreateOptions {
  /** Overrides the type's `timeoutMs` for this task. */
  readonly timeoutMs?: number;
  /** A second create with the same key (per app/type) returns the first task instead of another. */
  readonly idempotencyKey?: string;
  /** Do not run before this time. */
  readonly runAt?: Date;
}

export interface CreateResult {
  readonly task: TaskRecord;
  readonly created: boolean;
}

const DEFAULTS = { concurrency: 10, leaseMs: 10_000, sweepIntervalMs: 1000, graceMs: 5000, maxEventBytes: 1 << 20, subscriberBuffer: 1000, positionCheckMs: 1000 };

/** Creates a runtime: migrates the store, connects the bus, and starts claiming work. */
export async function createTaskstream(options: TaskstreamOptions): Promise<Taskstream> {
  return Taskstream.open(options);
}

/**
 * The runtime: creates tasks, runs them (pending → running → one terminal state), and streams
 * their events. Several runtimes may live in one process; nothing here is global.
 */
export class Taskstream implements AsyncDisposable {
  readonly store: Store;
  readonly bus: Bus;
  readonly logger: Logger;
  readonly owner: string;
  readonly #defs = new Map<string, AnyTaskDefinition>();
  readonly #opts: typeof DEFAULTS;
  readonly #active = new Map<number, ActiveRun>();
  readonly #emitter: SafeEmitter<TaskstreamEvents>;
  readonly #writer: EventWriter;
  readonly #hub: Hub;
  readonly #runDeps: ExecuteDeps;
  readonly #scheduler: Scheduler;
  readonly #leases: Leases;
  readonly #commands: Commands;
  readonly #pruner: Pruner;
  readonly #retainEvents: number | undefined;
  #unsubscribeCommands: (() => void) | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: TaskstreamOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('createTaskstream: options are required');
    if (!options.store) throw new TypeError('createTaskstream: a store is required, e.g. sqliteStore("tasks.db")');
    if (!Array.isArray(options.tasks)) throw new TypeError('createTaskstream: tasks must be an array of defineTask() results');
    this.#opts = { ...DEFAULTS };
    for (const key of Object.keys(DEFAULTS) as Array<keyof typeof DEFAULTS>) {
      const value = options[key];
      if (value === undefined) continue;
      if (key === 'leaseMs' || key === 'sweepIntervalMs' || key === 'graceMs' || key === 'positionCheckMs') checkDelay(`createTaskstream: ${key}`, value);
      // Counts (concurrency, subscriberBuffer, maxEventBytes); concurrency 0 runs nothing.
      else checkCount(`createTaskstream: ${key}`, value, key === 'concurrency' ? 0 : 1);
      this.#opts[key] = value;
    }
    checkRetainEvents('createTaskstream: retainEvents', options.retainEvents);
    this.#retainEvents = options.retainEvents;
    for (const def of options.tasks) {
      const kind = `${def.app}/${def.type}`;
      if (this.#defs.has(kind)) throw new TypeError(`createTaskstream: task type ${kind} is registered twice`);
      this.#defs.set(kind, def);
    }
    this.store = options.store;
    this.bus = options.bus ?? new LocalBus();
    this.logger = options.logger ?? silentLogger;
    this.owner = options.owner ?? randomUUID();
    const onError = (err: unknown): void => this.logger.error({ err }, 'taskstream: internal listener failed');
    const onFault = (err: unknown, what: string): void => this.logger.warn({ err }, `taskstream: ${what}`);
    this.#emitter = new SafeEmitter(onError);
    this.#writer = new EventWriter(this.store, this.bus, {
      onLeaseLost: (taskId, err) => {
        const run = this.#active.get(taskId);
        this.logger.warn({ err, taskId }, 'taskstream: events refused; stopping the run');
        run?.abort('lease_lost', 'events refused', undefined);
        run?.abandon();
      },
      onError: onFault,
      retryForMs: this.#opts.leaseMs,
      onAppended: (count) => this.#emitter.emit('events:appended', { count }),
      onStoreError: (operation, err) => this.#emitter.emit('store:error', { operation, err }),
      onStored: (taskId, lastSeq) => {
        const run = this.#active.get(taskId);
        const keep = run && this.#keep(run.task);
        if (keep !== undefined) this.#pruner.stored(taskId, lastSeq, keep);
      },
    });
    this.#pruner = new Pruner(this.store, this.logger);
    this.#hub = new Hub(this.store, this.bus, onError, {
      positionCheckMs: this.#opts.positionCheckMs, runsHere: (taskId) => this.#active.has(taskId),
    });
    const schedule = (): void => this.#scheduler.schedule();
    this.#commands = new Commands({
      bus: this.bus, active: this.#active, schedule, wakeIn: (ms) => this.#scheduler.wakeIn(ms), onError: onFault,
      graceFor: (run) => this.#defs.get(`${run.task.app}/${run.task.type}`)?.graceMs ?? this.#opts.graceMs,
    });
    this.#scheduler = new Scheduler({
      // A runtime that runs nothing (concurrency 0) never looks for work.
      store: this.store, owner: this.owner, kinds: this.#opts.concurrency === 0 ? [] : [...this.#defs.keys()], leaseMs: this.#opts.leaseMs, logger: this.logger,
      free: () => this.#opts.concurrency - this.#active.size,
      start: (claim) => this.#startRun(new ActiveRun(claim.task, claim.epoch)),
    });
    this.#leases = new Leases({
      store: this.store, owner: this.owner, leaseMs: this.#opts.leaseMs, sweepIntervalMs: this.#opts.sweepIntervalMs,
      graceMs: this.#opts.graceMs, logger: this.logger, active: this.#active, sweepClaims: () => this.#scheduler.sweep(), claimSettled: () => this.#scheduler.claimSettled(),
      cancel: (taskId, reason) => this.#commands.cancelLocal(taskId, reason),
      publish: (events) => {
        for (const e of events) {
          this.#commands.publish(e.taskId, [e]);
          this.#emitter.emit('lease:expired', { taskId: e.taskId });
          if (e.type === 'cancelled') this.#trimRecovered(e.taskId);
        }
      },
    });
    this.#runDeps = {
      store: this.store, bus: this.bus, writer: this.#writer, emitter: this.#emitter, logger: this.logger,
      maxEventBytes: this.#opts.maxEventBytes, graceMs: this.#opts.graceMs, retryForMs: this.#opts.leaseMs,
      publish: (taskId, events) => this.#commands.publish(taskId, events),
      wakeIn: (ms) => this.#wake(ms),
      retainEvents: (def) => keepFor(def.retention, this.#retainEvents),
    };
  }

  /** `createTaskstream`. */
  static async open(options: TaskstreamOptions): Promise<Taskstream> {
    const runtime = new Taskstream(options);
    try {
      await runtime.#open();
    } catch (err) {
      await runtime.close({ timeoutMs: 0 }).catch(() => {});
      throw err;
    }
    return runtime;
  }

  async #open(): Promise<void> {
    await this.store.migrate();
    await this.bus.ready();
    this.#unsubscribeCommands = await this.bus.subscribeCommands((command) => this.#commands.handle(command));
    await this.#leases.start();
  }

  /** The registered task types. */
  get definitions(): AnyTaskDefinition[] {
    return [...this.#defs.values()];
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** Runs in progress in this runtime and watchers attached to it. */
  get stats(): { running: number; subscribers: number } {
    return { running: this.#active.size, subscribers: this.#hub.size };
  }

  on<K extends keyof TaskstreamEvents>(name: K, listener: (payload: TaskstreamEvents[K]) => void): () => void {
    return this.#emitter.on(name, listener);
  }

  /** For the HTTP layer: reports stream events through this runtime's emitter (metrics, logs, tests). */
  report<K extends HttpEventName>(name: K, payload: TaskstreamEvents[K]): void {
    this.#emitter.emit(name, payload);
  }

  /** Validates the input against the type's schema and stores a pending task; it runs as soon as a slot is free. */
  async create<D extends AnyTaskDefinition>(definition: D, input: InputOf<D>, options?: CreateOptions): Promise<TaskRecord>;
  async create(kind: TaskKind, input: unknown, options?: CreateOptions): Promise<TaskRecord>;
  async create(kind: TaskKind | AnyTaskDefinition, input: unknown, options: CreateOptions = {}): Promise<TaskRecord> {
    return (await this.createTask(kind, input, options)).task;
  }

  /** `create`, also saying whether the task is new (false when the idempotency key matched). */
  async createTask(kind: TaskKind | AnyTaskDefinition, input: unknown, options: CreateOptions = {}): Promise<CreateResult> {
    if (this.closed) throw new RuntimeClosedError('create tasks');
    const def = this.definition(kind);
    checkDelay('create: timeoutMs', options.timeoutMs);
    if (options.idempotencyKey !== undefined && (typeof options.idempotencyKey !== 'string' || options.idempotencyKey.length === 0 || options.idempotencyKey.length > 255)) {
      throw new TypeError('create: idempotencyKey must be a string of 1 to 255 characters');
    }
    if (options.runAt !== undefined && !(options.runAt instanceof Date && Number.isFinite(options.runAt.getTime()))) {
      throw new TypeError('create: runAt must be a valid Date');
    }
    const value = await validateInput(def, input);
    const timeoutMs = options.timeoutMs ?? (typeof def.timeoutMs === 'function' ? def.timeoutMs(value) : undefined);
    checkDelay(`${def.app}/${def.type} timeoutMs(input)`, timeoutMs);
    const now = Date.now();
    const result = await this.store.createTask({
      app: def.app, type: def.type, input: value, timeoutMs: timeoutMs ?? null,
      idempotencyKey: options.idempotencyKey ?? null, runAt: options.runAt?.getTime() ?? null, now,
    });
    if (result.created) {
      this.#emitter.emit('task:created', { task: result.task });
      this.#wake(options.runAt === undefined ? 0 : options.runAt.getTime() - now);
    }
    return result;
  }

  /** Work becomes runnable in `inMs` (0: now): tell every scheduler, this one without waiting for the bus. */
  #wake(inMs: number): void {
    if (inMs > 0) this.#commands.announce({ kind: 'wake', inMs });
    else this.#commands.wake();
    this.#scheduler.wakeIn(inMs);
  }

  /** The definition registered for a kind (`"app/type"`, `{app, type}` or a definition). */
  definition(kind: TaskKind | AnyTaskDefinition): AnyTaskDefinition {
    const app = typeof kind === 'string' ? kind.split('/')[0] ?? '' : kind.app;
    const type = typeof kind === 'string' ? kind.split('/').slice(1).join('/') : kind.type;
    const def = this.#defs.get(`${app}/${type}`);
    if (def === undefined) throw new UnknownTaskTypeError(app, type, [...this.#defs.keys()]);
    return def;
  }

  async get(ref: TaskRef): Promise<TaskRecord | undefined> {
    const { id, app, type } = normalizeRef(ref);
    if (!Number.isSafeInteger(id) || id <= 0) return undefined;
    const task = await this.store.getTask(id);
    if (task === undefined || (app !== undefined && task.app !== app) || (type !== undefined && task.type !== type)) return undefined;
    return task;
  }

  async list(filter: { app?: string; type?: string; status?: TaskStatus; limit?: number; before?: number } = {}): Promise<{ tasks: TaskRecord[]; next: number | null }> {
    const limit = filter.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new TypeError('list: limit must be a whole number from 1 to 1000');
    return this.store.listTasks({ ...filter, limit });
  }

  async isRunning(ref: TaskRef): Promise<boolean> {
    return (await this.get(ref))?.status === 'running';
  }

  /**
   * Cancels a pending or running task; true when it took effect (the task will end `cancelled`),
   * false when it had already finished or does not exist. Idempotent; the first reason is kept.
   * Works from any process: the store records it, the bus tells the owner at once.
   */
  async cancel(ref: TaskRef, reason = 'external_cancellation'): Promise<boolean> {
    if (typeof reason !== 'string' || reason.length === 0 || reason.length > 500) {
      throw new TypeError('cancel: reason must be a string of 1 to 500 characters');
    }
    const task = await this.get(ref);
    if (task === undefined) return false;
    const result = await this.store.requestCancel(task.id, reason, runtimeEvents.cancelled(reason), Date.now());
    if (!result.found || !result.accepted) return false;
    if (result.event) {
      this.#commands.publish(task.id, [result.event]);
      this.#emitter.emit('task:finished', { ...runInfo(task), status: 'cancelled' });
      // A pending task's log (earlier attempts) is pruned just after its terminal event.
      const keep = this.#keep(task);
      if (keep !== undefined) this.#pruner.trimSoon(task.id, keep);
    } else {
      // The reason the store kept (the first cancel's), whichever call got here first.
      const kept = result.reason ?? reason;
      this.#commands.cancelLocal(task.id, kept);
      this.#commands.announce({ kind: 'cancel', taskId: task.id, reason: kept });
    }
    return true;
  }

  /**
   * Delivers a named signal to the task's `waitForSignal(name)`: stored first (so a task that
   * waits later still gets it), then pushed to the owner. False when the task already finished.
   */
  async signal(ref: TaskRef, name: string, payload: unknown = null): Promise<boolean> {
    assertName('signal', name);
    const task = await this.get(ref);
    if (task === undefined) throw new TaskNotFoundError(String(normalizeRef(ref).id));
    let json: string;
    try {
      json = JSON.stringify(payload ?? null);
    } catch (cause) {
      throw new TypeError(`signal ${name}: payload is not JSON-serialisable`, { cause });
    }
    const added = await this.store.addSignal(task.id, name, json, Date.now());
    if (added === 'missing') throw new TaskNotFoundError(String(task.id));
    if (added === 'finished') return false;
    this.#active.get(task.id)?.notifySignal(name);
    this.#commands.announce({ kind: 'signal', taskId: task.id, name });
    return true;
  }

  /**
   * Asks for a pending task to run now (for example one waiting for a retry). True when it was
   * pending; false when it is already running. A finished task is never run again: that throws.
   */
  async start(ref: TaskRef): Promise<boolean> {
    if (this.closed) throw new RuntimeClosedError('start tasks');
    const task = await this.get(ref);
    if (task === undefined) throw new TaskNotFoundError(String(normalizeRef(ref).id));
    if (TERMINAL_STATUSES.has(task.status)) {
      throw new TaskStateError(`task ${task.id} is ${task.status}; a finished task is never run again, create a new one`, task.status);
    }
    if (task.status === 'running') return false;
    await this.store.makeRunnable(task.id, Date.now());
    this.#wake(0);
    return true;
  }

  /**
   * The task's events after `afterSeq` (default 0: all of them), then live ones, ending after the
   * terminal event. Leaving the loop (break, or `signal`) detaches; the task goes on. Resolves once
   * the subscription is live and its first read has found the task; rejects with
   * TaskNotFoundError if there is none.
   */
  async subscribe(ref: TaskRef, options: { afterSeq?: number; signal?: AbortSignal } = {}): Promise<AsyncIterableIterator<TaskEvent>> {
    const afterSeq = options.afterSeq ?? 0;
    if (!Number.isSafeInteger(afterSeq) || afterSeq < 0) throw new TypeError('subscribe: afterSeq must be a whole number >= 0');
    if (this.closed) throw new RuntimeClosedError('subscribe');
    const { id, app, type } = normalizeRef(ref);
    if (!Number.isSafeInteger(id) || id <= 0) throw new TaskNotFoundError(String(id));
    // Only a ref that names the task type needs the row; the first page read tells whether the task exists.
    if ((app !== undefined || type !== undefined) && (await this.get(ref)) === undefined) throw new TaskNotFoundError(String(id));
    const subscription = new Subscription(this.#hub, id, afterSeq, this.#opts.subscriberBuffer, options.signal);
    await subscription.ready;
    return subscription;
  }

  /** Low-level: attach a sink to a task's log (the SSE layer uses this to share encoded frames). */
  watch(taskId: number, afterSeq: number, sink: Sink): () => void {
    return this.#hub.attach(taskId, afterSeq, sink);
  }

  /** Reads a task's stored events after `afterSeq`. */
  async events(ref: TaskRef, options: { afterSeq?: number; limit?: number } = {}): Promise<TaskEvent[]> {
    const task = await this.get(ref);
    if (task === undefined) throw new TaskNotFoundError(String(normalizeRef(ref).id));
    const page = await this.store.readEvents(task.id, options.afterSeq ?? 0, { limit: options.limit ?? 10_000 });
    return (page?.events ?? []).map((e: EventRecord) => ({ taskId: e.taskId, seq: e.seq, type: e.type, data: JSON.parse(e.json) as Record<string, unknown>, at: new Date(e.at) }));
  }

  /** Deletes finished tasks (with their events) that finished more than `olderThanMs` ago; returns the count. */
  async prune(options: { olderThanMs: number; dryRun?: boolean }): Promise<number> {
    checkPositive('prune: olderThanMs', options.olderThanMs, true);
    return this.store.prune({ before: Date.now() - options.olderThanMs, dryRun: options.dryRun ?? false });
  }

  /**
   * Graceful shutdown, in two phases. Stop claiming and refuse new work; abort every run with
   * reason `shutdown` and wait up to `timeoutMs`; runs still going are abandoned (and named in a
   * warning); unfinished tasks go back to `pending` with an `interrupted` event. Then end open
   * streams and close bus and store. Every step runs even if one fails. Idempotent: later calls
   * return the first call's promise.
   */
  close(options: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    checkDelay('close: timeoutMs', timeoutMs, true);
    this.#closing ??= this.#shutdown(timeoutMs);
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #shutdown(timeoutMs: number): Promise<void> {
    const errors: unknown[] = [];
    const step = async (fn: () => unknown): Promise<void> => {
      try { await fn(); } catch (err) { errors.push(err); }
    };
    this.#leases.stopSweeping();
    this.#commands.stop();
    // A claim in flight settles first; what it claimed is given back, never started.
    await step(() => this.#scheduler.stop());
    const runs = [...this.#active.values()];
    for (const run of runs) run.abort('shutdown', 'shutdown', undefined);
    if (runs.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
      await Promise.race([Promise.all(runs.map((r) => r.done)), deadline]);
      clearTimeout(timer);
      const stuck = runs.filter((r) => this.#active.has(r.id));
      if (stuck.length > 0) {
        const names = stuck.map((r) => `${r.task.app}/${r.task.type}/${r.id}`);
        this.logger.warn({ tasks: names, timeoutMs }, `taskstream: shutdown timeout after ${timeoutMs} ms; runs that did not stop (abandoned, put back to pending): ${names.join(', ')}`);
        for (const run of stuck) run.abandon();
        await Promise.all(stuck.map((r) => r.done));
      }
    }
    this.#leases.stopRenewing();
    await step(() => this.#writer.flush());
    await step(() => this.#hub.close());
    await step(() => this.#pruner.close());
    await step(() => this.#unsubscribeCommands?.());
    await step(() => this.bus.close());
    await step(() => this.store.close());
    if (errors.length > 0) throw new AggregateError(errors, 'taskstream: shutdown finished with errors');
  }

  #startRun(run: ActiveRun): void {
    this.#active.set(run.id, run);
    this.#leases.runStarted();
    this.#emitter.emit('task:started', runInfo(run.task));
    // Claims only ever name registered kinds.
    const def = this.#defs.get(`${run.task.app}/${run.task.type}`)!;
    executeRun(this.#runDeps, run, def)
      .catch((err: unknown) => this.logger.error({ err, taskId: run.id }, 'taskstream: run bookkeeping failed'))
      .finally(() => {
        this.#active.delete(run.id);
        this.#leases.runEnded();
        run.finished();
        this.#pruner.forget(run.id);
        this.#scheduler.schedule();
      });
  }

  /** A dead owner's run was finished as cancelled by recovery, which does not prune: prune it now. */
  #trimRecovered(taskId: number): void {
    this.get(taskId).then((task) => {
      const keep = task && this.#keep(task);
      if (keep !== undefined) this.#pruner.trimSoon(taskId, keep);
    }, (err: unknown) => this.logger.warn({ err, taskId }, 'taskstream: pruning a recovered task failed'));
  }

  /** Events a task of this kind keeps (undefined: all). */
  #keep(task: { readonly app: string; readonly type: string }): number | undefined {
    const def = this.#defs.get(`${task.app}/${task.type}`);
    return keepFor(def?.retention, this.#retainEvents);
  }

  #storeError(operation: string, err: unknown): void {
    this.logger.error({ err }, `taskstream: ${operation} failed`);
    this.#emitter.emit('store:error', { operation, err });
  }
}

function normalizeRef(ref: TaskRef): { id: number; app?: string | undefined; type?: string | undefined } {
  return typeof ref === 'number' ? { id: ref } : ref;
}

export type { TaskDefinition };
