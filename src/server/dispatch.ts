// Hands a planned job to the queue and follows its events: partial images to a callback, the result returned,
// failures mapped onto OpenAI errors. The job is cancelled by id when the client goes away.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, queueFull, serverError, serviceUnavailable } from '../contract/errors.js';
import { type EncodedImage, type JobEvent, type JobSpec, QueueClosedError, QueueFullError, QueueUnavailableError } from '../jobs/types.js';
import type { ServerDeps } from './deps.js';
import { tagRejection } from './metrics.js';

export type JobResult = Extract<JobEvent, { type: 'result' }>;

/**
 * The client left before the job's answer could be sent: nothing is sent, nothing is billed, and the request is
 * logged at info as `client closed request` (499). A job the server ends while its client waits is a 503 instead.
 */
export class JobCancelledError extends Error {
  override readonly name = 'JobCancelledError';
}

/** Aborts when the client goes away before the response is finished. */
export function clientAbortSignal(req: FastifyRequest, reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  req.raw.once('aborted', () => controller.abort());
  return controller.signal;
}

/** The answer to a client whose job the server stopped (shutdown): retryable, another node can take it. */
export function shuttingDown(): ApiError {
  return serviceUnavailable('The server is shutting down; retry the request.', 1);
}

function failure(e: Extract<JobEvent, { type: 'error' }>, signal: AbortSignal): Error {
  switch (e.kind) {
    case 'cancelled':
      // Only the client's own signal means it left; any other cancel is the server's (shutdown).
      return signal.aborted ? new JobCancelledError(e.message) : shuttingDown();
    case 'invalid_request':
      return new ApiError({ status: 400, message: e.message, code: 'invalid_value' });
    case 'unavailable':
      return serviceUnavailable('The job queue lost this request (it restarted or became unreachable); retry the request.', 2);
    case 'failed':
      return serverError();
  }
}

/**
 * Submits the job (a full queue is a 429 before anything is sent, a draining one a 503), then reads its events until
 * the result. `onPartial` sees each partial image in order; `signal` cancels the job by id, and a result that arrives
 * after it fired is dropped (JobCancelledError): nobody is there to take it.
 */
export async function runThroughQueue(
  deps: ServerDeps,
  spec: JobSpec,
  signal: AbortSignal,
  onPartial?: (p: { index: number; image: EncodedImage }) => Promise<void> | void,
): Promise<JobResult> {
  return followJob(deps, { id: await submitJob(deps, spec, signal), model: spec.model }, signal, onPartial);
}

/**
 * Admits the job and returns its id; a full queue (429), a draining or unavailable one (503) throw before any reply
 * starts, so a streaming request gets them as its HTTP status.
 */
export async function submitJob(deps: ServerDeps, spec: JobSpec, signal: AbortSignal): Promise<string> {
  if (signal.aborted) throw new JobCancelledError('the client left before the job was queued');
  try {
    return (await deps.queue.submit(spec)).id;
  } catch (err) {
    if (err instanceof QueueFullError) {
      deps.metrics.observeEnd(spec.model, 'rejected', 0);
      throw tagRejection(queueFull(err.retryAfterSeconds), 'queue_full');
    }
    if (err instanceof QueueClosedError) throw shuttingDown();
    if (err instanceof QueueUnavailableError)
      throw serviceUnavailable(`${err.message.replace(/^./, (c) => c.toUpperCase())}.`, err.retryAfterSeconds);
    throw err;
  }
}

/** Reads a submitted job's events until its result (see runThroughQueue); a job that fails is timed in the metrics. */
export async function followJob(
  deps: ServerDeps,
  { id, model }: { id: string; model: string },
  signal: AbortSignal,
  onPartial?: (p: { index: number; image: EncodedImage }) => Promise<void> | void,
): Promise<JobResult> {
  const cancel = () => void deps.queue.cancel(id);
  signal.addEventListener('abort', cancel, { once: true });
  if (signal.aborted) cancel(); // it left while the job was being admitted
  const started = performance.now();
  try {
    for await (const event of deps.queue.events(id)) {
      if (event.type === 'partial') await onPartial?.(event);
      else if (event.type === 'result') {
        if (signal.aborted) throw new JobCancelledError('the client left before the result');
        return event;
      } else if (event.type === 'error') {
        deps.metrics.observeEnd(model, event.kind === 'cancelled' ? 'cancelled' : 'failed', (performance.now() - started) / 1000);
        throw failure(event, signal);
      }
    }
    throw serverError('The job ended without a result.');
  } finally {
    signal.removeEventListener('abort', cancel);
  }
}
