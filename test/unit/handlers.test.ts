// Fast in-process handler tests: the whole embedded server (catalog, queue, engine worker on the tiny fixture,
// store, SQLite) driven through Fastify's app.inject, with no socket. The e2e suites cover real clients on a port.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { createEmbeddedServer, type EmbeddedServer } from '../../src/server/start.js';
import { validateSchema } from '../helpers/openapi.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');

let server: EmbeddedServer;
let dataDir: string;

function post(url: string, payload: unknown, headers: Record<string, string> = {}) {
  return server.app.inject({
    method: 'POST',
    url,
    payload: payload as object,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'easel-inject-'));
  const config = loadConfig({ model: FIXTURE, port: 0, dataDir }, { EASEL_THREADS: '1' });
  server = await createEmbeddedServer(config, { waitForWarmUp: true });
});

afterAll(async () => {
  await server?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('handlers through app.inject', () => {
  it('generates a PNG of the requested size, valid against OpenAI’s schema, with the seed header', async () => {
    const res = await post('/v1/images/generations', {
      model: 'gpt-image-1',
      prompt: 'a red circle',
      size: '1024x1024',
      quality: 'low',
      seed: 5,
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(validateSchema('ImagesResponse', body)).toEqual([]);
    const meta = await sharp(Buffer.from(body.data[0].b64_json, 'base64')).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 1024, 1024]);
    expect(res.headers['x-easel-seed']).toBe('5');
    expect(res.headers['x-request-id']).toMatch(/^req_/);
  });

  it('answers the same seed with the same bytes (the job crosses the queue intact)', async () => {
    const req = { model: 'gpt-image-1', prompt: 'a blue square', size: '1024x1024', quality: 'low', seed: 11 };
    const [a, b] = await Promise.all([post('/v1/images/generations', req), post('/v1/images/generations', req)]);
    expect(a.json().data[0].b64_json).toBe(b.json().data[0].b64_json);
  });

  it('refuses an unknown field with a 400 naming it, in OpenAI’s envelope', async () => {
    const res = await post('/v1/images/generations', { model: 'gpt-image-1', prompt: 'x', colour: 'red' });
    expect(res.statusCode).toBe(400);
    expect(res.headers['x-should-retry']).toBe('false');
    const body = res.json();
    expect(validateSchema('ErrorResponse', body)).toEqual([]);
    expect(body.error.param).toBe('colour');
  });

  it('serves url responses behind a signed URL, and refuses a tampered one with 403', async () => {
    const res = await post('/v1/images/generations', { model: 'dall-e-2', prompt: 'a green star', size: '256x256' });
    expect(res.statusCode).toBe(200);
    const url = new URL(res.json().data[0].url);
    const file = await server.app.inject({ method: 'GET', url: url.pathname + url.search });
    expect(file.statusCode).toBe(200);
    expect(file.headers['content-type']).toBe('image/png');
    const tampered = await server.app.inject({ method: 'GET', url: `${url.pathname}?expires=${url.searchParams.get('expires')}&sig=AAAA` });
    expect(tampered.statusCode).toBe(403);
  });

  it('lists models with their capabilities from model info, and is ready once warm', async () => {
    const models = (await server.app.inject({ method: 'GET', url: '/v1/models' })).json();
    const ids = models.data.map((m: { id: string }) => m.id);
    expect(ids).toEqual(expect.arrayContaining(['easel-default', 'gpt-image-1', 'dall-e-2', 'dall-e-3']));
    const local = models.data.find((m: { id: string }) => m.id === 'easel-default');
    expect(local.capabilities.image_to_image).toBe(true);
    const ready = await server.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({
      status: 'ready',
      models: [{ name: 'easel-default', warmed: true }],
      queue: { waiting: 0, running: 0 },
    });
  });

  it('answers an unknown route with a 404 envelope carrying the request id', async () => {
    const res = await server.app.inject({ method: 'GET', url: '/v1/nothing' });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.message).toContain('/v1/nothing');
    expect(res.headers['x-request-id']).toMatch(/^req_/);
  });
});
