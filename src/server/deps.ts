// What the HTTP layer is built from, in one module of its own so routes and helpers import it without cycles.
// Everything is passed in, so tests build a server on an ephemeral port with their own clock and parts.
import type { Config } from '../config/config.js';
import type { Db, UsageRecord } from '../db/types.js';
import type { JobQueue } from '../jobs/types.js';
import type { ImageStore } from '../storage/types.js';
import type { ModelCatalog } from './catalog.js';
import type { DiskGuard } from './disk.js';
import type { ServerMetrics } from './metrics.js';
import type { ModerationHook } from './moderation.js';

export interface ServerDeps {
  config: Readonly<Config>;
  models: ModelCatalog;
  queue: JobQueue;
  store: ImageStore;
  db: Db;
  moderation: ModerationHook;
  urlSecret: string;
  /** Free space of the data dir against storage.reserveBytes (checked before a job is accepted, shown by /readyz). */
  disk: DiskGuard;
  /** Writes usage rows with retries; counts the ones it had to drop (records.ts UsageRecorder). */
  usage: UsageSink;
  /** GET /metrics: this server's own prom-client registry (metrics.ts). */
  metrics: ServerMetrics;
  /** Clock in epoch ms (tests move it to expire URLs). */
  now: () => number;
  /** Extra readiness checks beyond "every model has a ready worker" (e.g. the token counter built). */
  warm?: () => boolean;
  logger?: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The API key's id when auth mode is 'keys'. */
    apiKeyId?: string;
  }
}

/** Where usage rows go: records.ts's UsageRecorder, declared here so deps.ts and records.ts import each other not. */
export interface UsageSink {
  record(r: UsageRecord): Promise<void>;
  /** Rows given up on after retries (each logged in full). */
  readonly dropped: number;
}
