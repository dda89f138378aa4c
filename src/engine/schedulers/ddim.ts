// DDIM (Song et al. 2020, arXiv:2010.02502, eq. 12 and 16): deterministic at eta = 0, the classic Stable Diffusion sampler.
// Port of diffusers src/diffusers/schedulers/scheduling_ddim.py (DDIMScheduler), stepping by index.

import type { Rng } from '../rng.js';
import { type Tensor, tensor } from '../tensor.js';
import {
  checkNumSteps,
  checkPredictionType,
  checkSameSize,
  checkStepIndex,
  clipSample,
  makeAlphasCumprod,
  type PredictionType,
  predictX0Vp,
  type Resolved,
  resolveConfig,
  spacedTimesteps,
  thresholdSample,
} from './common.js';
import type { Scheduler, SchedulerConfig, StepResult } from './types.js';

/** DDIMScheduler.__init__ defaults (plus `eta`, DDIM's step() argument, 0 unless the config sets it). */
export const DDIM_DEFAULTS = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null as number[] | null,
  clip_sample: true,
  set_alpha_to_one: true,
  steps_offset: 0,
  prediction_type: 'epsilon',
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  clip_sample_range: 1.0,
  sample_max_value: 1.0,
  timestep_spacing: 'leading',
  rescale_betas_zero_snr: false,
  eta: 0,
};

/** sqrt(a) * x0 + sqrt(1 - a) * noise: DDIMScheduler.add_noise (shared by DDIM and LCM). */
export function addNoiseVp(original: Tensor, noise: Tensor, alphaProd: number): Tensor {
  checkSameSize(original, noise, 'addNoise');
  const sa = Math.sqrt(alphaProd);
  const sb = Math.sqrt(1 - alphaProd);
  const a = original.data;
  const e = noise.data;
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = sa * a[i] + sb * e[i];
  return tensor(out, original.dims);
}

export class DDIMScheduler implements Scheduler {
  readonly order = 1;
  readonly initNoiseSigma = 1;
  readonly config: Resolved<typeof DDIM_DEFAULTS>;
  readonly alphasCumprod: Float64Array;
  /** alpha_bar used past the end of the schedule: 1 with set_alpha_to_one, else alphas_cumprod[0]. */
  readonly finalAlphaCumprod: number;
  private readonly predictionType: PredictionType;
  private _timesteps: Float32Array = new Float32Array(0);
  private numInferenceSteps = 0;

  constructor(config: SchedulerConfig = {}) {
    this.config = resolveConfig(DDIM_DEFAULTS, config);
    this.predictionType = checkPredictionType(this.config.prediction_type);
    this.alphasCumprod = makeAlphasCumprod(this.config, false);
    this.finalAlphaCumprod = this.config.set_alpha_to_one ? 1 : this.alphasCumprod[0];
  }

  get timesteps(): Float32Array {
    return this._timesteps;
  }

  /** DDIMScheduler.set_timesteps: integer timesteps (linspace rounded, leading + steps_offset, or trailing). */
  setTimesteps(numInferenceSteps: number): void {
    checkNumSteps(numInferenceSteps, this.config.num_train_timesteps);
    this.numInferenceSteps = numInferenceSteps;
    this._timesteps = Float32Array.from(
      spacedTimesteps(this.config.timestep_spacing, this.config.num_train_timesteps, numInferenceSteps, this.config.steps_offset, true),
    );
  }

  /**
   * The timestep DDIM steps to from `timestep`: t - N // n, as diffusers computes it for every spacing (so with
   * "linspace" or uneven "trailing" it need not be the next scheduled timestep; kept for output parity).
   */
  prevTimestep(timestep: number): number {
    return timestep - Math.floor(this.config.num_train_timesteps / this.numInferenceSteps);
  }

  private alphaAt(t: number): number {
    return t >= 0 ? this.alphasCumprod[t] : this.finalAlphaCumprod;
  }

  /** DDIMScheduler._get_variance: sigma_t^2 / eta^2 of eq. 16. */
  variance(timestep: number, prevTimestep: number): number {
    const a = this.alphasCumprod[timestep];
    const aPrev = this.alphaAt(prevTimestep);
    return ((1 - aPrev) / (1 - a)) * (1 - a / aPrev);
  }

  scaleModelInput(sample: Tensor, stepIndex: number): Tensor {
    checkStepIndex(stepIndex, this._timesteps.length);
    return sample;
  }

  /**
   * DDIMScheduler.step (use_clipped_model_output = false): x0 and eps from the model output, clip or threshold x0,
   * x_prev = sqrt(a_prev) x0 + sqrt(1 - a_prev - std^2) eps (+ std * noise when eta > 0), std = eta * sqrt(variance).
   */
  step(modelOutput: Tensor, stepIndex: number, sample: Tensor, rng: Rng): StepResult {
    checkStepIndex(stepIndex, this._timesteps.length);
    checkSameSize(modelOutput, sample, 'step');
    const t = this._timesteps[stepIndex];
    const tPrev = this.prevTimestep(t);
    const a = this.alphasCumprod[t];
    const aPrev = this.alphaAt(tPrev);
    const sa = Math.sqrt(a);
    const sb = Math.sqrt(1 - a);
    const x = sample.data;
    const m = modelOutput.data;
    const n = x.length;
    const x0 = predictX0Vp(this.predictionType, m, x, sa, sb, new Float64Array(n));
    // pred_epsilon is taken before clipping, as in diffusers.
    const eps = new Float64Array(n);
    if (this.predictionType === 'epsilon') for (let i = 0; i < n; i++) eps[i] = m[i];
    else if (this.predictionType === 'v_prediction') for (let i = 0; i < n; i++) eps[i] = sa * m[i] + sb * x[i];
    else for (let i = 0; i < n; i++) eps[i] = (x[i] - sa * x0[i]) / sb;

    if (this.config.thresholding) {
      thresholdSample(x0, sample.dims[0] ?? 1, this.config.dynamic_thresholding_ratio, this.config.sample_max_value);
    } else if (this.config.clip_sample) {
      clipSample(x0, this.config.clip_sample_range);
    }

    const eta = this.config.eta;
    const std = eta * Math.sqrt(this.variance(t, tPrev));
    const dirCoef = Math.sqrt(Math.max(1 - aPrev - std * std, 0));
    const saPrev = Math.sqrt(aPrev);
    const prev = new Float32Array(n);
    const pred = new Float32Array(n);
    if (eta > 0) {
      const noise = rng.fillNormal(new Float32Array(n));
      for (let i = 0; i < n; i++) {
        pred[i] = x0[i];
        prev[i] = saPrev * x0[i] + dirCoef * eps[i] + std * noise[i];
      }
    } else {
      for (let i = 0; i < n; i++) {
        pred[i] = x0[i];
        prev[i] = saPrev * x0[i] + dirCoef * eps[i];
      }
    }
    return { prevSample: tensor(prev, sample.dims), predOriginalSample: tensor(pred, sample.dims) };
  }

  addNoise(original: Tensor, noise: Tensor, stepIndex: number): Tensor {
    checkStepIndex(stepIndex, this._timesteps.length);
    return addNoiseVp(original, noise, this.alphasCumprod[this._timesteps[stepIndex]]);
  }
}
