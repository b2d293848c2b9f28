/**
 * The dashboard's view of the server: the few calls it makes, behind one interface (implemented
 * over `taskstream/client` in backend.ts), so the views never build URLs or parse SSE themselves.
 */
import type { StreamEvent, TaskJson, TaskRef, LinkState } from './model.js';

export interface TaskType {
  readonly app: string;
  readonly type: string;
}

export interface StreamOptions {
  /** Resume after this seq (0 = the whole log). */
  readonly afterSeq: number;
  readonly signal: AbortSignal;
  /** Told when the connection opens, drops, resumes and ends. */
  readonly onState: (state: LinkState) => void;
}

export interface Backend {
  /** The registered task types, or undefined when the server does not list them. */
  types(): Promise<TaskType[] | undefined>;
  list(limit: number): Promise<TaskJson[]>;
  get(ref: TaskRef): Promise<TaskJson>;
  create(kind: TaskType, input: Record<string, unknown>): Promise<TaskJson>;
  /** `reason` is recorded as the task's cancel reason (1 to 500 characters); none: `external_cancellation`. */
  cancel(ref: TaskRef, reason?: string): Promise<{ cancelled: boolean; status: string }>;
  /** The task's events after `afterSeq`, live, resuming after drops, ending after the terminal event. */
  stream(ref: TaskRef, options: StreamOptions): AsyncIterable<StreamEvent>;
}

/** A refused request, with the server's error code and, for invalid input, its list of problems. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    readonly problems: readonly string[] = [],
  ) {
    super(message);
  }
}

/** Turns any thrown value into the lines the page shows. */
export function describeError(err: unknown): string[] {
  // With a list of problems, the list says it all (the message repeats it on one line).
  if (err instanceof ApiError) return err.problems.length > 0 ? ['The server refused the input:', ...err.problems] : [err.message];
  if (err instanceof Error) return [err.message];
  return [String(err)];
}
