// SIGTERM against the real `easel serve`, with an idle keep-alive socket and a half-sent request open and every
// socket timeout far away (60 s and more): admitted generations finish, /readyz says draining, new work is refused,
// every socket is closed and the process exits 0 (it would otherwise wait on the half-sent request). A second signal
// exits 130 at once. In process, a drain too short for the queue: waiting jobs get a retryable 503 (streams an
// `event: error`) at once.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { startServer } from '../../src/server/start.js';
import { type ServedCli, serveCli, TINY_MODEL } from '../helpers/serve.js';

const FAR = {
  headersTimeoutSeconds: 60,
  bodyStallSeconds: 60,
  requestTimeoutSeconds: 120,
  keepAliveTimeoutSeconds: 60,
  writeStallSeconds: 60,
};

/** A socket that stays open; `closed` settles when the server ends it. */
function openSocket(port: number, send: string): Promise<{ socket: net.Socket; received: () => string; closed: Promise<void> }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    socket.on('data', (d: Buffer) => {
      received += d.toString('latin1');
    });
    socket.on('error', () => undefined);
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.once('connect', () => {
      socket.write(send);
      resolve({ socket, received: () => received, closed });
    });
  });
}

interface Answer {
  status: number;
  headers: Headers;
  body: { data?: unknown[]; error?: { code: string }; status?: string };
}

function generate(url: string, body: Record<string, unknown>): Promise<Answer> {
  return fetch(`${url}/v1/images/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-image-2', prompt: 'noise', ...body }),
  }).then(async (r) => ({ status: r.status, headers: r.headers, body: await r.json() }));
}

async function readyz(url: string): Promise<Answer> {
  const r = await fetch(`${url}/readyz`);
  return { status: r.status, headers: r.headers, body: await r.json() };
}

async function untilQueue(url: string, running: number, waiting: number): Promise<void> {
  for (;;) {
    const { body } = await readyz(url);
    const q = (body as { queue?: { running: number; waiting: number } }).queue;
    if (q?.running === running && q.waiting === waiting) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('shutdown of easel serve', () => {
  let dir: string;
  let server: ServedCli;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'easel-shutdown-'));
    server = await serveCli(dir, { server: { ...FAR, drainSeconds: 20 } });
    for (;;) {
      if ((await readyz(server.url)).status === 200) break;
      await new Promise((r) => setTimeout(r, 25));
    }
  });

  afterEach(async () => {
    await server?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('SIGTERM: admitted jobs finish, new work gets a retryable 503, every socket closes, exit 0', async () => {
    const idle = await openSocket(server.port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const half = await openSocket(
      server.port,
      'POST /v1/images/generations HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 400\r\n\r\n{"pro',
    );
    const running = generate(server.url, { size: '3840x2160', n: 2 });
    await untilQueue(server.url, 1, 0);
    const queued = generate(server.url, { size: '1024x1024' });
    await untilQueue(server.url, 1, 1);
    expect(idle.received()).toMatch(/^HTTP\/1\.1 200 OK/);

    server.child.kill('SIGTERM');
    await server.waitForStderr('SIGTERM: draining');
    const ready = await readyz(server.url);
    expect(ready.status).toBe(503);
    expect(ready.body.status).toBe('draining');
    const refused = await generate(server.url, { size: '256x256' });
    expect(refused.status).toBe(503);
    expect(refused.body.error?.code).toBe('service_unavailable');
    expect(refused.headers.get('retry-after')).toBe('1');

    const done = await running;
    expect(done.status).toBe(200);
    expect(done.body.data).toHaveLength(2);
    expect((await queued).status).toBe(200); // admitted before the signal, and it fits in the drain

    expect(await server.exited).toBe(0);
    await Promise.all([idle.closed, half.closed]);
    expect(half.received()).toBe(''); // closed, never answered: its body never came
  });

  it('a second signal exits 130 at once, without waiting for the running job', async () => {
    const running = generate(server.url, { size: '3840x2160', n: 4 }).then(
      (a) => a.status,
      () => 'connection closed',
    );
    await untilQueue(server.url, 1, 0);
    server.child.kill('SIGTERM');
    await server.waitForStderr('SIGTERM: draining');
    server.child.kill('SIGINT');
    expect(await server.exited).toBe(130);
    expect(server.stderr()).toContain('second SIGINT: stopping now');
    expect(await running).toBe('connection closed');
  });
});

describe('a drain too short for the queue (in process)', () => {
  it('answers the waiting jobs a retryable 503 at once: JSON with Retry-After, a stream with event: error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'easel-drain-'));
    const config = loadConfig({ port: 0, dataDir: join(dir, 'data'), model: TINY_MODEL }, { EASEL_THREADS: '1' });
    const server = await startServer(config, { waitForWarmUp: true });
    let shutdown: Promise<void> | undefined;
    try {
      const running = generate(server.url, { model: 'gpt-image-1', size: '1536x1024', n: 4 });
      await untilQueue(server.url, 1, 0);
      const json = generate(server.url, { model: 'gpt-image-1', size: '1024x1024' });
      const stream = fetch(`${server.url}/v1/images/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-image-1', prompt: 'noise', size: '1024x1024', stream: true }),
      }).then(async (r) => ({ status: r.status, text: await r.text() }));
      await untilQueue(server.url, 1, 2);
      shutdown = server.shutdown(0);
      const refused = await json;
      expect(refused.status).toBe(503);
      expect(refused.body.error?.code).toBe('service_unavailable');
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(refused.headers.get('x-should-retry')).toBeNull(); // retryable: only x-should-retry: false is ever sent
      const streamed = await stream;
      expect(streamed.status).toBe(200);
      expect(streamed.text).toContain('event: error');
      expect(streamed.text).toContain('"code":"service_unavailable"');
      // The running job was cut at the deadline (0 s): a 503 too, unless its result beat the cancel.
      expect([200, 503]).toContain((await running).status);
      await shutdown;
    } finally {
      await (shutdown ?? server.close());
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
