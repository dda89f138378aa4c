// Euler sampler (Karras et al. 2022, Algorithm 2, without churn) over discrete timesteps: the engine's default scheduler.
// Port of diffusers src/diffusers/schedulers/scheduling_euler_discrete.py (EulerDiscreteScheduler), stepping by index.

import type { Rng } from '../rng.js';
import { type Tensor, tensor } from '../tensor.js';
import {
  type BetaConfig,
  checkNumSteps,
  checkPredictionType,
  checkSameSize,
  checkStepIndex,
  interpIndex,
  karrasSigmas,
  linspace,
  makeAlphasCumprod,
  type PredictionType,
  predictX0Ve,
  type Resolved,
  resolveConfig,
  sigmaToT,
  spacedTimesteps,
  trainingSigmas,
} from './common.js';
import type { Scheduler, SchedulerConfig, StepResult } from './types.js';

/** EulerDiscreteScheduler.__init__ defaults. */
export const EULER_DEFAULTS = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null as number[] | null,
  prediction_type: 'epsilon',
  interpolation_type: 'linear',
  use_karras_sigmas: false,
  sigma_min: null as number | null,
  sigma_max: null as number | null,
  timestep_spacing: 'linspace',
  timestep_type: 'discrete',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
  final_sigmas_type: 'zero',
};

export type SigmaScheduleConfig = BetaConfig & {
  interpolation_type: string;
  use_karras_sigmas: boolean;
  sigma_min: number | null;
  sigma_max: number | null;
  timestep_spacing: string;
  steps_offset: number;
  final_sigmas_type: string;
};

/**
 * Timesteps and sigmas (with the final sigma appended) for the Euler-family schedulers:
 * EulerDiscreteScheduler.set_timesteps (spacing, linear / log-linear interpolation, Karras sigmas, final_sigmas_type).
 */
export function eulerSchedule(
  cfg: SigmaScheduleConfig,
  alphasCumprod: Float64Array,
  numInferenceSteps: number,
): { timesteps: Float32Array; sigmas: Float64Array } {
  const n = numInferenceSteps;
  // numpy builds these in float64 and stores them as float32; the sigmas are interpolated at the float32 values.
  let timesteps = Float32Array.from(spacedTimesteps(cfg.timestep_spacing, cfg.num_train_timesteps, n, cfg.steps_offset, false));
  const train = trainingSigmas(alphasCumprod);
  const logSigmas = train.map(Math.log);
  let sigmas: Float64Array;
  if (cfg.interpolation_type === 'linear') {
    sigmas = new Float64Array(n);
    for (let i = 0; i < n; i++) sigmas[i] = interpIndex(timesteps[i], train);
  } else if (cfg.interpolation_type === 'log_linear') {
    // torch.linspace(log(sigma_max), log(sigma_min), n + 1).exp(), as diffusers writes it: n + 1 values for n steps, so
    // (with linear sigmas appended after them) the last step ends at the smallest training sigma, not at final_sigmas_type.
    const ls = linspace(Math.log(train[train.length - 1]), Math.log(train[0]), n + 1);
    sigmas = ls.map(Math.exp);
  } else {
    throw new Error(`interpolation_type "${cfg.interpolation_type}" is not supported (linear, log_linear)`);
  }
  if (cfg.use_karras_sigmas) {
    const sigmaMin = cfg.sigma_min ?? sigmas[n - 1];
    const sigmaMax = cfg.sigma_max ?? sigmas[0];
    sigmas = karrasSigmas(sigmaMin, sigmaMax, n);
    timesteps = new Float32Array(n);
    for (let i = 0; i < n; i++) timesteps[i] = sigmaToT(sigmas[i], logSigmas);
  }
  let sigmaLast: number;
  if (cfg.final_sigmas_type === 'zero') sigmaLast = 0;
  else if (cfg.final_sigmas_type === 'sigma_min') sigmaLast = train[0];
  else throw new Error(`final_sigmas_type "${cfg.final_sigmas_type}" is not supported (zero, sigma_min)`);
  const all = new Float64Array(n + 1);
  all.set(sigmas.subarray(0, n));
  all[n] = sigmas.length > n ? sigmas[n] : sigmaLast;
  return { timesteps, sigmas: all };
}

/** init_noise_sigma of the Euler family: max sigma, or sqrt(max^2 + 1) for "leading" spacing. */
export function eulerInitNoiseSigma(sigmas: Float64Array, spacing: string): number {
  let max = 0;
  for (const s of sigmas) if (s > max) max = s;
  return spacing === 'linspace' || spacing === 'trailing' ? max : Math.sqrt(max * max + 1);
}

/** x / sqrt(sigma^2 + 1): EulerDiscreteScheduler.scale_model_input. */
export function scaleBySigma(sample: Tensor, sigma: number): Tensor {
  const k = 1 / Math.sqrt(sigma * sigma + 1);
  const src = sample.data;
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i] * k;
  return tensor(out, sample.dims);
}

/** x0 + sigma * noise: EulerDiscreteScheduler.add_noise. */
export function addNoiseVe(original: Tensor, noise: Tensor, sigma: number): Tensor {
  checkSameSize(original, noise, 'addNoise');
  const a = original.data;
  const e = noise.data;
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] + sigma * e[i];
  return tensor(out, original.dims);
}

export class EulerDiscreteScheduler implements Scheduler {
  readonly order = 1;
  readonly config: Resolved<typeof EULER_DEFAULTS>;
  readonly alphasCumprod: Float64Array;
  private readonly predictionType: PredictionType;
  private _timesteps: Float32Array = new Float32Array(0);
  /** Sigma per step index, plus the final sigma (length steps + 1). */
  private _sigmas: Float64Array = new Float64Array(0);

  constructor(config: SchedulerConfig = {}) {
    this.config = resolveConfig(EULER_DEFAULTS, config);
    this.predictionType = checkPredictionType(this.config.prediction_type);
    if (this.config.timestep_type === 'continuous' && this.predictionType === 'v_prediction') {
      throw new Error('timestep_type "continuous" with v_prediction (EDM scalings) is not supported');
    }
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
    const { timesteps, sigmas } = eulerSchedule(this.config, this.alphasCumprod, numInferenceSteps);
    this._timesteps = timesteps;
    this._sigmas = sigmas;
  }

  scaleModelInput(sample: Tensor, stepIndex: number): Tensor {
    checkStepIndex(stepIndex, this._timesteps.length);
    return scaleBySigma(sample, this._sigmas[stepIndex]);
  }

  /**
   * EulerDiscreteScheduler.step with s_churn = 0 (so no noise is drawn): x0 from the model output, derivative
   * d = (x - x0) / sigma, x_next = x + d * (sigma_next - sigma).
   */
  step(modelOutput: Tensor, stepIndex: number, sample: Tensor, _rng: Rng): StepResult {
    checkStepIndex(stepIndex, this._timesteps.length);
    checkSameSize(modelOutput, sample, 'step');
    const sigma = this._sigmas[stepIndex];
    const dt = this._sigmas[stepIndex + 1] - sigma;
    const x = sample.data;
    const n = x.length;
    const x0 = predictX0Ve(this.predictionType, modelOutput.data, x, sigma, new Float64Array(n));
    const prev = new Float32Array(n);
    const pred = new Float32Array(n);
    const k = dt / sigma;
    for (let i = 0; i < n; i++) {
      const p = x0[i];
      pred[i] = p;
      prev[i] = x[i] + (x[i] - p) * k;
    }
    return { prevSample: tensor(prev, sample.dims), predOriginalSample: tensor(pred, sample.dims) };
  }

  addNoise(original: Tensor, noise: Tensor, stepIndex: number): Tensor {
    checkStepIndex(stepIndex, this._timesteps.length);
    return addNoiseVe(original, noise, this._sigmas[stepIndex]);
  }
}
