// The work a job asks of a worker, in one unit that is proportional to its denoising time: UNet evaluations
// (steps, doubled under classifier-free guidance) times latent area times images. Retry-After and scheduling
// estimate waits from it, at a worker's measured milliseconds per unit; the cost cap (limits.maxImageStepMegapixels)
// bounds the part of it a client chooses.
import type { GenerateRequest } from '../engine/types.js';
import type { JobSpec } from './types.js';

/** Denoising steps that really run: image-to-image runs the strength's share of them. */
export function stepsThatRun(r: Pick<GenerateRequest, 'numInferenceSteps' | 'initImage' | 'strength'>): number {
  return r.initImage && r.strength !== undefined ? Math.max(1, Math.floor(r.numInferenceSteps * r.strength)) : r.numInferenceSteps;
}

/** Cost units of one job; a 512x512 image at one unguided step is 1. */
export function jobCost(job: Pick<JobSpec, 'request'>): number {
  const r = job.request;
  const passes = r.guidanceScale > 1 ? 2 : 1;
  return (stepsThatRun(r) * passes * (r.width * r.height) * (r.numImages ?? 1)) / (512 * 512);
}

/**
 * What the cost cap counts: images x steps x megapixels of the generation size (not the size returned, which is a
 * resize). Guidance is left out: it is the model's choice, not the client's.
 */
export function imageStepMegapixels(images: number, steps: number, width: number, height: number): number {
  return (images * steps * width * height) / 1_000_000;
}
