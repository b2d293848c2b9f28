import type { Bus } from '../bus/types.js';
import { isAbortError, isRetryableStoreError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { EventRecord, FinishResult, Store, TaskRecord } from '../store/types.js';
import { type AnyTaskDefinition, retryPolicyOf } from '../task/define.js';
import type { RunInfo, SafeEmitter, TaskstreamEvents } from './emitter.js';
import { cancelled, type Plan, planOutcome } from './outcome.js';
import type { ActiveRun } from './run.js';
import type { EventWriter } from './writer.js';

export interface ExecuteDeps {
  readonly store: Store;
  readonly bus: Bus;
  readonly writer: EventWriter;
  readonly emitter: SafeEmitter<TaskstreamEvents>;
  readonly logger: Logger;
  readonly maxEventBytes: number;
  /** The runtime's default grace for a run that ignores its aborted signal. */
  readonly graceMs: number;
  /** How long an outcome write is retried while the store is unavailable (the lease). */
  readonly retryForMs: number;
  /** Announces stored events; never throws. */
  readonly publish: (taskId: number, events: readonly EventRecord[]) => void;
  /** Work becomes runnable in `ms`: every scheduler hears of it (this one directly). */
  readonly wakeIn: (ms: number) => void;
  /** Retention: the newest events a type's tasks keep (undefined: all), pruned with the terminal write. */
  readonly retainEvents?: (def: AnyTaskDefinition) => number | undefined;
}

/**
 * One claimed run, start to stored outcome: build its context, arm its timeout, wait for it to
 * settle (or be abandoned after its grace), flush its events, then write the outcome `planOutcome`
 * decides. Events the run sent always precede the terminal event: they are flushed first.
 */
export async function executeRun(deps: ExecuteDeps, run: ActiveRun, def: AnyTaskDefinition): Promise<void> {
  const { logger } = deps;
  const ctx = run.context({
    writer: deps.writer, logger, maxEventBytes: deps.maxEventBytes,
    takeSignal: (id, name) => deps.store.takeSignal(id, name),
  });
  const timeoutMs = run.task.timeoutMs ?? (typeof def.timeoutMs === 'number' ? def.timeoutMs : undefined);
  const graceMs = def.graceMs ?? deps.graceMs;
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => run.abort('timeout', 'timeout', graceMs), timeoutMs);
  const settled = await run.settle((async () => def.run(ctx, run.task.input))());
  clearTimeout(timer);
  if (settled.kind === 'abandoned') {
    logger.warn({ taskId: run.id, kind: run.abortKind }, `taskstream: task ${run.task.app}/${run.task.type}/${run.id} ignored its aborted signal; its promise is abandoned`);
    deps.emitter.emit('task:abandoned', { ...runInfo(run.task), reason: run.abortKind ?? 'unknown' });
  }
  // The run stopping with the abort itself (its signal's reason, an AbortError from fetch or a
  // timer) is the routine end of a cancel or shutdown: nothing to warn about.
  if (settled.kind === 'error' && run.abortKind !== undefined && !isAbortError(settled.error)) {
    logger.warn({ err: settled.error, taskId: run.id, kind: run.abortKind }, 'taskstream: run threw after its signal aborted');
  }
  await deps.writer.flush();
  const plan = planOutcome(run, settled, retryPolicyOf(def), timeoutMs, Date.now());
  await applyPlan(deps, run, plan, deps.retainEvents?.(def));
}

async function applyPlan(deps: ExecuteDeps, run: ActiveRun, plan: Plan, retainEvents: number | undefined): Promise<void> {
  if (plan.action === 'none') return;
  const now = Date.now();
  const result = await retrying(deps, () => plan.action === 'finish'
    ? deps.store.finishRun({
      taskId: run.id, epoch: run.epoch, status: plan.status, finalValue: plan.finalValue, error: plan.error,
      cancelReason: plan.cancelReason, event: plan.event, unlessCancelRequested: plan.yieldsToCancel, retainEvents, now,
    })
    : deps.store.requeueRun({ taskId: run.id, epoch: run.epoch, delayMs: Math.max(0, plan.runAt - now), event: plan.event, error: plan.error, now }));
  if (!result.ok && result.reason === 'cancel_requested') {
    // A cancel landed before this outcome was written: the cancel wins, as it was told.
    return applyPlan(deps, run, cancelled(result.cancelReason), retainEvents);
  }
  if (!result.ok) {
    deps.logger.warn({ taskId: run.id }, 'taskstream: run outcome refused; another process owns the task now');
    return;
  }
  deps.publish(run.id, [result.event]);
  deps.emitter.emit('events:appended', { count: 1 });
  if (plan.action === 'finish') {
    deps.emitter.emit('task:finished', { ...runInfo(run.task), status: plan.status });
  } else {
    deps.emitter.emit('task:requeued', { ...runInfo(run.task), reason: plan.reason, runAt: plan.runAt });
    if (plan.reason === 'retry') deps.wakeIn(plan.runAt - now);
  }
}

/**
 * An outcome write, retried while the store says it is unavailable (up to the lease: past it the
 * task is someone else's to recover). The store recognises an outcome an earlier try committed.
 */
async function retrying(deps: ExecuteDeps, write: () => Promise<FinishResult>): Promise<FinishResult> {
  const deadline = Date.now() + deps.retryForMs;
  let delay = 25;
  for (;;) {
    try {
      return await write();
    } catch (err) {
      if (!isRetryableStoreError(err) || Date.now() + delay > deadline) throw err;
      deps.logger.warn({ err }, `taskstream: writing a run's outcome failed; retrying in ${delay} ms`);
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 1000);
    }
  }
}

export function runInfo(task: TaskRecord): RunInfo {
  return { id: task.id, app: task.app, type: task.type, attempt: task.attempt };
}
