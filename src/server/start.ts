// Builds a whole server from a Config: data dir, image store + sweeper, database, models, queue, Fastify app.
// Used by `easel serve` and by the end-to-end tests (which pass a clock and port 0).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/config.js';
import { openSqliteDb } from '../db/index.js';
import { InProcessQueue } from '../jobs/in-process.js';
import { createFsImageStore, startSweeper } from '../storage/index.js';
import { buildServer } from './app.js';
import { ModelRegistry } from './model-registry.js';
import { createWordFilter, type ModerationHook } from './moderation.js';

export interface RunningServer {
  app: FastifyInstance;
  /** http://host:port */
  url: string;
  models: ModelRegistry;
  close(): Promise<void>;
}

export interface StartOptions {
  now?: () => number;
  logger?: boolean;
  moderation?: ModerationHook;
  /** Wait for the warm-up generation before resolving (tests); `serve` warms up in the background. */
  waitForWarmUp?: boolean;
}

/** The URL-signing secret: from config, else kept in the data dir so URLs survive restarts. */
function urlSecret(config: Readonly<Config>): string {
  if (config.urlSecret) return config.urlSecret;
  const file = join(config.dataDir, 'url-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, secret, { mode: 0o600 });
  return secret;
}

export async function startServer(config: Readonly<Config>, opts: StartOptions = {}): Promise<RunningServer> {
  const now = opts.now ?? Date.now;
  mkdirSync(config.dataDir, { recursive: true });
  const store = createFsImageStore({ dir: join(config.dataDir, 'images'), now });
  const db = openSqliteDb({ path: join(config.dataDir, 'easel.sqlite'), now });
  let models: ModelRegistry;
  try {
    models = await ModelRegistry.load(config);
  } catch (err) {
    db.close();
    await store.close();
    throw err;
  }
  const queue = new InProcessQueue({
    maxWaiting: config.queue.maxWaiting,
    pipelineFor: (name) => {
      const local = models.locals.get(name);
      if (!local) throw new Error(`no local model '${name}'`);
      return local.pipeline;
    },
  });
  const app = await buildServer({
    config,
    models,
    queue,
    store,
    db,
    moderation: opts.moderation ?? createWordFilter(config.moderation.categories, config.moderation.lowCategories),
    urlSecret: urlSecret(config),
    now,
    logger: opts.logger,
  });
  const sweeper = startSweeper(store, { intervalMs: config.images.sweepIntervalSeconds * 1000, now, logger: app.log });
  const warm = models.warmUp().catch((err) => app.log.error({ err }, 'warm-up failed'));
  if (opts.waitForWarmUp) await warm;
  const address = await app.listen({ host: config.host, port: config.port });
  return {
    app,
    url: address.replace('[::1]', '127.0.0.1'),
    models,
    async close() {
      await app.close();
      await queue.close();
      await warm;
      await sweeper.stop();
      await store.close();
      db.close();
      await models.dispose();
    },
  };
}
