// The job queue seam between the HTTP server and the engine: in-process by default, Redis (BullMQ) at scale.
// A job is an engine request plus where to send progress; the queue decides when it runs.
import type { GenerateRequest, GenerateResult, RgbaImage } from '../engine/types.js';

export interface GenerationJob {
  /** Name of the local model (pipeline) that runs it. */
  model: string;
  request: GenerateRequest;
  /** Step indices after which to decode a preview (streaming partial images). */
  previewSteps?: readonly number[];
  onPreview?(step: number, images: RgbaImage[]): void | Promise<void>;
  onStep?(step: number, totalSteps: number): void;
  /** Aborting removes a queued job or stops a running one within one denoising step. */
  signal?: AbortSignal;
}

export interface JobHandle {
  id: string;
  /** Jobs ahead of this one when it was admitted (0 = runs next). */
  position: number;
  result: Promise<GenerateResult>;
}

export interface JobQueue {
  /** Admits a job or throws QueueFullError when the queue is at its bound. */
  enqueue(job: GenerationJob): Promise<JobHandle>;
  cancel(id: string): Promise<boolean>;
  /** Jobs waiting (not running). */
  readonly waiting: number;
  readonly running: number;
  close(): Promise<void>;
}

export class QueueFullError extends Error {
  override readonly name = 'QueueFullError';
  constructor(
    readonly limit: number,
    /** Suggested seconds before retrying. */
    readonly retryAfterSeconds: number,
  ) {
    super(`the generation queue is full (${limit} waiting); retry later`);
  }
}
