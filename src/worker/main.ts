// `easel worker`: an engine worker process. It loads and warms its models, fits its job lock to their step times,
// then takes their jobs from the cluster's BullMQ queues until SIGTERM (finish the current job, take no new one).
// With metrics.port it serves its own GET /metrics (the jobs it ran) on that port.
import type { Config } from '../config/config.js';
import { readModelInfo } from '../engine/models/info.js';
import { listenForMetrics, type MetricsListener } from '../telemetry/metrics-server.js';
import { BullMqWorker, type WorkerLogger } from './bullmq-worker.js';
import { EnginePool, pipelineOptions } from './engine-pool.js';
import { LocalBatcher } from './local-batcher.js';
import { WorkerMetrics } from './metrics.js';
import { runJob, runJobs } from './run-job.js';

export interface RunningWorker {
  worker: BullMqWorker;
  /** The lock BullMQ holds on a running job (ms). */
  lockMs: number;
  metrics: WorkerMetrics;
  /** http://host:port of its metrics listener, when metrics.port is set. */
  metricsUrl?: string;
  /** SIGTERM's path: the current job finishes, no new one is taken, the models are released. */
  close(): Promise<void>;
}

/** At least this long: a lock renewal late by a busy event loop must not hand a healthy job to another worker. */
const MIN_LOCK_MS = 5000;
const MAX_LOCK_MS = 120_000;

/**
 * The lock a worker holds on its job, from the time one warm-up generation took (one unguided step plus text
 * encoding and decoding, so more than a step): twenty of them, as ten guided steps. BullMQ renews it every half
 * lock; a worker that stops renewing (killed) loses its job to another one about one to two locks later.
 */
export function fitLockMs(warmStepMs: number): number {
  return Math.round(Math.min(MAX_LOCK_MS, Math.max(MIN_LOCK_MS, 20 * warmStepMs)));
}

/** JSON lines on stderr at pino's levels, like the API node's log. */
export function jsonLogger(name: string): WorkerLogger {
  const line = (level: number) => (obj: object, msg: string) => {
    const o = obj as { err?: unknown };
    const err = o.err instanceof Error ? { err: { message: o.err.message, stack: o.err.stack } } : {};
    process.stderr.write(`${JSON.stringify({ level, time: Date.now(), name, ...obj, ...err, msg })}\n`);
  };
  return { info: line(30), warn: line(40), error: line(50) };
}

export async function startWorker(config: Readonly<Config>, opts: { url: string; log?: WorkerLogger }): Promise<RunningWorker> {
  const log = opts.log ?? jsonLogger('easel-worker');
  const models = config.models.map((m) => ({ name: m.name, info: readModelInfo(m.path, { variant: m.variant }) }));
  const engines = await EnginePool.load(config.models, pipelineOptions(config));
  const metrics = new WorkerMetrics();
  let worker: BullMqWorker | undefined;
  let scrape: MetricsListener | undefined;
  let lockMs: number;
  try {
    if (config.metrics.port !== undefined) scrape = await listenForMetrics(metrics, config.host, config.metrics.port);
    const t0 = performance.now();
    await engines.warmUp();
    const warmStepMs = (performance.now() - t0) / Math.max(1, models.length);
    lockMs = config.queue.lockSeconds !== undefined ? config.queue.lockSeconds * 1000 : fitLockMs(warmStepMs);
    const encoding = config.images.encoding;
    const batchJobs = Math.max(1, config.engine.maxBatchJobs);
    // Batching across requests (README "Batching across requests"): each model's jobs taken together run as batches.
    const batchers = new Map(
      config.models.map((m) => [
        m.name,
        new LocalBatcher({
          executeBatch: (jobs) => runJobs(engines.pipeline(m.name), jobs, log, encoding),
          maxBatchJobs: batchJobs,
          maxBatchRows: config.engine.maxBatchSize,
          batchWindowMs: config.engine.batchWindowMs,
          stillWanted: (jobs) => worker?.stillWanted(jobs.map((j) => j.ctx.id)) ?? Promise.resolve(jobs.map(() => true)),
          onBatchStart: async (head) => worker?.batchStarting(m.name, head.ctx.id),
          onBatchDone: (jobs, ms) =>
            worker?.measureBatch(
              m.name,
              jobs.map((j) => j.job),
              ms,
            ),
        }),
      ]),
    );
    worker = await BullMqWorker.start({
      url: opts.url,
      models,
      execute: metrics.observing((job, ctx) =>
        batchJobs > 1
          ? batchers.get(job.model)!.run({ job, ctx }, worker?.priorityOf(ctx.id))
          : runJob(engines.pipeline(job.model), job, ctx, log, encoding),
      ),
      concurrency: batchJobs,
      lockMs,
      log,
    });
  } catch (err) {
    await scrape?.close();
    await engines.dispose();
    throw err;
  }
  const ready = worker;
  log.info({ worker: ready.id, models: models.map((m) => m.name), lockMs, ...(scrape ? { metrics: scrape.url } : {}) }, 'worker ready');
  return {
    worker: ready,
    lockMs,
    metrics,
    ...(scrape ? { metricsUrl: scrape.url } : {}),
    async close() {
      await ready.close();
      await engines.dispose();
      await scrape?.close();
    },
  };
}
