import type { EventRecord } from '../store/types.js';

/**
 * The bus carries what must reach other processes at once: newly stored events (to every process
 * with watchers of that task) and commands (to the process that owns a run). It is notification
 * only; the store stays the source of truth, so a lost message costs latency, never an event.
 */
export type Command =
  | { readonly kind: 'cancel'; readonly taskId: number; readonly reason: string }
  | { readonly kind: 'signal'; readonly taskId: number; readonly name: string }
  /** New runnable work exists (in `inMs`, when given; else now): idle schedulers should claim. */
  | { readonly kind: 'wake'; readonly inMs?: number };

/**
 * What a bus promises about delivery:
 * - `reliable`: every message published after a subscription is live reaches it, in order (the
 *   in-process bus).
 * - `at-most-once`: messages may be lost, notably across a reconnect (Redis pub/sub, PostgreSQL
 *   NOTIFY). Readers must repair from the store: the hub re-reads after every `onResync` and checks
 *   each watched task's stored position against what it delivered.
 */
export type Delivery = 'reliable' | 'at-most-once';

export interface Bus {
  readonly delivery: Delivery;
  /**
   * Publishes events already committed to the store, in seq order. Never throws: a bus error is
   * reported through the bus's own error hook, and costs watchers latency, never an event.
   */
  publishEvents(taskId: number, events: readonly EventRecord[]): void;
  /**
   * Resolves once the subscription is live (for Redis: SUBSCRIBE acknowledged): from then on every
   * publish reaches `listener`, unless the bus is at-most-once and says so with `onResync`.
   * Resolves with the unsubscribe function.
   */
  subscribeEvents(taskId: number, listener: (events: readonly EventRecord[]) => void): Promise<() => void>;
  /** Never throws, like `publishEvents`. Commands are written to the store first; the bus only hurries them. */
  publishCommand(command: Command): void;
  subscribeCommands(listener: (command: Command) => void): Promise<() => void>;
  /**
   * Called whenever messages may have been lost (a reconnect, a failed probe): every subscription is
   * live again when it is called, and readers re-read what they may have missed from the store.
   */
  onResync(listener: () => void): () => void;
  /** Resolves once the bus can carry messages (a networked bus connects here). */
  ready(): Promise<void>;
  /** Resolves when the bus is connected and answering; rejects with the reason otherwise (readiness checks). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
