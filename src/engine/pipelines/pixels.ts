// Conversions between 8-bit RGBA images and the VAE's NCHW float tensors in [-1, 1], and the inpainting mask's latent.
// The VAE may work on RGB (3 channels, alpha taken as opaque) or RGBA (4 channels, real transparency).
import { type Tensor, tensor } from '../tensor.js';
import type { RgbaImage } from '../types.js';

/** RGBA bytes → [1, channels, H, W] in [-1, 1]. With 3 channels alpha is dropped (as PIL's convert('RGB') does). */
export function imageToTensor(img: RgbaImage, channels: number): Tensor {
  const { width, height, data } = img;
  const plane = width * height;
  const out = new Float32Array(channels * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < channels; c++) out[c * plane + i] = (data[i * 4 + c] / 255) * 2 - 1;
  }
  return tensor(out, [1, channels, height, width]);
}

/** Image `index` of a [B, 3|4, H, W] tensor in [-1, 1] → RGBA bytes (alpha 255 when there are 3 channels). */
export function tensorToImage(t: Tensor, index = 0): RgbaImage {
  const [, channels, height, width] = t.dims;
  const plane = width * height;
  const base = index * channels * plane;
  // Uint8ClampedArray clamps to 0..255 and rounds on store, so the hot loop has no branches.
  const out = new Uint8ClampedArray(plane * 4);
  if (channels < 4) for (let i = 3; i < out.length; i += 4) out[i] = 255;
  const d = t.data;
  for (let c = 0; c < Math.min(channels, 4); c++) {
    const src = base + c * plane;
    for (let i = 0, o = c; i < plane; i++, o += 4) out[o] = (d[src + i] + 1) * 127.5;
  }
  return { width, height, data: new Uint8Array(out.buffer) };
}

/**
 * The inpainting mask at latent resolution, [1, 1, H/f, W/f], as diffusers 0.30 makes it for both 4- and 9-channel
 * models: StableDiffusionInpaintPipeline's mask_processor binarizes (>= 0.5 is 1, the rest 0), then prepare_mask_latents
 * resizes with F.interpolate's default nearest mode, which keeps the top-left pixel of each f x f block (as LDM did).
 */
export function maskToLatent(mask: Float32Array, width: number, height: number, factor: number): Tensor {
  const w = Math.floor(width / factor);
  const h = Math.floor(height / factor);
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) out[y * w + x] = mask[y * factor * width + x * factor] >= 0.5 ? 1 : 0;
  }
  return tensor(out, [1, 1, h, w]);
}

/** The init image with the area to repaint blanked (diffusers: image * (binarized mask < 0.5)), as [1, C, H, W]. */
export function maskedImageTensor(img: RgbaImage, mask: Float32Array, channels: number): Tensor {
  const t = imageToTensor(img, channels);
  const plane = img.width * img.height;
  for (let i = 0; i < plane; i++) {
    if (mask[i] >= 0.5) for (let c = 0; c < channels; c++) t.data[c * plane + i] = 0;
  }
  return t;
}
