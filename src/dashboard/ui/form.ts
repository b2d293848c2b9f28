/**
 * The "Start a task" form: pick a registered type, edit its input as JSON, start it. The input is
 * checked as the user types (a well-formed JSON object, plus the required fields and top-level
 * types the server's JSON Schema names, when it sends one); the server's own validation has the
 * last word and its list of problems is shown as-is.
 */
import type { Backend, TaskType } from './api.js';
import { describeError } from './api.js';
import { byId, clear, h } from './dom.js';
import type { TaskJson } from './model.js';

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
}

type KnownType = TaskType & { input_schema?: JsonSchema | null };

const STORAGE_PREFIX = 'taskstream.input.';

export class CreateForm {
  readonly #backend: Backend;
  readonly #onCreated: (task: TaskJson) => void;
  readonly #form = byId<HTMLFormElement>('create-form');
  readonly #select = byId<HTMLSelectElement>('create-type');
  readonly #kind = byId<HTMLInputElement>('create-kind');
  readonly #input = byId<HTMLTextAreaElement>('create-input');
  readonly #hint = byId('create-hint');
  readonly #problems = byId('create-problems');
  readonly #submit = byId<HTMLButtonElement>('create-submit');
  #types: KnownType[] | undefined;

  constructor(backend: Backend, onCreated: (task: TaskJson) => void) {
    this.#backend = backend;
    this.#onCreated = onCreated;
    this.#form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.#create();
    });
    this.#input.addEventListener('input', () => this.#check());
    this.#input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) this.#form.requestSubmit();
    });
    this.#select.addEventListener('change', () => this.#pick());
    this.#kind.addEventListener('input', () => this.#check());
  }

  /** Loads the registered types; without the types endpoint, falls back to a free `app/type` field. */
  async load(): Promise<void> {
    try {
      this.#types = (await this.#backend.types()) as KnownType[] | undefined;
    } catch (err) {
      this.#show(['Could not load the task types:', ...describeError(err)]);
      this.#types = undefined;
    }
    const types = this.#types;
    this.#select.hidden = types === undefined;
    this.#kind.hidden = types !== undefined;
    if (types !== undefined) {
      clear(this.#select);
      for (const t of types) this.#select.append(h('option', { value: `${t.app}/${t.type}` }, `${t.app} / ${t.type}`));
    }
    this.#pick();
  }

  #current(): KnownType | undefined {
    const value = this.#types === undefined ? this.#kind.value.trim() : this.#select.value;
    const match = /^([^/\s]+)\/([^/\s]+)$/.exec(value);
    if (!match) return undefined;
    return this.#types?.find((t) => `${t.app}/${t.type}` === value) ?? { app: match[1]!, type: match[2]! };
  }

  /** A type was picked: restore the input last used for it, or build one from the schema's defaults. */
  #pick(): void {
    const kind = this.#current();
    const schema = kind?.input_schema ?? undefined;
    const saved = kind ? remembered(`${kind.app}/${kind.type}`) : null;
    this.#input.value = saved ?? JSON.stringify(defaults(schema), null, 2);
    clear(this.#hint);
    if (schema?.properties) {
      for (const [name, prop] of Object.entries(schema.properties)) {
        const required = schema.required?.includes(name) && prop.default === undefined;
        this.#hint.append(h('code', { title: describe(prop) }, `${name}${required ? '*' : ''}`), ' ');
      }
    }
    this.#check();
  }

  /** Validates as the user types; returns the input when it can be sent. */
  #check(): Record<string, unknown> | undefined {
    const problems: string[] = [];
    const kind = this.#current();
    if (!kind) problems.push(this.#types === undefined ? 'Enter the task type as app/type, e.g. examples/ExampleTask.' : 'No task types are registered.');
    let value: unknown;
    try {
      value = JSON.parse(this.#input.value.trim() === '' ? '{}' : this.#input.value);
      if (value === null || typeof value !== 'object' || Array.isArray(value)) problems.push('The input must be a JSON object, like {"message": "hi"}.');
    } catch (err) {
      problems.push(`Not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (problems.length === 0) problems.push(...schemaProblems(kind?.input_schema ?? undefined, value as Record<string, unknown>));
    this.#show(problems);
    this.#input.setAttribute('aria-invalid', String(problems.length > 0));
    this.#submit.disabled = problems.length > 0;
    return problems.length === 0 ? (value as Record<string, unknown>) : undefined;
  }

  async #create(): Promise<void> {
    const kind = this.#current();
    const input = this.#check();
    if (!kind || !input) return;
    this.#submit.disabled = true;
    this.#submit.textContent = 'Starting…';
    try {
      const task = await this.#backend.create(kind, input);
      remember(`${kind.app}/${kind.type}`, this.#input.value);
      this.#show([]);
      this.#onCreated(task);
    } catch (err) {
      this.#show(describeError(err));
    } finally {
      this.#submit.textContent = 'Start task';
      this.#submit.disabled = false;
    }
  }

  #show(lines: string[]): void {
    clear(this.#problems);
    for (const line of lines) this.#problems.append(h('div', {}, line));
    this.#problems.hidden = lines.length === 0;
  }
}

/** The input last sent for a type (localStorage may be unavailable: private modes, sandboxed frames). */
function remembered(kind: string): string | null {
  try {
    return localStorage.getItem(STORAGE_PREFIX + kind);
  } catch {
    return null;
  }
}

function remember(kind: string, input: string): void {
  try {
    localStorage.setItem(STORAGE_PREFIX + kind, input);
  } catch {
    // Not remembering is fine.
  }
}

/** `{key: default}` for every property of the schema that has a default. */
function defaults(schema: JsonSchema | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, prop] of Object.entries(schema?.properties ?? {})) {
    if (prop.default !== undefined) out[name] = prop.default;
    else if (schema?.required?.includes(name)) out[name] = prop.type === 'number' || prop.type === 'integer' ? 0 : prop.type === 'array' ? [] : '';
  }
  return out;
}

function describe(prop: JsonSchema): string {
  const parts = [Array.isArray(prop.type) ? prop.type.join(' | ') : (prop.type ?? 'any')];
  if (prop.minimum !== undefined || prop.maximum !== undefined) parts.push(`${prop.minimum ?? '…'} to ${prop.maximum ?? '…'}`);
  if (prop.default !== undefined) parts.push(`default ${JSON.stringify(prop.default)}`);
  return parts.join(', ');
}

/** The cheap checks: required fields present, top-level values of the declared JSON type. */
function schemaProblems(schema: JsonSchema | undefined, value: Record<string, unknown>): string[] {
  if (!schema?.properties) return [];
  const problems: string[] = [];
  for (const [name, prop] of Object.entries(schema.properties)) {
    if (!(name in value)) {
      if (schema.required?.includes(name) && prop.default === undefined) problems.push(`${name} is required.`);
      continue;
    }
    const types = prop.type === undefined ? [] : Array.isArray(prop.type) ? prop.type : [prop.type];
    if (types.length > 0 && !types.some((t) => isOfType(value[name], t))) problems.push(`${name} must be ${types.join(' or ')}.`);
  }
  return problems;
}

function isOfType(value: unknown, type: string): boolean {
  switch (type) {
    case 'string': return typeof value === 'string';
    case 'number': return typeof value === 'number';
    case 'integer': return Number.isInteger(value);
    case 'boolean': return typeof value === 'boolean';
    case 'array': return Array.isArray(value);
    case 'object': return value !== null && typeof value === 'object' && !Array.isArray(value);
    case 'null': return value === null;
    default: return true;
  }
}
