// The playground's SSE reader (web/src/sse.ts) on the framings the spec allows: it runs in Node as in the browser,
// since it needs only fetch's ReadableStream and TextDecoder. The server's own framing is covered end to end.
import { describe, expect, it } from 'vitest';
import { parseFrame, readSse, type SseFrame } from '../../web/src/sse.js';

function streamOf(chunks: Array<string | Uint8Array>): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const ch of chunks) c.enqueue(typeof ch === 'string' ? enc.encode(ch) : ch);
      c.close();
    },
  });
}

async function all(chunks: Array<string | Uint8Array>): Promise<SseFrame[]> {
  const out: SseFrame[] = [];
  for await (const f of readSse(streamOf(chunks))) out.push(f);
  return out;
}

describe('playground SSE reader', () => {
  it('reads event and data, skips keep-alive comments', async () => {
    expect(await all([': keep-alive\n\n', 'event: a.partial_image\ndata: {"x":1}\n\n', ': keep-alive\n\n'])).toEqual([
      { event: 'a.partial_image', data: '{"x":1}' },
    ]);
  });

  it('joins frames split anywhere across chunks, a multi-byte character included', async () => {
    const bytes = new TextEncoder().encode('event: e\ndata: "café"\n\n');
    const cut = bytes.indexOf(0xc3) + 1; // inside the two bytes of é
    expect(await all([bytes.slice(0, 5), bytes.slice(5, cut), bytes.slice(cut)])).toEqual([{ event: 'e', data: '"café"' }]);
  });

  it('takes CRLF and CR line ends, several data lines, and a last frame without its blank line', async () => {
    expect(await all(['event: one\r\ndata: a\r\ndata: b\r\n\r\n', 'data: two\r\rdata: three'])).toEqual([
      { event: 'one', data: 'a\nb' },
      { event: 'message', data: 'two' },
      { event: 'message', data: 'three' },
    ]);
  });

  it('keeps a value without the space after the colon, and a comment-only frame is nothing', () => {
    expect(parseFrame('event:x\ndata:{"a":1}')).toEqual({ event: 'x', data: '{"a":1}' });
    expect(parseFrame(': just a comment')).toBeNull();
  });
});
