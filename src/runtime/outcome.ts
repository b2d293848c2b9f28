import { isAbortError, NonRetryableError } from '../errors.js';
import type { StateEvent, TaskError } from '../store/types.js';
import type { RetryPolicy } from '../task/define.js';
import { runtimeEvents } from '../task/events.js';
import type { ActiveRun, Settled } from './run.js';

/** What the runtime writes once a run has settled: a terminal state, a requeue, or nothing. */
export type Plan =
  | {
      readonly action: 'finish';
      readonly status: 'completed' | 'failed' | 'cancelled' | 'timed_out';
      readonly event: StateEvent;
      readonly finalValue?: string;
      readonly error?: TaskError;
      readonly cancelReason?: string;
      /** A recorded cancel overrides this outcome (it was promised to the canceller). */
      readonly yieldsToCancel: boolean;
    }
  | {
      readonly action: 'requeue';
      readonly reason: 'retry' | 'shutdown';
      readonly runAt: number;
      readonly event: StateEvent;
      readonly error?: TaskError;
    }
  | { readonly action: 'none' };

/**
 * Decides a settled run's outcome. The rules, in order:
 * - A value returned before any abort, or during shutdown, completes the task: the work is done.
 * - Cancel: `cancelled`, whatever the run did after the abort. An error thrown while it handled the
 *   abort (anything but the AbortError itself) is kept: stored as the task's `error`, carried in the
 *   `cancelled` event's data as `error`, and logged. Cancel still wins: it was told it won.
 * - Timeout: `timed_out`, the same way.
 * - Shutdown: back to `pending` with an `interrupted` event; the next process runs it again.
 * - Lost lease: nothing; the new owner decides.
 * - An error with no abort: a retry while the policy allows and the error is not a
 *   NonRetryableError, else `failed`.
 */
export function planOutcome(run: ActiveRun, settled: Settled, retry: Required<RetryPolicy>, timeoutMs: number | undefined, now: number): Plan {
  const kind = run.abortKind;
  if (settled.kind === 'value' && (kind === undefined || kind === 'shutdown')) {
    let finalValue: string;
    try {
      finalValue = JSON.stringify(settled.value ?? null);
    } catch (cause) {
      const error = toTaskError(new TypeError(`final value is not JSON-serialisable: ${(cause as Error).message}`));
      return failed(error);
    }
    return {
      action: 'finish', status: 'completed', finalValue, yieldsToCancel: true,
      event: runtimeEvents.complete(finalValue),
    };
  }
  const handlerError = settled.kind === 'error' && !isAbortError(settled.error) ? toTaskError(settled.error) : undefined;
  switch (kind) {
    case 'cancel':
      return cancelled(run.abortReason, handlerError);
    case 'timeout': {
      const event = runtimeEvents.timeout(timeoutMs ?? 0, handlerError);
      return { action: 'finish', status: 'timed_out', error: handlerError, yieldsToCancel: true, event };
    }
    case 'shutdown':
      return { action: 'requeue', reason: 'shutdown', runAt: now, error: handlerError, event: runtimeEvents.interrupted('shutdown') };
    case 'lease_lost':
      return { action: 'none' };
    case undefined:
      break;
  }
  const error = settled.kind === 'error' ? toTaskError(settled.error) : toTaskError(new Error('run abandoned'));
  const maxAttempts = retry.limit + 1;
  const retryable = !(settled.kind === 'error' && settled.error instanceof NonRetryableError);
  if (retryable && run.task.attempt < maxAttempts) {
    const delay = Math.min(retry.maxBackoffMs, retry.backoffMs * retry.factor ** (run.task.attempt - 1));
    const event = runtimeEvents.retry(run.task.attempt, maxAttempts, delay, error.message);
    return { action: 'requeue', reason: 'retry', runAt: now + delay, error, event };
  }
  return failed(error);
}

export function cancelled(reason: string, error?: TaskError): Plan & { action: 'finish' } {
  const event = runtimeEvents.cancelled(reason, error);
  return { action: 'finish', status: 'cancelled', cancelReason: reason, error, yieldsToCancel: false, event };
}

function failed(error: TaskError): Plan {
  return {
    action: 'finish', status: 'failed', error, yieldsToCancel: true,
    event: runtimeEvents.error(error),
  };
}

export function toTaskError(err: unknown): TaskError {
  if (err instanceof Error) {
    const type = err.name !== 'Error' ? err.name : err.constructor.name;
    return { message: messageWithCauses(err), type, stack: err.stack };
  }
  return { message: String(err), type: typeof err };
}

/**
 * The message with its `cause` chain (a few levels): `fetch failed: connect ECONNREFUSED
 * 127.0.0.1:9` rather than the bare `fetch failed` undici throws.
 */
function messageWithCauses(err: Error): string {
  let message = err.message;
  let cause = err.cause;
  for (let depth = 0; cause instanceof Error && depth < 5; depth++) {
    if (cause.message !== '' && !message.includes(cause.message)) message += `: ${cause.message}`;
    cause = cause.cause;
  }
  return message;
}
