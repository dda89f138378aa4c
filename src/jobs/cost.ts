// The work a job asks of a worker, in one unit that is proportional to its denoising time: UNet evaluations
// (steps, doubled under classifier-free guidance) times latent area times images. Retry-After and scheduling
// estimate waits from it, at a worker's measured milliseconds per unit.
import type { JobSpec } from './types.js';

/** Cost units of one job; a 512x512 image at one unguided step is 1. */
export function jobCost(job: Pick<JobSpec, 'request'>): number {
  const r = job.request;
  const steps = r.initImage && r.strength !== undefined ? Math.max(1, Math.floor(r.numInferenceSteps * r.strength)) : r.numInferenceSteps;
  const passes = r.guidanceScale > 1 ? 2 : 1;
  return (steps * passes * (r.width * r.height) * (r.numImages ?? 1)) / (512 * 512);
}
