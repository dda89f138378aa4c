// The embedded JobQueue: jobs wait in memory, one lane per local model, and run one batch at a time per lane (a
// pipeline's sessions already use every core), so several models can run at once. Waiting jobs leave in fair order
// across clients, weighted by their cost (jobs/fair.ts); compatible ones (jobs/batch.ts) leave together as one batch,
// each keeping its own events and cancel. Events are buffered per job
// and replayed to its reader, exactly as a Redis-backed queue would deliver them from another process.
// drain() is the graceful half of shutdown: no new jobs, the admitted ones finish until a deadline; close() is the rest.
import { randomUUID } from 'node:crypto';
import { type BatchExecutor, batchKey, batchRows } from './batch.js';
import { jobCost } from './cost.js';
import { FairQueue, fairnessFlow } from './fair.js';
import {
  isTerminal,
  type JobContext,
  type JobEvent,
  type JobExecutor,
  type JobQueue,
  type JobSpec,
  QueueClosedError,
  QueueFullError,
  type QueueStats,
  SHUTDOWN_MESSAGE,
  UnknownJobError,
} from './types.js';

/** submit() after drain() or close() began: the server is shutting down (the API answers a retryable 503). */
export interface InProcessQueueOptions {
  /** Most jobs waiting, across all models (running ones not counted), before submit throws QueueFullError. */
  maxWaiting: number;
  /** Local model names; each gets its own lane. */
  models: readonly string[];
  execute: JobExecutor;
  /**
   * Runs compatible jobs (same jobs/batch.ts batchKey) as one batch. Absent: every job runs alone through `execute`.
   */
  executeBatch?: BatchExecutor;
  /** Most jobs one batch takes (the next in fair order, then compatible ones in fair order); 1: no batching. Default 4. */
  maxBatchJobs?: number;
  /**
   * UNet rows per call (engine.maxBatchSize): jobs join a batch only while its rows fit in one call, or in the first
   * job's own, so a batch runs about as long as one job and fair order still holds between batches. Default 8.
   */
  maxBatchRows?: number;
  /**
   * Milliseconds a lane that just finished waits for more compatible jobs before starting the next batch, when others
   * are already waiting and fewer than maxBatchJobs of them fit. An idle lane starts a new job at once. Default 15.
   */
  batchWindowMs?: number;
  /** Ready workers per model (the embedded worker: 1 once its pipeline is loaded and warm). */
  workers(): Record<string, number>;
  /**
   * Milliseconds one cost unit (jobs/cost.ts) takes, for Retry-After until jobs have been timed; then each lane
   * measures its own. Default 250 (a 512x512 guided step in about half a second on 2 CPU cores).
   */
  initialMsPerCostUnit?: number;
  /** How long a finished job's events stay readable when nobody has read them. Default 60 s. */
  retainMs?: number;
  /** Name reported in `started` events. */
  workerName?: string;
}

interface Entry {
  id: string;
  job: JobSpec;
  submittedAt: number;
  /** Epoch ms when its worker took it. */
  startedAt?: number;
  events: JobEvent[];
  wake: Array<() => void>;
  controller: AbortController;
  finished: boolean;
}

interface Lane {
  /** Waiting jobs in fair order across clients (jobs/fair.ts), weighted by cost. */
  pending: FairQueue<Entry>;
  /** The jobs of the running batch (empty when none runs). */
  running: Entry[];
  /** Gathering a batch or running one: the next pump waits. */
  busy: boolean;
  /** Measured milliseconds per cost unit (moving average). */
  msPerUnit: number;
  /** Settles when the gathering and the running batch do (close() waits for it). */
  current: Promise<void>;
}

export class InProcessQueue implements JobQueue {
  private readonly jobs = new Map<string, Entry>();
  private readonly lanes = new Map<string, Lane>();
  /** Set by drain() or close(): submit() refuses. */
  private closed = false;
  /** Called whenever a lane goes idle (drain() waits for all of them). */
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly opts: InProcessQueueOptions) {
    const msPerUnit = opts.initialMsPerCostUnit ?? 250;
    for (const m of opts.models)
      this.lanes.set(m, { pending: new FairQueue<Entry>(), running: [], busy: false, msPerUnit, current: Promise.resolve() });
  }

  async submit(job: JobSpec): Promise<{ id: string; position: number }> {
    if (this.closed) throw new QueueClosedError();
    const lane = this.lanes.get(job.model);
    if (!lane) throw new Error(`no worker serves model '${job.model}'`);
    const waiting = this.waitingCount();
    if (waiting >= this.opts.maxWaiting) {
      throw new QueueFullError(this.opts.maxWaiting, this.retryAfterSeconds(lane, job));
    }
    const entry: Entry = {
      id: `job_${randomUUID()}`,
      job,
      submittedAt: Date.now(),
      events: [],
      wake: [],
      controller: new AbortController(),
      finished: false,
    };
    this.jobs.set(entry.id, entry);
    lane.pending.push(fairnessFlow(job), entry, jobCost(job));
    const position = lane.pending.ordered().indexOf(entry) + (lane.running.length > 0 ? 1 : 0);
    queueMicrotask(() => this.pump(lane));
    return { id: entry.id, position };
  }

  events(id: string): AsyncIterable<JobEvent> {
    const entry = this.jobs.get(id);
    if (!entry) throw new UnknownJobError(id);
    return this.read(entry);
  }

  private async *read(entry: Entry): AsyncGenerator<JobEvent> {
    let i = 0;
    for (;;) {
      while (i < entry.events.length) {
        const event = entry.events[i++];
        yield event;
        if (isTerminal(event)) {
          this.jobs.delete(entry.id); // read to the end: nothing left to replay
          return;
        }
      }
      await new Promise<void>((resolve) => entry.wake.push(resolve));
    }
  }

  private emit(entry: Entry, event: JobEvent): void {
    if (entry.finished) return;
    entry.events.push(event);
    if (isTerminal(event)) {
      entry.finished = true;
      // Nobody may ever read it (the client left before reading): forget it after a while either way.
      setTimeout(() => this.jobs.delete(entry.id), this.opts.retainMs ?? 60_000).unref();
    }
    for (const wake of entry.wake.splice(0)) wake();
  }

  async cancel(id: string): Promise<boolean> {
    const entry = this.jobs.get(id);
    if (!entry || entry.finished) return false;
    const lane = this.lanes.get(entry.job.model)!;
    if (lane.pending.remove(entry)) {
      this.emit(entry, { type: 'error', kind: 'cancelled', message: 'generation cancelled before it started' });
      return true;
    }
    entry.controller.abort();
    return true;
  }

  async stats(): Promise<QueueStats> {
    const models: QueueStats['models'] = {};
    for (const [model, lane] of this.lanes) models[model] = { waiting: lane.pending.length, running: lane.running.length };
    const running = Object.values(models).reduce((n, m) => n + m.running, 0);
    return { waiting: this.waitingCount(), running, models, workers: this.opts.workers() };
  }

  private waitingCount(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.pending.length;
    return n;
  }

  /**
   * Seconds until `job` could start if it were queued now: the cost of the work ahead of it in its lane (waiting jobs
   * and the running one, counted whole) plus its own, at the lane's measured speed. One worker per lane here.
   */
  private retryAfterSeconds(lane: Lane, job: JobSpec): number {
    const ahead = [...lane.pending.items(), ...lane.running].reduce((sum, e) => sum + jobCost(e.job), 0);
    return Math.max(1, Math.ceil(((ahead + jobCost(job)) * lane.msPerUnit) / 1000));
  }

  private get maxBatchJobs(): number {
    return this.opts.executeBatch ? Math.max(1, this.opts.maxBatchJobs ?? 4) : 1;
  }

  /**
   * Starts the lane's next batch when it is idle. `justFinished`: the lane has just ended a batch, so when others wait
   * but too few compatible ones to fill a batch, it gathers for batchWindowMs first.
   */
  private pump(lane: Lane, justFinished = false): void {
    // Not stopped by drain() or close(): a draining queue still runs what it admitted, close() empties the lanes.
    if (lane.busy) return;
    const head = lane.pending.ordered()[0];
    if (!head) return;
    lane.busy = true;
    const window = this.opts.batchWindowMs ?? 15;
    const gather = justFinished && window > 0 && this.hasRoom(this.batchFor(lane, head));
    const run = () => this.runBatch(lane);
    lane.current = (gather ? new Promise((r) => setTimeout(r, window)).then(run) : run()).then(() => {
      lane.busy = false;
      this.pump(lane, true);
      this.notifyIdle();
    });
  }

  /**
   * `head` and the waiting jobs that can run with it, in fair order: up to maxBatchJobs, and while their UNet rows fit
   * in max(maxBatchRows, head's rows); a job that does not fit is passed over for smaller ones behind it.
   */
  private batchFor(lane: Lane, head: Entry): Entry[] {
    const key = this.maxBatchJobs > 1 ? batchKey(head.job) : undefined;
    if (key === undefined) return [head];
    const batch = [head];
    let room = Math.max(this.opts.maxBatchRows ?? 8, batchRows(head.job)) - batchRows(head.job);
    for (const e of lane.pending.ordered()) {
      if (batch.length >= this.maxBatchJobs) break;
      if (e === head || batchKey(e.job) !== key || batchRows(e.job) > room) continue;
      batch.push(e);
      room -= batchRows(e.job);
    }
    return batch;
  }

  /** Whether another job could still join this batch (gathering for it may pay). */
  private hasRoom(batch: readonly Entry[]): boolean {
    const rows = batch.reduce((sum, e) => sum + batchRows(e.job), 0);
    return batch.length < this.maxBatchJobs && batchKey(batch[0].job) !== undefined && rows < (this.opts.maxBatchRows ?? 8);
  }

  /** Takes the next job in fair order and every compatible waiting one, and runs them to their terminal events. */
  private async runBatch(lane: Lane): Promise<void> {
    const head = lane.pending.shift();
    if (!head) return;
    const batch = this.batchFor(lane, head);
    for (const e of batch.slice(1)) lane.pending.take(e);
    lane.running = batch;
    const started = performance.now();
    for (const e of batch) {
      e.startedAt = Date.now();
      this.emit(e, { type: 'started', worker: this.opts.workerName ?? 'embedded' });
    }
    const ends = batch.length === 1 ? [this.run(batch[0])] : this.runTogether(batch);
    const finished = await Promise.all(ends);
    lane.running = [];
    // Only whole runs say how fast the worker is (a cancelled job ends early).
    const cost = batch.reduce((sum, e) => sum + jobCost(e.job), 0);
    if (finished.every(Boolean) && cost > 0) lane.msPerUnit = lane.msPerUnit * 0.7 + ((performance.now() - started) / cost) * 0.3;
  }

  private isIdle(): boolean {
    for (const lane of this.lanes.values()) if (lane.busy || lane.pending.length > 0) return false;
    return true;
  }

  private notifyIdle(): void {
    if (this.isIdle()) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private context(entry: Entry): JobContext {
    return {
      id: entry.id,
      signal: entry.controller.signal,
      submittedAt: entry.submittedAt,
      emit: (event) => {
        if (!isTerminal(event)) this.emit(entry, event);
      },
    };
  }

  /** Runs the job to its terminal event; true when it produced a result. */
  private run(entry: Entry): Promise<boolean> {
    return this.settle(entry, () => this.opts.execute(entry.job, this.context(entry)));
  }

  /** Runs a batch through executeBatch: each job's terminal event is emitted as soon as it settles. */
  private runTogether(batch: readonly Entry[]): Array<Promise<boolean>> {
    let ends: Array<Promise<Extract<JobEvent, { type: 'result' | 'error' }>>>;
    try {
      ends = this.opts.executeBatch!(batch.map((e) => ({ job: e.job, ctx: this.context(e) })));
    } catch (err) {
      ends = batch.map(() => Promise.reject(err));
    }
    return batch.map((e, i) => this.settle(e, () => ends[i]));
  }

  private async settle(entry: Entry, end: () => Promise<Extract<JobEvent, { type: 'result' | 'error' }>>): Promise<boolean> {
    try {
      const event = await end();
      this.emit(entry, event);
      return event.type === 'result';
    } catch (err) {
      this.emit(entry, { type: 'error', kind: 'failed', message: (err as Error)?.message ?? String(err) });
      return false;
    }
  }

  /**
   * Shutdown's drain: refuses new jobs at once (QueueClosedError), cancels now the waiting jobs that would not finish
   * within `deadlineMs` at the lane's measured speed, lets the rest run, and at the deadline cancels whatever is left
   * (waiting or running). Resolves when every lane is idle. Cancelled jobs end with SHUTDOWN_MESSAGE.
   */
  async drain(deadlineMs: number): Promise<void> {
    this.closed = true;
    for (const lane of this.lanes.values()) this.shedUnfinishable(lane, deadlineMs);
    if (this.isIdle()) return;
    const idle = new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    const timer = setTimeout(() => this.cancelAll(), deadlineMs);
    try {
      await idle;
    } finally {
      clearTimeout(timer);
    }
    await Promise.all([...this.lanes.values()].map((l) => l.current));
  }

  /**
   * Keeps, in order, the waiting jobs whose estimated end (the running job's rest, then each kept job's cost) falls
   * within `budgetMs`; the others are cancelled now, so their clients can retry elsewhere without waiting.
   */
  private shedUnfinishable(lane: Lane, budgetMs: number): void {
    const ranFor = Date.now() - (lane.running[0]?.startedAt ?? Date.now());
    let t = Math.max(0, lane.running.reduce((sum, e) => sum + jobCost(e.job), 0) * lane.msPerUnit - ranFor);
    for (const e of lane.pending.ordered()) {
      const ms = jobCost(e.job) * lane.msPerUnit;
      if (t + ms <= budgetMs) t += ms;
      else this.cancelWaiting(lane, e);
    }
  }

  private cancelWaiting(lane: Lane, e: Entry): void {
    lane.pending.remove(e);
    this.emit(e, { type: 'error', kind: 'cancelled', message: SHUTDOWN_MESSAGE });
  }

  /** Cancels every waiting job and stops every running one. */
  private cancelAll(): void {
    for (const lane of this.lanes.values()) {
      for (const e of lane.pending.items()) this.cancelWaiting(lane, e);
      for (const e of lane.running) e.controller.abort(SHUTDOWN_MESSAGE);
    }
    this.notifyIdle();
  }

  /** Refuses new jobs, cancels waiting ones, stops running ones and waits for them to end. */
  async close(): Promise<void> {
    this.closed = true;
    this.cancelAll();
    await Promise.all([...this.lanes.values()].map((l) => l.current));
  }
}
