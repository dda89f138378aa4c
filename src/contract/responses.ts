// Builders for what Easel answers: the ImagesResponse JSON and the streaming events
// (image_generation.* / image_edit.*), shaped exactly as the spec's schemas with all required fields.
//
// Spec: ImagesResponse, Image, ImageGenUsage, ImagesUsage, ImageGen{PartialImage,Completed}Event and
// ImageEdit{PartialImage,Completed}Event in test/fixtures/openai/openai-openapi-images.yaml. One deliberate
// difference: `size` is the returned image's exact WIDTHxHEIGHT, also for gpt-image-2's flexible sizes, which the
// spec's response enums (1024x1024, 1024x1536, 1536x1024) predate although its request side accepts them.

import type { ApiError } from './errors.js';
import type { Family, OutputFormat } from './families.js';
import type { ImageUsage } from './usage.js';

/** One entry of `data`: exactly one of b64_json / url, plus revised_prompt for dall-e-3. */
export interface ImageDatum {
  b64_json?: string;
  url?: string;
  revised_prompt?: string;
}

export interface ImagesResponseBody {
  created: number;
  data: ImageDatum[];
  background?: 'transparent' | 'opaque';
  output_format?: OutputFormat;
  /** The image's exact WIDTHxHEIGHT (outside the spec's enum for flexible sizes; see the header). */
  size?: string;
  quality?: 'low' | 'medium' | 'high';
  usage?: ImageUsage;
}

type GptQualityOut = 'low' | 'medium' | 'high';
function gptQuality(q: string): GptQualityOut {
  if (q === 'low' || q === 'medium' || q === 'high') return q;
  throw new RangeError(`expected a resolved GPT quality (low|medium|high), got '${q}'`);
}

export interface GptOutputInfo {
  /** Resolved values (no "auto"). */
  background: 'transparent' | 'opaque';
  output_format: OutputFormat;
  size: string;
  quality: string;
}

export interface BuildImagesResponseInput {
  /** Unix seconds. */
  created: number;
  family: Family;
  images: ImageDatum[];
  /** GPT family only: the resolved output settings echoed in the response. */
  output?: GptOutputInfo;
  /** GPT family only. */
  usage?: ImageUsage;
}

/**
 * The non-streaming answer. DALL·E families: `{created, data}` (url or b64_json, revised_prompt on
 * dall-e-3). GPT family: also background, output_format, size (exact, see the header), quality and usage.
 */
export function buildImagesResponse(input: BuildImagesResponseInput): ImagesResponseBody {
  const data = input.images.map((img) => {
    const hasB64 = typeof img.b64_json === 'string';
    const hasUrl = typeof img.url === 'string';
    if (hasB64 === hasUrl) throw new RangeError('each image needs exactly one of b64_json or url');
    const d: ImageDatum = hasB64 ? { b64_json: img.b64_json } : { url: img.url };
    if (input.family === 'dall-e-3' && typeof img.revised_prompt === 'string') d.revised_prompt = img.revised_prompt;
    return d;
  });
  const body: ImagesResponseBody = { created: Math.floor(input.created), data };
  if (input.family === 'gpt-image') {
    if (input.output) {
      body.background = input.output.background;
      body.output_format = input.output.output_format;
      body.size = input.output.size;
      body.quality = gptQuality(input.output.quality);
    }
    if (input.usage) body.usage = input.usage;
  }
  return body;
}

export type StreamKind = 'generation' | 'edit';

interface EventCommon {
  b64_json: string;
  created_at: number;
  size: string;
  quality: 'low' | 'medium' | 'high' | 'auto';
  background: 'transparent' | 'opaque' | 'auto';
  output_format: OutputFormat;
}
export interface PartialImageEvent extends EventCommon {
  type: 'image_generation.partial_image' | 'image_edit.partial_image';
  partial_image_index: number;
}
/** Completed events carry ImagesUsage, which has no output_tokens_details. */
export interface CompletedEvent extends EventCommon {
  type: 'image_generation.completed' | 'image_edit.completed';
  usage: Omit<ImageUsage, 'output_tokens_details'>;
}
export interface StreamErrorEvent {
  type: 'error';
  error: { message: string; type: string; param: string | null; code: string | null; [k: string]: unknown };
}

export interface EventInput {
  b64_json: string;
  /** Unix seconds. */
  created_at: number;
  /** Resolved or requested values; the size is the image's exact WIDTHxHEIGHT. */
  size: string;
  quality: string;
  background: string;
  output_format: OutputFormat;
}

function eventCommon(e: EventInput): EventCommon {
  const quality = e.quality === 'auto' ? 'auto' : gptQuality(e.quality);
  const background = e.background === 'transparent' || e.background === 'opaque' ? e.background : 'auto';
  return {
    b64_json: e.b64_json,
    created_at: Math.floor(e.created_at),
    size: e.size,
    quality,
    background,
    output_format: e.output_format,
  };
}

export function partialImageEvent(kind: StreamKind, e: EventInput & { partial_image_index: number }): PartialImageEvent {
  return {
    type: kind === 'generation' ? 'image_generation.partial_image' : 'image_edit.partial_image',
    ...eventCommon(e),
    partial_image_index: e.partial_image_index,
  };
}

export function completedEvent(kind: StreamKind, e: EventInput & { usage: ImageUsage }): CompletedEvent {
  const { output_tokens_details: _dropped, ...usage } = e.usage;
  return {
    type: kind === 'generation' ? 'image_generation.completed' : 'image_edit.completed',
    ...eventCommon(e),
    usage,
  };
}

/** The `event: error` payload for failures after the stream has started. */
export function streamErrorEvent(err: ApiError): StreamErrorEvent {
  return { type: 'error', ...err.toBody() };
}

/** One SSE frame whose `event:` line equals the JSON `type`. */
export function formatSseEvent(event: { type: string }): string {
  return `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

/** An SSE comment line used while waiting. */
export const SSE_KEEP_ALIVE = ': keep-alive\n\n';
