// The BullMQ queue (API side) with real engine-worker loops on a real redis-server: the JobQueue contract suite,
// then what only a cluster has: a worker dying mid-job, a refusal that is not retried, two API nodes sharing
// one bound, no live worker, and Redis restarting under a running job.
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BullMqQueue } from '../../src/jobs/bullmq.js';
import { type JobEvent, type JobExecutor, type JobQueue, QueueFullError, QueueUnavailableError } from '../../src/jobs/types.js';
import { BullMqWorker } from '../../src/worker/bullmq-worker.js';
import { jobQueueContract, spec, steppingExecutor } from '../contract/job-queue.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

let redis: TestRedis;
const open: Array<{ close(): Promise<void> }> = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterEach(async () => {
  await Promise.allSettled(open.splice(0).map((o) => o.close()));
});
afterAll(async () => {
  await redis?.stop();
});

interface Cluster {
  prefix: string;
  queue(maxWaiting: number, models: string[]): Promise<BullMqQueue>;
  worker(models: string[], execute: JobExecutor, lockMs?: number): Promise<BullMqWorker>;
}

/** A fresh key prefix per test, so no state leaks between them through the shared Redis. */
function cluster(): Cluster {
  const prefix = `t${randomUUID().slice(0, 8)}`;
  return {
    prefix,
    async queue(maxWaiting, models) {
      const q = await BullMqQueue.open({ url: redis.url, prefix, models, maxWaiting, pollMs: 200, unreachableMs: 3000 });
      open.push(q);
      return q;
    },
    async worker(models, execute, lockMs = 1000) {
      const w = await BullMqWorker.start({
        url: redis.url,
        prefix,
        models: models.map((name) => ({ name })),
        execute,
        lockMs,
        heartbeatMs: 200,
        name: `w${open.length}`,
      });
      open.push(w);
      return w;
    },
  };
}

jobQueueContract('BullMQ on Redis, with a worker loop', async ({ maxWaiting, models, execute }) => {
  const c = cluster();
  const worker = await c.worker(models, execute);
  const q = await c.queue(maxWaiting, models);
  // The contract's close() ends the worker side too (it must still be there to see the cancel).
  const both: JobQueue & Pick<BullMqQueue, 'drain'> = {
    submit: (job) => q.submit(job),
    drain: (ms) => q.drain(ms),
    events: (id) => q.events(id),
    cancel: (id) => q.cancel(id),
    stats: () => q.stats(),
    async close() {
      await q.close();
      await worker.close();
    },
  };
  return both;
});

async function collect(q: JobQueue, id: string): Promise<JobEvent[]> {
  const out: JobEvent[] = [];
  for await (const e of q.events(id)) out.push(e);
  return out;
}

describe('BullMQ queue in a cluster', () => {
  it('re-runs a killed worker’s job on another worker: partials not repeated, one result, started once', async () => {
    const c = cluster();
    const log: string[] = [];
    const execute = steppingExecutor(log, 60, 12);
    const a = await c.worker(['m'], execute);
    const b = await c.worker(['m'], execute);
    const q = await c.queue(4, ['m']);
    const { id } = await q.submit(spec('m', 'survivor', { previewSteps: [1, 4, 8, 11] }));
    const seen: JobEvent[] = [];
    let killed = false;
    for await (const e of q.events(id)) {
      seen.push(e);
      // After the first partial image, kill whichever worker holds the job.
      if (e.type === 'partial' && !killed) {
        killed = true;
        const holder = (seen[0] as Extract<JobEvent, { type: 'started' }>).worker;
        await (holder === a.id ? a : b).crash();
      }
    }
    expect(seen.filter((e) => e.type === 'started')).toHaveLength(1);
    const partials = seen.filter((e) => e.type === 'partial').map((e) => e.index);
    expect(partials).toEqual([...new Set(partials)].sort((x, y) => x - y));
    expect(partials.at(-1)).toBe(3);
    expect(seen.filter((e) => e.type === 'result' || e.type === 'error')).toEqual([expect.objectContaining({ type: 'result' })]);
    expect(log.filter((l) => l === 'start survivor')).toHaveLength(2); // it ran again
  });

  it("shares a model fairly across API nodes: a second key's light job runs right after the running one", async () => {
    const c = cluster();
    const log: string[] = [];
    await c.worker(['m'], steppingExecutor(log, 20, 3));
    const node1 = await c.queue(16, ['m']);
    const node2 = await c.queue(16, ['m']);
    const heavy = { prompt: 'heavy', width: 64, height: 64, numInferenceSteps: 50, guidanceScale: 7, seed: 1 };
    const flood = [];
    for (let i = 0; i < 5; i++)
      flood.push(await node1.submit(spec('m', `heavy${i}`, { keyId: 'key_a', request: { ...heavy, prompt: `heavy${i}` } })));
    const light = await node2.submit(spec('m', 'light', { keyId: 'key_b' }));
    await Promise.all([...flood.map((j) => collect(node1, j.id)), collect(node2, light.id)]);
    const starts = log.filter((l) => l.startsWith('start ')).map((l) => l.slice(6));
    expect(starts.indexOf('light')).toBeLessThanOrEqual(1);
    expect(starts.filter((s) => s !== 'light')).toEqual(['heavy0', 'heavy1', 'heavy2', 'heavy3', 'heavy4']);
  });

  it('does not retry a deterministic refusal: one run, the error at once', async () => {
    const c = cluster();
    const log: string[] = [];
    await c.worker(['m'], steppingExecutor(log, 1));
    const q = await c.queue(4, ['m']);
    const { id } = await q.submit(spec('m', 'bad'));
    expect((await collect(q, id)).at(-1)).toMatchObject({ type: 'error', kind: 'invalid_request' });
    await new Promise((r) => setTimeout(r, 300));
    expect(log.filter((l) => l === 'start bad')).toHaveLength(1);
  });

  it('bounds waiting jobs across API nodes, and counts workers per model', async () => {
    const c = cluster();
    await c.worker(['m'], steppingExecutor([], 50, 10));
    const node1 = await c.queue(1, ['m']);
    const node2 = await c.queue(1, ['m']);
    const first = await node1.submit(spec('m', 'first'));
    const events = collect(node1, first.id);
    await waitFor(async () => (await node1.stats()).running === 1);
    const second = await node2.submit(spec('m', 'second'));
    await expect(node1.submit(spec('m', 'third'))).rejects.toBeInstanceOf(QueueFullError);
    expect(await node2.stats()).toMatchObject({ waiting: 1, running: 1, workers: { m: 1 } });
    await Promise.all([events, collect(node2, second.id)]);
  });

  it('refuses a job no live worker can take (a 503), and counts a worker out once it stops beating', async () => {
    const c = cluster();
    const q = await c.queue(4, ['m']);
    await expect(q.submit(spec('m', 'nobody'))).rejects.toBeInstanceOf(QueueUnavailableError);
    const w = await c.worker(['m'], steppingExecutor([], 1));
    expect((await q.stats()).workers).toEqual({ m: 1 });
    await w.crash();
    await waitFor(async () => (await q.stats()).workers.m === 0);
  });

  it('ends a running job’s reader with a clear error when Redis restarts empty, then serves again', async () => {
    const c = cluster();
    await c.worker(['m'], steppingExecutor([], 100, 30));
    const q = await c.queue(4, ['m']);
    const { id } = await q.submit(spec('m', 'doomed'));
    const events = collect(q, id);
    await waitFor(async () => (await q.stats()).running === 1);
    await redis.restart(200);
    const last = (await events).at(-1);
    expect(last).toMatchObject({ type: 'error', kind: 'unavailable' }); // a retryable 503 for its client
    // Both sides reconnect: the worker beats again and takes new jobs.
    await waitFor(async () => (await q.stats()).workers.m === 1);
    const again = await q.submit(spec('m', 'after'));
    expect((await collect(q, again.id)).at(-1)).toMatchObject({ type: 'result' });
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
