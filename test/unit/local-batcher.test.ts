// Batching on a cluster worker (src/worker/local-batcher.ts), on a real redis-server with the BullMQ queue and worker:
// jobs a worker takes together run as engine batches when compatible, alone when not, each with its own end; a job
// cancelled while it waits for its batch never runs.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchExecutor } from '../../src/jobs/batch.js';
import { BullMqQueue } from '../../src/jobs/bullmq.js';
import type { JobEvent, JobQueue } from '../../src/jobs/types.js';
import { BullMqWorker } from '../../src/worker/bullmq-worker.js';
import { LocalBatcher } from '../../src/worker/local-batcher.js';
import { spec, steppingExecutor } from '../contract/job-queue.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

async function collect(q: JobQueue, id: string): Promise<JobEvent[]> {
  const out: JobEvent[] = [];
  for await (const e of q.events(id)) out.push(e);
  return out;
}

/** A cluster of one queue and one worker whose executor batches through a LocalBatcher; `batches` logs each batch's prompts. */
async function cluster(maxBatchJobs: number) {
  const prefix = `b${randomUUID().slice(0, 8)}`;
  const log: string[] = [];
  const batches: string[][] = [];
  const step = steppingExecutor(log, 40, 3);
  const executeBatch: BatchExecutor = (jobs) => {
    batches.push(jobs.map((j) => j.job.request.prompt));
    return jobs.map((j) => step(j.job, j.ctx));
  };
  let worker: BullMqWorker | undefined;
  const batcher = new LocalBatcher({
    executeBatch,
    maxBatchJobs,
    maxBatchRows: 8,
    batchWindowMs: 15,
    stillWanted: (jobs) => worker!.stillWanted(jobs.map((j) => j.ctx.id)),
    onBatchStart: (head) => worker!.batchStarting('m', head.ctx.id),
  });
  worker = await BullMqWorker.start({
    url: redis.url,
    prefix,
    models: [{ name: 'm' }],
    execute: (job, ctx) => batcher.run({ job, ctx }, worker?.priorityOf(ctx.id)),
    concurrency: maxBatchJobs,
    lockMs: 1000,
    heartbeatMs: 200,
  });
  const queue = await BullMqQueue.open({ url: redis.url, prefix, models: ['m'], maxWaiting: 16, pollMs: 200 });
  return {
    queue,
    batches,
    log,
    async close() {
      await queue.close();
      await worker?.close();
    },
  };
}

describe('batching on a cluster worker', () => {
  it('runs the compatible jobs it took together in one batch, each with its own result', async () => {
    const c = await cluster(4);
    try {
      const first = await c.queue.submit(spec('m', 'first'));
      const firstDone = collect(c.queue, first.id);
      // While the first runs, three compatible jobs and one of another size queue up.
      await new Promise((r) => setTimeout(r, 30));
      const more = [];
      for (const p of ['a', 'b', 'c']) more.push(await c.queue.submit(spec('m', p)));
      const other = await c.queue.submit(
        spec('m', 'big', { request: { prompt: 'big', width: 16, height: 16, numInferenceSteps: 3, guidanceScale: 1, seed: 1 } }),
      );
      const ends = await Promise.all([firstDone, ...more.map((j) => collect(c.queue, j.id)), collect(c.queue, other.id)]);
      for (const events of ends) expect(events.at(-1)).toMatchObject({ type: 'result' });
      // Each result is its own job's (the stand-in echoes the prompt).
      const texts = ends.map((events) =>
        new TextDecoder().decode((events.at(-1) as Extract<JobEvent, { type: 'result' }>).images[0].bytes),
      );
      expect(texts).toEqual(['first', 'a', 'b', 'c', 'big']);
      expect(c.batches).toContainEqual(['a', 'b', 'c']);
      expect(c.batches.filter((b) => b.includes('big'))).toEqual([['big']]);
    } finally {
      await c.close();
    }
  });

  it('does not run a job cancelled while it waited for its batch', async () => {
    const c = await cluster(4);
    try {
      const first = await c.queue.submit(spec('m', 'first'));
      const firstDone = collect(c.queue, first.id);
      await new Promise((r) => setTimeout(r, 30));
      const keep = await c.queue.submit(spec('m', 'keep'));
      const drop = await c.queue.submit(spec('m', 'drop'));
      await new Promise((r) => setTimeout(r, 30)); // both taken by the worker, waiting for their batch
      expect(await c.queue.cancel(drop.id)).toBe(true);
      const [, kept, dropped] = await Promise.all([firstDone, collect(c.queue, keep.id), collect(c.queue, drop.id)]);
      expect(kept.at(-1)).toMatchObject({ type: 'result' });
      expect(dropped.at(-1)).toMatchObject({ type: 'error', kind: 'cancelled' });
      expect(c.log).not.toContain('start drop');
    } finally {
      await c.close();
    }
  });
});

describe('LocalBatcher order', () => {
  it('runs the jobs it holds in fair order (rank, then arrival), not in the order they arrived', async () => {
    const started: string[] = [];
    const release: Array<() => void> = [];
    const executeBatch: BatchExecutor = (jobs) => {
      started.push(jobs.map((j) => j.job.request.prompt).join('+'));
      return jobs.map(
        (j) => new Promise((resolve) => release.push(() => resolve({ type: 'error', kind: 'cancelled', message: j.job.request.prompt }))),
      );
    };
    const batcher = new LocalBatcher({ executeBatch, maxBatchJobs: 4, maxBatchRows: 8, batchWindowMs: 0 });
    const ctx = (id: string) => ({ id, signal: new AbortController().signal, emit: () => {}, submittedAt: 0 });
    const size = (w: number) => ({ prompt: `s${w}`, width: w, height: w, numInferenceSteps: 3, guidanceScale: 1, seed: 1 });
    // A heavy client's jobs of three sizes (never compatible), then a light client's job with the lowest tag.
    const ends = [
      batcher.run({ job: spec('m', 'a1', { request: { ...size(8), prompt: 'a1' } }), ctx: ctx('a1') }, 1),
      batcher.run({ job: spec('m', 'a2', { request: { ...size(16), prompt: 'a2' } }), ctx: ctx('a2') }, 101),
      batcher.run({ job: spec('m', 'a3', { request: { ...size(24), prompt: 'a3' } }), ctx: ctx('a3') }, 201),
      batcher.run({ job: spec('m', 'light', { request: { ...size(32), prompt: 'light' } }), ctx: ctx('light') }, 1),
    ];
    for (let i = 0; i < 4; i++) {
      while (release.length === 0) await new Promise((r) => setTimeout(r, 1));
      release.shift()!();
    }
    await Promise.all(ends);
    expect(started).toEqual(['a1', 'light', 'a2', 'a3']);
  });
});
