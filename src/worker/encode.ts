// Worker-side encoding of engine pixels into the bytes a client receives: exact output size, format, alpha.
// It runs next to the engine so that only encoded images cross the queue.
import type { RgbaImage } from '../engine/types.js';
import { type EncodeSettings, encodeImage } from '../imaging/encode.js';
import type { EncodedImage, OutputPlan } from '../jobs/types.js';

export function hasTransparency(img: RgbaImage): boolean {
  for (let i = 3; i < img.data.length; i += 4) if (img.data[i] < 255) return true;
  return false;
}

/** The plan for a set of final images: 'auto' becomes 'keep' when every image has transparent pixels, else 'flatten'. */
export function resolveAlpha(images: readonly RgbaImage[], out: OutputPlan): OutputPlan {
  if (out.alpha !== 'auto') return out;
  return { ...out, alpha: images.every(hasTransparency) ? 'keep' : 'flatten' };
}

/** Encodes one image; under 'auto' (a partial image on its own) alpha is kept. */
export async function encodeOutput(img: RgbaImage, out: OutputPlan, settings?: EncodeSettings): Promise<EncodedImage> {
  const keep = out.alpha !== 'flatten';
  const bytes = await encodeImage(
    img,
    { format: out.format, compression: out.compression, keepAlpha: keep, width: out.width, height: out.height },
    settings,
  );
  return { bytes, format: out.format, transparent: keep && hasTransparency(img) };
}
