// Validation steps shared by the generations, edits and variations parsers: model resolution,
// unknown-field refusal, prompt, the option fields every family speaks, Easel extensions, and the
// resolved ("auto" made concrete) values the engine needs.
//
// Order follows what OpenAI reports first when a body has several faults (observed live): model,
// then unknown keys, then prompt, then images, then n, then the remaining options.

import {
  invalidFlexibleSize,
  invalidType,
  invalidValue,
  missingRequired,
  modelNotFound,
  onlyNEquals1,
  pngCompressionNotSupported,
  sizeNotSupported,
  transparentNeedsAlphaFormat,
  unknownParameter,
} from './errors.js';
import {
  BACKGROUNDS,
  DEFAULT_EXTENSION_LIMITS,
  EXTENSION_FIELDS,
  MODERATIONS,
  OUTPUT_COMPRESSION_DEFAULT,
  OUTPUT_FORMATS,
  PARTIAL_IMAGES_MAX,
  RESPONSE_FORMATS,
  SCHEDULERS,
  SEED_MAX,
  STYLES,
  parseSize,
  resolveAutoSize,
  type Background,
  type ConcreteQuality,
  type Dimensions,
  type Family,
  type FamilyRules,
  type Moderation,
  type OutputFormat,
  type ParseContext,
  type ResolvedModel,
  type ResponseFormat,
  type SchedulerName,
  type Style,
} from './families.js';
import { readBoolean, readDecimal, readEnum, readInteger, readString, type FieldReader } from './fields.js';

/** Easel extension values actually sent (absent keys are omitted). */
export interface EaselExtensions {
  seed?: number;
  negative_prompt?: string;
  num_inference_steps?: number;
  guidance_scale?: number;
  scheduler?: SchedulerName;
}

/** Concrete values for the engine and the response: no "auto" left. */
export interface ResolvedOutput {
  size: string;
  width: number;
  height: number;
  quality: ConcreteQuality;
  background: 'transparent' | 'opaque';
}

/** Fields every parsed request carries, with wire (snake_case) names and defaults filled in. */
export interface ParsedCommon {
  /** The served model's name (what the registry resolved). */
  model: string;
  /** The name the client sent, or the default the endpoint chose. */
  requested_model: string;
  family: Family;
  prompt: string;
  n: number;
  /** As requested (may be "auto"); see `resolved.size`. */
  size: string;
  /** As requested (may be "auto"); see `resolved.quality`. */
  quality: string;
  /** url | b64_json; always b64_json for GPT image models. */
  response_format: ResponseFormat;
  /** Always png for DALL·E families. */
  output_format: OutputFormat;
  output_compression: number;
  background: Background;
  moderation: Moderation;
  user: string | null;
  stream: boolean;
  partial_images: number;
  extensions: EaselExtensions;
  resolved: ResolvedOutput;
}

export interface ModelChoice {
  requested: string;
  resolved: ResolvedModel;
}

/** Reads `model` (string; null/absent = default) and resolves it, or throws 404 model_not_found. */
export function resolveModelField(r: FieldReader, ctx: ParseContext, defaultName: () => string): ModelChoice {
  const v = r.has('model') ? r.get('model') : undefined;
  let requested: string;
  if (v === undefined || v === null) {
    requested = defaultName();
  } else {
    if (typeof v !== 'string') throw invalidType('model', 'a string', v);
    requested = v;
  }
  const resolved = requested === '' ? undefined : ctx.resolveModel(requested);
  if (!resolved) throw modelNotFound(requested);
  return { requested, resolved };
}

/** Extension names a served model accepts (only the ones Easel knows how to validate). */
export function modelExtensions(model: ResolvedModel): string[] {
  return model.extensions.filter((e) => (EXTENSION_FIELDS as readonly string[]).includes(e));
}

/**
 * Refuses the first key (in the client's order) that is neither an allowed field nor an extension the
 * model accepts. `special` may map a key to a custom error (e.g. `image` on the JSON edits form).
 */
export function rejectUnknownKeys(
  keys: readonly string[],
  allowed: readonly string[],
  model: ResolvedModel,
  special: Record<string, () => Error> = {},
): void {
  const ok = new Set([...allowed, ...modelExtensions(model)]);
  for (const key of keys) {
    if (ok.has(key)) continue;
    const custom = Object.hasOwn(special, key) ? special[key] : undefined;
    if (custom) throw custom();
    throw unknownParameter(key);
  }
}

/** Required; explicit null is a type error (the spec's prompt is not nullable). */
export function readPrompt(r: FieldReader, rules: FamilyRules): string {
  if (!r.has('prompt') || r.get('prompt') === undefined) throw missingRequired('prompt');
  return readString(r, 'prompt', { minLength: 1, maxLength: rules.promptMaxLength }) as string;
}

export function readN(r: FieldReader, rules: FamilyRules): number {
  const n = readInteger(r, 'n', { nullable: true, min: 1, max: 10 }) ?? 1;
  if (n > rules.nMax) throw onlyNEquals1();
  return n;
}

/** Validates `size` against the family (fixed list, or gpt-image-2's flexible rule). */
export function readSize(r: FieldReader, rules: FamilyRules, defaultSize: string): string {
  const v = readString(r, 'size', { nullable: true });
  if (v === undefined) return defaultSize;
  if (rules.sizes.includes(v)) return v;
  if (rules.flexibleSize) {
    checkFlexibleSize(v, rules);
    return v;
  }
  if (rules.family === 'gpt-image') throw invalidValue('size', v, rules.sizes);
  throw sizeNotSupported();
}

function checkFlexibleSize(size: string, rules: FamilyRules): void {
  const rule = rules.flexibleSize!;
  const d = parseSize(size);
  if (!d || d.width <= 0 || d.height <= 0) {
    throw invalidFlexibleSize(`Invalid size '${size}'. Expected WIDTHxHEIGHT, for example '1824x1024'.`);
  }
  if (d.width % rule.multipleOf !== 0 || d.height % rule.multipleOf !== 0) {
    throw invalidFlexibleSize(`Width and height must both be divisible by ${rule.multipleOf}.`);
  }
  // (Easel wording for the remaining bounds; OpenAI's originals were not found.)
  if (Math.max(d.width, d.height) > rule.maxEdge) {
    throw invalidFlexibleSize(`Invalid size '${size}'. Width and height must each be at most ${rule.maxEdge} pixels.`);
  }
  const ratio = Math.max(d.width, d.height) / Math.min(d.width, d.height);
  if (ratio > rule.maxAspectRatio) {
    throw invalidFlexibleSize(`Invalid size '${size}'. The aspect ratio must be between 1:${rule.maxAspectRatio} and ${rule.maxAspectRatio}:1.`);
  }
  const pixels = d.width * d.height;
  if (pixels < rule.minPixels || pixels > rule.maxPixels) {
    throw invalidFlexibleSize(
      `Invalid size '${size}'. The total number of pixels must be between ${rule.minPixels} and ${rule.maxPixels}, but got ${pixels}.`,
    );
  }
}

export function readQuality(r: FieldReader, rules: FamilyRules): string {
  return readEnum(r, 'quality', rules.qualities, { nullable: true }) ?? rules.defaultQuality;
}

export function readResponseFormat(r: FieldReader, rules: FamilyRules): ResponseFormat {
  if (!rules.responseFormats) return 'b64_json';
  return readEnum(r, 'response_format', RESPONSE_FORMATS, { nullable: true }) ?? rules.defaultResponseFormat;
}

export function readStyle(r: FieldReader, rules: FamilyRules): Style | null {
  if (!rules.styles) return null;
  return readEnum(r, 'style', STYLES, { nullable: true }) ?? rules.defaultStyle;
}

export function readUser(r: FieldReader): string | null {
  return readString(r, 'user') ?? null;
}

export interface GptOptions {
  output_format: OutputFormat;
  output_compression: number;
  background: Background;
  moderation: Moderation;
  stream: boolean;
  partial_images: number;
}

const DALL_E_GPT_OPTIONS: GptOptions = {
  output_format: 'png',
  output_compression: OUTPUT_COMPRESSION_DEFAULT,
  background: 'auto',
  moderation: 'auto',
  stream: false,
  partial_images: 0,
};

/** GPT-image-only options with their cross-field rules; fixed values for DALL·E families. */
export function readGptOptions(r: FieldReader, rules: FamilyRules): GptOptions {
  if (!rules.gptFeatures) return { ...DALL_E_GPT_OPTIONS };
  const output_format = readEnum(r, 'output_format', OUTPUT_FORMATS, { nullable: true }) ?? 'png';
  const compression = readInteger(r, 'output_compression', { nullable: true, min: 0, max: 100 });
  const background = readEnum(r, 'background', BACKGROUNDS, { nullable: true }) ?? 'auto';
  const moderation = readEnum(r, 'moderation', MODERATIONS, { nullable: true }) ?? 'auto';
  const stream = readBoolean(r, 'stream', { nullable: true }) ?? false;
  const partial_images = readInteger(r, 'partial_images', { nullable: true, min: 0, max: PARTIAL_IMAGES_MAX }) ?? 0;
  if (background === 'transparent' && output_format === 'jpeg') throw transparentNeedsAlphaFormat(output_format);
  if (compression !== undefined && compression < 100 && output_format === 'png') throw pngCompressionNotSupported();
  return {
    output_format,
    output_compression: compression ?? OUTPUT_COMPRESSION_DEFAULT,
    background,
    moderation,
    stream,
    partial_images,
  };
}

/** Easel extensions the model accepts; unknown ones were already refused by rejectUnknownKeys. */
export function readExtensions(r: FieldReader, model: ResolvedModel, rules: FamilyRules): EaselExtensions {
  const allowed = new Set(modelExtensions(model));
  const out: EaselExtensions = {};
  if (allowed.has('seed')) {
    const seed = readInteger(r, 'seed', { nullable: true, min: 0, max: SEED_MAX });
    if (seed !== undefined) out.seed = seed;
  }
  if (allowed.has('negative_prompt')) {
    const np = readString(r, 'negative_prompt', { nullable: true, maxLength: rules.promptMaxLength });
    if (np !== undefined) out.negative_prompt = np;
  }
  if (allowed.has('num_inference_steps')) {
    const lim = model.limits?.num_inference_steps ?? DEFAULT_EXTENSION_LIMITS.num_inference_steps;
    const steps = readInteger(r, 'num_inference_steps', { nullable: true, min: lim.min, max: lim.max });
    if (steps !== undefined) out.num_inference_steps = steps;
  }
  if (allowed.has('guidance_scale')) {
    const lim = model.limits?.guidance_scale ?? DEFAULT_EXTENSION_LIMITS.guidance_scale;
    const g = readDecimal(r, 'guidance_scale', { nullable: true, min: lim.min, max: lim.max });
    if (g !== undefined) out.guidance_scale = g;
  }
  if (allowed.has('scheduler')) {
    const s = readEnum(r, 'scheduler', SCHEDULERS, { nullable: true });
    if (s !== undefined) out.scheduler = s;
  }
  return out;
}

/** Makes size, quality and background concrete. `firstImage` guides `size: auto` on edits. */
export function resolveOutput(
  rules: FamilyRules,
  size: string,
  quality: string,
  background: Background,
  firstImage?: Dimensions,
): ResolvedOutput {
  const concreteSize = size === 'auto' ? resolveAutoSize(firstImage) : size;
  const dims = parseSize(concreteSize);
  if (!dims) throw invalidValue('size', size, rules.sizes);
  return {
    size: concreteSize,
    width: dims.width,
    height: dims.height,
    quality: (quality === 'auto' ? rules.autoQuality : quality) as ConcreteQuality,
    background: background === 'transparent' ? 'transparent' : 'opaque',
  };
}
