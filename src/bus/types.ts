import type { EventRecord } from '../store/types.js';

/**
 * The bus carries what must reach other processes at once: newly stored events (to every process
 * with watchers of that task) and commands (to the process that owns a run). It is notification
 * only; the store stays the source of truth, so a lost message costs latency, never an event.
 */
export type Command =
  | { readonly kind: 'cancel'; readonly taskId: number; readonly reason: string }
  | { readonly kind: 'signal'; readonly taskId: number; readonly name: string }
  /** New runnable work exists: idle schedulers should claim. */
  | { readonly kind: 'wake' };

export interface Bus {
  /** Publishes events already committed to the store, in seq order. */
  publishEvents(taskId: number, events: readonly EventRecord[]): void;
  subscribeEvents(taskId: number, listener: (events: readonly EventRecord[]) => void): () => void;
  publishCommand(command: Command): void;
  subscribeCommands(listener: (command: Command) => void): () => void;
  /** Resolves once the bus can carry messages (a networked bus connects here). */
  ready(): Promise<void>;
  close(): Promise<void>;
}
