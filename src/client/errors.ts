/**
 * The client's few error classes. Every one is a `TaskstreamClientError` with a `code` to switch
 * on: the server's `error` code for an HTTP error (`not_found`, `invalid_input`, `unknown_type` …),
 * or one of the client's own (`bad_response`, `task_failed`, `task_cancelled`, `task_timed_out`).
 */

export interface TaskPointer {
  readonly app: string;
  readonly type: string;
  readonly id: number;
}

export class TaskstreamClientError extends Error {
  /** The server's `error` code, or the client's own code for outcome and protocol errors. */
  readonly code: string;
  /** The HTTP status, for errors that came from a response. */
  readonly status: number | undefined;
  /** The parsed JSON error body (with extra fields such as `issues`), when there was one. */
  readonly body: unknown;

  constructor(code: string, message: string, options: { status?: number; body?: unknown; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = options.status;
    this.body = options.body;
  }
}

/** The task ended with `error`: its code threw. `errorType` is the server-side error's class name. */
export class TaskFailedError extends TaskstreamClientError {
  readonly task: TaskPointer;
  readonly errorType: string;
  /** The task's own error message, without this error's prefix. */
  readonly taskMessage: string;
  constructor(task: TaskPointer, errorType: string, message: string) {
    super('task_failed', `task ${label(task)} failed: ${errorType}: ${message}`);
    this.task = task;
    this.errorType = errorType;
    this.taskMessage = message;
  }
}

/** The task ended with `cancelled`. `reason` is `external_cancellation`, `shutdown` or the reason given to cancel. */
export class TaskCancelledError extends TaskstreamClientError {
  readonly task: TaskPointer;
  readonly reason: string;
  constructor(task: TaskPointer, reason: string) {
    super('task_cancelled', `task ${label(task)} was cancelled (${reason})`);
    this.task = task;
    this.reason = reason;
  }
}

/** The task ended with `timeout`. `timeoutMs` is known when the terminal event was seen. */
export class TaskTimedOutError extends TaskstreamClientError {
  readonly task: TaskPointer;
  readonly timeoutMs: number | undefined;
  constructor(task: TaskPointer, timeoutMs: number | undefined) {
    super('task_timed_out', `task ${label(task)} timed out${timeoutMs === undefined ? '' : ` after ${timeoutMs} ms`}`);
    this.task = task;
    this.timeoutMs = timeoutMs;
  }
}

function label(task: TaskPointer): string {
  return `${task.app}/${task.type}/${task.id}`;
}

/** Builds the error for a non-2xx response from its `{error, message}` body (or its text). */
export async function errorFromResponse(response: Response, what: string): Promise<TaskstreamClientError> {
  let text = '';
  try {
    text = await response.text();
  } catch {
    // The body could not be read; the status still says what happened.
  }
  let body: unknown = text;
  let code = `http_${response.status}`;
  let message = text.trim() === '' ? `${response.status} ${response.statusText}` : text.trim();
  try {
    const parsed = JSON.parse(text) as unknown;
    body = parsed;
    if (parsed !== null && typeof parsed === 'object') {
      const { error, message: m } = parsed as { error?: unknown; message?: unknown };
      if (typeof error === 'string') code = error;
      if (typeof m === 'string') message = m;
    }
  } catch {
    // Not JSON (a proxy's page, or the plain-text errors of /stream): keep the text.
  }
  return new TaskstreamClientError(code, `${what}: ${response.status} ${message}`, { status: response.status, body });
}
