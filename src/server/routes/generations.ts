// POST /v1/images/generations: OpenAI's create-image endpoint, answered as JSON or, with stream: true, as SSE.
// Parsing and the wire contract live in src/contract; the shared render steps in ../render.ts.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parseGenerationRequest, type ParsedGenerationRequest } from '../../contract/generations.js';
import type { ParseContext } from '../../contract/families.js';
import { completedEvent, partialImageEvent, buildImagesResponse } from '../../contract/responses.js';
import { buildUsage } from '../../contract/usage.js';
import type { ServerDeps } from '../app.js';
import { EXTENSION_FIELDS, type ServedModel } from '../model-registry.js';
import {
  checkModeration,
  clientAbortSignal,
  deliver,
  encodeOutput,
  isClientGone,
  planJob,
  recordUsage,
  runJob,
  type JobPlan,
} from '../render.js';
import { SseStream } from '../sse.js';

export function parseContext(deps: ServerDeps): ParseContext {
  return {
    resolveModel: (name) => {
      const s = deps.models.resolve(name);
      return s ? { name: s.id, family: s.family, extensions: [...EXTENSION_FIELDS] } : undefined;
    },
  };
}

/** Steps after which partial images are decoded: evenly spaced, the last one before the final step. */
export function partialSteps(totalSteps: number, count: number): number[] {
  const steps = new Set<number>();
  for (let i = 1; i <= count; i++) steps.add(Math.max(0, Math.min(totalSteps - 2, Math.round((i * totalSteps) / (count + 1)) - 1)));
  return [...steps].sort((a, b) => a - b);
}

export function registerGenerationRoutes(app: FastifyInstance, deps: ServerDeps): void {
  const ctx = parseContext(deps);
  app.post('/v1/images/generations', async (req, reply) => {
    const started = performance.now();
    const parsed = parseGenerationRequest(req.body, ctx);
    await checkModeration(deps, parsed.prompt, parsed.moderation, req.id);
    const served = deps.models.resolve(parsed.model)!;
    const plan = planJob(served, parsed);
    if (parsed.stream) return streamGeneration(deps, req, reply, served, parsed, plan, started);

    const result = await runJob(deps, served, plan.request, clientAbortSignal(req, reply));
    const encoded = await Promise.all(result.images.map((img) => encodeOutput(img, plan.output)));
    const data = await Promise.all(
      encoded.map(async (e) => ({
        ...(await deliver(deps, req, e, plan.output.format, parsed.response_format)),
        ...(parsed.family === 'dall-e-3' ? { revised_prompt: parsed.prompt } : {}),
      })),
    );
    const gpt = parsed.family === 'gpt-image';
    const usage = gpt ? buildUsage({ prompt: parsed.prompt, quality: parsed.resolved.quality, size: parsed.resolved.size, n: parsed.n }) : undefined;
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
    recordUsage(deps, req, parsed, '/v1/images/generations', started, 200, {
      input: usage?.input_tokens ?? 0,
      output: usage?.output_tokens ?? 0,
    });
    reply.header('x-easel-seed', String(result.seed));
    return body;
  });
}

/**
 * stream: true — `partial_images` previews of the predicted clean image, then one completed event per image.
 * With n > 1, partials show image 0 and every completed event carries the whole request's usage (documented).
 */
async function streamGeneration(
  deps: ServerDeps,
  req: FastifyRequest,
  reply: FastifyReply,
  served: ServedModel,
  parsed: ParsedGenerationRequest,
  plan: JobPlan,
  started: number,
): Promise<void> {
  const sse = new SseStream(req, reply);
  const controller = new AbortController();
  reply.raw.once('close', () => controller.abort());
  const common = {
    size: parsed.resolved.size,
    quality: parsed.resolved.quality,
    output_format: parsed.output_format,
  };
  let partialIndex = 0;
  try {
    const result = await runJob(deps, served, plan.request, controller.signal, {
      previewSteps: parsed.partial_images > 0 ? partialSteps(plan.request.numInferenceSteps, parsed.partial_images) : [],
      onPreview: async (_step, images) => {
        const e = await encodeOutput(images[0], plan.output);
        sse.send(
          partialImageEvent('generation', {
            ...common,
            b64_json: e.bytes.toString('base64'),
            created_at: Math.floor(deps.now() / 1000),
            background: e.transparent ? 'transparent' : 'opaque',
            partial_image_index: partialIndex++,
          }),
        );
      },
    });
    const usage = buildUsage({
      prompt: parsed.prompt,
      quality: parsed.resolved.quality,
      size: parsed.resolved.size,
      n: parsed.n,
      partialImages: partialIndex,
      outputDetails: false,
    });
    for (const img of result.images) {
      const e = await encodeOutput(img, plan.output);
      sse.send(
        completedEvent('generation', {
          ...common,
          b64_json: e.bytes.toString('base64'),
          created_at: Math.floor(deps.now() / 1000),
          background: e.transparent ? 'transparent' : 'opaque',
          usage,
        }),
      );
    }
    recordUsage(deps, req, parsed, '/v1/images/generations', started, 200, { input: usage.input_tokens, output: usage.output_tokens });
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
