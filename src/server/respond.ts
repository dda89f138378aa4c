// Answers a planned image job the same way for every endpoint: JSON (b64_json or signed url) or, with
// stream: true, SSE partial images then one completed event per image. Routes only parse and plan.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ParsedCommon } from '../contract/common.js';
import { buildImagesResponse, completedEvent, partialImageEvent, type StreamKind } from '../contract/responses.js';
import type { ImageUsage } from '../contract/usage.js';
import type { EncodedImage, JobSpec } from '../jobs/types.js';
import { requestTrace } from '../telemetry/http.js';
import type { ServedModel } from './catalog.js';
import { deliver } from './delivery.js';
import type { ServerDeps } from './deps.js';
import { admitWrites } from './disk.js';
import { clientAbortSignal, followJob, JobCancelledError, type JobResult, runThroughQueue, submitJob } from './dispatch.js';
import { type JobPlan, partialSteps } from './plan.js';
import { CLIENT_LEFT, failureOf, recordFailure, recordUsage } from './records.js';
import { SseStream } from './sse.js';
import { ignoredWords, ignoredWordsWarning } from './vocabulary.js';

export interface ImageJob {
  /** Route path, for usage records. */
  endpoint: string;
  kind: StreamKind;
  parsed: ParsedCommon;
  plan: JobPlan;
  served: ServedModel;
  /** performance.now() when the request arrived. */
  started: number;
  /** Usage for this request (GPT families), given the partial images streamed. */
  usage?(partialImages: number, outputDetails: boolean): ImageUsage;
}

const NO_USAGE: ImageUsage = {
  input_tokens: 0,
  input_tokens_details: { text_tokens: 0, image_tokens: 0 },
  output_tokens: 0,
  total_tokens: 0,
};

export async function answerJob(deps: ServerDeps, req: FastifyRequest, reply: FastifyReply, job: ImageJob): Promise<unknown> {
  // Every job writes (a usage row, and the store in url mode): on a disk under its reserve, a retryable 503 before any work.
  await admitWrites(deps.disk, reply);
  const headers = warningHeaders(req, job);
  try {
    if (job.parsed.stream) return await answerStream(deps, req, reply, job, headers);
    reply.headers(headers);
    return await answerJson(deps, req, reply, job);
  } catch (err) {
    // A failed or cancelled request has its usage row too, with the status and code its client gets.
    await recordFailure(deps, req, job.parsed, job.endpoint, job.started, failureOf(err));
    throw err;
  }
}

/** x-easel-warning naming the prompt's words the model does not know (models that declare a vocabulary). */
function warningHeaders(req: FastifyRequest, job: ImageJob): Record<string, string> {
  const vocabulary = job.served.local.info.extras.prompt_vocabulary;
  if (!vocabulary || job.plan.request.prompt === '') return {};
  const words = ignoredWords(job.parsed.prompt, vocabulary);
  if (words.length === 0) return {};
  req.log.info({ ignoredWords: words.slice(0, 50), model: job.served.local.name }, 'prompt words the model does not know');
  return { 'x-easel-warning': ignoredWordsWarning(words) };
}

function jobSpec(req: FastifyRequest, job: ImageJob, previewSteps: number[]): JobSpec {
  return {
    model: job.served.local.name,
    request: job.plan.request,
    output: job.plan.output,
    previewSteps,
    keyId: req.apiKeyId ?? null,
    user: job.parsed.user ?? null,
    requestId: req.id,
    traceparent: requestTrace(req.raw).traceparent,
  };
}

/** The result's timings and image count into the metrics (served model, size and quality only). */
function observeResult(deps: ServerDeps, job: ImageJob, result: JobResult): void {
  const { resolved } = job.parsed;
  const labels = { model: job.served.local.name, size: resolved.size, quality: resolved.quality, steps: job.plan.effectiveSteps };
  deps.metrics.observeResult(labels, result.images.length, result.timings);
}

function b64(image: EncodedImage): string {
  return Buffer.from(image.bytes.buffer, image.bytes.byteOffset, image.bytes.byteLength).toString('base64');
}

async function answerJson(deps: ServerDeps, req: FastifyRequest, reply: FastifyReply, job: ImageJob): Promise<unknown> {
  const { parsed } = job;
  const result = await runThroughQueue(deps, { req, plan: job.plan }, jobSpec(req, job, []), clientAbortSignal(req, reply));
  observeResult(deps, job, result);
  const data = await Promise.all(
    result.images.map(async (image) => ({
      ...(await deliver(deps, req, image, parsed.response_format)),
      // dall-e-3 reports the prompt the model was given; Easel gives it the prompt unchanged.
      ...(parsed.family === 'dall-e-3' ? { revised_prompt: parsed.prompt } : {}),
    })),
  );
  const gpt = parsed.family === 'gpt-image';
  const usage = gpt ? job.usage?.(0, true) : undefined;
  const body = buildImagesResponse({
    created: Math.floor(deps.now() / 1000),
    family: parsed.family,
    images: data,
    output: gpt
      ? {
          background: result.images.some((e) => e.transparent) ? 'transparent' : 'opaque',
          output_format: parsed.output_format,
          size: parsed.resolved.size,
          quality: parsed.resolved.quality,
        }
      : undefined,
    usage,
  });
  // Billed once the whole body has been handed to the socket; a client that leaves while it is written is not billed.
  reply.raw.once('finish', () => {
    void recordUsage(
      deps,
      req,
      parsed,
      job.endpoint,
      job.started,
      200,
      { input: usage?.input_tokens ?? 0, output: usage?.output_tokens ?? 0 },
      { images: data.length },
    );
  });
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) void recordFailure(deps, req, parsed, job.endpoint, job.started, CLIENT_LEFT);
  });
  reply.header('x-easel-seed', String(result.seed));
  return body;
}

/**
 * stream: true — `partial_images` previews (the decoded predicted clean image) of image 0, then one completed
 * event per image; with n > 1 every completed event carries the whole request's usage (documented in README).
 */
async function answerStream(
  deps: ServerDeps,
  req: FastifyRequest,
  reply: FastifyReply,
  job: ImageJob,
  headers: Record<string, string>,
): Promise<void> {
  const { parsed } = job;
  const controller = new AbortController();
  reply.raw.once('close', () => controller.abort());
  // Admission first: a full queue (429) or a draining one (503) is the HTTP status, which SDKs type and retry.
  const previews = parsed.partial_images > 0 ? partialSteps(job.plan.effectiveSteps, parsed.partial_images) : [];
  const id = await submitJob(deps, { req, plan: job.plan }, jobSpec(req, job, previews), controller.signal);
  const sse = new SseStream(req, reply, undefined, headers);
  const fields = (image: EncodedImage) => ({
    size: parsed.resolved.size,
    quality: parsed.resolved.quality,
    output_format: parsed.output_format,
    b64_json: b64(image),
    created_at: Math.floor(deps.now() / 1000),
    background: image.transparent ? 'transparent' : 'opaque',
  });
  let partials = 0;
  try {
    const result = await followJob(deps, { id, model: job.served.local.name }, controller.signal, ({ image }) => {
      sse.send(partialImageEvent(job.kind, { ...fields(image), partial_image_index: partials++ }));
    });
    observeResult(deps, job, result);
    const usage = job.usage?.(partials, false) ?? NO_USAGE;
    for (const image of result.images) sse.send(completedEvent(job.kind, { ...fields(image), usage }));
    // A stream the client closed before its last event is not a delivered answer, so it is not billed.
    if (!sse.isClosed) {
      const tokens = { input: usage.input_tokens, output: usage.output_tokens };
      await recordUsage(deps, req, parsed, job.endpoint, job.started, 200, tokens, { images: result.images.length });
    } else await recordFailure(deps, req, parsed, job.endpoint, job.started, CLIENT_LEFT);
    sse.end();
  } catch (err) {
    if (err instanceof JobCancelledError || sse.isClosed) {
      await recordFailure(deps, req, parsed, job.endpoint, job.started, CLIENT_LEFT);
      sse.end();
      return;
    }
    req.log.warn({ err }, 'stream failed');
    // The stream's status line said 200; its row carries the error event's status and code.
    await recordFailure(deps, req, parsed, job.endpoint, job.started, failureOf(err));
    sse.fail(err);
  }
}
