// Planning a request from the served model's ModelInfo (never from live sessions, so an API node can plan without
// ONNX Runtime): quality preset + extensions → steps/guidance/scheduler, size → native generation size,
// background → alpha, and image-to-image strength → the steps that really run. Also the cost caps (limits.maxSteps,
// maxImageStepMegapixels, maxPartialImages) a plan is checked against before it is queued.
import type { Config } from '../config/config.js';
import type { ParsedCommon } from '../contract/common.js';
import { ApiError, integerAboveMax, transparentNotSupported } from '../contract/errors.js';
import { outputImageTokens, partialImageTokens } from '../contract/usage.js';
import { planSize, presetFor, stepsForStrength, styledGuidance, stylePreset } from '../engine/plan.js';
import type { GenerateRequest, RgbaImage } from '../engine/types.js';
import { imageStepMegapixels, stepsThatRun } from '../jobs/cost.js';
import type { OutputPlan } from '../jobs/types.js';
import type { ServedModel } from './catalog.js';

export interface JobPlan {
  request: GenerateRequest;
  output: OutputPlan;
  /** Denoising steps that actually run (image-to-image runs fewer); partial images are spaced over these. */
  effectiveSteps: number;
  /** What the cost caps and the token rate limit read at submit (dispatch.ts). */
  facts: PlannedFacts;
}

/** What the request asked for, beyond the engine request: what the cost caps and the token rate limit read. */
export interface PlannedFacts {
  parsed: ParsedCommon;
  /** Steps asked for (num_inference_steps or the quality preset's), before image-to-image strength. */
  requestedSteps: number;
  /** Image output tokens of the request, partial images included (contract/usage.ts): what tokensPerMinute counts. */
  outputTokens: number;
}

/**
 * `style` (dall-e-3 generations): the model's style preset scales the preset's guidance and may add words to the
 * prompt the model sees; an explicit guidance_scale extension wins over the style's guidance.
 */
export function planJob(served: ServedModel, parsed: ParsedCommon, style?: 'vivid' | 'natural' | null): JobPlan {
  const { capabilities: caps, presets, extras } = served.local.info;
  const preset = presetFor(parsed.resolved.quality, presets);
  const styled = style ? stylePreset(style, extras.style_presets) : {};
  const sizes = planSize(parsed.resolved.width, parsed.resolved.height, caps);
  const ext = parsed.extensions;
  const gpt = parsed.family === 'gpt-image';
  if (gpt && parsed.background === 'transparent' && !caps.supportsAlpha) throw transparentNotSupported();
  const alphaPossible = gpt && parsed.output_format !== 'jpeg' && caps.supportsAlpha;
  // auto: alpha is kept only when every image has some (the worker decides), so `background` is true of all of them.
  const alpha = !alphaPossible || parsed.background === 'opaque' ? 'flatten' : parsed.background === 'transparent' ? 'keep' : 'auto';
  const transparentWords = extras.transparent_background_prompt;
  const steerToTransparent = gpt && parsed.background === 'transparent' && transparentWords && !/transparent/i.test(parsed.prompt);
  const steps = ext.num_inference_steps ?? preset.steps;
  const outputTokens =
    outputImageTokens(parsed.resolved.quality, parsed.resolved.size) * parsed.n + partialImageTokens(parsed.partial_images);
  const plan: JobPlan = {
    request: {
      // only the conditioning changes: usage, moderation and the response are about the prompt as sent
      prompt: `${parsed.prompt}${steerToTransparent ? transparentWords : ''}${styled.prompt_suffix ?? ''}`,
      negativePrompt: ext.negative_prompt ?? extras.default_negative_prompt,
      width: sizes.genWidth,
      height: sizes.genHeight,
      numImages: parsed.n,
      numInferenceSteps: steps,
      guidanceScale: ext.guidance_scale ?? styledGuidance(preset.guidance_scale, styled),
      ...(preset.guidance_interval ? { guidanceInterval: preset.guidance_interval } : {}),
      seed: ext.seed,
      scheduler: ext.scheduler ?? (preset.scheduler as GenerateRequest['scheduler']),
    },
    output: {
      width: sizes.outWidth,
      height: sizes.outHeight,
      format: parsed.output_format,
      compression: parsed.output_compression,
      alpha,
    },
    effectiveSteps: steps,
    facts: { parsed, requestedSteps: steps, outputTokens },
  };
  return plan;
}

/** Turns a text-to-image plan into image-to-image (or inpainting, with a mask) at `strength`. */
export function withInitImage(
  plan: JobPlan,
  init: { image: RgbaImage; strength: number; mask?: Float32Array },
  overrides: Partial<Pick<GenerateRequest, 'prompt' | 'guidanceScale'>> = {},
): JobPlan {
  const steps = stepsForStrength(plan.request.numInferenceSteps, init.strength);
  return {
    ...plan,
    request: {
      ...plan.request,
      ...overrides,
      numInferenceSteps: steps.steps,
      initImage: init.image,
      strength: init.strength,
      ...(init.mask ? { mask: init.mask } : {}),
    },
    effectiveSteps: steps.effective,
  };
}

/** Steps after which partial images are decoded: evenly spaced, the last one before the final step. */
export function partialSteps(totalSteps: number, count: number): number[] {
  const steps = new Set<number>();
  for (let i = 1; i <= count; i++) steps.add(Math.max(0, Math.min(totalSteps - 2, Math.round((i * totalSteps) / (count + 1)) - 1)));
  return [...steps].sort((a, b) => a - b);
}

export type CostLimits = Pick<Config['limits'], 'maxSteps' | 'maxImageStepMegapixels' | 'maxPartialImages'>;

/**
 * The cost caps, in the order a client fixes them: partial images, steps, then images x steps x megapixels (the
 * steps that run, at the generation size). Throws a 400 naming the parameter and the limit's config key.
 */
export function checkCostCaps(limits: CostLimits, request: GenerateRequest, f: PlannedFacts): void {
  const { parsed } = f;
  if (parsed.partial_images > limits.maxPartialImages)
    throw overCap('partial_images', limits.maxPartialImages, parsed.partial_images, 'maxPartialImages');
  if (f.requestedSteps > limits.maxSteps) {
    if (parsed.extensions.num_inference_steps !== undefined)
      throw overCap('num_inference_steps', limits.maxSteps, f.requestedSteps, 'maxSteps');
    throw presetOverCap(parsed.resolved.quality, f.requestedSteps, limits.maxSteps);
  }
  const images = request.numImages ?? 1;
  const steps = stepsThatRun(request);
  const work = imageStepMegapixels(images, steps, request.width, request.height);
  if (work > limits.maxImageStepMegapixels)
    throw tooMuchWork(f, { images, steps, work, width: request.width, height: request.height }, limits);
}

/** OpenAI's integer-above-maximum 400, with the server's config key (OpenAI's own maximum may be higher). */
function overCap(param: string, max: number, got: number, key: string): ApiError {
  const base = integerAboveMax(param, max, got);
  return new ApiError({
    status: 400,
    message: base.message.replace(`<= ${max},`, `<= ${max} (this server's limits.${key}),`),
    param,
    code: base.code,
  });
}

/** (Easel wording) The model's own preset asks for more steps than the server allows: the client can pick a lower quality. */
function presetOverCap(quality: string, steps: number, max: number): ApiError {
  return new ApiError({
    status: 400,
    message: `Quality '${quality}' runs ${steps} steps on this model, above this server's limit of ${max} (limits.maxSteps). Ask for a lower quality or set num_inference_steps.`,
    param: 'quality',
    code: 'integer_above_max_value',
  });
}

/** (Easel wording) n x steps x megapixels over limits.maxImageStepMegapixels; names n when it asked for several images. */
function tooMuchWork(
  f: PlannedFacts,
  w: { images: number; steps: number; work: number; width: number; height: number },
  limits: CostLimits,
): ApiError {
  const { parsed } = f;
  const param = parsed.n > 1 ? 'n' : parsed.extensions.num_inference_steps !== undefined ? 'num_inference_steps' : 'size';
  const mp = ((w.width * w.height) / 1_000_000).toFixed(2);
  return new ApiError({
    status: 400,
    message:
      `Request too large: n=${w.images} x ${w.steps} steps x ${mp} megapixels (${parsed.resolved.size} is generated at ${w.width}x${w.height}) ` +
      `is ${round(w.work)} image-step-megapixels, above this server's limit of ${limits.maxImageStepMegapixels} (limits.maxImageStepMegapixels). ` +
      'Ask for fewer images (n), fewer steps (num_inference_steps or a lower quality) or a smaller size.',
    param,
    code: 'request_too_large',
  });
}

function round(v: number): string {
  return String(Math.round(v * 100) / 100);
}
