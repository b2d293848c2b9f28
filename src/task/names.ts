import { InvalidEventError } from '../errors.js';

/** Event, signal, app and type names: `[A-Za-z0-9_.:-]{1,64}` (docs/http-api.md). Safe on an SSE line. */
export const NAME_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Terminal events are written by the runtime only, together with the terminal status. */
export const TERMINAL_EVENTS: ReadonlySet<string> = new Set(['complete', 'error', 'cancelled', 'timeout']);

/** Names task code may not send: the terminal four plus the runtime's own `retry` and `interrupted`. */
const RESERVED_EVENTS: ReadonlySet<string> = new Set([...TERMINAL_EVENTS, 'retry', 'interrupted', 'gap']);

/** Keys the wire adds to every event's data; task data may not use them. */
const RESERVED_KEYS = ['_task_id', '_app', '_model', '_timestamp', '_seq'] as const;

export function assertName(kind: string, name: unknown): asserts name is string {
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    throw new InvalidEventError(`${kind} name ${JSON.stringify(name)} must match ${NAME_PATTERN.source}`);
  }
}

/**
 * Validates an event from task code and returns its data serialised once. Throws before anything
 * is stored, so a bad event never reaches the log half-way.
 */
export function encodeEventData(type: unknown, data: unknown, maxBytes: number): string {
  assertName('event', type);
  if (RESERVED_EVENTS.has(type)) {
    throw new InvalidEventError(`event name "${type}" is reserved for the runtime; choose another name`);
  }
  return encodeObject(`event "${type}"`, data, maxBytes);
}

export function encodeObject(what: string, data: unknown, maxBytes: number): string {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new InvalidEventError(`${what}: data must be a JSON object, got ${describe(data)}`);
  }
  for (const key of RESERVED_KEYS) {
    if (Object.hasOwn(data, key)) {
      throw new InvalidEventError(`${what}: data key "${key}" is reserved (the stream adds it)`);
    }
  }
  let json: string;
  try {
    json = JSON.stringify(data);
  } catch (cause) {
    throw new InvalidEventError(`${what}: data is not JSON-serialisable (${(cause as Error).message})`, { cause });
  }
  // JSON text is at most 3 bytes per UTF-16 unit; only measure exactly when it could be over.
  if (json.length * 3 > maxBytes && Buffer.byteLength(json) > maxBytes) {
    throw new InvalidEventError(`${what}: data is ${Buffer.byteLength(json)} bytes, over the limit of ${maxBytes}`);
  }
  return json;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}
