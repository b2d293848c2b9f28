/**
 * `/metrics`: Prometheus text format from a registry of its own (prom-client), so several
 * runtimes and handlers in one process never share state.
 *
 * Fed by the runtime's typed events (`task:created`, `task:finished`, `events:appended`,
 * `stream:*`, `lease:expired`, `store:error`), the same events logs and tests use. Two figures
 * are read when scraped instead: tasks running (this runtime) and tasks pending (the store, so
 * the whole cluster; counted page by page up to `maxPendingCount`). Frames sent to SSE clients
 * are counted with a plain integer per handler (one increment per frame per subscriber, the
 * hot path), folded into the counter at scrape time.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Taskstream } from '../runtime/runtime.js';

export interface TaskstreamMetrics {
  readonly registry: Registry;
  /** Text exposition of every metric. */
  render(): Promise<string>;
  /** Counts one finished HTTP request (route is the template, never a concrete path). */
  observeRequest(route: string, method: string, status: number, seconds: number): void;
  /** Counts SSE frames written to clients. */
  framesSent(count: number): void;
  /** Stops listening to the runtime. */
  close(): void;
}

export interface MetricsOptions {
  /** Also collect prom-client's `process_*` and `nodejs_*` metrics. Default true. */
  readonly defaultMetrics?: boolean;
  /** Stop counting pending tasks past this many (each 1000 costs one page read). Default 10000. */
  readonly maxPendingCount?: number;
}

/** Buckets for request durations: 1 ms to 10 s. */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createMetrics(runtime: Taskstream, options: MetricsOptions = {}): TaskstreamMetrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const maxPending = options.maxPendingCount ?? 10_000;
  const registers = [registry];

  const created = new Counter({ name: 'taskstream_tasks_created_total', help: 'Tasks created through this runtime.', labelNames: ['app', 'type'], registers });
  const finished = new Counter({ name: 'taskstream_tasks_finished_total', help: 'Tasks that reached a terminal status in this runtime.', labelNames: ['app', 'type', 'status'], registers });
  new Gauge({ name: 'taskstream_tasks_running', help: 'Runs in progress in this runtime.', registers, collect() { this.set(runtime.stats.running); } });
  new Gauge({
    name: 'taskstream_tasks_pending', help: `Pending tasks in the store (all processes), counted up to ${maxPending}.`, registers,
    async collect() { this.set(await countPending(runtime, maxPending)); },
  });
  const appended = new Counter({ name: 'taskstream_events_appended_total', help: 'Events stored by this runtime.', registers });
  const streams = new Gauge({ name: 'taskstream_sse_streams', help: 'SSE streams open now.', registers });
  let sent = 0;
  let reported = 0;
  new Counter({
    name: 'taskstream_sse_events_sent_total', help: 'Event frames written to SSE clients.', registers,
    collect() { this.inc(sent - reported); reported = sent; },
  });
  const pauses = new Counter({ name: 'taskstream_sse_slow_client_pauses_total', help: 'Streams paused because the client fell behind.', registers });
  const takeovers = new Counter({ name: 'taskstream_lease_takeovers_total', help: 'Runs of stopped processes put back to pending after their lease expired.', registers });
  const storeErrors = new Counter({ name: 'taskstream_store_errors_total', help: 'Failed store operations of the runtime loops.', labelNames: ['operation'], registers });
  const requests = new Counter({ name: 'taskstream_http_requests_total', help: 'HTTP requests answered.', labelNames: ['route', 'method', 'status'], registers });
  const durations = new Histogram({
    name: 'taskstream_http_request_duration_seconds', help: 'Time to answer an HTTP request (for a stream: until its headers are sent).',
    labelNames: ['route', 'method'], buckets: DURATION_BUCKETS, registers,
  });

  const offs = [
    runtime.on('task:created', ({ task }) => created.inc({ app: task.app, type: task.type })),
    runtime.on('task:finished', (info) => finished.inc({ app: info.app, type: info.type, status: info.status })),
    runtime.on('events:appended', ({ count }) => appended.inc(count)),
    runtime.on('stream:opened', () => streams.inc()),
    runtime.on('stream:closed', () => streams.dec()),
    runtime.on('stream:paused', () => pauses.inc()),
    runtime.on('lease:expired', () => takeovers.inc()),
    runtime.on('store:error', ({ operation }) => storeErrors.inc({ operation })),
  ];
  return {
    registry,
    render: () => registry.metrics(),
    observeRequest(route, method, status, seconds) {
      requests.inc({ route, method, status: String(status) });
      durations.observe({ route, method }, seconds);
    },
    framesSent(count) {
      sent += count;
    },
    close() {
      for (const off of offs) off();
    },
  };
}

async function countPending(runtime: Taskstream, max: number): Promise<number> {
  if (runtime.closed) return 0;
  let count = 0;
  let before: number | undefined;
  while (count < max) {
    const page = await runtime.list({ status: 'pending', limit: 1000, ...(before === undefined ? {} : { before }) });
    count += page.tasks.length;
    if (page.next === null) break;
    before = page.next;
  }
  return Math.min(count, max);
}

/**
 * The route template of a request path (below the mount point): what metrics and logs name a
 * request by, so their label sets stay bounded whatever ids and names clients send.
 */
export function routeTemplate(segments: readonly string[]): string {
  const [first] = segments;
  const n = segments.length;
  switch (first) {
    case undefined: return '/';
    case 'health': case 'ready': case 'metrics': return n === 1 ? `/${first}` : 'unmatched';
    case 'stream': return n === 4 ? '/stream/{app}/{type}/{id}' : 'unmatched';
    case 'tasks':
      if (n === 1) return '/tasks';
      if (n === 2 && segments[1] === 'types') return '/tasks/types';
      if (n === 3) return '/tasks/{app}/{type}';
      if (n === 4) return '/tasks/{app}/{type}/{id}';
      if (n === 5 && segments[4] === 'cancel') return '/tasks/{app}/{type}/{id}/cancel';
      if (n === 6 && segments[4] === 'signals') return '/tasks/{app}/{type}/{id}/signals/{name}';
      return 'unmatched';
    default:
      return n === 1 ? '/{asset}' : 'unmatched';
  }
}
