// Batching across requests on a cluster worker: BullMQ hands the worker up to maxBatchJobs jobs of a model at once, and
// this runs them as the embedded queue's lanes do: the first in fair order (lowest BullMQ priority, then arrival),
// with the compatible ones (same batchKey, while their UNet rows fit in one call) in one engine batch; the rest wait
// for the next batch, on this worker.
import { type BatchExecutor, type BatchJob, batchKey, batchRows } from '../jobs/batch.js';
import type { JobEvent } from '../jobs/types.js';

type Terminal = Extract<JobEvent, { type: 'result' | 'error' }>;

export interface LocalBatcherOptions {
  executeBatch: BatchExecutor;
  /** Most jobs in one batch. */
  maxBatchJobs: number;
  /** UNet rows per call (engine.maxBatchSize): jobs join only while their rows fit, or in the first job's own. */
  maxBatchRows: number;
  /** After a batch, how long to wait for more compatible jobs when there is room for them (none when idle). */
  batchWindowMs: number;
  /** Just before a batch starts: which of its jobs are still wanted (a cancel flag may have been set meanwhile). */
  stillWanted?(jobs: readonly BatchJob[]): Promise<boolean[]>;
  /** A batch is about to run, headed by `head` (the cluster moves its fair clock here). */
  onBatchStart?(head: BatchJob): Promise<void>;
  /** A batch whose every job produced its result took `ms` (the worker's speed is measured per batch, not per job). */
  onBatchDone?(jobs: readonly BatchJob[], ms: number): void;
}

interface Waiting {
  item: BatchJob;
  /** Fair rank (the job's BullMQ priority: its start tag); lower runs first, then arrival. */
  rank: number;
  seq: number;
  resolve(end: Terminal): void;
}

export class LocalBatcher {
  private readonly waiting: Waiting[] = [];
  private busy = false;
  private seq = 0;

  constructor(private readonly opts: LocalBatcherOptions) {}

  /**
   * Runs the job, alone or with others; resolves to its terminal event, never rejects. `rank` orders the jobs held here
   * as the cluster's fair order does (their BullMQ priorities), ties by arrival.
   */
  run(item: BatchJob, rank = 0): Promise<Terminal> {
    return new Promise<Terminal>((resolve) => {
      this.waiting.push({ item, rank, seq: this.seq++, resolve });
      this.waiting.sort((a, b) => a.rank - b.rank || a.seq - b.seq);
      this.pump(false);
    });
  }

  private pump(justFinished: boolean): void {
    if (this.busy || this.waiting.length === 0) return;
    this.busy = true;
    const gather = justFinished && this.opts.batchWindowMs > 0 && this.hasRoom(this.batchFor(this.waiting[0]));
    const start = () => this.runNext();
    const done = gather ? new Promise((r) => setTimeout(r, this.opts.batchWindowMs)).then(start) : start();
    void done.then(() => {
      this.busy = false;
      this.pump(true);
    });
  }

  /** The oldest waiting job and the compatible ones after it, while they fit (a job too big is passed over). */
  private batchFor(head: Waiting): Waiting[] {
    const key = this.opts.maxBatchJobs > 1 ? batchKey(head.item.job) : undefined;
    if (key === undefined) return [head];
    const batch = [head];
    let room = Math.max(this.opts.maxBatchRows, batchRows(head.item.job)) - batchRows(head.item.job);
    for (const w of this.waiting) {
      if (batch.length >= this.opts.maxBatchJobs) break;
      if (w === head || batchKey(w.item.job) !== key || batchRows(w.item.job) > room) continue;
      batch.push(w);
      room -= batchRows(w.item.job);
    }
    return batch;
  }

  private hasRoom(batch: readonly Waiting[]): boolean {
    const rows = batch.reduce((sum, w) => sum + batchRows(w.item.job), 0);
    return batch.length < this.opts.maxBatchJobs && batchKey(batch[0].item.job) !== undefined && rows < this.opts.maxBatchRows;
  }

  private async runNext(): Promise<void> {
    const head = this.waiting[0];
    if (!head) return;
    const picked = this.batchFor(head);
    for (const w of picked) this.waiting.splice(this.waiting.indexOf(w), 1);
    const wanted = this.opts.stillWanted ? await this.opts.stillWanted(picked.map((w) => w.item)).catch(() => picked.map(() => true)) : [];
    const batch: Waiting[] = [];
    picked.forEach((w, i) => {
      if (wanted[i] === false || w.item.ctx.signal.aborted)
        w.resolve({ type: 'error', kind: 'cancelled', message: 'generation cancelled before it started' });
      else batch.push(w);
    });
    if (batch.length === 0) return;
    await this.opts.onBatchStart?.(batch[0].item).catch(() => {});
    const t0 = performance.now();
    const ends = this.opts.executeBatch(batch.map((w) => w.item));
    const settled = await Promise.all(
      ends.map((end, i) =>
        end
          .catch((err: unknown): Terminal => ({ type: 'error', kind: 'failed', message: (err as Error)?.message ?? String(err) }))
          .then((e) => {
            batch[i].resolve(e);
            return e;
          }),
      ),
    );
    if (settled.every((e) => e.type === 'result'))
      this.opts.onBatchDone?.(
        batch.map((w) => w.item),
        performance.now() - t0,
      );
  }
}
