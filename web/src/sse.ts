// Server-sent events read from a fetch body (EventSource cannot POST or send a key): frames split on blank lines,
// `event:` and `data:` fields as the HTML spec parses them, comments (`: keep-alive`) skipped.

export interface SseFrame {
  event: string;
  data: string;
}

/** One frame's lines to its event name (default "message") and data (data lines joined by \n); null for a comment. */
export function parseFrame(block: string): SseFrame | null {
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split(/\r\n|\r|\n/)) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return data.length ? { event, data: data.join('\n') } : null;
}

export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseFrame> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      for (let end = frameEnd(buffer); end; end = frameEnd(buffer)) {
        const frame = parseFrame(buffer.slice(0, end.at));
        buffer = buffer.slice(end.at + end.length);
        if (frame) yield frame;
      }
    }
    const last = parseFrame(buffer);
    if (last) yield last;
  } finally {
    reader.releaseLock();
  }
}

function frameEnd(buffer: string): { at: number; length: number } | null {
  const m = /\r\n\r\n|\n\n|\r\r/.exec(buffer);
  return m ? { at: m.index, length: m[0].length } : null;
}
