import type { Bus } from '../bus/types.js';
import { isRetryableStoreError, LeaseLostError } from '../errors.js';
import type { EventRecord, NewEvent, Store } from '../store/types.js';
import type { SafeEmitter, TaskstreamEvents } from './emitter.js';

interface Waiter {
  readonly promise: Promise<void>;
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
 * stored events. Batches are written one after another, which keeps each task's seq order.
 * Cost per event: one array push here, one prepared insert in the transaction.
 *
 * With a store that answers over a network (its append takes more than the current turn), delivery
 * overlaps the next write: the stored batch's sends resolve first, so the runs can send again, and
 * the batch is published once the next batch has gone to the store (or a turn later when none
 * comes). Watchers then add nothing to the round trip every batch waits for. A store that answers
 * in the same turn (SQLite, memory) has nothing to overlap: its batch is published at once.
 * Batches are published in the order they were stored, and `flush()` publishes whatever is stored
 * and not yet published (a run's terminal event is published after its flush). Anything published
 * out of order elsewhere is still safe: the hub reads a skipped seq from the store.
 *
 * Failures: the chain of batches never breaks. A store error worth retrying (StoreUnavailableError)
 * retries the same batch, with backoff, before any later batch is written (so seq order holds);
 * the store recognises a batch an earlier try committed. Only a refusal (the epoch moved on), or an
 * outage longer than `retryForMs`, means a lost lease. Any other store error rejects the batch's
 * sends (the run sees it) without touching its lease. A bus that throws is reported, never fatal:
 * the events are stored, and watchers read them from the store.
 */
export class EventWriter {
  #queue: NewEvent[] = [];
  #waiters = new Map<number, Waiter>();
  #scheduled = false;
  /** A chain link is waiting to take the queue. */
  #linked = false;
  /** A batch is being written. */
  #writing = false;
  #chain: Promise<void> = Promise.resolve();
  /** Stored batches not yet published, oldest first. */
  #stored: Array<Map<number, EventRecord[]>> = [];
  readonly #store: Store;
  readonly #bus: Bus;
  readonly #hooks: EventWriterHooks;

  constructor(store: Store, bus: Bus, hooks: EventWriterHooks) {
    this.#store = store;
    this.#bus = bus;
    this.#hooks = hooks;
  }

  /** Queues an event; the promise settles when its batch is stored (shared by the task's events in the batch). */
  append(event: NewEvent): Promise<void> {
    this.#queue.push(event);
    let waiter = this.#waiters.get(event.taskId);
    if (waiter === undefined) {
      waiter = deferred();
      this.#waiters.set(event.taskId, waiter);
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#link());
    }
    return waiter.promise;
  }

  /** Writes whatever is queued; resolves when it (and every earlier batch) is stored and published. */
  flush(): Promise<void> {
    this.#link();
    return this.#chain.then(() => this.#deliver());
  }

  /** Publishes every stored batch not yet published, in the order they were stored. */
  #deliver(): void {
    const batches = this.#stored;
    if (batches.length === 0) return;
    this.#stored = [];
    for (const byTask of batches) this.#publish(byTask);
  }

  #link(): void {
    this.#scheduled = false;
    if (this.#queue.length > 0 && !this.#linked) {
      // One batch in flight at most, and one waiting: the waiting one takes the queue only when it
      // runs, so everything sent while a write was in flight (by runs in any phase) goes in one
      // batch. Were it to take the queue now, runs that started in different ticks would stay in
      // separate batches for good, each paying a round trip.
      this.#linked = true;
      const afterWrite = this.#writing;
      // #write never rejects, so the chain never stops.
      this.#chain = this.#chain.then(async () => {
        // Runs whose sends the previous batch just acknowledged send again in the next tick: let them.
        if (afterWrite) await new Promise((resolve) => setImmediate(resolve));
        this.#linked = false;
        const batch = this.#queue;
        const waiters = this.#waiters;
        this.#queue = [];
        this.#waiters = new Map();
        if (batch.length > 0) await this.#write(batch, waiters);
        else this.#deliver();
      });
    }
  }

  async #write(batch: NewEvent[], waiters: Map<number, Waiter>): Promise<void> {
    let refused: number[];
    this.#writing = true;
    let sameTurn = true;
    const probe = setImmediate(() => (sameTurn = false));
    try {
      const appending = this.#append(batch);
      // The store has the batch once the current microtasks have run: publish the last one then.
      if (this.#stored.length > 0) setImmediate(() => this.#deliver());
      refused = await appending;
    } catch (err) {
      const lost = isRetryableStoreError(err);
      this.#hooks.onStoreError?.('appending events', err);
      for (const [taskId, waiter] of waiters) {
        waiter.reject(err);
        if (lost) this.#hooks.onLeaseLost(taskId, err);
      }
      if (!lost) this.#hooks.onError(err, 'appending events failed');
      return;
    } finally {
      this.#writing = false;
      clearImmediate(probe);
    }
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
    if (byTask.size > 0) this.#stored.push(byTask);
    if (sameTurn) {
      this.#deliver();
    } else if (byTask.size > 0) {
      // The runs whose sends resolve below send again in this turn, and the write of their batch
      // (a later immediate) publishes this one. If none is due by then, publish it now.
      setImmediate(() => {
        if (!this.#scheduled && !this.#linked) this.#deliver();
      });
    }
    for (const waiter of waiters.values()) waiter.resolve();
  }

  #publish(byTask: Map<number, EventRecord[]>): void {
    let stored = 0;
    for (const [taskId, events] of byTask) {
      stored += events.length;
      try {
        this.#bus.publishEvents(taskId, events);
      } catch (err) {
        this.#hooks.onError(err, 'publishing events failed');
      }
      this.#hooks.onStored?.(taskId, events[events.length - 1]!.seq);
    }
    this.#hooks.onAppended?.(stored);
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
  promise.catch(() => {});
  return { promise, resolve, reject };
}
