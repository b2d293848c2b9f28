/**
 * Validators for command-line values. Each returns the parsed value or throws commander's
 * `InvalidArgumentError`, which the CLI reports as one line on stderr with exit code 2.
 */
import { InvalidArgumentError } from 'commander';

/** Exit codes of the CLI. */
export const EXIT = {
  ok: 0,
  /** A remote task ended in error/cancelled/timeout, a request failed, or shutdown failed. */
  failure: 1,
  /** Bad usage: unknown command or flag, bad flag value. */
  usage: 2,
  /** A second SIGTERM/SIGINT cut a graceful shutdown short; Ctrl-C stopped a tail. */
  forced: 130,
} as const;

/** A usage error found after parsing (e.g. a `--tasks` module without task definitions): exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export function parsePort(value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65_535) {
    throw new InvalidArgumentError('a port is a whole number from 0 to 65535 (0 picks a free one).');
  }
  return Number(value);
}

export function parsePositiveInt(value: string): number {
  if (!/^\d{1,15}$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('expected a whole number >= 1.');
  return Number(value);
}

export function parseIntRange(min: number, max: number): (value: string) => number {
  return (value) => {
    if (!/^\d{1,15}$/.test(value) || Number(value) < min || Number(value) > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}.`);
    }
    return Number(value);
  };
}

export function parseNonNegativeInt(value: string): number {
  if (!/^\d{1,15}$/.test(value)) throw new InvalidArgumentError('expected a whole number >= 0.');
  return Number(value);
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `30s`, `15m`, `1h`, `7d` (also `ms`, `w`, and compounds such as `1h30m`) → milliseconds. */
export function parseDuration(value: string): number {
  const parts = /^(?:\d+(?:ms|s|m|h|d|w))+$/.test(value) ? value.match(/\d+(?:ms|s|m|h|d|w)/g) : null;
  if (parts === null) throw new InvalidArgumentError('a duration is a number with a unit: ms, s, m, h, d or w (e.g. 30s, 15m, 1h, 7d).');
  let ms = 0;
  for (const part of parts) {
    const [, n = '', unit = ''] = /^(\d+)(\D+)$/.exec(part) ?? [];
    ms += Number(n) * (UNITS[unit] ?? Number.NaN);
  }
  if (!Number.isSafeInteger(ms)) throw new InvalidArgumentError('duration is too long.');
  return ms;
}

export function parseJson(value: string): unknown {
  try {
    return JSON.parse(value) as unknown;
  } catch (err) {
    throw new InvalidArgumentError(`not valid JSON (${err instanceof Error ? err.message : String(err)}).`);
  }
}

/** `--input`: a JSON value (an object for every example type). */
export function parseJsonObject(value: string): Record<string, unknown> {
  const parsed = parseJson(value);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new InvalidArgumentError('expected a JSON object, e.g. \'{"message":"hi"}\'.');
  }
  return parsed as Record<string, unknown>;
}

const NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

export interface Kind {
  readonly app: string;
  readonly type: string;
}

export interface Ref extends Kind {
  readonly id: number;
}

/** `app/type`. */
export function parseKind(value: string): Kind {
  const [app = '', type = '', ...rest] = value.split('/');
  if (rest.length > 0 || !NAME.test(app) || !NAME.test(type)) {
    throw new InvalidArgumentError('expected app/type, e.g. examples/ExampleTask.');
  }
  return { app, type };
}

/** `app/type/id`. */
export function parseRef(value: string): Ref {
  const [app = '', type = '', id = '', ...rest] = value.split('/');
  if (rest.length > 0 || !NAME.test(app) || !NAME.test(type) || !/^[1-9]\d{0,15}$/.test(id) || !Number.isSafeInteger(Number(id))) {
    throw new InvalidArgumentError('expected app/type/id, e.g. examples/ExampleTask/42.');
  }
  return { app, type, id: Number(id) };
}

/** A task event name: `[A-Za-z0-9_.:-]{1,64}`. */
export function parseName(value: string): string {
  if (!NAME.test(value)) throw new InvalidArgumentError('a name matches [A-Za-z0-9_.:-]{1,64}.');
  return value;
}

/** `http(s)://host[:port][/base]`. */
export function parseUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('expected an http(s) URL, e.g. http://127.0.0.1:8888.');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError('expected an http(s) URL.');
  return url.href.replace(/\/+$/, '');
}

export function parseChoice<T extends string>(choices: readonly T[]): (value: string) => T {
  return (value) => {
    if (!(choices as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${choices.join(', ')}.`);
    return value as T;
  };
}

/** A one-line reason from any error (no stack traces on the terminal). */
export function reason(err: unknown): string {
  const text = err instanceof AggregateError
    ? `${err.message}: ${err.errors.map((e) => reason(e)).join('; ')}`
    : err instanceof Error ? err.message : String(err);
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
