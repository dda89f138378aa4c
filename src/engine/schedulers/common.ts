// Shared maths for the schedulers: beta schedules, timestep spacing, sigma conversions and model-output parameterisations.
// Each helper names the diffusers function it follows (huggingface/diffusers, src/diffusers/schedulers/), computed in float64.
import type { Tensor } from '../tensor.js';
import type { SchedulerConfig } from './types.js';

/** Keys of a scheduler config, resolved against a class's defaults (diffusers `register_to_config` semantics). */
export type Resolved<T> = { -readonly [K in keyof T]-?: T[K] };

/**
 * Fills the defaults of a scheduler class with the values present in `config`: like diffusers' `from_config`, a key that is
 * absent (or JSON null, diffusers' `None`) takes the class default; unknown keys are ignored.
 */
export function resolveConfig<T extends object>(defaults: T, config: SchedulerConfig): Resolved<T> {
  const out = { ...defaults } as Record<string, unknown>;
  for (const key of Object.keys(defaults)) {
    const value = (config as Record<string, unknown>)[key];
    if (value !== undefined && value !== null) out[key] = value;
  }
  return out as Resolved<T>;
}

/** The config keys every scheduler here shares, with the values diffusers uses as defaults for most classes. */
export interface BetaConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: string;
  trained_betas: number[] | null;
  rescale_betas_zero_snr: boolean;
}

/**
 * numpy.linspace(start, stop, num): `start + i * ((stop - start) / (num - 1))`, last element exactly `stop`
 * (numpy/core/function_base.py), so rounding matches the reference schedules.
 */
export function linspace(start: number, stop: number, num: number): Float64Array {
  const out = new Float64Array(num);
  if (num === 1) {
    out[0] = start;
    return out;
  }
  const step = (stop - start) / (num - 1);
  for (let i = 0; i < num; i++) out[i] = start + i * step;
  out[num - 1] = stop;
  return out;
}

/** numpy's `round` (round half to even), which the diffusers timestep schedules use. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round rounds .5 up; numpy rounds .5 to the even neighbour.
  if (Math.abs(x % 1) === 0.5 && r % 2 !== 0) return r - 1;
  return r;
}

/**
 * Betas for a cosine alpha-bar ("squaredcos_cap_v2", Nichol & Dhariwal 2021):
 * diffusers scheduling_ddpm.py `betas_for_alpha_bar(num_diffusion_timesteps, max_beta=0.999)`.
 */
export function betasForAlphaBar(numDiffusionTimesteps: number, maxBeta = 0.999): Float64Array {
  const alphaBar = (t: number): number => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
  const betas = new Float64Array(numDiffusionTimesteps);
  for (let i = 0; i < numDiffusionTimesteps; i++) {
    const t1 = i / numDiffusionTimesteps;
    const t2 = (i + 1) / numDiffusionTimesteps;
    betas[i] = Math.min(1 - alphaBar(t2) / alphaBar(t1), maxBeta);
  }
  return betas;
}

/**
 * Rescales betas to zero terminal SNR (Lin et al. 2023, arXiv:2305.08891, Algorithm 1):
 * diffusers scheduling_ddim.py `rescale_zero_terminal_snr`.
 */
export function rescaleZeroTerminalSnr(betas: Float64Array): Float64Array {
  const n = betas.length;
  const sqrtBar = new Float64Array(n);
  let cum = 1;
  for (let i = 0; i < n; i++) {
    cum *= 1 - betas[i];
    sqrtBar[i] = Math.sqrt(cum);
  }
  const first = sqrtBar[0];
  const last = sqrtBar[n - 1];
  const scale = first / (first - last);
  for (let i = 0; i < n; i++) sqrtBar[i] = (sqrtBar[i] - last) * scale;
  const out = new Float64Array(n);
  let prevBar = 1;
  for (let i = 0; i < n; i++) {
    const bar = sqrtBar[i] * sqrtBar[i];
    out[i] = 1 - (i === 0 ? bar : bar / prevBar);
    prevBar = bar;
  }
  return out;
}

/** Betas from `trained_betas` or `beta_schedule` (the constructor of every diffusers scheduler used here). */
export function makeBetas(cfg: BetaConfig): Float64Array {
  if (cfg.trained_betas && cfg.trained_betas.length > 0) {
    return Float64Array.from(cfg.trained_betas);
  }
  const n = cfg.num_train_timesteps;
  if (!Number.isInteger(n) || n < 2) throw new Error(`num_train_timesteps must be an integer >= 2, got ${n}`);
  switch (cfg.beta_schedule) {
    case 'linear':
      return linspace(cfg.beta_start, cfg.beta_end, n);
    case 'scaled_linear': {
      // "very specific to the latent diffusion model": linear in sqrt(beta), then squared.
      const b = linspace(Math.sqrt(cfg.beta_start), Math.sqrt(cfg.beta_end), n);
      for (let i = 0; i < n; i++) b[i] *= b[i];
      return b;
    }
    case 'squaredcos_cap_v2':
      return betasForAlphaBar(n);
    default:
      throw new Error(`beta_schedule "${cfg.beta_schedule}" is not supported (linear, scaled_linear, squaredcos_cap_v2)`);
  }
}

/**
 * alphas_cumprod = cumprod(1 - betas), after the optional zero-terminal-SNR rescale. `zeroSnrFloor` mirrors the sigma-based
 * schedulers (Euler, Euler ancestral, DPM-Solver), which set the last value to 2**-24 "so first sigma is not inf".
 */
export function makeAlphasCumprod(cfg: BetaConfig, zeroSnrFloor: boolean): Float64Array {
  // A scheduler is made per generation; the schedule depends only on these fields, so compute it once.
  const key = JSON.stringify([
    cfg.num_train_timesteps,
    cfg.beta_start,
    cfg.beta_end,
    cfg.beta_schedule,
    cfg.trained_betas,
    cfg.rescale_betas_zero_snr,
    zeroSnrFloor,
  ]);
  let cached = alphasCache.get(key);
  if (!cached) {
    cached = computeAlphasCumprod(cfg, zeroSnrFloor);
    if (alphasCache.size > 32) alphasCache.clear();
    alphasCache.set(key, cached);
  }
  return cached.slice();
}

const alphasCache = new Map<string, Float64Array>();

function computeAlphasCumprod(cfg: BetaConfig, zeroSnrFloor: boolean): Float64Array {
  let betas = makeBetas(cfg);
  if (cfg.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
  const out = new Float64Array(betas.length);
  let cum = 1;
  for (let i = 0; i < betas.length; i++) {
    cum *= 1 - betas[i];
    out[i] = cum;
  }
  if (cfg.rescale_betas_zero_snr && zeroSnrFloor) out[out.length - 1] = 2 ** -24;
  return out;
}

/** Training sigmas sqrt((1 - alpha_bar) / alpha_bar), indexed by training timestep (ascending noise). */
export function trainingSigmas(alphasCumprod: Float64Array): Float64Array {
  const out = new Float64Array(alphasCumprod.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.sqrt((1 - alphasCumprod[i]) / alphasCumprod[i]);
  return out;
}

export type TimestepSpacing = 'linspace' | 'leading' | 'trailing';

/**
 * Inference timesteps, descending, as the Euler-family `set_timesteps` computes them (Table 2 of arXiv:2305.08891):
 * - linspace: linspace(0, N - 1, n) reversed, not rounded (DDIM rounds: pass `round`);
 * - leading:  arange(n) * (N // n), reversed, + steps_offset;
 * - trailing: round(arange(N, 0, -N / n)) - 1.
 * diffusers' trailing uses np.arange with a float step, which for some n (e.g. N=1000, n=61) yields n + 1 values;
 * we take exactly n (the first n of numpy's), so the number of steps is always the one asked for.
 */
export function spacedTimesteps(
  spacing: string,
  numTrainTimesteps: number,
  numInferenceSteps: number,
  stepsOffset: number,
  round: boolean,
): Float64Array {
  const N = numTrainTimesteps;
  const n = numInferenceSteps;
  const out = new Float64Array(n);
  switch (spacing) {
    case 'linspace': {
      const ls = linspace(0, N - 1, n);
      for (let i = 0; i < n; i++) out[i] = round ? roundHalfEven(ls[n - 1 - i]) : ls[n - 1 - i];
      return out;
    }
    case 'leading': {
      const ratio = Math.floor(N / n);
      for (let i = 0; i < n; i++) out[i] = (n - 1 - i) * ratio + stepsOffset;
      return out;
    }
    case 'trailing': {
      const ratio = N / n;
      for (let i = 0; i < n; i++) out[i] = roundHalfEven(N - i * ratio) - 1;
      return out;
    }
    default:
      throw new Error(`timestep_spacing "${spacing}" is not supported (linspace, leading, trailing)`);
  }
}

/** numpy.interp(x, arange(len(fp)), fp), clamped at the ends like numpy. */
export function interpIndex(x: number, fp: Float64Array): number {
  const last = fp.length - 1;
  if (x <= 0) return fp[0];
  if (x >= last) return fp[last];
  const j = Math.floor(x);
  const f = x - j;
  return f === 0 ? fp[j] : fp[j] + f * (fp[j + 1] - fp[j]);
}

/**
 * Karras et al. 2022 (arXiv:2206.00364, eq. 5) noise levels with rho = 7, from sigma_max down to sigma_min:
 * diffusers `_convert_to_karras` (after k-diffusion `get_sigmas_karras`).
 */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, numInferenceSteps: number, rho = 7): Float64Array {
  const ramp = linspace(0, 1, numInferenceSteps);
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  const out = new Float64Array(numInferenceSteps);
  for (let i = 0; i < numInferenceSteps; i++) out[i] = (maxInv + ramp[i] * (minInv - maxInv)) ** rho;
  return out;
}

/**
 * The (fractional) training timestep whose sigma is `sigma`, interpolating linearly in log-sigma:
 * diffusers EulerDiscreteScheduler `_sigma_to_t`. `logSigmas` is log(trainingSigmas), ascending.
 */
export function sigmaToT(sigma: number, logSigmas: Float64Array): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  const n = logSigmas.length;
  // Index of the last log-sigma <= logSigma (0 when none), clipped to n - 2.
  let low = 0;
  for (let i = 0; i < n; i++) if (logSigma - logSigmas[i] >= 0) low = i;
  if (low > n - 2) low = n - 2;
  const high = low + 1;
  const lo = logSigmas[low];
  const hi = logSigmas[high];
  let w = (lo - logSigma) / (lo - hi);
  if (!(w >= 0)) w = 0;
  if (w > 1) w = 1;
  return (1 - w) * low + w * high;
}

/** Output of the model, read according to `prediction_type`. */
export type PredictionType = 'epsilon' | 'v_prediction' | 'sample';

export function checkPredictionType(p: string): PredictionType {
  if (p === 'epsilon' || p === 'v_prediction' || p === 'sample') return p;
  throw new Error(`prediction_type "${p}" is not supported (epsilon, v_prediction, sample)`);
}

/**
 * x0 from a variance-preserving sample x_t = alpha * x0 + sigma * eps (alpha^2 + sigma^2 = 1), per prediction_type
 * (DDIM step 3, DPM-Solver `convert_model_output`, LCM step 4):
 *   epsilon:      x0 = (x_t - sigma * eps) / alpha
 *   v_prediction: x0 = alpha * x_t - sigma * v
 *   sample:       x0 = model output
 * Writes into `out` (float64) and returns it.
 */
export function predictX0Vp(
  predictionType: PredictionType,
  modelOutput: Float32Array,
  sample: Float32Array,
  alpha: number,
  sigma: number,
  out: Float64Array,
): Float64Array {
  const n = out.length;
  if (predictionType === 'epsilon') {
    const inv = 1 / alpha;
    for (let i = 0; i < n; i++) out[i] = (sample[i] - sigma * modelOutput[i]) * inv;
  } else if (predictionType === 'v_prediction') {
    for (let i = 0; i < n; i++) out[i] = alpha * sample[i] - sigma * modelOutput[i];
  } else {
    for (let i = 0; i < n; i++) out[i] = modelOutput[i];
  }
  return out;
}

/**
 * x0 for the variance-exploding (k-diffusion) parameterisation x = x0 + sigma * eps used by the Euler schedulers, where
 * `sample` is the unscaled latent (EulerDiscreteScheduler.step, step 1):
 *   epsilon:      x0 = x - sigma * eps
 *   v_prediction: x0 = v * (-sigma / sqrt(sigma^2 + 1)) + x / (sigma^2 + 1)
 *   sample:       x0 = model output
 */
export function predictX0Ve(
  predictionType: PredictionType,
  modelOutput: Float32Array,
  sample: Float32Array,
  sigma: number,
  out: Float64Array,
): Float64Array {
  const n = out.length;
  if (predictionType === 'epsilon') {
    for (let i = 0; i < n; i++) out[i] = sample[i] - sigma * modelOutput[i];
  } else if (predictionType === 'v_prediction') {
    const cOut = -sigma / Math.sqrt(sigma * sigma + 1);
    const cSkip = 1 / (sigma * sigma + 1);
    for (let i = 0; i < n; i++) out[i] = modelOutput[i] * cOut + sample[i] * cSkip;
  } else {
    for (let i = 0; i < n; i++) out[i] = modelOutput[i];
  }
  return out;
}

/**
 * Dynamic thresholding (Saharia et al. 2022, arXiv:2205.11487): per batch item, s = clamp(quantile(|x0|, ratio), 1, max),
 * then x0 = clamp(x0, -s, s) / s. diffusers scheduling_ddpm.py `_threshold_sample` (torch.quantile's linear interpolation).
 * In place on `x0`, whose first dimension is the batch.
 */
export function thresholdSample(x0: Float64Array, batch: number, ratio: number, sampleMaxValue: number): void {
  const per = x0.length / batch;
  const abs = new Float64Array(per);
  for (let b = 0; b < batch; b++) {
    const off = b * per;
    for (let i = 0; i < per; i++) abs[i] = Math.abs(x0[off + i]);
    abs.sort();
    const pos = ratio * (per - 1);
    const lo = Math.floor(pos);
    const hi = Math.min(lo + 1, per - 1);
    let s = abs[lo] + (abs[hi] - abs[lo]) * (pos - lo);
    // torch.clamp(s, min=1, max=sample_max_value): max wins when max < min.
    s = Math.min(Math.max(s, 1), sampleMaxValue);
    for (let i = 0; i < per; i++) {
      const v = x0[off + i];
      x0[off + i] = Math.min(Math.max(v, -s), s) / s;
    }
  }
}

/** Clamps x0 to [-range, range] in place (`clip_sample`). */
export function clipSample(x0: Float64Array, range: number): void {
  for (let i = 0; i < x0.length; i++) {
    const v = x0[i];
    if (v > range) x0[i] = range;
    else if (v < -range) x0[i] = -range;
  }
}

/** Checks that a step index lies inside the schedule set by setTimesteps(). */
export function checkStepIndex(stepIndex: number, numSteps: number): void {
  if (numSteps === 0) throw new Error('setTimesteps() must be called before stepping the scheduler');
  if (!Number.isInteger(stepIndex) || stepIndex < 0 || stepIndex >= numSteps) {
    throw new RangeError(`step index ${stepIndex} is outside the schedule of ${numSteps} steps`);
  }
}

/** Checks the requested number of inference steps. */
export function checkNumSteps(numInferenceSteps: number, max: number): void {
  if (!Number.isInteger(numInferenceSteps) || numInferenceSteps < 1) {
    throw new RangeError(`number of inference steps must be a positive integer, got ${numInferenceSteps}`);
  }
  if (numInferenceSteps > max) {
    throw new RangeError(`number of inference steps ${numInferenceSteps} exceeds num_train_timesteps ${max}`);
  }
}

/** Checks that two tensors have the same number of elements. */
export function checkSameSize(a: Tensor, b: Tensor, what: string): void {
  if (a.data.length !== b.data.length) {
    throw new Error(`${what}: shapes differ (${a.dims.join('x')} vs ${b.dims.join('x')})`);
  }
}
