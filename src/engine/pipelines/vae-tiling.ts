// Tiled VAE decoding, as diffusers' AutoencoderKL.tiled_decode does it: overlapping latent tiles (overlap factor 0.25)
// are decoded one at a time and each tile's top and left edges are blended into its neighbours with linear ramps, so a
// 1024x1024 decode needs one tile's activations instead of a multi-GB buffer and shows no seams.
import { type Tensor, tensor } from '../tensor.js';

/** diffusers' tile_overlap_factor. */
const OVERLAP_FACTOR = 0.25;

export interface TileGeometry {
  /** Tile side in latent cells (a multiple of 4, so the overlap is a whole number of cells). */
  readonly latent: number;
  /** Stride between tile origins in latent cells (diffusers' overlap_size). */
  readonly stride: number;
  /** Tile side in pixels, the blended band and the part of each tile kept (diffusers' blend_extent, row_limit). */
  readonly sample: number;
  readonly blend: number;
  readonly keep: number;
}

/** The tiling for a tile size in pixels, rounded down to a multiple of 4 latent cells (at least 4). */
export function tileGeometry(tileSize: number, vaeScaleFactor: number): TileGeometry {
  const latent = Math.max(4, Math.floor(tileSize / vaeScaleFactor / 4) * 4);
  const stride = Math.floor(latent * (1 - OVERLAP_FACTOR));
  const sample = latent * vaeScaleFactor;
  const blend = Math.floor(sample * OVERLAP_FACTOR);
  return { latent, stride, sample, blend, keep: sample - blend };
}

/** Whether a [1, C, h, w] latent is larger than one tile (diffusers tiles when either side exceeds it). */
export function needsTiling(latent: Tensor, g: TileGeometry): boolean {
  return latent.dims[2] > g.latent || latent.dims[3] > g.latent;
}

/** Rows [y0, y0 + h) and columns [x0, x0 + w) of a [1, C, H, W] tensor. */
export function crop(t: Tensor, y0: number, x0: number, h: number, w: number): Tensor {
  const [, c, H, W] = t.dims;
  const hh = Math.min(h, H - y0);
  const ww = Math.min(w, W - x0);
  const out = new Float32Array(c * hh * ww);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < hh; y++) {
      const src = (ch * H + y0 + y) * W + x0;
      out.set(t.data.subarray(src, src + ww), (ch * hh + y) * ww);
    }
  }
  return tensor(out, [1, c, hh, ww]);
}

/** diffusers blend_v: the first `extent` rows of b fade in from the last `extent` rows of a (in place on b). */
export function blendV(a: Tensor, b: Tensor, extent: number): void {
  const [, c, ha, w] = a.dims;
  const hb = b.dims[2];
  const e = Math.min(ha, hb, extent);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < e; y++) {
      const t = y / e;
      const ra = (ch * ha + ha - e + y) * w;
      const rb = (ch * hb + y) * w;
      for (let x = 0; x < w; x++) b.data[rb + x] = a.data[ra + x] * (1 - t) + b.data[rb + x] * t;
    }
  }
}

/** diffusers blend_h: the first `extent` columns of b fade in from the last `extent` columns of a (in place on b). */
export function blendH(a: Tensor, b: Tensor, extent: number): void {
  const [, c, h, wa] = a.dims;
  const wb = b.dims[3];
  const e = Math.min(wa, wb, extent);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < h; y++) {
      const ra = (ch * h + y) * wa + wa - e;
      const rb = (ch * h + y) * wb;
      for (let x = 0; x < e; x++) {
        const t = x / e;
        b.data[rb + x] = a.data[ra + x] * (1 - t) + b.data[rb + x] * t;
      }
    }
  }
}

/**
 * Decodes a [1, C, h, w] latent tile by tile with `decode` (one VAE call per tile, in diffusers' order) and stitches
 * the blended tiles into [1, outC, h * f, w * f].
 */
export async function tiledDecode(
  latent: Tensor,
  g: TileGeometry,
  decode: (tile: Tensor) => Promise<Tensor>,
  checkAborted: () => void = () => undefined,
): Promise<Tensor> {
  const [, , h, w] = latent.dims;
  const rows: Tensor[][] = [];
  for (let i = 0; i < h; i += g.stride) {
    const row: Tensor[] = [];
    for (let j = 0; j < w; j += g.stride) {
      checkAborted();
      row.push(await decode(crop(latent, i, j, g.latent, g.latent)));
    }
    rows.push(row);
  }
  const f = rows[0][0].dims[2] / Math.min(g.latent, h);
  const outC = rows[0][0].dims[1];
  const H = h * f;
  const W = w * f;
  const out = new Float32Array(outC * H * W);
  rows.forEach((row, i) => {
    row.forEach((tile, j) => {
      if (i > 0) blendV(rows[i - 1][j], tile, g.blend);
      if (j > 0) blendH(row[j - 1], tile, g.blend);
      place(out, [outC, H, W], tile, i * g.stride * f, j * g.stride * f, g.keep);
    });
  });
  return tensor(out, [1, outC, H, W]);
}

/** Copies the top-left keep x keep of a tile into the output at (y0, x0), clipped to the output. */
function place(out: Float32Array, [c, H, W]: readonly number[], tile: Tensor, y0: number, x0: number, keep: number): void {
  const [, , th, tw] = tile.dims;
  const hh = Math.min(th, keep, H - y0);
  const ww = Math.min(tw, keep, W - x0);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < hh; y++) {
      const src = (ch * th + y) * tw;
      out.set(tile.data.subarray(src, src + ww), (ch * H + y0 + y) * W + x0);
    }
  }
}
