// Cost caps and the per-request deadline, with the official openai client against real servers:
// - the shipped default model at the default limits refuses the n=10, 100 steps, 1536x1024 high request with a
//   400 naming `n` and limits.maxImageStepMegapixels, while every OpenAI-documented request passes the caps;
// - tighter limits on the tiny fixture name each parameter (partial_images, num_inference_steps, quality, n) and its
//   config key, before any job is queued (a stream answers with the HTTP status);
// - a short deadline (3 s) on the default model: the job is cancelled through the queue, the client gets 504 deadline_exceeded (a stream, an
//   `error` event), the usage row says so, and the next request runs; the same on a cluster API node, whose cancel
//   reaches the engine worker through Redis.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Config, loadConfig } from '../../src/config/config.js';
import { parseGenerationRequest } from '../../src/contract/generations.js';
import { openSqliteDb } from '../../src/db/index.js';
import { checkCostCaps, planJob } from '../../src/server/plan.js';
import { parseContext } from '../../src/server/routes/generations.js';
import { type RunningServer, startServer } from '../../src/server/start.js';
import { type ApiNode, startApiNode } from '../../src/server/start-api.js';
import { type RunningWorker, startWorker } from '../../src/worker/main.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const ROOT = join(import.meta.dirname, '..', '..');
const DEFAULT_MODEL = join(ROOT, 'models', 'easel-shapes');
const TINY = join(ROOT, 'test', 'fixtures', 'tiny-sd');

const dirs: string[] = [];
const servers: RunningServer[] = [];

async function serve(
  model: string,
  limits: Partial<Config['limits']> = {},
): Promise<{ server: RunningServer; client: OpenAI; dataDir: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'easel-caps-'));
  dirs.push(dataDir);
  const base = loadConfig({ model, port: 0, dataDir }, { EASEL_THREADS: '1' });
  const server = await startServer({ ...base, limits: { ...base.limits, ...limits } }, { waitForWarmUp: true });
  servers.push(server);
  return { server, dataDir, client: new OpenAI({ apiKey: 'sk-local', baseURL: `${server.url}/v1`, maxRetries: 0 }) };
}

afterAll(async () => {
  for (const s of servers) await s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The client's error for a request (a rejection), with its status, param, code and message. */
async function refusal(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OpenAI.APIError);
  return err as InstanceType<typeof OpenAI.APIError>;
}

async function idle(server: RunningServer): Promise<{ running: number; waiting: number }> {
  const ready = (await (await fetch(`${server.url}/readyz`)).json()) as { queue: { running: number; waiting: number } };
  return ready.queue;
}

/** The shipped default model at the default limits, but for a 3 s deadline (the deadline tests below share it). */
let onDefault: ReturnType<typeof serve> | undefined;
const defaultModelServer = () => {
  onDefault ??= serve(DEFAULT_MODEL, { requestDeadlineSeconds: 3 });
  return onDefault;
};

describe('the default limits on the shipped default model', () => {
  let server: RunningServer;
  let client: OpenAI;
  beforeAll(async () => {
    ({ server, client } = await defaultModelServer());
  });

  it("refuses the issue's n=10, 100 steps, 1536x1024 high request with a 400 naming n and the limit", async () => {
    const err = await refusal(
      client.images.generate({
        model: 'gpt-image-1',
        prompt: 'a red circle',
        n: 10,
        size: '1536x1024',
        quality: 'high',
        num_inference_steps: 100,
      } as never),
    );
    expect(err.status).toBe(400);
    expect(err.code).toBe('request_too_large');
    expect(err.param).toBe('n');
    expect(err.message).toContain('limits.maxImageStepMegapixels');
    expect(err.message).toContain('limit of 60');
    expect(await idle(server)).toEqual({ running: 0, waiting: 0 });
  });

  it('lets every OpenAI-documented request through the caps', () => {
    const ctx = parseContext({ models: server.models } as never);
    const documented: Array<Record<string, unknown>> = [];
    for (const model of ['gpt-image-1', 'gpt-image-1-mini', 'gpt-image-1.5'])
      for (const size of ['1024x1024', '1536x1024', '1024x1536', 'auto'])
        for (const quality of ['low', 'medium', 'high', 'auto']) documented.push({ model, size, quality, n: 10 });
    documented.push({ model: 'gpt-image-1', size: '1536x1024', quality: 'high', stream: true, partial_images: 3 });
    for (const size of ['256x256', '512x512', '1024x1024']) documented.push({ model: 'dall-e-2', size, n: 10 });
    for (const size of ['1024x1024', '1792x1024', '1024x1792'])
      for (const quality of ['standard', 'hd']) documented.push({ model: 'dall-e-3', size, quality });
    const limits = loadConfig({ model: DEFAULT_MODEL }, {}).limits;
    for (const body of documented) {
      const parsed = parseGenerationRequest({ prompt: 'a red circle', ...body }, ctx);
      const plan = planJob(server.models.resolve(parsed.model)!, parsed, parsed.style);
      expect(() => checkCostCaps(limits, plan.request, plan.facts), JSON.stringify(body)).not.toThrow();
    }
  });
});

describe('tighter caps on the tiny model', () => {
  let server: RunningServer;
  let client: OpenAI;
  beforeAll(async () => {
    // tiny-sd generates at 64x64 (0.004 MP) with the default presets (low 12, medium 25, high 40 steps)
    ({ server, client } = await serve(TINY, { maxSteps: 30, maxPartialImages: 1, maxImageStepMegapixels: 0.2 }));
  });

  const gen = (body: Record<string, unknown>) =>
    client.images.generate({ model: 'gpt-image-1', prompt: 'a red circle', size: '1024x1024', quality: 'low', ...body } as never);

  it('names num_inference_steps and limits.maxSteps', async () => {
    const err = await refusal(gen({ num_inference_steps: 31 }));
    expect([err.status, err.param, err.code]).toEqual([400, 'num_inference_steps', 'integer_above_max_value']);
    expect((err.error as { message: string }).message).toBe(
      "Invalid 'num_inference_steps': integer above maximum value. Expected a value <= 30 (this server's limits.maxSteps), but got 31 instead.",
    );
  });

  it("names quality when the model's preset runs more steps than allowed", async () => {
    const err = await refusal(gen({ quality: 'high' }));
    expect([err.status, err.param]).toEqual([400, 'quality']);
    expect(err.message).toContain('40 steps');
    expect(err.message).toContain('limits.maxSteps');
  });

  it('names n and limits.maxImageStepMegapixels for images x steps x megapixels', async () => {
    // n=4 x 25 steps x 0.004 MP = 0.41, over 0.2
    const err = await refusal(gen({ quality: 'medium', n: 4 }));
    expect([err.status, err.param, err.code]).toEqual([400, 'n', 'request_too_large']);
    expect(err.message).toContain('limit of 0.2 (limits.maxImageStepMegapixels)');
  });

  it('refuses partial_images over limits.maxPartialImages with the HTTP status, before the stream opens', async () => {
    const err = await refusal(gen({ stream: true, partial_images: 2 }));
    expect([err.status, err.param]).toEqual([400, 'partial_images']);
    expect(err.message).toContain("<= 1 (this server's limits.maxPartialImages)");
  });

  it('queues nothing for a refused request, and serves one within the caps', async () => {
    expect(await idle(server)).toEqual({ running: 0, waiting: 0 });
    const res = await gen({ n: 2 }); // 2 x 12 x 0.004 = 0.1
    expect(res.data).toHaveLength(2);
  });
});

describe('the per-request deadline', () => {
  let server: RunningServer;
  let client: OpenAI;
  let dataDir: string;
  beforeAll(async () => {
    ({ server, client, dataDir } = await defaultModelServer());
  });

  /**
   * Within the default caps (4 x 100 steps x 0.1 MP = 39) but tens of seconds of denoising on the default model, so
   * the deadline passes while it runs (the tiny model would be in its uncancellable encode by then).
   */
  const slow = { model: 'gpt-image-1', prompt: 'slow', size: '1536x1024', n: 4, num_inference_steps: 100 };

  async function usageRows() {
    const db = openSqliteDb({ path: join(dataDir, 'easel.sqlite') });
    try {
      return await db.listUsage({ limit: 1000 });
    } finally {
      await db.close();
    }
  }

  it('cancels the job, answers 504 deadline_exceeded, records it, and the next request runs', async () => {
    const err = await refusal(client.images.generate(slow as never));
    expect(err.status).toBe(504);
    expect(err.code).toBe('deadline_exceeded');
    expect(err.message).toContain('limits.requestDeadlineSeconds');
    expect(err.headers?.get('x-should-retry')).toBe('false');
    expect(await idle(server)).toEqual({ running: 0, waiting: 0 });
    const next = await client.images.generate({ model: 'dall-e-2', prompt: 'a red circle', size: '256x256' });
    expect(next.data).toHaveLength(1);
    const rows = (await usageRows()).filter((r) => r.status === 504);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ errorCode: 'deadline_exceeded', outputTokens: 0 });
  });

  it('ends a stream with an error event naming the deadline', async () => {
    const stream = await client.images.generate({ ...slow, stream: true, partial_images: 1 } as OpenAI.ImageGenerateParamsStreaming);
    const seen: string[] = [];
    const err = await refusal(
      (async () => {
        for await (const e of stream) seen.push(e.type);
      })(),
    );
    expect(err.message).toContain('limits.requestDeadlineSeconds');
    expect(seen).not.toContain('image_generation.completed');
    expect(await idle(server)).toEqual({ running: 0, waiting: 0 });
  });
});

describe('the per-request deadline on a cluster', () => {
  let redis: TestRedis;
  let node: ApiNode;
  let worker: RunningWorker;
  let client: OpenAI;

  beforeAll(async () => {
    redis = await startRedis();
    const dataDir = mkdtempSync(join(tmpdir(), 'easel-caps-cluster-'));
    dirs.push(dataDir);
    const base = loadConfig({ model: DEFAULT_MODEL, port: 0, dataDir, queue: redis.url }, { EASEL_THREADS: '1' });
    const config: Config = { ...base, limits: { ...base.limits, requestDeadlineSeconds: 3 } };
    node = await startApiNode(config, { waitForWarmUp: true });
    worker = await startWorker(config, { url: redis.url, log: { info() {}, warn() {}, error() {} } });
    for (let i = 0; i < 600 && (await fetch(`${node.url}/readyz`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 50));
    client = new OpenAI({ apiKey: 'sk-local', baseURL: `${node.url}/v1`, maxRetries: 0, timeout: 60_000 });
  }, 60_000);

  afterAll(async () => {
    await node?.close();
    await worker?.close();
    await redis?.stop();
  });

  it('cancels the job on its worker, answers 504, and the worker takes the next job', async () => {
    const slow = { model: 'gpt-image-1', prompt: 'slow', size: '1536x1024', n: 4, num_inference_steps: 100 };
    const err = await refusal(client.images.generate(slow as never));
    expect([err.status, err.code]).toEqual([504, 'deadline_exceeded']);
    const next = await client.images.generate({ model: 'dall-e-2', prompt: 'a red circle', size: '256x256' });
    expect(next.data).toHaveLength(1);
  });
});
