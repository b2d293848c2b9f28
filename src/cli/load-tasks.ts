/**
 * `serve --tasks MODULE`: loads a user's own task definitions from a JS or TS module.
 * TypeScript goes through tsx's ESM API (`tsImport`), scoped to that import, so the process's own
 * module loading is left as it was.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AnyTaskDefinition } from '../index.js';
import { UsageError } from './args.js';

const TS = /\.(?:ts|mts|cts|tsx)$/;

/**
 * The module's task definitions: every export that looks like one (an object with `app`, `type`,
 * `input` and a `run` function), including the items of a default-exported array. Each object once.
 */
export async function loadTaskModule(specifier: string): Promise<AnyTaskDefinition[]> {
  const path = resolve(specifier);
  if (!existsSync(path)) throw new UsageError(`--tasks ${specifier}: no such file (${path})`);
  const url = pathToFileURL(path).href;
  let mod: Record<string, unknown>;
  try {
    if (TS.test(path)) {
      const { tsImport } = await import('tsx/esm/api');
      mod = (await tsImport(url, import.meta.url)) as Record<string, unknown>;
    } else {
      mod = (await import(url)) as Record<string, unknown>;
    }
  } catch (err) {
    throw new Error(`--tasks ${specifier}: loading the module failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const found = new Set<AnyTaskDefinition>();
  const consider = (value: unknown): void => {
    if (isTaskDefinition(value)) found.add(value);
  };
  for (const [name, value] of Object.entries(mod)) {
    if (name === 'default' && Array.isArray(value)) value.forEach(consider);
    else if (name === 'default' && value !== null && typeof value === 'object' && !isTaskDefinition(value)) {
      // A CommonJS module seen from ESM: its `module.exports` is the default export.
      Object.values(value).forEach((v) => (Array.isArray(v) ? v.forEach(consider) : consider(v)));
    } else consider(value);
  }
  if (found.size === 0) {
    throw new UsageError(`--tasks ${specifier}: no task definitions found; export defineTask({app, type, input, run}) results, or a default array of them`);
  }
  return [...found];
}

function isTaskDefinition(value: unknown): value is AnyTaskDefinition {
  if (value === null || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  return typeof v.app === 'string' && typeof v.type === 'string' && typeof v.input === 'object' && v.input !== null
    && typeof v.run === 'function';
}
