export { createHandler } from './node.js';
export type { NodeHandler } from './node.js';
export { createFetchHandler } from './fetch.js';
export type { FetchHandler } from './fetch.js';
export type { HttpOptions } from './options.js';
export type { TaskJson } from './task-json.js';
export { encodeFrame } from '../sse/encode.js';
