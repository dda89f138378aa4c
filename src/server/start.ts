// Builds the embedded server from a Config: data dir, image store + sweeper, database, model catalog, the
// in-process queue with its worker (the engine pool in this process), and the Fastify app.
// Used by `easel serve` and by the end-to-end tests (which pass a clock and port 0).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/config.js';
import { warmTokenCounter } from '../contract/usage.js';
import { openDb } from '../db/index.js';
import { InProcessQueue } from '../jobs/in-process.js';
import { openImageStore, type StoreFs, startSweeper } from '../storage/index.js';
import { EnginePool, pipelineOptions } from '../worker/engine-pool.js';
import { runJob, runJobs } from '../worker/run-job.js';
import { buildServer } from './app.js';
import { ModelCatalog } from './catalog.js';
import { DiskGuard, type DiskGuardOptions, guardStore } from './disk.js';
import { listen } from './listen.js';
import { ServerMetrics } from './metrics.js';
import { createWordFilter, type ModerationHook } from './moderation.js';
import { UsageRecorder } from './records.js';
import { drainThenClose } from './shutdown.js';
import { sharedUrlSecret } from './url-secret.js';

export interface RunningServer {
  app: FastifyInstance;
  /** http://host:port */
  url: string;
  models: ModelCatalog;
  /** The embedded worker's loaded pipelines (benchmarks compare against them directly). */
  engines: EnginePool;
  /** What /metrics shows (also served on metrics.port when that is set). */
  metrics: ServerMetrics;
  /** http://host:port of the metrics listener, when metrics.port is set. */
  metricsUrl?: string;
  /** Stops listening, lets requests in progress end, cancels running jobs and closes everything (tests, errors). */
  close(): Promise<void>;
  /**
   * SIGTERM's path: new work is refused (503, /readyz "draining"), running and queued jobs may finish within `drainMs`
   * (default server.drainSeconds), the rest are answered a retryable 503; then every connection is closed.
   */
  shutdown(drainMs?: number): Promise<void>;
}

export interface StartOptions {
  now?: () => number;
  logger?: boolean;
  moderation?: ModerationHook;
  /** Wait for the warm-up generation (and the start-up sweep) before resolving (tests); `serve` does both in the background. */
  waitForWarmUp?: boolean;
  /** Seams for disk faults (tests): the free-space probe, the image store's filesystem calls, usage-row retry waits. */
  io?: { statfs?: DiskGuardOptions['statfs']; storeFs?: StoreFs; usageRetryDelaysMs?: readonly number[] };
}

export interface EmbeddedServer extends Omit<RunningServer, 'url' | 'metricsUrl'> {
  /** Settles when every model is warm (or warm-up failed, which is logged). */
  warm: Promise<void>;
}

/** Everything `serve` runs, wired but not listening: handler tests drive it with app.inject. */
export async function createEmbeddedServer(config: Readonly<Config>, opts: StartOptions = {}): Promise<EmbeddedServer> {
  const now = opts.now ?? Date.now;
  mkdirSync(config.dataDir, { recursive: true });
  const models = ModelCatalog.fromConfig(config);
  const imagesDir = join(config.dataDir, 'images');
  // images.store s3://... is checked here (bucket, credentials, a test write): a store that fails stops the start.
  const { store, kind: storeKind } = await openImageStore({
    images: config.images,
    dir: imagesDir,
    now,
    orphanGraceMs: config.storage.leftoverGraceSeconds * 1000,
    fs: opts.io?.storeFs,
  });
  const diskPaths = storeKind === 'fs' ? [config.dataDir, imagesDir] : [config.dataDir];
  const disk = new DiskGuard({ paths: diskPaths, reserveBytes: config.storage.reserveBytes, statfs: opts.io?.statfs });
  const db = await openDb({ url: config.db.url, dataDir: config.dataDir, now });
  let engines: EnginePool;
  try {
    engines = await EnginePool.load(config.models, pipelineOptions(config));
  } catch (err) {
    await db.close();
    await store.close();
    throw err;
  }
  const log = { error: (obj: object, msg: string) => app.log.error(obj, msg) };
  const usage = new UsageRecorder(db, () => app.log, { retryDelaysMs: opts.io?.usageRetryDelaysMs });
  const queue = new InProcessQueue({
    maxWaiting: config.queue.maxWaiting,
    models: engines.names,
    execute: (job, ctx) => runJob(engines.pipeline(job.model), job, ctx, log, config.images.encoding),
    executeBatch: (jobs) => runJobs(engines.pipeline(jobs[0].job.model), jobs, log, config.images.encoding),
    maxBatchJobs: config.engine.maxBatchJobs,
    maxBatchRows: config.engine.maxBatchSize,
    batchWindowMs: config.engine.batchWindowMs,
    workers: () => engines.readiness(),
  });
  // The token counter for usage is built before /readyz says ready, so the first request pays nothing for it.
  let countersWarm = false;
  const counters = warmTokenCounter().then(() => {
    countersWarm = true;
  });
  const metrics = new ServerMetrics({ queue, disk, usage });
  const app = await buildServer({
    warm: () => countersWarm,
    config,
    models,
    queue,
    store: storeKind === 'fs' ? guardStore(store, disk) : store,
    db,
    disk,
    usage,
    metrics,
    moderation: opts.moderation ?? createWordFilter(config.moderation.categories, config.moderation.lowCategories),
    urlSecret: sharedUrlSecret(config),
    now,
    logger: opts.logger,
  });
  const sweeper = startSweeper(store, { intervalMs: config.images.sweepIntervalSeconds * 1000, now, logger: app.log });
  const warm = Promise.all([engines.warmUp(), counters, sweeper.initial])
    .then(() => undefined)
    .catch((err) => app.log.error({ err }, 'warm-up failed'));
  if (opts.waitForWarmUp) await warm;
  const server: EmbeddedServer = {
    app,
    models,
    engines,
    metrics,
    warm,
    async close() {
      await app.close();
      await queue.close();
      await warm;
      await sweeper.stop();
      await store.close();
      await usage.close();
      await db.close();
      await engines.dispose();
    },
    shutdown: (drainMs = config.server.drainSeconds * 1000) => drainThenClose(app, queue, drainMs, () => server.close()),
  };
  return server;
}

/** The embedded server, listening on config.host:config.port (0 picks a free port). */
export async function startServer(config: Readonly<Config>, opts: StartOptions = {}): Promise<RunningServer> {
  return listen(config, await createEmbeddedServer(config, opts));
}
