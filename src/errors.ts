/**
 * The few error classes taskstream throws. Each carries a stable `code` (the discriminant the HTTP
 * layer maps to a status and the client maps back) and, where there is one, a `cause`.
 */
export type ErrorCode =
  | 'unknown_type'
  | 'invalid_input'
  | 'not_found'
  | 'invalid_state'
  | 'invalid_event'
  | 'closed'
  | 'lease_lost'
  | 'store_unavailable'
  | 'aborted';

export class TaskstreamError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** `create` named an app/type no definition was registered for. */
export class UnknownTaskTypeError extends TaskstreamError {
  constructor(app: string, type: string, registered: readonly string[]) {
    const list = registered.length > 0 ? registered.join(', ') : '(none)';
    super('unknown_type', `unknown task type ${app}/${type}; registered: ${list}`);
  }
}

export interface ValidationIssue {
  readonly path: string;
  readonly message: string;
}

/** Input failed the task type's schema. `issues` lists every problem, with its path. */
export class InputValidationError extends TaskstreamError {
  readonly issues: readonly ValidationIssue[];
  constructor(what: string, issues: readonly ValidationIssue[]) {
    const summary = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
    super('invalid_input', `invalid input for ${what}: ${summary}`);
    this.issues = issues;
  }
}

export class TaskNotFoundError extends TaskstreamError {
  constructor(ref: string) {
    super('not_found', `task ${ref} not found`);
  }
}

/** The operation does not fit the task's status (re-running a finished task, sending after the run ended). */
export class TaskStateError extends TaskstreamError {
  readonly status: string;
  constructor(message: string, status: string) {
    super('invalid_state', message);
    this.status = status;
  }
}

/** Task code sent an event the log cannot take (bad name, reserved name, data not a JSON object, too large). */
export class InvalidEventError extends TaskstreamError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid_event', message, options);
  }
}

/** The runtime is shutting down or closed; it takes no new work. */
export class RuntimeClosedError extends TaskstreamError {
  constructor(what: string) {
    super('closed', `taskstream runtime is closed: cannot ${what}`);
  }
}

/** This process no longer owns the run (its lease was taken over); its writes are refused. */
export class LeaseLostError extends TaskstreamError {
  constructor(taskId: number) {
    super('lease_lost', `task ${taskId}: this process lost the run's lease; its writes are refused`);
  }
}

/**
 * The store could not be reached or was busy (a dropped connection, a database restarting): the
 * operation may succeed if tried again. `cause` is the driver's error.
 */
export class StoreUnavailableError extends TaskstreamError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('store_unavailable', message, options);
  }
}

/** True for an error worth retrying: the store said it was unavailable, not that the write was wrong. */
export function isRetryableStoreError(err: unknown): boolean {
  return err instanceof TaskstreamError && err.code === 'store_unavailable';
}

export type AbortKind = 'cancel' | 'timeout' | 'shutdown' | 'lease_lost';

/**
 * The reason `ctx.signal` aborts with. Its `name` is `AbortError`, so code that treats any
 * AbortError as "stop" (fetch, timers/promises, most libraries) does the right thing.
 */
export class TaskAbortedError extends TaskstreamError {
  readonly kind: AbortKind;
  readonly reason: string;
  constructor(kind: AbortKind, reason: string, message: string) {
    super('aborted', message);
    this.kind = kind;
    this.reason = reason;
    this.name = 'AbortError';
  }
}

/** Task code throws this (or a subclass) to fail at once, skipping any retries left. */
export class NonRetryableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export function isAbortError(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError');
}
