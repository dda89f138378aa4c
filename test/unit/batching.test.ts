// Batching across requests (issue 20): requests sharing UNet calls through Pipeline.generateBatch give the pixels each
// gives alone (same seed, own prompt, n, guidance, previews), and a cancelled item leaves the others' pixels unchanged;
// through the real server, concurrent requests from the official client run as one batch and get their own images.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import {
  AbortError,
  type BatchItem,
  type GenerateRequest,
  loadPipeline,
  type RgbaImage,
  type StableDiffusionPipeline,
} from '../../src/engine/index.js';
import { type RunningServer, startServer } from '../../src/server/start.js';

const FIX = join(import.meta.dirname, '..', 'fixtures');
const base = { width: 64, height: 64, numInferenceSteps: 3, guidanceScale: 7.5 };

function maxAbsDiff(a: RgbaImage, b: RgbaImage): number {
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i] - b.data[i]));
  return m;
}

function meanAbsDiff(a: RgbaImage, b: RgbaImage): number {
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += Math.abs(a.data[i] - b.data[i]);
  return s / a.data.length;
}

/** Every image of `got` within 1/255 of `want`, image by image. */
function expectSamePixels(got: readonly RgbaImage[], want: readonly RgbaImage[]): void {
  expect(got).toHaveLength(want.length);
  for (const [i, img] of got.entries()) expect(maxAbsDiff(img, want[i])).toBeLessThanOrEqual(1);
}

describe.each([
  ['tiny-sd', 4],
  ['tiny-sdxl', 4],
  ['tiny-sd', 3],
])('generateBatch on %s (maxBatchSize %i)', (fixture, maxBatchSize) => {
  let pipe: StableDiffusionPipeline;
  beforeAll(async () => {
    pipe = await loadPipeline(join(FIX, fixture), { threads: 1, maxBatchSize });
  });
  afterAll(async () => {
    await pipe?.dispose();
  });

  const requests: GenerateRequest[] = [
    { ...base, prompt: 'a red circle on a blue background', seed: 11, numImages: 2 },
    { ...base, prompt: 'a green square', negativePrompt: 'blurry', seed: 500, guidanceScale: 4 },
    { ...base, prompt: 'a yellow triangle', seed: 42, numImages: 3, guidanceInterval: [0, 600] },
  ];

  it('gives each request the pixels it gets alone: own prompt, seed + i, n and guidance', async () => {
    const alone = [];
    for (const req of requests) alone.push(await pipe.generate(req));
    const batched = await Promise.all(pipe.generateBatch(requests.map((req) => ({ req }))));
    for (const [i, r] of batched.entries()) {
      expect(r.seed).toBe(requests[i].seed);
      expectSamePixels(r.images, alone[i].images);
      expect(r.timings.batchImages).toBe(6);
    }
    // The rows really are each request's own: the prompts differ, so do the pictures.
    expect(meanAbsDiff(batched[0].images[0], batched[1].images[0])).toBeGreaterThan(1);
  });

  it('reports progress and previews per item, decoded from its own rows only', async () => {
    const steps: number[][] = [[], []];
    const previews: RgbaImage[][][] = [[], []];
    const items: BatchItem[] = [0, 2].map((r, k) => ({
      req: requests[r],
      opts: {
        previewSteps: [1],
        onStep: (p) => void steps[k].push(p.step),
        onPreview: (_step, images) => void previews[k].push(images),
      },
    }));
    await Promise.all(pipe.generateBatch(items));
    expect(steps).toEqual([
      [0, 1, 2],
      [0, 1, 2],
    ]);
    const alonePreview: RgbaImage[][] = [];
    await pipe.generate(requests[2], { previewSteps: [1], onPreview: (_s, images) => void alonePreview.push(images) });
    expect(previews[0][0]).toHaveLength(2);
    expectSamePixels(previews[1][0], alonePreview[0]);
  });

  it('a cancelled item rejects at once and leaves the others unchanged', async () => {
    const alone = [await pipe.generate(requests[0]), await pipe.generate(requests[2])];
    const controller = new AbortController();
    let calledAfterAbort = 0;
    const items: BatchItem[] = [
      { req: requests[0] },
      {
        req: requests[1],
        opts: {
          signal: controller.signal,
          onStep: (p) => {
            if (controller.signal.aborted) calledAfterAbort++;
            if (p.step === 0) controller.abort();
          },
        },
      },
      { req: requests[2] },
    ];
    const [a, cancelled, c] = pipe.generateBatch(items);
    await expect(cancelled).rejects.toBeInstanceOf(AbortError);
    expect(calledAfterAbort).toBe(0);
    expectSamePixels((await a).images, alone[0].images);
    expectSamePixels((await c).images, alone[1].images);
    expect((await a).timings.batchImages).toBe(6);
  });

  it("an item whose preview fails ends alone; the others' pixels are unchanged", async () => {
    const alone = await pipe.generate(requests[2]);
    const onPreview = () => {
      throw new Error('encoder broke');
    };
    const [broken, ok] = pipe.generateBatch([{ req: requests[0], opts: { previewSteps: [0], onPreview } }, { req: requests[2] }]);
    await expect(broken).rejects.toThrow('encoder broke');
    expectSamePixels((await ok).images, alone.images);
  });

  it('an invalid item fails alone; incompatible items run one after another', async () => {
    const [bad, ok, other] = pipe.generateBatch([
      { req: { ...requests[0], width: 65 } },
      { req: requests[1] },
      { req: { ...requests[2], numInferenceSteps: 2 } },
    ]);
    await expect(bad).rejects.toThrow(/width must be a positive multiple/);
    expectSamePixels((await ok).images, (await pipe.generate(requests[1])).images);
    expectSamePixels((await other).images, (await pipe.generate({ ...requests[2], numInferenceSteps: 2 })).images);
  });
});

describe('batching through the embedded server (official openai client, tiny fixture)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'easel-batching-'));
  let server: RunningServer;
  let client: OpenAI;
  beforeAll(async () => {
    const file = join(dir, 'easel.json');
    const models = [{ name: 'tiny', path: join(FIX, 'tiny-sd'), family: 'gpt-image' }];
    writeFileSync(file, JSON.stringify({ models, dataDir: 'data', limits: { maxSteps: 100, maxImageStepMegapixels: 100_000 } }));
    server = await startServer(loadConfig({ config: file, port: 0 }, { EASEL_THREADS: '1' }), { waitForWarmUp: true });
    client = new OpenAI({ apiKey: 'sk-anything', baseURL: `${server.url}/v1`, maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  type Body = OpenAI.Images.ImageGenerateParamsNonStreaming & { seed?: number; num_inference_steps?: number };
  const generate = async (body: Body) => {
    const res = await client.images.generate({ model: 'gpt-image-1', size: '1024x1024', quality: 'low', ...body } as Body);
    return Promise.all((res.data ?? []).map((d) => sharp(Buffer.from(d.b64_json!, 'base64')).raw().toBuffer()));
  };
  const batchSizeSum = async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    return Number(/^easel_batch_size_sum\{model="tiny"\} (\S+)$/m.exec(text)?.[1] ?? 0);
  };

  it('requests waiting behind a running job run as one batch, each with the pixels it gets alone', async () => {
    const requests: Body[] = [
      { prompt: 'a red circle', n: 2, seed: 5 },
      { prompt: 'a blue square', seed: 9 },
      { prompt: 'a green triangle', seed: 13 },
    ];
    const blocker = generate({ prompt: 'busy', n: 4, seed: 1, num_inference_steps: 100 });
    await new Promise((r) => setTimeout(r, 20)); // the blocker is running; the three below wait behind it
    const before = await batchSizeSum();
    const batched = await Promise.all(requests.map(generate));
    await blocker;
    // The blocker observed 4; each of the three observed the 4 images of its batch.
    expect((await batchSizeSum()) - before).toBe(4 + 3 * 4);
    for (const [i, req] of requests.entries()) {
      const alone = await generate(req);
      expect(batched[i]).toHaveLength(alone.length);
      for (const [j, img] of alone.entries()) {
        let max = 0;
        for (let k = 0; k < img.length; k++) max = Math.max(max, Math.abs(img[k] - batched[i][j][k]));
        expect(max).toBeLessThanOrEqual(2);
      }
    }
  });
});
