// An engine worker's link to the cluster: one BullMQ Worker per local model (`concurrency` jobs at a time each), events into
// each job's Redis stream, cancel flags checked between steps, and heartbeats that tell API nodes what it serves.
import { hostname } from 'node:os';
import { type Job, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { ModelInfo } from '../engine/models/info.js';
import { decodeJobSpec, encodeJobEvent, toWire, type Wire } from '../jobs/codec.js';
import { jobCost } from '../jobs/cost.js';
import { advanceFairTime } from '../jobs/fair-redis.js';
import { bullKey, type ClusterKeys, clusterKeys, queueName, type WorkerRecord } from '../jobs/redis-keys.js';
import { isTerminal, type JobContext, type JobEvent, type JobExecutor, type JobSpec } from '../jobs/types.js';
import { jobLogFields } from '../telemetry/jobs.js';

type Terminal = Extract<JobEvent, { type: 'result' | 'error' }>;

export interface WorkerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface BullMqWorkerOptions {
  /** redis://host:port[/db] of the cluster. */
  url: string;
  /** The cluster's key prefix (as its API nodes use). Default 'easel'. */
  prefix?: string;
  /** Local models this worker runs, with what API nodes need to plan for them. */
  models: ReadonlyArray<{ name: string; info?: ModelInfo }>;
  execute: JobExecutor;
  /**
   * Jobs of one model taken at once (BullMQ's concurrency). Above 1, `execute` batches them (local-batcher.ts, main.ts);
   * the jobs wait on this worker, their locks renewed, until their batch runs. Default 1.
   */
  concurrency?: number;
  /**
   * BullMQ's job lock: renewed every half of it while a job runs; when a worker dies, its job runs again elsewhere
   * about one to two locks later. Default 30 s (main.ts fits it to the models' step times).
   */
  lockMs?: number;
  /** Heartbeat period; a worker silent for three of them drops out. Default 1 s. */
  heartbeatMs?: number;
  /** How long a job's event stream lives unread. Default 600 s (as the API side). */
  eventTtlMs?: number;
  /** Name in `started` events and logs. Default host:pid. */
  name?: string;
  log?: WorkerLogger;
}

export class BullMqWorker {
  readonly id: string;
  private readonly keys: ClusterKeys;
  private readonly workers: Worker[] = [];
  private readonly running = new Map<string, AbortController>();
  private readonly priorities = new Map<string, number>();
  private readonly msPerUnit = new Map<string, number>();
  private readonly startedAt = Date.now();
  private heartbeat: NodeJS.Timeout | undefined;
  private draining = false;

  private constructor(
    private readonly opts: BullMqWorkerOptions,
    /** One connection for BullMQ's commands and ours, so a job's events and its end reach Redis in order. */
    private readonly redis: Redis,
  ) {
    this.id = opts.name ?? `${hostname()}:${process.pid}`;
    this.keys = clusterKeys(opts.prefix);
  }

  /** Connects, publishes the first heartbeat, and starts taking jobs. */
  static async start(opts: BullMqWorkerOptions): Promise<BullMqWorker> {
    // BullMQ's workers wait out Redis outages (no retry limit) and carry on when it is back.
    const redis = new Redis(opts.url, { maxRetriesPerRequest: null });
    redis.on('error', () => {});
    const w = new BullMqWorker(opts, redis);
    await w.beat();
    w.heartbeat = setInterval(() => void w.beat().catch(() => {}), opts.heartbeatMs ?? 1000);
    w.heartbeat.unref();
    for (const { name } of opts.models) w.workers.push(w.workerFor(name));
    await Promise.all(w.workers.map((bw) => bw.waitUntilReady()));
    return w;
  }

  private workerFor(model: string): Worker {
    const lockMs = this.opts.lockMs ?? 30_000;
    const worker = new Worker(queueName(model), (job: Job, _token?: string) => this.process(model, job), {
      connection: this.redis,
      prefix: this.keys.prefix,
      concurrency: Math.max(1, this.opts.concurrency ?? 1),
      lockDuration: lockMs,
      stalledInterval: lockMs,
      // A job whose worker dies twice in a row fails rather than take down a third.
      maxStalledCount: 2,
    });
    // The job's end is BullMQ's record of it; the stream entry tells its reader to fetch it now.
    worker.on('completed', (job) => {
      if (job.id) this.append(job.id, ['end', '1', 'a', String(job.attemptsStarted)]);
    });
    worker.on('error', (err) => this.opts.log?.warn({ err, model }, 'queue connection trouble'));
    worker.on('stalled', (jobId) => this.opts.log?.warn({ jobId, model }, 'job stalled (its worker stopped); it runs again'));
    return worker;
  }

  /** The model's fair-order clock moves to the job just taken (jobs/fair-redis.ts); an outage only costs fairness. */
  private async advanceFairTime(model: string, priority: number): Promise<void> {
    const p = this.keys.prefix;
    const keys = { fair: this.keys.fair(model), prioritized: bullKey(p, model, 'prioritized'), wait: bullKey(p, model, 'wait') };
    await advanceFairTime(this.redis, keys, priority).catch((err: unknown) =>
      this.opts.log?.warn({ err, model }, 'fair-order clock not moved'),
    );
  }

  /** Runs one job; its return value (the terminal event) is what BullMQ stores as the job's result. */
  private async process(model: string, job: Job): Promise<Wire> {
    const id = job.id as string;
    const attempt = String(job.attemptsStarted);
    const controller = new AbortController();
    if (await this.redis.exists(this.keys.cancel(id))) {
      return toWire({ type: 'error', kind: 'cancelled', message: 'generation cancelled before it started' } satisfies Terminal);
    }
    this.running.set(id, controller);
    // One job at a time: it starts now. Batching: the head of each batch moves the clock when its batch starts
    // (batchStarting), so jobs that only wait in the batcher do not push the fair clock past the others' backlog.
    this.priorities.set(id, job.priority);
    if ((this.opts.concurrency ?? 1) <= 1) await this.advanceFairTime(model, job.priority);
    const emit = (event: JobEvent, watch?: AbortController) => this.append(id, ['e', encodeJobEvent(event), 'a', attempt], watch);
    const spec = decodeJobSpec(job.data);
    const fields = { jobId: id, model, attempt: job.attemptsStarted, ...jobLogFields(spec) };
    this.opts.log?.info(fields, 'job started');
    emit({ type: 'started', worker: this.id });
    const ctx: JobContext = {
      id,
      signal: controller.signal,
      submittedAt: job.timestamp,
      emit: (event) => {
        if (isTerminal(event)) return;
        // After each step, the same round trip asks whether the job was cancelled.
        emit(event, event.type === 'progress' ? controller : undefined);
      },
    };
    const started = performance.now();
    let end: Terminal;
    try {
      end = await this.opts.execute(spec, ctx);
    } catch (err) {
      this.opts.log?.error({ err, ...fields }, 'job failed');
      end = { type: 'error', kind: 'failed', message: (err as Error)?.message ?? String(err) };
    } finally {
      this.running.delete(id);
      this.priorities.delete(id);
    }
    const outcome = end.type === 'result' ? 'ok' : end.kind;
    this.opts.log?.info({ ...fields, outcome, ms: Math.round(performance.now() - started) }, 'job ended');
    // Batching: the batcher measures whole batches (measureBatch); a job's own time includes its wait and its batch.
    if (end.type === 'result' && (this.opts.concurrency ?? 1) <= 1) this.measure(model, jobCost(spec), performance.now() - started);
    return toWire(end);
  }

  /**
   * Adds fields to the job's stream and renews its TTL; a failure (Redis gone) only costs the reader that event.
   * With `watch`, the same transaction reads the job's cancel flag and aborts `watch` when it is set.
   */
  private append(id: string, fields: string[], watch?: AbortController): void {
    const key = this.keys.events(id);
    const tx = this.redis
      .multi()
      .xadd(key, '*', ...fields)
      .pexpire(key, this.opts.eventTtlMs ?? 600_000);
    if (watch) tx.exists(this.keys.cancel(id));
    tx.exec()
      .then((replies) => {
        if (watch && replies?.[2]?.[1] === 1) watch.abort();
      })
      .catch(() => {});
  }

  /** BullMQ priority (the fair start tag, jobs/fair-redis.ts) of a job this worker holds; 0 when it has none. */
  priorityOf(id: string): number {
    return this.priorities.get(id) ?? 0;
  }

  /** A batch headed by job `id` of `model` starts: the model's fair clock moves to that job's tag. */
  async batchStarting(model: string, id: string): Promise<void> {
    await this.advanceFairTime(model, this.priorityOf(id));
  }

  /** For each job id, whether it is still wanted: no cancel flag set (a job waiting for its batch checks once more). */
  async stillWanted(ids: readonly string[]): Promise<boolean[]> {
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.exists(this.keys.cancel(id));
    const replies = (await pipe.exec()) ?? [];
    return ids.map((_, i) => replies[i]?.[1] !== 1);
  }

  /** A batch of `jobs` of `model` ran whole in `ms`: the worker's speed, per cost unit of all of them. */
  measureBatch(model: string, jobs: readonly JobSpec[], ms: number): void {
    this.measure(
      model,
      jobs.reduce((sum, j) => sum + jobCost(j), 0),
      ms,
    );
  }

  /** Moving average of the time per cost unit, as the in-process queue measures its lanes. */
  private measure(model: string, cost: number, ms: number): void {
    if (cost <= 0) return;
    const prev = this.msPerUnit.get(model);
    this.msPerUnit.set(model, prev === undefined ? ms / cost : prev * 0.7 + (ms / cost) * 0.3);
  }

  private record(): WorkerRecord {
    return {
      id: this.id,
      host: hostname(),
      pid: process.pid,
      startedAt: this.startedAt,
      draining: this.draining,
      models: Object.fromEntries(
        this.opts.models.map(({ name, info }) => [
          name,
          { ...(info ? { info } : {}), ready: true, msPerUnit: this.msPerUnit.get(name) ?? null },
        ]),
      ),
    };
  }

  private async beat(): Promise<void> {
    const ttl = 3 * (this.opts.heartbeatMs ?? 1000);
    await this.redis
      .multi()
      .set(this.keys.worker(this.id), JSON.stringify(this.record()), 'PX', ttl)
      .sadd(this.keys.workers, this.id)
      .exec();
  }

  /** SIGTERM's path: takes no new job, finishes the running ones, leaves the cluster, disconnects. */
  async close(): Promise<void> {
    this.draining = true;
    await this.beat().catch(() => {});
    await Promise.all(this.workers.map((w) => w.close()));
    clearInterval(this.heartbeat);
    await this.redis
      .multi()
      .del(this.keys.worker(this.id))
      .srem(this.keys.workers, this.id)
      .exec()
      .catch(() => {});
    this.redis.disconnect();
  }

  /**
   * What `kill -9` leaves behind, for tests in one process: the connection drops at once, running jobs keep their
   * locks until they expire (then BullMQ runs them elsewhere), and the heartbeat record expires on its own.
   */
  async crash(): Promise<void> {
    clearInterval(this.heartbeat);
    this.redis.disconnect();
    for (const c of this.running.values()) c.abort();
    await Promise.allSettled(this.workers.map((w) => w.close(true)));
  }
}
