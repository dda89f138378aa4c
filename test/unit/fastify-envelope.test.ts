// Every answer Easel sends is OpenAI's envelope with x-request-id and nosniff, including the ones Fastify and Node
// make before a route runs: router refusals, 404s, parser errors, content types, multipart faults, raw HTTP errors.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { createEmbeddedServer, type EmbeddedServer } from '../../src/server/start.js';
import { validateSchema } from '../helpers/openapi.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');
const dataDir = mkdtempSync(join(tmpdir(), 'easel-envelope-'));
let server: EmbeddedServer;
let port: number;

beforeAll(async () => {
  server = await createEmbeddedServer(loadConfig({ model: FIXTURE, port: 0, dataDir }, { EASEL_THREADS: '1' }));
  await server.app.listen({ host: '127.0.0.1', port: 0 });
  port = (server.app.server.address() as { port: number }).port;
});

afterAll(async () => {
  await server?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: Record<string, unknown>;
  body: string;
}

/** Checks the envelope and headers every refusal carries, and returns the error object. */
function refusal(res: Answer, status: number): Record<string, unknown> {
  expect(res.status).toBe(status);
  expect(res.headers['x-request-id']).toMatch(/^req_[0-9a-f]{24}$/);
  expect(res.headers['x-content-type-options']).toBe('nosniff');
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = JSON.parse(res.body);
  expect(validateSchema('ErrorResponse', body)).toEqual([]);
  expect(Object.keys(body)).toEqual(['error']);
  return body.error;
}

async function inject(opts: InjectOptions): Promise<Answer> {
  const res = await server.app.inject(opts);
  return { status: res.statusCode, headers: res.headers, body: res.body };
}

/** Sends `text` on a raw socket and parses the one response that comes back before the server closes it. */
function raw(text: string | Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const all = Buffer.concat(chunks).toString('utf8');
      const [head, ...rest] = all.split('\r\n\r\n');
      const [statusLine, ...lines] = head.split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: rest.join('\r\n\r\n') });
    });
  });
}

describe('router and 404', () => {
  it('a path parameter over 100 characters: 414', async () => {
    const error = refusal(await inject({ method: 'GET', url: `/v1/models/${'a'.repeat(150)}` }), 414);
    expect(error).toMatchObject({ type: 'invalid_request_error', code: 'url_too_long', param: null });
  });

  it('a path that is not valid percent-encoding: 400', async () => {
    const error = refusal(await inject({ method: 'GET', url: '/v1/models/%E0%A4%A' }), 400);
    expect(error.code).toBe('invalid_url');
  });

  it('unknown routes and methods: 404 Invalid URL, even with a body of any type', async () => {
    for (const [method, url] of [
      ['GET', '/v1/nothing'],
      ['DELETE', '/v1/images/generations'],
      ['POST', '/v1/nothing'],
    ] as const) {
      const error = refusal(await inject({ method, url, payload: 'x', headers: { 'content-type': 'text/plain' } }), 404);
      expect(error.message).toBe(`Invalid URL (${method} ${url})`);
    }
  });
});

describe('bodies Fastify refuses', () => {
  const json = (payload: string) =>
    inject({ method: 'POST', url: '/v1/images/generations', payload, headers: { 'content-type': 'application/json' } });

  it('JSON that does not parse, or no JSON at all: 400 with OpenAI’s sentence', async () => {
    for (const payload of ['{"prompt": ', '']) {
      expect(refusal(await json(payload), 400).message).toMatch(/^We could not parse the JSON body of your request/);
    }
  });

  it('a body over limits.bodyBytes: 413', async () => {
    expect(refusal(await json(JSON.stringify({ prompt: 'x'.repeat(3 * 1024 * 1024) })), 413).code).toBe('request_too_large');
  });

  it('a Content-Length the body does not match: 400', async () => {
    const res = await inject({
      method: 'POST',
      url: '/v1/images/generations',
      payload: '{}',
      headers: { 'content-type': 'application/json', 'content-length': '50' },
    });
    expect(refusal(res, 400).code).toBe('invalid_content_length');
  });
});

describe('content types, as OpenAI answers them', () => {
  const post = (url: string, type: string | undefined, payload = 'prompt=x') =>
    inject({ method: 'POST', url, payload, headers: type === undefined ? {} : { 'content-type': type } });

  it('generations (JSON only): any other type is 400 unsupported_content_type, before the body is read', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=B', 'application/xml']) {
      const error = refusal(await post('/v1/images/generations', type), 400);
      expect(error).toMatchObject({ code: 'unsupported_content_type', param: null });
      expect(error.message).toBe(
        `Unsupported content type: '${type}'. This API method only accepts 'application/json' requests, but you specified the header 'Content-Type: ${type}'. Please try again with a supported content type.`,
      );
    }
    expect(refusal(await post('/v1/images/generations', undefined), 400).message).toMatch(/^Unsupported content type: none\./);
  });

  it('generations accept application/json with parameters', async () => {
    const res = await post('/v1/images/generations', 'application/json; charset=utf-8', '{}');
    expect(JSON.parse(res.body).error.param).toBe('prompt');
  });

  it('edits take multipart or JSON; variations multipart only: anything else is 415 naming them', async () => {
    for (const type of ['text/plain', 'application/xml', 'application/octet-stream']) {
      expect(refusal(await post('/v1/images/edits', type), 415).message).toBe(
        `Invalid Content-Type header (${type}), expected multipart/form-data or application/json.`,
      );
      expect(refusal(await post('/v1/images/variations', type), 415).message).toBe(
        `Invalid Content-Type header (${type}), expected multipart/form-data.`,
      );
    }
    expect(refusal(await post('/v1/images/variations', 'application/json', '{}'), 415).code).toBe('unsupported_content_type');
  });
});

describe('multipart bodies that do not parse: 400 invalid_multipart, never 500', () => {
  const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
  const part = (boundary: string, name: string, file?: string) =>
    `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${file ? `; filename="${file}"\r\nContent-Type: image/png` : ''}\r\n\r\n`;
  const edit = (contentType: string, payload: string | Buffer) =>
    inject({ method: 'POST', url: '/v1/images/edits', payload, headers: { 'content-type': contentType } });

  it('a boundary longer than RFC 2046’s 70 characters (the fuzzer’s 300 gave 500)', async () => {
    for (const length of [71, 300]) {
      const b = 'x'.repeat(length);
      const error = refusal(await edit(`multipart/form-data; boundary=${b}`, `${part(b, 'prompt')}hi\r\n--${b}--\r\n`), 400);
      expect(error).toMatchObject({ code: 'invalid_multipart', param: null });
      expect(error.message).toContain(`the boundary is ${length} characters long`);
    }
  });

  it('a boundary of exactly 70 characters is read', async () => {
    const b = 'y'.repeat(70);
    const res = await edit(`multipart/form-data; boundary="${b}"`, `${part(b, 'prompt')}hi\r\n--${b}--\r\n`);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body).error.param).toBe('image');
  });

  it('no boundary at all', async () => {
    expect(refusal(await edit('multipart/form-data', 'x'), 400).code).toBe('invalid_multipart');
  });

  it('a body that ends inside the first or the second file part', async () => {
    const first = Buffer.concat([Buffer.from(part('B', 'image', 'a.png')), PNG]);
    const second = Buffer.concat([first, Buffer.from(`\r\n${part('B', 'image', 'b.png')}`), PNG]);
    for (const body of [first, second]) {
      const error = refusal(await edit('multipart/form-data; boundary=B', body), 400);
      expect(error.code).toBe('invalid_multipart');
    }
  });
});

describe('what Node refuses before Fastify sees a request', () => {
  it('a request line that is not HTTP: 400', async () => {
    expect(refusal(await raw('NOT HTTP AT ALL\r\n\r\n'), 400).code).toBe('invalid_http_request');
  });

  it('headers over Node’s limit: 431', async () => {
    const res = await raw(`GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(refusal(res, 431).code).toBe('request_header_fields_too_large');
  });

  it('an HTTP/1.1 request without Host: 400 missing_host (probes excepted)', async () => {
    expect(refusal(await raw('GET /v1/models HTTP/1.1\r\nConnection: close\r\n\r\n'), 400).code).toBe('missing_host');
    expect((await raw('GET /healthz HTTP/1.0\r\n\r\n')).status).toBe(200);
  });
});

describe('shutdown', () => {
  it('a request pipelined behind one in flight when the server starts closing gets a 503 envelope with Retry-After', async () => {
    const closingDir = mkdtempSync(join(tmpdir(), 'easel-closing-'));
    const closing = await createEmbeddedServer(loadConfig({ model: FIXTURE, port: 0, dataDir: closingDir }, { EASEL_THREADS: '1' }));
    await closing.app.listen({ host: '127.0.0.1', port: 0 });
    const target = (closing.app.server.address() as { port: number }).port;
    let closed: Promise<void> = Promise.resolve();
    const answers = await new Promise<string>((resolve, reject) => {
      const socket = connect(target, '127.0.0.1', () => {
        // The first request's body is held back, so the connection is busy when close() starts.
        socket.write(
          'POST /v1/images/generations HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n',
        );
        setTimeout(() => {
          closed = closing.close();
          setTimeout(() => socket.write('{}GET /v1/models HTTP/1.1\r\nHost: localhost\r\n\r\n'), 200);
        }, 200);
      });
      const chunks: Buffer[] = [];
      socket.on('data', (c) => chunks.push(c));
      socket.on('error', reject);
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    });
    await closed;
    rmSync(closingDir, { recursive: true, force: true });
    const [first, second] = answers.split(/(?=HTTP\/1\.1 )/);
    expect(first).toMatch(/^HTTP\/1\.1 400 /);
    expect(second).toMatch(/^HTTP\/1\.1 503 /);
    const [head, body] = second.split('\r\n\r\n');
    expect(head).toMatch(/\r\nretry-after: 1\r\n/);
    expect(head).toMatch(/\r\nx-request-id: req_/);
    expect(head).toMatch(/\r\nx-content-type-options: nosniff\r\n/);
    expect(JSON.parse(body).error).toMatchObject({ type: 'server_error', code: 'service_unavailable' });
  });
});
