import type { Bus } from '../bus/types.js';
import { LeaseLostError } from '../errors.js';
import type { EventRecord, NewEvent, Store } from '../store/types.js';
import type { SafeEmitter, TaskstreamEvents } from './emitter.js';

interface Waiter {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * Group commit. Events sent during one tick, by any number of runs, are appended in one store
 * transaction at the next `setImmediate`, then published to the bus, so watchers only ever see
 * stored events. Batches are written one after another, which keeps each task's seq order.
 * Cost per event: one array push here, one prepared insert in the transaction.
 */
export class EventWriter {
  #queue: NewEvent[] = [];
  #waiters = new Map<number, Waiter>();
  #scheduled = false;
  #chain: Promise<void> = Promise.resolve();
  readonly #store: Store;
  readonly #bus: Bus;
  readonly #emitter: SafeEmitter<TaskstreamEvents>;
  readonly #onRefused: (taskId: number, err: unknown) => void;

  constructor(store: Store, bus: Bus, emitter: SafeEmitter<TaskstreamEvents>, onRefused: (taskId: number, err: unknown) => void) {
    this.#store = store;
    this.#bus = bus;
    this.#emitter = emitter;
    this.#onRefused = onRefused;
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
      setImmediate(() => void this.flush());
    }
    return waiter.promise;
  }

  /** Writes whatever is queued; resolves when it (and every earlier batch) is stored and published. */
  flush(): Promise<void> {
    this.#scheduled = false;
    if (this.#queue.length > 0) {
      const batch = this.#queue;
      const waiters = this.#waiters;
      this.#queue = [];
      this.#waiters = new Map();
      this.#chain = this.#chain.then(() => this.#write(batch, waiters));
    }
    return this.#chain;
  }

  async #write(batch: NewEvent[], waiters: Map<number, Waiter>): Promise<void> {
    let refused: number[];
    try {
      refused = await this.#store.appendEvents(batch);
    } catch (err) {
      this.#emitter.emit('store:error', { operation: 'appending events', err });
      for (const [taskId, waiter] of waiters) {
        waiter.reject(err);
        this.#onRefused(taskId, err);
      }
      return;
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
      this.#onRefused(taskId, err);
    }
    let stored = 0;
    for (const [taskId, events] of byTask) {
      stored += events.length;
      this.#bus.publishEvents(taskId, events);
    }
    if (stored > 0) this.#emitter.emit('events:appended', { count: stored });
    for (const waiter of waiters.values()) waiter.resolve();
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
