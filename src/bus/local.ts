import type { EventRecord } from '../store/types.js';
import type { Bus, Command, Delivery } from './types.js';

/**
 * The in-process bus: listeners are called synchronously, in the publisher's tick, with the very
 * objects published, so every watcher in the process shares one event object (and its encoded
 * frame). Several runtimes in one process may share one instance. A throwing listener is isolated.
 */
export class LocalBus implements Bus {
  readonly delivery: Delivery = 'reliable';
  readonly #events = new Map<number, Set<(events: readonly EventRecord[]) => void>>();
  readonly #commands = new Set<(command: Command) => void>();
  readonly #onListenerError: (err: unknown) => void;

  constructor(options: { onListenerError?: (err: unknown) => void } = {}) {
    this.#onListenerError = options.onListenerError ?? (() => {});
  }

  publishEvents(taskId: number, events: readonly EventRecord[]): void {
    const listeners = this.#events.get(taskId);
    if (listeners === undefined) return;
    for (const listener of listeners) {
      try { listener(events); } catch (err) { this.#onListenerError(err); }
    }
  }

  async subscribeEvents(taskId: number, listener: (events: readonly EventRecord[]) => void): Promise<() => void> {
    let set = this.#events.get(taskId);
    if (set === undefined) this.#events.set(taskId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.#events.get(taskId) === set) this.#events.delete(taskId);
    };
  }

  publishCommand(command: Command): void {
    for (const listener of this.#commands) {
      try { listener(command); } catch (err) { this.#onListenerError(err); }
    }
  }

  async subscribeCommands(listener: (command: Command) => void): Promise<() => void> {
    this.#commands.add(listener);
    return () => void this.#commands.delete(listener);
  }

  /** Never loses a message, so never asks for a resync. */
  onResync(_listener: () => void): () => void {
    return () => {};
  }

  async ready(): Promise<void> {}

  async ping(): Promise<void> {}

  async close(): Promise<void> {}
}

export function localBus(): LocalBus {
  return new LocalBus();
}
