// Hands a planned job to the queue and follows its events: partial images to a callback, the result returned,
// failures mapped onto OpenAI errors. The job is cancelled by id when the client goes away.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, queueFull, serverError } from '../contract/errors.js';
import { type EncodedImage, type JobEvent, type JobSpec, QueueFullError } from '../jobs/types.js';
import type { ServerDeps } from './deps.js';

export type JobResult = Extract<JobEvent, { type: 'result' }>;

/** The client left (or the server is shutting down) before the job finished: nothing is sent. */
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

function failure(e: Extract<JobEvent, { type: 'error' }>): Error {
  switch (e.kind) {
    case 'cancelled':
      return new JobCancelledError(e.message);
    case 'invalid_request':
      return new ApiError({ status: 400, message: e.message, code: 'invalid_value' });
    case 'failed':
      return serverError();
  }
}

/**
 * Submits the job (a full queue is a 429 before anything is sent), then reads its events until the result.
 * `onPartial` sees each partial image in order; `signal` cancels the job by id.
 */
export async function runThroughQueue(
  deps: ServerDeps,
  spec: JobSpec,
  signal: AbortSignal,
  onPartial?: (p: { index: number; image: EncodedImage }) => Promise<void> | void,
): Promise<JobResult> {
  if (signal.aborted) throw new JobCancelledError('the client left before the job was queued');
  let id: string;
  try {
    ({ id } = await deps.queue.submit(spec));
  } catch (err) {
    if (err instanceof QueueFullError) throw queueFull(err.retryAfterSeconds);
    throw err;
  }
  const cancel = () => void deps.queue.cancel(id);
  signal.addEventListener('abort', cancel, { once: true });
  try {
    for await (const event of deps.queue.events(id)) {
      if (event.type === 'partial') await onPartial?.(event);
      else if (event.type === 'result') return event;
      else if (event.type === 'error') throw failure(event);
    }
    throw serverError('The job ended without a result.');
  } finally {
    signal.removeEventListener('abort', cancel);
  }
}
