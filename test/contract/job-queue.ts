// The JobQueue contract: one suite that every implementation must pass (in-process today, BullMQ next).
// Each test builds a fresh queue through `make`, with an executor that behaves like a worker: it emits progress
// and partial images, honours the abort signal, and returns a result or error event.
import { describe, expect, it } from 'vitest';
import { type JobEvent, type JobExecutor, type JobQueue, type JobSpec, QueueFullError, UnknownJobError } from '../../src/jobs/types.js';

export interface QueueFactoryOptions {
  maxWaiting: number;
  models: string[];
  execute: JobExecutor;
}

export type QueueFactory = (opts: QueueFactoryOptions) => Promise<JobQueue>;

export function spec(model: string, prompt: string, over: Partial<JobSpec> = {}): JobSpec {
  return {
    model,
    request: { prompt, width: 8, height: 8, numInferenceSteps: 3, guidanceScale: 1, seed: 1 },
    output: { width: 8, height: 8, format: 'png', compression: 100, alpha: 'flatten' },
    previewSteps: [],
    keyId: null,
    requestId: `req_${prompt}`,
    ...over,
  };
}

/** A worker stand-in: `steps` progress events `delayMs` apart, a partial at each preview step, a result echoing the prompt. */
export function steppingExecutor(log: string[], delayMs = 5, steps = 3): JobExecutor {
  return async (job, ctx) => {
    log.push(`start ${job.request.prompt}`);
    for (let step = 0; step < steps; step++) {
      await new Promise((r) => setTimeout(r, delayMs));
      if (ctx.signal.aborted) {
        log.push(`abort ${job.request.prompt}`);
        return { type: 'error', kind: 'cancelled', message: 'generation cancelled' };
      }
      ctx.emit({ type: 'progress', step, totalSteps: steps });
      if (job.previewSteps.includes(step)) {
        ctx.emit({
          type: 'partial',
          index: job.previewSteps.indexOf(step),
          step,
          image: { bytes: new Uint8Array([step]), format: 'png', transparent: false },
        });
      }
    }
    if (job.request.prompt === 'bad') return { type: 'error', kind: 'invalid_request', message: 'refused' };
    if (job.request.prompt === 'throw') throw new Error('worker crashed');
    log.push(`end ${job.request.prompt}`);
    const bytes = new TextEncoder().encode(job.request.prompt);
    return {
      type: 'result',
      images: [{ bytes, format: 'png', transparent: false }],
      seed: job.request.seed ?? 0,
      timings: { totalMs: 1, textEncoderMs: 0, denoiseMs: 1, vaeMs: 0, sessionRunMs: 1, queueMs: 0, encodeMs: 0 },
    };
  };
}

async function waitFor(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function collect(q: JobQueue, id: string): Promise<JobEvent[]> {
  const out: JobEvent[] = [];
  for await (const e of q.events(id)) out.push(e);
  return out;
}

export function jobQueueContract(name: string, make: QueueFactory): void {
  describe(`JobQueue contract: ${name}`, () => {
    it('runs a job and delivers started, progress, partials in order, then one result of plain data', async () => {
      const log: string[] = [];
      const q = await make({ maxWaiting: 4, models: ['m'], execute: steppingExecutor(log) });
      const { id, position } = await q.submit(spec('m', 'one', { previewSteps: [0, 2] }));
      expect(position).toBe(0);
      const events = await collect(q, id);
      expect(events.map((e) => e.type)).toEqual(['started', 'progress', 'partial', 'progress', 'progress', 'partial', 'result']);
      const partials = events.filter((e) => e.type === 'partial');
      expect(partials.map((p) => p.index)).toEqual([0, 1]);
      const result = events.at(-1) as Extract<JobEvent, { type: 'result' }>;
      expect(new TextDecoder().decode(result.images[0].bytes)).toBe('one');
      expect(structuredClone(result)).toEqual(result); // nothing in it that cannot cross a process
      await q.close();
    });

    it('runs one job at a time per model, in submission order, and models side by side', async () => {
      const log: string[] = [];
      const q = await make({ maxWaiting: 8, models: ['a', 'b'], execute: steppingExecutor(log, 10) });
      const a1 = await q.submit(spec('a', 'a1'));
      const a2 = await q.submit(spec('a', 'a2'));
      const b1 = await q.submit(spec('b', 'b1'));
      expect(a2.position).toBe(1);
      expect(b1.position).toBe(0);
      await Promise.all([collect(q, a1.id), collect(q, a2.id), collect(q, b1.id)]);
      const idx = (s: string) => log.indexOf(s);
      expect(idx('end a1')).toBeLessThan(idx('start a2')); // one per model
      expect(idx('start b1')).toBeLessThan(idx('end a1')); // b did not wait for a
      await q.close();
    });

    it('refuses past maxWaiting with QueueFullError carrying a retry hint, and counts waiting/running', async () => {
      const q = await make({ maxWaiting: 1, models: ['m'], execute: steppingExecutor([], 20) });
      const first = await q.submit(spec('m', 'first'));
      await new Promise((r) => setTimeout(r, 5)); // let it start
      const second = await q.submit(spec('m', 'second'));
      const err = await q.submit(spec('m', 'third')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(QueueFullError);
      expect((err as QueueFullError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
      const stats = await q.stats();
      expect(stats).toMatchObject({ waiting: 1, running: 1 });
      await Promise.all([collect(q, first.id), collect(q, second.id)]);
      expect(await q.stats()).toMatchObject({ waiting: 0, running: 0 });
      await q.close();
    });

    it('breaks waiting/running down per model, every served model listed', async () => {
      const q = await make({ maxWaiting: 8, models: ['a', 'b', 'c'], execute: steppingExecutor([], 20, 10) });
      const ids = [await q.submit(spec('a', 'a1')), await q.submit(spec('a', 'a2')), await q.submit(spec('b', 'b1'))];
      await waitFor(async () => (await q.stats()).running === 2);
      const stats = await q.stats();
      expect(stats.models).toEqual({ a: { waiting: 1, running: 1 }, b: { waiting: 0, running: 1 }, c: { waiting: 0, running: 0 } });
      expect(stats).toMatchObject({ waiting: 1, running: 2 });
      await Promise.all(ids.map((j) => collect(q, j.id)));
      expect((await q.stats()).models.a).toEqual({ waiting: 0, running: 0 });
      await q.close();
    });

    it('estimates Retry-After from the cost of the work ahead, not the count of jobs', async () => {
      const retryAfter = async (steps: number, size: number) => {
        const q = await make({ maxWaiting: 1, models: ['m'], execute: steppingExecutor([], 20) });
        const request = { prompt: 'x', width: size, height: size, numInferenceSteps: steps, guidanceScale: 4, seed: 1 };
        const ids = [(await q.submit(spec('m', 'a', { request }))).id];
        await new Promise((r) => setTimeout(r, 5));
        ids.push((await q.submit(spec('m', 'b', { request }))).id);
        const err = (await q.submit(spec('m', 'c', { request })).catch((e: unknown) => e)) as QueueFullError;
        await q.close();
        return err.retryAfterSeconds;
      };
      const light = await retryAfter(4, 256);
      const heavy = await retryAfter(50, 1024);
      expect(heavy).toBeGreaterThan(light * 20);
    });

    it('cancels a waiting job (it never starts) and a running one (its worker sees the signal)', async () => {
      const log: string[] = [];
      const q = await make({ maxWaiting: 4, models: ['m'], execute: steppingExecutor(log, 20, 10) });
      const running = await q.submit(spec('m', 'running'));
      const waiting = await q.submit(spec('m', 'waiting'));
      await new Promise((r) => setTimeout(r, 30));
      expect(await q.cancel(waiting.id)).toBe(true);
      expect(await q.cancel(running.id)).toBe(true);
      const [r, w] = await Promise.all([collect(q, running.id), collect(q, waiting.id)]);
      expect(r.at(-1)).toMatchObject({ type: 'error', kind: 'cancelled' });
      expect(w).toEqual([expect.objectContaining({ type: 'error', kind: 'cancelled' })]);
      expect(log).toContain('abort running');
      expect(log).not.toContain('start waiting');
      expect(await q.cancel('job_unknown')).toBe(false);
      await q.close();
    });

    it('reports worker refusals and crashes as error events, and keeps serving', async () => {
      const q = await make({ maxWaiting: 4, models: ['m'], execute: steppingExecutor([], 1) });
      const bad = await q.submit(spec('m', 'bad'));
      const crash = await q.submit(spec('m', 'throw'));
      const ok = await q.submit(spec('m', 'ok'));
      expect((await collect(q, bad.id)).at(-1)).toMatchObject({ type: 'error', kind: 'invalid_request', message: 'refused' });
      expect((await collect(q, crash.id)).at(-1)).toMatchObject({ type: 'error', kind: 'failed' });
      expect((await collect(q, ok.id)).at(-1)).toMatchObject({ type: 'result' });
      await q.close();
    });

    it('replays events to a reader that subscribes after the job finished, then forgets the job', async () => {
      const q = await make({ maxWaiting: 4, models: ['m'], execute: steppingExecutor([], 1) });
      const { id } = await q.submit(spec('m', 'late'));
      await new Promise((r) => setTimeout(r, 50));
      expect((await collect(q, id)).map((e) => e.type)).toEqual(['started', 'progress', 'progress', 'progress', 'result']);
      expect(() => q.events(id)).toThrow(UnknownJobError);
      await q.close();
    });

    it('close() cancels waiting jobs and stops the running one', async () => {
      const q = await make({ maxWaiting: 4, models: ['m'], execute: steppingExecutor([], 20, 50) });
      const a = await q.submit(spec('m', 'a'));
      const b = await q.submit(spec('m', 'b'));
      const events = Promise.all([collect(q, a.id), collect(q, b.id)]);
      await new Promise((r) => setTimeout(r, 30));
      await q.close();
      const [ea, eb] = await events;
      expect(ea.at(-1)).toMatchObject({ type: 'error', kind: 'cancelled' });
      expect(eb.at(-1)).toMatchObject({ type: 'error', kind: 'cancelled' });
      await expect(q.submit(spec('m', 'c'))).rejects.toThrow();
    });

    it('drain() refuses new jobs at once, lets the running and waiting ones finish, then resolves', async () => {
      const log: string[] = [];
      const q = draining(await make({ maxWaiting: 4, models: ['m'], execute: steppingExecutor(log, 10) }));
      const a = await q.submit(spec('m', 'a'));
      const b = await q.submit(spec('m', 'b'));
      const events = Promise.all([collect(q, a.id), collect(q, b.id)]);
      await new Promise((r) => setTimeout(r, 5));
      const drained = q.drain(10_000);
      await expect(q.submit(spec('m', 'c'))).rejects.toMatchObject({ name: 'QueueClosedError' });
      await drained;
      const [ea, eb] = await events;
      expect(ea.at(-1)).toMatchObject({ type: 'result' });
      expect(eb.at(-1)).toMatchObject({ type: 'result' });
      expect(log).toEqual(['start a', 'end a', 'start b', 'end b']);
      await q.close();
    });

    it('drain() cancels at once the waiting jobs that cannot finish in time, and the rest at the deadline', async () => {
      const log: string[] = [];
      const q = draining(await make({ maxWaiting: 4, models: ['m'], execute: steppingExecutor(log, 20, 50) }));
      const heavy = { prompt: 'heavy', width: 1024, height: 1024, numInferenceSteps: 50, guidanceScale: 4, seed: 1 };
      const running = await q.submit(spec('m', 'running'));
      const waiting = await q.submit(spec('m', 'heavy', { request: heavy }));
      const runningEvents = collect(q, running.id);
      await new Promise((r) => setTimeout(r, 30));
      const drained = q.drain(100);
      // Far more work than 100 ms at any speed: cancelled before it starts, while the running job still runs.
      expect(await collect(q, waiting.id)).toEqual([expect.objectContaining({ type: 'error', kind: 'cancelled' })]);
      expect(await q.stats()).toMatchObject({ running: 1, waiting: 0 });
      await drained;
      expect((await runningEvents).at(-1)).toMatchObject({ type: 'error', kind: 'cancelled' });
      expect(log).toEqual(['start running', 'abort running']);
      await q.close();
    });
  });
}

/** The drain every queue offers shutdown (not yet part of the JobQueue type). */
function draining(q: JobQueue): JobQueue & { drain(deadlineMs: number): Promise<void> } {
  const d = q as JobQueue & { drain?: (deadlineMs: number) => Promise<void> };
  expect(typeof d.drain).toBe('function');
  return d as JobQueue & { drain(deadlineMs: number): Promise<void> };
}
