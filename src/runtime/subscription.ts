import { RuntimeClosedError, TaskNotFoundError } from '../errors.js';
import type { EndReason, Hub, Sink } from '../hub/hub.js';
import type { EventRecord } from '../store/types.js';

/** An event as task code sent it, with its place in the log. */
export interface TaskEvent {
  readonly taskId: number;
  readonly seq: number;
  readonly type: string;
  readonly data: Record<string, unknown>;
  readonly at: Date;
}

/**
 * `runtime.subscribe()`: the log after `afterSeq`, then live events, ending after the terminal
 * event. Its buffer is bounded: when the reader falls `capacity` events behind, the hub pauses it
 * (keeping at most the page it had read, queueing nothing more), and once the reader has taken half
 * of its queue the hub resumes where it stopped, reading the rest from the store. Nothing is lost
 * or read twice, and a reader that stops never holds growing memory or slows the task.
 *
 * Retention: a reader positioned before the retained window first gets a `gap` event (seq =
 * first retained seq - 1, data `{from_seq, to_seq}`) naming the events it can no longer have.
 */
export class Subscription implements AsyncIterableIterator<TaskEvent>, Sink {
  readonly #hub: Hub;
  readonly #taskId: number;
  readonly #capacity: number;
  readonly #signal: AbortSignal | undefined;
  #queue: EventRecord[] = [];
  #head = 0;
  #cursor: number;
  #state: 'live' | 'lagging' | 'ended' | 'closed' | 'failed' | 'missing' = 'live';
  #detach: () => void;
  #wake: (() => void) | undefined;
  #resume: (() => void) | undefined;
  #settleOpened: ((err?: Error) => void) | undefined;
  /**
   * Settles once the hub's first read has told whether the task exists: resolves if it does,
   * rejects with TaskNotFoundError if not (or with the stream's own error if it failed first).
   */
  readonly ready: Promise<void>;

  constructor(hub: Hub, taskId: number, afterSeq: number, capacity: number, signal: AbortSignal | undefined) {
    this.#hub = hub;
    this.#taskId = taskId;
    this.#capacity = capacity;
    this.#signal = signal;
    this.#cursor = afterSeq;
    this.ready = new Promise<void>((resolve, reject) => {
      this.#settleOpened = (err) => (err === undefined ? resolve() : reject(err));
    });
    this.ready.catch(() => {}); // a caller that does not wait for it still gets the error from next()
    signal?.addEventListener('abort', this.#onAbort, { once: true });
    this.#detach = hub.attach(taskId, afterSeq, this);
  }

  event(event: EventRecord): boolean {
    this.#queue.push(event);
    this.#wakeUp();
    return this.#queue.length - this.#head < this.#capacity;
  }

  /** The hub paused this reader (its queue is full); `resume` once the reader has taken half. */
  onDrain(resume: () => void): void {
    this.#resume = resume;
  }

  opened(): void {
    this.#settle();
  }

  end(reason: EndReason): void {
    this.#state = reason === 'terminal' ? 'ended' : reason === 'overflow' ? 'lagging' : reason === 'closed' ? 'closed' : reason === 'missing' ? 'missing' : 'failed';
    this.#settle(this.#failure());
    this.#wakeUp();
  }

  async next(): Promise<IteratorResult<TaskEvent>> {
    for (;;) {
      this.#signal?.throwIfAborted();
      if (this.#head < this.#queue.length) {
        const e = this.#queue[this.#head++]!;
        if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
          this.#queue = this.#queue.slice(this.#head);
          this.#head = 0;
        }
        this.#cursor = e.seq;
        if (this.#resume !== undefined && (this.#queue.length - this.#head) * 2 <= this.#capacity) {
          const resume = this.#resume;
          this.#resume = undefined;
          resume();
        }
        return { done: false, value: toTaskEvent(e) };
      }
      switch (this.#state) {
        case 'ended': return this.return();
        case 'closed':
        case 'failed':
        case 'missing': throw this.#failure()!;
        case 'lagging':
          this.#state = 'live';
          this.#detach = this.#hub.attach(this.#taskId, this.#cursor, this);
          break;
        case 'live':
          await new Promise<void>((resolve) => (this.#wake = resolve));
      }
    }
  }

  async return(): Promise<IteratorResult<TaskEvent>> {
    this.#detach();
    this.#resume = undefined;
    if (this.#state === 'live' || this.#state === 'lagging') this.#state = 'ended';
    this.#queue = [];
    this.#head = 0;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  readonly #onAbort = (): void => {
    this.#detach();
    this.#settle(this.#signal!.reason instanceof Error ? this.#signal!.reason : new Error('aborted'));
    this.#wakeUp();
  };

  /** The error next() throws in the state the stream ended in, if it failed. */
  #failure(): Error | undefined {
    switch (this.#state) {
      case 'closed': return new RuntimeClosedError('stream task events');
      case 'failed': return new Error(`task ${this.#taskId}: the event stream failed; see the runtime's log`);
      case 'missing': return new TaskNotFoundError(String(this.#taskId));
      default: return undefined;
    }
  }

  #settle(err?: Error): void {
    const settle = this.#settleOpened;
    this.#settleOpened = undefined;
    settle?.(err);
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

export function toTaskEvent(e: EventRecord): TaskEvent {
  return { taskId: e.taskId, seq: e.seq, type: e.type, data: JSON.parse(e.json) as Record<string, unknown>, at: new Date(e.at) };
}
