/**
 * `taskstream/client`: the isomorphic (browser and Node) typed client of the protocol (docs/http-api.md).
 * Nothing here imports server code; task definitions reach it as types only.
 *
 * @module taskstream/client
 */
export { createClient, outcomeOfEvent, parseRef } from './client.js';
export type {
  ClientOptions, CreateTaskOptions, HeadersSource, RequestOptions, TaskstreamClient,
} from './client.js';
export type { FetchLike, ReconnectOptions, StreamOptions } from './stream.js';
export {
  TaskCancelledError, TaskFailedError, TaskstreamClientError, TaskTimedOutError,
} from './errors.js';
export type { TaskPointer } from './errors.js';
export { TERMINAL_EVENT_TYPES } from './types.js';
export type {
  AppOf, CancelResult, ClientTaskDefinition, DefinitionOf, InputFor, KindOf, KindRef, KnownKind, ListQuery, ResultFor, SignalResult,
  StreamEvent, StreamGap, StreamItem, TaskJson, TaskList, TaskRefInput, TaskStatus, TerminalStatus, TypeOf,
} from './types.js';
