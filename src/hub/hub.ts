import type { Bus } from '../bus/types.js';
import type { EventRecord, Store } from '../store/types.js';
import { TERMINAL_STATUSES } from '../store/types.js';
import { TERMINAL_EVENTS } from '../task/names.js';

/**
 * Where a watcher gets its events: anything that can take events one by one. `event` returns false
 * when the sink's bounded buffer is full; the hub then detaches it with `end('overflow')` and the
 * sink resumes from the store by seq (the SSE sink closes the response; the client reconnects with
 * Last-Event-ID).
 */
export interface Sink {
  event(event: EventRecord): boolean;
  end(reason: EndReason): void;
}
export type EndReason = 'terminal' | 'overflow' | 'closed' | 'error';

interface Watcher {
  readonly sink: Sink;
  /** Highest seq handed to the sink. */
  cursor: number;
  /** While replaying from the store, live events wait here (bounded; overflow forces another read). */
  pending: EventRecord[] | null;
  lostPending: boolean;
  done: boolean;
}

interface Entry {
  readonly watchers: Set<Watcher>;
  /** Settles once the bus subscription is live; a watcher reads the store only after that. */
  readonly live: Promise<void>;
  unsubscribe: (() => void) | undefined;
  removed: boolean;
}

const REPLAY_PAGE = 1000;
const MAX_PENDING = 10_000;

/**
 * Per-process fan-out. One bus subscription per watched task, however many watchers it has; every
 * watcher of a task gets the same event objects.
 *
 * Hand-over (no gap, no duplicate): a watcher subscribes first, then reads the log after its
 * cursor, parking live events meanwhile; then it takes the parked events above its cursor. A live
 * event that skips ahead of the cursor (possible when the bus ran ahead of a read) sends the
 * watcher back to the store for the missing range. Events are stored before they are published,
 * so the store always has what the bus announced.
 */
export class Hub {
  readonly #entries = new Map<number, Entry>();
  readonly #store: Store;
  readonly #bus: Bus;
  readonly #onError: (err: unknown) => void;
  #closed = false;

  constructor(store: Store, bus: Bus, onError: (err: unknown) => void) {
    this.#store = store;
    this.#bus = bus;
    this.#onError = onError;
  }

  /** Number of attached watchers, across tasks. */
  get size(): number {
    let n = 0;
    for (const entry of this.#entries.values()) n += entry.watchers.size;
    return n;
  }

  /** Attaches a sink to a task's log after `afterSeq`; returns a detach function (idempotent). */
  attach(taskId: number, afterSeq: number, sink: Sink): () => void {
    if (this.#closed) {
      sink.end('closed');
      return () => {};
    }
    const entry = this.#entries.get(taskId) ?? this.#subscribe(taskId);
    const watcher: Watcher = { sink, cursor: afterSeq, pending: [], lostPending: false, done: false };
    entry.watchers.add(watcher);
    void this.#catchUp(taskId, watcher, entry.live);
    return () => this.#detach(taskId, watcher);
  }

  #subscribe(taskId: number): Entry {
    const entry: Entry = { watchers: new Set(), live: Promise.resolve(), unsubscribe: undefined, removed: false };
    (entry as { live: Promise<void> }).live = this.#bus.subscribeEvents(taskId, (events) => this.#onLive(taskId, events)).then((unsubscribe) => {
      // Every watcher left while SUBSCRIBE was in flight: let go of it at once.
      if (entry.removed) unsubscribe();
      else entry.unsubscribe = unsubscribe;
    });
    this.#entries.set(taskId, entry);
    return entry;
  }

  /** Ends every watcher (shutdown): each has had every event stored and published so far. */
  close(): void {
    this.#closed = true;
    for (const [taskId, entry] of this.#entries) {
      for (const watcher of entry.watchers) this.#finish(taskId, watcher, 'closed');
    }
  }

  #onLive(taskId: number, events: readonly EventRecord[]): void {
    const entry = this.#entries.get(taskId);
    if (entry === undefined) return;
    for (const watcher of entry.watchers) {
      if (watcher.pending !== null) {
        if (watcher.pending.length + events.length > MAX_PENDING) {
          watcher.pending.length = 0;
          watcher.lostPending = true;
        } else {
          for (const e of events) watcher.pending.push(e);
        }
        continue;
      }
      for (const e of events) {
        if (watcher.done) break;
        if (e.seq <= watcher.cursor) continue;
        if (e.seq > watcher.cursor + 1) {
          watcher.pending = [];
          void this.#catchUp(taskId, watcher);
          break;
        }
        this.#deliver(taskId, watcher, e);
      }
    }
  }

  async #catchUp(taskId: number, watcher: Watcher, live?: Promise<void>): Promise<void> {
    try {
      await live;
      for (;;) {
        const page = await this.#store.readEvents(taskId, watcher.cursor, { limit: REPLAY_PAGE });
        if (watcher.done) return;
        const rows = page?.events ?? [];
        if (rows.length === 0 && (await this.#endedBy(taskId, watcher.cursor))) {
          // Attached at or past a finished task's last event (a reconnect after `complete`):
          // nothing will ever be published again, so end now instead of waiting forever.
          this.#finish(taskId, watcher, 'terminal');
          return;
        }
        for (const e of rows) {
          if (e.seq !== watcher.cursor + 1) continue;
          if (!this.#deliver(taskId, watcher, e)) return;
        }
        if (rows.length === REPLAY_PAGE) continue;
        const parked = watcher.pending ?? [];
        const lost = watcher.lostPending;
        watcher.lostPending = false;
        const ahead = parked.filter((e) => e.seq > watcher.cursor);
        if (lost || (ahead.length > 0 && ahead[0]!.seq !== watcher.cursor + 1)) {
          watcher.pending = [];
          continue;
        }
        watcher.pending = null;
        for (const e of ahead) {
          if (e.seq !== watcher.cursor + 1) continue;
          if (!this.#deliver(taskId, watcher, e)) return;
        }
        return;
      }
    } catch (err) {
      this.#onError(err);
      this.#finish(taskId, watcher, 'error');
    }
  }

  /**
   * Whether the task is finished with no event after `cursor`. The terminal event is written in the
   * same transaction as the status, so a finished task's log is complete up to its `lastSeq`.
   */
  async #endedBy(taskId: number, cursor: number): Promise<boolean> {
    const task = await this.#store.getTask(taskId);
    return task !== undefined && TERMINAL_STATUSES.has(task.status) && task.lastSeq <= cursor;
  }

  /** Hands one event over; returns false once the watcher is done (terminal, overflow). */
  #deliver(taskId: number, watcher: Watcher, event: EventRecord): boolean {
    watcher.cursor = event.seq;
    let accepted: boolean;
    try {
      accepted = watcher.sink.event(event);
    } catch (err) {
      this.#onError(err);
      this.#finish(taskId, watcher, 'error');
      return false;
    }
    if (!accepted) {
      this.#finish(taskId, watcher, 'overflow');
      return false;
    }
    if (TERMINAL_EVENTS.has(event.type)) {
      this.#finish(taskId, watcher, 'terminal');
      return false;
    }
    return true;
  }

  #finish(taskId: number, watcher: Watcher, reason: EndReason): void {
    if (watcher.done) return;
    this.#detach(taskId, watcher);
    try {
      watcher.sink.end(reason);
    } catch (err) {
      this.#onError(err);
    }
  }

  #detach(taskId: number, watcher: Watcher): void {
    watcher.done = true;
    const entry = this.#entries.get(taskId);
    if (entry === undefined || !entry.watchers.delete(watcher)) return;
    if (entry.watchers.size === 0) {
      entry.removed = true;
      entry.unsubscribe?.();
      this.#entries.delete(taskId);
    }
  }
}
