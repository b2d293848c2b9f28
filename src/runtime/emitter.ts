import type { TaskRecord, TaskStatus } from '../store/types.js';

export interface RunInfo {
  readonly id: number;
  readonly app: string;
  readonly type: string;
  readonly attempt: number;
}

/** What a runtime reports about itself; the same events feed logs, metrics and tests. */
export interface TaskstreamEvents {
  'task:created': { readonly task: TaskRecord };
  'task:started': RunInfo;
  'task:finished': RunInfo & { readonly status: TaskStatus };
  'task:requeued': RunInfo & { readonly reason: 'retry' | 'shutdown' | 'lease_expired'; readonly runAt: number };
  'task:abandoned': RunInfo & { readonly reason: string };
  /** A batch of events was stored (task code's events in one group commit, or a run's outcome event). */
  'events:appended': { readonly count: number };
  /** A run whose process stopped renewing its lease went back to pending (taken over by this runtime's sweep). */
  'lease:expired': { readonly taskId: number };
  /** A store operation of the runtime's own loops failed (it is retried on the next turn). */
  'store:error': { readonly operation: string; readonly err: unknown };
  /** An SSE stream opened on a handler of this runtime. */
  'stream:opened': { readonly taskId: number };
  /** An SSE stream ended (terminal event, client gone, shutdown, stalled client dropped). */
  'stream:closed': { readonly taskId: number };
  /** A stream's client fell past its backlog: the stream paused and catches up from the store. */
  'stream:paused': { readonly taskId: number };
}

/** Events the HTTP layer reports through a runtime (`Taskstream.report`). */
export type HttpEventName = 'stream:opened' | 'stream:closed' | 'stream:paused';

type Listener<T> = (payload: T) => void;

/** A typed emitter that a throwing listener cannot break: its error goes to `onError`. */
export class SafeEmitter<Events extends object> {
  readonly #listeners = new Map<keyof Events, Set<Listener<never>>>();
  readonly #onError: (err: unknown) => void;

  constructor(onError: (err: unknown) => void) {
    this.#onError = onError;
  }

  on<K extends keyof Events>(name: K, listener: Listener<Events[K]>): () => void {
    let set = this.#listeners.get(name);
    if (set === undefined) this.#listeners.set(name, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => set.delete(listener as Listener<never>);
  }

  emit<K extends keyof Events>(name: K, payload: Events[K]): void {
    const set = this.#listeners.get(name);
    if (set === undefined) return;
    for (const listener of set) {
      try {
        (listener as Listener<Events[K]>)(payload);
      } catch (err) {
        this.#onError(err);
      }
    }
  }
}
