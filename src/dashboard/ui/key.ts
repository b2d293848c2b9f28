/**
 * The API key prompt. When the server has Access on, the page's first call answers 401: the page
 * then asks for a key, keeps it in sessionStorage (this tab only, gone when it closes; never in a
 * URL or a cookie, so no other site can make the browser send it) and sends it as
 * `Authorization: Bearer` with every call. A key the server refuses is dropped and asked again.
 */
import { h } from './dom.js';

const STORAGE_KEY = 'taskstream.apiKey';

export function storedKey(): string | undefined {
  try {
    return sessionStorage.getItem(STORAGE_KEY) ?? undefined;
  } catch {
    return undefined; // storage disabled: the key lives as long as the page
  }
}

function storeKey(key: string | undefined): void {
  try {
    if (key === undefined) sessionStorage.removeItem(STORAGE_KEY);
    else sessionStorage.setItem(STORAGE_KEY, key);
  } catch {
    // storage disabled
  }
}

/** Headers for the dashboard's calls: the key, when there is one. */
export function authHeaders(): Record<string, string> {
  const key = storedKey();
  return key === undefined ? {} : { authorization: `Bearer ${key}` };
}

export class KeyPrompt {
  readonly #form: HTMLFormElement;
  readonly #input: HTMLInputElement;
  readonly #note: HTMLElement;

  /** `onKey` runs after a key was entered (reload what failed). */
  constructor(parent: HTMLElement, onKey: () => void) {
    this.#input = h('input', { id: 'key-input', type: 'password', autocomplete: 'off', spellcheck: 'false', placeholder: 'API key' });
    this.#note = h('p', { class: 'muted small' });
    this.#form = h('form', { id: 'key-form', class: 'card', hidden: true },
      h('h2', {}, 'API key needed'),
      this.#note,
      h('label', { for: 'key-input' }, 'Key'),
      this.#input,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Use key')));
    this.#form.addEventListener('submit', (event) => {
      event.preventDefault();
      const key = this.#input.value.trim();
      if (key === '') return;
      storeKey(key);
      this.#input.value = '';
      this.#form.hidden = true;
      onKey();
    });
    parent.prepend(this.#form);
  }

  /** The server refused the call (401): forget the key it refused and ask for one. */
  ask(): void {
    const had = storedKey() !== undefined;
    storeKey(undefined);
    this.#note.textContent = had
      ? 'The server refused the key. Enter a valid one.'
      : 'This server needs an API key (taskstream serve --api-key). It is kept for this tab only.';
    if (this.#form.hidden) {
      this.#form.hidden = false;
      this.#input.focus();
    }
  }
}
