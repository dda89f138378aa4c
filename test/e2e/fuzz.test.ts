// Seeded fuzzing of the JSON endpoints: random field sets with values of every JSON type. Whatever a client sends,
// the answer is a 2xx or a 4xx with OpenAI's error envelope — never a 5xx — and the server keeps serving.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { createRng } from '../../src/engine/rng.js';
import { type RunningServer, startServer } from '../../src/server/start.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');
const FIELDS = [
  'prompt',
  'model',
  'n',
  'size',
  'quality',
  'style',
  'response_format',
  'output_format',
  'output_compression',
  'background',
  'moderation',
  'user',
  'stream',
  'partial_images',
  'seed',
  'negative_prompt',
  'num_inference_steps',
  'guidance_scale',
  'scheduler',
  'images',
  'mask',
  'input_fidelity',
  '__proto__',
  'constructor',
  'x',
];
const STRINGS = [
  '',
  'auto',
  'png',
  'jpeg',
  'webp',
  'url',
  'b64_json',
  'low',
  'high',
  'hd',
  'vivid',
  'transparent',
  '256x256',
  '1024x1024',
  '1536x1024',
  '0x0',
  '99999x99999',
  'dall-e-2',
  'dall-e-3',
  'gpt-image-1',
  'gpt-image-2',
  'euler',
  'lcm',
  'data:image/png;base64,AAAA',
  'https://127.0.0.1/x.png',
  '\u0000',
  '😀'.repeat(50),
  'a red circle',
  '-1',
  '1e400',
];

let server: RunningServer;
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'easel-fuzz-'));
  server = await startServer(loadConfig({ model: FIXTURE, port: 0, dataDir }, { EASEL_THREADS: '1' }), { waitForWarmUp: true });
});

afterAll(async () => {
  await server?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

it('never answers 5xx to random JSON bodies', async () => {
  // EASEL_FUZZ_SEED=N reruns with another seed when hunting for new failures.
  const rng = createRng(Number(process.env.EASEL_FUZZ_SEED ?? 20261121));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng.uniform() * xs.length)];
  const value = (depth = 0): unknown => {
    switch (Math.floor(rng.uniform() * (depth > 1 ? 6 : 8))) {
      case 0:
        return pick(STRINGS);
      case 1:
        return Math.floor(rng.uniform() * 40) - 10;
      case 2:
        return pick([0, -0.5, 1.5, 1e308, -1e308, 4294967296, Number.MAX_SAFE_INTEGER]);
      case 3:
        return null;
      case 4:
        return rng.uniform() < 0.5;
      case 5:
        return 'x'.repeat(Math.floor(rng.uniform() * 40000));
      case 6:
        return [value(depth + 1), value(depth + 1)];
      default:
        return { image_url: value(depth + 1), file_id: value(depth + 1) };
    }
  };
  const statuses = new Map<number, number>();
  for (let i = 0; i < 150; i++) {
    const body: Record<string, unknown> = {};
    const count = Math.floor(rng.uniform() * 6);
    for (let k = 0; k < count; k++) body[pick(FIELDS)] = value();
    if (rng.uniform() < 0.6) body.prompt = pick(STRINGS);
    // Keep the valid ones cheap: the point is the parser, not the engine.
    if (rng.uniform() < 0.8) body.num_inference_steps = 1;
    const route = rng.uniform() < 0.8 ? 'generations' : 'edits';
    const res = await fetch(`${server.url}/v1/images/${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    expect(res.status, `${route} ${JSON.stringify(body).slice(0, 300)} → ${text.slice(0, 300)}`).toBeLessThan(500);
    if (res.status >= 400 && !String(res.headers.get('content-type')).includes('event-stream')) {
      expect(JSON.parse(text).error).toHaveProperty('message');
    }
  }
  // The run exercises both outcomes, and the server is still healthy.
  expect([...statuses.keys()].some((s) => s >= 400)).toBe(true);
  expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
});

it('never answers 5xx to random multipart forms on edits and variations', async () => {
  const rng = createRng(Number(process.env.EASEL_FUZZ_SEED ?? 7));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng.uniform() * xs.length)];
  const png = await (await import('sharp'))
    .default({ create: { width: 64, height: 64, channels: 4, background: '#f00' } })
    .png()
    .toBuffer();
  const blobs = [png, png.subarray(0, 40), Buffer.from('not an image'), Buffer.alloc(0), Buffer.concat([png, png])];
  for (let i = 0; i < 60; i++) {
    const form = new FormData();
    const count = Math.floor(rng.uniform() * 6);
    for (let k = 0; k < count; k++) form.append(pick(FIELDS), String(pick([...STRINGS, '2', '0', '11', 'true', 'null', '1.5'])));
    const files = Math.floor(rng.uniform() * 4);
    for (let k = 0; k < files; k++) {
      const name = pick(['image', 'image[]', 'mask', 'image', 'other']);
      form.append(
        name,
        new Blob([new Uint8Array(pick(blobs))], { type: pick(['image/png', 'application/octet-stream', 'text/plain', '']) }),
        pick(['a.png', 'b.jpg', 'c', '../../etc/passwd']),
      );
    }
    if (rng.uniform() < 0.7) form.append('prompt', 'a red circle');
    form.append('num_inference_steps', '1');
    const route = rng.uniform() < 0.7 ? 'edits' : 'variations';
    const res = await fetch(`${server.url}/v1/images/${route}`, { method: 'POST', body: form });
    const text = await res.text();
    expect(res.status, `${route} → ${text.slice(0, 300)}`).toBeLessThan(500);
  }
  expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
});
