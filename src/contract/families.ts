// OpenAI image model families and the request rules each one speaks (sizes, n, prompt length, allowed
// values, defaults). A served model declares a family; parsers and request-fields.ts read these tables.
//
// Sources: test/fixtures/openai/openai-openapi-images.yaml (CreateImageRequest, CreateImageEditRequest,
// EditImageBodyJsonParam, CreateImageVariationRequest, InputFidelity, PartialImages) and the seeds.
// The newest names (gpt-image-2, its snapshot gpt-image-2-2026-04-21, chatgpt-image-latest) are GPT image models:
// the spec lists them in the model enums and gives them the GPT rules (prompt 32000, n 1-10, low/medium/high/auto,
// png/jpeg/webp, moderation, stream with 0-3 partial images, 16 input images under 50 MB). What differs:
// - Sizes: only the gpt-image-2 names take WIDTHxHEIGHT. The spec's size description gives "divisible by 16",
//   "aspect ratio between 1:3 and 3:1" and "the maximum supported resolution is 3840x2160", and defers the rest
//   to "the model's current pixel and edge limits"; those are OpenAI's image generation guide's: longest edge at
//   most 3840, 655,360 to 8,294,400 pixels in all (8,294,400 = 3840x2160).
// - input_fidelity: the spec's InputFidelity text says "gpt-image-1 and gpt-image-1.5 and later models,
//   unsupported for gpt-image-1-mini"; OpenAI's later text for the same enum adds "For gpt-image-2, omit this
//   parameter", and the live API refuses it for gpt-image-2 (invalid_input_fidelity_model, see errors.ts). So
//   the gpt-image-2 names and gpt-image-1-mini refuse it; chatgpt-image-latest, like gpt-image-1.5, takes it.

import { IMAGE_MIME_TYPES, type ImageFormat } from '../imaging/formats.js';

export type Family = 'dall-e-2' | 'dall-e-3' | 'gpt-image';

/** OpenAI's model names that Easel's default config aliases onto its default model, with the family each speaks. */
export const OPENAI_MODEL_FAMILIES: Readonly<Record<string, Family>> = Object.freeze({
  'dall-e-2': 'dall-e-2',
  'dall-e-3': 'dall-e-3',
  'gpt-image-1': 'gpt-image',
  'gpt-image-1-mini': 'gpt-image',
  'gpt-image-1.5': 'gpt-image',
  'gpt-image-2': 'gpt-image',
  'gpt-image-2-2026-04-21': 'gpt-image',
  'chatgpt-image-latest': 'gpt-image',
});

export type ResponseFormat = 'url' | 'b64_json';
export type OutputFormat = ImageFormat;
export type Background = 'transparent' | 'opaque' | 'auto';
export type Moderation = 'low' | 'auto';
export type Style = 'vivid' | 'natural';
export type InputFidelity = 'low' | 'high';
export type GptQuality = 'low' | 'medium' | 'high';
export type DallEQuality = 'standard' | 'hd';
export type ConcreteQuality = GptQuality | DallEQuality;

/** Easel's own request fields (documented extensions), accepted only where a served model lists them. */
export const EXTENSION_FIELDS = ['seed', 'negative_prompt', 'num_inference_steps', 'guidance_scale', 'scheduler'] as const;
export type ExtensionField = (typeof EXTENSION_FIELDS)[number];
export const SEED_MAX = 4294967295;
export const DEFAULT_EXTENSION_LIMITS = {
  num_inference_steps: { min: 1, max: 100 },
  guidance_scale: { min: 0, max: 30 },
} as const;

export interface RangeLimit {
  min: number;
  max: number;
}
export interface ExtensionLimits {
  num_inference_steps?: RangeLimit;
  guidance_scale?: RangeLimit;
}

/** What the server's model registry answers for a requested model name. */
export interface ResolvedModel {
  /** The served model's name (an alias may resolve to a local model with another name). */
  name: string;
  family: Family;
  /** Extension fields this model accepts (subset of EXTENSION_FIELDS). */
  extensions: readonly string[];
  /** Per-model bounds for numeric extensions; defaults are DEFAULT_EXTENSION_LIMITS. */
  limits?: ExtensionLimits;
}

export interface ParseContext {
  resolveModel(name: string): ResolvedModel | undefined;
  /** Model used when the request names none (per endpoint default when absent). */
  defaultModel?: string;
  /** Generations only: model used when `model` is omitted but a GPT-image-only field is present. */
  defaultGptImageModel?: string;
}

export interface FlexibleSizeRule {
  multipleOf: number;
  maxEdge: number;
  maxAspectRatio: number;
  minPixels: number;
  maxPixels: number;
}

export interface FamilyRules {
  family: Family;
  promptMaxLength: number;
  nMax: number;
  /** Fixed sizes accepted (may include 'auto'). */
  sizes: readonly string[];
  /** Non-null for models that accept arbitrary WIDTHxHEIGHT sizes (gpt-image-2). */
  flexibleSize: FlexibleSizeRule | null;
  defaultSize: string;
  qualities: readonly string[];
  /** Quality values of multipart edits: CreateImageEditRequest's enum has `standard` for the GPT models too. */
  editQualities: readonly string[];
  defaultQuality: string;
  /** What `auto` quality means for this family (Easel's choice for GPT models: medium). */
  autoQuality: ConcreteQuality;
  styles: readonly Style[] | null;
  defaultStyle: Style | null;
  responseFormats: readonly ResponseFormat[] | null;
  defaultResponseFormat: ResponseFormat;
  /** GPT-image-only features. */
  gptFeatures: boolean;
  supportsInputFidelity: boolean;
  supportsEdits: boolean;
  supportsVariations: boolean;
}

export const GPT_SIZES = ['1024x1024', '1536x1024', '1024x1536', 'auto'] as const;
export const DALL_E_2_SIZES = ['256x256', '512x512', '1024x1024'] as const;
export const DALL_E_3_SIZES = ['1024x1024', '1792x1024', '1024x1792'] as const;
export const GPT_QUALITIES = ['low', 'medium', 'high', 'auto'] as const;
/** CreateImageEditRequest's quality enum, in its order. */
export const GPT_EDIT_QUALITIES = ['standard', 'low', 'medium', 'high', 'auto'] as const;
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['png', 'webp', 'jpeg'];
export const BACKGROUNDS: readonly Background[] = ['transparent', 'opaque', 'auto'];
export const MODERATIONS: readonly Moderation[] = ['auto', 'low'];
export const RESPONSE_FORMATS: readonly ResponseFormat[] = ['url', 'b64_json'];
export const STYLES: readonly Style[] = ['vivid', 'natural'];
export const INPUT_FIDELITIES: readonly InputFidelity[] = ['high', 'low'];
export const PARTIAL_IMAGES_MAX = 3;
export const OUTPUT_COMPRESSION_DEFAULT = 100;

export const GPT_IMAGE_2_FLEXIBLE_SIZE: FlexibleSizeRule = {
  multipleOf: 16,
  maxEdge: 3840,
  maxAspectRatio: 3,
  minPixels: 655_360,
  maxPixels: 8_294_400,
};

const DALL_E_2_RULES: FamilyRules = {
  family: 'dall-e-2',
  promptMaxLength: 1000,
  nMax: 10,
  sizes: DALL_E_2_SIZES,
  flexibleSize: null,
  defaultSize: '1024x1024',
  // The spec: "`standard` is the only option for `dall-e-2`"; `auto` is every family's default.
  qualities: ['standard', 'auto'],
  editQualities: ['standard', 'auto'],
  defaultQuality: 'auto',
  autoQuality: 'standard',
  styles: null,
  defaultStyle: null,
  responseFormats: RESPONSE_FORMATS,
  defaultResponseFormat: 'url',
  gptFeatures: false,
  supportsInputFidelity: false,
  supportsEdits: true,
  supportsVariations: true,
};

const DALL_E_3_RULES: FamilyRules = {
  family: 'dall-e-3',
  promptMaxLength: 4000,
  nMax: 1,
  sizes: DALL_E_3_SIZES,
  flexibleSize: null,
  defaultSize: '1024x1024',
  qualities: ['standard', 'hd', 'auto'],
  editQualities: ['standard', 'hd', 'auto'],
  defaultQuality: 'auto',
  // DALL·E 3's documented default quality is "standard".
  autoQuality: 'standard',
  styles: STYLES,
  defaultStyle: 'vivid',
  responseFormats: RESPONSE_FORMATS,
  defaultResponseFormat: 'url',
  gptFeatures: false,
  supportsInputFidelity: false,
  supportsEdits: false,
  supportsVariations: false,
};

const GPT_IMAGE_RULES: FamilyRules = {
  family: 'gpt-image',
  promptMaxLength: 32000,
  nMax: 10,
  sizes: GPT_SIZES,
  flexibleSize: null,
  defaultSize: 'auto',
  qualities: GPT_QUALITIES,
  editQualities: GPT_EDIT_QUALITIES,
  defaultQuality: 'auto',
  // OpenAI lets the model pick; Easel has no such model, so `auto` means the balanced preset.
  autoQuality: 'medium',
  styles: null,
  defaultStyle: null,
  responseFormats: null,
  defaultResponseFormat: 'b64_json',
  gptFeatures: true,
  supportsInputFidelity: true,
  supportsEdits: true,
  supportsVariations: false,
};

function isGptImage2(name: string | undefined): boolean {
  return !!name && /^gpt-image-2(?:$|-)/.test(name);
}
function isGptImageMini(name: string | undefined): boolean {
  return !!name && /^gpt-image-1-mini(?:$|-)/.test(name);
}

/**
 * Rules for a family, refined by the model names involved: within the GPT family, the gpt-image-2 names
 * accept flexible sizes and (like gpt-image-1-mini) no `input_fidelity` (see the header).
 */
export function familyRules(family: Family, ...modelNames: Array<string | undefined>): FamilyRules {
  if (family === 'dall-e-2') return DALL_E_2_RULES;
  if (family === 'dall-e-3') return DALL_E_3_RULES;
  const v2 = modelNames.some(isGptImage2);
  const mini = modelNames.some(isGptImageMini);
  if (!v2 && !mini) return GPT_IMAGE_RULES;
  return {
    ...GPT_IMAGE_RULES,
    flexibleSize: v2 ? GPT_IMAGE_2_FLEXIBLE_SIZE : null,
    supportsInputFidelity: !(v2 || mini),
  };
}

/**
 * The preset a quality value means: `auto` is the family's autoQuality; on GPT models `standard` (multipart edits
 * only) is medium, the preset DALL·E's standard uses too, so the response can report it as OpenAI's low/medium/high.
 */
export function concreteQuality(rules: FamilyRules, quality: string): ConcreteQuality {
  if (quality === 'auto') return rules.autoQuality;
  if (rules.family === 'gpt-image' && quality === 'standard') return 'medium';
  return quality as ConcreteQuality;
}

export interface Dimensions {
  width: number;
  height: number;
}

/** "1024x1536" -> {width: 1024, height: 1536}; undefined for 'auto' or malformed strings. */
export function parseSize(size: string): Dimensions | undefined {
  const m = /^(\d{1,6})x(\d{1,6})$/.exec(size);
  if (!m) return undefined;
  return { width: Number(m[1]), height: Number(m[2]) };
}

/**
 * What `size: "auto"` becomes. OpenAI lets the model choose; Easel picks the standard GPT size whose
 * aspect ratio is nearest the first input image's (edits), or the square when there is no image.
 */
export function resolveAutoSize(input?: Dimensions): string {
  if (!input || input.width <= 0 || input.height <= 0) return '1024x1024';
  const r = Math.log(input.width / input.height);
  const candidates: Array<[string, number]> = [
    ['1024x1024', 0],
    ['1536x1024', Math.log(1.5)],
    ['1024x1536', Math.log(1 / 1.5)],
  ];
  let best = candidates[0];
  for (const c of candidates) if (Math.abs(r - c[1]) < Math.abs(r - best[1])) best = c;
  return best[0];
}

/** Edit input limits per family (CreateImageEditRequest.image description). */
export interface EditImageLimits {
  maxImages: number;
  maxImageBytes: number;
  mimetypes: readonly string[];
  requireSquare: boolean;
  /** Masks are PNGs with alpha, for every family. */
  maskMimetypes: readonly string[];
  maskMaxBytes: number;
}
export const MB = 1024 * 1024;
const { png, jpeg, webp } = IMAGE_MIME_TYPES;
export function editImageLimits(family: Family): EditImageLimits {
  if (family === 'dall-e-2') {
    return { maxImages: 1, maxImageBytes: 4 * MB, mimetypes: [png], requireSquare: true, maskMimetypes: [png], maskMaxBytes: 4 * MB };
  }
  return {
    maxImages: 16,
    maxImageBytes: 50 * MB,
    // The order of OpenAI's "Supported file formats are ..." sentence.
    mimetypes: [jpeg, png, webp],
    requireSquare: false,
    maskMimetypes: [png],
    maskMaxBytes: 4 * MB,
  };
}
