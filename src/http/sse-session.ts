import type { EndReason, Sink } from '../hub/hub.js';
import type { Taskstream } from '../runtime/runtime.js';
import { encodeFrame, frameOf, PING, retryField } from '../sse/encode.js';
import type { ResolvedHttpOptions } from './options.js';
import type { EventRecord, TaskRecord } from '../store/types.js';

/** What an SSE stream writes to: a Node response or a Fetch ReadableStream. */
export interface SseTransport {
  write(chunk: string): void;
  /** Writes an event's frame (`frameOf`), when the transport has a cheaper form of it than `write(frame)`. */
  writeEvent?(event: EventRecord, app: string, model: string): void;
  /**
   * Writes a live batch's frames (`chunkOfBatch`) in one write if it can and they fit in `room`
   * bytes; returns false when it wrote nothing.
   */
  writeEvents?(events: readonly EventRecord[], app: string, model: string, room: number): boolean;
  /** Bytes written that the client has not taken yet. */
  buffered(): number;
  /** Ends the response cleanly (after what was written). */
  end(): void;
  /** Drops the connection (a stalled client: its backlog is freed; it resumes with Last-Event-ID). */
  destroy(): void;
  /** Calls back once when the backlog has been taken by the client. */
  onDrain(callback: () => void): void;
}

/**
 * What every stream of one handler shares: one object per handler, not per stream (a per-stream
 * copy of the options with its own hooks cost about 1 KB of heap per open stream: the object, its
 * out-of-object properties, a hidden class of its own and three closures).
 */
export interface SseShared {
  readonly retryMs: number;
  readonly maxBufferedBytes: number;
  readonly stalledClientMs: number;
  /** Told each time a stream pauses for a slow client (metrics). */
  readonly onPause?: (taskId: number) => void;
  /** Told of the event frames written (metrics); absent, nothing is counted. */
  readonly onFrame?: (count: number) => void;
  /** Told once when a stream ends, however it ends (the client left, the task finished, a stalled client dropped). */
  readonly onEnd: (session: SseSession) => void;
}

/**
 * The shared part of a handler's streams: pauses and ends reported as runtime events, the stream
 * leaves the heartbeat when it ends; `countFrames`: each event frame counted in the metrics (the
 * Fetch adapter counts them in its transport instead).
 */
export function sseShared(runtime: Taskstream, opts: ResolvedHttpOptions, heartbeat: Heartbeat, countFrames: boolean): SseShared {
  const metrics = opts.metrics;
  return {
    retryMs: opts.retryMs,
    maxBufferedBytes: opts.maxBufferedBytes,
    stalledClientMs: opts.stalledClientMs,
    onPause: (taskId) => runtime.report('stream:paused', { taskId }),
    onFrame: metrics === undefined || !countFrames ? undefined : (count) => metrics.framesSent(count),
    onEnd: (session) => {
      heartbeat.delete(session);
      runtime.report('stream:closed', { taskId: session.taskId });
    },
  };
}

/**
 * One SSE response: a hub sink that writes each event's shared frame. Transport-free; the Node
 * and Fetch adapters give it a transport.
 *
 * Backpressure: when the client's backlog passes `maxBufferedBytes` the session tells the hub it
 * is full; the hub pauses it (queueing nothing more for it, keeping at most the page it had read)
 * and resumes it once the backlog has drained, from where it stopped: nothing is read twice. A
 * client that takes nothing for `stalledClientMs` is dropped; it resumes with Last-Event-ID.
 */
export class SseSession implements Sink {
  readonly #transport: SseTransport;
  // Only what the frames need, not the whole task row (dates, input, result): less memory per stream.
  readonly #taskId: number;
  readonly #app: string;
  readonly #type: string;
  readonly #shared: SseShared;
  #detach: (() => void) | undefined;
  #ended = false;
  #stallTimer: NodeJS.Timeout | undefined;
  /** Heartbeat ticks since this stream last wrote an event (see `Heartbeat`). */
  #quiet = 0;

  constructor(transport: SseTransport, task: TaskRecord, shared: SseShared) {
    this.#transport = transport;
    this.#taskId = task.id;
    this.#app = task.app;
    this.#type = task.type;
    this.#shared = shared;
    transport.write(retryField(shared.retryMs));
  }

  get taskId(): number {
    return this.#taskId;
  }

  /** Attaches to the task's log after `afterSeq` (the hub keeps the cursor from then on). */
  start(runtime: Taskstream, afterSeq: number): void {
    const detach = runtime.watch(this.#taskId, afterSeq, this);
    if (this.#ended) detach();
    else this.#detach = detach;
  }

  event(event: EventRecord, shared: boolean): boolean {
    // A live event's frame is built once and shared by every stream; a replayed one is this stream's alone.
    const transport = this.#transport;
    if (!shared) transport.write(encodeFrame(event, this.#app, this.#type));
    else if (transport.writeEvent !== undefined) transport.writeEvent(event, this.#app, this.#type);
    else transport.write(frameOf(event, this.#app, this.#type));
    this.#quiet = 0;
    this.#shared.onFrame?.(1);
    return this.#transport.buffered() <= this.#shared.maxBufferedBytes;
  }

  events(events: readonly EventRecord[]): boolean | undefined {
    const transport = this.#transport;
    const max = this.#shared.maxBufferedBytes;
    if (transport.writeEvents === undefined || !transport.writeEvents(events, this.#app, this.#type, max - transport.buffered())) return undefined;
    this.#quiet = 0;
    this.#shared.onFrame?.(events.length);
    return transport.buffered() <= max;
  }

  /** A heartbeat tick: a `: ping` once the stream has written nothing for two ticks in a row. */
  beat(): void {
    if (++this.#quiet < 2) return;
    this.#quiet = 0;
    if (!this.#ended && this.#stallTimer === undefined) this.#transport.write(PING);
  }

  /** The hub paused this stream (its backlog is full): resume once the client has taken it. */
  onDrain(resume: () => void): void {
    if (this.#ended) return;
    this.#shared.onPause?.(this.#taskId);
    this.#stallTimer = setTimeout(() => {
      if (this.#ended) return;
      this.#finish();
      this.#transport.destroy();
    }, this.#shared.stalledClientMs);
    this.#transport.onDrain(() => {
      clearTimeout(this.#stallTimer);
      this.#stallTimer = undefined;
      if (!this.#ended) resume();
    });
  }

  end(reason: EndReason): void {
    if (this.#ended) return;
    this.#finish();
    if (reason === 'error' || reason === 'missing') this.#transport.destroy();
    else this.#transport.end();
  }

  /** The client went away: release the watcher; the task goes on. */
  disconnected(): void {
    if (!this.#ended) this.#finish();
  }

  #finish(): void {
    this.#ended = true;
    clearTimeout(this.#stallTimer);
    this.#detach?.();
    this.#shared.onEnd(this);
  }
}

/**
 * One timer pings the open streams of a handler, instead of a timer per connection. It ticks every
 * half interval, and a stream is pinged only after two ticks without an event, so an idle stream
 * still hears from the server at least once per interval, and a busy one (the fan-out to
 * thousands of streams) gets no ping on top of its events: no extra write per stream in the
 * middle of a fan-out.
 */
export class Heartbeat {
  readonly #sessions = new Set<SseSession>();
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(intervalMs: number) {
    this.#intervalMs = intervalMs;
  }

  get size(): number {
    return this.#sessions.size;
  }

  add(session: SseSession): void {
    this.#sessions.add(session);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => {
        for (const s of this.#sessions) s.beat();
      }, Math.max(1, this.#intervalMs / 2));
      this.#timer.unref();
    }
  }

  delete(session: SseSession): void {
    this.#sessions.delete(session);
    if (this.#sessions.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}
