import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { chunkOf, chunkOfBatch, frameOf } from '../sse/encode.js';
import type { EventRecord } from '../store/types.js';
import type { SseTransport } from './sse-session.js';

/**
 * Corks sockets for the rest of the tick and uncorks them all in one `process.nextTick`, so the
 * frames one batch writes to a stream leave in one `writev`. One per handler, shared by its streams:
 * a stream costs an array slot per tick it writes in, not a tick callback of its own.
 */
export class Corker {
  #sockets: Socket[] = [];

  cork(socket: Socket): void {
    if (socket.writableCorked !== 0) return;
    socket.cork();
    if (this.#sockets.push(socket) === 1) process.nextTick(uncorkAll, this);
  }

  uncork(): void {
    const sockets = this.#sockets;
    this.#sockets = [];
    for (const s of sockets) s.uncork();
  }
}

function uncorkAll(corker: Corker): void {
  corker.uncork();
}

/**
 * An SSE stream on a Node `ServerResponse`. A class, not an object of closures: one small object
 * per stream, its methods shared.
 *
 * Write path. Once the headers and the `retry:` field have gone through the response to the socket
 * (nothing is queued in the response, it is chunked, and nothing wraps `res.write`, as compression
 * middleware would), an event's frame is written to the socket directly as a ready HTTP/1.1 chunk
 * (`chunkOf`: `<hex length>\r\n<frame>\r\n`, one Buffer per event per process, shared by every
 * stream). The bytes on the wire are the ones `res.write(frame)` sends, without its four socket
 * writes per call (length, CRLF, data, CRLF), its string encoding per socket and its tick per
 * socket. A live batch of several events (`writeEvents`, `chunkOfBatch`) goes as one chunk holding
 * all their frames, one Buffer per batch shared the same way: one socket write for the batch
 * instead of one per event. Otherwise (HTTP/1.0, a wrapped response, a response still queued
 * behind another on the connection) frames go through `res.write`.
 */
export class NodeTransport implements SseTransport {
  readonly #res: ServerResponse;
  readonly #corker: Corker;
  /** Writes go straight to the socket (see the class comment); checked until it holds, then kept. */
  #direct = false;

  constructor(res: ServerResponse, corker: Corker) {
    this.#res = res;
    this.#corker = corker;
  }

  write(chunk: string): void {
    this.#res.write(chunk);
  }

  writeEvent(event: EventRecord, app: string, model: string): void {
    const socket = this.#res.socket;
    if (socket !== null && (this.#direct ? socket.writable : this.#canWriteDirect(socket))) {
      this.#corker.cork(socket);
      socket.write(chunkOf(event, app, model));
    } else {
      this.#res.write(frameOf(event, app, model));
    }
  }

  writeEvents(events: readonly EventRecord[], app: string, model: string, room: number): boolean {
    const socket = this.#res.socket;
    if (socket === null || !(this.#direct ? socket.writable : this.#canWriteDirect(socket))) return false;
    const chunk = chunkOfBatch(events, app, model);
    if (chunk.length > room) return false;
    this.#corker.cork(socket);
    socket.write(chunk);
    return true;
  }

  #canWriteDirect(socket: Socket): boolean {
    const res = this.#res;
    // writableLength is what the response holds plus the socket's: equal means the response queues nothing.
    this.#direct = socket.writable && res.headersSent && res.chunkedEncoding && !res.writableEnded && res.writableLength === socket.writableLength && !Object.hasOwn(res, 'write');
    return this.#direct;
  }

  buffered(): number {
    // (writableLength already counts the socket's bytes; the sum, kept from before, counts them twice.)
    return this.#res.writableLength + (this.#res.socket?.writableLength ?? 0);
  }

  end(): void {
    this.#res.end();
  }

  destroy(): void {
    this.#res.destroy();
  }

  onDrain(callback: () => void): void {
    // Direct writes fill the socket, not the response, so the response's 'drain' may never come;
    // writes that went through `res.write` (replayed frames, pings) may queue in the response,
    // whose 'drain' then comes instead. Wait for whichever comes first, once.
    const res = this.#res;
    const socket = res.socket;
    let called = false;
    const once = (): void => {
      if (called) return;
      called = true;
      res.off('drain', once);
      socket?.off('drain', once);
      callback();
    };
    res.once('drain', once);
    if (this.#direct && socket !== null) socket.once('drain', once);
  }

}
