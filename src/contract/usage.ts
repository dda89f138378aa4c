// Token accounting for GPT image model responses (`usage`), computed the way OpenAI bills:
// prompt text counted with o200k_base, input images by 512-px tiles, output images by quality x size.
//
// Sources:
// - Output image tokens: OpenAI's published gpt-image-1 table (low 272/408/400, medium 1056/1584/1568,
//   high 4160/6240/6208 for 1024x1024 / 1024x1536 / 1536x1024). Every entry equals
//   rows * (cols + 1) with cols = width / p, rows = height / p and p = 64 / 32 / 16 px for
//   low / medium / high (e.g. high 1536x1024: 64 * (96 + 1) = 6208). Easel uses that closed form for
//   any other size (DALL·E-era sizes, gpt-image-2 flexible sizes: not billed like OpenAI's gpt-image-2,
//   whose formula is unpublished), rounding partial patches up.
// - Input image tokens: OpenAI's vision cost rules for GPT Image 1: fit in 2048x2048, scale so the
//   shortest side is 512 px (downscale only), count 512-px tiles, 129 tokens per tile + 65 base.
//   Scaled sides round down (OpenAI bills 1024x1025 as one tile: 194 tokens, as reported on the
//   OpenAI developer forum). `input_fidelity: "high"` adds 4160 tokens for a square image and 6240
//   otherwise, per input image (OpenAI's published fidelity surcharge).
// - Partial images: 100 output tokens each (OpenAI's streaming pricing).

import { parseSize } from './families.js';
import { countO200k } from './o200k.js';

export { countO200k, encodeO200k, warmTokenCounter } from './o200k.js';

/** Text tokens of a prompt, as OpenAI counts them for GPT image models (o200k_base; see o200k.ts). */
export function textTokens(prompt: string): number {
  return prompt.length === 0 ? 0 : countO200k(prompt);
}

const PATCH_PX: Record<'low' | 'medium' | 'high', number> = { low: 64, medium: 32, high: 16 };

/**
 * Output tokens for ONE image. `quality` auto means medium (Easel's auto preset, see families.ts);
 * DALL·E's standard/hd map to medium/high. `size` auto means 1024x1024.
 */
export function outputImageTokens(quality: string, size: string): number {
  const q: 'low' | 'medium' | 'high' =
    quality === 'low' || quality === 'medium' || quality === 'high' ? quality : quality === 'hd' ? 'high' : 'medium';
  const dims = parseSize(size === 'auto' ? '1024x1024' : size);
  if (!dims) throw new RangeError(`outputImageTokens: invalid size '${size}'`);
  const p = PATCH_PX[q];
  const cols = Math.ceil(dims.width / p);
  const rows = Math.ceil(dims.height / p);
  return rows * (cols + 1);
}

export const INPUT_IMAGE_BASE_TOKENS = 65;
export const INPUT_IMAGE_TILE_TOKENS = 129;
export const HIGH_FIDELITY_SQUARE_TOKENS = 4160;
export const HIGH_FIDELITY_OTHER_TOKENS = 6240;
export const PARTIAL_IMAGE_TOKENS = 100;

/** The size OpenAI's vision pipeline scales an input image to before tiling. */
export function scaledInputSize(width: number, height: number): { width: number; height: number } {
  if (!(width > 0 && height > 0)) throw new RangeError('inputImageTokens: width and height must be positive');
  let w = width;
  let h = height;
  if (w > 2048 || h > 2048) {
    if (w >= h) {
      h = Math.max(1, Math.floor((h * 2048) / w));
      w = 2048;
    } else {
      w = Math.max(1, Math.floor((w * 2048) / h));
      h = 2048;
    }
  }
  if (Math.min(w, h) > 512) {
    if (w <= h) {
      h = Math.floor((h * 512) / w);
      w = 512;
    } else {
      w = Math.floor((w * 512) / h);
      h = 512;
    }
  }
  return { width: w, height: h };
}

/** Input tokens for ONE input image of the given pixel size. */
export function inputImageTokens(width: number, height: number, inputFidelity?: 'low' | 'high' | null): number {
  const s = scaledInputSize(width, height);
  const tiles = Math.ceil(s.width / 512) * Math.ceil(s.height / 512);
  let tokens = INPUT_IMAGE_BASE_TOKENS + INPUT_IMAGE_TILE_TOKENS * tiles;
  if (inputFidelity === 'high') tokens += s.width === s.height ? HIGH_FIDELITY_SQUARE_TOKENS : HIGH_FIDELITY_OTHER_TOKENS;
  return tokens;
}

export function partialImageTokens(count: number): number {
  return PARTIAL_IMAGE_TOKENS * Math.max(0, Math.floor(count));
}

/** ImagesResponse.usage (ImageGenUsage); stream events use the same minus `output_tokens_details`. */
export interface ImageUsage {
  input_tokens: number;
  input_tokens_details: { text_tokens: number; image_tokens: number };
  output_tokens: number;
  total_tokens: number;
  output_tokens_details?: { image_tokens: number; text_tokens: number };
}

export interface UsageInput {
  /** The prompt (counted with o200k_base), or a precomputed count in `textTokens`. */
  prompt?: string;
  textTokens?: number;
  /** Pixel sizes of the input images (edits). */
  inputImages?: ReadonlyArray<{ width: number; height: number }>;
  inputFidelity?: 'low' | 'high' | null;
  /** Resolved output quality and size (auto is accepted, see outputImageTokens). */
  quality: string;
  size: string;
  n: number;
  /** Total partial images streamed. */
  partialImages?: number;
  /** Include `output_tokens_details` (ImageGenUsage has it; the stream events' ImagesUsage does not). */
  outputDetails?: boolean;
}

export function buildUsage(input: UsageInput): ImageUsage {
  const text = input.textTokens ?? textTokens(input.prompt ?? '');
  const image = (input.inputImages ?? []).reduce((sum, d) => sum + inputImageTokens(d.width, d.height, input.inputFidelity), 0);
  const output = outputImageTokens(input.quality, input.size) * input.n + partialImageTokens(input.partialImages ?? 0);
  const usage: ImageUsage = {
    input_tokens: text + image,
    input_tokens_details: { text_tokens: text, image_tokens: image },
    output_tokens: output,
    total_tokens: text + image + output,
  };
  if (input.outputDetails ?? true) usage.output_tokens_details = { image_tokens: output, text_tokens: 0 };
  return usage;
}
