import type { Logger } from '../logger.js';
import type { ClaimedRun, Store } from '../store/types.js';
import { MAX_TIMER_MS } from '../task/define.js';

export interface SchedulerDeps {
  readonly store: Store;
  readonly owner: string;
  readonly kinds: readonly string[];
  readonly leaseMs: number;
  readonly logger: Logger;
  /** Free run slots now. */
  readonly free: () => number;
  /** Starts a claimed run (only called while the scheduler is running). */
  readonly start: (claim: ClaimedRun) => void;
}

/**
 * Claims work: as many runnable tasks as there are free slots, whenever told (a create, a `wake`
 * command, a run ending, the sweep) and when the earliest delayed task comes due.
 *
 * Cost: the calls of one tick fold into one claim pass (many runs end in the same tick, when their
 * outcomes commit together). The store is asked for the earliest delayed task only on a sweep:
 * a delayed create or a retry says when it comes due (`wakeIn`, here and through its `wake`), and
 * the sweep finds what a lost announcement missed.
 *
 * State: running → stopped (by `stop()`). A claim in flight when `stop()` is called is waited
 * for, and whatever it returns is given back to the store (pending again, attempt as before)
 * instead of being started: nothing starts task code once shutdown began.
 */
export class Scheduler {
  readonly #deps: SchedulerDeps;
  #loop: Promise<void> | undefined;
  #again = false;
  #soon: NodeJS.Immediate | undefined;
  /** A sweep asked for the earliest delayed task; looked up once a pass leaves slots free. */
  #lookAhead = false;
  #stopped = false;
  #wakeTimer: NodeJS.Timeout | undefined;
  #wakeAt = Infinity;
  /** The claim in flight; settles once what it claimed has started (or been given back). */
  #claiming: Promise<void> | undefined;

  constructor(deps: SchedulerDeps) {
    this.#deps = deps;
  }

  /** Claims what fits, in the next claim pass; the calls of one tick, and re-entrant ones, fold into one pass. */
  schedule(): void {
    // A runtime with no task types (one that only creates and watches) has nothing to claim.
    if (this.#stopped || this.#deps.kinds.length === 0 || this.#soon !== undefined) return;
    this.#soon = setImmediate(() => {
      this.#soon = undefined;
      if (this.#loop !== undefined) {
        this.#again = true;
        return;
      }
      this.#loop = this.#claimLoop().finally(() => {
        this.#loop = undefined;
      });
    });
  }

  /** A claim pass that also looks up the earliest delayed task (what a lost `wake` did not announce). */
  sweep(): void {
    this.#lookAhead = true;
    this.schedule();
  }

  /** A delayed task comes due in `ms`: claim then. */
  wakeIn(ms: number): void {
    if (this.#stopped || this.#deps.kinds.length === 0) return;
    if (ms <= 0) {
      this.schedule();
      return;
    }
    const at = Date.now() + ms;
    if (at >= this.#wakeAt) return;
    clearTimeout(this.#wakeTimer);
    this.#wakeAt = at;
    // A due time beyond a timer's range wakes early, finds nothing due, and re-arms at the next
    // sweep. A timer may fire up to a millisecond early, and the store's clock decides: 1 ms more,
    // so that the claim finds the task due instead of looking again and again.
    this.#wakeTimer = setTimeout(() => {
      this.#wakeAt = Infinity;
      this.sweep();
    }, Math.min(MAX_TIMER_MS, Math.ceil(ms) + 1));
  }

  /**
   * Resolves once no claim is in flight: its rows are running under this owner in the store
   * before this process knows them, and a sweep in that window would take them for a dead
   * owner's whose lease expired (a claim reply slower than the lease).
   */
  async claimSettled(): Promise<void> {
    while (this.#claiming !== undefined) {
      const claiming = this.#claiming;
      await claiming;
      if (this.#claiming === claiming) this.#claiming = undefined;
    }
  }

  /** Stops claiming; resolves once a claim in flight has settled and what it claimed was given back. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#wakeTimer);
    clearImmediate(this.#soon);
    this.#soon = undefined;
    await this.#loop;
  }

  async #claimLoop(): Promise<void> {
    const d = this.#deps;
    try {
      do {
        this.#again = false;
        for (;;) {
          const free = d.free();
          if (free <= 0 || this.#stopped) break;
          let settle!: () => void;
          this.#claiming = new Promise((resolve) => (settle = resolve));
          let claims: ClaimedRun[];
          try {
            claims = await d.store.claimTasks({ owner: d.owner, kinds: d.kinds, limit: free, leaseMs: d.leaseMs, now: Date.now() });
            if (this.#stopped) {
              await this.#giveBack(claims);
              return;
            }
            for (const claim of claims) d.start(claim);
          } finally {
            settle();
          }
          if (claims.length < free) {
            if (this.#lookAhead) {
              this.#lookAhead = false;
              await this.#lookUpNextRun();
            }
            break;
          }
        }
      } while (this.#again && !this.#stopped);
    } catch (err) {
      d.logger.error({ err }, 'taskstream: claiming tasks failed');
    }
  }

  async #giveBack(claims: readonly ClaimedRun[]): Promise<void> {
    if (claims.length === 0) return;
    const runs = claims.map((c) => ({ taskId: c.task.id, epoch: c.epoch }));
    try {
      await this.#deps.store.releaseRuns(runs);
    } catch (err) {
      // Not fatal: their leases expire and another process recovers them.
      this.#deps.logger.warn({ err, tasks: runs.map((r) => r.taskId) }, 'taskstream: giving back claims after shutdown failed');
    }
  }

  /** Arms the wake timer for the earliest delayed task (a retry's backoff, a `runAt`) the store knows of. */
  async #lookUpNextRun(): Promise<void> {
    const delay = await this.#deps.store.nextRunDelay(this.#deps.kinds, Date.now());
    if (delay !== null) this.wakeIn(delay);
  }
}
