// Engine tests on the tiny random-weight fixtures (test/fixtures, made by training/make_fixtures.py):
// real onnxruntime sessions, 2 steps at 64x64; shapes, seeds, guidance, image inputs, SDXL, cancellation, errors,
// and the minimal case of each diffusers parity gap closed in issue 24 (the full pack runs in parity.test.ts).
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendError } from '../../src/engine/backends/onnx.js';
import {
  AbortError,
  GenerateRequestError,
  loadPipeline,
  ModelFolderError,
  type RgbaImage,
  type StableDiffusionPipeline,
} from '../../src/engine/index.js';
import { readModelInfo } from '../../src/engine/models/info.js';
import { maskToLatent } from '../../src/engine/pipelines/pixels.js';
import { planSize } from '../../src/engine/plan.js';
import type { ModelCapabilities } from '../../src/engine/types.js';

const FIX = join(import.meta.dirname, '..', 'fixtures');

function meanAbsDiff(a: RgbaImage, b: RgbaImage): number {
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += Math.abs(a.data[i] - b.data[i]);
  return s / a.data.length;
}

function sameBytes(a: RgbaImage, b: RgbaImage): boolean {
  return Buffer.compare(Buffer.from(a.data), Buffer.from(b.data)) === 0;
}

const base = { prompt: 'a red circle on a blue background', width: 64, height: 64, numInferenceSteps: 2, guidanceScale: 7.5 };

describe('tiny-sd (SD 1.x layout, int64 timestep)', () => {
  let pipe: StableDiffusionPipeline;
  beforeAll(async () => {
    pipe = await loadPipeline(join(FIX, 'tiny-sd'), { threads: 1 });
  });
  afterAll(async () => {
    await pipe?.dispose();
  });

  it('reads its constants from the folder', () => {
    expect(pipe.capabilities.nativeWidth).toBe(64);
    expect(pipe.capabilities.sizeMultiple).toBe(16); // VAE x8, UNet with 2 down blocks (one downsampling)
    expect(pipe.capabilities.isInpaintModel).toBe(false);
    expect(pipe.capabilities.supportsImageToImage).toBe(true);
    expect(pipe.folder.scalingFactor).toBeCloseTo(0.18215);
  });

  it('generates n images of the requested size, bit-identical for the same seed', async () => {
    const a = await pipe.generate({ ...base, numImages: 2, seed: 7 });
    expect(a.images).toHaveLength(2);
    for (const img of a.images) {
      expect([img.width, img.height, img.data.length]).toEqual([64, 64, 64 * 64 * 4]);
    }
    expect(a.seed).toBe(7);
    const b = await pipe.generate({ ...base, numImages: 2, seed: 7 });
    expect(sameBytes(a.images[0], b.images[0])).toBe(true);
    expect(sameBytes(a.images[1], b.images[1])).toBe(true);
    // Image i uses seed + i, so image 1 of seed 7 is image 0 of seed 8.
    const c = await pipe.generate({ ...base, numImages: 1, seed: 8 });
    expect(meanAbsDiff(a.images[1], c.images[0])).toBeLessThan(0.5);
    expect(meanAbsDiff(a.images[0], a.images[1])).toBeGreaterThan(1);
    expect(a.timings.sessionRunMs).toBeGreaterThan(0);
    expect(a.timings.sessionRunMs).toBeLessThanOrEqual(a.timings.totalMs);
  });

  it('draws and reports a fresh seed when none is given', async () => {
    const a = await pipe.generate(base);
    const b = await pipe.generate(base);
    expect(Number.isInteger(a.seed)).toBe(true);
    expect(a.seed).not.toBe(b.seed);
    const again = await pipe.generate({ ...base, seed: a.seed });
    expect(sameBytes(a.images[0], again.images[0])).toBe(true);
  });

  it('guidance, prompt and negative prompt all change the output', async () => {
    const ref = await pipe.generate({ ...base, seed: 1 });
    const noCfg = await pipe.generate({ ...base, seed: 1, guidanceScale: 1 });
    const neg = await pipe.generate({ ...base, seed: 1, negativePrompt: 'green squares' });
    const other = await pipe.generate({ ...base, seed: 1, prompt: 'three yellow stars' });
    expect(meanAbsDiff(ref.images[0], noCfg.images[0])).toBeGreaterThan(0.5);
    expect(meanAbsDiff(ref.images[0], neg.images[0])).toBeGreaterThan(0.5);
    expect(meanAbsDiff(ref.images[0], other.images[0])).toBeGreaterThan(0.5);
  });

  it('guidanceInterval guides only the steps whose timestep lies in it', async () => {
    const steps: number[] = [];
    const ref = await pipe.generate({ ...base, seed: 1 }, { onStep: (p) => steps.push(p.timestep) });
    expect(steps).toHaveLength(2);
    const [first, second] = steps;
    const all = await pipe.generate({ ...base, seed: 1, guidanceInterval: [0, 1000] });
    expect(sameBytes(ref.images[0], all.images[0])).toBe(true);
    const none = await pipe.generate({ ...base, seed: 1, guidanceInterval: [-2, -1] });
    const noCfg = await pipe.generate({ ...base, seed: 1, guidanceScale: 1 });
    expect(meanAbsDiff(none.images[0], noCfg.images[0])).toBeLessThan(0.5);
    const onlyFirst = await pipe.generate({ ...base, seed: 1, guidanceInterval: [first, first] });
    const onlySecond = await pipe.generate({ ...base, seed: 1, guidanceInterval: [second, second] });
    // on 2 steps the first (noisiest) step decides most: guiding it alone is near full guidance, guiding the last
    // alone near none, and neither is identical to either
    expect(meanAbsDiff(onlyFirst.images[0], noCfg.images[0])).toBeGreaterThan(0.5);
    expect(meanAbsDiff(onlySecond.images[0], ref.images[0])).toBeGreaterThan(0.5);
    expect(meanAbsDiff(onlyFirst.images[0], ref.images[0])).toBeGreaterThan(0.05);
    expect(meanAbsDiff(onlySecond.images[0], noCfg.images[0])).toBeGreaterThan(0.05);
    await expect(pipe.generate({ ...base, guidanceInterval: [500, 100] })).rejects.toThrow(/guidanceInterval/);
  });

  it('every scheduler runs', async () => {
    for (const scheduler of ['euler', 'euler-ancestral', 'ddim', 'dpm-solver-multistep', 'lcm'] as const) {
      const r = await pipe.generate({ ...base, seed: 3, scheduler });
      expect(r.images[0].data.length).toBe(64 * 64 * 4);
    }
  });

  it('splits a batch by maxBatchSize with the same images', async () => {
    const small = await loadPipeline(join(FIX, 'tiny-sd'), { threads: 1, maxBatchSize: 2 });
    try {
      const a = await small.generate({ ...base, numImages: 3, seed: 11 });
      const b = await pipe.generate({ ...base, numImages: 3, seed: 11 });
      for (let i = 0; i < 3; i++) expect(meanAbsDiff(a.images[i], b.images[i])).toBeLessThan(0.5);
    } finally {
      await small.dispose();
    }
  });

  it('image-to-image keeps more of the init image at low strength', async () => {
    const init = (await pipe.generate({ ...base, seed: 21, prompt: 'a yellow star' })).images[0];
    const weak = await pipe.generate({ ...base, numInferenceSteps: 4, seed: 5, initImage: init, strength: 0.25 });
    const strong = await pipe.generate({ ...base, numInferenceSteps: 4, seed: 5, initImage: init, strength: 1 });
    expect(meanAbsDiff(weak.images[0], init)).toBeLessThan(meanAbsDiff(strong.images[0], init));
  });

  it('4-channel inpainting changes only the masked side', async () => {
    const init = (await pipe.generate({ ...base, seed: 31 })).images[0];
    const mask = new Float32Array(64 * 64);
    for (let y = 0; y < 64; y++) for (let x = 32; x < 64; x++) mask[y * 64 + x] = 1; // repaint the right half
    const out = (await pipe.generate({ ...base, seed: 9, prompt: 'a green heart', initImage: init, mask, strength: 1 })).images[0];
    const diffHalf = (x0: number, x1: number) => {
      let s = 0;
      let c = 0;
      for (let y = 0; y < 64; y++)
        for (let x = x0; x < x1; x++)
          for (let ch = 0; ch < 3; ch++) {
            const i = (y * 64 + x) * 4 + ch;
            s += Math.abs(out.data[i] - init.data[i]);
            c++;
          }
      return s / c;
    };
    // Columns next to the seam share latent pixels with the repainted side; compare away from it.
    expect(diffHalf(40, 64)).toBeGreaterThan(diffHalf(0, 24));
  });

  it('reports progress every step and stops within one step when aborted', async () => {
    const steps: number[] = [];
    await pipe.generate({ ...base, numInferenceSteps: 3, seed: 1 }, { onStep: (p) => steps.push(p.step) });
    expect(steps).toEqual([0, 1, 2]);

    const controller = new AbortController();
    const seen: number[] = [];
    const run = pipe.generate(
      { ...base, numInferenceSteps: 10, seed: 1 },
      {
        signal: controller.signal,
        onStep: (p) => {
          seen.push(p.step);
          if (p.step === 1) controller.abort();
        },
      },
    );
    await expect(run).rejects.toBeInstanceOf(AbortError);
    expect(seen).toEqual([0, 1]);
    // The pipeline is free for the next request.
    const after = await pipe.generate({ ...base, seed: 2 });
    expect(after.images).toHaveLength(1);
  });

  it('decodes previews of the predicted clean image at the chosen steps', async () => {
    const previews: Array<[number, RgbaImage]> = [];
    const r = await pipe.generate(
      { ...base, numInferenceSteps: 4, seed: 4 },
      { previewSteps: [0, 2], onPreview: (step, images) => void previews.push([step, images[0]]) },
    );
    expect(previews.map((p) => p[0])).toEqual([0, 2]);
    expect(previews[0][1].width).toBe(64);
    expect(meanAbsDiff(previews[0][1], r.images[0])).toBeGreaterThan(0);
  });

  it('refuses sizes the UNet cannot take, naming the multiple (56 = 7 latent pixels cannot be halved)', async () => {
    await expect(pipe.generate({ ...base, width: 60 })).rejects.toThrow(/multiple of 16/);
    const odd = pipe.generate({ ...base, width: 56, height: 40 });
    await expect(odd).rejects.toBeInstanceOf(GenerateRequestError);
    await expect(pipe.generate({ ...base, width: 56 })).rejects.toThrow(
      'width must be a positive multiple of 16 for this model (VAE scale factor 8 x UNet downsampling 2), got 56',
    );
  });
});

describe('tiny-sdxl (two text encoders, float timestep, external-data UNet)', () => {
  it('generates, and text_embeds/time_ids matter', async () => {
    const pipe = await loadPipeline(join(FIX, 'tiny-sdxl'), { threads: 1 });
    try {
      expect(pipe.capabilities.isSdxl).toBe(true);
      const a = await pipe.generate({ ...base, seed: 5, scheduler: 'euler-ancestral' });
      const b = await pipe.generate({ ...base, seed: 5, scheduler: 'euler-ancestral' });
      expect(sameBytes(a.images[0], b.images[0])).toBe(true);
      const c = await pipe.generate({ ...base, seed: 5, scheduler: 'euler-ancestral', prompt: 'a cyan ring' });
      expect(meanAbsDiff(a.images[0], c.images[0])).toBeGreaterThan(0.5);
      // a guidance interval that excludes every step: the conditional rows alone, pooled text and time ids included
      const unguided = await pipe.generate({ ...base, seed: 5, scheduler: 'euler-ancestral', guidanceInterval: [-2, -1] });
      const noCfg = await pipe.generate({ ...base, seed: 5, scheduler: 'euler-ancestral', guidanceScale: 1 });
      expect(meanAbsDiff(unguided.images[0], noCfg.images[0])).toBeLessThan(0.5);
      expect(meanAbsDiff(unguided.images[0], a.images[0])).toBeGreaterThan(0.5);
      const turbo = await pipe.generate({ ...base, seed: 5, guidanceScale: 0, numInferenceSteps: 1 });
      expect(turbo.images[0].width).toBe(64);
    } finally {
      await pipe.dispose();
    }
  });
});

describe('tiny-sd-inpaint (9-channel UNet)', () => {
  it('feeds mask and masked-image latents to the UNet', async () => {
    const pipe = await loadPipeline(join(FIX, 'tiny-sd-inpaint'), { threads: 1 });
    try {
      expect(pipe.capabilities.isInpaintModel).toBe(true);
      const init: RgbaImage = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 4).fill(200) };
      const maskA = new Float32Array(64 * 64).fill(1);
      const maskB = new Float32Array(64 * 64);
      for (let i = 0; i < 64 * 32; i++) maskB[i] = 1;
      const a = await pipe.generate({ ...base, seed: 1, initImage: init, mask: maskA });
      const b = await pipe.generate({ ...base, seed: 1, initImage: init, mask: maskB });
      expect(meanAbsDiff(a.images[0], b.images[0])).toBeGreaterThan(0.1);
    } finally {
      await pipe.dispose();
    }
  });
});

describe('model folder errors', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'easel-folder-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names a missing file', async () => {
    const d = join(dir, 'no-unet');
    cpSync(join(FIX, 'tiny-sd'), d, { recursive: true });
    rmSync(join(d, 'unet', 'model.onnx'));
    await expect(loadPipeline(d)).rejects.toThrow(ModelFolderError);
    await expect(loadPipeline(d)).rejects.toThrow(/unet[/\\]model\.onnx/);
  });

  it('names a missing tensor input', async () => {
    const d = join(dir, 'swapped');
    cpSync(join(FIX, 'tiny-sd'), d, { recursive: true });
    // A text encoder where the UNet should be: it has no `sample` input.
    writeFileSync(join(d, 'unet', 'model.onnx'), readFileSync(join(d, 'text_encoder', 'model.onnx')));
    await expect(loadPipeline(d)).rejects.toThrow(BackendError);
    await expect(loadPipeline(d)).rejects.toThrow(/no input 'sample'/);
  });

  it('refuses a wrong quality preset in easel.json when the folder loads', async () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ steps: 4, guidance_scale: 3, scheduler: 'heun' }, /"medium": unknown scheduler "heun"/],
      [{ steps: 0, guidance_scale: 3 }, /"medium": steps/],
      [{ steps: 4, guidance_scale: 3, guidance_interval: [700, 100] }, /"medium": guidance_interval/],
    ];
    for (const [i, [preset, message]] of bad.entries()) {
      const d = join(dir, `preset-${i}`);
      cpSync(join(FIX, 'tiny-sd'), d, { recursive: true });
      writeFileSync(join(d, 'easel.json'), JSON.stringify({ quality_presets: { medium: preset } }));
      await expect(loadPipeline(d)).rejects.toThrow(ModelFolderError);
      await expect(loadPipeline(d)).rejects.toThrow(message);
    }
    const ok = join(dir, 'preset-ok');
    cpSync(join(FIX, 'tiny-sd'), ok, { recursive: true });
    writeFileSync(
      join(ok, 'easel.json'),
      JSON.stringify({ quality_presets: { medium: { steps: 2, guidance_scale: 3, scheduler: 'ddim' } } }),
    );
    await (await loadPipeline(ok)).dispose();
  });

  it('refuses a scheduler class Easel does not implement, naming it, and a config it cannot run', async () => {
    const write = (name: string, config: object) => {
      const d = join(dir, name);
      cpSync(join(FIX, 'tiny-sd'), d, { recursive: true });
      writeFileSync(join(d, 'scheduler', 'scheduler_config.json'), JSON.stringify(config));
      return d;
    };
    const unipc = write('unipc', { _class_name: 'UniPCMultistepScheduler' });
    await expect(loadPipeline(unipc)).rejects.toThrow(ModelFolderError);
    await expect(loadPipeline(unipc)).rejects.toThrow(/scheduler_config\.json: scheduler "UniPCMultistepScheduler" is not implemented/);
    expect(() => readModelInfo(unipc)).toThrow(/UniPCMultistepScheduler/);
    const sigmoid = write('sigmoid', { _class_name: 'DDIMScheduler', beta_schedule: 'sigmoid' });
    await expect(loadPipeline(sigmoid)).rejects.toThrow(/scheduler_config\.json: beta_schedule "sigmoid"/);
  });

  it('refuses native sizes the UNet cannot take', async () => {
    const d = join(dir, 'native-56');
    cpSync(join(FIX, 'tiny-sd'), d, { recursive: true });
    writeFileSync(
      join(d, 'easel.json'),
      JSON.stringify({
        native_sizes: [
          [64, 64],
          [56, 64],
        ],
      }),
    );
    expect(() => readModelInfo(d)).toThrow(/native_sizes must be .* multiples of 16/);
  });

  it('refuses an unavailable execution provider clearly', async () => {
    // onnxruntime-node ships the CUDA provider only when installed with ONNXRUNTIME_NODE_INSTALL_CUDA.
    const ortDir = join(import.meta.dirname, '..', '..', 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux', 'x64');
    if (existsSync(join(ortDir, 'libonnxruntime_providers_cuda.so'))) return;
    await expect(loadPipeline(join(FIX, 'tiny-sd'), { provider: 'cuda' })).rejects.toThrow(/cuda|CUDA/);
  });
});

// The minimal case of each gap the diffusers parity pack found (test/fixtures/parity/README.md, "Gaps"; docs/parity.md).
describe('diffusers parity gaps, minimal cases', () => {
  let sd: StableDiffusionPipeline;
  let sdxl: StableDiffusionPipeline;
  let inpaint: StableDiffusionPipeline;
  beforeAll(async () => {
    sd = await loadPipeline(join(FIX, 'tiny-sd'), { threads: 1 });
    sdxl = await loadPipeline(join(FIX, 'tiny-sdxl'), { threads: 1 });
    inpaint = await loadPipeline(join(FIX, 'tiny-sd-inpaint'), { threads: 1 });
  });
  afterAll(async () => {
    await Promise.all([sd?.dispose(), sdxl?.dispose(), inpaint?.dispose()]);
  });

  it('1. the mask is binarized at 0.5, then the top-left pixel of each 8x8 block is taken (x >= 37 on 64x64)', () => {
    const mask = new Float32Array(64 * 64);
    for (let y = 0; y < 64; y++) for (let x = 37; x < 64; x++) mask[y * 64 + x] = 1;
    const latent = maskToLatent(mask, 64, 64, 8);
    expect(latent.dims).toEqual([1, 1, 8, 8]);
    // column 4 covers pixels 32..39, three of them repainted: area-averaging gave 0.375, diffusers gives 0
    expect([...latent.data.subarray(0, 8)]).toEqual([0, 0, 0, 0, 0, 1, 1, 1]);
    const soft = new Float32Array(64 * 64);
    soft[0] = 0.5;
    soft[8] = 0.49;
    expect([...maskToLatent(soft, 64, 64, 8).data.subarray(0, 2)]).toEqual([1, 0]);
  });

  it('2. SD pipelines run steps_offset 0 as 1 (831..1), SDXL pipelines apply the file literally (830..0)', async () => {
    const config = {
      _class_name: 'DDIMScheduler',
      beta_start: 0.00085,
      beta_end: 0.012,
      beta_schedule: 'scaled_linear',
      timestep_spacing: 'leading',
      steps_offset: 0,
      clip_sample: false,
    };
    const timesteps = async (p: StableDiffusionPipeline) => {
      const seen: number[] = [];
      await p.withSchedulerConfig(config).generate({ ...base, numInferenceSteps: 6, seed: 1 }, { onStep: (s) => seen.push(s.timestep) });
      return seen;
    };
    expect(await timesteps(sd)).toEqual([831, 665, 499, 333, 167, 1]);
    expect(await timesteps(sdxl)).toEqual([830, 664, 498, 332, 166, 0]);
    expect(() => sd.withSchedulerConfig({ _class_name: 'UniPCMultistepScheduler' })).toThrow(ModelFolderError);
  });

  it('3. SDXL encodes an explicit empty negative prompt; only an absent one gives zero embeddings', async () => {
    const req = { ...base, seed: 3, guidanceScale: 5 };
    const absent = await sdxl.generate(req);
    const empty = await sdxl.generate({ ...req, negativePrompt: '' });
    expect(meanAbsDiff(absent.images[0], empty.images[0])).toBeGreaterThan(0.5);
    // SD 1.x encodes "" in both cases
    const sdAbsent = await sd.generate(req);
    const sdEmpty = await sd.generate({ ...req, negativePrompt: '' });
    expect(sameBytes(sdAbsent.images[0], sdEmpty.images[0])).toBe(true);
  });

  it('4. the size multiple comes from the VAE and the UNet, and the planner rounds to it', () => {
    expect(readModelInfo(join(FIX, 'tiny-sd')).capabilities.sizeMultiple).toBe(16);
    expect(readModelInfo(join(FIX, 'parity', 'pipelines', 'sdxl')).capabilities.sizeMultiple).toBe(16);
    // the default model: VAE x16 (5 blocks), UNet with 3 blocks (two downsamplings)
    expect(readModelInfo(join(import.meta.dirname, '..', '..', 'models', 'easel-shapes')).capabilities.sizeMultiple).toBe(64);
    const caps = (sizeMultiple: number): ModelCapabilities => ({
      ...readModelInfo(join(FIX, 'tiny-sd')).capabilities,
      nativeWidth: 1024,
      nativeHeight: 1024,
      nativeSizes: [[1024, 1024]],
      sizeMultiple,
    });
    // SDXL-like (32): 1024 x 1024 area at 3:2 is 1254 x 836, rounded to 1248 x 832; SD 1.x-like (64): 1280 x 832
    expect(planSize(1536, 1024, caps(32))).toMatchObject({ genWidth: 1248, genHeight: 832 });
    expect(planSize(1536, 1024, caps(64))).toMatchObject({ genWidth: 1280, genHeight: 832 });
  });

  it('5. with a mask and no strength the strength is 1 (diffusers inpainting), not 0.8 (image-to-image)', async () => {
    const init: RgbaImage = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 4).fill(180) };
    const mask = new Float32Array(64 * 64);
    for (let i = 0; i < 64 * 32; i++) mask[i] = 1;
    const req = { ...base, numInferenceSteps: 5, seed: 2, initImage: init, mask };
    const absent = await inpaint.generate(req);
    const one = await inpaint.generate({ ...req, strength: 1 });
    const eight = await inpaint.generate({ ...req, strength: 0.8 });
    expect(sameBytes(absent.images[0], one.images[0])).toBe(true);
    expect(meanAbsDiff(absent.images[0], eight.images[0])).toBeGreaterThan(0.5);
    // without a mask the image-to-image default stays 0.8
    const i2i = await sd.generate({ ...base, numInferenceSteps: 5, seed: 2, initImage: init });
    const i2i08 = await sd.generate({ ...base, numInferenceSteps: 5, seed: 2, initImage: init, strength: 0.8 });
    expect(sameBytes(i2i.images[0], i2i08.images[0])).toBe(true);
  });
});
