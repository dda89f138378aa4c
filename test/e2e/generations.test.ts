// End-to-end: the official `openai` npm client against a real Easel server on an ephemeral port, on the tiny
// fixture model. Every JSON response is validated against OpenAI's published spec (test/fixtures/openai).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { openSqliteDb } from '../../src/db/index.js';
import { type RunningServer, startServer } from '../../src/server/start.js';
import { validateSchema } from '../helpers/openapi.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');

let clock = Date.now();
let server: RunningServer;
let client: OpenAI;
let dataDir: string;

async function meta(b64: string) {
  return sharp(Buffer.from(b64, 'base64')).metadata();
}

function expectValid(body: unknown) {
  expect(validateSchema('ImagesResponse', body)).toEqual([]);
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'easel-e2e-'));
  const config = loadConfig({ model: FIXTURE, port: 0, dataDir }, { EASEL_THREADS: '1' });
  server = await startServer(config, { now: () => clock, waitForWarmUp: true });
  client = new OpenAI({ apiKey: 'sk-anything', baseURL: `${server.url}/v1`, maxRetries: 0 });
});

afterAll(async () => {
  await server?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('gpt-image family', () => {
  it('returns a b64 PNG of the requested size with resolved fields and usage', async () => {
    const res = await client.images.generate({ model: 'gpt-image-1', prompt: 'a red circle', size: '1536x1024', quality: 'low' });
    expectValid(res);
    expect(res.data).toHaveLength(1);
    const m = await meta(res.data![0].b64_json!);
    expect([m.format, m.width, m.height]).toEqual(['png', 1536, 1024]);
    expect(res.size).toBe('1536x1024');
    expect(res.quality).toBe('low');
    expect(res.output_format).toBe('png');
    expect(res.background).toBe('opaque');
    expect(res.usage!.output_tokens).toBe(400);
    expect(res.usage!.input_tokens_details!.text_tokens).toBeGreaterThan(0);
    expect(res.usage!.total_tokens).toBe(res.usage!.input_tokens + res.usage!.output_tokens);
  });

  it('encodes jpeg and webp with output_compression, n images in one call', async () => {
    const jpeg = await client.images.generate({
      model: 'gpt-image-1',
      prompt: 'a blue square',
      output_format: 'jpeg',
      output_compression: 40,
      n: 2,
      size: '1024x1024',
    });
    expectValid(jpeg);
    expect(jpeg.data).toHaveLength(2);
    for (const d of jpeg.data!) expect((await meta(d.b64_json!)).format).toBe('jpeg');
    const hi = await client.images.generate({
      model: 'gpt-image-1',
      prompt: 'a blue square',
      output_format: 'jpeg',
      output_compression: 100,
      size: '1024x1024',
    });
    expect(Buffer.from(hi.data![0].b64_json!, 'base64').length).toBeGreaterThan(Buffer.from(jpeg.data![0].b64_json!, 'base64').length);
    const webp = await client.images.generate({ model: 'gpt-image-1-mini', prompt: 'a star', output_format: 'webp', size: '1024x1536' });
    const wm = await meta(webp.data![0].b64_json!);
    expect([wm.format, wm.width, wm.height]).toEqual(['webp', 1024, 1536]);
  });

  it('refuses transparency on a model without alpha, and response_format as OpenAI does', async () => {
    await expect(client.images.generate({ model: 'gpt-image-1', prompt: 'x', background: 'transparent' })).rejects.toMatchObject({
      status: 400,
      param: 'background',
    });
    await expect(client.images.generate({ model: 'gpt-image-1', prompt: 'x', response_format: 'url' })).rejects.toMatchObject({
      status: 400,
      code: 'unknown_parameter',
      param: 'response_format',
    });
    await expect(
      client.images.generate({ model: 'gpt-image-1', prompt: 'x', background: 'transparent', output_format: 'jpeg' }),
    ).rejects.toBeInstanceOf(OpenAI.BadRequestError);
  });

  it('is deterministic with the seed extension and reports the seed', async () => {
    const body = { model: 'gpt-image-1', prompt: 'two green hearts', size: '1024x1024', seed: 1234 } as const;
    const a = await client.images.generate(body as OpenAI.ImageGenerateParamsNonStreaming);
    const b = await client.images.generate(body as OpenAI.ImageGenerateParamsNonStreaming);
    expect(a.data![0].b64_json).toBe(b.data![0].b64_json);
    const raw = await client.images.generate({ model: 'gpt-image-1', prompt: 'x', size: '1024x1024' }).withResponse();
    expect(Number(raw.response.headers.get('x-easel-seed'))).toBeGreaterThanOrEqual(0);
    await expect(client.images.generate({ model: 'gpt-image-1', prompt: 'x', seed: -1 } as never)).rejects.toMatchObject({
      status: 400,
      param: 'seed',
    });
  });

  it('streams partial images then the completed image', async () => {
    const stream = await client.images.generate({
      model: 'gpt-image-1',
      prompt: 'a yellow star',
      stream: true,
      partial_images: 2,
      size: '1024x1024',
    });
    const events: Array<{ type: string; b64_json?: string; partial_image_index?: number }> = [];
    for await (const e of stream) events.push(e as never);
    expect(events.map((e) => e.type)).toEqual([
      'image_generation.partial_image',
      'image_generation.partial_image',
      'image_generation.completed',
    ]);
    expect(events.map((e) => e.partial_image_index)).toEqual([0, 1, undefined]);
    for (const e of events) {
      const schema = e.type === 'image_generation.completed' ? 'ImageGenCompletedEvent' : 'ImageGenPartialImageEvent';
      expect(validateSchema(schema, e)).toEqual([]);
      expect((await meta(e.b64_json!)).width).toBe(1024);
    }
    expect(events[0].b64_json).not.toBe(events[2].b64_json);
    const completed = events[2] as unknown as { usage: { output_tokens: number } };
    // quality auto bills as medium (1056 for 1024x1024) plus 100 per partial image.
    expect(completed.usage.output_tokens).toBe(1056 + 2 * 100);
  });
});

describe('dall-e families', () => {
  it('dall-e-2 defaults to url; the signed URL works, then expires after 60 minutes', async () => {
    const res = await client.images.generate({ prompt: 'a cyan ring', size: '256x256' });
    expectValid(res);
    const url = res.data![0].url!;
    expect(url.startsWith(server.url)).toBe(true);
    const ok = await fetch(url);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe('image/png');
    const m = await sharp(Buffer.from(await ok.arrayBuffer())).metadata();
    expect([m.width, m.height]).toEqual([256, 256]);

    const tampered = url.replace(/sig=(.)/, (_s, c: string) => `sig=${c === 'A' ? 'B' : 'A'}`);
    expect((await fetch(tampered)).status).toBe(403);
    clock += 61 * 60 * 1000;
    try {
      expect((await fetch(url)).status).toBe(404);
    } finally {
      clock -= 61 * 60 * 1000;
    }
  });

  it('dall-e-3 gives revised_prompt, allows only n=1 and its own sizes', async () => {
    const res = await client.images.generate({
      model: 'dall-e-3',
      prompt: 'a purple triangle',
      response_format: 'b64_json',
      size: '1792x1024',
      quality: 'hd',
      style: 'natural',
    });
    expectValid(res);
    expect(res.data![0].revised_prompt).toBe('a purple triangle');
    expect((await meta(res.data![0].b64_json!)).width).toBe(1792);
    await expect(client.images.generate({ model: 'dall-e-3', prompt: 'x', n: 2 })).rejects.toMatchObject({ status: 400, param: 'n' });
    await expect(client.images.generate({ model: 'dall-e-3', prompt: 'x', size: '256x256' })).rejects.toMatchObject({
      status: 400,
      param: 'size',
    });
    await expect(client.images.generate({ model: 'dall-e-2', prompt: 'x'.repeat(1001) })).rejects.toMatchObject({
      status: 400,
      param: 'prompt',
    });
  });
});

describe('errors and envelope', () => {
  it('unknown fields, models and bad values raise typed SDK errors naming the param', async () => {
    await expect(client.images.generate({ model: 'gpt-image-1', prompt: 'x', bogus: 1 } as never)).rejects.toMatchObject({
      status: 400,
      param: 'bogus',
      code: 'unknown_parameter',
    });
    await expect(client.images.generate({ model: 'no-such-model', prompt: 'x' })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(client.images.generate({ model: 'gpt-image-1', prompt: 'x', n: 11 })).rejects.toMatchObject({ status: 400, param: 'n' });
    await expect(client.images.generate({ model: 'gpt-image-1', prompt: 'x', quality: 'ultra' as never })).rejects.toMatchObject({
      param: 'quality',
    });
    await expect(client.images.generate({} as never)).rejects.toMatchObject({ status: 400, param: 'prompt' });
  });

  it('malformed JSON, wrong content type, oversized bodies and unknown routes are 4xx with the envelope', async () => {
    const post = (body: string, type = 'application/json') =>
      fetch(`${server.url}/v1/images/generations`, { method: 'POST', headers: { 'content-type': type }, body });
    const cases = [
      [await post('{"prompt": '), 400],
      [await post('prompt=x', 'application/x-www-form-urlencoded'), 400], // OpenAI: generations take JSON only (400 unsupported_content_type)
      [await post(JSON.stringify({ prompt: 'x'.repeat(3 * 1024 * 1024) })), 413],
      [await post('[1,2]'), 400],
      [await fetch(`${server.url}/v1/nope`), 404],
    ] as const;
    for (const [res, status] of cases) {
      expect(res.status).toBe(status);
      expect(res.headers.get('x-request-id')).toMatch(/^req_/);
      expect(res.headers.get('x-should-retry')).toBe('false');
      const body = (await res.json()) as { error: Record<string, unknown> };
      expect(validateSchema('ErrorResponse', body)).toEqual([]);
      expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
    }
  });

  it('moderation auto refuses listed terms; low only the smallest set', async () => {
    await expect(client.images.generate({ model: 'gpt-image-1', prompt: 'a nude figure' })).rejects.toMatchObject({
      status: 400,
      code: 'moderation_blocked',
    });
    const ok = await client.images.generate({ model: 'gpt-image-1', prompt: 'a nude figure', moderation: 'low', size: '1024x1024' });
    expect(ok.data).toHaveLength(1);
  });

  it('records usage without the prompt text', async () => {
    const db = openSqliteDb({ path: join(dataDir, 'easel.sqlite') });
    try {
      const rows = await db.listUsage({ limit: 1000 });
      expect(rows.length).toBeGreaterThan(3);
      const gpt = rows.find((r) => r.model === 'gpt-image-1' && r.size === '1536x1024')!;
      expect(gpt.outputTokens).toBe(400);
      expect(gpt.servedModel).toBe('easel-default');
      expect(rows.every((r) => r.prompt === null)).toBe(true);
    } finally {
      await db.close();
    }
  });
});

describe('service endpoints and concurrency', () => {
  it('health, readiness, models and the OpenAPI document answer', async () => {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    const models = await client.models.list();
    const ids = models.data.map((m) => m.id);
    expect(ids).toEqual(
      expect.arrayContaining(['easel-default', 'dall-e-2', 'dall-e-3', 'gpt-image-1', 'gpt-image-1-mini', 'gpt-image-1.5']),
    );
    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toContain('/v1/images/generations');
  });

  it('a client that disconnects frees the engine for the next request', async () => {
    const controller = new AbortController();
    const slow = client.images.generate({ model: 'gpt-image-1', prompt: 'slow', size: '1024x1024', num_inference_steps: 100 } as never, {
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 50);
    await expect(slow).rejects.toThrow();
    const res = await client.images.generate({ model: 'gpt-image-1', prompt: 'next', size: '1024x1024', quality: 'low' });
    expect(res.data).toHaveLength(1);
    const ready = (await (await fetch(`${server.url}/readyz`)).json()) as { queue: { running: number; waiting: number } };
    expect(ready.queue).toEqual({ running: 0, waiting: 0 });
  });
});
