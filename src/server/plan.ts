// Maps an OpenAI request's quality and size onto what a local model can do: step/guidance presets and the
// size to generate at (a native size of the same aspect, when the model has one) before resizing exactly.
import type { QualityPreset } from '../engine/index.js';
import type { ModelCapabilities } from '../engine/types.js';

/** Presets for models whose folder has no easel.json (documented in README). */
export const DEFAULT_PRESETS: Record<string, QualityPreset> = {
  low: { steps: 12, guidance_scale: 7.5 },
  medium: { steps: 25, guidance_scale: 7.5 },
  high: { steps: 40, guidance_scale: 7.5 },
  standard: { steps: 25, guidance_scale: 7.5 },
  hd: { steps: 40, guidance_scale: 7.5 },
};

/** OpenAI qualities that borrow another preset: `auto` is medium. */
const QUALITY_FALLBACK: Record<string, string> = { auto: 'medium', standard: 'medium', hd: 'high' };

export function presetFor(quality: string, presets: Record<string, QualityPreset> | undefined): QualityPreset {
  const table = { ...DEFAULT_PRESETS, ...(presets ?? {}) };
  return table[quality] ?? table[QUALITY_FALLBACK[quality] ?? 'medium'] ?? DEFAULT_PRESETS.medium;
}

export interface SizePlan {
  /** Size the engine generates at. */
  genWidth: number;
  genHeight: number;
  /** Size returned to the client (resize when it differs). */
  outWidth: number;
  outHeight: number;
}

export function parseSize(size: string): { width: number; height: number } {
  const m = /^(\d+)x(\d+)$/.exec(size);
  if (!m) throw new Error(`not a size: ${size}`);
  return { width: Number(m[1]), height: Number(m[2]) };
}

/**
 * A native size with the closest aspect ratio when the model lists several; otherwise the native area at the
 * requested aspect, rounded to multiples of 8 latent pixels (so UNets with three downsamplings accept it).
 */
export function planSize(width: number, height: number, caps: ModelCapabilities): SizePlan {
  const aspect = Math.log(width / height);
  if (caps.nativeSizes.length > 1 || (caps.nativeSizes.length === 1 && caps.nativeSizes[0][0] === width && caps.nativeSizes[0][1] === height)) {
    let best = caps.nativeSizes[0];
    for (const s of caps.nativeSizes) {
      if (Math.abs(Math.log(s[0] / s[1]) - aspect) < Math.abs(Math.log(best[0] / best[1]) - aspect)) best = s;
    }
    return { genWidth: best[0], genHeight: best[1], outWidth: width, outHeight: height };
  }
  const area = caps.nativeWidth * caps.nativeHeight;
  const step = caps.sizeMultiple * 8;
  const round = (v: number) => Math.max(step, Math.round(v / step) * step);
  const gw = round(Math.sqrt(area * (width / height)));
  const gh = round(Math.sqrt(area / (width / height)));
  // Never generate above the requested size when that is itself a valid size (e.g. 256x256 on a 512 model).
  if (width <= gw && height <= gh && width % step === 0 && height % step === 0) {
    return { genWidth: width, genHeight: height, outWidth: width, outHeight: height };
  }
  return { genWidth: gw, genHeight: gh, outWidth: width, outHeight: height };
}
