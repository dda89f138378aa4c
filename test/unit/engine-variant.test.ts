// A weights variant reaches the engine: with `variant: "fp16"` each part loads its model.fp16.onnx, without it the
// plain model.onnx, so a snapshot holding both (as hub repos often do) serves what was asked for.
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPipeline } from '../../src/engine/index.js';

const TINY = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');
const dir = mkdtempSync(join(tmpdir(), 'easel-variant-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('weights variants in the engine', () => {
  it('loads the variant files when asked, and the plain ones otherwise', async () => {
    cpSync(TINY, dir, { recursive: true });
    // The real UNet as the fp16-named file; the plain file is not a model at all.
    cpSync(join(TINY, 'unet', 'model.onnx'), join(dir, 'unet', 'model.fp16.onnx'));
    writeFileSync(join(dir, 'unet', 'model.onnx'), 'not an onnx model');

    const pipeline = await loadPipeline(dir, { variant: 'fp16', threads: 1 });
    try {
      const [w, h] = pipeline.capabilities.nativeSizes[0];
      const r = await pipeline.generate({ prompt: 'a red circle', width: w, height: h, numInferenceSteps: 1, guidanceScale: 1, seed: 1 });
      expect(r.images).toHaveLength(1);
    } finally {
      await pipeline.dispose();
    }
    await expect(loadPipeline(dir, { threads: 1 })).rejects.toThrow();
  });
});
