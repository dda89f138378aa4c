// The one interface every scheduler implements, named after diffusers' SchedulerMixin so code reads beside it.
// A scheduler instance carries per-generation step state: make a new one for each generate() call.
import type { Rng } from '../rng.js';
import type { Tensor } from '../tensor.js';

/** scheduler/scheduler_config.json, with diffusers' snake_case keys. Unknown keys are ignored. */
export interface SchedulerConfig {
  _class_name?: string;
  num_train_timesteps?: number;
  beta_start?: number;
  beta_end?: number;
  beta_schedule?: 'linear' | 'scaled_linear' | 'squaredcos_cap_v2' | string;
  trained_betas?: number[] | null;
  prediction_type?: 'epsilon' | 'v_prediction' | 'sample' | string;
  timestep_spacing?: 'linspace' | 'leading' | 'trailing' | string;
  steps_offset?: number;
  use_karras_sigmas?: boolean;
  clip_sample?: boolean;
  clip_sample_range?: number;
  set_alpha_to_one?: boolean;
  thresholding?: boolean;
  rescale_betas_zero_snr?: boolean;
  interpolation_type?: string;
  timestep_type?: string;
  solver_order?: number;
  algorithm_type?: string;
  solver_type?: string;
  lower_order_final?: boolean;
  euler_at_final?: boolean;
  final_sigmas_type?: string;
  original_inference_steps?: number;
  timestep_scaling?: number;
  [key: string]: unknown;
}

export interface StepResult {
  prevSample: Tensor;
  /** The model's estimate of the clean sample x0 at this step (used for streaming previews). */
  predOriginalSample?: Tensor;
}

export interface Scheduler {
  /** Timesteps to feed the model, one per step index, after setTimesteps(). */
  readonly timesteps: Float32Array;
  /** Standard deviation of the initial noise (multiply unit Gaussian noise by this). */
  readonly initNoiseSigma: number;
  /** Number of model evaluations per step (1 for all schedulers here). */
  readonly order: number;
  setTimesteps(numInferenceSteps: number): void;
  /** Scales the denoising model input at this step (Euler-family divides by sqrt(sigma^2 + 1)). */
  scaleModelInput(sample: Tensor, stepIndex: number): Tensor;
  /** One reverse-diffusion step from step index `stepIndex` to the next. */
  step(modelOutput: Tensor, stepIndex: number, sample: Tensor, rng: Rng): StepResult;
  /** Noises a clean sample to the noise level of step index `stepIndex` (image-to-image, inpainting). */
  addNoise(original: Tensor, noise: Tensor, stepIndex: number): Tensor;
}

export type { SchedulerName } from './names.js';
