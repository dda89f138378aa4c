// The shipped default model through the public API with the official client, read back from the pixels by the
// project's scorer (the same one `npm run eval:default-model` uses on the 100 held-out prompts).
// - "clean scenes": prompts (not from the held-out set) at fixed seeds that the shipped export gets fully right
//   (background, and each object's colour, shape, size, place and count), at a wide size and at the low preset too.
//   A regression check that the model in the repository and the engine still produce clean images; the seeds were
//   picked where this export succeeds (of seeds 1-8: the white circle 3, every other prompt 8, incl. the two hearts
//   and the three-object scene), so it says nothing about the adherence rate (MODEL.md: 95% of the 200 held-out
//   prompts of training/heldout-confirm.json fully right).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { loadHeldout } from '../../src/eval/heldout.js';
import { type SceneSpec, scoreScene } from '../../src/eval/scene-scorer.js';
import { type RunningServer, startServer } from '../../src/server/start.js';

const ROOT = join(import.meta.dirname, '..', '..');
const MODEL = join(ROOT, 'models', 'easel-shapes');
const { palette, geometry } = loadHeldout({ root: ROOT, modelDir: MODEL });

let server: RunningServer;
let client: OpenAI;
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'easel-default-model-'));
  server = await startServer(loadConfig({ model: MODEL, port: 0, dataDir }, { EASEL_THREADS: '2' }), { waitForWarmUp: true });
  client = new OpenAI({ apiKey: 'sk-local', baseURL: `${server.url}/v1`, maxRetries: 0 });
});

afterAll(async () => {
  await server?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function generate(params: Record<string, unknown>) {
  const res = await client.images.generate({
    model: 'gpt-image-1',
    quality: 'medium',
    ...params,
  } as unknown as OpenAI.ImageGenerateParamsNonStreaming);
  const png = Buffer.from(res.data![0].b64_json!, 'base64');
  const { data, info } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { res, img: { width: info.width, height: info.height, data: new Uint8Array(data) } };
}

const solid = (color: string) => ({ kind: 'solid', color }) as const;
const obj = (color: string, shape: string, position: string | null, size = 'medium') => ({ color, shape, position, size });

type Case = { prompt: string; size: string; quality: string; seed: number; expect: SceneSpec };

/** Prompts of the model's vocabulary (not from the held-out set), each with the scene it must produce in full. */
const CLEAN: Case[] = [
  {
    prompt: 'a red circle on a blue background',
    size: '1024x1024',
    quality: 'medium',
    seed: 1,
    expect: { background: solid('blue'), objects: [obj('red', 'circle', null)] } as SceneSpec,
  },
  {
    prompt: 'a large white circle in the center on a black background',
    size: '1024x1024',
    quality: 'medium',
    seed: 1,
    expect: { background: solid('black'), objects: [obj('white', 'circle', 'center', 'large')] } as SceneSpec,
  },
  {
    prompt: 'a pink ring at the top right on a gray background',
    size: '1024x1024',
    quality: 'medium',
    seed: 2,
    expect: { background: solid('gray'), objects: [obj('pink', 'ring', 'top right')] } as SceneSpec,
  },
  {
    prompt: 'a yellow star on the left on a blue background',
    size: '1024x1024',
    quality: 'medium',
    seed: 1,
    expect: { background: solid('blue'), objects: [obj('yellow', 'star', 'left')] } as SceneSpec,
  },
  {
    prompt: 'a large black diamond in the center on a cyan background',
    size: '1536x1024',
    quality: 'medium',
    seed: 2,
    expect: { background: solid('cyan'), objects: [obj('black', 'diamond', 'center', 'large')] } as SceneSpec,
  },
  {
    prompt: 'a large orange triangle in the center on a purple background',
    size: '1024x1024',
    quality: 'low',
    seed: 1,
    expect: { background: solid('purple'), objects: [obj('orange', 'triangle', 'center', 'large')] } as SceneSpec,
  },
  {
    prompt: 'two pink hearts on a gray background',
    size: '1024x1024',
    quality: 'medium',
    seed: 1,
    expect: { background: solid('gray'), objects: [obj('pink', 'heart', null), obj('pink', 'heart', null)] } as SceneSpec,
  },
  {
    prompt: 'a blue square on the left and a green triangle on the right',
    size: '1024x1024',
    quality: 'medium',
    seed: 1,
    expect: { background: solid('white'), objects: [obj('blue', 'square', 'left'), obj('green', 'triangle', 'right')] } as SceneSpec,
  },
  {
    prompt: 'a small white cross at the bottom, gradient from purple to orange',
    size: '1024x1024',
    quality: 'medium',
    seed: 1,
    expect: {
      background: { kind: 'gradient', from: 'purple', to: 'orange' },
      objects: [obj('white', 'cross', 'bottom', 'small')],
    } as SceneSpec,
  },
  {
    prompt: 'a purple ring at the top right and an orange square at the bottom left, white background',
    size: '1024x1536',
    quality: 'medium',
    seed: 1,
    expect: {
      background: solid('white'),
      objects: [obj('purple', 'ring', 'top right'), obj('orange', 'square', 'bottom left')],
    } as SceneSpec,
  },
  {
    prompt: 'a red heart at the top left, a yellow circle in the center and a blue star at the bottom right on a black background',
    size: '1024x1024',
    quality: 'medium',
    seed: 1,
    expect: {
      background: solid('black'),
      objects: [obj('red', 'heart', 'top left'), obj('yellow', 'circle', 'center'), obj('blue', 'star', 'bottom right')],
    } as SceneSpec,
  },
];

describe('default model through the API', () => {
  for (const c of CLEAN) {
    it(`draws "${c.prompt}" at ${c.size}, quality ${c.quality}, fully right`, async () => {
      const { img } = await generate({ prompt: c.prompt, size: c.size, quality: c.quality, seed: c.seed });
      const score = scoreScene(img, c.expect, palette, geometry);
      expect(score.reasons).toEqual([]);
      expect(score.ok).toBe(true);
    });
  }

  it('background "transparent" gives real alpha even when the prompt names no background', async () => {
    const { res, img } = await generate({ prompt: 'a purple star', background: 'transparent', size: '1024x1024', seed: 4 });
    expect(res.background).toBe('transparent');
    const score = scoreScene(
      img,
      { background: { kind: 'transparent' }, objects: [obj('purple', 'star', null)] } as SceneSpec,
      palette,
      geometry,
    );
    expect(score.checks.background.ok).toBe(true);
  });

  it('steers background "transparent" into the conditioning: same pixels as saying it in the prompt', async () => {
    const steered = await generate({ prompt: 'two orange hearts', background: 'transparent', size: '1024x1024', seed: 5 });
    const said = await generate({
      prompt: 'two orange hearts, on a transparent background',
      background: 'auto',
      size: '1024x1024',
      seed: 5,
    });
    const plain = await generate({ prompt: 'two orange hearts', background: 'auto', size: '1024x1024', seed: 5 });
    expect(Buffer.compare(Buffer.from(steered.img.data), Buffer.from(said.img.data))).toBe(0);
    expect(Buffer.compare(Buffer.from(steered.img.data), Buffer.from(plain.img.data))).not.toBe(0);
    // usage counts the prompt as sent, not the steering words
    expect(steered.res.usage!.input_tokens).toBe(plain.res.usage!.input_tokens);
  });

  it('background "opaque" flattens a transparent scene onto white', async () => {
    const { res, img } = await generate({
      prompt: 'a purple star on a transparent background',
      background: 'opaque',
      size: '1024x1024',
      seed: 4,
    });
    expect(res.background).toBe('opaque');
    for (let i = 3; i < img.data.length; i += 4) if (img.data[i] !== 255) throw new Error('found a non-opaque pixel');
    const score = scoreScene(img, { background: solid('white'), objects: [obj('purple', 'star', null)] } as SceneSpec, palette, geometry);
    expect(score.checks.background.ok).toBe(true);
  });
});

describe('parameters a diffusion model cannot take literally do something, or say so', () => {
  const raw = (b64: string) => sharp(Buffer.from(b64, 'base64')).ensureAlpha().raw().toBuffer();

  it('names the prompt words the model does not know in x-easel-warning (JSON and streaming), and none for its own words', async () => {
    const known = await client.images
      .generate({ model: 'gpt-image-1', prompt: 'two pink hearts on a blue background', size: '1024x1024', quality: 'low' })
      .withResponse();
    expect(known.response.headers.get('x-easel-warning')).toBeNull();
    const unknown = await client.images
      .generate({ model: 'gpt-image-1', prompt: 'A dog riding a bicycle', size: '1024x1024', quality: 'low' })
      .withResponse();
    expect(unknown.response.headers.get('x-easel-warning')).toBe(
      'the model does not know these words and ignored them: dog, riding, bicycle',
    );
    const stream = await fetch(`${server.url}/v1/images/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-image-1', prompt: 'a red circle, très joli', size: '1024x1024', quality: 'low', stream: true }),
    });
    expect(stream.headers.get('x-easel-warning')).toBe('the model does not know these words and ignored them: tr%C3%A8s, joli');
    await stream.text();
  });

  it('style natural and vivid give different images for one seed (natural halves the guidance above 1)', async () => {
    const gen = (style: 'vivid' | 'natural') =>
      client.images.generate({
        model: 'dall-e-3',
        prompt: 'a yellow star',
        style,
        response_format: 'b64_json',
        seed: 3,
      } as OpenAI.ImageGenerateParamsNonStreaming);
    const [vivid, natural, again] = await Promise.all([gen('vivid'), gen('natural'), gen('vivid')]);
    expect(Buffer.compare(await raw(vivid.data![0].b64_json!), await raw(again.data![0].b64_json!))).toBe(0);
    expect(Buffer.compare(await raw(vivid.data![0].b64_json!), await raw(natural.data![0].b64_json!))).not.toBe(0);
    const listed = await client.models.retrieve('dall-e-3');
    expect((listed as unknown as { capabilities: { style: Record<string, string> } }).capabilities.style.natural).toContain('0.5');
  });

  it('an edit’s extra images change the result without a mask, and input_fidelity high keeps more of the input', async () => {
    const png = (color: string) =>
      sharp({ create: { width: 256, height: 256, channels: 4, background: color } })
        .png()
        .toBuffer();
    const [blue, red] = [await png('#2040e0'), await png('#e02020')];
    const edit = async (images: Buffer[], extra: Record<string, unknown> = {}) => {
      const res = await client.images.edit({
        model: 'gpt-image-1',
        image: await Promise.all(images.map((b, i) => OpenAI.toFile(b, `in${i}.png`, { type: 'image/png' }))),
        prompt: 'a white circle',
        size: '1024x1024',
        quality: 'low',
        seed: 2,
        ...extra,
      } as unknown as OpenAI.ImageEditParamsNonStreaming);
      return raw(res.data![0].b64_json!);
    };
    const one = await edit([blue]);
    const two = await edit([blue, red]);
    expect(Buffer.compare(one, two)).not.toBe(0);
    const meanDistance = async (img: Buffer) => {
      let d = 0;
      for (let i = 0; i < img.length; i += 4) d += Math.abs(img[i] - 0x20) + Math.abs(img[i + 2] - 0xe0);
      return d / (img.length / 4);
    };
    const high = await edit([blue], { input_fidelity: 'high' });
    expect(await meanDistance(high)).toBeLessThan(await meanDistance(one)); // closer to the blue input
  });
});
