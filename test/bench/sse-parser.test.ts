/**
 * The load client's SSE parser (bench/ssebench/parser.ts): the benchmark's loss / duplicate / order
 * checks and its latency figures are only as good as it. Every case is fed whole, one byte at a
 * time and split at every position; the events must not depend on how the bytes arrive. The same
 * input also goes through eventsource-parser (a dependency of the client) as a second opinion.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createParser } from 'eventsource-parser';
import { SseParser } from '../../bench/ssebench/parser.js';

interface Got {
  type: string;
  data: string;
  id?: number | string;
}

function parse(chunks: readonly Buffer[]): { events: Got[]; parser: SseParser } {
  const events: Got[] = [];
  const parser = new SseParser((type, data, id, idSet) => events.push(idSet ? { type, data, id } : { type, data }));
  for (const c of chunks) parser.feed(c);
  parser.end();
  return { events, parser };
}

/** Whole, byte by byte, and every two-way split. */
function splits(input: string | Buffer): Array<[string, Buffer[]]> {
  const buf = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const out: Array<[string, Buffer[]]> = [['whole', [buf]], ['bytes', [...buf].map((b) => Buffer.from([b]))]];
  for (let i = 1; i < buf.length; i++) out.push([`split at ${i}`, [buf.subarray(0, i), buf.subarray(i)]]);
  return out;
}

function check(input: string | Buffer, expected: Got[]): SseParser {
  let last: SseParser | undefined;
  for (const [how, chunks] of splits(input)) {
    const { events, parser } = parse(chunks);
    assert.deepEqual(events, expected, how);
    last = parser;
  }
  return last!;
}

describe('load client SSE parser', () => {
  test('LF, CRLF and CR line ends, alone and mixed, give the same events', () => {
    const expected = [{ type: 'message', data: 'a' }, { type: 'message', data: 'b' }];
    check('data: a\n\ndata: b\n\n', expected);
    check('data: a\r\n\r\ndata: b\r\n\r\n', expected);
    check('data: a\r\rdata: b\r\r', expected);
    check('data: a\r\n\ndata: b\n\r\n', expected);
    check('data: x\rdata: y\ndata: z\r\n\n', [{ type: 'message', data: 'x\ny\nz' }]);
  });

  test('fields: event type, one leading space stripped, a bare name, an empty value', () => {
    check('event: tick\ndata: 1\n\n', [{ type: 'tick', data: '1' }]);
    check('data:  two spaces\n\n', [{ type: 'message', data: ' two spaces' }]);
    check('data:nospace\n\n', [{ type: 'message', data: 'nospace' }]);
    check('data\n\n', [{ type: 'message', data: '' }]);
    check('data:\ndata:\n\n', [{ type: 'message', data: '\n' }]);
    check('data: a:b:c\n\n', [{ type: 'message', data: 'a:b:c' }]);
    // The type does not carry over to the next event.
    check('event: x\ndata: 1\n\ndata: 2\n\n', [{ type: 'x', data: '1' }, { type: 'message', data: '2' }]);
  });

  test('blocks without data, comments and unknown fields dispatch nothing', () => {
    const p = check(': ping\n\nevent: x\n\nid: 5\n\nfoo: bar\n\n:\n\ndata: real\n\n', [{ type: 'message', data: 'real' }]);
    assert.equal(p.comments, 2);
    // The id of a block without data still becomes the last event id.
    assert.equal(p.lastEventId, '5');
  });

  test('ids: numeric, non-numeric, persisting, and NUL ignored', () => {
    check('id: 7\ndata: a\n\ndata: b\n\n', [{ type: 'message', data: 'a', id: 7 }, { type: 'message', data: 'b' }]);
    check('id: 007\ndata: a\n\n', [{ type: 'message', data: 'a', id: '007' }]);
    check('id: abc\ndata: a\n\n', [{ type: 'message', data: 'a', id: 'abc' }]);
    check('id: 1234567890123456\ndata: a\n\n', [{ type: 'message', data: 'a', id: '1234567890123456' }]);
    check('id\ndata: a\n\n', [{ type: 'message', data: 'a', id: '' }]);
    const p = check('id: 3\ndata: a\n\nid: x\u0000y\ndata: b\n\n', [{ type: 'message', data: 'a', id: 3 }, { type: 'message', data: 'b' }]);
    assert.equal(p.lastEventId, '3');
  });

  test('retry: only all-digit values count', () => {
    assert.equal(check('retry: 2000\n\n', []).retry, 2000);
    assert.equal(check('retry: 20x0\n\n', []).retry, -1);
    assert.equal(check('retry:\n\n', []).retry, -1);
    assert.equal(check('retry: 10\n\nretry: -5\n\n', []).retry, 10);
  });

  test('a BOM at the start is skipped once; UTF-8 split inside a character decodes whole', () => {
    check('\uFEFFdata: a\n\n', [{ type: 'message', data: 'a' }]);
    check('\uFEFF\uFEFFdata: a\n\n', []); // the second BOM is part of the first field's name
    check('data: é€😀\n\n', [{ type: 'message', data: 'é€😀' }]);
  });

  test('an event the stream ends before its blank line is dropped', () => {
    check('data: a\n\ndata: b\n', [{ type: 'message', data: 'a' }]);
    check('data: a\n\ndata: b', [{ type: 'message', data: 'a' }]);
  });

  test('agrees with eventsource-parser on the bench servers\' frames and mixed streams', () => {
    const inputs = [
      'retry: 2000\n\nid: 1\nevent: tick\ndata: {"t":1.5,"i":0}\n\n: ping\n\nid: 2\nevent: tick\ndata: {"t":2.5,"i":1,"_seq":2}\n\n',
      // (eventsource-parser holds a CR at the very end of its input, waiting for a possible LF.)
      'data: a\r\ndata: b\r\n\r\nevent: e\rdata: c\r\r\n',
      'id: 9\ndata\n\nfoo\ndata:x\n\n',
    ];
    for (const input of inputs) {
      const reference: Array<{ type: string; data: string }> = [];
      const p = createParser({ onEvent: (e) => reference.push({ type: e.event ?? 'message', data: e.data }) });
      p.feed(input);
      for (const [how, chunks] of splits(input)) {
        const { events } = parse(chunks);
        assert.deepEqual(events.map(({ type, data }) => ({ type, data })), reference, how);
      }
    }
  });
});
