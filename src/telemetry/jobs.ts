// A job's side of its request's trace, wherever it runs (embedded worker or `easel worker`): the fields its log lines
// carry, and its spans (queue wait, the job, each pipeline stage and encode) under the request's span.
import type { JobEvent, JobSpec, JobTimings } from '../jobs/types.js';
import { recordSpan } from './otel.js';
import { parseTraceparent, type TraceContext } from './trace-context.js';

type Terminal = Extract<JobEvent, { type: 'result' | 'error' }>;

/** request_id and trace_id (absent when the job carries no trace) for every log line about the job. */
export function jobLogFields(job: Pick<JobSpec, 'requestId' | 'traceparent'>): { request_id: string; trace_id?: string } {
  const trace = parseTraceparent(job.traceparent);
  return { request_id: job.requestId, ...(trace ? { trace_id: trace.traceId } : {}) };
}

export interface JobTimes {
  /** Epoch ms: submitted to the queue, taken by the worker, ended. */
  submittedAt: number;
  startedAt: number;
  endedAt: number;
}

/**
 * Spans of a finished job, as children of its request's span: `queue wait` (submit to start) and `job` (start to end),
 * and under `job` the stages text_encoder, denoise, vae (laid end to end from the engine's timings, the order the
 * pipeline runs them) and encode (the last encodeMs). Nothing happens when tracing is off.
 */
export function recordJobSpans(job: JobSpec, jobId: string, times: JobTimes, end: Terminal): void {
  const context: TraceContext | undefined = parseTraceparent(job.traceparent);
  const attrs = { 'easel.model': job.model, 'easel.job_id': jobId, 'easel.request_id': job.requestId };
  const wait = recordSpan('queue wait', { start: times.submittedAt, end: times.startedAt }, { context }, attrs);
  if (!wait) return;
  const error = end.type === 'error' && end.kind !== 'cancelled' ? end.message : undefined;
  const outcome = end.type === 'result' ? 'ok' : end.kind;
  const run = recordSpan('job', { start: times.startedAt, end: times.endedAt }, { context }, { ...attrs, 'easel.outcome': outcome }, error);
  if (!run || end.type !== 'result') return;
  stageSpans(run, times, end.timings, end.images.length);
}

function stageSpans(run: NonNullable<ReturnType<typeof recordSpan>>, times: JobTimes, t: JobTimings, images: number): void {
  let at = times.startedAt;
  for (const [name, ms] of [
    ['text_encoder', t.textEncoderMs],
    ['denoise', t.denoiseMs],
    ['vae', t.vaeMs],
  ] as const) {
    recordSpan(name, { start: at, end: at + ms }, { under: run });
    at += ms;
  }
  recordSpan('encode', { start: times.endedAt - t.encodeMs, end: times.endedAt }, { under: run }, { 'easel.images': images });
}
