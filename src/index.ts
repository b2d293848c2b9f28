/**
 * `taskstream`: define tasks, run them (`createTaskstream`), store them (`sqliteStore`), serve them over HTTP
 * (`createHandler`, `createFetchHandler`).
 *
 * @module taskstream
 */
export { defineTask } from './task/define.js';
export type { AnyTaskDefinition, InputOf, ResultOf, RetryPolicy, RunContext, TaskDefinition } from './task/define.js';
export type { RetentionPolicy } from './task/retention.js';
export { createTaskstream, Taskstream } from './runtime/runtime.js';
export type { CreateOptions, CreateResult, TaskKind, TaskRef, TaskstreamOptions } from './runtime/runtime.js';
export type { TaskEvent } from './runtime/subscription.js';
export type { TaskstreamEvents, RunInfo } from './runtime/emitter.js';
export { sqliteStore, SqliteStore } from './store/sqlite/sqlite-store.js';
export type { SqliteStoreOptions } from './store/sqlite/sqlite-store.js';
export { MemoryDatabase, memoryStore, MemoryStore } from './store/memory.js';
export type { MemoryStoreOptions } from './store/memory.js';
export type {
  CancelResult, ClaimedRun, EventPage, EventRecord, FinishResult, FinishRun, LeaseRenewal, ListFilter, LogPosition, MigrationReport, NewEvent,
  NewTask, PageLimit, PageRead, RecoveryEvents, RequeueRun, StateEvent, Store, TaskError, TaskRecord, TaskStatus,
} from './store/types.js';
export { TERMINAL_STATUSES } from './store/types.js';
export { LocalBus, localBus } from './bus/local.js';
export type { Bus, Command } from './bus/types.js';
export type { EndReason, Sink } from './hub/hub.js';
export { TERMINAL_EVENTS, NAME_PATTERN } from './task/names.js';
export type { Logger } from './logger.js';
export { silentLogger } from './logger.js';
export {
  InputValidationError, InvalidEventError, isAbortError, isRetryableStoreError, LeaseLostError, StoreUnavailableError, NonRetryableError, RuntimeClosedError,
  TaskAbortedError, TaskNotFoundError, TaskStateError, TaskstreamError, UnknownTaskTypeError,
} from './errors.js';
export type { AbortKind, ErrorCode, ValidationIssue } from './errors.js';
export { createFetchHandler, createHandler, encodeFrame } from './http/index.js';
export type { FetchHandler, HttpOptions, NodeHandler, TaskJson } from './http/index.js';
export { createMetrics, createStreamToken, serverTimeouts } from './http/index.js';
export type {
  AccessOptions, ConnectionInfo, LimitsOptions, MetricsOptions, RateLimitOptions, Scope, StreamTokenOptions, TaskstreamMetrics,
} from './http/index.js';
