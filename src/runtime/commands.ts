import type { Bus, Command } from '../bus/types.js';
import type { EventRecord } from '../store/types.js';
import type { ActiveRun } from './run.js';

export interface CommandsDeps {
  readonly bus: Bus;
  readonly active: ReadonlyMap<number, ActiveRun>;
  /** The grace a run of this task type gets after a cancel before it is abandoned. */
  readonly graceFor: (run: ActiveRun) => number;
  readonly schedule: () => void;
  readonly wakeIn: (ms: number) => void;
  readonly onError: (err: unknown, what: string) => void;
}

/**
 * What reaches a runtime from elsewhere, and what it tells others. Every command was written to
 * the store before it was announced (the bus only hurries it): `wake` claims, `cancel` aborts the
 * run here if it runs here, `signal` wakes its `waitForSignal`. Publishing never throws into the
 * caller: a lost announcement costs latency (renewal and the sweep are the fallbacks), never work.
 */
export class Commands {
  readonly #d: CommandsDeps;
  #stopped = false;
  /** A `wake` is due to go out at the end of this tick. */
  #waking = false;

  constructor(deps: CommandsDeps) {
    this.#d = deps;
  }

  handle(command: Command): void {
    if (this.#stopped) return;
    switch (command.kind) {
      case 'wake':
        if (command.inMs === undefined) this.#d.schedule();
        else this.#d.wakeIn(command.inMs);
        break;
      case 'cancel': this.cancelLocal(command.taskId, command.reason); break;
      case 'signal': this.#d.active.get(command.taskId)?.notifySignal(command.name); break;
    }
  }

  /** Aborts the run of `taskId` if it runs in this runtime. */
  cancelLocal(taskId: number, reason: string): void {
    const run = this.#d.active.get(taskId);
    if (run !== undefined) run.abort('cancel', reason, this.#d.graceFor(run));
  }

  /**
   * Tells every scheduler that work is runnable now: one `wake` per tick, however many creates
   * asked in it (a tick's creates commit together and resolve together). Sent at `setImmediate`,
   * when this process's own claim pass for them starts: every process, this one too, receives
   * one message instead of one per task. A wake that is lost is still covered by the sweep.
   */
  wake(): void {
    if (this.#waking) return;
    this.#waking = true;
    setImmediate(() => this.#sendWake());
  }

  #sendWake(): void {
    if (!this.#waking) return; // sent already, by stop()
    this.#waking = false;
    this.announce({ kind: 'wake' });
  }

  announce(command: Command): void {
    try {
      this.#d.bus.publishCommand(command);
    } catch (err) {
      this.#d.onError(err, 'publishing a command failed');
    }
  }

  publish(taskId: number, events: readonly EventRecord[]): void {
    if (events.length === 0) return;
    try {
      this.#d.bus.publishEvents(taskId, events);
    } catch (err) {
      this.#d.onError(err, 'publishing events failed');
    }
  }

  /** Stops handling commands; a wake still due goes out now, before the bus closes. */
  stop(): void {
    this.#sendWake();
    this.#stopped = true;
  }
}
