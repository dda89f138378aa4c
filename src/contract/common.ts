// Validation steps shared by the generations, edits and variations parsers: model resolution,
// unknown-field refusal, prompt, the option fields every family speaks, Easel extensions, and the
// resolved ("auto" made concrete) values the engine needs.
//
// Order follows what OpenAI reports first when a body has several faults (observed live): model,
// then unknown keys, then prompt, then images, then n, then the remaining options.

import type { SchedulerName } from '../engine/schedulers/names.js';
import {
  invalidFlexibleSize,
  invalidType,
  invalidValue,
  missingRequired,
  modelNotFound,
  onlyDefaultValue,
  onlyNEquals1,
  pngCompressionNotSupported,
  sizeNotSupported,
  transparentNeedsAlphaFormat,
  unknownParameter,
} from './errors.js';
import {
  type Background,
  type ConcreteQuality,
  concreteQuality,
  type Dimensions,
  EXTENSION_FIELDS,
  type Family,
  type FamilyRules,
  type Moderation,
  OUTPUT_COMPRESSION_DEFAULT,
  type OutputFormat,
  type ParseContext,
  parseSize,
  type ResolvedModel,
  type ResponseFormat,
  resolveAutoSize,
  type Style,
} from './families.js';
import { type FieldReader, readBoolean, readDecimal, readEnum, readInteger, readString } from './fields.js';
import {
  BACKGROUND,
  EXTENSION_REQUEST_FIELDS,
  MODERATION,
  N,
  OUTPUT_COMPRESSION,
  OUTPUT_FORMAT,
  PARTIAL_IMAGES,
  PROMPT,
  QUALITY,
  RESPONSE_FORMAT,
  type RequestField,
  SIZE,
  STREAM,
  STYLE,
  USER,
} from './request-fields.js';

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
  if (!r.has(PROMPT.name) || r.get(PROMPT.name) === undefined) throw missingRequired(PROMPT.name);
  return readString(r, PROMPT.name, {
    nullable: PROMPT.nullable,
    minLength: PROMPT.minLength,
    maxLength: PROMPT.maxLengthFor(rules),
  }) as string;
}

export function readN(r: FieldReader, rules: FamilyRules): number {
  const n = readInteger(r, N.name, { nullable: N.nullable, min: N.min, max: N.max }) ?? N.defaultFor();
  if (n > N.familyMaxFor(rules)) throw onlyNEquals1();
  return n;
}

/** Validates `size` against the family (fixed list, or gpt-image-2's flexible rule). */
export function readSize(r: FieldReader, rules: FamilyRules): string {
  const v = readString(r, SIZE.name, { nullable: SIZE.nullable });
  if (v === undefined) return SIZE.defaultFor(rules);
  if (SIZE.valuesFor(rules).includes(v)) return v;
  if (rules.flexibleSize) {
    checkFlexibleSize(v, rules);
    return v;
  }
  if (rules.family === 'gpt-image') throw invalidValue(SIZE.name, v, SIZE.valuesFor(rules));
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
    throw invalidFlexibleSize(
      `Invalid size '${size}'. The aspect ratio must be between 1:${rule.maxAspectRatio} and ${rule.maxAspectRatio}:1.`,
    );
  }
  const pixels = d.width * d.height;
  if (pixels < rule.minPixels || pixels > rule.maxPixels) {
    throw invalidFlexibleSize(
      `Invalid size '${size}'. The total number of pixels must be between ${rule.minPixels} and ${rule.maxPixels}, but got ${pixels}.`,
    );
  }
}

/** `quality` as sent (may be "auto"); multipart edits pass EDIT_QUALITY, whose values differ. */
export function readQuality(
  r: FieldReader,
  rules: FamilyRules,
  field: Pick<typeof QUALITY, 'name' | 'nullable' | 'valuesFor'> = QUALITY,
): string {
  return readEnum(r, field.name, field.valuesFor(rules), { nullable: field.nullable }) ?? QUALITY.defaultFor(rules);
}

export function readResponseFormat(r: FieldReader, rules: FamilyRules): ResponseFormat {
  if (!rules.responseFormats) return 'b64_json';
  const v = readEnum(r, RESPONSE_FORMAT.name, RESPONSE_FORMAT.valuesFor(), { nullable: RESPONSE_FORMAT.nullable });
  return v ?? RESPONSE_FORMAT.defaultFor(rules);
}

export function readStyle(r: FieldReader, rules: FamilyRules): Style | null {
  if (!rules.styles) return null;
  return readEnum(r, STYLE.name, STYLE.valuesFor(), { nullable: STYLE.nullable }) ?? STYLE.defaultFor(rules);
}

export function readUser(r: FieldReader): string | null {
  return readString(r, USER.name, { nullable: USER.nullable }) ?? null;
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

/** A field a DALL·E family takes only at its default (request-fields' defaultOnlyFor): any other value is refused. */
function requireDefault<T extends string | number | boolean>(field: RequestField & { defaultFor: () => T }, value: T | undefined): void {
  const fallback = field.defaultFor();
  if (value !== undefined && value !== fallback) throw onlyDefaultValue(field.name, value, fallback);
}

/**
 * GPT-image-only options with their cross-field rules; fixed values for DALL·E families, which take `stream` and
 * `partial_images` only as "no streaming" (false / 0, or null).
 */
export function readGptOptions(r: FieldReader, rules: FamilyRules): GptOptions {
  if (!rules.gptFeatures) {
    requireDefault(STREAM, readBoolean(r, STREAM.name, { nullable: STREAM.nullable }));
    const { min, max, nullable } = PARTIAL_IMAGES;
    requireDefault(PARTIAL_IMAGES, readInteger(r, PARTIAL_IMAGES.name, { nullable, min, max }));
    return { ...DALL_E_GPT_OPTIONS };
  }
  const output_format =
    readEnum(r, OUTPUT_FORMAT.name, OUTPUT_FORMAT.valuesFor(), { nullable: OUTPUT_FORMAT.nullable }) ?? OUTPUT_FORMAT.defaultFor();
  const compression = readInteger(r, OUTPUT_COMPRESSION.name, {
    nullable: OUTPUT_COMPRESSION.nullable,
    min: OUTPUT_COMPRESSION.min,
    max: OUTPUT_COMPRESSION.max,
  });
  const background = readEnum(r, BACKGROUND.name, BACKGROUND.valuesFor(), { nullable: BACKGROUND.nullable }) ?? BACKGROUND.defaultFor();
  const moderation = readEnum(r, MODERATION.name, MODERATION.valuesFor(), { nullable: MODERATION.nullable }) ?? MODERATION.defaultFor();
  const stream = readBoolean(r, STREAM.name, { nullable: STREAM.nullable }) ?? STREAM.defaultFor();
  const partial_images =
    readInteger(r, PARTIAL_IMAGES.name, { nullable: PARTIAL_IMAGES.nullable, min: PARTIAL_IMAGES.min, max: PARTIAL_IMAGES.max }) ??
    PARTIAL_IMAGES.defaultFor();
  if (background === 'transparent' && output_format === 'jpeg') throw transparentNeedsAlphaFormat(output_format);
  if (compression !== undefined && compression < 100 && output_format === 'png') throw pngCompressionNotSupported();
  return {
    output_format,
    output_compression: compression ?? OUTPUT_COMPRESSION.defaultFor(),
    background,
    moderation,
    stream,
    partial_images,
  };
}

/** Easel extensions the model accepts; unknown ones were already refused by rejectUnknownKeys. */
export function readExtensions(r: FieldReader, model: ResolvedModel, rules: FamilyRules): EaselExtensions {
  const allowed = new Set(modelExtensions(model));
  const { seed, negative_prompt, num_inference_steps, guidance_scale, scheduler } = EXTENSION_REQUEST_FIELDS;
  const out: EaselExtensions = {};
  if (allowed.has(seed.name)) {
    const v = readInteger(r, seed.name, { nullable: seed.nullable, min: seed.min, max: seed.max });
    if (v !== undefined) out.seed = v;
  }
  if (allowed.has(negative_prompt.name)) {
    const v = readString(r, negative_prompt.name, { nullable: negative_prompt.nullable, maxLength: negative_prompt.maxLengthFor(rules) });
    if (v !== undefined) out.negative_prompt = v;
  }
  if (allowed.has(num_inference_steps.name)) {
    const lim = model.limits?.num_inference_steps ?? num_inference_steps;
    const v = readInteger(r, num_inference_steps.name, { nullable: num_inference_steps.nullable, min: lim.min, max: lim.max });
    if (v !== undefined) out.num_inference_steps = v;
  }
  if (allowed.has(guidance_scale.name)) {
    const lim = model.limits?.guidance_scale ?? guidance_scale;
    const v = readDecimal(r, guidance_scale.name, { nullable: guidance_scale.nullable, min: lim.min, max: lim.max });
    if (v !== undefined) out.guidance_scale = v;
  }
  if (allowed.has(scheduler.name)) {
    const v = readEnum(r, scheduler.name, scheduler.valuesFor(), { nullable: scheduler.nullable });
    if (v !== undefined) out.scheduler = v;
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
    quality: concreteQuality(rules, quality),
    background: background === 'transparent' ? 'transparent' : 'opaque',
  };
}
