// Picks a scheduler by Easel name, or by the diffusers class named in scheduler_config.json, and builds it from that config.
// A class Easel does not implement is refused by name: a folder never runs one sampler silently as another.
import { DDIM_DEFAULTS, DDIMScheduler } from './ddim.js';
import { DPM_DEFAULTS, DPMSolverMultistepScheduler } from './dpm-solver-multistep.js';
import { EULER_ANCESTRAL_DEFAULTS, EulerAncestralDiscreteScheduler } from './euler-ancestral.js';
import { EULER_DEFAULTS, EulerDiscreteScheduler } from './euler-discrete.js';
import { LCM_DEFAULTS, LCMScheduler } from './lcm.js';
import { LMS_DEFAULTS, LMSDiscreteScheduler } from './lms-discrete.js';
import { SCHEDULER_NAMES, type SchedulerName } from './names.js';
import { PNDM_DEFAULTS, PNDMScheduler } from './pndm.js';
import type { Scheduler, SchedulerConfig } from './types.js';

export { DDIMScheduler } from './ddim.js';
export { DPMSolverMultistepScheduler } from './dpm-solver-multistep.js';
export { EulerAncestralDiscreteScheduler } from './euler-ancestral.js';
export { EulerDiscreteScheduler } from './euler-discrete.js';
export { LCMScheduler } from './lcm.js';
export { LMSDiscreteScheduler } from './lms-discrete.js';
export { isSchedulerName, SCHEDULER_NAMES, type SchedulerName } from './names.js';
export { PNDMScheduler } from './pndm.js';
export type { Scheduler, SchedulerConfig, StepResult } from './types.js';

interface SchedulerClass {
  /** The class's __init__ defaults (diffusers registers every one of them in `scheduler.config`). */
  readonly defaults: object;
  create(config: SchedulerConfig): Scheduler;
}

/** The diffusers classes Easel runs. PNDM and LMS are reached through a folder's config only, not by request name. */
const CLASSES: Readonly<Record<string, SchedulerClass>> = {
  EulerDiscreteScheduler: { defaults: EULER_DEFAULTS, create: (c) => new EulerDiscreteScheduler(c) },
  EulerAncestralDiscreteScheduler: { defaults: EULER_ANCESTRAL_DEFAULTS, create: (c) => new EulerAncestralDiscreteScheduler(c) },
  DDIMScheduler: { defaults: DDIM_DEFAULTS, create: (c) => new DDIMScheduler(c) },
  DPMSolverMultistepScheduler: { defaults: DPM_DEFAULTS, create: (c) => new DPMSolverMultistepScheduler(c) },
  LCMScheduler: { defaults: LCM_DEFAULTS, create: (c) => new LCMScheduler(c) },
  PNDMScheduler: { defaults: PNDM_DEFAULTS, create: (c) => new PNDMScheduler(c) },
  LMSDiscreteScheduler: { defaults: LMS_DEFAULTS, create: (c) => new LMSDiscreteScheduler(c) },
};

/** The diffusers class each Easel name runs. */
export const NAME_TO_CLASS: Readonly<Record<SchedulerName, string>> = {
  euler: 'EulerDiscreteScheduler',
  'euler-ancestral': 'EulerAncestralDiscreteScheduler',
  ddim: 'DDIMScheduler',
  'dpm-solver-multistep': 'DPMSolverMultistepScheduler',
  lcm: 'LCMScheduler',
};

/** Every diffusers scheduler class a folder's scheduler_config.json may name. */
export const SCHEDULER_CLASSES: readonly string[] = Object.freeze(Object.keys(CLASSES));

/** A scheduler class (or name) Easel does not implement. */
export class UnsupportedSchedulerError extends Error {
  override readonly name = 'UnsupportedSchedulerError';
}

/** The class a config names: `_class_name`, EulerDiscreteScheduler when the key is absent. */
export function schedulerClassOf(config: SchedulerConfig): string {
  return typeof config._class_name === 'string' ? config._class_name : 'EulerDiscreteScheduler';
}

function classEntry(className: string): SchedulerClass {
  const entry = CLASSES[className];
  if (!entry) {
    throw new UnsupportedSchedulerError(
      `scheduler "${className}" is not implemented in Easel (it runs ${SCHEDULER_CLASSES.join(', ')}); ` +
        `set "_class_name" in scheduler/scheduler_config.json to one of them`,
    );
  }
  return entry;
}

/**
 * The config as diffusers holds it once it has built the folder's scheduler (`scheduler.config`): the class's __init__
 * defaults, then every key of the file, known to the class or not. `Other.from_config(pipe.scheduler.config)`, which
 * is what a request's `scheduler` does, reads this: keys the file left out come from the folder's class, not the new one.
 */
export function registeredConfig(config: SchedulerConfig): SchedulerConfig {
  const className = schedulerClassOf(config);
  const out: SchedulerConfig = { ...classEntry(className).defaults, _class_name: className };
  for (const [key, value] of Object.entries(config)) if (value !== undefined && value !== null) out[key] = value;
  return out;
}

/** What a Stable Diffusion pipeline is asked to do: diffusers has one pipeline class per kind. */
export type SdPipelineKind = 'text-to-image' | 'image-to-image' | 'inpaint';

/**
 * The deprecation fix-ups of diffusers' SD 1.x / 2.x pipelines (v0.30), applied to the registered config when the
 * pipeline is built, so to every scheduler made from it later:
 * - StableDiffusionPipeline and StableDiffusionImg2ImgPipeline: `steps_offset` != 1 becomes 1 and
 *   `clip_sample: true` becomes false ("steps_offset!=1", "clip_sample not set");
 * - StableDiffusionInpaintPipeline: `steps_offset` != 1 becomes 1 and `skip_prk_steps: false` becomes true.
 * Each applies only when the config has the key (`hasattr(scheduler.config, ...)`: the class has the parameter or the
 * file has the key). SDXL pipelines do none of this: call it for SD folders only.
 */
export function sdPipelineFixups(registered: SchedulerConfig, kind: SdPipelineKind): SchedulerConfig {
  const out: SchedulerConfig = { ...registered };
  if ('steps_offset' in out && out.steps_offset !== 1) out.steps_offset = 1;
  if (kind === 'inpaint') {
    if ('skip_prk_steps' in out && out.skip_prk_steps === false) out.skip_prk_steps = true;
  } else if ('clip_sample' in out && out.clip_sample === true) {
    out.clip_sample = false;
  }
  return out;
}

/**
 * A fresh scheduler (one per generation). `name` undefined: the class from `config._class_name`. Config keys absent
 * from `config` take that class's diffusers defaults, as diffusers' `from_config` does.
 */
export function createScheduler(name: SchedulerName | undefined, config: SchedulerConfig): Scheduler {
  if (name !== undefined && !(name in NAME_TO_CLASS)) {
    throw new UnsupportedSchedulerError(`unknown scheduler "${String(name)}" (known: ${SCHEDULER_NAMES.join(', ')})`);
  }
  const className = name === undefined ? schedulerClassOf(config) : NAME_TO_CLASS[name];
  return classEntry(className).create(config);
}
