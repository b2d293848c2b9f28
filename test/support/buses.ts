/**
 * Fault injection for the bus contract: wrappers around a real bus (LocalBus by default) that make
 * it behave like a networked one. A subscription that goes live late (Redis SUBSCRIBE), messages
 * that are lost (pub/sub is at-most-once), a reconnect after which the bus asks for a resync.
 */
import { type Bus, type Command, type EventRecord, LocalBus } from '../../src/index.js';

type Listener = (events: readonly EventRecord[]) => void;

export interface FaultOptions {
  /**
   * Awaited before a subscription goes live (its listener hears nothing until then, and
   * `subscribeEvents` resolves only after it). A number is a delay in ms.
   */
  readonly live?: number | ((taskId: number) => Promise<void>);
  /** Publishes for which this returns true are lost (never reach any subscriber). */
  readonly drop?: (taskId: number, events: readonly EventRecord[]) => boolean;
  /** Makes `subscribeEvents` reject (once per true) instead of going live. */
  readonly failSubscribe?: (taskId: number) => boolean;
}

/**
 * A bus with faults. It says it is `at-most-once` when it may drop messages. `disconnect()` loses
 * every message until `reconnect()`, which then fires the resync listeners (like a Redis bus after
 * its connection came back). `listeners` counts live event subscriptions (leaks show there).
 */
export class FaultyBus implements Bus {
  readonly delivery: Bus['delivery'];
  readonly inner: Bus;
  readonly #options: FaultOptions;
  readonly #resync = new Set<() => void>();
  #connected = true;
  listeners = 0;
  /** Event subscriptions that went live, in all. */
  subscribed = 0;
  /** Event publishes that were lost, by task. */
  readonly lost: Array<{ taskId: number; seqs: number[] }> = [];

  constructor(options: FaultOptions = {}, inner: Bus = new LocalBus()) {
    this.inner = inner;
    this.#options = options;
    this.delivery = options.drop === undefined ? inner.delivery : 'at-most-once';
  }

  publishEvents(taskId: number, events: readonly EventRecord[]): void {
    if (!this.#connected || this.#options.drop?.(taskId, events) === true) {
      this.lost.push({ taskId, seqs: events.map((e) => e.seq) });
      return;
    }
    this.inner.publishEvents(taskId, events);
  }

  async subscribeEvents(taskId: number, listener: Listener): Promise<() => void> {
    const live = this.#options.live;
    if (typeof live === 'number') await new Promise((resolve) => setTimeout(resolve, live));
    else if (live !== undefined) await live(taskId);
    if (this.#options.failSubscribe?.(taskId) === true) throw new Error(`faulty bus: SUBSCRIBE ${taskId} failed`);
    const off = await this.inner.subscribeEvents(taskId, listener);
    this.listeners += 1;
    this.subscribed += 1;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.listeners -= 1;
      off();
    };
  }

  publishCommand(command: Command): void {
    if (this.#connected) this.inner.publishCommand(command);
  }

  subscribeCommands(listener: (command: Command) => void): Promise<() => void> {
    return this.inner.subscribeCommands(listener);
  }

  onResync(listener: () => void): () => void {
    this.#resync.add(listener);
    return () => void this.#resync.delete(listener);
  }

  /** From now on every message is lost, until `reconnect()`. */
  disconnect(): void {
    this.#connected = false;
  }

  /** Messages flow again; then every resync listener is told that some may have been lost. */
  reconnect(): void {
    this.#connected = true;
    for (const listener of this.#resync) listener();
  }

  ready(): Promise<void> {
    return this.inner.ready();
  }

  ping(): Promise<void> {
    return this.inner.ping();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** A bus whose subscriptions go live `ms` later, or when `live(taskId)` resolves. */
export function slowBus(live: number | ((taskId: number) => Promise<void>)): FaultyBus {
  return new FaultyBus({ live });
}

/** An at-most-once bus that loses the publishes `drop` picks. */
export function lossyBus(drop: (taskId: number, events: readonly EventRecord[]) => boolean): FaultyBus {
  return new FaultyBus({ drop });
}
