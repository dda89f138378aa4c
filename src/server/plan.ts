// Planning a request from the served model's ModelInfo (never from live sessions, so an API node can plan without
// ONNX Runtime): quality preset + extensions → steps/guidance/scheduler, size → native generation size,
// background → alpha, and image-to-image strength → the steps that really run.
import type { ParsedCommon } from '../contract/common.js';
import { transparentNotSupported } from '../contract/errors.js';
import { planSize, presetFor, stepsForStrength, styledGuidance, stylePreset } from '../engine/plan.js';
import type { GenerateRequest, RgbaImage } from '../engine/types.js';
import type { OutputPlan } from '../jobs/types.js';
import type { ServedModel } from './catalog.js';

export interface JobPlan {
  request: GenerateRequest;
  output: OutputPlan;
  /** Denoising steps that actually run (image-to-image runs fewer); partial images are spaced over these. */
  effectiveSteps: number;
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
  return {
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
  };
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
