// The metrics of a job's run (images, queue wait, duration, step and stage times, batch size), on a registry given
// by the caller: an API node's /metrics (src/server/metrics.ts) and a cluster worker's own (src/worker/main.ts).
import { Counter, Histogram, type Registry } from 'prom-client';
import type { JobTimings } from '../jobs/types.js';

export type JobOutcome = 'ok' | 'cancelled' | 'failed' | 'rejected';

/** Up to 10 minutes: a CPU worker's job, and its wait, can be minutes long (limits.requestDeadlineSeconds is 300). */
export const SECONDS = [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const STEP_SECONDS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Images run through the UNet together (a request's n, 1 to 10 in OpenAI's API). */
const BATCH_SIZES = [1, 2, 3, 4, 6, 8, 10, 16];

/** What labels a finished job: its local model, output size, and quality where the caller knows it (the API side). */
export interface JobLabels {
  model: string;
  size: string;
  quality?: string;
  /** Denoising steps it ran (0: none, so no step time). */
  steps: number;
}

export class JobMetrics {
  private readonly waitSeconds: Histogram<'model'>;
  private readonly jobSeconds: Histogram<'model' | 'outcome'>;
  private readonly images: Counter<'model' | 'size' | 'quality'>;
  private readonly stepSeconds: Histogram<'model'>;
  private readonly stageSeconds: Histogram<'stage'>;
  private readonly batchSize: Histogram<'model'>;

  /** `withQuality`: whether easel_images_generated_total has a quality label (a worker does not know it). */
  constructor(registry: Registry, withQuality: boolean) {
    const registers = [registry];
    this.waitSeconds = new Histogram({
      name: 'easel_queue_wait_seconds',
      help: 'Time a job waited in the queue before a worker started it.',
      labelNames: ['model'],
      buckets: SECONDS,
      registers,
    });
    this.jobSeconds = new Histogram({
      name: 'easel_job_duration_seconds',
      help: 'Time from submit to the end of a job, by outcome (ok, cancelled, failed, rejected).',
      labelNames: ['model', 'outcome'],
      buckets: SECONDS,
      registers,
    });
    this.images = new Counter({
      name: 'easel_images_generated_total',
      help: withQuality ? 'Images generated, by local model, size and quality.' : 'Images generated, by local model and size.',
      labelNames: withQuality ? ['model', 'size', 'quality'] : ['model', 'size'],
      registers,
    });
    this.stepSeconds = new Histogram({
      name: 'easel_unet_step_seconds',
      help: 'Mean time of one denoising step of a job.',
      labelNames: ['model'],
      buckets: STEP_SECONDS,
      registers,
    });
    this.stageSeconds = new Histogram({
      name: 'easel_stage_seconds',
      help: 'Time a job spent in each stage (text_encoder, denoise, vae, encode).',
      labelNames: ['stage'],
      buckets: SECONDS,
      registers,
    });
    this.batchSize = new Histogram({
      name: 'easel_batch_size',
      help: "Images a worker ran through the UNet together (a job's n, or its whole batch across requests), per job.",
      labelNames: ['model'],
      buckets: BATCH_SIZES,
      registers,
    });
  }

  /** A job that produced its images: its timings feed the queue, stage, step and batch histograms. */
  observeResult(job: JobLabels, images: number, t: JobTimings): void {
    const { model } = job;
    this.images.inc(job.quality === undefined ? { model, size: job.size } : { model, size: job.size, quality: job.quality }, images);
    this.batchSize.observe({ model }, t.batchImages ?? images);
    this.waitSeconds.observe({ model }, t.queueMs / 1000);
    this.jobSeconds.observe({ model, outcome: 'ok' }, (t.queueMs + t.totalMs + t.encodeMs) / 1000);
    if (job.steps > 0) this.stepSeconds.observe({ model }, t.denoiseMs / job.steps / 1000);
    this.stageSeconds.observe({ stage: 'text_encoder' }, t.textEncoderMs / 1000);
    this.stageSeconds.observe({ stage: 'denoise' }, t.denoiseMs / 1000);
    this.stageSeconds.observe({ stage: 'vae' }, t.vaeMs / 1000);
    this.stageSeconds.observe({ stage: 'encode' }, t.encodeMs / 1000);
  }

  /** A job that ended without images (no timings): its time from submit as the caller measured it. */
  observeEnd(model: string, outcome: Exclude<JobOutcome, 'ok'>, seconds: number): void {
    this.jobSeconds.observe({ model, outcome }, seconds);
  }
}
