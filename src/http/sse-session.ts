import type { EndReason, Sink } from '../hub/hub.js';
import type { Taskstream } from '../runtime/runtime.js';
import { frameOf, PING, retryField } from '../sse/encode.js';
import type { EventRecord, TaskRecord } from '../store/types.js';

/** What an SSE stream writes to: a Node response or a Fetch ReadableStream. */
export interface SseTransport {
  write(chunk: string): void;
  /** Bytes written that the client has not taken yet. */
  buffered(): number;
  /** Ends the response cleanly (after what was written). */
  end(): void;
  /** Drops the connection (a stalled client: its backlog is freed; it resumes with Last-Event-ID). */
  destroy(): void;
  /** Calls back once when the backlog has been taken by the client. */
  onDrain(callback: () => void): void;
}

export interface SseOptions {
  readonly retryMs: number;
  readonly maxBufferedBytes: number;
  readonly stalledClientMs: number;
  /** Told each time the stream pauses for a slow client (metrics). */
  readonly onPause?: () => void;
}

/**
 * One SSE response: a hub sink that writes each event's shared frame. Transport-free; the Node
 * and Fetch adapters give it a transport.
 *
 * Backpressure: when the client's backlog passes `maxBufferedBytes` the session detaches from the
 * hub (memory stays bounded: nothing more is queued for it) and waits for the backlog to drain;
 * then it re-attaches at its last written seq, so what it missed is read from the store. A client
 * that takes nothing for `stalledClientMs` is dropped; it resumes with Last-Event-ID.
 */
export class SseSession implements Sink {
  readonly #transport: SseTransport;
  // Only what the frames need, not the whole task row (dates, input, result): less memory per stream.
  readonly #taskId: number;
  readonly #app: string;
  readonly #type: string;
  readonly #options: SseOptions;
  readonly #onEnd: (session: SseSession) => void;
  #runtime: Taskstream | undefined;
  #detach: (() => void) | undefined;
  #cursor = 0;
  #ended = false;
  #stallTimer: NodeJS.Timeout | undefined;

  constructor(transport: SseTransport, task: TaskRecord, options: SseOptions, onEnd: (session: SseSession) => void) {
    this.#transport = transport;
    this.#taskId = task.id;
    this.#app = task.app;
    this.#type = task.type;
    this.#options = options;
    this.#onEnd = onEnd;
    transport.write(retryField(options.retryMs));
  }

  start(runtime: Taskstream, afterSeq: number): void {
    this.#runtime = runtime;
    this.#cursor = afterSeq;
    this.#attach();
  }

  event(event: EventRecord): boolean {
    this.#transport.write(frameOf(event, this.#app, this.#type));
    this.#cursor = event.seq;
    return this.#transport.buffered() <= this.#options.maxBufferedBytes;
  }

  ping(): void {
    if (!this.#ended && this.#stallTimer === undefined) this.#transport.write(PING);
  }

  end(reason: EndReason): void {
    if (this.#ended) return;
    if (reason === 'overflow') return this.#pause();
    this.#finish();
    if (reason === 'error') this.#transport.destroy();
    else this.#transport.end();
  }

  /** The client went away: release the watcher; the task goes on. */
  disconnected(): void {
    if (!this.#ended) this.#finish();
  }

  #attach(): void {
    const detach = this.#runtime!.watch(this.#taskId, this.#cursor, this);
    if (this.#ended) detach();
    else this.#detach = detach;
  }

  #pause(): void {
    this.#detach = undefined;
    this.#options.onPause?.();
    this.#stallTimer = setTimeout(() => {
      if (this.#ended) return;
      this.#finish();
      this.#transport.destroy();
    }, this.#options.stalledClientMs);
    this.#transport.onDrain(() => {
      clearTimeout(this.#stallTimer);
      this.#stallTimer = undefined;
      if (!this.#ended) this.#attach();
    });
  }

  #finish(): void {
    this.#ended = true;
    clearTimeout(this.#stallTimer);
    this.#detach?.();
    this.#onEnd(this);
  }
}

/** One timer pings every open stream of a handler, instead of a timer per connection. */
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
        for (const s of this.#sessions) s.ping();
      }, this.#intervalMs);
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
