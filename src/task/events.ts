import type { StateEvent, TaskError } from '../store/types.js';

/**
 * The payloads of the events the runtime writes (protocol.md "Terminal events" and the runtime's
 * own `retry`, `interrupted` and `gap`), defined here once. Stores write what they are given.
 */
export const runtimeEvents = {
  complete(finalValueJson: string): StateEvent {
    return { type: 'complete', json: `{"final_value":${finalValueJson}}` };
  },
  error(error: TaskError): StateEvent {
    return { type: 'error', json: JSON.stringify({ message: error.message, error_type: error.type }) };
  },
  cancelled(reason: string, error?: TaskError): StateEvent {
    const data: Record<string, unknown> = { message: 'Task was cancelled', reason };
    if (error) data.error = { message: error.message, error_type: error.type };
    return { type: 'cancelled', json: JSON.stringify(data) };
  },
  timeout(timeoutMs: number, error?: TaskError): StateEvent {
    const data: Record<string, unknown> = { message: `Task timed out after ${timeoutMs / 1000} seconds`, timeout_ms: timeoutMs };
    if (error) data.error = { message: error.message, error_type: error.type };
    return { type: 'timeout', json: JSON.stringify(data) };
  },
  retry(attempt: number, maxAttempts: number, delayMs: number, message: string): StateEvent {
    return { type: 'retry', json: JSON.stringify({ attempt, max_attempts: maxAttempts, delay_ms: delayMs, message }) };
  },
  interrupted(reason: 'shutdown' | 'lease_expired'): StateEvent {
    return { type: 'interrupted', json: JSON.stringify({ reason }) };
  },
  /**
   * Never stored: what a reader positioned before the retained window gets first, with seq
   * `toSeq` (= first_seq - 1), naming the events retention removed (`fromSeq`..`toSeq`).
   */
  gap(fromSeq: number, toSeq: number): StateEvent {
    return { type: 'gap', json: `{"from_seq":${fromSeq},"to_seq":${toSeq}}` };
  },
} as const;

/** What a store needs to recover runs whose owner died. */
export const recoveryEvents = {
  interrupted: runtimeEvents.interrupted('lease_expired'),
  cancelled: (reason: string) => runtimeEvents.cancelled(reason),
};
