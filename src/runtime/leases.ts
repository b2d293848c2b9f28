import type { Logger } from '../logger.js';
import type { EventRecord, Store } from '../store/types.js';
import { recoveryEvents } from '../task/events.js';
import type { ActiveRun } from './run.js';

export interface LeasesDeps {
  readonly store: Store;
  readonly owner: string;
  readonly leaseMs: number;
  readonly sweepIntervalMs: number;
  readonly graceMs: number;
  readonly logger: Logger;
  /** This runtime's runs in progress, by task id. */
  readonly active: ReadonlyMap<number, ActiveRun>;
  /** A cancel recorded in the store reached this process through renewal. */
  readonly cancel: (taskId: number, reason: string) => void;
  /** Events the sweep wrote (recovered runs), to announce. */
  readonly publish: (events: readonly EventRecord[]) => void;
  /** The sweep found or freed work: a claim pass that also looks for delayed work (what a lost announcement missed). */
  readonly sweepClaims: () => void;
  /** Resolves once no claim is in flight (its runs are in `active` by then). */
  readonly claimSettled: () => Promise<void>;
}

/**
 * Leases, both sides. Our runs: renewed every third of the lease in one store call; the answer
 * also carries what the bus may have failed to bring (cancels recorded in the store, signals
 * stored for a run), so renewal is the durable fallback for both. Others' runs: the sweep puts
 * runs whose lease expired (their process died) back to pending, then claims.
 */
export class Leases {
  readonly #d: LeasesDeps;
  #renewTimer: NodeJS.Timeout | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  #sweeping = true;

  constructor(deps: LeasesDeps) {
    this.#d = deps;
  }

  /** Starts the periodic sweep and runs the first one. */
  async start(): Promise<void> {
    this.#sweepTimer = setInterval(() => void this.sweep(), this.#d.sweepIntervalMs);
    this.#sweepTimer.unref();
    await this.sweep();
  }

  /** A run started: keep renewing while any run is active. */
  runStarted(): void {
    this.#renewTimer ??= setInterval(() => void this.renew(), Math.max(10, this.#d.leaseMs / 3));
  }

  /** A run ended: stop renewing once none is left. */
  runEnded(): void {
    if (this.#d.active.size > 0) return;
    clearInterval(this.#renewTimer);
    this.#renewTimer = undefined;
  }

  stopSweeping(): void {
    this.#sweeping = false;
    clearInterval(this.#sweepTimer);
  }

  stopRenewing(): void {
    clearInterval(this.#renewTimer);
    this.#renewTimer = undefined;
  }

  async renew(): Promise<void> {
    const d = this.#d;
    if (d.active.size === 0) return;
    const runs = [...d.active.values()].map((r) => ({ taskId: r.id, epoch: r.epoch }));
    try {
      const { lost, cancelRequested, signals } = await d.store.renewLeases(d.owner, runs, d.leaseMs, Date.now());
      for (const taskId of lost) d.active.get(taskId)?.abort('lease_lost', 'lease lost', d.graceMs);
      for (const { taskId, reason } of cancelRequested) d.cancel(taskId, reason);
      // A waiting run re-reads the store when woken; one that is not waiting ignores this.
      for (const { taskId, names } of signals) for (const name of names) d.active.get(taskId)?.notifySignal(name);
    } catch (err) {
      d.logger.error({ err }, 'taskstream: renewing leases failed');
    }
  }

  async sweep(): Promise<void> {
    const d = this.#d;
    if (!this.#sweeping) return;
    try {
      // Our own runs are alive even if a stalled event loop let their lease lapse: never recover
      // them here. That includes what a claim in flight took, once it has arrived.
      await d.claimSettled();
      const events = await d.store.recoverExpired(Date.now(), [...d.active.keys()], recoveryEvents);
      d.publish(events);
    } catch (err) {
      d.logger.error({ err }, 'taskstream: recovering expired runs failed');
    }
    d.sweepClaims();
  }
}
