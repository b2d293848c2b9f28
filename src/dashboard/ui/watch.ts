/**
 * Live watches of tasks, shared between the views: the task list and the task view watching the
 * same task use one stream. Browsers allow about six HTTP/1.1 connections per origin and every
 * stream holds one, so the page keeps the number of watches small (see MAX_LIST_WATCHES in
 * list.ts) and releases a watch as soon as no view needs it.
 */
import type { Backend } from './api.js';
import { describeError } from './api.js';
import type { LinkState, StreamEvent, TaskJson, TaskRef } from './model.js';
import { isTerminal, keyOf, progressOf, statusAfter, TERMINAL_EVENTS } from './model.js';

export type WatchListener = (watch: TaskWatch, fresh: readonly StreamEvent[]) => void;

/** Events a watch keeps (the newest); a task's whole log stays on the server, replayable. */
const MAX_KEPT_EVENTS = 5000;

/** One task followed live: its task JSON, its event log so far, its progress and its link state. */
export class TaskWatch {
  readonly ref: TaskRef;
  task: TaskJson | undefined;
  readonly events: StreamEvent[] = [];
  status = 'pending';
  /** The last fraction done that an event reported; undefined when none did. */
  progress: number | undefined;
  link: LinkState = 'connecting';
  /** Why the watch stopped, when it could not follow the task. */
  failure: string | undefined;
  readonly #backend: Backend;
  readonly #abort = new AbortController();
  readonly #listeners = new Set<WatchListener>();
  readonly #onLink: () => void;
  #pending: StreamEvent[] = [];
  #scheduled = false;
  users = 0;

  constructor(backend: Backend, ref: TaskRef, onLink: () => void) {
    this.#backend = backend;
    this.ref = ref;
    this.#onLink = onLink;
  }

  #lastSeq = 0;

  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Calls `listener` now with everything so far, then with each batch of new events. */
  listen(listener: WatchListener): () => void {
    this.#listeners.add(listener);
    listener(this, this.events);
    return () => this.#listeners.delete(listener);
  }

  start(): void {
    void this.#run();
  }

  stop(): void {
    this.#abort.abort();
    this.#listeners.clear();
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    try {
      this.#setTask(await this.#backend.get(this.ref));
      for await (const event of this.#backend.stream(this.ref, { afterSeq: this.lastSeq, signal, onState: (s) => this.#setLink(s) })) {
        if (event.seq <= this.lastSeq) continue; // never show a duplicate, whatever the transport does
        this.#apply(event);
      }
      if (signal.aborted) return;
      this.#setLink('ended');
      // The terminal event carries the outcome; the task JSON adds the times and the stored value.
      this.#setTask(await this.#backend.get(this.ref));
    } catch (err) {
      if (signal.aborted) return;
      this.failure = describeError(err).join('\n');
      this.#setLink('failed');
    }
  }

  #setTask(task: TaskJson): void {
    this.task = task;
    // Events already seen may be newer than this snapshot; the stream's word wins until it ends.
    if (isTerminal(task.status) || this.events.length === 0) this.status = task.status;
    if (task.status === 'completed') this.progress = 1;
    this.#schedule();
  }

  #setLink(state: LinkState): void {
    if (this.link === state) return;
    this.link = state;
    this.#onLink();
    this.#schedule();
  }

  #apply(event: StreamEvent): void {
    this.#lastSeq = event.seq;
    this.events.push(event);
    if (this.events.length > MAX_KEPT_EVENTS * 1.2) this.events.splice(0, this.events.length - MAX_KEPT_EVENTS);
    this.#pending.push(event);
    this.status = statusAfter(this.status, event);
    const fraction = progressOf(event.data);
    if (fraction !== undefined) this.progress = fraction;
    if (TERMINAL_EVENTS[event.type] === 'completed') this.progress = 1;
    this.#schedule();
  }

  /** Listeners hear at most once per frame, however fast events arrive. */
  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    const flush = (): void => {
      this.#scheduled = false;
      const fresh = this.#pending;
      this.#pending = [];
      for (const listener of this.#listeners) listener(this, fresh);
    };
    if (document.visibilityState === 'visible') requestAnimationFrame(flush);
    else setTimeout(flush, 250);
  }
}

/** The page's watches, by task, counted by how many views use each. */
export class Watches {
  readonly #backend: Backend;
  readonly #byKey = new Map<string, TaskWatch>();
  readonly #onLink: () => void;

  constructor(backend: Backend, onLink: () => void) {
    this.#backend = backend;
    this.#onLink = onLink;
  }

  acquire(ref: TaskRef): TaskWatch {
    const key = keyOf(ref);
    let watch = this.#byKey.get(key);
    if (!watch) {
      watch = new TaskWatch(this.#backend, ref, this.#onLink);
      this.#byKey.set(key, watch);
      watch.start();
    }
    watch.users++;
    return watch;
  }

  release(watch: TaskWatch): void {
    watch.users--;
    if (watch.users > 0) return;
    watch.stop();
    this.#byKey.delete(keyOf(watch.ref));
    this.#onLink();
  }

  get(ref: TaskRef): TaskWatch | undefined {
    return this.#byKey.get(keyOf(ref));
  }

  /** The worst link state among open watches: what the connection indicator shows. */
  linkSummary(): 'live' | 'reconnecting' | 'idle' {
    let any = false;
    for (const watch of this.#byKey.values()) {
      if (watch.link === 'reconnecting') return 'reconnecting';
      if (watch.link === 'live' || watch.link === 'connecting') any = true;
    }
    return any ? 'live' : 'idle';
  }
}
