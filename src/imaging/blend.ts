// A weighted average of same-sized RGBA images, in straight (not premultiplied) 8-bit space: how an edit's extra
// input images reach a model that has no way to take reference images (see README "Edits and variations").
import type { RgbaImage } from '../engine/types.js';

export interface BlendLayer {
  image: RgbaImage;
  /** Non-negative; weights are normalised to sum to 1. */
  weight: number;
}

export function blendImages(layers: readonly BlendLayer[]): RgbaImage {
  if (layers.length === 0) throw new Error('blendImages needs at least one image');
  const { width, height } = layers[0].image;
  for (const l of layers) {
    if (l.image.width !== width || l.image.height !== height) throw new Error('blendImages: images differ in size');
  }
  const total = layers.reduce((s, l) => s + l.weight, 0);
  if (!(total > 0)) throw new Error('blendImages: weights must sum to more than 0');
  const acc = new Float32Array(width * height * 4);
  for (const { image, weight } of layers) {
    const w = weight / total;
    for (let i = 0; i < acc.length; i++) acc[i] += image.data[i] * w;
  }
  const data = new Uint8Array(acc.length);
  for (let i = 0; i < acc.length; i++) data[i] = Math.round(acc[i]);
  return { width, height, data };
}

/** The init image of an edit with several inputs: the first keeps half the weight, the others share the other half. */
export function blendEditInputs(first: RgbaImage, others: readonly RgbaImage[]): RgbaImage {
  if (others.length === 0) return first;
  return blendImages([{ image: first, weight: 0.5 }, ...others.map((image) => ({ image, weight: 0.5 / others.length }))]);
}
