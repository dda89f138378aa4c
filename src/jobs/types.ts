// The job seam between API and engine: a job and its events are plain data (numbers, strings, byte arrays), so
// the same types travel through the in-process queue (embedded mode) and through Redis to a worker (cluster).
import type { GenerateRequest, GenerateTimings } from '../engine/types.js';
import type { ImageFormat } from '../imaging/formats.js';

/** How the worker encodes each image it makes. */
export interface OutputPlan {
  width: number;
  height: number;
  format: ImageFormat;
  /** 0-100; 100 is lossless where the format allows it. */
  compression: number;
  /**
   * 'keep': the model's alpha is kept; 'flatten': composited on white; 'auto': kept only when every final image has
   * transparent pixels, else all are flattened (so one `background` value is true of every image).
   */
  alpha: 'keep' | 'flatten' | 'auto';
}

/** What an API node hands to the queue: everything a worker needs, nothing that cannot cross a process. */
export interface JobSpec {
  /** Name of the local model (pipeline) that runs it. */
  model: string;
  /** The engine request; image inputs are RGBA bytes and mask weights (typed arrays). */
  request: GenerateRequest;
  output: OutputPlan;
  /** Denoising step indices after which image 0 is decoded, encoded and sent as a partial image. */
  previewSteps: readonly number[];
  /** Who asked (API key id), for fair scheduling and records; null when auth is off. */
  keyId: string | null;
  /** OpenAI's `user` field as sent: with auth off, waiting jobs are shared fairly across its values (jobs/fair.ts). */
  user?: string | null;
  /** The HTTP request id, so logs on either side of the queue line up. */
  requestId: string;
  /**
   * W3C traceparent of the request's span: the worker's spans are its children and its log lines carry the trace id.
   * The API sets it from the request being answered (server/respond.ts, telemetry/http.ts).
   */
  traceparent?: string;
}

export interface EncodedImage {
  bytes: Uint8Array;
  format: ImageFormat;
  /** Whether any pixel is not fully opaque (reported as background "transparent"). */
  transparent: boolean;
}

export interface JobTimings extends GenerateTimings {
  /** Time between submit and the worker starting the job. */
  queueMs: number;
  /** Resize + encode of every image. */
  encodeMs: number;
}

/** Why a job ended without a result: the API maps each kind onto an OpenAI error. */
export type JobFailureKind =
  /** Cancelled by the client (disconnect), the caller or shutdown. */
  | 'cancelled'
  /** The engine refused the request (a 400: retrying cannot help). */
  | 'invalid_request'
  /** The queue lost the job (its Redis restarted or stayed unreachable, no worker was left): a retryable 503. */
  | 'unavailable'
  /** Anything else (a 500). */
  | 'failed';

export type JobEvent =
  | { type: 'started'; worker: string }
  | { type: 'progress'; step: number; totalSteps: number }
  | { type: 'partial'; index: number; step: number; image: EncodedImage }
  | { type: 'result'; images: EncodedImage[]; seed: number; timings: JobTimings }
  | { type: 'error'; kind: JobFailureKind; message: string };

export function isTerminal(e: JobEvent): e is Extract<JobEvent, { type: 'result' | 'error' }> {
  return e.type === 'result' || e.type === 'error';
}

/** What a worker gets for one job: a way to report events, and a signal that fires on cancel or shutdown. */
export interface JobContext {
  id: string;
  signal: AbortSignal;
  /** Progress and partial images; the terminal event is the executor's return value. */
  emit(event: JobEvent): void;
  /** Epoch ms when the job was submitted. */
  submittedAt: number;
}

/** Runs one job to its end: resolves to its `result` or `error` event, never rejects. */
export type JobExecutor = (job: JobSpec, ctx: JobContext) => Promise<Extract<JobEvent, { type: 'result' | 'error' }>>;

export interface QueueStats {
  waiting: number;
  running: number;
  /** The same counts per local model name (every model the queue serves, zeros included). */
  models: Record<string, { waiting: number; running: number }>;
  /** Ready workers per local model name. */
  workers: Record<string, number>;
}

export interface JobQueue {
  /** Admits a job or throws QueueFullError (a 429 before any reply starts). */
  submit(job: JobSpec): Promise<{ id: string; position: number }>;
  /**
   * The job's events from the first one, ending after its `result` or `error`. Throws UnknownJobError for an id the
   * queue does not hold (never submitted, or finished and forgotten).
   */
  events(id: string): AsyncIterable<JobEvent>;
  /** Removes a waiting job or stops a running one within one denoising step; false when there is nothing to stop. */
  cancel(id: string): Promise<boolean>;
  stats(): Promise<QueueStats>;
  /**
   * Shutdown: refuses new jobs at once (QueueClosedError), lets admitted ones finish within `deadlineMs` and cancels
   * the rest with SHUTDOWN_MESSAGE; resolves when this node has nothing running.
   */
  drain(deadlineMs: number): Promise<void>;
  close(): Promise<void>;
}

export class QueueFullError extends Error {
  override readonly name = 'QueueFullError';
  constructor(
    readonly limit: number,
    /** Suggested seconds before retrying. */
    readonly retryAfterSeconds: number,
  ) {
    super(`the generation queue is full (${limit} waiting); retry later`);
  }
}

export class QueueClosedError extends Error {
  override readonly name = 'QueueClosedError';
  constructor() {
    super('the job queue is closed: the server is shutting down');
  }
}

/** The message of the error event a job gets when shutdown ends it (the API answers its client a retryable 503). */
export const SHUTDOWN_MESSAGE = 'server shutting down';

export class UnknownJobError extends Error {
  override readonly name = 'UnknownJobError';
  constructor(readonly id: string) {
    super(`no job ${id}`);
  }
}

/**
 * The queue cannot take or follow a job now: no live worker serves its model, or the queue's store (Redis) is
 * unreachable. The API answers a retryable 503.
 */
export class QueueUnavailableError extends Error {
  override readonly name = 'QueueUnavailableError';
  constructor(
    message: string,
    /** Suggested seconds before retrying. */
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}
