// Reads a diffusers-layout ONNX model folder: which parts it has and every constant the pipeline needs.
// Nothing is hard-coded: scale factors, channels, sizes and the scheduler come from the folder's JSON files.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createScheduler, registeredConfig } from '../schedulers/index.js';
import { isSchedulerName, SCHEDULER_NAMES } from '../schedulers/names.js';
import type { SchedulerConfig } from '../schedulers/types.js';

export class ModelFolderError extends Error {
  override readonly name = 'ModelFolderError';
}

export interface QualityPreset {
  steps: number;
  guidance_scale: number;
  scheduler?: string;
  /** Classifier-free guidance only at timesteps in [lo, hi] (GenerateRequest.guidanceInterval). */
  guidance_interval?: [number, number];
}

/** Easel's optional `easel.json` beside model_index.json. */
export interface EaselModelExtras {
  quality_presets?: Record<string, QualityPreset>;
  native_sizes?: Array<[number, number]>;
  supports_alpha?: boolean;
  default_negative_prompt?: string;
  /**
   * Words appended to the prompt the model sees when a request asks for a transparent background and the prompt
   * does not say "transparent" itself (e.g. ", on a transparent background"): the model paints real alpha only when
   * its conditioning asks for it.
   */
  transparent_background_prompt?: string;
  /**
   * Every word the model's training captions are made of (lower case). When present, the server names the words of a
   * prompt outside it in an `x-easel-warning` header: the model was trained to ignore them.
   */
  prompt_vocabulary?: string[];
  /** What OpenAI's `style` (dall-e-3: vivid, natural) does on this model; DEFAULT_STYLES when absent. */
  style_presets?: Partial<Record<'vivid' | 'natural', StylePreset>>;
}

/** A style's effect on a request planned from a quality preset. */
export interface StylePreset {
  /** guidance' = 1 + (guidance - 1) * factor: below 1 pulls towards the unguided (plainer) image. Default 1. */
  guidance_factor?: number;
  /** Words appended to the prompt the model sees (not to the one billed or returned). */
  prompt_suffix?: string;
}

export interface ModelFolder {
  readonly dir: string;
  readonly pipelineClass: string;
  readonly isSdxl: boolean;
  readonly paths: {
    readonly tokenizer: string;
    readonly tokenizer2?: string;
    readonly textEncoder: string;
    readonly textEncoder2?: string;
    readonly unet: string;
    readonly vaeDecoder: string;
    readonly vaeEncoder?: string;
  };
  readonly vaeScaleFactor: number;
  readonly latentChannels: number;
  readonly scalingFactor: number;
  readonly shiftFactor: number;
  /** UNet input channels: latentChannels, or 2 * latentChannels + 1 for inpainting UNets. */
  readonly unetInChannels: number;
  /** Latent sample size the UNet was trained at (square unless the config says otherwise). */
  readonly sampleSize: readonly [number, number];
  /**
   * Pixel sides must be multiples of this: vaeScaleFactor * 2 ** (UNet down blocks - 1), since every down block but
   * the last halves the latent and the up path concatenates the skips at the same sizes (64 for SD 1.x/2.x, 32 for SDXL).
   */
  readonly sizeMultiple: number;
  /** Channels the VAE decoder produces: 3 (RGB) or 4 (RGBA). */
  readonly decoderOutChannels: number;
  readonly schedulerConfig: SchedulerConfig;
  readonly extras: EaselModelExtras;
  /** SDXL: the unconditional embedding is zeros when no negative prompt is given (model_index.json, default true). */
  readonly forceZerosForEmptyPrompt: boolean;
}

function readJson(path: string, what: string): Record<string, unknown> {
  if (!existsSync(path)) throw new ModelFolderError(`missing ${what}: ${path}`);
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new ModelFolderError(`cannot parse ${path}: ${(err as Error).message}`);
  }
}

function readOptionalJson(path: string): Record<string, unknown> | undefined {
  return existsSync(path) ? readJson(path, path) : undefined;
}

function requireFile(path: string, what: string): string {
  if (!existsSync(path)) throw new ModelFolderError(`missing ${what}: ${path}`);
  return path;
}

function requireTokenizer(dir: string): string {
  const hasJson = existsSync(join(dir, 'tokenizer.json'));
  const hasBpe = existsSync(join(dir, 'vocab.json')) && existsSync(join(dir, 'merges.txt'));
  if (!hasJson && !hasBpe) {
    throw new ModelFolderError(`missing tokenizer files: ${dir} needs tokenizer.json or vocab.json + merges.txt`);
  }
  return dir;
}

function num(cfg: Record<string, unknown> | undefined, key: string, fallback: number): number {
  const v = cfg?.[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : fallback;
}

export interface ReadFolderOptions {
  /** Weights variant (e.g. "fp16"): each part's model.fp16.onnx (or model_fp16.onnx) when it has one. */
  variant?: string;
}

/**
 * The ONNX file of one part folder: for a variant, model.<variant>.onnx or model_<variant>.onnx (diffusers' and
 * optimum's names), else model.onnx; without one, model.onnx, or the single variant file when that is all there is.
 */
export function findOnnxFile(partDir: string, variant?: string, opts: { variantOnly?: boolean } = {}): string | undefined {
  const has = (name: string) => existsSync(join(partDir, name));
  if (variant) {
    const named = [`model.${variant}.onnx`, `model_${variant}.onnx`].find(has);
    if (named || opts.variantOnly) return named && join(partDir, named);
  }
  if (has('model.onnx')) return join(partDir, 'model.onnx');
  if (variant || !existsSync(partDir)) return undefined;
  const variants = readdirSync(partDir).filter((n) => /^model[._][A-Za-z0-9-]+\.onnx$/.test(n));
  return variants.length === 1 ? join(partDir, variants[0]) : undefined;
}

/**
 * Folders a pipeline's files are looked up in, nearest first: `dir`, then its parents up to the one with
 * model_index.json (at most two up), so an ONNX pipeline in a repository's onnx/ (or onnx/fp16/) folder finds the
 * model_index.json, scheduler and tokenizers kept at the repository root.
 */
function lookupDirs(dir: string): string[] {
  const dirs = [dir];
  for (let d = dir, i = 0; i < 2 && !existsSync(join(d, 'model_index.json')); i++) {
    d = dirname(d);
    dirs.push(d);
  }
  if (!existsSync(join(dirs.at(-1)!, 'model_index.json')))
    throw new ModelFolderError(`missing model_index.json: ${join(dir, 'model_index.json')}`);
  return dirs;
}

export function readModelFolder(dir: string, opts: ReadFolderOptions = {}): ModelFolder {
  if (!existsSync(dir)) throw new ModelFolderError(`model folder not found: ${dir}`);
  const dirs = lookupDirs(dir);
  /** The first of dirs holding `rel` (reported under `dir` when none does). */
  const at = (...rel: string[]) => dirs.map((d) => join(d, ...rel)).find((p) => existsSync(p)) ?? join(dir, ...rel);
  const onnx = (part: string) => {
    for (const d of dirs) {
      const f = findOnnxFile(join(d, part), opts.variant);
      if (f) return f;
    }
    return join(dir, part, opts.variant ? `model.${opts.variant}.onnx` : 'model.onnx');
  };
  const index = readJson(at('model_index.json'), 'model_index.json');
  const pipelineClass = String(index._class_name ?? 'StableDiffusionPipeline');
  const isSdxl = pipelineClass.includes('XL') || existsSync(at('text_encoder_2'));
  const vaeEncoder = onnx('vae_encoder');

  const paths = {
    tokenizer: requireTokenizer(at('tokenizer')),
    textEncoder: requireFile(onnx('text_encoder'), 'text encoder'),
    unet: requireFile(onnx('unet'), 'UNet'),
    vaeDecoder: requireFile(onnx('vae_decoder'), 'VAE decoder'),
    vaeEncoder: existsSync(vaeEncoder) ? vaeEncoder : undefined,
    tokenizer2: isSdxl ? requireTokenizer(at('tokenizer_2')) : undefined,
    textEncoder2: isSdxl ? requireFile(onnx('text_encoder_2'), 'second text encoder') : undefined,
  };

  // The VAE config lives in vae_decoder/ in ONNX exports (vae/ in PyTorch layouts); accept either.
  const vaeCfg =
    readOptionalJson(at('vae_decoder', 'config.json')) ??
    readOptionalJson(at('vae', 'config.json')) ??
    readJson(at('vae_encoder', 'config.json'), 'VAE config (vae_decoder/config.json)');
  const blocks = Array.isArray(vaeCfg.block_out_channels) ? vaeCfg.block_out_channels.length : 4;
  const vaeScaleFactor = 2 ** (blocks - 1);
  const latentChannels = num(vaeCfg, 'latent_channels', 4);
  const unetCfg = readJson(at('unet', 'config.json'), 'UNet config');
  const unetInChannels = num(unetCfg, 'in_channels', latentChannels);
  const ss = unetCfg.sample_size;
  const sampleSize: [number, number] = Array.isArray(ss)
    ? [Number(ss[0]), Number(ss[1])]
    : [num(unetCfg, 'sample_size', 64), num(unetCfg, 'sample_size', 64)];

  const schedulerFile = at('scheduler', 'scheduler_config.json');
  const schedulerConfig = readJson(schedulerFile, 'scheduler config') as SchedulerConfig;
  checkSchedulerConfig(schedulerFile, schedulerConfig);
  const sizeMultiple = vaeScaleFactor * 2 ** (unetDownBlocks(unetCfg) - 1);
  const extrasFile = at('easel.json');
  const extras = (readOptionalJson(extrasFile) ?? {}) as EaselModelExtras;
  checkPresets(extrasFile, extras.quality_presets);
  checkExtras(extrasFile, extras);
  checkNativeSizes(extrasFile, extras.native_sizes, sizeMultiple);

  return {
    dir,
    pipelineClass,
    isSdxl,
    paths,
    vaeScaleFactor,
    latentChannels,
    scalingFactor: num(vaeCfg, 'scaling_factor', 0.18215),
    shiftFactor: num(vaeCfg, 'shift_factor', 0),
    unetInChannels,
    sampleSize,
    sizeMultiple,
    decoderOutChannels: num(vaeCfg, 'out_channels', 3),
    schedulerConfig,
    extras,
    forceZerosForEmptyPrompt: index.force_zeros_for_empty_prompt !== false,
  };
}

/**
 * UNet2DConditionModel's down blocks: `down_block_types` (or `block_out_channels`, which diffusers requires to match),
 * 4 when neither is given (the class defaults, as in SD 1.x).
 */
function unetDownBlocks(unetCfg: Record<string, unknown>): number {
  for (const key of ['down_block_types', 'block_out_channels']) {
    const v = unetCfg[key];
    if (Array.isArray(v) && v.length > 0) return v.length;
  }
  return 4;
}

/**
 * The folder's scheduler must be one Easel implements (named in the error otherwise) with values it accepts, so a bad
 * scheduler_config.json stops the load instead of failing every request.
 */
export function checkSchedulerConfig(file: string, config: SchedulerConfig): void {
  try {
    createScheduler(undefined, registeredConfig(config));
  } catch (err) {
    throw new ModelFolderError(`${file}: ${(err as Error).message}`);
  }
}

/** easel.json native_sizes must be sizes the UNet can take. */
function checkNativeSizes(file: string, sizes: unknown, multiple: number): void {
  if (sizes === undefined) return;
  const ok = (v: unknown) => Number.isInteger(v) && (v as number) > 0 && (v as number) % multiple === 0;
  if (!Array.isArray(sizes) || !sizes.every((s) => Array.isArray(s) && s.length === 2 && ok(s[0]) && ok(s[1]))) {
    throw new ModelFolderError(`${file}: native_sizes must be [width, height] pairs of positive multiples of ${multiple}`);
  }
}

/** A wrong quality preset fails when the folder loads, naming the file and preset, not on every request that uses it. */
function checkPresets(file: string, presets: unknown): void {
  if (presets === undefined) return;
  if (typeof presets !== 'object' || presets === null || Array.isArray(presets)) {
    throw new ModelFolderError(`${file}: quality_presets must be an object of presets`);
  }
  for (const [name, p] of Object.entries(presets as Record<string, Partial<QualityPreset>>)) {
    const bad = (what: string) => new ModelFolderError(`${file}: quality preset "${name}": ${what}`);
    if (!Number.isInteger(p?.steps) || p.steps! < 1) throw bad('steps must be a positive integer');
    if (!Number.isFinite(p.guidance_scale) || p.guidance_scale! < 0) throw bad('guidance_scale must be a number >= 0');
    if (p.scheduler !== undefined && !isSchedulerName(p.scheduler)) {
      throw bad(`unknown scheduler "${String(p.scheduler)}" (known: ${SCHEDULER_NAMES.join(', ')})`);
    }
    const gi = p.guidance_interval;
    if (gi !== undefined && !(Array.isArray(gi) && gi.length === 2 && gi.every(Number.isFinite) && gi[0] <= gi[1])) {
      throw bad('guidance_interval must be [lo, hi] with lo <= hi');
    }
  }
}

/** The other easel.json keys are checked when the folder loads too, so a typo fails at start, naming the file. */
function checkExtras(file: string, extras: EaselModelExtras): void {
  const vocab = extras.prompt_vocabulary;
  if (vocab !== undefined && !(Array.isArray(vocab) && vocab.every((w) => typeof w === 'string' && w === w.toLowerCase()))) {
    throw new ModelFolderError(`${file}: prompt_vocabulary must be an array of lower-case words`);
  }
  const styles = extras.style_presets;
  if (styles === undefined) return;
  if (typeof styles !== 'object' || styles === null || Array.isArray(styles))
    throw new ModelFolderError(`${file}: style_presets must be an object`);
  for (const [name, p] of Object.entries(styles)) {
    const bad = (what: string) => new ModelFolderError(`${file}: style preset "${name}": ${what}`);
    if (name !== 'vivid' && name !== 'natural') throw bad('unknown style (known: vivid, natural)');
    if (p.guidance_factor !== undefined && !(Number.isFinite(p.guidance_factor) && p.guidance_factor >= 0))
      throw bad('guidance_factor must be a number >= 0');
    if (p.prompt_suffix !== undefined && typeof p.prompt_suffix !== 'string') throw bad('prompt_suffix must be a string');
  }
}
