// Turning "quality" and "size" into what a model can do, from its ModelInfo alone (no sessions): step/guidance
// presets, the size to generate at before an exact resize, and the default image-to-image strengths.
// Shared by the server's planner and the CLI, so both honour a model's easel.json the same way.
import type { QualityPreset, StylePreset } from './models/folder.js';
import type { ModelCapabilities } from './types.js';

export { stepsForStrength } from './strength.js';

/** Presets for models whose folder has no easel.json (documented in README). */
export const DEFAULT_PRESETS: Readonly<Record<string, QualityPreset>> = {
  low: { steps: 12, guidance_scale: 7.5 },
  medium: { steps: 25, guidance_scale: 7.5 },
  high: { steps: 40, guidance_scale: 7.5 },
  standard: { steps: 25, guidance_scale: 7.5 },
  hd: { steps: 40, guidance_scale: 7.5 },
};

/** OpenAI qualities that borrow another preset: `auto` and `standard` are medium, `hd` is high. */
const QUALITY_FALLBACK: Record<string, string> = { auto: 'medium', standard: 'medium', hd: 'high' };

/**
 * What `style` does on a model whose easel.json has no style_presets: vivid (dall-e-3's default) is the model's tuned
 * look, natural halves the guidance above 1, which gives plainer, less saturated images on classifier-free-guided models.
 */
export const DEFAULT_STYLES: Readonly<Record<'vivid' | 'natural', StylePreset>> = {
  vivid: {},
  natural: { guidance_factor: 0.5 },
};

export function stylePreset(
  style: 'vivid' | 'natural',
  presets: Partial<Record<'vivid' | 'natural', StylePreset>> | undefined,
): StylePreset {
  return presets?.[style] ?? DEFAULT_STYLES[style];
}

/** Guidance after a style: 1 + (g - 1) * factor (a guidance of 1 or less means no guidance, and stays so). */
export function styledGuidance(guidance: number, style: StylePreset): number {
  const f = style.guidance_factor ?? 1;
  return guidance <= 1 ? guidance : 1 + (guidance - 1) * f;
}

/** Image-to-image strength for edits without a mask: keeps the composition, lets the prompt restyle it. */
export const EDIT_STRENGTH = 0.75;
/** Edits without a mask at input_fidelity "high": more of the input's layout and colours survive. */
export const HIGH_FIDELITY_EDIT_STRENGTH = 0.5;
/** Strength for masked edits: the masked area is generated afresh, the rest is kept by the mask. */
export const INPAINT_STRENGTH = 1;
/** How far variations may move from the input: composition and colours stay, details change. */
export const VARIATION_STRENGTH = 0.6;

/** The model's preset for a quality (its easel.json first, then DEFAULT_PRESETS), with OpenAI's fallbacks. */
export function presetFor(quality: string, presets: Readonly<Record<string, QualityPreset>> | undefined): QualityPreset {
  const table: Record<string, QualityPreset> = { ...DEFAULT_PRESETS, ...(presets ?? {}) };
  return table[quality] ?? table[QUALITY_FALLBACK[quality] ?? 'medium'] ?? DEFAULT_PRESETS.medium;
}

export interface SizePlan {
  /** Size the engine generates at. */
  genWidth: number;
  genHeight: number;
  /** Size returned to the client (resized when it differs). */
  outWidth: number;
  outHeight: number;
}

/**
 * A native size with the closest aspect ratio when the model lists several; otherwise the native area at the
 * requested aspect, rounded to the model's own size multiple (VAE scale x UNet downsampling: 64 for SD 1.x/2.x).
 */
export function planSize(width: number, height: number, caps: ModelCapabilities): SizePlan {
  const aspect = Math.log(width / height);
  const [first] = caps.nativeSizes;
  if (caps.nativeSizes.length > 1 || (caps.nativeSizes.length === 1 && first[0] === width && first[1] === height)) {
    let best = first;
    for (const s of caps.nativeSizes) {
      if (Math.abs(Math.log(s[0] / s[1]) - aspect) < Math.abs(Math.log(best[0] / best[1]) - aspect)) best = s;
    }
    return { genWidth: best[0], genHeight: best[1], outWidth: width, outHeight: height };
  }
  const area = caps.nativeWidth * caps.nativeHeight;
  const step = caps.sizeMultiple;
  const round = (v: number) => Math.max(step, Math.round(v / step) * step);
  const gw = round(Math.sqrt(area * (width / height)));
  const gh = round(Math.sqrt(area / (width / height)));
  // Never generate above the requested size when that is itself a valid size (e.g. 256x256 on a 512 model).
  if (width <= gw && height <= gh && width % step === 0 && height % step === 0) {
    return { genWidth: width, genHeight: height, outWidth: width, outHeight: height };
  }
  return { genWidth: gw, genHeight: gh, outWidth: width, outHeight: height };
}
