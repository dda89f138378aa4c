// Runs one job on a loaded pipeline: the engine generates, image 0 is encoded at each preview step, and every
// image is encoded at the end. Engine failures become plain `error` events, so nothing but data leaves the worker.
import { AbortError, GenerateRequestError, type Pipeline } from '../engine/index.js';
import type { EncodeSettings } from '../imaging/encode.js';
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
  const end = await generate(pipeline, job, ctx, log, encoding);
  recordJobSpans(job, ctx.id, { submittedAt: ctx.submittedAt, startedAt, endedAt: Date.now() }, end);
  return end;
}

async function generate(
  pipeline: Pipeline,
  job: JobSpec,
  ctx: JobContext,
  log?: RunJobLogger,
  encoding?: EncodeSettings,
): Promise<Terminal> {
  const queueMs = Date.now() - ctx.submittedAt;
  let partials = 0;
  try {
    const result = await pipeline.generate(job.request, {
      signal: ctx.signal,
      previewSteps: job.previewSteps,
      onPreview: async (step, images) => {
        const image = await encodeOutput(images[0], job.output, encoding);
        ctx.emit({ type: 'partial', index: partials++, step, image });
      },
      onStep: (p) => ctx.emit({ type: 'progress', step: p.step, totalSteps: p.totalSteps }),
    });
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
