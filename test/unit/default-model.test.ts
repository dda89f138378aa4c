// The shipped default model (models/easel-shapes) loads through the same engine path as any diffusers ONNX folder
// and produces RGBA images at its native sizes, deterministically. Adherence is measured by `npm run eval:default-model`.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultModelPath } from '../../src/config/config.js';
import { loadPipeline, type StableDiffusionPipeline } from '../../src/engine/index.js';

const ROOT = join(import.meta.dirname, '..', '..');

describe('shipped default model', () => {
  let pipe: StableDiffusionPipeline;
  beforeAll(async () => {
    pipe = await loadPipeline(join(ROOT, 'models', 'easel-shapes'), { threads: 2 });
  });
  afterAll(async () => {
    await pipe?.dispose();
  });

  it('is the embedded default and declares alpha, presets and native sizes', () => {
    expect(defaultModelPath(ROOT)).toBe(join(ROOT, 'models', 'easel-shapes'));
    expect(pipe.capabilities.supportsAlpha).toBe(true);
    expect(pipe.capabilities.nativeSizes.length).toBeGreaterThan(1);
    for (const q of ['low', 'medium', 'high', 'standard', 'hd']) expect(pipe.folder.extras.quality_presets?.[q]?.steps).toBeGreaterThan(0);
  });

  it('generates at every native size, bit-identical for a seed', async () => {
    for (const [w, h] of pipe.capabilities.nativeSizes) {
      const r = await pipe.generate({
        prompt: 'a red circle on a blue background',
        width: w,
        height: h,
        numInferenceSteps: 4,
        guidanceScale: 4,
        seed: 1,
      });
      expect([r.images[0].width, r.images[0].height]).toEqual([w, h]);
    }
    const req = {
      prompt: 'two yellow stars on a transparent background',
      width: 256,
      height: 256,
      numInferenceSteps: 4,
      guidanceScale: 4,
      seed: 9,
    };
    const a = await pipe.generate(req);
    const b = await pipe.generate(req);
    expect(Buffer.compare(Buffer.from(a.images[0].data), Buffer.from(b.images[0].data))).toBe(0);
  });
});
