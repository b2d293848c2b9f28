/**
 * Tiny DOM helpers for the dashboard. Every piece of task data reaches the page through
 * `textContent` (never `innerHTML`), so task input, events and errors cannot inject markup.
 */

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | ((event: Event) => void)>;

/** `h('button', { class: 'primary', onclick: fn }, 'Start')`: an element with attributes, handlers and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === 'function') el.addEventListener(name.replace(/^on/, ''), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

/** Looks up an element the page's HTML must contain; a missing one is a bug in index.html. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`dashboard: #${id} is missing from index.html`);
  return el as T;
}

export function clear(el: Element): void {
  el.replaceChildren();
}

/** "12 s ago", "3 min ago", "2 h ago", else the local date and time. */
export function ago(iso: string | null, now = Date.now()): string {
  if (!iso) return '—';
  const ms = now - Date.parse(iso);
  if (!Number.isFinite(ms)) return '—';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(iso).toLocaleString();
}

/** "850 ms", "12.4 s", "3 min 5 s". */
export function duration(fromIso: string | null, toIso: string | null, now = Date.now()): string {
  if (!fromIso) return '—';
  const ms = (toIso ? Date.parse(toIso) : now) - Date.parse(fromIso);
  if (!Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** The time of day with milliseconds, for event rows. */
export function clock(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** JSON for display, cut at `max` characters so one huge value cannot freeze the page. */
export function preview(value: unknown, max = 2000, indent?: number): string {
  let text: string;
  try {
    text = JSON.stringify(value, null, indent) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, max)}… (${text.length - max} more characters)` : text;
}

/** A status pill: the text is the protocol's status name, the class picks its colour. */
export function statusBadge(status: string): HTMLSpanElement {
  return h('span', { class: `badge status-${status}`, 'data-status': status }, status.replace('_', ' '));
}

/** A progress bar: `fraction` in 0..1, or undefined for "running, extent unknown". */
export function progressBar(): { el: HTMLDivElement; set(fraction: number | undefined, status: string): void } {
  const fill = h('div', { class: 'fill' });
  const el = h('div', { class: 'progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100 }, fill);
  return {
    el,
    set(fraction, status) {
      el.dataset.status = status;
      if (fraction === undefined) {
        el.classList.add('indeterminate');
        el.removeAttribute('aria-valuenow');
        fill.style.width = '';
        return;
      }
      const pct = Math.round(Math.min(1, Math.max(0, fraction)) * 1000) / 10;
      el.classList.remove('indeterminate');
      el.setAttribute('aria-valuenow', String(pct));
      el.title = `${pct}%`;
      fill.style.width = `${pct}%`;
    },
  };
}
