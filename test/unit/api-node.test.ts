// An API node in process (app.inject) with a real engine worker on the tiny fixture, over a real redis-server: it
// learns its models from the worker, answers /readyz per model, generates through Redis, refuses a full queue with
// an HTTP 429 even when streaming (before any event), and a model with no live worker with a 503.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Config, loadConfig } from '../../src/config/config.js';
import { createEmbeddedServer } from '../../src/server/start.js';
import { createApiNode } from '../../src/server/start-api.js';
import { type RunningWorker, startWorker } from '../../src/worker/main.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');
let redis: TestRedis;
let dataDir: string;
let worker: RunningWorker;
let node: Awaited<ReturnType<typeof createApiNode>>;

function config(): Readonly<Config> {
  return loadConfig({ model: FIXTURE, dataDir, queue: redis.url }, { EASEL_THREADS: '1' }) as Config;
}

async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200 && !(await check()); i++) await new Promise((r) => setTimeout(r, 50));
}

beforeAll(async () => {
  redis = await startRedis();
  dataDir = mkdtempSync(join(tmpdir(), 'easel-api-node-'));
  node = await createApiNode(config(), { waitForWarmUp: true });
  worker = await startWorker(config(), { url: redis.url });
  await until(async () => (await node.app.inject({ method: 'GET', url: '/readyz' })).statusCode === 200);
});

afterAll(async () => {
  await node?.close();
  await worker?.close();
  await redis?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const generate = (body: object) =>
  node.app.inject({ method: 'POST', url: '/v1/images/generations', payload: { model: 'gpt-image-1', prompt: 'a red circle', ...body } });

describe('cluster API node', () => {
  it('is ready with one live worker, and lists the models that worker described', async () => {
    const ready = await node.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'ready', models: [{ name: 'easel-default', warmed: true, workers: 1 }] });
    const ids = (await node.app.inject({ method: 'GET', url: '/v1/models' })).json().data.map((m: { id: string }) => m.id);
    expect(ids).toEqual(expect.arrayContaining(['easel-default', 'gpt-image-1', 'dall-e-2']));
    expect(worker.lockMs).toBeGreaterThanOrEqual(5000); // fitted, with its floor
  });

  it('generates through Redis: JSON and a stream of partial images then the completed image', async () => {
    const res = await generate({ size: '1024x1024', quality: 'low' });
    expect(res.statusCode).toBe(200);
    expect(res.json().data[0].b64_json.length).toBeGreaterThan(100);
    const stream = await generate({ size: '1024x1024', quality: 'low', stream: true, partial_images: 2 });
    expect(stream.statusCode).toBe(200);
    const events = stream.body.split('\n').filter((l) => l.startsWith('event: '));
    expect(events).toEqual([
      'event: image_generation.partial_image',
      'event: image_generation.partial_image',
      'event: image_generation.completed',
    ]);
  });
});

describe('backpressure before the stream opens', () => {
  /** A queue that admits nothing (maxWaiting 0): every request meets a full queue. */
  async function full<T extends { app: typeof node.app; close(): Promise<void> }>(make: (c: Readonly<Config>) => Promise<T>) {
    const base = config();
    const server = await make({ ...base, queue: { ...base.queue, maxWaiting: 0 } });
    try {
      for (const stream of [false, true]) {
        const res = await server.app.inject({
          method: 'POST',
          url: '/v1/images/generations',
          payload: { model: 'gpt-image-1', prompt: 'x', stream, ...(stream ? { partial_images: 1 } : {}) },
        });
        expect(res.statusCode, `stream: ${stream}`).toBe(429);
        expect(res.headers['content-type']).toMatch(/^application\/json/);
        expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
        expect(res.json().error.code).toBe('rate_limit_exceeded');
      }
    } finally {
      await server.close();
    }
  }

  it('a full cluster queue is an HTTP 429 with Retry-After, streaming or not', async () => {
    await full(async (c) => {
      const n = await createApiNode(c, { waitForWarmUp: true });
      await until(async () => n.models.list().length > 0);
      return n;
    });
  });

  it('the embedded queue too', async () => {
    await full((c) => createEmbeddedServer(c, { waitForWarmUp: true }));
  });

  it('a model no live worker serves is a 503 with Retry-After, streaming or not', async () => {
    await worker.close();
    await until(async () => (await node.app.inject({ method: 'GET', url: '/readyz' })).statusCode === 503);
    const ready = (await node.app.inject({ method: 'GET', url: '/readyz' })).json();
    expect(ready.models).toEqual([expect.objectContaining({ name: 'easel-default', workers: 0 })]);
    for (const stream of [false, true]) {
      const res = await generate({ stream });
      expect(res.statusCode).toBe(503);
      expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    worker = await startWorker(config(), { url: redis.url });
  });
});
