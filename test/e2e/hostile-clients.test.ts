// Hostile and careless clients against the real `easel serve` with short connection deadlines from its config, on
// raw sockets (node:net) so the test controls every byte and every connection: stalled headers and bodies, a body
// that trickles, idle keep-alive, a flood past the connection cap, a client that never reads, one that leaves.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LogLine, type ServedCli, serveCli } from '../helpers/serve.js';

const MAX_CONNECTIONS = 6;

interface RawClient {
  socket: net.Socket;
  /** Everything received so far, as latin1 text. */
  text(): string;
  bytes(): number;
  /** Settles when the server has sent its FIN or the socket is gone. */
  ended: Promise<void>;
  closed: Promise<void>;
}

/** Connects and writes `request` (possibly incomplete); `pause` never reads what the server sends. */
function raw(port: number, request: string, opts: { pause?: boolean } = {}): Promise<RawClient> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let size = 0;
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      size += d.length;
    });
    socket.on('error', () => undefined); // a reset is one of the outcomes under test
    const ended = new Promise<void>((r) => {
      socket.once('end', r);
      socket.once('close', r);
    });
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.once('connect', () => {
      if (request) socket.write(request);
      if (opts.pause) socket.pause();
      resolve({ socket, text: () => Buffer.concat(chunks).toString('latin1'), bytes: () => size, ended, closed });
    });
  });
}

const HOST = 'Host: 127.0.0.1\r\n';

function post(path: string, body: string, sendBytes = body.length): string {
  return `POST ${path} HTTP/1.1\r\n${HOST}content-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body.slice(0, sendBytes)}`;
}

/** One GET on its own connection (Connection: close), body parsed as JSON. */
async function getJson(port: number, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const c = await raw(port, `GET ${path} HTTP/1.1\r\n${HOST}connection: close\r\n\r\n`);
  await c.closed;
  const text = c.text();
  return { status: Number(text.slice(9, 12)), body: JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) };
}

async function until<T>(probe: () => Promise<T | undefined>): Promise<T> {
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
}

const runningJobs = async (port: number) => ((await getJson(port, '/readyz')).body.queue as { running: number }).running;

describe('hostile clients (easel serve with 1 s deadlines)', () => {
  let dir: string;
  let server: ServedCli;
  const forReq = (id: string | undefined) => (l: LogLine) => l.reqId === id;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'easel-hostile-'));
    server = await serveCli(dir, {
      server: {
        headersTimeoutSeconds: 1,
        bodyStallSeconds: 1,
        requestTimeoutSeconds: 2,
        keepAliveTimeoutSeconds: 1,
        writeStallSeconds: 1,
        maxConnections: MAX_CONNECTIONS,
      },
    });
    await until(async () => ((await getJson(server.port, '/readyz')).status === 200 ? true : undefined));
  });

  afterAll(async () => {
    await server?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('closes new connections past server.maxConnections at once, and logs it', async () => {
    const held: RawClient[] = [];
    let refused: RawClient | undefined;
    // Each held connection has had a response, so the server has accepted it before the next one connects.
    for (let i = 0; i <= MAX_CONNECTIONS && !refused; i++) {
      const c = await raw(server.port, `GET /healthz HTTP/1.1\r\n${HOST}\r\n`);
      await Promise.race([until(async () => (c.text().includes('"ok"') ? true : undefined)), c.closed]);
      if (c.bytes() === 0) refused = c;
      else held.push(c);
    }
    expect(refused).toBeDefined();
    expect(held.length).toBeLessThanOrEqual(MAX_CONNECTIONS);
    expect(held.length).toBeGreaterThanOrEqual(MAX_CONNECTIONS - 2); // the readiness probes' sockets may still close
    await server.waitForLog((l) => l.msg === 'connection cap reached; new connections closed');
    for (const c of held) c.socket.destroy();
    // The next tests need room again: wait until the server has seen those sockets go.
    await until(async () => {
      const c = await raw(server.port, `GET /healthz HTTP/1.1\r\n${HOST}connection: close\r\n\r\n`);
      await c.closed;
      return c.bytes() > 0 ? true : undefined;
    });
  });

  it('headers that never finish: 408, then the connection is closed', async () => {
    const c = await raw(server.port, `POST /v1/images/generations HTTP/1.1\r\n${HOST}content-type: appl`);
    await c.closed;
    expect(c.text()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(c.text()).toContain('"code":"request_timeout"');
  });

  it('a body that stops making progress: 408, then the connection is closed', async () => {
    const body = JSON.stringify({ model: 'tiny', prompt: 'a red circle' });
    const from = server.logs.length;
    const c = await raw(server.port, post('/v1/images/generations', body, 10));
    await c.ended;
    expect(c.text()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(c.text()).toContain('connection: close');
    await server.waitForLog((l) => l.msg === 'request body stalled; answered 408', from);
    await c.closed;
  });

  it('a body that trickles in keeps the stall timer quiet; the total deadline still ends it with 408', async () => {
    const body = JSON.stringify({ model: 'tiny', prompt: 'a red circle, slowly' });
    const c = await raw(server.port, post('/v1/images/generations', body, 1));
    let sent = 1;
    const trickle = setInterval(() => {
      if (sent < body.length - 1 && !c.socket.destroyed) c.socket.write(body[sent++]);
    }, 250);
    await c.ended;
    clearInterval(trickle);
    expect(c.text()).toMatch(/^HTTP\/1\.1 408 /);
    expect(sent).toBeGreaterThan(4); // it was progressing for longer than bodyStallSeconds
    await c.closed;
  });

  it('an idle keep-alive connection is closed by the server', async () => {
    const c = await raw(server.port, `GET /healthz HTTP/1.1\r\n${HOST}\r\n`);
    await c.ended;
    expect(c.text()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(c.text()).not.toContain('connection: close');
    await c.closed;
  });

  it('a client that never reads a large response: its socket is ended after the write stall, and logged', async () => {
    const body = JSON.stringify({ model: 'gpt-image-1', prompt: 'noise', size: '1536x1024', n: 4, output_format: 'png' });
    const from = server.logs.length;
    const c = await raw(server.port, post('/v1/images/generations', body), { pause: true });
    const stalled = await server.waitForLog((l) => l.msg === 'response write stalled; connection closed', from);
    expect(stalled.level).toBe(40);
    expect(stalled.pendingBytes as number).toBeGreaterThan(0);
    c.socket.resume(); // read what was sent before the server gave up: the end comes without the whole body
    await c.closed;
    const length = Number(/content-length: (\d+)/i.exec(c.text())?.[1]);
    expect(c.text()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(c.bytes()).toBeLessThan(length);
  });

  it('a client that leaves mid-generation: job cancelled, logged at info as 499, never as an error, recorded as 499, not billed', async () => {
    const body = JSON.stringify({ model: 'gpt-image-2', prompt: 'noise', size: '3840x2160', n: 4 });
    const from = server.logs.length;
    const c = await raw(server.port, post('/v1/images/generations', body));
    await until(async () => ((await runningJobs(server.port)) === 1 ? true : undefined));
    c.socket.destroy();
    const gone = await server.waitForLog((l) => l.msg === 'client closed request', from);
    expect(gone).toMatchObject({ level: 30, res: { statusCode: 499 } });
    await until(async () => ((await runningJobs(server.port)) === 0 ? true : undefined)); // cancelled, not finished
    const lines = server.logs.filter(forReq(gone.reqId));
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    expect(lines.some((l) => 'err' in l)).toBe(false);
    // Its usage row says the client left, with nothing delivered.
    const row = await until(async () => {
      const db = new Database(join(dir, 'data', 'easel.sqlite'), { readonly: true });
      try {
        return db.prepare('SELECT status, images, error_code FROM usage_records WHERE request_id = ?').get(gone.reqId);
      } finally {
        db.close();
      }
    });
    expect(row).toEqual({ status: 499, images: 0, error_code: 'client_closed_request' });
  });
});
