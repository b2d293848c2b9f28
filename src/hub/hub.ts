import type { Bus } from '../bus/types.js';
import type { EventPage, EventRecord, PageLimit, PageRead, Store } from '../store/types.js';
import { TERMINAL_STATUSES } from '../store/types.js';
import { runtimeEvents } from '../task/events.js';
import { TERMINAL_EVENTS } from '../task/names.js';

/**
 * Where a watcher gets its events: anything that can take events one by one.
 *
 * `event` takes the event and returns false when the sink is now full. A sink with `onDrain` is
 * then paused: the hub hands it nothing more until it calls the `resume` it was given, keeps
 * what it already read for it (at most one page), and remembers only the highest seq announced
 * meanwhile, so a paused sink holds no growing queue. A sink without `onDrain` is ended with
 * `overflow` instead, and resumes from the store by seq itself.
 *
 * `shared` is true when other watchers of the task in this process get the same object (a live
 * event from the bus), false when it was read from the store for this sink alone: a sink that
 * caches work per event object (the SSE frame) gains nothing by caching a private one.
 */
export interface Sink {
  event(event: EventRecord, shared: boolean): boolean;
  /**
   * Optional: takes a whole live batch (shared, consecutive seqs, right after the sink's cursor, no
   * terminal event) at once, when that is cheaper than one `event` call each (one socket write for
   * the batch). Returns as `event` does, or undefined when it took nothing: the hub then hands the
   * events over one by one.
   */
  events?(events: readonly EventRecord[]): boolean | undefined;
  end(reason: EndReason): void;
  onDrain?(resume: () => void): void;
  /**
   * Called once, when the watcher's first store read found the task (before any event of it is
   * handed over); a task that does not exist ends the sink with `missing` instead. A sink needs no
   * lookup of its own to tell a bad id from a quiet task.
   */
  opened?(): void;
}
export type EndReason = 'terminal' | 'overflow' | 'closed' | 'error' | 'missing';

export interface HubOptions {
  /** Rows per history read. Default 1000. */
  readonly pageRows?: number;
  /** Bytes of event data per history read (a page holds at least one row). Default 256 KiB. */
  readonly pageBytes?: number;
  /** How often each watched task's stored position is compared with what was delivered. Default 1000 ms. */
  readonly positionCheckMs?: number;
  /**
   * Whether this process runs the task now. With a reliable bus such a task's new events all pass
   * through this process's bus, and any seq they skip is caught by the seq-jump check, so the
   * position check skips it.
   */
  readonly runsHere?: (taskId: number) => boolean;
}

type State = 'replay' | 'live' | 'paused' | 'done';

interface Watcher {
  readonly sink: Sink;
  /** Highest seq handed to the sink (or named by a gap). */
  cursor: number;
  state: State;
  /**
   * Read from the store (or the rest of a bus batch) and not handed over yet: at most one page.
   * The watcher's own array: each slot is cleared once handed over, so what the client already
   * has (and its cached frame) is not held for the rest of the page.
   */
  kept: Array<EventRecord | undefined>;
  keptAt: number;
  /** Whether `kept` holds the rest of a bus batch (objects shared with other watchers) rather than a page. */
  keptShared: boolean;
  /** Highest seq known to exist: the last read's `lastSeq`, or what the bus announced since. -1 before the first read. */
  known: number;
  /** Positioned past the end of a running task (a Last-Event-ID beyond its log): its terminal event is still due. */
  beyond: boolean;
  /** A paused watcher reads one page ahead while its sink drains, then waits. */
  prefetched: boolean;
  pumping: boolean;
  /** A store read has found the task (the sink was told). */
  opened: boolean;
}

interface Entry {
  readonly taskId: number;
  readonly watchers: Set<Watcher>;
  /** Resolves true once the bus subscription is live (false if it failed); watchers read the store only after that. */
  readonly live: Promise<boolean>;
  unsubscribe: (() => void) | undefined;
  removed: boolean;
  checking: boolean;
  /** The last bus batch went to the watchers in the reverse order (see #onLive). */
  reverse: boolean;
}


/**
 * One page read for several watchers: each gets its own events array (a watcher clears the slots
 * it has handed over), the event objects themselves are shared.
 */
function share(reads: readonly FirstRead[], page: EventPage | undefined): void {
  for (let k = 0; k < reads.length; k++) reads[k]!.resolve(page === undefined || k === 0 ? page : { ...page, events: page.events.slice() });
}

/** Consecutive seqs and no terminal event: a batch a sink may take in one piece. */
function wholeBatch(events: readonly EventRecord[]): boolean {
  const first = events[0]!.seq;
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    if (e.seq !== first + i || TERMINAL_EVENTS.has(e.type)) return false;
  }
  return true;
}

/** A watcher's state as it is now: calls (a sink's callbacks) and awaits change it behind TypeScript's narrowing. */
function stateOf(w: Watcher): State {
  return w.state;
}

/**
 * Per-process fan-out and replay. One bus subscription per watched task, however many watchers it
 * has; every live watcher of a task gets the same event objects.
 *
 * A watcher is in one of three states:
 * - `replay`: it reads the log after its cursor from the store, a page at a time (bounded in rows
 *   and bytes), and hands each page over. Live events are not queued for it; the hub only notes the
 *   highest seq the bus announced, and the watcher keeps reading until it has reached that.
 * - `live`: the bus's events are handed over as they arrive. A seq that skips ahead (the bus ran
 *   ahead of a read, or lost a message) sends the watcher back to `replay`.
 * - `paused`: its sink is full. What was read for it stays kept (never re-read); while the sink
 *   drains, one page is read ahead, so reading the next page overlaps writing the last.
 * Memory per watcher: at most one page plus its sink's own bounded buffer, whatever the log's size.
 *
 * Hand-over (no gap, no duplicate): subscribe first and wait until the subscription is live, then
 * read. Events are stored before they are published, so whatever the bus announces is in the
 * store by the time a watcher reads it.
 *
 * Position check: a bus may lose messages (at-most-once), and a second process on the same store
 * publishes on a bus this one does not hear. Every `positionCheckMs`, and at once after the bus
 * says it resynced, one store read for the watched tasks (not one per task, nor per watcher)
 * compares each stored last seq with each live watcher's cursor; a watcher behind it goes back to
 * `replay`.
 */
/** Tasks whose positions one read of the position check asks for. */
const CHECK_BATCH = 500;
/** Watchers whose first pages one read asks for (each page bounded as any other). */
const FIRST_BATCH = 100;

interface FirstRead extends PageRead {
  resolve(page: EventPage | undefined): void;
  reject(err: unknown): void;
}

export class Hub {
  readonly #entries = new Map<number, Entry>();
  readonly #store: Store;
  readonly #bus: Bus;
  readonly #onError: (err: unknown) => void;
  readonly #page: PageLimit;
  readonly #checkMs: number;
  readonly #runsHere: (taskId: number) => boolean;
  readonly #offResync: () => void;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** First pages asked for in this tick, read together (see #readFirst). */
  #firstReads: FirstRead[] = [];

  constructor(store: Store, bus: Bus, onError: (err: unknown) => void, options: HubOptions = {}) {
    this.#store = store;
    this.#bus = bus;
    this.#onError = onError;
    this.#page = { limit: options.pageRows ?? 1000, maxBytes: options.pageBytes ?? 256 * 1024 };
    this.#checkMs = options.positionCheckMs ?? 1000;
    this.#runsHere = options.runsHere ?? (() => false);
    this.#offResync = bus.onResync(() => this.checkPositions(true));
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
    const watcher: Watcher = {
      sink, cursor: afterSeq, state: 'replay', kept: [], keptAt: 0, keptShared: false, known: -1, beyond: false, prefetched: false, pumping: false, opened: false,
    };
    entry.watchers.add(watcher);
    void this.#pump(entry, watcher);
    return () => this.#detach(entry, watcher);
  }

  /** Ends every watcher (shutdown): each has had every event stored and published so far. */
  close(): void {
    this.#closed = true;
    this.#offResync();
    clearInterval(this.#timer);
    this.#timer = undefined;
    for (const entry of this.#entries.values()) {
      for (const watcher of entry.watchers) this.#finish(entry, watcher, 'closed');
    }
  }

  /**
   * The position check: one read of the positions of every watched task with a live watcher (in
   * batches of CHECK_BATCH tasks); a watcher whose cursor is
   * behind the stored last seq (a lost bus message, a publisher on another bus) reads the rest
   * from the store. Runs on a timer and after every bus resync (`all`: tasks run here included);
   * callable at any time.
   */
  checkPositions(all = false): void {
    const reliable = this.#bus.delivery === 'reliable' && !all;
    const due: Entry[] = [];
    for (const entry of this.#entries.values()) {
      if (entry.checking || (reliable && this.#runsHere(entry.taskId))) continue;
      for (const w of entry.watchers) {
        if (w.state !== 'live') continue;
        entry.checking = true;
        due.push(entry);
        break;
      }
    }
    for (let i = 0; i < due.length; i += CHECK_BATCH) void this.#check(due.slice(i, i + CHECK_BATCH));
  }

  #subscribe(taskId: number): Entry {
    let resolveLive!: (live: boolean) => void;
    const entry: Entry = {
      taskId, watchers: new Set(), live: new Promise((resolve) => (resolveLive = resolve)),
      unsubscribe: undefined, removed: false, checking: false, reverse: false,
    };
    this.#entries.set(taskId, entry);
    this.#bus.subscribeEvents(taskId, (events) => this.#onLive(entry, events)).then(
      (unsubscribe) => {
        // Every watcher left while SUBSCRIBE was in flight: let go of it at once.
        if (entry.removed) unsubscribe();
        else entry.unsubscribe = unsubscribe;
        resolveLive(true);
      },
      (err: unknown) => {
        // A later attach subscribes afresh; the watchers of this attempt end with an error.
        this.#onError(err);
        if (this.#entries.get(taskId) === entry) this.#entries.delete(taskId);
        entry.removed = true;
        for (const w of entry.watchers) this.#finish(entry, w, 'error');
        resolveLive(false);
      },
    );
    // Not unref'd: a watcher waiting for events another process writes (seen only by this check)
    // keeps the process alive, as a socket would; the timer goes with the last watcher, or close().
    this.#timer ??= setInterval(() => this.checkPositions(), this.#checkMs);
    return entry;
  }

  #onLive(entry: Entry, events: readonly EventRecord[]): void {
    if (events.length === 0) return;
    const top = events[events.length - 1]!.seq;
    // A batch of several events (the publisher ran ahead of a turn) can go to a sink in one piece.
    const first = events.length > 1 && wholeBatch(events) ? events[0]!.seq : -1;
    // Every other batch goes to the watchers in the reverse order: the streams written last in one
    // fan-out (whose client may not have read them yet) are written first in the next.
    entry.reverse = !entry.reverse;
    if (entry.reverse && entry.watchers.size > 1) {
      const watchers = [...entry.watchers];
      for (let i = watchers.length - 1; i >= 0; i--) this.#live(entry, watchers[i]!, events, first, top);
    } else {
      for (const watcher of entry.watchers) this.#live(entry, watcher, events, first, top);
    }
  }

  /** Hands a bus batch to one watcher (`first`: the batch's first seq when a sink may take it whole, else -1; `top`: its last seq). */
  #live(entry: Entry, watcher: Watcher, events: readonly EventRecord[], first: number, top: number): void {
    if (watcher.state !== 'live') {
      if (top > watcher.known) watcher.known = top;
      return;
    }
    if (watcher.cursor === first - 1 && watcher.sink.events !== undefined) {
      const took = this.#giveAll(entry, watcher, events);
      if (took !== undefined) {
        if (!took && stateOf(watcher) === 'paused') {
          // Nothing of the batch is left to keep; read one page ahead while the sink drains.
          this.#drop(watcher);
          if (top > watcher.known) watcher.known = top;
          void this.#pump(entry, watcher);
        }
        return;
      }
    }
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      if (e.seq <= watcher.cursor) {
        // A stream positioned past the end still gets the terminal event, and ends.
        if (watcher.beyond && TERMINAL_EVENTS.has(e.type)) this.#give(entry, watcher, e, true);
        continue;
      }
      if (e.seq > watcher.cursor + 1) {
        this.#toReplay(entry, watcher);
        return;
      }
      if (!this.#give(entry, watcher, e, true)) {
        if (stateOf(watcher) === 'paused') {
          // The rest of this batch is already in memory (shared): keep it rather than read it again.
          watcher.kept = events.slice(i + 1); // the batch array is shared with the other watchers
          watcher.keptAt = 0;
          watcher.keptShared = true;
          if (top > watcher.known) watcher.known = top;
          void this.#pump(entry, watcher);
        }
        return;
      }
    }
  }

  /** Back to the store: the next read (always made) learns the log's position afresh. */
  #toReplay(entry: Entry, watcher: Watcher): void {
    watcher.state = 'replay';
    watcher.known = -1;
    void this.#pump(entry, watcher);
  }

  /**
   * The replay loop of one watcher (one at a time): hand over what is kept, read the next page,
   * go live once the cursor has reached every seq known to exist.
   */
  async #pump(entry: Entry, w: Watcher): Promise<void> {
    if (w.pumping) return;
    w.pumping = true;
    try {
      if (!(await entry.live)) return;
      for (;;) {
        if (w.state === 'done' || w.state === 'live') return;
        if (w.keptAt < w.kept.length) {
          if (w.state === 'paused') return;
          const e = w.kept[w.keptAt]!;
          w.kept[w.keptAt++] = undefined;
          if (w.keptAt === w.kept.length) this.#drop(w);
          if (e.seq === w.cursor + 1) this.#give(entry, w, e, w.keptShared);
          else if (e.seq > w.cursor) this.#drop(w); // not the next one: read on from the cursor instead
          continue;
        }
        if (w.state === 'replay' && w.known >= 0 && w.cursor >= w.known) {
          w.state = 'live';
          return;
        }
        if (w.state === 'paused' && w.prefetched) return;
        const page = w.opened ? await this.#store.readEvents(entry.taskId, w.cursor, this.#page) : await this.#readFirst(entry.taskId, w.cursor);
        if (stateOf(w) === 'done') return;
        if (w.state === 'paused') w.prefetched = true;
        if (page === undefined) {
          this.#finish(entry, w, 'missing');
          return;
        }
        if (!w.opened) {
          w.opened = true;
          w.sink.opened?.();
          if (stateOf(w) === 'done') return;
        }
        if (!(await this.#take(entry, w, page))) return;
      }
    } catch (err) {
      this.#onError(err);
      this.#finish(entry, w, 'error');
    } finally {
      w.pumping = false;
    }
  }

  /**
   * A watcher's first page. The first pages asked for in one tick (the watchers whose bus
   * subscriptions went live together: many streams opened at once, a producer watching every task
   * it creates) are read together: watchers of one task at one cursor share one read, and the
   * other reads go in one statement (`Store.readPages`, at most FIRST_BATCH a statement) instead of
   * one each. A lone read, or a store without `readPages`, is an ordinary `readEvents`.
   */
  #readFirst(taskId: number, afterSeq: number): Promise<EventPage | undefined> {
    return new Promise((resolve, reject) => {
      if (this.#firstReads.length === 0) setImmediate(() => this.#flushFirstReads());
      this.#firstReads.push({ taskId, afterSeq, resolve, reject });
    });
  }

  #flushFirstReads(): void {
    const same = new Map<string, FirstRead[]>();
    for (const r of this.#firstReads) {
      const key = `${r.taskId}:${r.afterSeq}`;
      const list = same.get(key);
      if (list === undefined) same.set(key, [r]);
      else list.push(r);
    }
    this.#firstReads = [];
    const reads = [...same.values()];
    // Reads per statement: a store without readPages reads one page at a time.
    const perStatement = this.#store.readPages === undefined ? 1 : FIRST_BATCH;
    for (let i = 0; i < reads.length; i += perStatement) {
      const batch = reads.slice(i, i + perStatement);
      const done = (pages: ReadonlyArray<EventPage | undefined>): void => batch.forEach((rs, j) => share(rs, pages[j]));
      const fail = (err: unknown): void => batch.forEach((rs) => rs.forEach((r) => r.reject(err)));
      const first = batch[0]![0]!;
      if (batch.length === 1) this.#store.readEvents(first.taskId, first.afterSeq, this.#page).then((page) => done([page]), fail);
      else this.#store.readPages!(batch.map((rs) => rs[0]!), this.#page).then(done, fail);
    }
  }

  /** Takes a page read for `w`: ends a finished log, names a pruned range with a gap, keeps the rest. False once done. */
  async #take(entry: Entry, w: Watcher, page: EventPage): Promise<boolean> {
    const finished = TERMINAL_STATUSES.has(page.status);
    if (page.events.length === 0 && finished && w.cursor >= page.lastSeq) {
      if (w.beyond && w.cursor > page.lastSeq) {
        // Waiting past the end when the task finished: its terminal event is the stream's last frame.
        const last = await this.#store.readEvents(entry.taskId, page.lastSeq - 1, { limit: 1 });
        const terminal = last?.events[0];
        if (terminal !== undefined && w.state !== 'done') this.#give(entry, w, terminal, false);
      }
      // Attached at or past a finished task's last event (a reconnect after `complete`): nothing
      // will ever be published again, so end now instead of waiting forever.
      this.#finish(entry, w, 'terminal');
      return false;
    }
    if (!finished && page.lastSeq < w.cursor) w.beyond = true;
    if (page.lastSeq > w.known) w.known = page.lastSeq;
    w.kept = page.events;
    w.keptAt = 0;
    w.keptShared = false;
    if (page.firstSeq > w.cursor + 1 && page.events.length > 0) {
      // Retention removed events this watcher never had: say so once, then go on from the window.
      const gap = runtimeEvents.gap(w.cursor + 1, page.firstSeq - 1);
      this.#give(entry, w, { taskId: entry.taskId, seq: page.firstSeq - 1, type: gap.type, json: gap.json, at: Date.now() }, false);
    }
    return w.state !== 'done';
  }

  /** One store read for the positions of many watched tasks. */
  async #check(entries: readonly Entry[]): Promise<void> {
    try {
      const positions = await this.#store.readPositions(entries.map((e) => e.taskId));
      for (const entry of entries) {
        const position = positions.get(entry.taskId);
        if (position === undefined || entry.removed) continue;
        const finished = TERMINAL_STATUSES.has(position.status);
        for (const w of entry.watchers) {
          if (w.state === 'live' && (w.cursor < position.lastSeq || finished)) this.#toReplay(entry, w);
        }
      }
    } catch (err) {
      this.#onError(err);
    } finally {
      for (const entry of entries) entry.checking = false;
    }
  }

  /** Hands one event over; returns false once the watcher stops taking (done or paused). */
  #give(entry: Entry, w: Watcher, event: EventRecord, shared: boolean): boolean {
    w.cursor = event.seq;
    let accepted: boolean;
    try {
      accepted = w.sink.event(event, shared);
    } catch (err) {
      this.#onError(err);
      this.#finish(entry, w, 'error');
      return false;
    }
    if (w.state === 'done') return false; // the sink detached itself
    if (TERMINAL_EVENTS.has(event.type)) {
      this.#finish(entry, w, 'terminal');
      return false;
    }
    return accepted || this.#full(entry, w);
  }

  /** The sink is full: paused until it drains, or ended with `overflow` when it cannot say. False. */
  #full(entry: Entry, w: Watcher): false {
    if (w.sink.onDrain === undefined) {
      this.#finish(entry, w, 'overflow');
      return false;
    }
    // Paused: the replay loop (the caller's, or the one onLive starts) reads one page ahead while
    // the sink drains, unless the current page or batch still has events kept.
    w.state = 'paused';
    w.prefetched = false;
    w.sink.onDrain(() => this.#resume(entry, w));
    return false;
  }

  /** Hands a whole batch over (see `Sink.events`): as `#give` for its last event; undefined when the sink took none. */
  #giveAll(entry: Entry, w: Watcher, events: readonly EventRecord[]): boolean | undefined {
    let accepted: boolean | undefined;
    try {
      accepted = w.sink.events!(events);
    } catch (err) {
      this.#onError(err);
      this.#finish(entry, w, 'error');
      return false;
    }
    if (accepted === undefined) return undefined;
    w.cursor = events[events.length - 1]!.seq;
    if (w.state === 'done') return false;
    return accepted || this.#full(entry, w);
  }

  #resume(entry: Entry, w: Watcher): void {
    if (w.state !== 'paused') return;
    w.state = 'replay';
    w.prefetched = false;
    void this.#pump(entry, w);
  }

  #drop(w: Watcher): void {
    w.kept = [];
    w.keptAt = 0;
  }

  #finish(entry: Entry, w: Watcher, reason: EndReason): void {
    if (w.state === 'done') return;
    this.#detach(entry, w);
    try {
      w.sink.end(reason);
    } catch (err) {
      this.#onError(err);
    }
  }

  #detach(entry: Entry, w: Watcher): void {
    w.state = 'done';
    this.#drop(w);
    if (!entry.watchers.delete(w) || entry.watchers.size > 0) return;
    entry.removed = true;
    entry.unsubscribe?.();
    if (this.#entries.get(entry.taskId) === entry) this.#entries.delete(entry.taskId);
    if (this.#entries.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}
