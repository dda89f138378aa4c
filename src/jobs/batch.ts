// Which queued jobs can run as one batch (one pipeline call sharing UNet calls), and the executor type that runs them.
// Pure and shared by the queues; the engine's batchKeyOf says which requests can share rows.
import { batchKeyOf } from '../engine/types.js';
import type { JobContext, JobEvent, JobSpec } from './types.js';

type Terminal = Extract<JobEvent, { type: 'result' | 'error' }>;

/**
 * Jobs with the same key can run together: same local model and a request the engine can batch (text-to-image of
 * one size, step count, scheduler and guidance on/off). Undefined: the job always runs alone.
 */
export function batchKey(job: Pick<JobSpec, 'model' | 'request'>): string | undefined {
  const key = batchKeyOf(job.request);
  return key === undefined ? undefined : `${job.model}\n${key}`;
}

/** UNet rows a job takes in each call: one per image, two when classifier-free guidance is on. */
export function batchRows(job: Pick<JobSpec, 'request'>): number {
  return (job.request.numImages ?? 1) * (job.request.guidanceScale > 1 ? 2 : 1);
}

/** One job of a batch with its own context (events, abort signal). */
export interface BatchJob {
  job: JobSpec;
  ctx: JobContext;
}

/**
 * Runs compatible jobs (same batchKey) together: one terminal event per job, in order, each settling on its own (a
 * cancelled job's as soon as it leaves the batch). Never rejects.
 */
export type BatchExecutor = (jobs: readonly BatchJob[]) => Array<Promise<Terminal>>;
