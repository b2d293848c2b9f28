import type { TaskRecord } from '../store/types.js';

/** The protocol's task JSON (snake_case, ISO-8601 UTC times). The stack of an error stays server-side. */
export interface TaskJson {
  id: number;
  app: string;
  type: string;
  status: string;
  input: unknown;
  attempt: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  completed_at: string | null;
  final_value: unknown;
  error: { message: string; type: string } | null;
  cancel_reason: string | null;
  first_seq: number;
  last_seq: number;
  stream_url: string;
  /** On the create response when Access is on: a `read` token for this task (also in `stream_url` as `?token=`). */
  stream_token?: string;
}

export function taskJson(task: TaskRecord, basePath: string): TaskJson {
  return {
    id: task.id,
    app: task.app,
    type: task.type,
    status: task.status,
    input: task.input,
    attempt: task.attempt,
    created_at: task.createdAt.toISOString(),
    started_at: iso(task.startedAt),
    finished_at: iso(task.finishedAt),
    completed_at: iso(task.completedAt),
    final_value: task.finalValue,
    error: task.error ? { message: task.error.message, type: task.error.type } : null,
    cancel_reason: task.cancelReason,
    first_seq: task.firstSeq,
    last_seq: task.lastSeq,
    stream_url: `${basePath}/stream/${task.app}/${task.type}/${task.id}`,
  };
}

/** The Django Streaming Coordinator's answer for a finished task asked without `Accept: text/event-stream` (kept for its clients). */
export function finishedJson(task: TaskRecord): Record<string, unknown> {
  const body: Record<string, unknown> = {
    status: task.status,
    final_value: task.finalValue,
    completed_at: iso(task.completedAt),
  };
  if (task.status === 'failed') body.error = task.error ? { message: task.error.message, error_type: task.error.type } : null;
  if (task.status === 'cancelled') body.reason = task.cancelReason;
  if (task.status === 'timed_out') body.reason = 'timeout';
  return body;
}

function iso(date: Date | null): string | null {
  return date === null ? null : date.toISOString();
}
