// Latent Consistency Model sampler (Luo et al. 2023, arXiv:2310.04378): 1-8 steps for LCM-distilled models.
// Port of diffusers src/diffusers/schedulers/scheduling_lcm.py (LCMScheduler), stepping by index.

import type { Rng } from '../rng.js';
import { type Tensor, tensor } from '../tensor.js';
import {
  checkNumSteps,
  checkPredictionType,
  checkSameSize,
  checkStepIndex,
  clipSample,
  linspace,
  makeAlphasCumprod,
  type PredictionType,
  predictX0Vp,
  type Resolved,
  resolveConfig,
  thresholdSample,
} from './common.js';
import { addNoiseVp } from './ddim.js';
import type { Scheduler, SchedulerConfig, StepResult } from './types.js';

/** LCMScheduler.__init__ defaults. */
export const LCM_DEFAULTS = {
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  trained_betas: null as number[] | null,
  original_inference_steps: 50,
  clip_sample: false,
  clip_sample_range: 1.0,
  set_alpha_to_one: true,
  steps_offset: 0,
  prediction_type: 'epsilon',
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1.0,
  timestep_spacing: 'leading',
  timestep_scaling: 10.0,
  rescale_betas_zero_snr: false,
};

/** sigma_data of the consistency-model boundary conditions (LCMScheduler.get_scalings_for_boundary_condition_discrete). */
const SIGMA_DATA = 0.5;

export class LCMScheduler implements Scheduler {
  readonly order = 1;
  readonly initNoiseSigma = 1;
  readonly config: Resolved<typeof LCM_DEFAULTS>;
  readonly alphasCumprod: Float64Array;
  readonly finalAlphaCumprod: number;
  private readonly predictionType: PredictionType;
  private _timesteps: Float32Array = new Float32Array(0);

  constructor(config: SchedulerConfig = {}) {
    this.config = resolveConfig(LCM_DEFAULTS, config);
    this.predictionType = checkPredictionType(this.config.prediction_type);
    this.alphasCumprod = makeAlphasCumprod(this.config, false);
    this.finalAlphaCumprod = this.config.set_alpha_to_one ? 1 : this.alphasCumprod[0];
  }

  get timesteps(): Float32Array {
    return this._timesteps;
  }

  /**
   * LCMScheduler.set_timesteps (strength 1): the distillation schedule k, 2k, ... (k = N // original_inference_steps,
   * minus 1), reversed, sampled at floor(linspace(0, len, n, endpoint=False)).
   */
  setTimesteps(numInferenceSteps: number): void {
    const cfg = this.config;
    const N = cfg.num_train_timesteps;
    checkNumSteps(numInferenceSteps, N);
    const original = cfg.original_inference_steps;
    if (!Number.isInteger(original) || original < 1 || original > N) {
      throw new RangeError(`original_inference_steps ${original} must be an integer between 1 and ${N}`);
    }
    if (numInferenceSteps > original) {
      throw new RangeError(
        `number of inference steps ${numInferenceSteps} exceeds original_inference_steps ${original} of this LCM scheduler`,
      );
    }
    const k = Math.floor(N / original);
    const origin = new Float64Array(original);
    // lcm_origin_timesteps = arange(1, original + 1) * k - 1, reversed.
    for (let i = 0; i < original; i++) origin[i] = (original - i) * k - 1;
    // np.linspace(0, len, num=n, endpoint=False) == linspace(0, len, n + 1)[:n].
    const idx = linspace(0, original, numInferenceSteps + 1);
    const ts = new Float32Array(numInferenceSteps);
    for (let i = 0; i < numInferenceSteps; i++) ts[i] = origin[Math.floor(idx[i])];
    this._timesteps = ts;
  }

  scaleModelInput(sample: Tensor, stepIndex: number): Tensor {
    checkStepIndex(stepIndex, this._timesteps.length);
    return sample;
  }

  /**
   * LCMScheduler.step: x0 from the model output (clipped / thresholded), denoised = c_out * x0 + c_skip * x with the
   * boundary-condition scalings at t * timestep_scaling, then (except at the last step) re-noised to the next timestep:
   * x_prev = sqrt(a_prev) * denoised + sqrt(1 - a_prev) * noise. predOriginalSample is `denoised`.
   */
  step(modelOutput: Tensor, stepIndex: number, sample: Tensor, rng: Rng): StepResult {
    const cfg = this.config;
    const numSteps = this._timesteps.length;
    checkStepIndex(stepIndex, numSteps);
    checkSameSize(modelOutput, sample, 'step');
    const t = this._timesteps[stepIndex];
    const tPrev = stepIndex + 1 < numSteps ? this._timesteps[stepIndex + 1] : t;
    const a = this.alphasCumprod[t];
    const aPrev = tPrev >= 0 ? this.alphasCumprod[tPrev] : this.finalAlphaCumprod;

    const scaled = t * cfg.timestep_scaling;
    const cSkip = (SIGMA_DATA * SIGMA_DATA) / (scaled * scaled + SIGMA_DATA * SIGMA_DATA);
    const cOut = scaled / Math.sqrt(scaled * scaled + SIGMA_DATA * SIGMA_DATA);

    const x = sample.data;
    const n = x.length;
    const x0 = predictX0Vp(this.predictionType, modelOutput.data, x, Math.sqrt(a), Math.sqrt(1 - a), new Float64Array(n));
    if (cfg.thresholding) {
      thresholdSample(x0, sample.dims[0] ?? 1, cfg.dynamic_thresholding_ratio, cfg.sample_max_value);
    } else if (cfg.clip_sample) {
      clipSample(x0, cfg.clip_sample_range);
    }

    const denoised = new Float32Array(n);
    const prev = new Float32Array(n);
    if (stepIndex !== numSteps - 1) {
      const noise = rng.fillNormal(new Float32Array(n));
      const sa = Math.sqrt(aPrev);
      const sb = Math.sqrt(1 - aPrev);
      for (let i = 0; i < n; i++) {
        const d = cOut * x0[i] + cSkip * x[i];
        denoised[i] = d;
        prev[i] = sa * d + sb * noise[i];
      }
    } else {
      // No noise on the final step (and so none for one-step sampling).
      for (let i = 0; i < n; i++) {
        const d = cOut * x0[i] + cSkip * x[i];
        denoised[i] = d;
        prev[i] = d;
      }
    }
    return { prevSample: tensor(prev, sample.dims), predOriginalSample: tensor(denoised, sample.dims) };
  }

  addNoise(original: Tensor, noise: Tensor, stepIndex: number): Tensor {
    checkStepIndex(stepIndex, this._timesteps.length);
    return addNoiseVp(original, noise, this.alphasCumprod[this._timesteps[stepIndex]]);
  }
}
