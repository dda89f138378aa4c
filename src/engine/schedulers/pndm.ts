// PNDM (Liu et al. 2022, arXiv:2202.09778): Runge-Kutta warm-up steps, then a 4th-order linear multistep (PLMS).
// Port of diffusers src/diffusers/schedulers/scheduling_pndm.py (PNDMScheduler, v0.30); many SD 1.x exports ship it.

import type { Rng } from '../rng.js';
import { type Tensor, tensor } from '../tensor.js';
import {
  checkNumSteps,
  checkSameSize,
  checkStepIndex,
  linspace,
  makeAlphasCumprod,
  type Resolved,
  resolveConfig,
  roundHalfEven,
} from './common.js';
import { addNoiseVp } from './ddim.js';
import type { Scheduler, SchedulerConfig, StepResult } from './types.js';

/** PNDMScheduler.__init__ defaults. */
export const PNDM_DEFAULTS = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null as number[] | null,
  skip_prk_steps: false,
  set_alpha_to_one: false,
  prediction_type: 'epsilon',
  timestep_spacing: 'leading',
  steps_offset: 0,
};

/** pndm_order: the Runge-Kutta warm-up covers the last 4 base timesteps (the schedule's noisiest 4). */
const PNDM_ORDER = 4;

/**
 * PNDMScheduler._timesteps (ascending, integers) for each spacing: linspace rounded, leading with steps_offset,
 * trailing from np.arange(N, 0, -N / n) (the first n of its values, as everywhere in Easel).
 */
function baseTimesteps(cfg: Resolved<typeof PNDM_DEFAULTS>, n: number): number[] {
  const N = cfg.num_train_timesteps;
  switch (cfg.timestep_spacing) {
    case 'linspace':
      return [...linspace(0, N - 1, n)].map(roundHalfEven);
    case 'leading': {
      const ratio = Math.floor(N / n);
      return Array.from({ length: n }, (_, i) => i * ratio + cfg.steps_offset);
    }
    case 'trailing': {
      const ratio = N / n;
      return Array.from({ length: n }, (_, i) => roundHalfEven(N - i * ratio) - 1).reverse();
    }
    default:
      throw new Error(`timestep_spacing "${cfg.timestep_spacing}" is not supported (linspace, leading, trailing)`);
  }
}

export class PNDMScheduler implements Scheduler {
  readonly order = 1;
  readonly initNoiseSigma = 1;
  readonly config: Resolved<typeof PNDM_DEFAULTS>;
  readonly alphasCumprod: Float64Array;
  readonly finalAlphaCumprod: number;
  private _timesteps: Float32Array = new Float32Array(0);
  private prkCount = 0;
  private numInferenceSteps = 0;
  // Running state of PNDMScheduler: `counter` model calls so far, `ets` past model outputs, the Runge-Kutta sums.
  private counter = 0;
  private ets: Float64Array[] = [];
  private curModelOutput: Float64Array | undefined;
  private curSample: Float32Array | undefined;

  constructor(config: SchedulerConfig = {}) {
    this.config = resolveConfig(PNDM_DEFAULTS, config);
    const p = this.config.prediction_type;
    if (p !== 'epsilon' && p !== 'v_prediction') {
      throw new Error(`prediction_type "${p}" is not supported by PNDMScheduler (epsilon, v_prediction)`);
    }
    this.alphasCumprod = makeAlphasCumprod({ ...this.config, rescale_betas_zero_snr: false }, false);
    this.finalAlphaCumprod = this.config.set_alpha_to_one ? 1 : this.alphasCumprod[0];
  }

  get timesteps(): Float32Array {
    return this._timesteps;
  }

  /**
   * PNDMScheduler.set_timesteps. With skip_prk_steps the PLMS list repeats the second-to-last base timestep (n + 1
   * model calls for n steps, the second call a Heun-like correction). Without it, 12 Runge-Kutta calls over the last 4
   * base timesteps (each visited at t, t - ratio/2, t - ratio/2, t - ratio) come first, then PLMS over the rest.
   */
  setTimesteps(numInferenceSteps: number): void {
    const N = this.config.num_train_timesteps;
    checkNumSteps(numInferenceSteps, N);
    const base = baseTimesteps(this.config, numInferenceSteps);
    let prk: number[] = [];
    let plms: number[];
    if (this.config.skip_prk_steps) {
      plms = [...base.slice(0, -1), ...base.slice(-2, -1), ...base.slice(-1)].reverse();
    } else {
      if (numInferenceSteps < PNDM_ORDER) {
        throw new RangeError(`PNDM with Runge-Kutta steps (skip_prk_steps false) needs at least ${PNDM_ORDER} steps`);
      }
      const half = Math.floor(Math.floor(N / numInferenceSteps) / 2);
      const pairs = base.slice(-PNDM_ORDER).flatMap((t) => [t, t + half]);
      const doubled = pairs.slice(0, -1).flatMap((t) => [t, t]);
      prk = doubled.slice(1, -1).reverse();
      plms = base.slice(0, -3).reverse();
    }
    this.prkCount = prk.length;
    this._timesteps = Float32Array.from([...prk, ...plms]);
    this.numInferenceSteps = numInferenceSteps;
    this.counter = 0;
    this.ets = [];
    this.curModelOutput = undefined;
    this.curSample = undefined;
  }

  scaleModelInput(sample: Tensor, stepIndex: number): Tensor {
    checkStepIndex(stepIndex, this._timesteps.length);
    return sample;
  }

  /** PNDMScheduler.step: step_prk for the first prkCount calls of a schedule with PRK steps, step_plms after. */
  step(modelOutput: Tensor, stepIndex: number, sample: Tensor, _rng: Rng): StepResult {
    checkStepIndex(stepIndex, this._timesteps.length);
    checkSameSize(modelOutput, sample, 'step');
    const timestep = this._timesteps[stepIndex];
    const out = Float64Array.from(modelOutput.data);
    const prev =
      this.counter < this.prkCount && !this.config.skip_prk_steps
        ? this.stepPrk(out, timestep, sample.data)
        : this.stepPlms(out, timestep, sample.data);
    this.counter++;
    return { prevSample: tensor(prev, sample.dims) };
  }

  private get stepRatio(): number {
    return Math.floor(this.config.num_train_timesteps / this.numInferenceSteps);
  }

  /** PNDMScheduler.step_prk: classic RK4 weights 1/6, 1/3, 1/3, 1/6 over four model calls per base step. */
  private stepPrk(modelOutput: Float64Array, timestep: number, sample: Float32Array): Float32Array {
    const diffToPrev = this.counter % 2 ? 0 : Math.floor(this.stepRatio / 2);
    const prevTimestep = timestep - diffToPrev;
    const t = this._timesteps[Math.floor(this.counter / 4) * 4];
    const phase = this.counter % 4;
    let output = modelOutput;
    if (phase === 0) {
      this.curModelOutput = scaled(modelOutput, 1 / 6);
      this.ets.push(modelOutput);
      this.curSample = sample;
    } else if (phase === 1 || phase === 2) {
      addScaled(this.curModelOutput!, modelOutput, 1 / 3);
    } else {
      output = this.curModelOutput!;
      addScaled(output, modelOutput, 1 / 6);
      this.curModelOutput = undefined;
    }
    return this.prevSample(this.curSample ?? sample, t, prevTimestep, output);
  }

  /** PNDMScheduler.step_plms: Adams-Bashforth over the last 1-4 model outputs (Heun-like on the second call). */
  private stepPlms(modelOutput: Float64Array, timestep: number, sample: Float32Array): Float32Array {
    if (!this.config.skip_prk_steps && this.ets.length < 3) {
      throw new Error('PNDMScheduler: the PLMS steps can only run after the Runge-Kutta steps');
    }
    let t = timestep;
    let prevTimestep = timestep - this.stepRatio;
    if (this.counter !== 1) {
      this.ets = this.ets.slice(-3);
      this.ets.push(modelOutput);
    } else {
      prevTimestep = timestep;
      t = timestep + this.stepRatio;
    }
    const e = this.ets;
    const k = e.length;
    let output: Float64Array;
    let x = sample;
    if (k === 1 && this.counter === 0) {
      output = modelOutput;
      this.curSample = sample;
    } else if (k === 1 && this.counter === 1) {
      output = combine([modelOutput, e[0]], [1 / 2, 1 / 2]);
      x = this.curSample!;
      this.curSample = undefined;
    } else if (k === 2) {
      output = combine([e[1], e[0]], [3 / 2, -1 / 2]);
    } else if (k === 3) {
      output = combine([e[2], e[1], e[0]], [23 / 12, -16 / 12, 5 / 12]);
    } else {
      output = combine([e[3], e[2], e[1], e[0]], [55 / 24, -59 / 24, 37 / 24, -9 / 24]);
    }
    return this.prevSample(x, t, prevTimestep, output);
  }

  /**
   * PNDMScheduler._get_prev_sample, eq. 9 of the paper: x_{t-d} = sqrt(a_prev / a_t) x_t
   * - (a_prev - a_t) eps / (a_t sqrt(1 - a_prev) + sqrt(a_t (1 - a_t) a_prev)); v_prediction is turned into eps first.
   */
  private prevSample(sample: Float32Array, timestep: number, prevTimestep: number, modelOutput: Float64Array): Float32Array {
    const a = this.alphasCumprod[timestep];
    const aPrev = prevTimestep >= 0 ? this.alphasCumprod[prevTimestep] : this.finalAlphaCumprod;
    const b = 1 - a;
    const bPrev = 1 - aPrev;
    const sampleCoeff = Math.sqrt(aPrev / a);
    const denom = a * Math.sqrt(bPrev) + Math.sqrt(a * b * aPrev);
    const k = (aPrev - a) / denom;
    const v = this.config.prediction_type === 'v_prediction';
    const sa = Math.sqrt(a);
    const sb = Math.sqrt(b);
    const out = new Float32Array(sample.length);
    for (let i = 0; i < out.length; i++) {
      const eps = v ? sa * modelOutput[i] + sb * sample[i] : modelOutput[i];
      out[i] = sampleCoeff * sample[i] - k * eps;
    }
    return out;
  }

  addNoise(original: Tensor, noise: Tensor, stepIndex: number): Tensor {
    checkStepIndex(stepIndex, this._timesteps.length);
    return addNoiseVp(original, noise, this.alphasCumprod[this._timesteps[stepIndex]]);
  }
}

function scaled(x: Float64Array, k: number): Float64Array {
  return x.map((v) => v * k);
}

function addScaled(into: Float64Array, x: Float64Array, k: number): void {
  for (let i = 0; i < into.length; i++) into[i] += x[i] * k;
}

/** Σ weights[j] * parts[j], elementwise. */
function combine(parts: readonly Float64Array[], weights: readonly number[]): Float64Array {
  const out = new Float64Array(parts[0].length);
  for (const [j, p] of parts.entries()) addScaled(out, p, weights[j]);
  return out;
}
