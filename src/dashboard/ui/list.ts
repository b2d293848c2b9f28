/**
 * The recent-tasks table. Rows are kept across refreshes (updated in place, so nothing flickers),
 * and the newest few unfinished tasks are watched live so their progress bars move; older
 * unfinished ones show their status until a refresh or until they rise into the watched few.
 */
import { ago, byId, duration, h, progressBar, statusBadge } from './dom.js';
import type { TaskJson } from './model.js';
import { isTerminal, keyOf } from './model.js';
import type { TaskWatch, Watches } from './watch.js';

/** Live streams the list may hold: with the task view's one, this leaves connections for API calls. */
export const MAX_LIST_WATCHES = 3;

/** Finished tasks with longer logs than this show no progress in the list rather than replay it all. */
const BACKFILL_MAX_EVENTS = 2000;

interface Row {
  readonly tr: HTMLTableRowElement;
  readonly status: HTMLTableCellElement;
  readonly bar: ReturnType<typeof progressBar>;
  readonly label: HTMLSpanElement;
  readonly created: HTMLTableCellElement;
  readonly took: HTMLTableCellElement;
  task: TaskJson;
  /** The last progress seen for this task, kept when its watch is released. */
  progress: number | undefined;
  /** A finished task's progress was (or is being) read from its log once. */
  backfilled: boolean;
  watch: TaskWatch | undefined;
  unlisten: (() => void) | undefined;
}

export class TaskList {
  readonly #body = byId<HTMLTableSectionElement>('task-rows');
  readonly #empty = byId('task-empty');
  readonly #count = byId('tasks-count');
  readonly #rows = new Map<string, Row>();
  readonly #watches: Watches;
  readonly #onFinished: () => void;
  #selected = '';
  #backfilling = false;

  constructor(watches: Watches, onFinished: () => void) {
    this.#watches = watches;
    this.#onFinished = onFinished;
  }

  /** Shows `tasks` (newest first), reusing the rows already on the page. */
  render(tasks: readonly TaskJson[]): void {
    const keep = new Set(tasks.map(keyOf));
    for (const [key, row] of this.#rows) {
      if (keep.has(key)) continue;
      this.#unwatch(row);
      row.tr.remove();
      this.#rows.delete(key);
    }
    let live = 0;
    tasks.forEach((task, index) => {
      const key = keyOf(task);
      let row = this.#rows.get(key);
      if (!row) {
        row = this.#row(task);
        this.#rows.set(key, row);
      }
      // A watch's task is at least as new as the list's copy while it streams.
      if (!row.watch || isTerminal(task.status)) row.task = task;
      if (this.#body.children[index] !== row.tr) this.#body.insertBefore(row.tr, this.#body.children[index] ?? null);
      const wanted = !isTerminal(row.task.status) && live < MAX_LIST_WATCHES;
      if (wanted) live++;
      if (wanted && !row.watch) this.#watch(row);
      if (!wanted && row.watch) this.#unwatch(row);
      this.#paint(row);
    });
    this.#backfillNext();
    this.#empty.hidden = tasks.length > 0;
    // The app prefix only tells rows apart when there is more than one app.
    this.#body.classList.toggle('one-app', new Set(tasks.map((t) => t.app)).size <= 1);
    const running = tasks.filter((t) => t.status === 'running').length;
    const pending = tasks.filter((t) => t.status === 'pending').length;
    this.#count.textContent = [running > 0 ? `${running} running` : '', pending > 0 ? `${pending} pending` : ''].filter(Boolean).join(' · ');
  }

  /** Highlights the task open in the task view. */
  select(key: string): void {
    this.#rows.get(this.#selected)?.tr.classList.remove('selected');
    this.#selected = key;
    this.#rows.get(key)?.tr.classList.add('selected');
  }

  /** Repaints the relative times ("12 s ago"). */
  tick(): void {
    for (const row of this.#rows.values()) this.#paintTimes(row);
  }

  #row(task: TaskJson): Row {
    const bar = progressBar();
    const label = h('span', { class: 'pct' });
    const status = h('td');
    const created = h('td', { class: 'muted' });
    const took = h('td', { class: 'muted num' });
    const href = `#/tasks/${keyOf(task)}`;
    const tr = h(
      'tr',
      { 'data-task': keyOf(task), 'data-id': task.id },
      h('td', { class: 'num' }, h('a', { href }, `#${task.id}`)),
      h('td', {}, h('a', { href, class: 'kind', title: `${task.app}/${task.type}` }, h('span', { class: 'muted app' }, `${task.app} / `), task.type)),
      status,
      h('td', {}, h('div', { class: 'progress-cell' }, bar.el, label)),
      created,
      took,
    );
    tr.addEventListener('click', (e) => {
      if (!(e.target instanceof HTMLAnchorElement)) location.hash = href;
    });
    return { tr, status, bar, label, created, took, task, progress: task.status === 'completed' ? 1 : undefined, backfilled: false, watch: undefined, unlisten: undefined };
  }

  #watch(row: Row): void {
    const watch = this.#watches.acquire(row.task);
    row.watch = watch;
    row.unlisten = watch.listen((w) => {
      if (w.task && (isTerminal(w.task.status) || w.task.last_seq >= row.task.last_seq)) row.task = w.task;
      if (w.progress !== undefined) row.progress = w.progress;
      this.#paint(row);
      if (w.link === 'ended' && w.task && isTerminal(w.task.status)) this.#onFinished();
    });
  }

  /**
   * A task that ended before this page watched it (a reload, another tab) shows the progress its
   * log last reported, as it did live: its log is replayed once, one task at a time (a stream is a
   * connection, and the browser has few), and only for logs of at most BACKFILL_MAX_EVENTS.
   */
  #backfillNext(): void {
    if (this.#backfilling) return;
    const row = [...this.#rows.values()].find((r) => !r.backfilled && !r.watch && r.progress === undefined
      && isTerminal(r.task.status) && r.task.last_seq > 0 && r.task.last_seq <= BACKFILL_MAX_EVENTS);
    if (!row) return;
    row.backfilled = true;
    this.#backfilling = true;
    const watch = this.#watches.acquire(row.task);
    const unlisten = watch.listen((w) => {
      if (w.progress !== undefined) row.progress = w.progress;
      if (w.link !== 'ended' && w.link !== 'failed') return;
      queueMicrotask(() => {
        unlisten();
        this.#watches.release(watch);
        this.#backfilling = false;
        if (this.#rows.get(keyOf(row.task)) === row) this.#paint(row);
        this.#backfillNext();
      });
    });
  }

  #unwatch(row: Row): void {
    row.unlisten?.();
    if (row.watch) this.#watches.release(row.watch);
    row.watch = undefined;
    row.unlisten = undefined;
  }

  #paint(row: Row): void {
    const status = row.watch?.status ?? row.task.status;
    if (row.status.firstElementChild?.getAttribute('data-status') !== status) row.status.replaceChildren(statusBadge(status));
    const fraction = status === 'completed' ? 1 : row.progress;
    // A task that ended before this page saw any of its progress has none to show.
    row.bar.el.hidden = fraction === undefined && isTerminal(status);
    row.bar.set(fraction ?? (status === 'running' ? undefined : 0), status);
    row.label.textContent = fraction === undefined ? (row.bar.el.hidden ? '—' : '') : `${Math.round(fraction * 100)}%`;
    this.#paintTimes(row);
  }

  #paintTimes(row: Row): void {
    row.created.textContent = ago(row.task.created_at);
    row.created.title = new Date(row.task.created_at).toLocaleString();
    row.took.textContent = duration(row.task.started_at, row.task.finished_at);
  }
}
