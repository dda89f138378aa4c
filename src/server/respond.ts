// Answers a planned image job the same way for every endpoint: JSON (b64_json or signed url) or, with
// stream: true, SSE partial images then one completed event per image. Routes only parse and plan.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ParsedCommon } from '../contract/common.js';
import { buildImagesResponse, completedEvent, partialImageEvent, type StreamKind } from '../contract/responses.js';
import type { ImageUsage } from '../contract/usage.js';
import type { ServerDeps } from './app.js';
import type { ServedModel } from './model-registry.js';
import { clientAbortSignal, deliver, encodeOutput, isClientGone, recordUsage, runJob, type JobPlan } from './render.js';
import { SseStream } from './sse.js';

export interface ImageJob {
  /** Route path, for usage records. */
  endpoint: string;
  kind: StreamKind;
  parsed: ParsedCommon;
  plan: JobPlan;
  served: ServedModel;
  /** performance.now() when the request arrived. */
  started: number;
  /** Denoising steps that actually run (image-to-image runs fewer); partial images are spaced over these. */
  effectiveSteps: number;
  /** Usage for this request (GPT families), given the partial images streamed. */
  usage?(partialImages: number, outputDetails: boolean): ImageUsage;
}

/** Steps after which partial images are decoded: evenly spaced, the last one before the final step. */
export function partialSteps(totalSteps: number, count: number): number[] {
  const steps = new Set<number>();
  for (let i = 1; i <= count; i++) steps.add(Math.max(0, Math.min(totalSteps - 2, Math.round((i * totalSteps) / (count + 1)) - 1)));
  return [...steps].sort((a, b) => a - b);
}

export async function answerJob(deps: ServerDeps, req: FastifyRequest, reply: FastifyReply, job: ImageJob): Promise<unknown> {
  return job.parsed.stream ? answerStream(deps, req, reply, job) : answerJson(deps, req, reply, job);
}

async function answerJson(deps: ServerDeps, req: FastifyRequest, reply: FastifyReply, job: ImageJob): Promise<unknown> {
  const { parsed, plan } = job;
  const result = await runJob(deps, job.served, plan.request, clientAbortSignal(req, reply));
  const encoded = await Promise.all(result.images.map((img) => encodeOutput(img, plan.output)));
  const data = await Promise.all(
    encoded.map(async (e) => ({
      ...(await deliver(deps, req, e, plan.output.format, parsed.response_format)),
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
          background: encoded.some((e) => e.transparent) ? 'transparent' : 'opaque',
          output_format: parsed.output_format,
          size: parsed.resolved.size,
          quality: parsed.resolved.quality,
        }
      : undefined,
    usage,
  });
  recordUsage(deps, req, parsed, job.endpoint, job.started, 200, { input: usage?.input_tokens ?? 0, output: usage?.output_tokens ?? 0 });
  reply.header('x-easel-seed', String(result.seed));
  return body;
}

/**
 * stream: true — `partial_images` previews (the decoded predicted clean image) of image 0, then one completed
 * event per image; with n > 1 every completed event carries the whole request's usage (documented in README).
 */
async function answerStream(deps: ServerDeps, req: FastifyRequest, reply: FastifyReply, job: ImageJob): Promise<void> {
  const { parsed, plan } = job;
  const sse = new SseStream(req, reply);
  const controller = new AbortController();
  reply.raw.once('close', () => controller.abort());
  const event = async (img: Parameters<typeof encodeOutput>[0]) => {
    const e = await encodeOutput(img, plan.output);
    return {
      size: parsed.resolved.size,
      quality: parsed.resolved.quality,
      output_format: parsed.output_format,
      b64_json: e.bytes.toString('base64'),
      created_at: Math.floor(deps.now() / 1000),
      background: e.transparent ? 'transparent' : 'opaque',
    };
  };
  let partials = 0;
  try {
    const result = await runJob(deps, job.served, plan.request, controller.signal, {
      previewSteps: parsed.partial_images > 0 ? partialSteps(job.effectiveSteps, parsed.partial_images) : [],
      onPreview: async (_step, images) => {
        sse.send(partialImageEvent(job.kind, { ...(await event(images[0])), partial_image_index: partials++ }));
      },
    });
    const usage = job.usage?.(partials, false) ?? { input_tokens: 0, input_tokens_details: { text_tokens: 0, image_tokens: 0 }, output_tokens: 0, total_tokens: 0 };
    for (const img of result.images) sse.send(completedEvent(job.kind, { ...(await event(img)), usage }));
    recordUsage(deps, req, parsed, job.endpoint, job.started, 200, { input: usage.input_tokens, output: usage.output_tokens });
    sse.end();
  } catch (err) {
    if (isClientGone(err) || sse.isClosed) {
      sse.end();
      return;
    }
    req.log.warn({ err }, 'stream failed');
    sse.fail(err);
  }
}
