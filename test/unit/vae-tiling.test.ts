// Tiled VAE decoding (diffusers' tiled_decode): the tile geometry, exact stitching with a pointwise decoder, and on the
// tiny fixture's real VAE that tiled and untiled decodes agree and the tile boundaries show no step (a naive crop-and-
// stitch without the blend does show one, so the measure can fail).
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnnxModel } from '../../src/engine/backends/onnx.js';
import { loadPipeline, type RgbaImage } from '../../src/engine/index.js';
import { tiledDecode, tileGeometry } from '../../src/engine/pipelines/vae-tiling.js';
import { type Tensor, tensor } from '../../src/engine/tensor.js';

const TINY = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');

/** A latent with smooth structure and some fine detail, [1, 4, h, w]. */
function latentOf(h: number, w: number): Tensor {
  const data = new Float32Array(4 * h * w);
  for (let c = 0; c < 4; c++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) data[(c * h + y) * w + x] = Math.sin(x * 0.4 + c) + Math.cos(y * 0.3 - c) + 0.3 * Math.sin(x * y * 0.05);
    }
  }
  return tensor(data, [1, 4, h, w]);
}

/** Mean over channels and rows of |I[x] - I[x-1]| at column x (or between rows when `rows`). */
function stepAt(t: Tensor, at: number, rows = false): number {
  const [, c, H, W] = t.dims;
  let s = 0;
  const n = rows ? W : H;
  for (let ch = 0; ch < c; ch++) {
    for (let k = 0; k < n; k++) {
      const i = rows ? (ch * H + at) * W + k : (ch * H + k) * W + at;
      s += Math.abs(t.data[i] - t.data[i - (rows ? W : 1)]);
    }
  }
  return s / (c * n);
}

function meanAbs(a: Float32Array | Uint8Array, b: Float32Array | Uint8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

describe('tile geometry', () => {
  it("matches diffusers' defaults for SD 1.5 (512 px tiles: 64-cell latent tiles, stride 48, blend 128, keep 384)", () => {
    expect(tileGeometry(512, 8)).toEqual({ latent: 64, stride: 48, sample: 512, blend: 128, keep: 384 });
  });

  it('rounds to a multiple of 4 latent cells so the blend and the stride line up', () => {
    const g = tileGeometry(100, 8);
    expect(g.latent).toBe(12);
    expect(g.stride * 8).toBe(g.keep);
    expect(tileGeometry(8, 8).latent).toBe(4);
  });
});

describe('tiledDecode', () => {
  // Nearest-neighbour upsampling by 8 to 3 channels: every output pixel depends on one latent cell only, so overlapping
  // tiles agree exactly and the stitched result must equal the untiled one bit for bit, whatever the size.
  const pointwise = async (t: Tensor): Promise<Tensor> => {
    const [, c, h, w] = t.dims;
    const out = new Float32Array(3 * h * 8 * w * 8);
    for (let o = 0; o < 3; o++) {
      for (let y = 0; y < h * 8; y++) {
        for (let x = 0; x < w * 8; x++) out[(o * h * 8 + y) * w * 8 + x] = t.data[((o % c) * h + (y >> 3)) * w + (x >> 3)] * (o + 1);
      }
    }
    return tensor(out, [1, 3, h * 8, w * 8]);
  };

  it('stitches tiles back to the untiled result, edges and odd sizes included', async () => {
    for (const [h, w] of [
      [16, 16],
      [20, 13],
      [9, 30],
    ]) {
      const z = latentOf(h, w);
      const whole = await pointwise(z);
      let calls = 0;
      const tiled = await tiledDecode(z, tileGeometry(64, 8), (t) => {
        calls++;
        return pointwise(t);
      });
      expect(tiled.dims).toEqual(whole.dims);
      expect(Array.from(tiled.data)).toEqual(Array.from(whole.data));
      expect(calls).toBe(Math.ceil(h / 6) * Math.ceil(w / 6));
    }
  });
});

describe('tiled decode on the tiny fixture', () => {
  let vae: OnnxModel;
  beforeAll(async () => {
    vae = await OnnxModel.load(join(TINY, 'vae_decoder', 'model.onnx'), { threads: 1 });
  });
  afterAll(async () => {
    await vae.release();
  });
  const decode = async (t: Tensor) => (await vae.run({ latent_sample: t })).sample;

  it('shows no step at the tile boundaries, where a crop-and-stitch without the blend does', async () => {
    // 256 px from 128 px tiles: 3 x 3 tiles, boundaries at 96 and 192.
    const z = latentOf(32, 32);
    const g = tileGeometry(128, 8);
    const whole = await decode(z);
    const tiled = await tiledDecode(z, g, decode);
    const naive = await tiledDecode(z, { ...g, blend: 0 }, decode);
    expect(tiled.dims).toEqual(whole.dims);
    for (const at of [g.keep, 2 * g.keep]) {
      for (const rows of [false, true]) {
        const ref = stepAt(whole, at, rows);
        // In [-1, 1] units: the blended boundary steps like the untiled image (within 0.02, 2.5/255); unblended it
        // jumps by 0.06 to 0.33 on this fixture.
        expect(Math.abs(stepAt(tiled, at, rows) - ref)).toBeLessThan(0.02);
        expect(stepAt(naive, at, rows) - ref).toBeGreaterThan(0.05);
      }
    }
    // Tiles differ from the whole mostly through the VAE's group norms, whose statistics are per tile (as in diffusers);
    // the tiny fixture's 16-channel VAE sees far less of the image per tile than SD's.
    expect(meanAbs(tiled.data, whole.data)).toBeLessThan(0.12);
  });

  it('the pipeline decodes above vaeTileSize in tiles, close to the untiled image', async () => {
    const req = { prompt: 'a red circle', width: 256, height: 192, numInferenceSteps: 2, guidanceScale: 7.5, seed: 7 };
    const plain = await loadPipeline(TINY, { threads: 1 });
    const tiledPipe = await loadPipeline(TINY, { threads: 1, vaeTileSize: 128 });
    try {
      const [a] = (await plain.generate(req)).images as RgbaImage[];
      const [b] = (await tiledPipe.generate(req)).images as RgbaImage[];
      const [c] = (await tiledPipe.generate({ ...req, width: 128, height: 128 })).images as RgbaImage[];
      const [d] = (await plain.generate({ ...req, width: 128, height: 128 })).images as RgbaImage[];
      expect([b.width, b.height]).toEqual([256, 192]);
      expect(meanAbs(a.data, b.data)).toBeLessThan(16);
      expect(meanAbs(a.data, b.data)).toBeGreaterThan(0);
      // At or below the tile size nothing is tiled: bit-identical.
      expect(Buffer.from(c.data).equals(Buffer.from(d.data))).toBe(true);
    } finally {
      await Promise.all([plain.dispose(), tiledPipe.dispose()]);
    }
  });
});
