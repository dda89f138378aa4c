// The in-process queue (embedded mode) against the JobQueue contract suite, and its fair order across clients.
import { describe, expect, it } from 'vitest';
import { InProcessQueue } from '../../src/jobs/in-process.js';
import type { JobEvent, JobQueue } from '../../src/jobs/types.js';
import { jobQueueContract, spec, steppingExecutor } from '../contract/job-queue.js';

jobQueueContract(
  'in-process',
  async ({ maxWaiting, models, execute }) =>
    new InProcessQueue({ maxWaiting, models, execute, workers: () => Object.fromEntries(models.map((m) => [m, 1])) }),
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
