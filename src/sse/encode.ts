import type { EventRecord } from '../store/types.js';

/**
 * The SSE wire form of one stored event (docs/http-api.md):
 *
 *   id: <seq>\nevent: <type>\ndata: <the event's JSON object plus _task_id, _app, _model, _timestamp, _seq>\n\n
 *
 * CR/LF safety: `type`, `app` and `model` match [A-Za-z0-9_.:-], and JSON.stringify escapes CR and LF
 * inside strings, so `data` is always one line. The stored JSON is spliced rather than re-stringified:
 * the frame costs one string build per event per process (streams share it through `event.frame`).
 */
export function encodeFrame(event: EventRecord, app: string, model: string): string {
  const meta = `"_task_id":${event.taskId},"_app":"${app}","_model":"${model}","_timestamp":"${new Date(event.at).toISOString()}","_seq":${event.seq}}`;
  const json = event.json;
  const data = json.length > 2 ? `${json.slice(0, -1)},${meta}` : `{${meta}`;
  return `id: ${event.seq}\nevent: ${event.type}\ndata: ${data}\n\n`;
}

/** The shared frame of an event, built by the first stream that sends it. */
export function frameOf(event: EventRecord, app: string, model: string): string {
  return (event.frame ??= encodeFrame(event, app, model));
}

export function retryField(ms: number): string {
  return `retry: ${ms}\n\n`;
}

export const PING = ': ping\n\n';
