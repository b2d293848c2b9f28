/** Rows as node-postgres returns them, and their conversion to the store's records. */
import type { EventRecord, NewEvent, StateEvent, TaskError, TaskRecord, TaskStatus } from '../types.js';

export interface TaskRow {
  id: string; app: string; type: string; status: TaskStatus; input: string; attempt: number; timeout_ms: number | null;
  final_value: string | null; error: string | null; cancel_reason: string | null; last_seq: number; first_seq: number;
  idempotency_key: string | null; lease_epoch: number; created_at: number; started_at: number | null; finished_at: number | null;
  completed_at: number | null;
}
export interface EventRow { task_id: string; seq: number; type: string; data: string; at: string }
export interface FenceRow { id: string; status: TaskStatus; lease_epoch: number; last_seq: number; cancel_requested: string | null }

/** One run's events in a batch: its epoch and the first and last seq. */
export interface Run { epoch: number; first: number; last: number }

export function groupRuns(events: readonly NewEvent[]): Map<number, Run> {
  const runs = new Map<number, Run>();
  for (const e of events) {
    const run = runs.get(e.taskId);
    if (run === undefined) runs.set(e.taskId, { epoch: e.epoch, first: e.seq, last: e.seq });
    else if (e.seq !== run.last + 1) throw new Error(`task ${e.taskId}: event seq ${e.seq} does not follow ${run.last}`);
    else run.last = e.seq;
  }
  return runs;
}

export function stateEvent(taskId: number, seq: number, event: StateEvent, at: number): EventRecord {
  return { taskId, seq, type: event.type, json: event.json, at };
}

export function checkKeep(keepLast: number): void {
  if (!Number.isSafeInteger(keepLast) || keepLast < 1) throw new TypeError(`retention: keep must be a whole number >= 1, got ${keepLast}`);
}

export function toTask(r: TaskRow): TaskRecord {
  return {
    id: Number(r.id), app: r.app, type: r.type, status: r.status, input: JSON.parse(r.input) as unknown, attempt: r.attempt,
    createdAt: new Date(r.created_at), startedAt: date(r.started_at), finishedAt: date(r.finished_at), completedAt: date(r.completed_at),
    finalValue: r.final_value === null ? null : (JSON.parse(r.final_value) as unknown),
    error: r.error === null ? null : (JSON.parse(r.error) as TaskError), cancelReason: r.cancel_reason,
    lastSeq: r.last_seq, firstSeq: r.first_seq, timeoutMs: r.timeout_ms, idempotencyKey: r.idempotency_key,
  };
}

export function toEvent(r: EventRow): EventRecord {
  return { taskId: Number(r.task_id), seq: r.seq, type: r.type, json: r.data, at: Number(r.at) };
}

function date(ms: number | null): Date | null {
  return ms === null ? null : new Date(ms);
}
