// What API nodes and engine workers agree on in Redis besides BullMQ's own keys: queue names, the per-job event
// stream and cancel flag, and the worker records (heartbeats carrying each worker's models, readiness and speed).
import type { Redis } from 'ioredis';
import type { ModelInfo } from '../engine/models/info.js';

export const DEFAULT_PREFIX = 'easel';

/** One BullMQ queue per local model; BullMQ refuses ':' in names, so the model name is percent-encoded. */
export function queueName(model: string): string {
  return `model.${encodeURIComponent(model)}`;
}

/** A key of BullMQ's own for a model's queue (`wait`, `prioritized`, ...), as BullMQ spells it: prefix:queue:type. */
export function bullKey(prefix: string, model: string, type: 'wait' | 'prioritized' | 'active'): string {
  return `${prefix}:${queueName(model)}:${type}`;
}

export interface ClusterKeys {
  /** The BullMQ prefix: every key of this cluster starts with it (two clusters can share one Redis). */
  prefix: string;
  /** A Redis stream of the job's events, oldest first; fields e (the encoded event) or end (read the job), and a (attempt). */
  events(jobId: string): string;
  /** Set while a running job should stop; the worker checks it when it takes the job and after each step. */
  cancel(jobId: string): string;
  /** Set of the ids of workers that have beaten at least once (dead ones are pruned by readers). */
  workers: string;
  /** JSON WorkerRecord, expiring unless the worker beats again. */
  worker(workerId: string): string;
  /** Hash of a model's fair-order state (jobs/fair-redis.ts): `vt` (virtual time) and `f:<flow>` (finish tags). */
  fair(model: string): string;
}

export function clusterKeys(prefix = DEFAULT_PREFIX): ClusterKeys {
  return {
    prefix,
    events: (id) => `${prefix}:events:${id}`,
    cancel: (id) => `${prefix}:cancel:${id}`,
    workers: `${prefix}:workers`,
    worker: (id) => `${prefix}:worker:${id}`,
    fair: (model) => `${prefix}:fair:${queueName(model)}`,
  };
}

export interface WorkerModel {
  /** What the model folder can do, for API nodes that plan without the folder (absent in queue-only tests). */
  info?: ModelInfo;
  /** Warm and taking jobs. */
  ready: boolean;
  /** Measured milliseconds per cost unit (jobs/cost.ts), null until a job has finished. */
  msPerUnit: number | null;
}

/** What a worker publishes on every heartbeat. */
export interface WorkerRecord {
  id: string;
  host: string;
  pid: number;
  startedAt: number;
  /** True once SIGTERM arrived: it finishes its current job and takes no new one. */
  draining: boolean;
  models: Record<string, WorkerModel>;
}

/** Workers whose record has not expired; ids whose record has are removed from the set. */
export async function liveWorkers(redis: Redis, keys: ClusterKeys): Promise<WorkerRecord[]> {
  const ids = await redis.smembers(keys.workers);
  if (ids.length === 0) return [];
  const texts = await redis.mget(ids.map(keys.worker));
  const dead = ids.filter((_, i) => texts[i] === null);
  if (dead.length) await redis.srem(keys.workers, ...dead);
  return texts.filter((t): t is string => t !== null).map((t) => JSON.parse(t) as WorkerRecord);
}

/** Workers that can take a job for each model now (ready, not draining). */
export function readyWorkersPerModel(records: readonly WorkerRecord[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of records) {
    if (r.draining) continue;
    for (const [name, m] of Object.entries(r.models)) if (m.ready) out[name] = (out[name] ?? 0) + 1;
  }
  return out;
}
