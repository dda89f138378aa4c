// DPM-Solver++ multistep (Lu et al. 2022, arXiv:2211.01095): second order from the last two model outputs, good in ~20 steps.
// Port of diffusers src/diffusers/schedulers/scheduling_dpmsolver_multistep.py (DPMSolverMultistepScheduler), by step index.

import type { Rng } from '../rng.js';
import { type Tensor, tensor } from '../tensor.js';
import {
  checkNumSteps,
  checkPredictionType,
  checkSameSize,
  checkStepIndex,
  interpIndex,
  karrasSigmas,
  linspace,
  makeAlphasCumprod,
  type PredictionType,
  predictX0Vp,
  type Resolved,
  resolveConfig,
  roundHalfEven,
  sigmaToT,
  thresholdSample,
  trainingSigmas,
} from './common.js';
import type { Scheduler, SchedulerConfig, StepResult } from './types.js';

/** DPMSolverMultistepScheduler.__init__ defaults (the options Easel implements). */
export const DPM_DEFAULTS = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null as number[] | null,
  solver_order: 2,
  prediction_type: 'epsilon',
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1.0,
  algorithm_type: 'dpmsolver++',
  solver_type: 'midpoint',
  lower_order_final: true,
  euler_at_final: false,
  use_karras_sigmas: false,
  use_lu_lambdas: false,
  final_sigmas_type: 'zero',
  lambda_min_clipped: -Infinity,
  timestep_spacing: 'linspace',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
};

type Algorithm = 'dpmsolver++' | 'sde-dpmsolver++' | 'dpmsolver' | 'sde-dpmsolver';

/** VP coefficients for a k-diffusion sigma: alpha_t = 1 / sqrt(sigma^2 + 1), sigma_t = sigma * alpha_t. */
function alphaSigma(sigma: number): [number, number] {
  const alpha = 1 / Math.sqrt(sigma * sigma + 1);
  return [alpha, sigma * alpha];
}

/** lambda = log(alpha_t) - log(sigma_t) (half log-SNR); +Infinity at sigma = 0. */
function lambdaOf(sigma: number): number {
  const [a, s] = alphaSigma(sigma);
  return Math.log(a) - Math.log(s);
}

export class DPMSolverMultistepScheduler implements Scheduler {
  readonly order = 1;
  readonly initNoiseSigma = 1;
  readonly config: Resolved<typeof DPM_DEFAULTS>;
  readonly alphasCumprod: Float64Array;
  private readonly predictionType: PredictionType;
  private readonly algorithm: Algorithm;
  private _timesteps: Float32Array = new Float32Array(0);
  private _sigmas: Float64Array = new Float64Array(0);
  /** Converted model outputs of the last `solver_order` steps, oldest first (diffusers' `model_outputs`). */
  private modelOutputs: (Float64Array | null)[] = [];
  private lowerOrderNums = 0;

  constructor(config: SchedulerConfig = {}) {
    const cfg = resolveConfig(DPM_DEFAULTS, config);
    // diffusers maps the names of sibling solvers' options onto DPM-Solver's when a config is switched between them.
    if (cfg.algorithm_type === 'deis') cfg.algorithm_type = 'dpmsolver++';
    if (['logrho', 'bh1', 'bh2'].includes(cfg.solver_type)) cfg.solver_type = 'midpoint';
    this.config = cfg;
    this.predictionType = checkPredictionType(cfg.prediction_type);
    if (!['dpmsolver++', 'sde-dpmsolver++', 'dpmsolver', 'sde-dpmsolver'].includes(cfg.algorithm_type)) {
      throw new Error(`algorithm_type "${cfg.algorithm_type}" is not supported by DPMSolverMultistepScheduler`);
    }
    this.algorithm = cfg.algorithm_type as Algorithm;
    if (cfg.solver_type !== 'midpoint' && cfg.solver_type !== 'heun') {
      throw new Error(`solver_type "${cfg.solver_type}" is not supported (midpoint, heun)`);
    }
    if (![1, 2, 3].includes(cfg.solver_order)) throw new Error(`solver_order must be 1, 2 or 3, got ${cfg.solver_order}`);
    if (cfg.solver_order === 3 && this.algorithm === 'sde-dpmsolver') {
      throw new Error('solver_order 3 is not available for algorithm_type "sde-dpmsolver"');
    }
    if ((this.algorithm === 'dpmsolver' || this.algorithm === 'sde-dpmsolver') && cfg.final_sigmas_type === 'zero') {
      throw new Error(`final_sigmas_type "zero" is not supported for algorithm_type "${this.algorithm}"; use "sigma_min"`);
    }
    if (cfg.final_sigmas_type !== 'zero' && cfg.final_sigmas_type !== 'sigma_min') {
      throw new Error(`final_sigmas_type "${cfg.final_sigmas_type}" is not supported (zero, sigma_min)`);
    }
    this.alphasCumprod = makeAlphasCumprod(cfg, true);
  }

  get timesteps(): Float32Array {
    return this._timesteps;
  }

  get sigmas(): Float64Array {
    return this._sigmas;
  }

  /** DPMSolverMultistepScheduler.set_timesteps: integer timesteps, sigmas interpolated (or Karras / Lu), final sigma. */
  setTimesteps(numInferenceSteps: number): void {
    const cfg = this.config;
    const N = cfg.num_train_timesteps;
    const n = numInferenceSteps;
    checkNumSteps(n, N);
    const train = trainingSigmas(this.alphasCumprod);
    const logSigmas = train.map(Math.log);

    // Clip the smallest lambda(t) (important for squaredcos_cap_v2): searchsorted over the ascending flipped lambdas.
    let clippedIdx = 0;
    for (let t = N - 1; t >= 0; t--) {
      const a = this.alphasCumprod[t];
      const lambda = Math.log(Math.sqrt(a)) - Math.log(Math.sqrt(1 - a));
      if (lambda < cfg.lambda_min_clipped) clippedIdx++;
      else break;
    }
    const lastTimestep = N - clippedIdx;

    let timesteps = new Float64Array(n);
    if (cfg.timestep_spacing === 'linspace') {
      const ls = linspace(0, lastTimestep - 1, n + 1);
      for (let i = 0; i < n; i++) timesteps[i] = roundHalfEven(ls[n - i]);
    } else if (cfg.timestep_spacing === 'leading') {
      const ratio = Math.floor(lastTimestep / (n + 1));
      for (let i = 0; i < n; i++) timesteps[i] = (n - i) * ratio + cfg.steps_offset;
    } else if (cfg.timestep_spacing === 'trailing') {
      // np.arange(last_timestep, 0, -N / n): fewer than n values when lambda_min_clipped lowered last_timestep.
      const ratio = N / n;
      const values: number[] = [];
      for (let i = 0; i < n && lastTimestep - i * ratio > 0; i++) values.push(roundHalfEven(lastTimestep - i * ratio) - 1);
      timesteps = Float64Array.from(values);
    } else {
      throw new Error(`timestep_spacing "${cfg.timestep_spacing}" is not supported (linspace, leading, trailing)`);
    }

    let sigmas: Float64Array;
    const roundTimesteps = cfg.beta_schedule !== 'squaredcos_cap_v2';
    if (cfg.use_karras_sigmas) {
      // in_sigmas is the flipped training schedule: sigma_min = train[0], sigma_max = train[N - 1].
      sigmas = karrasSigmas(train[0], train[train.length - 1], n);
      timesteps = sigmas.map((s) => {
        const t = sigmaToT(s, logSigmas);
        return roundTimesteps ? roundHalfEven(t) : t;
      });
    } else if (cfg.use_lu_lambdas) {
      // _convert_to_lu with rho = 1 on the flipped log-sigmas: log-sigma linear from max to min.
      const ls = linspace(logSigmas[logSigmas.length - 1], logSigmas[0], n);
      sigmas = ls.map(Math.exp);
      timesteps = sigmas.map((s) => {
        const t = sigmaToT(s, logSigmas);
        return roundTimesteps ? roundHalfEven(t) : t;
      });
    } else {
      sigmas = timesteps.map((t) => interpIndex(t, train));
    }
    const steps = timesteps.length;
    const all = new Float64Array(steps + 1);
    all.set(sigmas);
    all[steps] = cfg.final_sigmas_type === 'zero' ? 0 : train[0];

    // diffusers stores the timesteps as int64 (truncating the unrounded cosine-schedule ones).
    this._timesteps = Float32Array.from(timesteps, (t) => Math.trunc(t));
    this._sigmas = all;
    this.modelOutputs = new Array<Float64Array | null>(cfg.solver_order).fill(null);
    this.lowerOrderNums = 0;
  }

  scaleModelInput(sample: Tensor, stepIndex: number): Tensor {
    checkStepIndex(stepIndex, this._timesteps.length);
    return sample;
  }

  /**
   * DPMSolverMultistepScheduler.convert_model_output: the data prediction x0 for the "++" algorithms, the noise
   * prediction eps for the others (with thresholding applied to x0 in both cases). Also returns x0 for previews.
   */
  private convert(modelOutput: Float32Array, sample: Float32Array, sigma: number, batch: number): [Float64Array, Float64Array] {
    const [alpha, sigmaT] = alphaSigma(sigma);
    const n = sample.length;
    const x0 = predictX0Vp(this.predictionType, modelOutput, sample, alpha, sigmaT, new Float64Array(n));
    const cfg = this.config;
    if (cfg.thresholding) thresholdSample(x0, batch, cfg.dynamic_thresholding_ratio, cfg.sample_max_value);
    if (this.algorithm === 'dpmsolver++' || this.algorithm === 'sde-dpmsolver++') return [x0, x0];
    const eps = new Float64Array(n);
    if (this.predictionType === 'epsilon' && !cfg.thresholding) {
      for (let i = 0; i < n; i++) eps[i] = modelOutput[i];
    } else {
      // eps = (x - alpha * x0) / sigma_t: equal to diffusers' per-type formulas, and the thresholded form when enabled.
      for (let i = 0; i < n; i++) eps[i] = (sample[i] - alpha * x0[i]) / sigmaT;
    }
    return [eps, x0];
  }

  /**
   * One multistep update. With D0, D1, D2 the divided differences of the stored outputs (r0 = h_0 / h, r1 = h_1 / h),
   * each algorithm's x_t = cx * x + c0 * D0 + c1 * D1 + c2 * D2 + cn * noise (dpm_solver_first_order_update,
   * multistep_dpm_solver_second_order_update, multistep_dpm_solver_third_order_update); the D terms are expanded into
   * weights on the raw outputs m0, m1, m2 so the element loop is one fused pass.
   */
  step(modelOutput: Tensor, stepIndex: number, sample: Tensor, rng: Rng): StepResult {
    const cfg = this.config;
    const numSteps = this._timesteps.length;
    checkStepIndex(stepIndex, numSteps);
    checkSameSize(modelOutput, sample, 'step');
    const x = sample.data;
    const n = x.length;

    const isLast = stepIndex === numSteps - 1;
    const lowerOrderFinal = isLast && (cfg.euler_at_final || (cfg.lower_order_final && numSteps < 15) || cfg.final_sigmas_type === 'zero');
    const lowerOrderSecond = stepIndex === numSteps - 2 && cfg.lower_order_final && numSteps < 15;

    const sigmas = this._sigmas;
    const [converted, x0] = this.convert(modelOutput.data, x, sigmas[stepIndex], sample.dims[0] ?? 1);
    const outs = this.modelOutputs;
    for (let i = 0; i < outs.length - 1; i++) outs[i] = outs[i + 1];
    outs[outs.length - 1] = converted;

    let order: 1 | 2 | 3;
    if (cfg.solver_order === 1 || this.lowerOrderNums < 1 || lowerOrderFinal) order = 1;
    else if (cfg.solver_order === 2 || this.lowerOrderNums < 2 || lowerOrderSecond) order = 2;
    else order = 3;
    // Safety for callers that start mid-schedule at index 0 of a history: never reach before the schedule.
    if (order > stepIndex + 1) order = (stepIndex + 1) as 1 | 2 | 3;

    const [alphaT, sigmaT] = alphaSigma(sigmas[stepIndex + 1]);
    const [alphaS0, sigmaS0] = alphaSigma(sigmas[stepIndex]);
    const lambdaT = lambdaOf(sigmas[stepIndex + 1]);
    const lambdaS0 = lambdaOf(sigmas[stepIndex]);
    const h = lambdaT - lambdaS0;
    const em = Math.exp(-h); // e^{-h}
    const ep = Math.exp(h); // e^{h}
    const e2 = Math.exp(-2 * h); // e^{-2h}
    const midpoint = cfg.solver_type === 'midpoint';

    let cx: number;
    let c0: number;
    let c1 = 0;
    let c2 = 0;
    let cn = 0;
    switch (this.algorithm) {
      case 'dpmsolver++':
        cx = sigmaT / sigmaS0;
        c0 = -alphaT * (em - 1);
        if (order === 2) c1 = midpoint ? -0.5 * alphaT * (em - 1) : alphaT * ((em - 1) / h + 1);
        if (order === 3) {
          c1 = alphaT * ((em - 1) / h + 1);
          c2 = -alphaT * ((em - 1 + h) / (h * h) - 0.5);
        }
        break;
      case 'sde-dpmsolver++':
        cx = (sigmaT / sigmaS0) * em;
        c0 = alphaT * (1 - e2);
        if (order === 2) c1 = midpoint ? 0.5 * alphaT * (1 - e2) : alphaT * ((1 - e2) / (-2 * h) + 1);
        if (order === 3) {
          c1 = alphaT * ((1 - e2) / (-2 * h) + 1);
          c2 = alphaT * ((1 - e2 - 2 * h) / (2 * h) ** 2 - 0.5);
        }
        cn = sigmaT * Math.sqrt(1 - e2);
        break;
      case 'dpmsolver':
        cx = alphaT / alphaS0;
        c0 = -sigmaT * (ep - 1);
        if (order === 2) c1 = midpoint ? -0.5 * sigmaT * (ep - 1) : -sigmaT * ((ep - 1) / h - 1);
        if (order === 3) {
          c1 = -sigmaT * ((ep - 1) / h - 1);
          c2 = -sigmaT * ((ep - 1 - h) / (h * h) - 0.5);
        }
        break;
      case 'sde-dpmsolver':
        cx = alphaT / alphaS0;
        c0 = -2 * sigmaT * (ep - 1);
        if (order === 2) c1 = midpoint ? -sigmaT * (ep - 1) : -2 * sigmaT * ((ep - 1) / h - 1);
        cn = sigmaT * Math.sqrt(Math.exp(2 * h) - 1);
        break;
    }

    // Weights on m0 (newest), m1, m2.
    let w0 = c0;
    let w1 = 0;
    let w2 = 0;
    if (order >= 2) {
      const lambdaS1 = lambdaOf(sigmas[stepIndex - 1]);
      const r0 = (lambdaS0 - lambdaS1) / h;
      if (order === 2) {
        // D1 = (m0 - m1) / r0
        w0 += c1 / r0;
        w1 -= c1 / r0;
      } else {
        const lambdaS2 = lambdaOf(sigmas[stepIndex - 2]);
        const r1 = (lambdaS1 - lambdaS2) / h;
        // D1_0 = (m0 - m1) / r0, D1_1 = (m1 - m2) / r1; D1 = D1_0 + r0 / (r0 + r1) (D1_0 - D1_1); D2 = (D1_0 - D1_1) / (r0 + r1)
        const q = r0 / (r0 + r1);
        const p = 1 / (r0 + r1);
        const k0 = c1 * (1 + q) + c2 * p; // weight on D1_0
        const k1 = -c1 * q - c2 * p; // weight on D1_1
        w0 += k0 / r0;
        w1 += -k0 / r0 + k1 / r1;
        w2 += -k1 / r1;
      }
    }

    const m0 = outs[outs.length - 1] as Float64Array;
    const m1 = order >= 2 ? (outs[outs.length - 2] as Float64Array) : m0;
    const m2 = order >= 3 ? (outs[outs.length - 3] as Float64Array) : m0;
    const prev = new Float32Array(n);
    if (cn !== 0 || this.algorithm.startsWith('sde')) {
      const noise = rng.fillNormal(new Float32Array(n));
      for (let i = 0; i < n; i++) prev[i] = cx * x[i] + w0 * m0[i] + w1 * m1[i] + w2 * m2[i] + cn * noise[i];
    } else if (order === 1) {
      for (let i = 0; i < n; i++) prev[i] = cx * x[i] + w0 * m0[i];
    } else {
      for (let i = 0; i < n; i++) prev[i] = cx * x[i] + w0 * m0[i] + w1 * m1[i] + w2 * m2[i];
    }

    if (this.lowerOrderNums < cfg.solver_order) this.lowerOrderNums++;
    return { prevSample: tensor(prev, sample.dims), predOriginalSample: tensor(Float32Array.from(x0), sample.dims) };
  }

  /** alpha_t * x0 + sigma_t * noise at this step's sigma: DPMSolverMultistepScheduler.add_noise. */
  addNoise(original: Tensor, noise: Tensor, stepIndex: number): Tensor {
    checkStepIndex(stepIndex, this._timesteps.length);
    checkSameSize(original, noise, 'addNoise');
    const [alpha, sigma] = alphaSigma(this._sigmas[stepIndex]);
    const a = original.data;
    const e = noise.data;
    const out = new Float32Array(a.length);
    for (let i = 0; i < a.length; i++) out[i] = alpha * a[i] + sigma * e[i];
    return tensor(out, original.dims);
  }
}
