// The embedded JobQueue: jobs wait in memory, one lane per local model, and run one at a time per lane (a
// pipeline's sessions already use every core), so several models can run at once. Waiting jobs leave in fair order
// across clients, weighted by their cost (jobs/fair.ts). Events are buffered per job
// and replayed to its reader, exactly as a Redis-backed queue would deliver them from another process.
// drain() is the graceful half of shutdown: no new jobs, the admitted ones finish until a deadline; close() is the rest.
import { randomUUID } from 'node:crypto';
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
  running: Entry | undefined;
  /** Measured milliseconds per cost unit (moving average). */
  msPerUnit: number;
  /** Settles when the running job does (close() waits for it). */
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
      this.lanes.set(m, { pending: new FairQueue<Entry>(), running: undefined, msPerUnit, current: Promise.resolve() });
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
    const position = lane.pending.ordered().indexOf(entry) + (lane.running ? 1 : 0);
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
    for (const [model, lane] of this.lanes) models[model] = { waiting: lane.pending.length, running: lane.running ? 1 : 0 };
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
    const ahead = [...lane.pending.items(), ...(lane.running ? [lane.running] : [])].reduce((sum, e) => sum + jobCost(e.job), 0);
    return Math.max(1, Math.ceil(((ahead + jobCost(job)) * lane.msPerUnit) / 1000));
  }

  /** Starts the lane's next job when it is idle. */
  private pump(lane: Lane): void {
    // Not stopped by drain() or close(): a draining queue still runs what it admitted, close() empties the lanes.
    if (lane.running) return;
    const next = lane.pending.shift();
    if (!next) return;
    lane.running = next;
    next.startedAt = Date.now();
    const started = performance.now();
    this.emit(next, { type: 'started', worker: this.opts.workerName ?? 'embedded' });
    lane.current = this.run(next).then((finished) => {
      lane.running = undefined;
      // Only whole runs say how fast the worker is (a cancelled job ends early).
      const cost = jobCost(next.job);
      if (finished && cost > 0) lane.msPerUnit = lane.msPerUnit * 0.7 + ((performance.now() - started) / cost) * 0.3;
      this.pump(lane);
      this.notifyIdle();
    });
  }

  private isIdle(): boolean {
    for (const lane of this.lanes.values()) if (lane.running || lane.pending.length > 0) return false;
    return true;
  }

  private notifyIdle(): void {
    if (this.isIdle()) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /** Runs the job to its terminal event; true when it produced a result. */
  private async run(entry: Entry): Promise<boolean> {
    const ctx: JobContext = {
      id: entry.id,
      signal: entry.controller.signal,
      submittedAt: entry.submittedAt,
      emit: (event) => {
        if (!isTerminal(event)) this.emit(entry, event);
      },
    };
    try {
      const end = await this.opts.execute(entry.job, ctx);
      this.emit(entry, end);
      return end.type === 'result';
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
    const running = lane.running;
    let t = running ? Math.max(0, jobCost(running.job) * lane.msPerUnit - (Date.now() - (running.startedAt ?? Date.now()))) : 0;
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
      lane.running?.controller.abort(SHUTDOWN_MESSAGE);
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
