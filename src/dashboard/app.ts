/**
 * The dashboard page's entry point, bundled by scripts/build-dashboard.mjs into static/app.js.
 *
 * Views: the recent-tasks list (refreshed every few seconds while the tab is visible; the newest
 * unfinished tasks stream live), the task view at `#/tasks/{app}/{type}/{id}` (a hash route, so a
 * reload reopens it and the server needs no route for it), and the "Start a task" form. The
 * header shows the connection: live, reconnecting (a stream dropped), or offline (the API is
 * unreachable). API paths are resolved against the page's own directory, so the dashboard works
 * wherever the handler is mounted.
 */
import { ApiError } from './ui/api.js';
import { clientBackend } from './ui/backend.js';
import { byId } from './ui/dom.js';
import { TaskView } from './ui/detail.js';
import { CreateForm } from './ui/form.js';
import { KeyPrompt } from './ui/key.js';
import { TaskList } from './ui/list.js';
import type { TaskRef } from './ui/model.js';
import { isTerminal, keyOf } from './ui/model.js';
import { Watches } from './ui/watch.js';

const LIST_LIMIT = 50;
const REFRESH_BUSY_MS = 2000;
const REFRESH_IDLE_MS = 5000;

function boot(): void {
  const backend = clientBackend(new URL('.', location.href).href);
  const conn = byId('conn');
  let reachable = true;

  const showConnection = (): void => {
    const summary = watches.linkSummary();
    const state = !reachable ? 'offline' : summary === 'reconnecting' ? 'reconnecting' : 'live';
    conn.dataset.state = state;
    conn.textContent = { offline: 'Offline — retrying', reconnecting: 'Reconnecting…', live: 'Live' }[state];
    conn.title = state === 'offline' ? 'The server does not answer; the page retries by itself.' : state === 'reconnecting' ? 'A stream dropped; it resumes from the last event it received.' : 'Connected';
  };
  const watches = new Watches(backend, showConnection);
  const view = new TaskView(backend, watches);
  const list = new TaskList(watches, () => refreshSoon(0));

  let timer: ReturnType<typeof setTimeout> | undefined;
  function refreshSoon(ms: number): void {
    clearTimeout(timer);
    timer = setTimeout(() => void refresh(), ms);
  }
  async function refresh(): Promise<void> {
    if (document.visibilityState !== 'visible') return; // resumes on visibilitychange
    let next = REFRESH_IDLE_MS;
    try {
      const tasks = await backend.list(LIST_LIMIT);
      reachable = true;
      list.render(tasks);
      list.select(view.current ? keyOf(view.current) : '');
      next = tasks.some((t) => !isTerminal(t.status)) ? REFRESH_BUSY_MS : REFRESH_IDLE_MS;
    } catch (err) {
      // 401: the server is there but wants a key.
      reachable = err instanceof ApiError && err.status === 401;
      if (reachable) keyPrompt.ask();
      next = REFRESH_BUSY_MS;
    }
    showConnection();
    refreshSoon(next);
  }

  function route(): void {
    const match = /^#\/tasks\/([^/]+)\/([^/]+)\/([1-9][0-9]*)$/.exec(location.hash);
    if (match) {
      const ref: TaskRef = { app: decodeURIComponent(match[1]!), type: decodeURIComponent(match[2]!), id: Number(match[3]) };
      view.open(ref);
      list.select(keyOf(ref));
      document.title = `#${ref.id} ${ref.type} · taskstream`;
    } else {
      view.close();
      list.select('');
      document.title = 'taskstream';
    }
  }

  const keyPrompt = new KeyPrompt(byId('create-form').closest('.side') ?? document.body, () => {
    void form.load();
    refreshSoon(0);
  });
  const form = new CreateForm(backend, (task) => {
    location.hash = `#/tasks/${keyOf(task)}`;
    refreshSoon(0);
  });
  window.addEventListener('hashchange', route);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') refreshSoon(0);
  });
  window.addEventListener('online', () => refreshSoon(0));
  setInterval(() => {
    list.tick();
    view.tick();
  }, 1000);

  byId('boot').hidden = true;
  route();
  void form.load();
  void refresh();
  showConnection();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
else boot();
