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
  /** Drops the connection (a slow client: its backlog is freed; it resumes with Last-Event-ID). */
  destroy(): void;
}

export interface SseOptions {
  readonly retryMs: number;
  readonly maxBufferedBytes: number;
}

/**
 * One SSE response: a hub sink that writes each event's shared frame. Transport-free; the Node
 * and Fetch adapters give it a transport. A client whose backlog passes `maxBufferedBytes` is
 * dropped (memory stays bounded; the store has everything it missed).
 */
export class SseSession implements Sink {
  readonly #transport: SseTransport;
  readonly #task: TaskRecord;
  readonly #maxBuffered: number;
  readonly #onEnd: (session: SseSession) => void;
  #detach: (() => void) | undefined;
  #ended = false;

  constructor(transport: SseTransport, task: TaskRecord, options: SseOptions, onEnd: (session: SseSession) => void) {
    this.#transport = transport;
    this.#task = task;
    this.#maxBuffered = options.maxBufferedBytes;
    this.#onEnd = onEnd;
    transport.write(retryField(options.retryMs));
  }

  start(runtime: Taskstream, afterSeq: number): void {
    const detach = runtime.watch(this.#task.id, afterSeq, this);
    if (this.#ended) detach();
    else this.#detach = detach;
  }

  event(event: EventRecord): boolean {
    this.#transport.write(frameOf(event, this.#task.app, this.#task.type));
    return this.#transport.buffered() <= this.#maxBuffered;
  }

  ping(): void {
    if (!this.#ended) this.#transport.write(PING);
  }

  end(reason: EndReason): void {
    if (this.#ended) return;
    this.#finish();
    if (reason === 'overflow' || reason === 'error') this.#transport.destroy();
    else this.#transport.end();
  }

  /** The client went away: release the watcher; the task goes on. */
  disconnected(): void {
    if (!this.#ended) this.#finish();
  }

  #finish(): void {
    this.#ended = true;
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
