// Hands a planned job to the queue and follows its events: partial images to a callback, the result returned,
// failures mapped onto OpenAI errors. Before the queue: the cost caps and the token rate limit (a 400 or 429 while a
// stream can still answer with its status). The job is cancelled by id when the client goes away or its deadline
// (limits.requestDeadlineSeconds) passes; the latter is a 504.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, queueFull, serverError, serviceUnavailable } from '../contract/errors.js';
import { type EncodedImage, type JobEvent, type JobSpec, QueueClosedError, QueueFullError, QueueUnavailableError } from '../jobs/types.js';
import type { ServerDeps } from './deps.js';
import { tagRejection } from './metrics.js';
import { checkCostCaps, type JobPlan } from './plan.js';

export type JobResult = Extract<JobEvent, { type: 'result' }>;

/**
 * The client left before the job's answer could be sent: nothing is sent, nothing is billed, and the request is
 * logged at info as `client closed request` (499). A job the server ends while its client waits is a 503 instead.
 */
export class JobCancelledError extends Error {
  override readonly name = 'JobCancelledError';
}

/** What admission reads besides the spec: the plan's facts (cost caps) and the request (its token rate limit). */
export interface Admission {
  req: FastifyRequest;
  plan: JobPlan;
}

/**
 * (Easel wording) The job outlived limits.requestDeadlineSeconds and was cancelled. 504: the server gave up waiting
 * for its engine; not retried by SDKs (x-should-retry: false), since the same request would likely run out again.
 */
export function deadlineExceeded(seconds: number): ApiError {
  return new ApiError({
    status: 504,
    message: `The request did not finish within this server's deadline of ${seconds} seconds (limits.requestDeadlineSeconds), so it was cancelled. Ask for less work (fewer images, fewer steps, a smaller size) or retry later.`,
    type: 'server_error',
    code: 'deadline_exceeded',
  });
}

/** After the deadline's cancel, how long the queue may take to report the job stopped before the client is answered anyway. */
const CANCEL_GRACE_MS = 5000;

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
  admission: Admission,
  spec: JobSpec,
  signal: AbortSignal,
  onPartial?: (p: { index: number; image: EncodedImage }) => Promise<void> | void,
): Promise<JobResult> {
  return followJob(deps, { id: await submitJob(deps, admission, spec, signal), model: spec.model }, signal, onPartial);
}

/**
 * Admits the job and returns its id; a full queue (429), a draining or unavailable one (503) throw before any reply
 * starts, so a streaming request gets them as its HTTP status.
 */
export async function submitJob(deps: ServerDeps, { req, plan }: Admission, spec: JobSpec, signal: AbortSignal): Promise<string> {
  if (signal.aborted) throw new JobCancelledError('the client left before the job was queued');
  checkCostCaps(deps.config.limits, spec.request, plan.facts);
  await req.chargeTokens?.(plan.facts.outputTokens);
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

/**
 * Reads a submitted job's events until its result (see runThroughQueue); a job that fails is timed in the metrics.
 * Past limits.requestDeadlineSeconds the job is cancelled and this throws the 504 (a result that wins the race is
 * still returned).
 */
export async function followJob(
  deps: ServerDeps,
  { id, model }: { id: string; model: string },
  signal: AbortSignal,
  onPartial?: (p: { index: number; image: EncodedImage }) => Promise<void> | void,
): Promise<JobResult> {
  const cancel = () => void deps.queue.cancel(id).catch(() => {});
  signal.addEventListener('abort', cancel, { once: true });
  if (signal.aborted) cancel(); // it left while the job was being admitted
  const started = performance.now();
  const deadline = startDeadline(deps.config.limits.requestDeadlineSeconds * 1000, cancel);
  const events = deps.queue.events(id)[Symbol.asyncIterator]();
  let ended = false;
  try {
    for (;;) {
      const pending = events.next();
      const next = await Promise.race([pending, deadline.givenUp]);
      if (next === GIVEN_UP) {
        pending.catch(() => {}); // the queue never answered the cancel; nobody waits for it any more
        deps.metrics.observeEnd(model, 'cancelled', (performance.now() - started) / 1000);
        throw pastDeadline(deps, signal);
      }
      if (next.done) {
        ended = true;
        break;
      }
      const event = next.value;
      if (event.type === 'partial') await onPartial?.(event);
      else if (event.type === 'result') {
        if (signal.aborted) throw new JobCancelledError('the client left before the result');
        return event;
      } else if (event.type === 'error') {
        deps.metrics.observeEnd(model, event.kind === 'cancelled' ? 'cancelled' : 'failed', (performance.now() - started) / 1000);
        if (event.kind === 'cancelled' && deadline.passed && !signal.aborted) throw pastDeadline(deps, signal);
        throw failure(event, signal);
      }
    }
    throw serverError('The job ended without a result.');
  } finally {
    // as for-await would: a reader left early (an error, a partial that failed to send) stops the queue's stream
    if (!ended) events.return?.()?.catch(() => {});
    deadline.stop();
    signal.removeEventListener('abort', cancel);
  }
}

const GIVEN_UP = Symbol('given up');

/** The job's deadline: `onPassed` cancels it; `givenUp` resolves CANCEL_GRACE_MS later if the queue has not answered. */
function startDeadline(ms: number, onPassed: () => void) {
  let passed = false;
  let grace: NodeJS.Timeout | undefined;
  let giveUp!: () => void;
  const givenUp = new Promise<typeof GIVEN_UP>((resolve) => {
    giveUp = () => resolve(GIVEN_UP);
  });
  const timer = setTimeout(() => {
    passed = true;
    onPassed();
    grace = setTimeout(giveUp, CANCEL_GRACE_MS);
  }, ms);
  return {
    givenUp,
    get passed() {
      return passed;
    },
    stop() {
      clearTimeout(timer);
      clearTimeout(grace);
    },
  };
}

/** The deadline's answer: the 504 (respond.ts records it in the usage row); a client already gone gets nothing. */
function pastDeadline(deps: ServerDeps, signal: AbortSignal): Error {
  if (signal.aborted) return new JobCancelledError('the client left before the deadline');
  return deadlineExceeded(deps.config.limits.requestDeadlineSeconds);
}
