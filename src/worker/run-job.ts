// Runs jobs on a loaded pipeline: the engine generates, image 0 is encoded at each preview step, and every image is
// encoded at the end. Compatible jobs may run as one batch (runJobs), each with its own events, cancel and result.
// Engine failures become plain `error` events, so nothing but data leaves the worker.
import { AbortError, type GenerateOptions, GenerateRequestError, type GenerateResult, type Pipeline } from '../engine/index.js';
import type { EncodeSettings } from '../imaging/encode.js';
import type { BatchJob } from '../jobs/batch.js';
import type { JobContext, JobEvent, JobSpec } from '../jobs/types.js';
import { jobLogFields, recordJobSpans } from '../telemetry/jobs.js';
import { encodeOutput, resolveAlpha } from './encode.js';

type Terminal = Extract<JobEvent, { type: 'result' | 'error' }>;

export interface RunJobLogger {
  error(obj: object, msg: string): void;
}

/**
 * `encoding`: the worker's `images.encoding` config (imaging/encode.ts's defaults when not given). The job's spans
 * (queue wait, job, stages) are recorded under its request's trace when tracing is on.
 */
export async function runJob(
  pipeline: Pipeline,
  job: JobSpec,
  ctx: JobContext,
  log?: RunJobLogger,
  encoding?: EncodeSettings,
): Promise<Terminal> {
  const startedAt = Date.now();
  const result = pipeline.generate(job.request, generateOptions(job, ctx, encoding));
  return finish(job, ctx, startedAt, result, log, encoding);
}

/**
 * Runs jobs of one model together through the pipeline's generateBatch (one after another where it has none): one
 * terminal event per job, in order; a cancelled job's settles as soon as its rows leave the batch.
 */
export function runJobs(
  pipeline: Pipeline,
  jobs: readonly BatchJob[],
  log?: RunJobLogger,
  encoding?: EncodeSettings,
): Array<Promise<Terminal>> {
  if (jobs.length === 1 || !pipeline.generateBatch) {
    let chain: Promise<unknown> = Promise.resolve();
    return jobs.map(({ job, ctx }) => {
      const run = chain.then(() => runJob(pipeline, job, ctx, log, encoding));
      chain = run;
      return run;
    });
  }
  const startedAt = Date.now();
  const results = pipeline.generateBatch(jobs.map(({ job, ctx }) => ({ req: job.request, opts: generateOptions(job, ctx, encoding) })));
  return jobs.map(({ job, ctx }, i) => finish(job, ctx, startedAt, results[i], log, encoding));
}

function generateOptions(job: JobSpec, ctx: JobContext, encoding?: EncodeSettings): GenerateOptions {
  let partials = 0;
  return {
    signal: ctx.signal,
    previewSteps: job.previewSteps,
    onPreview: async (step, images) => {
      const image = await encodeOutput(images[0], job.output, encoding);
      ctx.emit({ type: 'partial', index: partials++, step, image });
    },
    onStep: (p) => ctx.emit({ type: 'progress', step: p.step, totalSteps: p.totalSteps }),
  };
}

/** The job's terminal event from its generation, with its spans recorded. */
async function finish(
  job: JobSpec,
  ctx: JobContext,
  startedAt: number,
  result: Promise<GenerateResult>,
  log?: RunJobLogger,
  encoding?: EncodeSettings,
): Promise<Terminal> {
  const end = await encodeResult(job, ctx, startedAt, result, log, encoding);
  recordJobSpans(job, ctx.id, { submittedAt: ctx.submittedAt, startedAt, endedAt: Date.now() }, end);
  return end;
}

async function encodeResult(
  job: JobSpec,
  ctx: JobContext,
  startedAt: number,
  generation: Promise<GenerateResult>,
  log?: RunJobLogger,
  encoding?: EncodeSettings,
): Promise<Terminal> {
  const queueMs = startedAt - ctx.submittedAt;
  try {
    const result = await generation;
    const encodeStart = performance.now();
    const output = resolveAlpha(result.images, job.output);
    const images = await Promise.all(result.images.map((img) => encodeOutput(img, output, encoding)));
    return {
      type: 'result',
      images,
      seed: result.seed,
      timings: { ...result.timings, queueMs, encodeMs: performance.now() - encodeStart },
    };
  } catch (err) {
    if (err instanceof AbortError || ctx.signal.aborted) return { type: 'error', kind: 'cancelled', message: 'generation cancelled' };
    if (err instanceof GenerateRequestError) return { type: 'error', kind: 'invalid_request', message: err.message };
    log?.error({ err, jobId: ctx.id, ...jobLogFields(job) }, 'generation failed');
    return { type: 'error', kind: 'failed', message: (err as Error)?.message ?? String(err) };
  }
}
