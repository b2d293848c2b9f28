import type { Logger } from '../logger.js';
import type { Store } from '../store/types.js';

/**
 * Retention while a task runs, off the send path. The writer reports each stored batch's last seq
 * (a map update, O(1) per task per batch); once a task's log is `slack` events past what it should
 * keep, the task is due, and one timer at most every `intervalMs` trims every due task in the
 * background. Between trims a running task's log holds up to `keep + slack` events; the terminal
 * write prunes to exactly `keep` in its own transaction (FinishRun.retainEvents), so a finished
 * task never holds more.
 *
 * Cost: one DELETE per due task per interval, deleting `slack` or more rows at once, so the
 * per-statement cost is spread over many events.
 */
export class Pruner {
  readonly #store: Store;
  readonly #logger: Logger;
  readonly #intervalMs: number;
  /** Per running task: the seq retention has trimmed below (its first_seq - 1, as far as we know). */
  readonly #trimmed = new Map<number, number>();
  /** Tasks to trim at the next run: how many to keep, and the last seq known stored. */
  readonly #due = new Map<number, { keep: number; last: number }>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(store: Store, logger: Logger, intervalMs = 100) {
    this.#store = store;
    this.#logger = logger;
    this.#intervalMs = intervalMs;
  }

  /** A batch of the task's events is stored up to `lastSeq`; it keeps its `keep` newest. */
  stored(taskId: number, lastSeq: number, keep: number): void {
    const below = lastSeq - keep; // trimming now would delete every seq <= below
    const trimmed = this.#trimmed.get(taskId);
    if (trimmed === undefined) this.#trimmed.set(taskId, 0);
    if (below - (trimmed ?? 0) < slack(keep)) return;
    this.#due.set(taskId, { keep, last: lastSeq });
    this.#schedule();
  }

  /** Trims the task soon whatever its slack (a terminal event written without its own prune). */
  trimSoon(taskId: number, keep: number): void {
    this.#due.set(taskId, { keep, last: 0 });
    this.#schedule();
  }

  /** The task's run ended: forget it (its terminal write pruned it). */
  forget(taskId: number): void {
    this.#trimmed.delete(taskId);
  }

  /** Stops the timer and waits for a trim in progress; what is still due is left for the terminal writes. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#due.clear();
    await this.#running;
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#running.then(() => this.#run());
    }, this.#intervalMs);
    this.#timer.unref();
  }

  async #run(): Promise<void> {
    const due = [...this.#due];
    this.#due.clear();
    for (const [taskId, { keep, last }] of due) {
      if (this.#closed) return;
      try {
        await this.#store.trimEvents(taskId, keep);
        // The store trimmed below its own last seq, which is at least `last`: an underestimate
        // here only makes the next trim come a little early.
        const trimmed = this.#trimmed.get(taskId);
        if (trimmed !== undefined) this.#trimmed.set(taskId, Math.max(trimmed, last - keep)); // unless forgotten meanwhile
      } catch (err) {
        this.#logger.warn({ err, taskId }, 'taskstream: pruning old events failed; retrying after the next batch');
      }
    }
  }
}

/** How far past `keep` a running task's log may grow before it is trimmed: a tenth, at least 1, at most 1000. */
function slack(keep: number): number {
  return Math.min(1000, Math.max(1, Math.floor(keep / 10)));
}
