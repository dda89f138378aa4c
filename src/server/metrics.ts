// GET /metrics in Prometheus text format: one prom-client Registry per server (tests run several in one process), the
// default process/Node metrics and Easel's own, with low-cardinality labels only (never a prompt, key or user).
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { ApiError } from '../contract/errors.js';
import type { JobQueue, JobTimings } from '../jobs/types.js';

/** Why a request was refused, as easel_rejected_total{reason} counts it. */
export type RejectReason = 'queue_full' | 'rate_limited' | 'moderation' | 'too_large' | 'disk_full';
export type JobOutcome = 'ok' | 'cancelled' | 'failed' | 'rejected';

export interface MetricsSources {
  queue: JobQueue;
  /** disk.ts's DiskGuard (structural: disk.ts imports this module to tag its refusals). */
  disk: { state(): Promise<{ freeBytes: number | null }> };
  /** Usage rows dropped after retries (records.ts UsageRecorder). */
  usage: { readonly dropped: number };
}

/** Reasons set where an error is made (the code alone cannot tell a full queue from a rate limit, or a full disk). */
const tagged = new WeakMap<ApiError, RejectReason>();

/** Marks an error with its rejection reason; the app's error handler counts it once. */
export function tagRejection<E extends ApiError>(err: E, reason: RejectReason): E {
  tagged.set(err, reason);
  return err;
}

const BY_CODE: Record<string, RejectReason> = {
  rate_limit_exceeded: 'rate_limited',
  moderation_blocked: 'moderation',
  request_too_large: 'too_large',
  file_too_large: 'too_large',
  image_too_large: 'too_large',
};

/** The reason an answered error counts under, or undefined when it is not a rejection (a bad parameter, a 500). */
export function rejectionReason(err: ApiError): RejectReason | undefined {
  return tagged.get(err) ?? (err.code ? BY_CODE[err.code] : undefined);
}

const SECONDS = [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const STEP_SECONDS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class ServerMetrics {
  readonly registry = new Registry();
  readonly contentType = this.registry.contentType;
  private readonly requests: Counter<'route' | 'method' | 'status'>;
  private readonly requestSeconds: Histogram<'route'>;
  private readonly waitSeconds: Histogram<'model'>;
  private readonly jobSeconds: Histogram<'model' | 'outcome'>;
  private readonly images: Counter<'model' | 'size' | 'quality'>;
  private readonly stepSeconds: Histogram<'model'>;
  private readonly stageSeconds: Histogram<'stage'>;
  private readonly rejected: Counter<'reason'>;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({
      name: 'easel_http_requests_total',
      help: 'HTTP requests answered, by route pattern, method and status.',
      labelNames: ['route', 'method', 'status'],
      registers,
    });
    this.requestSeconds = new Histogram({
      name: 'easel_http_request_duration_seconds',
      help: 'Time to answer an HTTP request, by route pattern.',
      labelNames: ['route'],
      buckets: SECONDS,
      registers,
    });
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
      help: 'Images generated, by served model, size and quality.',
      labelNames: ['model', 'size', 'quality'],
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
    this.rejected = new Counter({
      name: 'easel_rejected_total',
      help: 'Requests refused, by reason (queue_full, rate_limited, moderation, too_large, disk_full).',
      labelNames: ['reason'],
      registers,
    });
    this.registerScrapeTime(sources);
  }

  /** Gauges read when scraped: queue depth and workers, the data dir's free space, dropped usage rows. */
  private registerScrapeTime({ queue, disk, usage }: MetricsSources): void {
    const registers = [this.registry];
    const stats = () => queue.stats();
    new Gauge({
      name: 'easel_queue_waiting',
      help: 'Jobs waiting in the queue.',
      labelNames: ['model'],
      registers,
      async collect() {
        // The seam's stats are totals: they are shown under model="all".
        this.set({ model: 'all' }, (await stats()).waiting);
      },
    });
    new Gauge({
      name: 'easel_queue_running',
      help: 'Jobs running on a worker.',
      labelNames: ['model'],
      registers,
      async collect() {
        this.set({ model: 'all' }, (await stats()).running);
      },
    });
    new Gauge({
      name: 'easel_workers',
      help: 'Ready workers per model.',
      labelNames: ['model'],
      registers,
      async collect() {
        this.reset();
        for (const [model, n] of Object.entries((await stats()).workers)) this.set({ model }, n);
      },
    });
    new Gauge({
      name: 'easel_data_dir_free_bytes',
      help: 'Bytes free on the fullest filesystem of the data dir (absent until it exists).',
      registers,
      async collect() {
        this.reset();
        const free = (await disk.state()).freeBytes;
        if (free !== null) this.set(free);
      },
    });
    new Counter({
      name: 'easel_usage_write_failures_total',
      help: 'Usage rows dropped after every retry failed (each is logged in full).',
      registers,
      collect() {
        this.reset();
        this.inc(usage.dropped);
      },
    });
  }

  /** One answered HTTP request; `route` is the Fastify route pattern ('404' for an unknown path). */
  observeRequest(route: string, method: string, status: number, seconds: number): void {
    this.requests.inc({ route, method, status: String(status) });
    this.requestSeconds.observe({ route }, seconds);
  }

  reject(reason: RejectReason): void {
    this.rejected.inc({ reason });
  }

  /** A job that produced its images: its timings feed the queue, stage and step histograms. */
  observeResult(job: { model: string; size: string; quality: string; steps: number }, images: number, t: JobTimings): void {
    const { model } = job;
    this.images.inc({ model, size: job.size, quality: job.quality }, images);
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

  /** The exposition text (format 0.0.4). */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
