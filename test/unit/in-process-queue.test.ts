// The in-process queue (embedded mode) against the JobQueue contract suite (alone and batching), its fair order across
// clients, and batching across requests: which jobs leave together, the gathering window, and cancel within a batch.
import { describe, expect, it } from 'vitest';
import type { BatchExecutor } from '../../src/jobs/batch.js';
import { InProcessQueue } from '../../src/jobs/in-process.js';
import type { JobEvent, JobExecutor, JobQueue } from '../../src/jobs/types.js';
import { jobQueueContract, spec, steppingExecutor } from '../contract/job-queue.js';

jobQueueContract(
  'in-process',
  async ({ maxWaiting, models, execute }) =>
    new InProcessQueue({ maxWaiting, models, execute, workers: () => Object.fromEntries(models.map((m) => [m, 1])) }),
);

// The same contract with batching on: compatible jobs that wait together run as one batch, each through `execute`.
jobQueueContract(
  'in-process, batching',
  async ({ maxWaiting, models, execute }) =>
    new InProcessQueue({
      maxWaiting,
      models,
      execute,
      executeBatch: (jobs) => jobs.map(({ job, ctx }) => execute(job, ctx)),
      workers: () => Object.fromEntries(models.map((m) => [m, 1])),
    }),
);

async function finish(q: JobQueue, id: string): Promise<JobEvent[]> {
  const out: JobEvent[] = [];
  for await (const e of q.events(id)) out.push(e);
  return out;
}

describe('in-process queue: fair order across clients', () => {
  const heavy = { prompt: 'heavy', width: 64, height: 64, numInferenceSteps: 50, guidanceScale: 7, seed: 1 };

  it("runs a second key's light job right after the running one, whatever the first key queued", async () => {
    const log: string[] = [];
    const q = new InProcessQueue({ maxWaiting: 16, models: ['m'], execute: steppingExecutor(log, 2), workers: () => ({ m: 1 }) });
    const flood = [];
    for (let i = 0; i < 6; i++)
      flood.push(await q.submit(spec('m', `heavy${i}`, { keyId: 'key_a', request: { ...heavy, prompt: `heavy${i}` } })));
    const light = await q.submit(spec('m', 'light', { keyId: 'key_b' }));
    expect(light.position).toBe(1);
    await Promise.all([...flood, light].map((j) => finish(q, j.id)));
    const starts = log.filter((l) => l.startsWith('start ')).map((l) => l.slice(6));
    expect(starts.slice(0, 2)).toEqual(['heavy0', 'light']);
    expect(starts.slice(2)).toEqual(['heavy1', 'heavy2', 'heavy3', 'heavy4', 'heavy5']);
    await q.close();
  });

  it('shares by `user` when there are no keys, and keeps one client in order', async () => {
    const log: string[] = [];
    const q = new InProcessQueue({ maxWaiting: 16, models: ['m'], execute: steppingExecutor(log, 2), workers: () => ({ m: 1 }) });
    const jobs = [];
    for (const p of ['a1', 'a2', 'a3']) jobs.push(await q.submit(spec('m', p, { user: 'alice' })));
    for (const p of ['b1', 'b2']) jobs.push(await q.submit(spec('m', p, { user: 'bob' })));
    await Promise.all(jobs.map((j) => finish(q, j.id)));
    const starts = log.filter((l) => l.startsWith('start ')).map((l) => l.slice(6));
    expect(starts).toEqual(['a1', 'b1', 'a2', 'b2', 'a3']);
    await q.close();
  });
});

/** A batch executor that logs each batch's prompts and runs its jobs side by side through `execute`. */
function loggingBatches(execute: JobExecutor, batches: string[][]): BatchExecutor {
  return (jobs) => {
    batches.push(jobs.map((j) => j.job.request.prompt));
    return jobs.map(({ job, ctx }) => execute(job, ctx));
  };
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe('in-process queue: batching across requests', () => {
  const bigger = { prompt: 'x', width: 16, height: 16, numInferenceSteps: 3, guidanceScale: 1, seed: 1 };

  function queue(execute: JobExecutor, batches: string[][], maxBatchJobs = 3, batchWindowMs?: number, maxBatchRows?: number) {
    return new InProcessQueue({
      maxWaiting: 16,
      models: ['m', 'other'],
      execute,
      executeBatch: loggingBatches(execute, batches),
      maxBatchJobs,
      batchWindowMs,
      maxBatchRows,
      workers: () => ({ m: 1, other: 1 }),
    });
  }

  it('starts a job on an idle lane alone at once, then takes the waiting compatible jobs together in fair order', async () => {
    const log: string[] = [];
    const batches: string[][] = [];
    const gate = deferred();
    const stepping = steppingExecutor(log, 1);
    const held: JobExecutor = (job, ctx) => gate.promise.then(() => stepping(job, ctx));
    const q = queue(held, batches);
    const first = await q.submit(spec('m', 'first', { keyId: 'a' }));
    await new Promise((r) => setTimeout(r, 5));
    expect((await q.stats()).models.m).toEqual({ waiting: 0, running: 1 }); // no window on an idle lane
    const jobs = [
      await q.submit(spec('m', 'a2', { keyId: 'a' })),
      await q.submit(spec('m', 'big', { keyId: 'a', request: { ...bigger, prompt: 'big' } })),
      await q.submit(spec('m', 'a3', { keyId: 'a' })),
      await q.submit(spec('m', 'b1', { keyId: 'b' })),
      await q.submit(spec('m', 'a4', { keyId: 'a' })),
      await q.submit(spec('other', 'o1')),
    ];
    gate.resolve();
    const ends = await Promise.all([first, ...jobs].map((j) => finish(q, j.id)));
    for (const events of ends) expect(events.at(-1)?.type).toBe('result');
    // Fair order puts b1 (an idle client) first, then key a's jobs; 'big' has another size, so it runs on its own
    // (batches of one go through `execute`, unlogged); at most 3 jobs per batch, so a4 runs after it.
    expect(batches).toEqual([['b1', 'a2', 'a3']]);
    const starts = log.filter((l) => l.startsWith('start ') && l !== 'start o1').map((l) => l.slice(6));
    expect(starts).toEqual(['first', 'b1', 'a2', 'a3', 'big', 'a4']);
    await q.close();
  });

  it('cancel() of one job in a running batch stops only that job; the others keep their own events and results', async () => {
    const log: string[] = [];
    const batches: string[][] = [];
    const q = queue(steppingExecutor(log, 20, 4), batches);
    const first = await q.submit(spec('m', 'first'));
    const jobs = [
      await q.submit(spec('m', 'j1', { previewSteps: [1] })),
      await q.submit(spec('m', 'j2', { previewSteps: [1] })),
      await q.submit(spec('m', 'j3', { previewSteps: [2] })),
    ];
    await finish(q, first.id);
    const reading = jobs.map((j) => finish(q, j.id));
    while (!log.includes('start j3')) await new Promise((r) => setTimeout(r, 2));
    expect(await q.cancel(jobs[1].id)).toBe(true);
    const [e1, e2, e3] = await Promise.all(reading);
    expect(batches).toEqual([['j1', 'j2', 'j3']]);
    expect(e2.at(-1)).toMatchObject({ type: 'error', kind: 'cancelled' });
    const types = (events: JobEvent[]) => events.map((e) => (e.type === 'progress' ? `p${e.step}` : e.type));
    expect(types(e1)).toEqual(['started', 'p0', 'p1', 'partial', 'p2', 'p3', 'result']);
    expect(types(e3)).toEqual(['started', 'p0', 'p1', 'p2', 'partial', 'p3', 'result']);
    expect(log).toContain('abort j2');
    expect(log).toContain('end j1');
    expect(log).toContain('end j3');
    expect((await q.stats()).running).toBe(0);
    await q.close();
  });

  it('gathers for batchWindowMs after a batch when few compatible jobs wait, so a job arriving then joins', async () => {
    const log: string[] = [];
    const batches: string[][] = [];
    const q = queue(steppingExecutor(log, 1), batches, 3, 500);
    const first = await q.submit(spec('m', 'first'));
    const second = await q.submit(spec('m', 'second'));
    await finish(q, first.id); // the lane is now gathering: 'second' waits alone
    const third = await q.submit(spec('m', 'third'));
    await Promise.all([finish(q, second.id), finish(q, third.id)]);
    expect(batches).toEqual([['second', 'third']]);
    await q.close();
  });

  it('takes jobs only while their UNet rows fit in one call, passing over a job too big for what is left', async () => {
    const log: string[] = [];
    const batches: string[][] = [];
    const q = queue(steppingExecutor(log, 1), batches, 4, 0, 8);
    const guided = (prompt: string, numImages: number) =>
      spec('m', prompt, { request: { prompt, width: 8, height: 8, numInferenceSteps: 3, guidanceScale: 5, seed: 1, numImages } });
    const first = await q.submit(spec('m', 'first'));
    const jobs = [];
    for (const [p, n] of [
      ['g1', 2],
      ['g2', 3],
      ['g3', 2],
      ['g4', 1],
      ['g5', 5],
    ] as const)
      jobs.push(await q.submit(guided(p, n)));
    await Promise.all([first, ...jobs].map((j) => finish(q, j.id)));
    // Rows: g1 4, g2 6, g3 4, g4 2, g5 10 (more than a call: it runs alone, nothing joins it).
    expect(batches).toEqual([
      ['g1', 'g3'],
      ['g2', 'g4'],
    ]);
    expect(log.filter((l) => l.startsWith('start ')).map((l) => l.slice(6))).toEqual(['first', 'g1', 'g3', 'g2', 'g4', 'g5']);
    await q.close();
  });

  it('maxBatchJobs 1 runs every job alone', async () => {
    const log: string[] = [];
    const batches: string[][] = [];
    const q = queue(steppingExecutor(log, 1), batches, 1);
    const ids = [];
    for (const p of ['a', 'b', 'c']) ids.push(await q.submit(spec('m', p)));
    await Promise.all(ids.map((j) => finish(q, j.id)));
    expect(batches).toEqual([]);
    expect(log.filter((l) => l.startsWith('start '))).toEqual(['start a', 'start b', 'start c']);
    await q.close();
  });
});
