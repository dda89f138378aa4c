// The part of every image endpoint after parsing: moderation, planning the engine request, running it through
// the queue (cancelled when the client leaves), encoding, url/b64 delivery and usage records.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, moderationBlocked, queueFull, transparentNotSupported } from '../contract/errors.js';
import type { ParsedCommon } from '../contract/common.js';
import { AbortError, GenerateRequestError, type GenerateRequest, type GenerateResult, type RgbaImage } from '../engine/index.js';
import { CONTENT_TYPES, encodeImage } from '../imaging/encode.js';
import { QueueFullError } from '../jobs/types.js';
import { signImageUrl } from '../storage/signing.js';
import type { ServerDeps } from './app.js';
import type { ServedModel } from './model-registry.js';
import { planSize, presetFor } from './plan.js';

export async function checkModeration(deps: ServerDeps, prompt: string, level: 'auto' | 'low', requestId: string): Promise<void> {
  const verdict = await deps.moderation(prompt, level);
  if (verdict.flagged) throw moderationBlocked({ requestId, categories: verdict.categories });
}

export interface OutputPlan {
  width: number;
  height: number;
  format: 'png' | 'jpeg' | 'webp';
  compression: number;
  /** 'keep': the model's alpha is kept; 'flatten': composited on white. */
  alpha: 'keep' | 'flatten';
}

export interface JobPlan {
  request: GenerateRequest;
  output: OutputPlan;
}

/** Quality preset + extensions → steps/guidance/scheduler; size → native generation size; background → alpha. */
export function planJob(served: ServedModel, parsed: ParsedCommon): JobPlan {
  const caps = served.local.pipeline.capabilities;
  const preset = presetFor(parsed.resolved.quality, served.local.presets);
  const sizes = planSize(parsed.resolved.width, parsed.resolved.height, caps);
  const ext = parsed.extensions;
  const gpt = parsed.family === 'gpt-image';
  if (gpt && parsed.background === 'transparent' && !caps.supportsAlpha) throw transparentNotSupported();
  const keepAlpha = gpt && parsed.output_format !== 'jpeg' && caps.supportsAlpha && parsed.background !== 'opaque';
  const transparentWords = served.local.pipeline.folder.extras.transparent_background_prompt;
  const steerToTransparent = gpt && parsed.background === 'transparent' && transparentWords && !/transparent/i.test(parsed.prompt);
  return {
    request: {
      // only the conditioning changes: usage, moderation and the response are about the prompt as sent
      prompt: steerToTransparent ? `${parsed.prompt}${transparentWords}` : parsed.prompt,
      negativePrompt: ext.negative_prompt ?? served.local.pipeline.folder.extras.default_negative_prompt,
      width: sizes.genWidth,
      height: sizes.genHeight,
      numImages: parsed.n,
      numInferenceSteps: ext.num_inference_steps ?? preset.steps,
      guidanceScale: ext.guidance_scale ?? preset.guidance_scale,
      ...(preset.guidance_interval ? { guidanceInterval: preset.guidance_interval } : {}),
      seed: ext.seed,
      scheduler: ext.scheduler ?? (preset.scheduler as GenerateRequest['scheduler']),
    },
    output: {
      width: sizes.outWidth,
      height: sizes.outHeight,
      format: parsed.output_format,
      compression: parsed.output_compression,
      alpha: keepAlpha ? 'keep' : 'flatten',
    },
  };
}

/** Aborts when the client goes away before the response is finished. */
export function clientAbortSignal(req: FastifyRequest, reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableFinished) controller.abort();
  };
  reply.raw.once('close', onClose);
  req.raw.once('aborted', () => controller.abort());
  return controller.signal;
}

/** Runs a job through the queue, mapping queue and engine failures onto OpenAI-style errors. */
export async function runJob(
  deps: ServerDeps,
  served: ServedModel,
  request: GenerateRequest,
  signal: AbortSignal,
  hooks: { previewSteps?: number[]; onPreview?(step: number, images: RgbaImage[]): void | Promise<void> } = {},
): Promise<GenerateResult> {
  try {
    const handle = await deps.queue.enqueue({ model: served.local.name, request, signal, ...hooks });
    return await handle.result;
  } catch (err) {
    if (err instanceof QueueFullError) throw queueFull(err.retryAfterSeconds);
    if (err instanceof GenerateRequestError) throw new ApiError({ status: 400, message: err.message, code: 'invalid_value' });
    throw err;
  }
}

export function isClientGone(err: unknown): boolean {
  return err instanceof AbortError;
}

export interface EncodedOutput {
  bytes: Buffer;
  /** Whether any pixel is not fully opaque (reported as background "transparent"). */
  transparent: boolean;
}

function hasTransparency(img: RgbaImage): boolean {
  for (let i = 3; i < img.data.length; i += 4) if (img.data[i] < 255) return true;
  return false;
}

export async function encodeOutput(img: RgbaImage, out: OutputPlan): Promise<EncodedOutput> {
  const keep = out.alpha === 'keep';
  const bytes = await encodeImage(img, {
    format: out.format,
    compression: out.compression,
    keepAlpha: keep,
    width: out.width,
    height: out.height,
  });
  return { bytes, transparent: keep && hasTransparency(img) };
}

/** b64_json, or a stored image behind a signed URL that expires with the store's TTL. */
export async function deliver(
  deps: ServerDeps,
  req: FastifyRequest,
  encoded: EncodedOutput,
  format: OutputPlan['format'],
  responseFormat: 'url' | 'b64_json',
): Promise<{ b64_json?: string; url?: string }> {
  if (responseFormat === 'b64_json') return { b64_json: encoded.bytes.toString('base64') };
  const stored = await deps.store.put({ bytes: encoded.bytes, contentType: CONTENT_TYPES[format] }, { ttlSeconds: deps.config.images.urlTtlSeconds });
  const baseUrl = deps.config.publicBaseUrl ?? `${req.protocol}://${req.host}`;
  return { url: signImageUrl({ baseUrl, id: stored.id, ext: stored.ext, expiresAt: stored.expiresAt, secret: deps.urlSecret }) };
}

export function recordUsage(
  deps: ServerDeps,
  req: FastifyRequest,
  parsed: ParsedCommon,
  endpoint: string,
  /** performance.now() when the request started. */
  started: number,
  status: number,
  tokens: { input: number; output: number },
): void {
  try {
    deps.db.recordUsage({
      requestId: req.id,
      keyId: req.apiKeyId ?? null,
      endpoint,
      model: parsed.requested_model,
      servedModel: deps.models.resolve(parsed.model)?.local.name ?? parsed.model,
      size: parsed.resolved.size,
      n: parsed.n,
      quality: parsed.resolved.quality,
      inputTokens: tokens.input,
      outputTokens: tokens.output,
      user: parsed.user,
      durationMs: Math.round(performance.now() - started),
      status,
      prompt: deps.config.records.storePrompts ? parsed.prompt : null,
      createdAt: deps.now(),
    });
  } catch (err) {
    req.log.error({ err }, 'could not record usage');
  }
}
