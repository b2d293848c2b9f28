import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { Logger } from '../logger.js';
import { NAME_PATTERN } from './names.js';
import { checkRetention, type RetentionPolicy } from './retention.js';

/** What a run gets: one object carrying the abort signal and the ways to talk to watchers. */
export interface RunContext {
  /** Aborts on cancel, timeout, shutdown or lost lease; its reason is a `TaskAbortedError`. */
  readonly signal: AbortSignal;
  readonly task: { readonly id: number; readonly app: string; readonly type: string; readonly attempt: number };
  readonly logger: Logger;
  /**
   * Appends an event to the task's log. Validation errors throw here, synchronously; the promise
   * resolves once the event is stored (group commit), before any watcher sees it.
   */
  send(type: string, data?: object): Promise<void>;
  /** `send('progress', data)`. */
  progress(data: object): Promise<void>;
  /** Sends each item of an async or sync iterable as a `progress` event; returns the last item. Stops on abort. */
  iterate<T extends object>(items: AsyncIterable<T> | Iterable<T>): Promise<T | undefined>;
  /** Resolves with the payload of the next `signal(ref, name, payload)`; pushed, never polled. */
  waitForSignal<T = unknown>(name: string, options?: { signal?: AbortSignal }): Promise<T>;
}

export interface RetryPolicy {
  /** Extra attempts after the first failure. */
  readonly limit: number;
  /** Delay before the first retry; doubled (by `factor`) for each next one. Default 1000. */
  readonly backoffMs?: number;
  readonly factor?: number;
  readonly maxBackoffMs?: number;
}

export interface TaskDefinition<S extends StandardSchemaV1 = StandardSchemaV1, R = unknown, A extends string = string, T extends string = string> {
  readonly app: A;
  readonly type: T;
  /** A Standard Schema (zod, valibot, arktype …) that validates and types the input. */
  readonly input: S;
  /**
   * Run deadline in ms, or a function of the validated input giving it (for a task whose input
   * carries its own deadline). `create(…, { timeoutMs })` overrides either per task.
   */
  readonly timeoutMs?: number | ((input: StandardSchemaV1.InferOutput<S>) => number | undefined);
  /** How long a run that ignores its aborted signal is waited for before it is abandoned. Default 5000. */
  readonly graceMs?: number;
  readonly retries?: number | RetryPolicy;
  /** How many of each task's newest events to keep; overrides the runtime's `retainEvents`. Default: the runtime's. */
  readonly retention?: RetentionPolicy;
  readonly run: (ctx: RunContext, input: StandardSchemaV1.InferOutput<S>) => R | Promise<R>;
}

/**
 * Any task definition, whatever its schema and result: what `createTaskstream({ tasks })` takes.
 * `any`, not `StandardSchemaV1`/`unknown`: a definition's `run` and `timeoutMs(input)` take its typed
 * input, and a function of a narrower parameter is not assignable to one of `unknown`.
 */
export type AnyTaskDefinition = TaskDefinition<any, any>;
export type InputOf<D> = D extends TaskDefinition<infer S, unknown> ? StandardSchemaV1.InferInput<S> : never;
export type ResultOf<D> = D extends TaskDefinition<StandardSchemaV1, infer R> ? Awaited<R> : never;

/** Declares a task type. Checks its names and options at once, so mistakes surface at import time. */
/** Keeps `app` and `type` as literal types, so a typed client knows every kind by name. */
export function defineTask<S extends StandardSchemaV1, R, const A extends string, const T extends string>(
  definition: TaskDefinition<S, R, A, T>,
): TaskDefinition<S, R, A, T> {
  const { app, type, input, timeoutMs, graceMs, retries, run } = definition;
  for (const [what, name] of [['app', app], ['type', type]] as const) {
    if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
      throw new TypeError(`defineTask: ${what} ${JSON.stringify(name)} must match ${NAME_PATTERN.source}`);
    }
  }
  if (input === null || typeof input !== 'object' || !('~standard' in input)) {
    throw new TypeError(`defineTask ${app}/${type}: input must be a Standard Schema (for example a zod schema)`);
  }
  if (typeof run !== 'function') throw new TypeError(`defineTask ${app}/${type}: run must be a function`);
  if (typeof timeoutMs !== 'function') checkDelay(`${app}/${type} timeoutMs`, timeoutMs);
  checkDelay(`${app}/${type} graceMs`, graceMs);
  checkRetention(`defineTask ${app}/${type}: retention`, definition.retention);
  const policy = typeof retries === 'number' ? { limit: retries } : retries;
  if (policy !== undefined) {
    if (!Number.isInteger(policy.limit) || policy.limit < 0) {
      throw new TypeError(`defineTask ${app}/${type}: retries must be a whole number >= 0`);
    }
    checkPositive(`${app}/${type} retries.backoffMs`, policy.backoffMs, true);
    checkPositive(`${app}/${type} retries.maxBackoffMs`, policy.maxBackoffMs, true);
    if (policy.factor !== undefined && !(policy.factor >= 1)) {
      throw new TypeError(`defineTask ${app}/${type}: retries.factor must be >= 1`);
    }
  }
  return Object.freeze({ ...definition });
}

export function retryPolicyOf(definition: AnyTaskDefinition): Required<RetryPolicy> {
  const policy = typeof definition.retries === 'number' ? { limit: definition.retries } : definition.retries;
  return {
    limit: policy?.limit ?? 0,
    backoffMs: policy?.backoffMs ?? 1000,
    factor: policy?.factor ?? 2,
    maxBackoffMs: policy?.maxBackoffMs ?? 60_000,
  };
}

export function checkPositive(what: string, value: number | undefined, allowZero = false): void {
  if (value === undefined) return;
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new TypeError(`${what} must be a ${allowZero ? 'non-negative' : 'positive'} number of milliseconds, got ${value}`);
  }
}

/** Throws a TypeError naming `what` unless `value` is a whole number >= `min`. */
export function checkCount(what: string, value: unknown, min: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new TypeError(`${what} must be a whole number >= ${min}, got ${String(value)}`);
  }
}

/** The longest delay a Node timer takes; a longer one fires after 1 ms instead (with a warning). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** `checkPositive` for a delay a timer will wait: also at most MAX_TIMER_MS (about 24.8 days). */
export function checkDelay(what: string, value: number | undefined, allowZero = false): void {
  checkPositive(what, value, allowZero);
  if (value !== undefined && value > MAX_TIMER_MS) {
    throw new TypeError(`${what} must be at most ${MAX_TIMER_MS} ms (about 24.8 days), got ${value}`);
  }
}
