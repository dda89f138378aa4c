// End-to-end: OpenAI's newest names (gpt-image-2, gpt-image-2-2026-04-21, chatgpt-image-latest) served out of the box,
// and what generic clients send (stream: false to DALL·E, a fetched URL as the upload, quality standard on GPT edits),
// with the official openai client against a real server on the tiny fixture. Responses validate against OpenAI's spec.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { type RunningServer, startServer } from '../../src/server/start.js';
import { validateSchema } from '../helpers/openapi.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');
const NEWEST = ['gpt-image-2', 'gpt-image-2-2026-04-21', 'chatgpt-image-latest'];

let server: RunningServer;
let client: OpenAI;
let dataDir: string;

/** Every field against OpenAI's schema; `size` separately, since its response enum predates flexible sizes (README). */
function expectValid(body: { size?: string }, schema = 'ImagesResponse') {
  const standard = body.size === undefined || ['1024x1024', '1024x1536', '1536x1024'].includes(body.size);
  expect(validateSchema(schema, standard ? body : { ...body, size: '1024x1024' })).toEqual([]);
}

async function dims(b64: string): Promise<[string | undefined, number | undefined, number | undefined]> {
  const m = await sharp(Buffer.from(b64, 'base64')).metadata();
  return [m.format, m.width, m.height];
}

const square = (size: number, format: 'png' | 'jpeg' = 'png') =>
  sharp({ create: { width: size, height: size, channels: 3, background: '#cc3344' } })
    [format]()
    .toBuffer();

/** The error body of a refused SDK call. */
async function refusal(call: Promise<unknown>): Promise<{ status: number; error: Record<string, unknown> }> {
  const err = await call.then(
    () => {
      throw new Error('expected a refusal');
    },
    (e: unknown) => e,
  );
  if (!(err instanceof OpenAI.APIError)) throw err;
  return { status: err.status ?? 0, error: err.error as Record<string, unknown> };
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'easel-newest-'));
  server = await startServer(loadConfig({ model: FIXTURE, port: 0, dataDir }, { EASEL_THREADS: '1' }), { waitForWarmUp: true });
  client = new OpenAI({ apiKey: 'sk-anything', baseURL: `${server.url}/v1`, maxRetries: 0 });
});

afterAll(async () => {
  await server?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('the newest OpenAI names, out of the box', () => {
  it('/v1/models lists them as gpt-image aliases of the default model', async () => {
    const listed = (await client.models.list()).data as unknown as Array<{ id: string; family: string; served_by: string }>;
    for (const id of NEWEST) {
      expect(
        listed.find((m) => m.id === id),
        id,
      ).toMatchObject({ id, family: 'gpt-image', served_by: 'easel-default' });
      expect((await client.models.retrieve(id)).id).toBe(id);
    }
  });

  it('gpt-image-2 makes an exactly 3840x2160 image, reports that size and bills it by the patch rule', async () => {
    const rssBefore = process.memoryUsage().rss;
    const res = await client.images.generate({ model: 'gpt-image-2', prompt: 'a red circle', size: '3840x2160', quality: 'low' });
    const grewMiB = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
    expectValid(res);
    expect(await dims(res.data![0].b64_json!)).toEqual(['png', 3840, 2160]);
    expect(res.size).toBe('3840x2160');
    expect(res.quality).toBe('low');
    // low patches are 64 px: 60 columns, 34 rows (2160 / 64 rounded up); rows * (columns + 1)
    expect(res.usage!.output_tokens).toBe(34 * 61);
    // One 8.3-megapixel RGBA image is 32 MiB; resize and encode hold a few copies, not hundreds of megabytes.
    expect(grewMiB).toBeLessThan(512);
  });

  it('the snapshot streams a flexible size, every event naming the exact size', async () => {
    const stream = await client.images.generate({
      model: 'gpt-image-2-2026-04-21',
      prompt: 'a blue square',
      size: '1536x864',
      quality: 'low',
      stream: true,
      partial_images: 1,
    });
    const events = [];
    for await (const event of stream) events.push(event);
    expect(events.map((e) => e.type)).toEqual(['image_generation.partial_image', 'image_generation.completed']);
    for (const e of events) {
      expect(e.size as string).toBe('1536x864');
      expectValid(e, 'ImageGenStreamEvent');
    }
    const done = events[1];
    expect(done.type === 'image_generation.completed' && (await dims(done.b64_json))).toEqual(['png', 1536, 864]);
  });

  it('gpt-image-2 edits at a flexible size and refuses input_fidelity, as OpenAI does', async () => {
    const image = await toFile(await square(96), 'in.png', { type: 'image/png' });
    const res = await client.images.edit({ model: 'gpt-image-2', image, prompt: 'make it green', size: '1024x1536', quality: 'low' });
    expectValid(res);
    expect(await dims(res.data![0].b64_json!)).toEqual(['png', 1024, 1536]);
    const refused = await refusal(client.images.edit({ model: 'gpt-image-2', image, prompt: 'x', input_fidelity: 'high' }));
    expect(refused).toMatchObject({ status: 400, error: { param: 'input_fidelity', code: 'invalid_input_fidelity_model' } });
  });

  it('chatgpt-image-latest takes input_fidelity and the standard sizes, not flexible ones', async () => {
    const image = await toFile(await square(64, 'jpeg'), 'in.jpg', { type: 'image/jpeg' });
    const res = await client.images.edit({ model: 'chatgpt-image-latest', image, prompt: 'x', input_fidelity: 'high', quality: 'low' });
    expectValid(res);
    expect(res.size).toBe('1024x1024');
    const refused = await refusal(client.images.generate({ model: 'chatgpt-image-latest', prompt: 'x', size: '1536x864' }));
    expect(refused).toMatchObject({ status: 400, error: { param: 'size', code: 'invalid_value' } });
  });
});

describe('what generic clients send', () => {
  it('stream: false (and partial_images 0 or null) means "no streaming" on the DALL·E models too', async () => {
    const dalle3 = await client.images.generate({ model: 'dall-e-3', prompt: 'a star', stream: false, response_format: 'b64_json' });
    expectValid(dalle3);
    expect(await dims(dalle3.data![0].b64_json!)).toEqual(['png', 1024, 1024]);
    const raw = await fetch(`${server.url}/v1/images/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'dall-e-2', prompt: 'a star', size: '256x256', stream: null, partial_images: 0 }),
    });
    expect(raw.status).toBe(200);
    expectValid(await raw.json());
    const edit = await client.images.edit({
      model: 'dall-e-2',
      image: await toFile(await square(64), 'in.png', { type: 'image/png' }),
      prompt: 'x',
      size: '256x256',
      stream: false,
    });
    expectValid(edit);
  });

  it('stream: true on a DALL·E model is refused as unsupported_value, naming the field', async () => {
    const refused = await refusal(client.images.generate({ model: 'dall-e-3', prompt: 'x', stream: true }));
    expect(refused).toMatchObject({ status: 400, error: { param: 'stream', code: 'unsupported_value' } });
  });

  it('an image fetched from a url response uploads as is, though its file name carries ?expires=…&sig=…', async () => {
    const made = await client.images.generate({ model: 'dall-e-2', prompt: 'a red circle', size: '256x256' });
    const url = made.data![0].url!;
    expect(new URL(url).search).toMatch(/expires=.*sig=/);
    // The SDK names a Response after the last segment of its URL, query string included, and types it octet-stream.
    const edit = await client.images.edit({ model: 'dall-e-2', image: await fetch(url), prompt: 'make it blue', size: '256x256' });
    expectValid(edit);
    const variation = await client.images.createVariation({ image: await fetch(url), size: '256x256', response_format: 'b64_json' });
    expect(await dims(variation.data![0].b64_json!)).toEqual(['png', 256, 256]);
    const gpt = await client.images.edit({ model: 'gpt-image-1', image: await fetch(url), prompt: 'x', quality: 'low' });
    expectValid(gpt);
  });

  it('quality "standard", in the edit enum, is accepted on GPT edits and answered as medium', async () => {
    const image = await toFile(await square(64), 'in.png', { type: 'image/png' });
    const res = await client.images.edit({ model: 'gpt-image-1.5', image, prompt: 'x', quality: 'standard' });
    expectValid(res);
    expect(res.quality).toBe('medium');
    expect(res.usage!.output_tokens).toBe(1056);
  });
});
