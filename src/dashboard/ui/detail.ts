/**
 * The task view: one task's status, progress, outcome and event log, live. Opening a task replays
 * its whole log from seq 1 and then follows it; the log is appended to, never rebuilt, and at
 * most MAX_LOG_ROWS rows stay in the page so a task with a huge log cannot freeze it.
 */
import type { Backend } from './api.js';
import { describeError } from './api.js';
import { append, byId, clear, clock, duration, h, preview, progressBar, statusBadge } from './dom.js';
import type { StreamEvent, TaskRef } from './model.js';
import { describeCancelReason, isTerminal, keyOf, TERMINAL_EVENTS } from './model.js';
import type { TaskWatch, Watches } from './watch.js';

const MAX_LOG_ROWS = 2000;

const LINK_TEXT = {
  connecting: 'connecting…',
  live: 'live',
  reconnecting: 'connection lost — reconnecting',
  ended: 'finished',
  failed: 'stopped',
} as const;

export class TaskView {
  readonly #backend: Backend;
  readonly #watches: Watches;
  readonly #root = byId('task-view');
  readonly #empty = byId('task-none');
  readonly #title = byId('tv-title');
  readonly #status = byId('tv-status');
  readonly #link = byId('tv-link');
  readonly #cancel = byId<HTMLButtonElement>('tv-cancel');
  readonly #meta = byId('tv-meta');
  readonly #outcome = byId('tv-outcome');
  readonly #input = byId('tv-input');
  readonly #log = byId<HTMLTableSectionElement>('tv-log');
  readonly #logBox = byId('tv-logbox');
  readonly #logNote = byId('tv-lognote');
  readonly #error = byId('tv-error');
  readonly #bar = progressBar();
  #watch: TaskWatch | undefined;
  #unlisten: (() => void) | undefined;

  constructor(backend: Backend, watches: Watches) {
    this.#backend = backend;
    this.#watches = watches;
    byId('tv-progress').append(this.#bar.el);
    // A long event's data shows on one line; a click on its row shows all of it.
    this.#log.addEventListener('click', (e) => {
      if (e.target instanceof Element) e.target.closest('tr')?.classList.toggle('expanded');
    });
    this.#cancel.addEventListener('click', () => void this.#doCancel());
  }

  get current(): TaskRef | undefined {
    return this.#watch?.ref;
  }

  open(ref: TaskRef): void {
    if (this.#watch && keyOf(this.#watch.ref) === keyOf(ref)) return;
    this.close();
    this.#root.hidden = false;
    this.#empty.hidden = true;
    this.#title.replaceChildren(h('span', { class: 'muted' }, `${ref.app} / `), ref.type, h('span', { class: 'muted' }, ` #${ref.id}`));
    clear(this.#log);
    clear(this.#outcome);
    clear(this.#input);
    this.#logNote.hidden = true;
    this.#outcome.hidden = true;
    this.#error.hidden = true;
    this.#watch = this.#watches.acquire(ref);
    this.#unlisten = this.#watch.listen((watch, fresh) => this.#update(watch, fresh));
  }

  close(): void {
    this.#unlisten?.();
    if (this.#watch) this.#watches.release(this.#watch);
    this.#watch = undefined;
    this.#unlisten = undefined;
    this.#root.hidden = true;
    this.#empty.hidden = false;
  }

  /** Repaints the durations of a running task. */
  tick(): void {
    if (this.#watch) this.#paintMeta(this.#watch);
  }

  #update(watch: TaskWatch, fresh: readonly StreamEvent[]): void {
    const status = watch.status;
    // Nothing known about the task yet (loading, or not found): no status, no Cancel.
    const known = watch.task !== undefined || watch.events.length > 0;
    this.#root.dataset.status = status;
    if (!known) this.#status.replaceChildren();
    else if (this.#status.firstElementChild?.getAttribute('data-status') !== status) this.#status.replaceChildren(statusBadge(status));
    this.#bar.el.hidden = !known;
    this.#bar.set(status === 'completed' ? 1 : (watch.progress ?? (status === 'running' ? undefined : 0)), status);
    this.#link.textContent = watch.link === 'failed' ? `stopped: ${watch.failure ?? ''}` : LINK_TEXT[watch.link];
    this.#link.dataset.link = watch.link;
    if (watch.link === 'reconnecting') this.#link.textContent += ` (resumes after #${watch.lastSeq})`;
    this.#cancel.hidden = !known || isTerminal(status);
    this.#paintMeta(watch);
    if (watch.task && !this.#input.hasChildNodes()) this.#input.append(h('pre', {}, preview(watch.task.input, 20_000, 2)));
    this.#appendEvents(fresh);
    this.#paintOutcome(watch);
  }

  #paintMeta(watch: TaskWatch): void {
    const t = watch.task;
    const item = (label: string, value: string): HTMLElement[] => [h('dt', {}, label), h('dd', {}, value)];
    clear(this.#meta);
    append(
      this.#meta,
      ...item('Created', t ? new Date(t.created_at).toLocaleString() : '—'),
      ...item('Run time', t ? duration(t.started_at, t.finished_at ?? (isTerminal(watch.status) ? lastAt(watch) : null)) : '—'),
      ...item('Attempt', t ? String(t.attempt) : '—'),
      ...item('Events', String(watch.lastSeq)),
    );
  }

  #paintOutcome(watch: TaskWatch): void {
    const last = watch.events.at(-1);
    const terminal = last && TERMINAL_EVENTS[last.type] !== undefined ? last : undefined;
    const t = watch.task;
    // Live, the terminal event comes first; after a reload the task JSON does, and its event a
    // moment later: the outcome is painted again then, so both read the same.
    const painted = `${keyOf(watch.ref)}:${t?.finished_at ?? ''}:${terminal?.seq ?? ''}`;
    if (!isTerminal(watch.status) || this.#outcome.dataset.for === painted) return;
    clear(this.#outcome);
    this.#outcome.hidden = false;
    this.#outcome.dataset.for = painted;
    this.#outcome.className = `outcome outcome-${watch.status}`;
    if (watch.status === 'completed') {
      const value = terminal ? terminal.data.final_value : t?.final_value;
      this.#outcome.append(h('h3', {}, 'Result'), h('pre', { id: 'tv-result' }, preview(value, 50_000, 2)));
    } else if (watch.status === 'failed') {
      const message = typeof terminal?.data.message === 'string' ? terminal.data.message : (t?.error?.message ?? 'failed');
      const kind = typeof terminal?.data.error_type === 'string' ? terminal.data.error_type : (t?.error?.type ?? 'Error');
      this.#outcome.append(h('h3', {}, 'Error'), h('pre', { id: 'tv-result' }, `${kind}: ${message}`));
    } else if (watch.status === 'cancelled') {
      const message = typeof terminal?.data.message === 'string' ? terminal.data.message : 'Task was cancelled';
      const reason = terminal ? terminal.data.reason : t?.cancel_reason;
      this.#outcome.append(h('h3', {}, 'Cancelled'), h('pre', { id: 'tv-result' }, `${message} — ${describeCancelReason(reason)}`));
    } else {
      const message = typeof terminal?.data.message === 'string' ? terminal.data.message : 'Task timed out';
      this.#outcome.append(h('h3', {}, 'Timed out'), h('pre', { id: 'tv-result' }, message));
    }
  }

  #appendEvents(fresh: readonly StreamEvent[]): void {
    if (fresh.length === 0) return;
    const box = this.#logBox;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    const rows = document.createDocumentFragment();
    for (const event of fresh.slice(-MAX_LOG_ROWS)) {
      if (event.gap) {
        // Retention pruned these before this page read them: say so, in the log where they were.
        const { fromSeq, toSeq } = event.gap;
        const what = fromSeq === toSeq ? `Event ${fromSeq} was` : `Events ${fromSeq}–${toSeq} were`;
        rows.append(h('tr', { 'data-seq': event.seq, class: 'ev-gap' }, h('td', { colspan: 4 }, `${what} pruned by the server's retention (it keeps only the newest events).`)));
        continue;
      }
      const kind = TERMINAL_EVENTS[event.type] !== undefined ? 'terminal' : event.type === 'progress' ? 'progress' : 'other';
      rows.append(
        h(
          'tr',
          { 'data-seq': event.seq, class: `ev-${kind}` },
          h('td', { class: 'num muted' }, event.seq),
          h('td', { class: 'muted' }, clock(event.at)),
          h('td', {}, h('span', { class: `ev ev-type-${event.type}` }, event.type)),
          h('td', { class: 'data' }, preview(event.data, 4000)),
        ),
      );
    }
    this.#log.append(rows);
    while (this.#log.rows.length > MAX_LOG_ROWS) this.#log.rows[0]?.remove();
    // Seqs have no gaps, so the first row shown says how many came before it (a gap row stands for
    // its events: its seq is the last of them).
    const first = this.#log.rows[0];
    const hidden = first?.classList.contains('ev-gap') ? 0 : Number(first?.dataset.seq ?? 1) - 1;
    this.#logNote.hidden = hidden === 0;
    this.#logNote.textContent = `${hidden} earlier events are not shown.`;
    if (atBottom) box.scrollTop = box.scrollHeight;
  }

  /** Asks first, with an optional reason (recorded as the task's cancel reason). */
  #confirmCancel(ref: TaskRef): Promise<string | null> {
    return confirmDialog(ref);
  }

  async #doCancel(): Promise<void> {
    const ref = this.#watch?.ref;
    if (!ref) return;
    const reason = await this.#confirmCancel(ref);
    if (reason === null || this.#watch?.ref !== ref) return;
    this.#cancel.disabled = true;
    this.#cancel.textContent = 'Cancelling…';
    this.#error.hidden = true;
    try {
      await this.#backend.cancel(ref, reason === '' ? undefined : reason);
    } catch (err) {
      this.#error.textContent = `Could not cancel: ${describeError(err).join(' ')}`;
      this.#error.hidden = false;
    } finally {
      this.#cancel.disabled = false;
      this.#cancel.textContent = 'Cancel';
    }
  }
}

/** Resolves with the reason typed ('' for none), or null when the user keeps the task running. */
function confirmDialog(ref: TaskRef): Promise<string | null> {
  const dialog = byId<HTMLDialogElement>('cancel-dialog');
  const reason = byId<HTMLInputElement>('cancel-reason');
  byId('cancel-what').textContent = `${ref.app}/${ref.type} #${ref.id}`;
  reason.value = '';
  dialog.returnValue = '';
  dialog.showModal();
  reason.focus();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'cancel' ? reason.value.trim().slice(0, 500) : null), { once: true });
  });
}

function lastAt(watch: TaskWatch): string | null {
  const last = watch.events.at(-1);
  return last ? new Date(last.at).toISOString() : null;
}
