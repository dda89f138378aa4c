// In-process FIFO job queue in front of the engine: bounded length, cancellation of queued and running jobs.
// One job runs per pipeline at a time (a pipeline's sessions already use every core).
import { randomUUID } from 'node:crypto';
import { AbortError, type GenerateResult, type Pipeline } from '../engine/types.js';
import { QueueFullError, type GenerationJob, type JobHandle, type JobQueue } from './types.js';

interface Entry {
  id: string;
  job: GenerationJob;
  resolve(r: GenerateResult): void;
  reject(e: unknown): void;
  controller: AbortController;
  detach(): void;
}

export interface InProcessQueueOptions {
  /** Most jobs waiting (not counting running ones) before enqueue throws QueueFullError. */
  maxWaiting: number;
  /** Looks up the pipeline for a job's model. */
  pipelineFor(model: string): Pipeline;
  /** Seconds a typical job takes, for Retry-After (updated from observed run times). */
  initialJobSeconds?: number;
}

export class InProcessQueue implements JobQueue {
  private readonly pending: Entry[] = [];
  private readonly active = new Map<string, Entry>();
  private closed = false;
  private avgJobMs: number;

  constructor(private readonly opts: InProcessQueueOptions) {
    this.avgJobMs = (opts.initialJobSeconds ?? 2) * 1000;
  }

  get waiting(): number {
    return this.pending.length;
  }

  get running(): number {
    return this.active.size;
  }

  async enqueue(job: GenerationJob): Promise<JobHandle> {
    if (this.closed) throw new Error('queue closed');
    if (job.signal?.aborted) throw new AbortError();
    if (this.pending.length >= this.opts.maxWaiting) {
      const retry = Math.max(1, Math.ceil(((this.pending.length + this.active.size) * this.avgJobMs) / 1000));
      throw new QueueFullError(this.opts.maxWaiting, retry);
    }
    const id = randomUUID();
    const controller = new AbortController();
    let entry!: Entry;
    const result = new Promise<GenerateResult>((resolve, reject) => {
      const onAbort = () => void this.cancel(id);
      job.signal?.addEventListener('abort', onAbort, { once: true });
      entry = {
        id,
        job,
        resolve,
        reject,
        controller,
        detach: () => job.signal?.removeEventListener('abort', onAbort),
      };
    });
    const position = this.pending.length + this.active.size;
    this.pending.push(entry);
    queueMicrotask(() => this.pump());
    return { id, position, result };
  }

  async cancel(id: string): Promise<boolean> {
    const i = this.pending.findIndex((e) => e.id === id);
    if (i >= 0) {
      const [e] = this.pending.splice(i, 1);
      e.detach();
      e.reject(new AbortError('generation cancelled before it started'));
      return true;
    }
    const running = this.active.get(id);
    if (running) {
      running.controller.abort();
      return true;
    }
    return false;
  }

  /** Starts the next job when nothing runs (jobs for one engine share its cores, so one at a time). */
  private pump(): void {
    if (this.closed || this.active.size > 0) return;
    const next = this.pending.shift();
    if (!next) return;
    this.active.set(next.id, next);
    const started = performance.now();
    void this.execute(next).finally(() => {
      this.active.delete(next.id);
      next.detach();
      const ms = performance.now() - started;
      this.avgJobMs = this.avgJobMs * 0.8 + ms * 0.2;
      this.pump();
    });
  }

  private async execute(e: Entry): Promise<void> {
    try {
      const pipeline = this.opts.pipelineFor(e.job.model);
      const result = await pipeline.generate(e.job.request, {
        signal: e.controller.signal,
        previewSteps: e.job.previewSteps,
        onPreview: e.job.onPreview,
        onStep: e.job.onStep ? (p) => e.job.onStep!(p.step, p.totalSteps) : undefined,
      });
      e.resolve(result);
    } catch (err) {
      e.reject(err);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const e of this.pending.splice(0)) {
      e.detach();
      e.reject(new AbortError('server shutting down'));
    }
    for (const e of this.active.values()) e.controller.abort();
  }
}
