/**
 * Commands against a running server, through the isomorphic client (`src/client`):
 * create, tail, cancel, signal, list. Exit codes: 0 done; 1 the task ended otherwise than
 * `complete`, the server refused, or it could not be reached.
 */
import { createClient, TERMINAL_EVENT_TYPES, type StreamEvent, type TaskJson, type TaskstreamClient } from '../client/index.js';
import { EXIT, type Kind, type Ref } from './args.js';
import { barView, plainView, taskTable, type EventView } from './render.js';

export interface RemoteIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  /** Where the progress bar draws when it is a terminal. */
  readonly stdout: NodeJS.WriteStream;
}

export interface RemoteOptions {
  readonly url: string;
  /** API key (`--key`, TASKSTREAM_KEY). */
  readonly key?: string;
  /** Stream token for one task (`--token`, TASKSTREAM_TOKEN); the key wins when both are given. */
  readonly token?: string;
}

const FAILED_STATUSES = new Set(['failed', 'cancelled', 'timed_out']);

function client(options: RemoteOptions): TaskstreamClient {
  const credential = options.key ?? options.token;
  return createClient({
    baseUrl: options.url,
    ...(credential === undefined ? {} : { headers: { authorization: `Bearer ${credential}` } }),
    fetch: (input, init) => fetchOrExplain(options.url, input, init),
  });
}

/** fetch, with "fetch failed" turned into a reason a user can act on. */
async function fetchOrExplain(base: string, input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(input, init);
  } catch (err) {
    if (init?.signal?.aborted) throw err;
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
    throw new Error(`cannot reach the server at ${base} (${why}); is \`taskstream serve\` running? (--url or TASKSTREAM_URL)`, { cause: err });
  }
}

export async function createCommand(
  kind: Kind,
  options: RemoteOptions & { input: Record<string, unknown>; idempotencyKey?: string; follow?: boolean; json?: boolean },
  io: RemoteIo,
): Promise<number> {
  const api = client(options);
  const task = await api.create(`${kind.app}/${kind.type}`, options.input, options.idempotencyKey === undefined ? {} : { idempotencyKey: options.idempotencyKey });
  io.out(options.json === true ? JSON.stringify(task) : `created ${task.app}/${task.type}/${task.id} status=${task.status} stream_url=${new URL(task.stream_url, `${options.url}/`).href}`);
  if (options.follow !== true) return EXIT.ok;
  return follow(api, task, undefined, io);
}

export async function tailCommand(ref: Ref, options: RemoteOptions & { lastEventId?: number }, io: RemoteIo): Promise<number> {
  const api = client(options);
  // One plain request first: an unknown task or an unreachable server fails fast, where the
  // stream itself would keep reconnecting.
  const task = await api.get(ref);
  return follow(api, task, options.lastEventId, io);
}

/**
 * Prints the task's events until its terminal event. The client resumes a dropped connection with
 * Last-Event-ID, so a server restart shows as a pause, never as a gap or a repeat.
 */
async function follow(api: TaskstreamClient, task: TaskJson, lastEventId: number | undefined, io: RemoteIo): Promise<number> {
  const name = `${task.app}/${task.type}/${task.id}`;
  const view: EventView = io.stdout.isTTY ? barView(io.stdout, name) : plainView(io.out);
  let terminal: StreamEvent | undefined;
  // Ctrl-C stops watching (the task goes on) and restores the terminal the bar drew on.
  const interrupt = new AbortController();
  const onSigint = (): void => interrupt.abort();
  process.once('SIGINT', onSigint);
  try {
    for await (const event of api.stream(task, { signal: interrupt.signal, ...(lastEventId === undefined ? {} : { lastEventId }) })) {
      view.event(event); // a retention gap prints as `N gap {"from_seq":…,"to_seq":…}`
      if (event.kind !== 'gap' && TERMINAL_EVENT_TYPES.has(event.type)) {
        terminal = event;
        break;
      }
    }
  } catch (err) {
    if (!interrupt.signal.aborted) throw err;
    io.err(`taskstream: stopped watching ${name} (the task goes on)`);
    return EXIT.forced;
  } finally {
    process.off('SIGINT', onSigint);
    view.stop();
  }
  if (terminal !== undefined) return terminal.type === 'complete' ? EXIT.ok : EXIT.failure;
  // Nothing after --last-event-id: the stream ended at once; the task's status is the outcome.
  const final = await api.get(task);
  if (final.status === 'completed') return EXIT.ok;
  if (FAILED_STATUSES.has(final.status)) {
    io.err(`taskstream: ${name} ended ${final.status}`);
    return EXIT.failure;
  }
  io.err(`taskstream: the stream of ${name} ended while it is ${final.status}`);
  return EXIT.failure;
}

export async function cancelCommand(ref: Ref, options: RemoteOptions & { reason?: string }, io: RemoteIo): Promise<number> {
  const result = await client(options).cancel(ref, options.reason);
  const name = `${ref.app}/${ref.type}/${ref.id}`;
  if (result.cancelled) {
    io.out(`cancel requested for ${name} (it was ${result.status})`);
    return EXIT.ok;
  }
  io.err(`taskstream: ${name} was not cancelled: it already ended (${result.status})`);
  return EXIT.failure;
}

export async function signalCommand(ref: Ref, name: string, options: RemoteOptions & { payload?: unknown }, io: RemoteIo): Promise<number> {
  const result = await client(options).signal(ref, name, options.payload ?? null);
  const task = `${ref.app}/${ref.type}/${ref.id}`;
  if (result.delivered) {
    io.out(`signal ${name} delivered to ${task}`);
    return EXIT.ok;
  }
  io.err(`taskstream: signal ${name} not delivered: ${task} already ended${result.status === undefined ? '' : ` (${result.status})`}`);
  return EXIT.failure;
}

export async function listCommand(
  options: RemoteOptions & { app?: string; type?: string; status?: string; limit: number; before?: number; json?: boolean },
  io: RemoteIo,
): Promise<number> {
  const page = await client(options).list({
    limit: options.limit,
    ...(options.app === undefined ? {} : { app: options.app }),
    ...(options.type === undefined ? {} : { type: options.type }),
    ...(options.status === undefined ? {} : { status: options.status as TaskJson['status'] }),
    ...(options.before === undefined ? {} : { before: options.before }),
  });
  if (options.json === true) {
    io.out(JSON.stringify(page));
    return EXIT.ok;
  }
  if (page.tasks.length === 0) {
    io.out('no tasks');
    return EXIT.ok;
  }
  for (const line of taskTable(page.tasks)) io.out(line);
  if (page.next !== null) io.out(`(more: --before ${page.next})`);
  return EXIT.ok;
}
