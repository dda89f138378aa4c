// Picks a scheduler by Easel name, or by the diffusers class named in scheduler_config.json, and builds it from that config.
// Names map onto diffusers classes; any other class (PNDM, LMS, unknown) runs as Euler, which reads the same config keys.
import { DDIMScheduler } from './ddim.js';
import { DPMSolverMultistepScheduler } from './dpm-solver-multistep.js';
import { EulerAncestralDiscreteScheduler } from './euler-ancestral.js';
import { EulerDiscreteScheduler } from './euler-discrete.js';
import { LCMScheduler } from './lcm.js';
import { SCHEDULER_NAMES, type SchedulerName } from './names.js';
import type { Scheduler, SchedulerConfig } from './types.js';

export { DDIMScheduler } from './ddim.js';
export { DPMSolverMultistepScheduler } from './dpm-solver-multistep.js';
export { EulerAncestralDiscreteScheduler } from './euler-ancestral.js';
export { EulerDiscreteScheduler } from './euler-discrete.js';
export { LCMScheduler } from './lcm.js';
export { isSchedulerName, SCHEDULER_NAMES, type SchedulerName } from './names.js';
export type { Scheduler, SchedulerConfig, StepResult } from './types.js';

const CLASS_TO_NAME: Readonly<Record<string, SchedulerName>> = {
  EulerDiscreteScheduler: 'euler',
  EulerAncestralDiscreteScheduler: 'euler-ancestral',
  DDIMScheduler: 'ddim',
  DPMSolverMultistepScheduler: 'dpm-solver-multistep',
  LCMScheduler: 'lcm',
};

/** The Easel scheduler that runs a diffusers `_class_name` (euler for PNDM, LMS and anything unknown). */
export function schedulerNameForClass(className: string | undefined): SchedulerName {
  return (className !== undefined && CLASS_TO_NAME[className]) || 'euler';
}

/**
 * A fresh scheduler (one per generation). `name` undefined: the algorithm from `config._class_name`. Config keys absent
 * from the JSON take that algorithm's diffusers defaults, as diffusers' `from_config` does when switching classes.
 */
export function createScheduler(name: SchedulerName | undefined, config: SchedulerConfig): Scheduler {
  const chosen = name ?? schedulerNameForClass(config._class_name);
  switch (chosen) {
    case 'euler':
      return new EulerDiscreteScheduler(config);
    case 'euler-ancestral':
      return new EulerAncestralDiscreteScheduler(config);
    case 'ddim':
      return new DDIMScheduler(config);
    case 'dpm-solver-multistep':
      return new DPMSolverMultistepScheduler(config);
    case 'lcm':
      return new LCMScheduler(config);
    default:
      throw new Error(`unknown scheduler "${String(chosen)}" (known: ${SCHEDULER_NAMES.join(', ')})`);
  }
}
