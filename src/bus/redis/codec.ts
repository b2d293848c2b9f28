import type { EventRecord } from '../../store/types.js';

/**
 * One Redis message per task per published batch:
 *
 *   [origin, taskId, fromSeq, toSeq, [[seq, type, at, length], ...]] "\n" json json ...
 *
 * The header is JSON; each event's stored `json` follows verbatim, cut by its length, so neither
 * side parses or re-serialises event data (cost: one string concatenation and one slice per event).
 * A batch whose data exceeds `inlineMax` carries only its newest events that fit (possibly none):
 * the header's `fromSeq`..`toSeq` says what was stored, and a receiver that sees a seq ahead of
 * what it delivered reads the rest from the store.
 */
export interface Decoded {
  readonly origin: string;
  readonly taskId: number;
  readonly fromSeq: number;
  readonly toSeq: number;
  readonly events: EventRecord[];
}

export function encodeEvents(origin: string, taskId: number, events: readonly EventRecord[], inlineMax: number): string {
  let start = events.length;
  let bytes = 0;
  while (start > 0 && bytes + events[start - 1]!.json.length <= inlineMax) {
    start--;
    bytes += events[start]!.json.length;
  }
  const carried = events.slice(start);
  const meta = carried.map((e) => [e.seq, e.type, e.at, e.json.length]);
  const header = JSON.stringify([origin, taskId, events[0]!.seq, events[events.length - 1]!.seq, meta]);
  let body = '';
  for (const e of carried) body += e.json;
  return `${header}\n${body}`;
}

export function decodeEvents(message: string): Decoded {
  const nl = message.indexOf('\n');
  if (nl < 0) throw new Error('taskstream redis bus: malformed event message (no header)');
  const [origin, taskId, fromSeq, toSeq, meta] = JSON.parse(message.slice(0, nl)) as [string, number, number, number, Array<[number, string, number, number]>];
  if (typeof origin !== 'string' || !Number.isInteger(taskId) || !Array.isArray(meta)) {
    throw new Error('taskstream redis bus: malformed event message header');
  }
  const events: EventRecord[] = [];
  let at = nl + 1;
  for (const [seq, type, time, length] of meta) {
    events.push({ taskId, seq, type, at: time, json: message.slice(at, at + length) });
    at += length;
  }
  if (at !== message.length) throw new Error('taskstream redis bus: malformed event message (length mismatch)');
  return { origin, taskId, fromSeq, toSeq, events };
}
