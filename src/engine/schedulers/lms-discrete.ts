// Linear multistep (k-diffusion sample_lms): up to 4 past derivatives weighted by integrated Lagrange polynomials.
// Port of diffusers src/diffusers/schedulers/scheduling_lms_discrete.py (LMSDiscreteScheduler, v0.30), by step index.

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

/** LMSDiscreteScheduler.__init__ defaults. */
export const LMS_DEFAULTS = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null as number[] | null,
  use_karras_sigmas: false,
  prediction_type: 'epsilon',
  timestep_spacing: 'linspace',
  steps_offset: 0,
};

/** The `order` argument of LMSDiscreteScheduler.step, which the pipelines leave at its default. */
const LMS_ORDER = 4;

/** Coefficients of Π_k (x - r_k) in ascending powers. */
function polynomialFromRoots(roots: readonly number[]): number[] {
  let c = [1];
  for (const r of roots) {
    const next = new Array<number>(c.length + 1).fill(0);
    for (let i = 0; i < c.length; i++) {
      next[i + 1] += c[i];
      next[i] -= r * c[i];
    }
    c = next;
  }
  return c;
}

/** ∫_a^b Σ c_i x^i dx. */
function integratePolynomial(c: readonly number[], a: number, b: number): number {
  let s = 0;
  for (let i = 0; i < c.length; i++) s += (c[i] / (i + 1)) * (b ** (i + 1) - a ** (i + 1));
  return s;
}

export class LMSDiscreteScheduler implements Scheduler {
  readonly order = 1;
  readonly config: Resolved<typeof LMS_DEFAULTS>;
  readonly alphasCumprod: Float64Array;
  private readonly predictionType: PredictionType;
  private _timesteps: Float32Array = new Float32Array(0);
  private _sigmas: Float64Array = new Float64Array(0);
  /** (x - x0) / sigma of the last LMS_ORDER steps, oldest first. */
  private derivatives: Float64Array[] = [];

  constructor(config: SchedulerConfig = {}) {
    this.config = resolveConfig(LMS_DEFAULTS, config);
    this.predictionType = checkPredictionType(this.config.prediction_type);
    this.alphasCumprod = makeAlphasCumprod({ ...this.config, rescale_betas_zero_snr: false }, false);
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

  /**
   * LMSDiscreteScheduler.set_timesteps: the Euler schedule (spacing, sigmas interpolated linearly at the timesteps,
   * Karras sigmas on request, a final sigma of 0); diffusers stores the sigmas as float32, so they are rounded here too.
   */
  setTimesteps(numInferenceSteps: number): void {
    checkNumSteps(numInferenceSteps, this.config.num_train_timesteps);
    const { timesteps, sigmas } = eulerSchedule(
      {
        ...this.config,
        rescale_betas_zero_snr: false,
        interpolation_type: 'linear',
        final_sigmas_type: 'zero',
        sigma_min: null,
        sigma_max: null,
      },
      this.alphasCumprod,
      numInferenceSteps,
    );
    this._timesteps = timesteps;
    this._sigmas = sigmas.map(Math.fround);
    this.derivatives = [];
  }

  scaleModelInput(sample: Tensor, stepIndex: number): Tensor {
    checkStepIndex(stepIndex, this._timesteps.length);
    return scaleBySigma(sample, this._sigmas[stepIndex]);
  }

  /**
   * LMSDiscreteScheduler.get_lms_coefficient: ∫ over [sigma_t, sigma_{t+1}] of the Lagrange basis polynomial of
   * sigma_{t - current} through sigma_t .. sigma_{t - order + 1}. diffusers integrates it with scipy's quad, which is
   * exact for these polynomials of degree <= 3; here it is integrated in closed form.
   */
  lmsCoefficient(order: number, t: number, current: number): number {
    const s = this._sigmas;
    const roots: number[] = [];
    let denom = 1;
    for (let k = 0; k < order; k++) {
      if (k === current) continue;
      roots.push(s[t - k]);
      denom *= s[t - current] - s[t - k];
    }
    return integratePolynomial(polynomialFromRoots(roots), s[t], s[t + 1]) / denom;
  }

  /**
   * LMSDiscreteScheduler.step: derivative d = (x - x0) / sigma; x_next = x + Σ_j coeff_j d_{latest - j}. As in
   * diffusers, the order is min(stepIndex + 1, 4) even when fewer derivatives exist yet (image-to-image starts part-way),
   * and the coefficients are paired with the derivatives there are.
   */
  step(modelOutput: Tensor, stepIndex: number, sample: Tensor, _rng: Rng): StepResult {
    checkStepIndex(stepIndex, this._timesteps.length);
    checkSameSize(modelOutput, sample, 'step');
    const sigma = this._sigmas[stepIndex];
    const x = sample.data;
    const n = x.length;
    const x0 = predictX0Ve(this.predictionType, modelOutput.data, x, sigma, new Float64Array(n));
    const derivative = new Float64Array(n);
    for (let i = 0; i < n; i++) derivative[i] = (x[i] - x0[i]) / sigma;
    this.derivatives.push(derivative);
    if (this.derivatives.length > LMS_ORDER) this.derivatives.shift();

    const order = Math.min(stepIndex + 1, LMS_ORDER);
    const used = Math.min(order, this.derivatives.length);
    const prev = Float64Array.from(x);
    for (let j = 0; j < used; j++) {
      const coeff = this.lmsCoefficient(order, stepIndex, j);
      const d = this.derivatives[this.derivatives.length - 1 - j];
      for (let i = 0; i < n; i++) prev[i] += coeff * d[i];
    }
    return { prevSample: tensor(Float32Array.from(prev), sample.dims), predOriginalSample: tensor(Float32Array.from(x0), sample.dims) };
  }

  addNoise(original: Tensor, noise: Tensor, stepIndex: number): Tensor {
    checkStepIndex(stepIndex, this._timesteps.length);
    return addNoiseVe(original, noise, this._sigmas[stepIndex]);
  }
}
