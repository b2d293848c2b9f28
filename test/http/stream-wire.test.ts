/**
 * The bytes of an SSE response on the wire: the Node handler writes event frames to the socket as
 * ready HTTP/1.1 chunks when it can, and through `res.write` when it cannot (HTTP/1.0, a wrapped
 * response). Each case reads the raw response over TCP and checks the framing a client relies on.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { z } from 'zod';
import { createHandler, defineTask } from '../../src/index.js';
import { post, startServer, type TestServer, within } from './helpers.js';

/** Waits for `go`, then sends one `say` event per text. */
const Say = defineTask({
  app: 'test',
  type: 'Say',
  input: z.object({ texts: z.array(z.string()) }),
  async run(ctx, { texts }) {
    await ctx.waitForSignal('go');
    for (const text of texts) await ctx.send('say', { text });
    return texts.length;
  },
});

// Multi-byte UTF-8 (2, 3 and 4 bytes per character) and a frame larger than a socket read.
const TEXTS = ['plain', 'é', '€ and 😀', 'x'.repeat(70_000), 'ünïcödé 日本語'];

/** Sends a raw GET and collects the whole response (the server ends it after the task's `complete`). */
async function rawGet(url: string, path: string, version: '1.0' | '1.1', onHeaders: () => void): Promise<{ head: string; body: Buffer }> {
  const { port } = new URL(url);
  const socket = net.connect(Number(port), '127.0.0.1');
  socket.write(`GET ${path} HTTP/${version}\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n`);
  const chunks: Buffer[] = [];
  let headersSeen = false;
  return within(20_000, new Promise((resolve, reject) => {
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      if (!headersSeen && Buffer.concat(chunks).includes('\r\n\r\n')) {
        headersSeen = true;
        onHeaders();
      }
      const all = Buffer.concat(chunks);
      // HTTP/1.1: the response ends with the last chunk; HTTP/1.0: with the connection.
      if (version === '1.1' && all.subarray(-7).toString() === '\r\n0\r\n\r\n') socket.end();
    });
    socket.on('error', reject);
    socket.on('close', () => {
      const all = Buffer.concat(chunks);
      const at = all.indexOf('\r\n\r\n');
      resolve({ head: all.subarray(0, at).toString('latin1'), body: all.subarray(at + 4) });
    });
  }), 'the whole response');
}

/** Undoes chunked transfer coding, checking that every chunk's size matches its bytes. */
function dechunk(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', at);
    assert.ok(eol > at, `chunk size line at byte ${at}`);
    const size = parseInt(body.toString('latin1', at, eol), 16);
    assert.ok(Number.isInteger(size), `chunk size at byte ${at}`);
    if (size === 0) {
      assert.equal(body.toString('latin1', eol, eol + 4), '\r\n\r\n', 'last chunk');
      assert.equal(eol + 4, body.length, 'nothing after the last chunk');
      return Buffer.concat(parts);
    }
    parts.push(body.subarray(eol + 2, eol + 2 + size));
    assert.equal(body.toString('latin1', eol + 2 + size, eol + 4 + size), '\r\n', `CRLF after the chunk at byte ${at}`);
    at = eol + 4 + size;
  }
}

function sayTexts(sse: string): string[] {
  return sse.split('\n\n').filter((f) => f.includes('event: say\n')).map((f) => {
    const data = f.split('\n').find((l) => l.startsWith('data: '))!;
    return (JSON.parse(data.slice(6)) as { text: string }).text;
  });
}

describe('SSE wire format (Node handler)', { timeout: 60_000 }, () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ tasks: [Say] });
  });
  after(() => s.close());

  const streamOne = async (version: '1.0' | '1.1', url = s.url): Promise<{ head: string; body: Buffer }> => {
    const { json } = await post(`${s.url}/tasks/test/Say`, { texts: TEXTS });
    return rawGet(url, json.stream_url as string, version, () => void post(`${s.url}/tasks/test/Say/${json.id}/signals/go`));
  };

  test('HTTP/1.1: chunk sizes count UTF-8 bytes; every live event arrives intact, then the last chunk', async () => {
    const { head, body } = await streamOne('1.1');
    assert.match(head, /^HTTP\/1\.1 200/);
    assert.match(head, /transfer-encoding: chunked/i);
    const sse = dechunk(body).toString('utf8');
    assert.ok(sse.startsWith('retry: '), sse.slice(0, 40));
    assert.deepEqual(sayTexts(sse), TEXTS);
    assert.match(sse, /event: complete\n/);
  });

  test('HTTP/1.0: no chunked coding; the same frames, then the connection closes', async () => {
    const { head, body } = await streamOne('1.0');
    assert.match(head, /^HTTP\/1\.1 200/);
    assert.doesNotMatch(head, /transfer-encoding/i);
    const sse = body.toString('utf8');
    assert.deepEqual(sayTexts(sse), TEXTS);
    assert.match(sse, /event: complete\n/);
  });

  test('a response whose write() is wrapped (as compression middleware does) still sees every frame', async () => {
    const handler = createHandler(s.runtime);
    let wrapped = 0;
    const server = http.createServer((req, res) => {
      const write = res.write.bind(res) as (chunk: unknown) => boolean;
      res.write = ((chunk: unknown) => {
        wrapped++;
        return write(chunk);
      }) as typeof res.write;
      handler(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { body } = await streamOne('1.1', `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      assert.deepEqual(sayTexts(dechunk(body).toString('utf8')), TEXTS);
      // retry:, the five events and complete, all through the wrapper.
      assert.ok(wrapped >= 7, `write() wrapper saw ${wrapped} writes`);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
