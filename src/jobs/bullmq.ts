// The cluster JobQueue an API node uses: jobs wait in BullMQ on Redis (one queue per local model, a bound across the
// cluster), engine workers in other processes run them, and each job's events come back through a Redis stream.
import { randomInt, randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { decodeJobEvent, encodeJobEvent, encodeJobSpec, fromWire, type Wire } from './codec.js';
import { jobCost } from './cost.js';
import { fairnessFlow } from './fair.js';
import { fairTag, priorityOfTag } from './fair-redis.js';
import { type ClusterKeys, clusterKeys, liveWorkers, queueName, readyWorkersPerModel, type WorkerRecord } from './redis-keys.js';
import {
  isTerminal,
  type JobEvent,
  type JobQueue,
  type JobSpec,
  QueueClosedError,
  QueueFullError,
  type QueueStats,
  QueueUnavailableError,
  SHUTDOWN_MESSAGE,
  UnknownJobError,
} from './types.js';

type Terminal = Extract<JobEvent, { type: 'result' | 'error' }>;

/** How a lost job ends (see lost()). */
const LOST_KIND = 'unavailable';

export interface BullMqQueueOptions {
  /** redis://[user:password@]host:port[/db] (rediss:// for TLS). */
  url: string;
  /** Key prefix shared by the cluster's API nodes and workers. Default 'easel'. */
  prefix?: string;
  /** Local model names the API node serves; each has its own BullMQ queue. */
  models: readonly string[];
  /** Most jobs waiting across the whole cluster (running ones not counted) before submit throws QueueFullError. */
  maxWaiting: number;
  /** Milliseconds per cost unit for workers that have not timed a job yet. Default 250 (see InProcessQueue). */
  initialMsPerCostUnit?: number;
  /** How long a job's event stream lives unread. Default 600 s. */
  eventTtlMs?: number;
  /** A reader with no new event checks the job's state this often (a lost job, a worker gone). Default 1 s. */
  pollMs?: number;
  /** How long Redis may stay unreachable before a waiting reader gives up. Default 10 s. */
  unreachableMs?: number;
  /** How long a waiting job may have no live worker for its model before it fails. Default 30 s. */
  orphanMs?: number;
}

interface Own {
  model: string;
  /** Its reader, once events() was called: settles when the reader has ended. */
  reading?: Promise<void>;
}

/** Each job's events come from a stream entry: an event, or `end` (the terminal event is the job's return value). */
interface Entry {
  id: string;
  event?: JobEvent;
  end: boolean;
  attempt: number;
}

/** Longest wait for any Redis reply (beyond a blocking read's own timeout). */
const COMMAND_TIMEOUT_MS = 5000;

/** How long cancelled jobs get to report their end (one denoising step, and the trip through Redis). */
const CANCEL_GRACE_MS = 5000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());

export class BullMqQueue implements JobQueue {
  private readonly keys: ClusterKeys;
  private readonly queues = new Map<string, Queue>();
  private readonly own = new Map<string, Own>();
  /** Idle connections for blocking stream reads (a blocked connection serves one reader). */
  private readonly readers: Redis[] = [];
  private readonly allReaders = new Set<Redis>();
  private workersCache: { at: number; records: WorkerRecord[] } | undefined;
  private closed = false;

  private constructor(
    private readonly opts: BullMqQueueOptions,
    /** Commands (never blocking ones); shared by the BullMQ queues. */
    private readonly redis: Redis,
  ) {
    this.keys = clusterKeys(opts.prefix);
    for (const m of opts.models) this.queues.set(m, new Queue(queueName(m), { connection: redis, prefix: this.keys.prefix }));
  }

  /** Connects (waiting for Redis as long as it takes; `signal` stops waiting) and opens one queue per model. */
  static async open(opts: BullMqQueueOptions, signal?: AbortSignal): Promise<BullMqQueue> {
    // Commands fail fast while Redis is away (no offline queue): a request gets a clear error, never a hang.
    // A command timeout too: a Redis that stops answering without closing the connection must not hang a request.
    const redis = new Redis(opts.url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, commandTimeout: COMMAND_TIMEOUT_MS });
    redis.on('error', () => {}); // it reconnects by itself; callers see failures as rejected commands
    try {
      await whenReady(redis, { signal });
    } catch (err) {
      redis.disconnect();
      throw err;
    }
    const q = new BullMqQueue(opts, redis);
    await Promise.all([...q.queues.values()].map((queue) => queue.waitUntilReady()));
    return q;
  }

  private queueOf(model: string): Queue {
    const q = this.queues.get(model);
    if (!q) throw new Error(`no queue for model '${model}'`);
    return q;
  }

  /** Live worker records, read at most once per 500 ms. */
  async workerRecords(): Promise<WorkerRecord[]> {
    const now = Date.now();
    if (this.workersCache && now - this.workersCache.at < 500) return this.workersCache.records;
    const records = await liveWorkers(this.redis, this.keys);
    this.workersCache = { at: now, records };
    return records;
  }

  async submit(job: JobSpec): Promise<{ id: string; position: number }> {
    if (this.closed) throw new QueueClosedError();
    const queue = this.queueOf(job.model);
    const records = await this.unlessUnreachable(() => this.workerRecords());
    if (!readyWorkersPerModel(records)[job.model]) {
      throw new QueueUnavailableError(`no engine worker serves model '${job.model}' right now; retry later`, 5);
    }
    const counts = await this.unlessUnreachable(() => this.waitingAndActive());
    const waiting = counts.reduce((n, [w]) => n + w, 0);
    if (waiting >= this.opts.maxWaiting) {
      throw new QueueFullError(this.opts.maxWaiting, await this.retryAfterSeconds(queue, job, records));
    }
    const [w, a] = counts[[...this.queues.keys()].indexOf(job.model)];
    const id = `job_${randomUUID()}`;
    // A re-run on another worker (this one died) must draw the same image, so the seed is fixed here.
    const spec: JobSpec = { ...job, request: { ...job.request, seed: job.request.seed ?? randomInt(2 ** 32) } };
    // Fair order across clients (jobs/fair-redis.ts): the job's start tag is its priority.
    const tag = await this.unlessUnreachable(() => fairTag(this.redis, this.keys.fair(job.model), fairnessFlow(job), jobCost(spec)));
    await this.unlessUnreachable(() =>
      // The job's name is its cost, so Retry-After reads costs without fetching payloads.
      queue.add(String(jobCost(spec)), encodeJobSpec(spec), {
        jobId: id,
        priority: priorityOfTag(tag),
        // The API node removes a job once it has read its end; these catch the ones whose node died first.
        removeOnComplete: { age: 600 },
        removeOnFail: { age: 600 },
      }),
    );
    this.own.set(id, { model: job.model });
    return { id, position: w + a };
  }

  /** Runs a Redis call; a connection failure becomes QueueUnavailableError (a 503 the client may retry). */
  private async unlessUnreachable<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (isConnectionError(err)) throw new QueueUnavailableError('the job queue (Redis) is unreachable; retry later', 2);
      throw err;
    }
  }

  /**
   * Seconds until `job` could start: the cost of the jobs waiting and running on its model, plus its own, at the
   * throughput the model's live workers have measured together (jobs/cost.ts units per millisecond).
   */
  private async retryAfterSeconds(queue: Queue, job: JobSpec, records: readonly WorkerRecord[]): Promise<number> {
    const ahead = [...(await this.waitingCosts(queue)), ...(await this.costs(queue, 'active'))].reduce((sum, j) => sum + j.cost, 0);
    const ms = (ahead + jobCost(job)) / this.unitsPerMs(job.model, records);
    return Math.max(1, Math.ceil(ms / 1000));
  }

  /** Waiting and running jobs per queue: [waiting (plain and prioritized), active], in the order of this.queues. */
  private waitingAndActive(): Promise<Array<[number, number]>> {
    return Promise.all(
      // One read per queue (BullMQ counts in one script), so a job moving to active is not counted twice.
      [...this.queues.values()].map(async (q) => {
        const c = await q.getJobCounts('waiting', 'prioritized', 'active');
        return [(c.waiting ?? 0) + (c.prioritized ?? 0), c.active ?? 0] as [number, number];
      }),
    );
  }

  /** Waiting jobs with their cost, in the order workers take them: the plain list (none from this version), then by priority. */
  private async waitingCosts(queue: Queue): Promise<Array<{ id: string; cost: number }>> {
    const prioritized = await this.redis.zrange(queue.keys.prioritized, 0, -1);
    return [...(await this.costs(queue, 'wait')), ...(await this.costsOf(queue, prioritized))];
  }

  /** The jobs of a BullMQ list with their cost (from their names), oldest first. */
  private async costs(queue: Queue, list: 'wait' | 'active'): Promise<Array<{ id: string; cost: number }>> {
    // BullMQ pushes new jobs on the left and takes the oldest from the right.
    return this.costsOf(queue, (await this.redis.lrange(queue.keys[list], 0, -1)).reverse());
  }

  private async costsOf(queue: Queue, ids: string[]): Promise<Array<{ id: string; cost: number }>> {
    if (ids.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hget(queue.toKey(id), 'name');
    const names = (await pipe.exec()) ?? [];
    return ids.map((id, i) => ({ id, cost: Number(names[i]?.[1]) || 0 }));
  }

  /** Cost units per millisecond the model's live workers do together, as they measured it (or the initial guess). */
  private unitsPerMs(model: string, records: readonly WorkerRecord[]): number {
    const initial = this.opts.initialMsPerCostUnit ?? 250;
    let sum = 0;
    for (const r of records) {
      const m = r.models[model];
      if (m?.ready && !r.draining) sum += 1 / (m.msPerUnit ?? initial);
    }
    return sum || 1 / initial;
  }

  events(id: string): AsyncIterable<JobEvent> {
    const own = this.own.get(id);
    if (!own || own.reading) throw new UnknownJobError(id);
    let ended = () => {};
    own.reading = new Promise<void>((resolve) => {
      ended = resolve;
    });
    return this.follow(id, own, ended);
  }

  /**
   * Reads the job's stream from its start. A re-run (its first worker died) starts its steps again: a partial image
   * already passed on is not repeated, `started` is passed once, and the job's one end is its return value.
   */
  private async *follow(id: string, own: Own, ended: () => void): AsyncGenerator<JobEvent> {
    let conn: Redis | undefined;
    let last = '0-0';
    let lastPartial = -1;
    let attempt = 0;
    let started = false;
    let unreachableSince: number | undefined;
    let orphanSince: number | undefined;
    try {
      for (;;) {
        let entries: Entry[] | null;
        try {
          conn ??= await this.borrowReader();
          entries = await this.read(conn, id, last);
          unreachableSince = undefined;
        } catch (err) {
          if (conn) this.dropReader(conn);
          conn = undefined;
          if (this.closed && this.redis.status === 'end') {
            yield { type: 'error', kind: 'failed', message: 'the job queue closed before the job ended' };
            return;
          }
          unreachableSince ??= Date.now();
          if (Date.now() - unreachableSince > (this.opts.unreachableMs ?? 10_000)) {
            yield lost(`lost the job queue (Redis) while job ${id} ran: ${(err as Error).message}`);
            return;
          }
          await sleep(250);
          continue;
        }
        if (entries === null) {
          // Nothing new for a while: is the job still somewhere it can end?
          const check = await this.checkJob(id, own, orphanSince).catch(() => undefined);
          if (check?.end) {
            yield check.end;
            return;
          }
          orphanSince = check?.orphanSince;
          continue;
        }
        for (const e of entries) {
          last = e.id;
          if (e.end) {
            yield await this.endOf(id, own.model).catch((err: unknown) =>
              lost(`the result of job ${id} could not be read: ${(err as Error).message}`),
            );
            return;
          }
          const event = e.event!;
          if (isTerminal(event)) {
            yield event;
            return;
          }
          if (e.attempt < attempt) continue; // a worker that lost the job to a re-run
          attempt = e.attempt;
          if (event.type === 'started') {
            if (started) continue;
            started = true;
          } else if (event.type === 'partial') {
            if (event.index <= lastPartial) continue;
            lastPartial = event.index;
          }
          yield event;
        }
      }
    } finally {
      if (conn) this.releaseReader(conn);
      this.own.delete(id);
      ended();
      void this.forget(id, own.model);
    }
  }

  /** New stream entries after `last`, or null when none came within pollMs. */
  private async read(conn: Redis, id: string, last: string): Promise<Entry[] | null> {
    const reply = await conn.xread('COUNT', 32, 'BLOCK', this.opts.pollMs ?? 1000, 'STREAMS', this.keys.events(id), last);
    if (!reply) return null;
    return reply[0][1].map(([entryId, fields]) => {
      const f = Object.fromEntries(fields.flatMap((v, i) => (i % 2 === 0 ? [[v, fields[i + 1]]] : [])));
      return {
        id: entryId,
        end: f.end !== undefined,
        attempt: Number(f.a ?? 0),
        ...(f.e !== undefined ? { event: decodeJobEvent(f.e) } : {}),
      };
    });
  }

  /** The terminal event of a job BullMQ holds as finished: its return value, or why it failed (stalled too often). */
  private async endOf(id: string, model: string): Promise<Terminal> {
    const job = await this.queueOf(model).getJob(id);
    if (!job) return { type: 'error', kind: 'failed', message: `job ${id} ended but its result is gone from the queue` };
    if (job.finishedOn && job.returnvalue != null) return fromWire(job.returnvalue as Wire) as Terminal;
    return { type: 'error', kind: 'failed', message: job.failedReason || `job ${id} failed on its worker` };
  }

  /** On a quiet stream: a finished job's end, a vanished job (Redis lost it) or one left with no worker fails. */
  private async checkJob(id: string, own: Own, orphanSince?: number): Promise<{ end?: Terminal; orphanSince?: number }> {
    const state = await this.queueOf(own.model).getJobState(id);
    if (state === 'completed' || state === 'failed') {
      // The worker finished it but its `end` entry was lost (it died in between, or the stream expired).
      return { end: await this.endOf(id, own.model) };
    }
    if (state === 'unknown') {
      return { end: lost(`job ${id} is gone from the queue (did Redis restart?)`) };
    }
    if (state !== 'waiting' && state !== 'prioritized') return {};
    this.workersCache = undefined;
    if (readyWorkersPerModel(await this.workerRecords())[own.model]) return {};
    const since = orphanSince ?? Date.now();
    if (Date.now() - since <= (this.opts.orphanMs ?? 30_000)) return { orphanSince: since };
    await this.queueOf(own.model).remove(id);
    return { end: lost(`no engine worker for model '${own.model}' took job ${id}`) };
  }

  /** After its end was read: the job and its stream are no longer needed. */
  private async forget(id: string, model: string): Promise<void> {
    if (this.redis.status !== 'ready') return;
    await Promise.allSettled([this.redis.del(this.keys.events(id)), this.queueOf(model).remove(id)]);
  }

  /** `message`: what a waiting job's end says (the default: its client cancelled). */
  async cancel(id: string, message = 'generation cancelled before it started'): Promise<boolean> {
    if (this.redis.status !== 'ready') return false;
    const model = this.own.get(id)?.model ?? (await this.findModel(id));
    if (model === undefined) return false;
    const queue = this.queueOf(model);
    const state = await queue.getJobState(id);
    if (state === 'waiting' || state === 'prioritized' || state === 'delayed') {
      if ((await queue.remove(id)) === 1) {
        await this.append(id, { type: 'error', kind: 'cancelled', message });
        return true;
      }
      // It was taken between the two calls: stop it running.
    } else if (state !== 'active') {
      return false;
    }
    // The worker checks the flag when it takes the job and after every step.
    await this.redis.set(this.keys.cancel(id), '1', 'PX', this.opts.eventTtlMs ?? 600_000);
    return true;
  }

  private async findModel(id: string): Promise<string | undefined> {
    for (const [model, queue] of this.queues) if ((await queue.getJobState(id)) !== 'unknown') return model;
    return undefined;
  }

  /** Adds an event to the job's stream (the API's own: a waiting job's cancellation). */
  private async append(id: string, event: JobEvent): Promise<void> {
    const key = this.keys.events(id);
    await this.redis
      .multi()
      .xadd(key, '*', 'e', encodeJobEvent(event), 'a', '0')
      .pexpire(key, this.opts.eventTtlMs ?? 600_000)
      .exec();
  }

  /** With Redis unreachable, no worker counts as ready (so /readyz answers 503). */
  async stats(): Promise<QueueStats> {
    const none = Object.fromEntries(this.opts.models.map((m) => [m, 0]));
    try {
      const names = [...this.queues.keys()];
      const counts = await this.waitingAndActive();
      this.workersCache = undefined;
      const ready = readyWorkersPerModel(await this.workerRecords());
      const workers = Object.fromEntries(this.opts.models.map((m) => [m, ready[m] ?? 0]));
      const models = Object.fromEntries(names.map((m, i) => [m, { waiting: counts[i][0], running: counts[i][1] }]));
      return { waiting: counts.reduce((n, [w]) => n + w, 0), running: counts.reduce((n, [, a]) => n + a, 0), models, workers };
    } catch (err) {
      if (!isConnectionError(err)) throw err;
      const models = Object.fromEntries(this.opts.models.map((m) => [m, { waiting: 0, running: 0 }]));
      return { waiting: 0, running: 0, models, workers: none };
    }
  }

  private async borrowReader(): Promise<Redis> {
    const idle = this.readers.pop();
    if (idle) return idle;
    const conn = this.redis.duplicate({ commandTimeout: (this.opts.pollMs ?? 1000) + COMMAND_TIMEOUT_MS });
    conn.on('error', () => {});
    this.allReaders.add(conn);
    try {
      await whenReady(conn, { timeoutMs: 2000 });
    } catch (err) {
      this.dropReader(conn);
      throw err;
    }
    return conn;
  }

  private releaseReader(conn: Redis): void {
    if (this.closed || conn.status !== 'ready') this.dropReader(conn);
    else this.readers.push(conn);
  }

  private dropReader(conn: Redis): void {
    this.allReaders.delete(conn);
    conn.disconnect();
  }

  /**
   * Shutdown's drain: refuses new jobs at once (QueueClosedError); this node's jobs may finish within `deadlineMs`,
   * then the ones left are cancelled. Resolves when the readers of its jobs have ended.
   */
  async drain(deadlineMs: number): Promise<void> {
    this.closed = true;
    await this.shedUnfinishable(deadlineMs).catch(() => {});
    const all = this.readersEnded();
    const timer = setTimeout(() => void this.cancelOwn(), deadlineMs);
    try {
      await Promise.race([all, sleep(deadlineMs + CANCEL_GRACE_MS)]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Cancels now this node's waiting jobs that would not finish within `budgetMs` (the work ahead of them in their
   * model's queue, then their own, at the workers' measured speed), so their clients can retry elsewhere at once.
   */
  private async shedUnfinishable(budgetMs: number): Promise<void> {
    const records = await this.workerRecords();
    for (const [model, queue] of this.queues) {
      if (![...this.own.values()].some((o) => o.model === model)) continue;
      const speed = this.unitsPerMs(model, records);
      let ahead = (await this.costs(queue, 'active')).reduce((sum, j) => sum + j.cost, 0);
      for (const { id, cost } of await this.waitingCosts(queue)) {
        if (this.own.has(id) && (ahead + cost) / speed > budgetMs) await this.cancel(id, SHUTDOWN_MESSAGE);
        else ahead += cost;
      }
    }
  }

  /** Settles when every reader of this node's jobs has ended. */
  private readersEnded(): Promise<unknown> {
    return Promise.all([...this.own.values()].map((o) => o.reading));
  }

  private async cancelOwn(): Promise<void> {
    await Promise.allSettled([...this.own.keys()].map((id) => this.cancel(id, SHUTDOWN_MESSAGE)));
  }

  /** Refuses new jobs, cancels this node's jobs (waiting ones removed, running ones stopped), waits for them, disconnects. */
  async close(): Promise<void> {
    this.closed = true;
    await this.cancelOwn();
    const all = this.readersEnded();
    await Promise.race([all, sleep(CANCEL_GRACE_MS)]);
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
    for (const conn of this.allReaders) conn.disconnect();
    this.allReaders.clear();
    this.redis.disconnect();
  }
}

/** Resolves once the client is connected (ioredis retries on its own); rejects when `signal` fires or after `timeoutMs`. */
function whenReady(redis: Redis, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      redis.off('ready', onReady);
      opts.signal?.removeEventListener('abort', onAbort);
      clearTimeout(timer);
      if (err) reject(err);
      else resolve();
    };
    const onReady = () => done();
    const onAbort = () => done(new Error('stopped waiting for Redis'));
    const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => done(new Error('Redis is unreachable')), opts.timeoutMs);
    redis.on('ready', onReady);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function isConnectionError(err: unknown): boolean {
  const msg = (err as Error)?.message ?? '';
  return /Connection is closed|enableOfflineQueue|ECONNREFUSED|ECONNRESET|MaxRetriesPerRequest|Stream isn't writeable|Command timed out/i.test(
    msg,
  );
}

/** The end of a job the queue lost: Redis restarted or stayed unreachable, or no worker was left to run it. */
function lost(message: string): Terminal {
  return { type: 'error', kind: LOST_KIND, message };
}
