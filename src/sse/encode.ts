import type { EventRecord } from '../store/types.js';

/**
 * The SSE wire form of one stored event (docs/http-api.md):
 *
 *   id: <seq>\nevent: <type>\ndata: <the event's JSON object plus _task_id, _app, _model, _timestamp, _seq>\n\n
 *
 * CR/LF safety: `type`, `app` and `model` match [A-Za-z0-9_.:-], and JSON.stringify escapes CR and LF
 * inside strings, so `data` is always one line. The stored JSON is spliced rather than re-stringified:
 * the frame costs one string build per event per process (streams share it through a per-process cache keyed by the event object).
 */
export function encodeFrame(event: EventRecord, app: string, model: string): string {
  const meta = `"_task_id":${event.taskId},"_app":"${app}","_model":"${model}","_timestamp":"${new Date(event.at).toISOString()}","_seq":${event.seq}}`;
  const json = event.json;
  const data = json.length > 2 ? `${json.slice(0, -1)},${meta}` : `{${meta}`;
  return `id: ${event.seq}\nevent: ${event.type}\ndata: ${data}\n\n`;
}

// Keyed by the event object, which the hub shares between every watcher of a task in this process;
// an entry goes with its event once no buffer or replay page holds it any more.
const frames = new WeakMap<EventRecord, string>();

/** The shared frame of an event, built by the first stream that sends it. */
export function frameOf(event: EventRecord, app: string, model: string): string {
  let frame = frames.get(event);
  if (frame === undefined) frames.set(event, (frame = encodeFrame(event, app, model)));
  return frame;
}

const chunks = new WeakMap<EventRecord, Buffer>();

/**
 * The frame as one ready HTTP/1.1 chunk, `<hex byte length>\r\n<frame>\r\n`: what `res.write(frame)`
 * puts on a chunked response, built once per event per process, so a Node stream can write it to
 * its socket as is (no per-socket encoding or chunk framing).
 */
export function chunkOf(event: EventRecord, app: string, model: string): Buffer {
  let chunk = chunks.get(event);
  if (chunk === undefined) {
    const frame = frameOf(event, app, model);
    chunks.set(event, (chunk = Buffer.from(`${Buffer.byteLength(frame).toString(16)}\r\n${frame}\r\n`)));
  }
  return chunk;
}

const batchChunks = new WeakMap<readonly EventRecord[], Buffer>();

/**
 * Several events' frames, one after another, as one ready HTTP/1.1 chunk (what `chunkOf` is for
 * one event), built once per batch per process: a stream takes a batch in one socket write.
 * Keyed by the batch array, which the hub shares between every watcher of the task.
 */
export function chunkOfBatch(events: readonly EventRecord[], app: string, model: string): Buffer {
  let chunk = batchChunks.get(events);
  if (chunk === undefined) {
    let frames = '';
    for (const e of events) frames += frameOf(e, app, model);
    batchChunks.set(events, (chunk = Buffer.from(`${Buffer.byteLength(frames).toString(16)}\r\n${frames}\r\n`)));
  }
  return chunk;
}

export function retryField(ms: number): string {
  return `retry: ${ms}\n\n`;
}

export const PING = ': ping\n\n';
