// GET /metrics in Prometheus text format: one prom-client Registry per server (tests run several in one process), the
// default process/Node metrics and Easel's own, with low-cardinality labels only (never a prompt, key or user).
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { ApiError } from '../contract/errors.js';
import type { JobQueue, JobTimings } from '../jobs/types.js';
import { type JobLabels, JobMetrics, type JobOutcome, SECONDS } from '../telemetry/job-metrics.js';
import { listenForMetrics, type MetricsListener } from '../telemetry/metrics-server.js';

export type { JobOutcome };

/** Why a request was refused, as easel_rejected_total{reason} counts it. */
export type RejectReason = 'queue_full' | 'rate_limited' | 'moderation' | 'too_large' | 'disk_full';

export interface MetricsSources {
  queue: JobQueue;
  /** disk.ts's DiskGuard (structural: disk.ts imports this module to tag its refusals). */
  disk: { readonly reserveBytes: number; state(): Promise<{ freeBytes: number | null }> };
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

/**
 * /metrics on the API port with auth on needs an admin key: a key the Db marks `admin: false` gets a 403 (OpenAI's
 * PermissionDeniedError). A Db that does not mark keys at all (no admin keys yet) lets any valid key read it.
 */
export function checkMetricsReader(key: { admin?: boolean }): void {
  if (key.admin === false) {
    throw new ApiError({
      status: 403,
      message: 'Reading /metrics needs an admin API key (or metrics.public, or metrics.port for a scrape port of its own).',
      type: 'invalid_request_error',
      code: 'insufficient_permissions',
    });
  }
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

/**
 * `read` shared by the callers that come while it is in flight: the gauges of one scrape (prom-client collects them
 * together) read the queue's stats once, one Redis round trip per scrape in a cluster.
 */
function sharedWhileInFlight<T>(read: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= read().finally(() => {
      pending = undefined;
    });
    return pending;
  };
}

export class ServerMetrics {
  readonly registry = new Registry();
  readonly contentType = this.registry.contentType;
  private readonly requests: Counter<'route' | 'method' | 'status'>;
  private readonly requestSeconds: Histogram<'route'>;
  private readonly jobs: JobMetrics;
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
    this.jobs = new JobMetrics(this.registry, true);
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
    const stats = sharedWhileInFlight(() => queue.stats());
    new Gauge({
      name: 'easel_queue_waiting',
      help: 'Jobs waiting in the queue, per local model.',
      labelNames: ['model'],
      registers,
      async collect() {
        this.reset();
        for (const [model, m] of Object.entries((await stats()).models)) this.set({ model }, m.waiting);
      },
    });
    new Gauge({
      name: 'easel_queue_running',
      help: 'Jobs running on a worker, per local model.',
      labelNames: ['model'],
      registers,
      async collect() {
        this.reset();
        for (const [model, m] of Object.entries((await stats()).models)) this.set({ model }, m.running);
      },
    });
    new Gauge({
      name: 'easel_workers',
      help: 'Ready workers per local model.',
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
    new Gauge({
      name: 'easel_data_dir_reserve_bytes',
      help: 'storage.reserveBytes: below it on the data dir, new jobs get a retryable 503 (0: no reserve).',
      registers,
    }).set(disk.reserveBytes);
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

  /** A job that produced its images: its timings feed the queue, stage, step and batch histograms. */
  observeResult(job: JobLabels & { quality: string }, images: number, t: JobTimings): void {
    this.jobs.observeResult(job, images, t);
  }

  /** A job that ended without images (no timings): its time from submit as the caller measured it. */
  observeEnd(model: string, outcome: Exclude<JobOutcome, 'ok'>, seconds: number): void {
    this.jobs.observeEnd(model, outcome, seconds);
  }

  /** The exposition text (format 0.0.4). */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}

/** The metrics listener of metrics.port, on the server's host, when it is set (a port in use stops the start). */
export function listenForMetricsPort(
  config: { host: string; metrics: { port?: number } },
  metrics: ServerMetrics,
): Promise<MetricsListener | undefined> {
  const { port } = config.metrics;
  return port === undefined ? Promise.resolve(undefined) : listenForMetrics(metrics, config.host, port);
}
