import { type AbortKind, TaskAbortedError, TaskStateError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { TaskRecord } from '../store/types.js';
import type { RunContext } from '../task/define.js';
import { assertName, encodeEventData } from '../task/names.js';
import type { EventWriter } from './writer.js';

/** How a run's promise ended, or that it was given up on. */
export type Settled =
  | { readonly kind: 'value'; readonly value: unknown }
  | { readonly kind: 'error'; readonly error: unknown }
  | { readonly kind: 'abandoned' };

export interface RunDeps {
  readonly writer: EventWriter;
  readonly logger: Logger;
  readonly maxEventBytes: number;
  /** Removes and returns a stored signal's payload (JSON text). */
  readonly takeSignal: (taskId: number, name: string) => Promise<string | undefined>;
}

/**
 * One run of one task in this process: its lease epoch, the next seq to assign, the abort
 * controller behind `ctx.signal`, and the waiters of `waitForSignal`.
 *
 * State: running → (aborted: kind recorded, first abort wins) → settled (promise ended or
 * abandoned) → closed (ctx refuses events; the runtime writes the terminal state).
 */
export class ActiveRun {
  readonly task: TaskRecord;
  readonly epoch: number;
  readonly controller = new AbortController();
  abortKind: AbortKind | undefined;
  abortReason = '';
  /** Set once the run has settled: sends are refused from then on. */
  closed = false;
  seq: number;
  readonly done: Promise<void>;
  readonly #resolveDone: () => void;
  readonly #signalWaiters = new Map<string, Set<() => void>>();
  #abandon: (() => void) | undefined;
  #graceTimer: NodeJS.Timeout | undefined;

  constructor(task: TaskRecord, epoch: number) {
    this.task = task;
    this.epoch = epoch;
    this.seq = task.lastSeq;
    let resolve!: () => void;
    this.done = new Promise<void>((r) => (resolve = r));
    this.#resolveDone = resolve;
  }

  get id(): number {
    return this.task.id;
  }

  /** Aborts `ctx.signal`. The first abort decides the kind; later ones are no-ops. */
  abort(kind: AbortKind, reason: string, graceMs: number | undefined): void {
    if (this.abortKind !== undefined || this.closed) return;
    this.abortKind = kind;
    this.abortReason = reason;
    this.controller.abort(new TaskAbortedError(kind, reason, abortMessage(this.task, kind, reason)));
    if (graceMs !== undefined) {
      this.#graceTimer = setTimeout(() => this.abandon(), graceMs);
    }
  }

  /** Stops waiting for a run that ignores its signal; its promise is left to itself. */
  abandon(): void {
    this.#abandon?.();
  }

  /** Waits for the run's promise, or for `abandon()`. */
  settle(work: Promise<unknown>): Promise<Settled> {
    return new Promise<Settled>((resolve) => {
      this.#abandon = () => resolve({ kind: 'abandoned' });
      work.then(
        (value) => resolve({ kind: 'value', value }),
        (error: unknown) => resolve({ kind: 'error', error }),
      );
    }).finally(() => {
      clearTimeout(this.#graceTimer);
      this.closed = true;
      this.#abandon = undefined;
      for (const waiters of this.#signalWaiters.values()) for (const wake of waiters) wake();
    });
  }

  notifySignal(name: string): void {
    const waiters = this.#signalWaiters.get(name);
    if (waiters !== undefined) for (const wake of [...waiters]) wake();
  }

  finished(): void {
    this.#resolveDone();
  }

  context(deps: RunDeps): RunContext {
    const { task } = this;
    const info = Object.freeze({ id: task.id, app: task.app, type: task.type, attempt: task.attempt });
    const logger = deps.logger.child({ task: `${task.app}/${task.type}/${task.id}`, attempt: task.attempt });
    const send = (type: string, data: object = {}): Promise<void> => {
      const json = encodeEventData(type, data, deps.maxEventBytes);
      if (this.closed) {
        throw new TaskStateError(`task ${task.id}: the run has ended; it can no longer send events`, 'running');
      }
      this.seq += 1;
      return deps.writer.append({ taskId: task.id, epoch: this.epoch, seq: this.seq, type, json, at: Date.now() });
    };
    const signal = this.controller.signal;
    return {
      signal,
      task: info,
      logger,
      send,
      progress: (data) => send('progress', data),
      iterate: async <T extends object>(items: AsyncIterable<T> | Iterable<T>): Promise<T | undefined> => {
        let last: T | undefined;
        for await (const item of items as AsyncIterable<T>) {
          signal.throwIfAborted();
          await send('progress', item);
          last = item;
        }
        signal.throwIfAborted();
        return last;
      },
      waitForSignal: <T>(name: string, options?: { signal?: AbortSignal }) =>
        this.#waitForSignal<T>(name, deps, options?.signal),
    };
  }

  async #waitForSignal<T>(name: string, deps: RunDeps, extra: AbortSignal | undefined): Promise<T> {
    assertName('signal', name);
    const signals = extra ? [this.controller.signal, extra] : [this.controller.signal];
    let waiters = this.#signalWaiters.get(name);
    if (waiters === undefined) this.#signalWaiters.set(name, (waiters = new Set()));
    for (;;) {
      for (const s of signals) s.throwIfAborted();
      if (this.closed) throw new TaskStateError(`task ${this.id}: the run has ended`, 'running');
      // Register before reading the store, so a signal stored in between still wakes us.
      let wake!: () => void;
      const woken = new Promise<void>((resolve) => (wake = resolve));
      waiters.add(wake);
      const onAbort = (): void => wake();
      for (const s of signals) s.addEventListener('abort', onAbort, { once: true });
      try {
        const payload = await deps.takeSignal(this.id, name);
        if (payload !== undefined) return JSON.parse(payload) as T;
        await woken;
      } finally {
        waiters.delete(wake);
        for (const s of signals) s.removeEventListener('abort', onAbort);
      }
    }
  }
}

function abortMessage(task: TaskRecord, kind: AbortKind, reason: string): string {
  const ref = `task ${task.app}/${task.type}/${task.id}`;
  switch (kind) {
    case 'cancel': return `${ref} was cancelled (${reason})`;
    case 'timeout': return `${ref} timed out`;
    case 'shutdown': return `${ref} was interrupted by shutdown`;
    case 'lease_lost': return `${ref} lost its lease to another process`;
  }
}
