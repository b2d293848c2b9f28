import type { Bus } from '../bus/types.js';
import { isRetryableStoreError, LeaseLostError } from '../errors.js';
import type { EventRecord, NewEvent, Store } from '../store/types.js';
import type { SafeEmitter, TaskstreamEvents } from './emitter.js';

interface Waiter {
  readonly promise: Promise<void>;
  /** Fulfils when `promise` settles, either way. */
  readonly settled: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

export interface EventWriterHooks {
  /** The store refused a task's events: the run no longer owns the task (or the store stayed unavailable past the lease). */
  readonly onLeaseLost: (taskId: number, err: unknown) => void;
  /** Something went wrong that costs no event: a retried store error, a bus that threw. */
  readonly onError: (err: unknown, what: string) => void;
  /** How long a batch is retried while the store is unavailable; past it the runs' leases are gone anyway. */
  readonly retryForMs: number;
  /** Hears each task's last stored seq per batch, after publishing (retention uses it; it must not block). */
  readonly onStored?: (taskId: number, lastSeq: number) => void;
  /** A batch of `count` events was stored and published (metrics). */
  readonly onAppended?: (count: number) => void;
  /** The store failed an append (metrics); retried or not, as the error says. */
  readonly onStoreError?: (operation: string, err: unknown) => void;
}

/**
 * Group commit. Events sent during one tick, by any number of runs, are appended in one store
 * transaction at the next `setImmediate`, then published to the bus, so watchers only ever see
 * stored events. Cost per event: one array push here, one prepared insert in the transaction.
 *
 * Batches in flight: as many as the store's `appendsInFlight` (default 1), each for a set of
 * tasks no other batch in flight holds. A task's events that arrive while its batch is in flight
 * wait for that batch's answer, which keeps each task's seq order; other tasks' events may go
 * meanwhile. When more than one slot is free the runs ready to go are split between them (each
 * run's events stay together), so runs that all wait for their sends (the usual task) keep two
 * groups that take turns instead of one batch that must come back before the next can fill.
 *
 * Failures: a batch never stops the writer. A store error worth retrying (StoreUnavailableError)
 * retries the same batch, with backoff, before its tasks' later events are written (so seq order
 * holds); the store recognises a batch an earlier try committed. Only a refusal (the epoch moved
 * on), or an outage longer than `retryForMs`, means a lost lease, for the refused runs alone. Any
 * other store error rejects the batch's sends (the run sees it) without touching its lease. A bus
 * that throws is reported, never fatal: the events are stored, and watchers read them from the
 * store.
 */
export class EventWriter {
  #queue: NewEvent[] = [];
  /** One per task with events in the queue, shared by them: settles when they are stored. */
  #waiters = new Map<number, Waiter>();
  /** A take of the queue is due at the next setImmediate. */
  #scheduled = false;
  /** Tasks with a batch in flight: their later events wait for its answer. */
  readonly #busy = new Set<number>();
  /** The batches in flight (each settles, never rejects, when its batch is stored and published). */
  readonly #inFlight = new Set<Promise<void>>();
  readonly #slots: number;
  readonly #store: Store;
  readonly #bus: Bus;
  readonly #hooks: EventWriterHooks;

  constructor(store: Store, bus: Bus, hooks: EventWriterHooks) {
    this.#store = store;
    this.#bus = bus;
    this.#hooks = hooks;
    const slots = store.appendsInFlight ?? 1;
    this.#slots = Number.isSafeInteger(slots) && slots >= 1 ? slots : 1;
  }

  /** Queues an event; the promise settles when its batch is stored (shared by the task's events in the batch). */
  append(event: NewEvent): Promise<void> {
    this.#queue.push(event);
    let waiter = this.#waiters.get(event.taskId);
    if (waiter === undefined) {
      waiter = deferred();
      this.#waiters.set(event.taskId, waiter);
    }
    this.#schedule();
    return waiter.promise;
  }

  /** Writes whatever is queued; resolves when it, and every batch now in flight, is stored and published. */
  flush(): Promise<void> {
    this.#take();
    const pending: Array<Promise<unknown>> = [...this.#inFlight];
    // Events of a task whose batch is in flight stay queued until it is answered.
    for (const waiter of this.#waiters.values()) pending.push(waiter.settled);
    return Promise.all(pending).then(() => {});
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#take());
  }

  /**
   * Starts batches in the free slots. The queue is taken when a slot is free, not when an event
   * arrives: everything sent while the slots were busy (by runs in any phase) goes in one batch.
   * Were it fixed earlier, runs that started in different ticks would stay in separate batches
   * for good, each paying a round trip.
   */
  #take(): void {
    this.#scheduled = false;
    const free = this.#slots - this.#inFlight.size;
    if (free <= 0 || this.#queue.length === 0) return;
    if (this.#busy.size === 0 && (free === 1 || this.#waiters.size === 1)) {
      // Everything goes, as one batch (always so with one slot).
      const batch = this.#queue;
      const waiters = this.#waiters;
      this.#queue = [];
      this.#waiters = new Map();
      this.#start(batch, waiters);
      return;
    }
    const ready = new Map<number, NewEvent[]>();
    const held: NewEvent[] = [];
    for (const e of this.#queue) {
      if (this.#busy.has(e.taskId)) {
        held.push(e);
        continue;
      }
      let list = ready.get(e.taskId);
      if (list === undefined) ready.set(e.taskId, (list = []));
      list.push(e);
    }
    if (ready.size === 0) return;
    this.#queue = held;
    const groups = Math.min(free, ready.size);
    const share = this.#countReady(ready) / groups;
    let batch: NewEvent[] = [];
    let waiters = new Map<number, Waiter>();
    let started = 0;
    for (const [taskId, events] of ready) {
      for (const e of events) batch.push(e);
      waiters.set(taskId, this.#waiters.get(taskId)!);
      this.#waiters.delete(taskId);
      if (started < groups - 1 && batch.length >= share) {
        this.#start(batch, waiters);
        started += 1;
        batch = [];
        waiters = new Map();
      }
    }
    if (batch.length > 0) this.#start(batch, waiters);
  }

  #start(batch: NewEvent[], waiters: Map<number, Waiter>): void {
    const tasks = [...waiters.keys()];
    for (const taskId of tasks) this.#busy.add(taskId);
    const done = this.#write(batch, waiters, () => {
      this.#inFlight.delete(done);
      for (const taskId of tasks) this.#busy.delete(taskId);
    }).then(() => {
      // Runs whose sends this batch just acknowledged send again in this tick: the next take
      // waits for them (setImmediate), so they go together.
      if (this.#queue.length > 0) this.#schedule();
    });
    this.#inFlight.add(done);
  }

  #countReady(ready: ReadonlyMap<number, readonly NewEvent[]>): number {
    let n = 0;
    for (const events of ready.values()) n += events.length;
    return n;
  }

  /** `answered` is called as soon as the store has answered (before the sends settle): the slot and the tasks are free again. */
  async #write(batch: NewEvent[], waiters: Map<number, Waiter>, answered: () => void): Promise<void> {
    let refused: number[];
    try {
      refused = await this.#append(batch);
    } catch (err) {
      answered();
      const lost = isRetryableStoreError(err);
      this.#hooks.onStoreError?.('appending events', err);
      for (const [taskId, waiter] of waiters) {
        waiter.reject(err);
        if (lost) this.#hooks.onLeaseLost(taskId, err);
      }
      if (!lost) this.#hooks.onError(err, 'appending events failed');
      return;
    }
    answered();
    const byTask = new Map<number, EventRecord[]>();
    for (const e of batch) {
      let list = byTask.get(e.taskId);
      if (list === undefined) byTask.set(e.taskId, (list = []));
      list.push(e);
    }
    for (const taskId of refused) {
      byTask.delete(taskId);
      const err = new LeaseLostError(taskId);
      waiters.get(taskId)?.reject(err);
      waiters.delete(taskId);
      this.#hooks.onLeaseLost(taskId, err);
    }
    for (const [taskId, events] of byTask) {
      try {
        this.#bus.publishEvents(taskId, events);
      } catch (err) {
        this.#hooks.onError(err, 'publishing events failed');
      }
    }
    let stored = 0;
    for (const events of byTask.values()) stored += events.length;
    if (stored > 0) this.#hooks.onAppended?.(stored);
    for (const waiter of waiters.values()) waiter.resolve();
    const onStored = this.#hooks.onStored;
    if (onStored !== undefined) for (const [taskId, events] of byTask) onStored(taskId, events[events.length - 1]!.seq);
  }

  /** appendEvents, retried while the store says it is unavailable, up to `retryForMs`. */
  async #append(batch: NewEvent[]): Promise<number[]> {
    const deadline = Date.now() + this.#hooks.retryForMs;
    let delay = 25;
    for (;;) {
      try {
        return await this.#store.appendEvents(batch);
      } catch (err) {
        if (!isRetryableStoreError(err) || Date.now() + delay > deadline) throw err;
        this.#hooks.onError(err, `appending events failed; retrying in ${delay} ms`);
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 1000);
      }
    }
  }
}

function deferred(): Waiter {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Task code may fire and forget a send; a refused batch must not become an unhandled rejection.
  const settled = promise.catch(() => {});
  return { promise, settled, resolve, reject };
}
