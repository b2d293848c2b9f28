/**
 * Wire types of the protocol (docs/http-api.md) as the client sees them, and the type machinery that lets
 * `createClient<typeof tasks>()` check inputs and type results from the server's task definitions.
 * Everything here is types only: the client never loads server code.
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';

export type TaskStatus = 'pending' | 'running' | 'completed' | 'failed' | 'cancelled' | 'timed_out';
export type TerminalStatus = 'completed' | 'failed' | 'cancelled' | 'timed_out';

/** The protocol's task JSON, snake_case as on the wire; times are ISO-8601 UTC strings. */
export interface TaskJson<R = unknown, A extends string = string, T extends string = string> {
  readonly id: number;
  readonly app: A;
  readonly type: T;
  readonly status: TaskStatus;
  readonly input: unknown;
  readonly attempt: number;
  readonly created_at: string;
  readonly started_at: string | null;
  readonly finished_at: string | null;
  readonly completed_at: string | null;
  /** What the run returned, once `status` is `completed`; null before. */
  readonly final_value: R | null;
  readonly error: { readonly message: string; readonly type: string } | null;
  readonly cancel_reason: string | null;
  readonly first_seq: number;
  readonly last_seq: number;
  readonly stream_url: string;
  /** On the create response when the server has Access on: a token that reads this task (its stream and JSON) and nothing else. */
  readonly stream_token?: string;
}

export interface TaskList {
  readonly tasks: TaskJson[];
  /** Pass as `before` to get the next (older) page; null on the last page. */
  readonly next: number | null;
}

export interface ListQuery {
  readonly app?: string;
  readonly type?: string;
  readonly status?: TaskStatus;
  /** 1 to 1000; the server's default is 50. */
  readonly limit?: number;
  /** Only tasks with a smaller id: the previous page's `next`. */
  readonly before?: number;
}

export interface CancelResult {
  /** False when the task had already ended (HTTP 409): a cancel that lost the race is not an error. */
  readonly cancelled: boolean;
  readonly status: TaskStatus;
}

export interface SignalResult {
  /** False when the task had already ended (HTTP 409). */
  readonly delivered: boolean;
  readonly status?: TaskStatus;
}

/** One event of a task's stream. */
export interface StreamEvent<D extends object = Record<string, unknown>> {
  /** Tells an event from a {@link StreamGap} in what `stream()` yields. */
  readonly kind?: 'event';
  /** The event's `seq` (the SSE `id:`); pass the last one as `lastEventId` to resume after it. */
  readonly id: number;
  readonly seq: number;
  readonly type: string;
  /** The event's own object: the wire's `_task_id`, `_app`, `_model`, `_timestamp` and `_seq` are removed. */
  readonly data: D;
  /** When the event was stored, ISO-8601 UTC (the wire's `_timestamp`). */
  readonly timestamp: string;
}

/**
 * Events the server no longer has: its retention pruned `fromSeq`..`toSeq` (inclusive) before this
 * reader got them. Yielded by `stream()` in place of those events, before the first retained one,
 * when the reader's position lies before the retained window (the wire's `event: gap` frame).
 * Nothing was lost in transit: the server kept only its newest events.
 */
export interface StreamGap {
  readonly kind: 'gap';
  /** `toSeq`: the position after the gap (resuming after it asks for the retained events). */
  readonly id: number;
  readonly seq: number;
  readonly type: 'gap';
  readonly fromSeq: number;
  readonly toSeq: number;
  /** The frame's data as sent: `{ from_seq, to_seq }`. */
  readonly data: { readonly from_seq: number; readonly to_seq: number };
  readonly timestamp: string;
}

/** What a task's stream yields: its events, and a gap where retention pruned some. */
export type StreamItem<D extends object = Record<string, unknown>> = StreamEvent<D> | StreamGap;

export const TERMINAL_EVENT_TYPES: ReadonlySet<string> = new Set(['complete', 'error', 'cancelled', 'timeout']);

/**
 * A task: `{app, type, id}` (a task JSON object is one), or the string `'app/type/id'`. An object
 * with a `stream_token` (a create response) lets the client use that token for the task's routes.
 */
export type TaskRefInput = string | { readonly app: string; readonly type: string; readonly id: number | string; readonly stream_token?: string | undefined };

// ---------------------------------------------------------------------------------------------
// Typing from task definitions.
//
// A definition is matched structurally (`app`, `type`, `input` schema, `run`), so the server's
// `defineTask` results fit without the client importing their module at run time. Kinds are
// `${app}/${type}`: literal when the definitions carry literal names, `${string}/${string}` (any
// kind, inputs and results the union of all) when the names are plain `string`.
// ---------------------------------------------------------------------------------------------

export interface ClientTaskDefinition {
  readonly app: string;
  readonly type: string;
  readonly input: StandardSchemaV1;
  readonly run: (...args: never[]) => unknown;
}

export type KindOf<Defs extends readonly ClientTaskDefinition[]> =
  Defs[number] extends infer D ? (D extends ClientTaskDefinition ? `${D['app']}/${D['type']}` : never) : never;

/** The definition of kind `K`; for a kind that is not a literal (a `TaskJson` from `get`), all of them. */
export type DefinitionOf<Defs extends readonly ClientTaskDefinition[], K extends string> =
  Defs[number] extends infer D
    ? D extends ClientTaskDefinition
      ? K extends `${D['app']}/${D['type']}` ? D : `${D['app']}/${D['type']}` extends K ? D : never
      : never
    : never;

/** `unknown` when `A/T` may be a kind of `Defs` (or is not a literal); `never` (a compile error) when it cannot. */
export type KnownKind<Defs extends readonly ClientTaskDefinition[], A extends string, T extends string> =
  string extends A ? unknown : string extends T ? unknown : `${A}/${T}` extends KindOf<Defs> ? unknown : never;

/** What `create` accepts for a kind: the schema's input type (fields with defaults are optional). */
export type InputFor<Defs extends readonly ClientTaskDefinition[], K extends string> =
  DefinitionOf<Defs, K> extends infer D ? (D extends { readonly input: infer S extends StandardSchemaV1 } ? StandardSchemaV1.InferInput<S> : never) : never;

/** What `result` resolves with for a kind: what its `run` returns, awaited (as it arrives after a JSON round trip). */
export type ResultFor<Defs extends readonly ClientTaskDefinition[], K extends string> =
  DefinitionOf<Defs, K> extends infer D ? (D extends { readonly run: (...args: never[]) => infer R } ? Awaited<R> : never) : never;

export type AppOf<K extends string> = K extends `${infer A}/${string}` ? A : string;
export type TypeOf<K extends string> = K extends `${string}/${infer T}` ? T : string;

/** A ref whose kind TypeScript can read: `'app/type/id'` or `{app, type, id}` (so `result()` is typed). */
export type KindRef<A extends string, T extends string> =
  | `${A}/${T}/${number}`
  | { readonly app: A; readonly type: T; readonly id: number | string };
