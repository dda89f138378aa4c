// Public types of the engine: what a caller asks for and what it gets back.
// Engine code is camelCase and knows nothing of HTTP or OpenAI's wire names.
import type { SchedulerName } from './schedulers/types.js';
import type { Tensor } from './tensor.js';

/** 8-bit RGBA pixels, straight (not premultiplied) alpha, row-major. */
export interface RgbaImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

export interface GenerateRequest {
  prompt: string;
  /**
   * Absent and "" differ, as in diffusers: SD 1.x/2.x encode "" either way, but SDXL models with
   * force_zeros_for_empty_prompt (model_index.json, the default) use zero unconditional embeddings only when it is absent.
   */
  negativePrompt?: string;
  /** Output size in pixels; both must be multiples of the model's `capabilities.sizeMultiple`. */
  width: number;
  height: number;
  /** Number of images (batched through the UNet together). */
  numImages?: number;
  numInferenceSteps: number;
  /** Classifier-free guidance scale; <= 1 skips the unconditional pass. */
  guidanceScale: number;
  /**
   * Guidance only at timesteps t with lo <= t <= hi (in the scheduler's training timesteps, 0..1000 for most
   * models); other steps run the conditional pass alone, at half the UNet cost. Kynkäänniemi et al. 2024
   * ("Applying Guidance in a Limited Interval Improves Sample and Distribution Quality in Diffusion Models"):
   * guidance at the noisiest steps mostly harms. Absent: guidance at every step.
   */
  guidanceInterval?: readonly [number, number];
  /** Seed for image 0; image i uses seed + i (mod 2^32). A random seed is drawn when absent. */
  seed?: number;
  /** Scheduler algorithm; the model's own scheduler config picks one when absent. */
  scheduler?: SchedulerName;
  /** Image-to-image: the starting image (resized to width x height by the caller). */
  initImage?: RgbaImage;
  /**
   * Image-to-image strength in (0, 1]: 1 ignores the init image, small values keep it. Default 0.8, or 1 with a mask
   * (diffusers' StableDiffusionImg2ImgPipeline and StableDiffusionInpaintPipeline defaults).
   */
  strength?: number;
  /**
   * Inpainting: per-pixel weights at width x height, 1 = repaint, 0 = keep the init image.
   * Requires initImage.
   */
  mask?: Float32Array;
}

export interface StepProgress {
  /** 0-based index of the step just finished, and the number of steps this generation runs. */
  step: number;
  totalSteps: number;
  timestep: number;
  /** The scheduler's estimate of the clean latents after this step, [n, C, h, w] (for previews). */
  predOriginalSample?: Tensor;
}

export interface GenerateOptions {
  onStep?(progress: StepProgress): void;
  /** Decode and report previews after these step indices (0-based), e.g. for streaming partial images. */
  previewSteps?: readonly number[];
  onPreview?(step: number, images: RgbaImage[]): void | Promise<void>;
  signal?: AbortSignal;
}

export interface GenerateResult {
  images: RgbaImage[];
  /** The seed of image 0 (image i used seed + i). */
  seed: number;
  timings: GenerateTimings;
}

export interface GenerateTimings {
  totalMs: number;
  textEncoderMs: number;
  denoiseMs: number;
  vaeMs: number;
  /** Sum of the raw session.run() times inside this generation. */
  sessionRunMs: number;
  /**
   * Images the UNet ran together: this request's n alone, or every image of the batch it shared (Pipeline.generateBatch),
   * whose stage times above are then those of the whole batch.
   */
  batchImages?: number;
}

export interface ModelCapabilities {
  /** Pixel size the model was trained at. */
  nativeWidth: number;
  nativeHeight: number;
  /** Sizes the model can produce directly (its easel.json may list several; otherwise the native one). */
  nativeSizes: ReadonlyArray<readonly [number, number]>;
  /**
   * Output sides must be multiples of this: the VAE scale factor times the UNet's total downsampling (64 for SD 1.x/2.x,
   * 32 for SDXL), read from vae_decoder/config.json and unet/config.json. Other sizes are refused.
   */
  sizeMultiple: number;
  /** The VAE decodes an alpha channel. */
  supportsAlpha: boolean;
  supportsImageToImage: boolean;
  /** The UNet takes mask + masked-image latents (9-channel inpainting model). */
  isInpaintModel: boolean;
  isSdxl: boolean;
  maxPromptTokens: number;
}

/** One request of a batch, with its own callbacks and abort signal. */
export interface BatchItem {
  req: GenerateRequest;
  opts?: GenerateOptions;
}

export interface Pipeline {
  readonly capabilities: ModelCapabilities;
  generate(req: GenerateRequest, opts?: GenerateOptions): Promise<GenerateResult>;
  /**
   * Runs requests together, sharing UNet calls among those with the same batchKeyOf(); the others run one after another.
   * One promise per item, in order, each settling on its own: an aborted item rejects with AbortError at once and its
   * rows leave the batch, the others go on. Image i of an item uses its seed + i, as alone.
   */
  generateBatch?(items: readonly BatchItem[]): Array<Promise<GenerateResult>>;
  dispose(): Promise<void>;
}

/**
 * Which requests can share UNet calls: text-to-image (no init image, no mask) of one size, step count, scheduler and
 * guidance on/off. Prompts, negative prompts, n, seeds, guidance scale and guidance interval may differ (they are per
 * row). Undefined: the request runs alone.
 */
export function batchKeyOf(req: GenerateRequest): string | undefined {
  if (req.initImage || req.mask) return undefined;
  return JSON.stringify([req.width, req.height, req.numInferenceSteps, req.scheduler ?? '', req.guidanceScale > 1]);
}

export class AbortError extends Error {
  override readonly name = 'AbortError';
  constructor(message = 'generation cancelled') {
    super(message);
  }
}
