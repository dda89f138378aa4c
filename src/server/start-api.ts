// Builds an API node of a cluster (`easel serve --queue redis://...`): the same HTTP app, store, database and records
// as the embedded server, but jobs go to BullMQ on Redis and models are planned from what the workers publish.
// It never loads a model folder or ONNX Runtime (test/unit/layering.test.ts checks this file's imports).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/config.js';
import { warmTokenCounter } from '../contract/usage.js';
import { openDb } from '../db/index.js';
import { BullMqQueue } from '../jobs/bullmq.js';
import { openImageStore, startSweeper } from '../storage/index.js';
import { buildServer } from './app.js';
import type { ModelCatalog } from './catalog.js';
import { ClusterModels } from './cluster-models.js';
import type { ServerDeps } from './deps.js';
import { DiskGuard, guardStore } from './disk.js';
import { listen } from './listen.js';
import { ServerMetrics } from './metrics.js';
import { createWordFilter } from './moderation.js';
import { RedisRateLimitStore } from './rate-limit.js';
import { UsageRecorder } from './records.js';
import { drainThenClose } from './shutdown.js';
import type { StartOptions } from './start.js';
import { sharedUrlSecret } from './url-secret.js';

export interface ApiNode {
  app: FastifyInstance;
  /** http://host:port once listening. */
  url: string;
  /** The catalog as the workers last described it. */
  readonly models: ModelCatalog;
  queue: BullMqQueue;
  /** What /metrics shows (also served on metrics.port when that is set). */
  metrics: ServerMetrics;
  /** http://host:port of the metrics listener, when metrics.port is set. */
  metricsUrl?: string;
  /** Stops at once: this node's jobs are cancelled and every connection is closed. */
  close(): Promise<void>;
  /** SIGTERM's path, as the embedded server's: refuse new work, let this node's jobs finish within `drainMs`, close. */
  shutdown(drainMs?: number): Promise<void>;
}

/** An API node, wired but not listening (tests drive it with app.inject). Waits for Redis as long as it takes. */
export async function createApiNode(config: Readonly<Config>, opts: StartOptions = {}): Promise<Omit<ApiNode, 'url' | 'metricsUrl'>> {
  const url = config.queue.url;
  if (!url) throw new Error('an API node needs queue.url (--queue redis://HOST:PORT)');
  const now = opts.now ?? Date.now;
  mkdirSync(config.dataDir, { recursive: true });
  const queue = await BullMqQueue.open({ url, models: config.models.map((m) => m.name), maxWaiting: config.queue.maxWaiting });
  const cluster = new ClusterModels(config, {
    read: () => queue.workerRecords(),
    onError: (err) => app.log.warn({ err }, 'reading workers'),
  });
  await cluster.start();
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
  const usage = new UsageRecorder(db, () => app.log, { retryDelaysMs: opts.io?.usageRetryDelaysMs });
  let countersWarm = false;
  const counters = warmTokenCounter().then(() => {
    countersWarm = true;
  });
  const deps: ServerDeps = {
    // Ready once every configured model has been described by a worker (and, in /readyz, has a live one).
    warm: () => countersWarm && cluster.complete(),
    config,
    // Routes read deps.models per request: the catalog follows what the workers publish.
    get models() {
      return cluster.catalog;
    },
    queue,
    store: storeKind === 'fs' ? guardStore(store, disk) : store,
    db,
    disk,
    usage,
    metrics: new ServerMetrics({ queue, disk, usage }),
    moderation: opts.moderation ?? createWordFilter(config.moderation.categories, config.moderation.lowCategories),
    urlSecret: sharedUrlSecret(config),
    now,
    logger: opts.logger,
  };
  // Rate-limit buckets in the cluster's Redis, so every API node counts against the same limits.
  const rateLimitStore = await RedisRateLimitStore.open(url);
  const app = await buildServer(deps, { rateLimitStore });
  const sweeper = startSweeper(store, { intervalMs: config.images.sweepIntervalSeconds * 1000, now, logger: app.log });
  if (opts.waitForWarmUp) await Promise.all([counters, sweeper.initial]);
  const node: Omit<ApiNode, 'url' | 'metricsUrl'> = {
    app,
    metrics: deps.metrics,
    get models() {
      return cluster.catalog;
    },
    queue,
    async close() {
      app.drain.closeAll();
      await app.close();
      cluster.stop();
      await queue.close();
      await rateLimitStore.close();
      await sweeper.stop();
      await store.close();
      await usage.close();
      await db.close();
    },
    shutdown: (drainMs = config.server.drainSeconds * 1000) => drainThenClose(app, queue, drainMs, () => node.close()),
  };
  return node;
}

/** An API node listening on config.host:config.port (0 picks a free port). */
export async function startApiNode(config: Readonly<Config>, opts: StartOptions = {}): Promise<ApiNode> {
  return listen(config, await createApiNode(config, opts));
}
