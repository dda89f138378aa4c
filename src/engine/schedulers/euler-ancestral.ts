// Euler ancestral sampler: an Euler step down to sigma_down, then fresh noise of size sigma_up (k-diffusion sample_euler_ancestral).
// Port of diffusers src/diffusers/schedulers/scheduling_euler_ancestral_discrete.py (EulerAncestralDiscreteScheduler).

import type { Rng } from '../rng.js';
import { type Tensor, tensor } from '../tensor.js';
import {
  checkNumSteps,
  checkPredictionType,
  checkSameSize,
  checkStepIndex,
  makeAlphasCumprod,
  type PredictionType,
  predictX0Ve,
  type Resolved,
  resolveConfig,
  trainingSigmas,
} from './common.js';
import { addNoiseVe, eulerInitNoiseSigma, eulerSchedule, scaleBySigma } from './euler-discrete.js';
import type { Scheduler, SchedulerConfig, StepResult } from './types.js';

/**
 * EulerAncestralDiscreteScheduler.__init__ defaults. diffusers' class has no Karras option; `use_karras_sigmas` (and
 * `sigma_min` / `sigma_max`) are an Easel extension that builds the sigmas exactly as EulerDiscreteScheduler does.
 */
export const EULER_ANCESTRAL_DEFAULTS = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null as number[] | null,
  prediction_type: 'epsilon',
  timestep_spacing: 'linspace',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
  use_karras_sigmas: false,
  sigma_min: null as number | null,
  sigma_max: null as number | null,
};

export class EulerAncestralDiscreteScheduler implements Scheduler {
  readonly order = 1;
  readonly config: Resolved<typeof EULER_ANCESTRAL_DEFAULTS>;
  readonly alphasCumprod: Float64Array;
  private readonly predictionType: PredictionType;
  private _timesteps: Float32Array = new Float32Array(0);
  private _sigmas: Float64Array = new Float64Array(0);

  constructor(config: SchedulerConfig = {}) {
    this.config = resolveConfig(EULER_ANCESTRAL_DEFAULTS, config);
    this.predictionType = checkPredictionType(this.config.prediction_type);
    this.alphasCumprod = makeAlphasCumprod(this.config, true);
  }

  get timesteps(): Float32Array {
    return this._timesteps;
  }

  get sigmas(): Float64Array {
    return this._sigmas;
  }

  get initNoiseSigma(): number {
    const sigmas = this._sigmas.length > 0 ? this._sigmas : trainingSigmas(this.alphasCumprod);
    return eulerInitNoiseSigma(sigmas, this.config.timestep_spacing);
  }

  setTimesteps(numInferenceSteps: number): void {
    checkNumSteps(numInferenceSteps, this.config.num_train_timesteps);
    // Same spacing and linear sigma interpolation as EulerAncestralDiscreteScheduler.set_timesteps; the last sigma is 0.
    const { timesteps, sigmas } = eulerSchedule(
      { ...this.config, interpolation_type: 'linear', final_sigmas_type: 'zero' },
      this.alphasCumprod,
      numInferenceSteps,
    );
    this._timesteps = timesteps;
    this._sigmas = sigmas;
  }

  scaleModelInput(sample: Tensor, stepIndex: number): Tensor {
    checkStepIndex(stepIndex, this._timesteps.length);
    return scaleBySigma(sample, this._sigmas[stepIndex]);
  }

  /**
   * sigma_up = sqrt(sigma_to^2 (sigma_from^2 - sigma_to^2) / sigma_from^2), sigma_down = sqrt(sigma_to^2 - sigma_up^2);
   * x_next = x + (x - x0) / sigma * (sigma_down - sigma) + noise * sigma_up. Noise is drawn at every step (as diffusers
   * does, though it is multiplied by 0 at the last one) so the Rng stream stays aligned with the step count.
   */
  step(modelOutput: Tensor, stepIndex: number, sample: Tensor, rng: Rng): StepResult {
    checkStepIndex(stepIndex, this._timesteps.length);
    checkSameSize(modelOutput, sample, 'step');
    const sigma = this._sigmas[stepIndex];
    const sigmaTo = this._sigmas[stepIndex + 1];
    const sigmaUp = Math.sqrt((sigmaTo * sigmaTo * (sigma * sigma - sigmaTo * sigmaTo)) / (sigma * sigma));
    const sigmaDown = Math.sqrt(Math.max(sigmaTo * sigmaTo - sigmaUp * sigmaUp, 0));
    const x = sample.data;
    const n = x.length;
    const x0 = predictX0Ve(this.predictionType, modelOutput.data, x, sigma, new Float64Array(n));
    const noise = rng.fillNormal(new Float32Array(n));
    const k = (sigmaDown - sigma) / sigma;
    const prev = new Float32Array(n);
    const pred = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const p = x0[i];
      pred[i] = p;
      prev[i] = x[i] + (x[i] - p) * k + noise[i] * sigmaUp;
    }
    return { prevSample: tensor(prev, sample.dims), predOriginalSample: tensor(pred, sample.dims) };
  }

  addNoise(original: Tensor, noise: Tensor, stepIndex: number): Tensor {
    checkStepIndex(stepIndex, this._timesteps.length);
    return addNoiseVe(original, noise, this._sigmas[stepIndex]);
  }
}
