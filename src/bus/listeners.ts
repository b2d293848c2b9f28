import type { EventRecord } from '../store/types.js';
import type { Command } from './types.js';

type EventListener = (events: readonly EventRecord[]) => void;

/**
 * The in-process half of a networked bus: who in this process listens to what. Listeners are
 * called synchronously, each isolated (a throwing listener is reported, the others still run).
 * `seen` is the highest seq handed out per watched task, so a hint (a seq without its events) can
 * be turned into one store read per task, shared by every watcher of it.
 */
export class Listeners {
  readonly #events = new Map<number, { readonly set: Set<EventListener>; seen: number }>();
  readonly #commands = new Set<(command: Command) => void>();
  readonly #resync = new Set<() => void>();
  readonly #onError: (err: unknown) => void;

  constructor(onError: (err: unknown) => void) {
    this.#onError = onError;
  }

  /** Adds a listener; returns true when it is the task's first (the caller subscribes the channel). */
  addEvents(taskId: number, listener: EventListener): boolean {
    const entry = this.#events.get(taskId);
    if (entry !== undefined) {
      entry.set.add(listener);
      return false;
    }
    this.#events.set(taskId, { set: new Set([listener]), seen: 0 });
    return true;
  }

  /** Removes a listener; returns true when it was the task's last (the caller unsubscribes the channel). */
  removeEvents(taskId: number, listener: EventListener): boolean {
    const entry = this.#events.get(taskId);
    if (entry === undefined || !entry.set.delete(listener)) return false;
    if (entry.set.size > 0) return false;
    this.#events.delete(taskId);
    return true;
  }

  watched(taskId: number): boolean {
    return this.#events.has(taskId);
  }

  watchedTasks(): number[] {
    return [...this.#events.keys()];
  }

  /** The highest seq delivered for a watched task (0 before the first), undefined when unwatched. */
  seen(taskId: number): number | undefined {
    return this.#events.get(taskId)?.seen;
  }

  /** Raises a watched task's `seen` (a hint-carrying bus learns the position at subscribe time). */
  raiseSeen(taskId: number, seq: number): void {
    const entry = this.#events.get(taskId);
    if (entry !== undefined && seq > entry.seen) entry.seen = seq;
  }

  deliverEvents(taskId: number, events: readonly EventRecord[]): void {
    const entry = this.#events.get(taskId);
    if (entry === undefined || events.length === 0) return;
    const last = events[events.length - 1]!.seq;
    if (last > entry.seen) entry.seen = last;
    for (const listener of [...entry.set]) {
      try { listener(events); } catch (err) { this.#onError(err); }
    }
  }

  addCommands(listener: (command: Command) => void): () => void {
    this.#commands.add(listener);
    return () => void this.#commands.delete(listener);
  }

  deliverCommand(command: Command): void {
    for (const listener of [...this.#commands]) {
      try { listener(command); } catch (err) { this.#onError(err); }
    }
  }

  addResync(listener: () => void): () => void {
    this.#resync.add(listener);
    return () => void this.#resync.delete(listener);
  }

  resync(): void {
    for (const listener of [...this.#resync]) {
      try { listener(); } catch (err) { this.#onError(err); }
    }
  }
}

/** A command as it travels between processes; anything else received is ignored (reported). */
export function parseCommand(text: string): Command | undefined {
  const value = JSON.parse(text) as Partial<Record<string, unknown>>;
  if (value.kind === 'wake') {
    const inMs = value.inMs;
    return typeof inMs === 'number' && Number.isFinite(inMs) && inMs > 0 ? { kind: 'wake', inMs } : { kind: 'wake' };
  }
  if (typeof value.taskId !== 'number') return undefined;
  if (value.kind === 'cancel' && typeof value.reason === 'string') return { kind: 'cancel', taskId: value.taskId, reason: value.reason };
  if (value.kind === 'signal' && typeof value.name === 'string') return { kind: 'signal', taskId: value.taskId, name: value.name };
  return undefined;
}

/**
 * Reports a failure once per outage: the first error after a success (or the start) goes to
 * `onError`, the repeats are counted until `ok()` says the connection works again.
 */
export class ErrorGate {
  #failing = false;
  readonly #onError: (err: unknown) => void;

  constructor(onError: (err: unknown) => void) {
    this.#onError = onError;
  }

  fail(err: unknown): void {
    if (this.#failing) return;
    this.#failing = true;
    try { this.#onError(err); } catch { /* the error hook itself must not break the bus */ }
  }

  ok(): void {
    this.#failing = false;
  }
}
