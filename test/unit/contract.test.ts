// Tests for src/contract: per-family request validation (valid requests resolve to the expected values,
// invalid ones raise OpenAI's status/type/code/param), token usage numbers, and response/event shapes
// validated against OpenAI's published schemas (test/fixtures/openai/openai-openapi-images.yaml).
import { describe, expect, it } from 'vitest';
import {
  ApiError,
  buildImagesResponse,
  buildUsage,
  completedEvent,
  type EditFiles,
  encodeO200k,
  familyRules,
  formatSseEvent,
  inputImageTokens,
  invalidApiKey,
  invalidJsonBody,
  invalidUrl,
  missingApiKey,
  modelNotFound,
  moderationBlocked,
  OPENAI_MODEL_FAMILIES,
  outputImageTokens,
  type ParseContext,
  parseEditRequest,
  parseGenerationRequest,
  parseJsonEditRequest,
  parseMultipartEditRequest,
  parseVariationRequest,
  partialImageEvent,
  partialImageTokens,
  payloadTooLarge,
  queueFull,
  type ResolvedModel,
  redactApiKey,
  resolveAutoSize,
  scaledInputSize,
  serverError,
  streamErrorEvent,
  textTokens,
  type UploadedFilePart,
  unsupportedMediaType,
} from '../../src/contract/index.js';
import { validateSchema } from '../helpers/openapi.js';

// ---------------------------------------------------------------------------------------------
// A model registry like the server's: OpenAI names as aliases, one local model with its own name.

const ALL_EXT = ['seed', 'negative_prompt', 'num_inference_steps', 'guidance_scale', 'scheduler'];
const REGISTRY: Record<string, ResolvedModel> = {
  'dall-e-2': { name: 'dall-e-2', family: 'dall-e-2', extensions: ['seed'] },
  'dall-e-3': { name: 'dall-e-3', family: 'dall-e-3', extensions: [] },
  'gpt-image-1': { name: 'easel-default', family: 'gpt-image', extensions: ALL_EXT, limits: { num_inference_steps: { min: 1, max: 50 } } },
  'gpt-image-1-mini': { name: 'easel-default', family: 'gpt-image', extensions: ALL_EXT },
  'gpt-image-1.5': { name: 'easel-default', family: 'gpt-image', extensions: ALL_EXT },
  'gpt-image-2': { name: 'easel-default', family: 'gpt-image', extensions: ALL_EXT },
  'gpt-image-2-2026-04-21': { name: 'easel-default', family: 'gpt-image', extensions: ALL_EXT },
  'chatgpt-image-latest': { name: 'easel-default', family: 'gpt-image', extensions: ALL_EXT },
  'easel-sd': { name: 'easel-sd', family: 'gpt-image', extensions: ['seed'] },
};
const ctx: ParseContext = { resolveModel: (name) => REGISTRY[name] };

interface ExpectedError {
  status?: number;
  type?: string;
  code: string | null;
  param: string | null;
  message?: string | RegExp;
}

function catchError(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error('expected an ApiError, but the call succeeded');
}

function expectApiError(fn: () => unknown, exp: ExpectedError): void {
  const e = catchError(fn);
  expect({ status: e.status, type: e.type, code: e.code, param: e.param }).toEqual({
    status: exp.status ?? 400,
    type: exp.type ?? 'invalid_request_error',
    code: exp.code,
    param: exp.param,
  });
  if (typeof exp.message === 'string') expect(e.message).toBe(exp.message);
  else if (exp.message) expect(e.message).toMatch(exp.message);
  expect(e.shouldRetry).toBe(false);
  expect(validateSchema('ErrorResponse', e.toBody())).toEqual([]);
}

const P = 'A cute baby sea otter';

// ---------------------------------------------------------------------------------------------
// Generations.

type GenCase =
  | { name: string; body: unknown; ok: Record<string, unknown>; ctx?: ParseContext }
  | { name: string; body: unknown; err: ExpectedError; ctx?: ParseContext };

// biome-ignore format: one case per line keeps the table scannable
const generationCases: GenCase[] = [
  // --- valid: defaults and the omitted-model rule
  {
    name: 'minimal body defaults to dall-e-2',
    body: { prompt: P },
    ok: {
      model: 'dall-e-2', family: 'dall-e-2', n: 1, size: '1024x1024', quality: 'auto', response_format: 'url', style: null,
      output_format: 'png', output_compression: 100, background: 'auto', moderation: 'auto', stream: false, partial_images: 0,
      user: null, extensions: {}, resolved: { size: '1024x1024', width: 1024, height: 1024, quality: 'standard', background: 'opaque' },
    },
  },
  {
    name: 'omitted model + a GPT-only field selects gpt-image-1',
    body: { prompt: P, output_format: 'webp' },
    ok: { model: 'easel-default', requested_model: 'gpt-image-1', family: 'gpt-image', response_format: 'b64_json', size: 'auto', quality: 'auto', output_format: 'webp', resolved: { size: '1024x1024', quality: 'medium', background: 'opaque' } },
  },
  { name: 'omitted model + GPT-only key with null still selects gpt-image', body: { prompt: P, background: null }, ok: { family: 'gpt-image', background: 'auto' } },
  { name: 'model null means the default', body: { prompt: P, model: null }, ok: { model: 'dall-e-2' } },
  { name: 'ctx.defaultModel overrides dall-e-2', body: { prompt: P }, ctx: { ...ctx, defaultModel: 'gpt-image-1.5' }, ok: { requested_model: 'gpt-image-1.5', family: 'gpt-image' } },
  {
    name: 'dall-e-3 defaults',
    body: { prompt: P, model: 'dall-e-3' },
    ok: { family: 'dall-e-3', n: 1, size: '1024x1024', style: 'vivid', quality: 'auto', response_format: 'url', resolved: { quality: 'standard' } },
  },
  {
    name: 'dall-e-3 hd natural landscape b64',
    body: { prompt: P, model: 'dall-e-3', quality: 'hd', style: 'natural', size: '1792x1024', response_format: 'b64_json' },
    ok: { quality: 'hd', style: 'natural', size: '1792x1024', response_format: 'b64_json', resolved: { width: 1792, height: 1024, quality: 'hd' } },
  },
  {
    name: 'dall-e-2 small squares, n=10, standard',
    body: { prompt: P, model: 'dall-e-2', size: '256x256', n: 10, quality: 'standard', response_format: 'b64_json', user: 'u-1' },
    ok: { size: '256x256', n: 10, quality: 'standard', response_format: 'b64_json', user: 'u-1', resolved: { width: 256, height: 256 } },
  },
  {
    name: 'gpt-image-1 with every GPT field',
    body: { prompt: P, model: 'gpt-image-1', n: 4, size: '1536x1024', quality: 'high', output_format: 'jpeg', output_compression: 50, background: 'opaque', moderation: 'low', stream: true, partial_images: 2, user: 'u-2' },
    ok: { n: 4, size: '1536x1024', quality: 'high', output_format: 'jpeg', output_compression: 50, background: 'opaque', moderation: 'low', stream: true, partial_images: 2, user: 'u-2', resolved: { width: 1536, height: 1024, quality: 'high', background: 'opaque' } },
  },
  {
    name: 'explicit nulls on nullable fields mean defaults',
    body: { prompt: P, model: 'gpt-image-1', n: null, size: null, quality: null, output_format: null, output_compression: null, background: null, moderation: null, stream: null, partial_images: null },
    ok: { n: 1, size: 'auto', quality: 'auto', output_format: 'png', output_compression: 100, background: 'auto', moderation: 'auto', stream: false, partial_images: 0 },
  },
  { name: 'transparent webp keeps alpha', body: { prompt: P, model: 'gpt-image-1', background: 'transparent', output_format: 'webp' }, ok: { background: 'transparent', resolved: { background: 'transparent' } } },
  { name: 'gpt-image-2 accepts a flexible size', body: { prompt: P, model: 'gpt-image-2', size: '1536x864' }, ok: { size: '1536x864', resolved: { width: 1536, height: 864 } } },
  {
    name: 'Easel extensions within limits',
    body: { prompt: P, model: 'gpt-image-1', seed: 42, negative_prompt: 'blurry', num_inference_steps: 30, guidance_scale: 7.5, scheduler: 'euler-ancestral' },
    ok: { extensions: { seed: 42, negative_prompt: 'blurry', num_inference_steps: 30, guidance_scale: 7.5, scheduler: 'euler-ancestral' } },
  },
  { name: 'seed bounds inclusive', body: { prompt: P, model: 'gpt-image-1', seed: 4294967295 }, ok: { extensions: { seed: 4294967295 } } },
  { name: 'extension null is omitted', body: { prompt: P, model: 'gpt-image-1', seed: null }, ok: { extensions: {} } },
  { name: 'prompt length counts code points (1000 emoji on dall-e-2)', body: { prompt: '🦦'.repeat(1000) }, ok: { family: 'dall-e-2' } },
  { name: 'a whitespace prompt is accepted (as OpenAI does)', body: { prompt: '   ' }, ok: { prompt: '   ' } },
  { name: 'quality auto on dall-e-2 resolves to standard', body: { prompt: P, quality: 'auto' }, ok: { quality: 'auto', resolved: { quality: 'standard' } } },

  // --- invalid: body, model, unknown fields
  { name: 'body must be an object', body: [P], err: { code: 'invalid_type', param: null } },
  { name: 'unknown model', body: { prompt: P, model: 'dall-e-4' }, err: { status: 404, code: 'model_not_found', param: 'model', message: 'The model `dall-e-4` does not exist or you do not have access to it.' } },
  { name: 'empty model name', body: { prompt: P, model: '' }, err: { status: 404, code: 'model_not_found', param: 'model' } },
  { name: 'model of the wrong type', body: { prompt: P, model: 3 }, err: { code: 'invalid_type', param: 'model', message: "Invalid type for 'model': expected a string, but got an integer instead." } },
  { name: 'omitted model + GPT field when gpt-image-1 is not served', body: { prompt: P, stream: true }, ctx: { resolveModel: (n) => (n === 'dall-e-2' ? REGISTRY[n] : undefined) }, err: { status: 404, code: 'model_not_found', param: 'model' } },
  { name: 'unknown field', body: { prompt: P, foo: 1 }, err: { code: 'unknown_parameter', param: 'foo', message: "Unknown parameter: 'foo'." } },
  { name: 'response_format on a GPT model', body: { prompt: P, model: 'gpt-image-1', response_format: 'b64_json' }, err: { code: 'unknown_parameter', param: 'response_format', message: "Unknown parameter: 'response_format'." } },
  { name: 'response_format null on a GPT model is still unknown', body: { prompt: P, model: 'gpt-image-1', response_format: null }, err: { code: 'unknown_parameter', param: 'response_format' } },
  { name: 'style on a GPT model', body: { prompt: P, model: 'gpt-image-1.5', style: 'vivid' }, err: { code: 'unknown_parameter', param: 'style' } },
  { name: 'style on dall-e-2', body: { prompt: P, style: 'vivid' }, err: { code: 'unknown_parameter', param: 'style' } },
  { name: 'background on explicit dall-e-2', body: { prompt: P, model: 'dall-e-2', background: 'opaque' }, err: { code: 'unknown_parameter', param: 'background' } },
  { name: 'output_format on dall-e-3', body: { prompt: P, model: 'dall-e-3', output_format: 'png' }, err: { code: 'unknown_parameter', param: 'output_format' } },
  { name: 'input_fidelity is edits-only', body: { prompt: P, model: 'gpt-image-1', input_fidelity: 'high' }, err: { code: 'unknown_parameter', param: 'input_fidelity' } },
  { name: 'extension the model does not accept', body: { prompt: P, model: 'dall-e-3', seed: 1 }, err: { code: 'unknown_parameter', param: 'seed' } },
  { name: 'extension outside the model list', body: { prompt: P, model: 'easel-sd', scheduler: 'ddim' }, err: { code: 'unknown_parameter', param: 'scheduler' } },
  { name: 'unknown keys are reported before a missing prompt', body: { bogus: 1 }, err: { code: 'unknown_parameter', param: 'bogus' } },

  // --- prompt
  { name: 'missing prompt', body: {}, err: { code: 'missing_required_parameter', param: 'prompt', message: "Missing required parameter: 'prompt'." } },
  { name: 'prompt null', body: { prompt: null }, err: { code: 'invalid_type', param: 'prompt', message: "Invalid type for 'prompt': expected a string, but got null instead." } },
  { name: 'prompt number', body: { prompt: 123 }, err: { code: 'invalid_type', param: 'prompt' } },
  { name: 'empty prompt', body: { prompt: '' }, err: { code: 'empty_string', param: 'prompt', message: "Invalid 'prompt': empty string. Expected a string with minimum length 1, but got an empty string instead." } },
  { name: 'prompt too long for dall-e-2', body: { prompt: 'a'.repeat(1001) }, err: { code: 'string_above_max_length', param: 'prompt', message: "Invalid 'prompt': string too long. Expected a string with maximum length 1000, but got a string with length 1001 instead." } },
  { name: 'prompt too long for dall-e-3', body: { prompt: 'a'.repeat(4001), model: 'dall-e-3' }, err: { code: 'string_above_max_length', param: 'prompt', message: /maximum length 4000/ } },
  { name: 'prompt too long for GPT models', body: { prompt: 'a'.repeat(32001), model: 'gpt-image-1' }, err: { code: 'string_above_max_length', param: 'prompt', message: /maximum length 32000, but got a string with length 32001/ } },
  { name: 'missing prompt is reported before a bad n', body: { n: 0 }, err: { code: 'missing_required_parameter', param: 'prompt' } },

  // --- n
  { name: 'n below 1', body: { prompt: P, n: 0 }, err: { code: 'integer_below_min_value', param: 'n', message: "Invalid 'n': integer below minimum value. Expected a value >= 1, but got 0 instead." } },
  { name: 'n above 10', body: { prompt: P, n: 11 }, err: { code: 'integer_above_max_value', param: 'n', message: "Invalid 'n': integer above maximum value. Expected a value <= 10, but got 11 instead." } },
  { name: 'n as a JSON string', body: { prompt: P, n: '2' }, err: { code: 'invalid_type', param: 'n', message: "Invalid type for 'n': expected an integer, but got a string instead." } },
  { name: 'n fractional', body: { prompt: P, n: 1.5 }, err: { code: 'invalid_type', param: 'n', message: "Invalid type for 'n': expected an integer, but got a decimal number instead." } },
  { name: 'n boolean', body: { prompt: P, n: true }, err: { code: 'invalid_type', param: 'n', message: /got a boolean instead/ } },
  { name: 'dall-e-3 only supports n=1', body: { prompt: P, model: 'dall-e-3', n: 2 }, err: { code: null, param: 'n', message: 'You must provide n=1 for this model.' } },

  // --- size
  { name: 'dall-e-2 refuses a dall-e-3 size', body: { prompt: P, size: '1792x1024' }, err: { code: 'invalid_size', param: 'size', message: 'The size is not supported by this model.' } },
  { name: 'dall-e-3 refuses 512x512', body: { prompt: P, model: 'dall-e-3', size: '512x512' }, err: { code: 'invalid_size', param: 'size' } },
  { name: 'dall-e-2 refuses auto', body: { prompt: P, model: 'dall-e-2', size: 'auto' }, err: { code: 'invalid_size', param: 'size' } },
  { name: 'gpt-image-1 refuses 512x512', body: { prompt: P, model: 'gpt-image-1', size: '512x512' }, err: { code: 'invalid_value', param: 'size', message: "Invalid value: '512x512'. Supported values are: '1024x1024', '1536x1024', '1024x1536', and 'auto'." } },
  { name: 'gpt-image-1 refuses a flexible size', body: { prompt: P, model: 'gpt-image-1', size: '1536x864' }, err: { code: 'invalid_value', param: 'size' } },
  { name: 'size as a number', body: { prompt: P, size: 1024 }, err: { code: 'invalid_type', param: 'size', message: "Invalid type for 'size': expected a string, but got an integer instead." } },
  { name: 'gpt-image-2 malformed size', body: { prompt: P, model: 'gpt-image-2', size: 'bogus' }, err: { type: 'image_generation_user_error', code: 'invalid_value', param: 'size', message: "Invalid size 'bogus'. Expected WIDTHxHEIGHT, for example '1824x1024'." } },
  { name: 'gpt-image-2 size not divisible by 16', body: { prompt: P, model: 'gpt-image-2', size: '1000x1000' }, err: { type: 'image_generation_user_error', code: 'invalid_value', param: 'size', message: 'Width and height must both be divisible by 16.' } },
  { name: 'gpt-image-2 edge above 3840', body: { prompt: P, model: 'gpt-image-2', size: '4096x2160' }, err: { type: 'image_generation_user_error', code: 'invalid_value', param: 'size', message: /at most 3840/ } },
  { name: 'gpt-image-2 aspect ratio above 3:1', body: { prompt: P, model: 'gpt-image-2', size: '3840x1024' }, err: { type: 'image_generation_user_error', code: 'invalid_value', param: 'size', message: /aspect ratio/ } },
  { name: 'gpt-image-2 at 3840x2160, the spec maximum', body: { prompt: P, model: 'gpt-image-2', size: '3840x2160' }, ok: { size: '3840x2160', resolved: { size: '3840x2160', width: 3840, height: 2160 } } },
  { name: 'gpt-image-2 snapshot, portrait 2160x3840', body: { prompt: P, model: 'gpt-image-2-2026-04-21', size: '2160x3840' }, ok: { requested_model: 'gpt-image-2-2026-04-21', resolved: { width: 2160, height: 3840 } } },
  { name: 'gpt-image-2 aspect exactly 3:1', body: { prompt: P, model: 'gpt-image-2', size: '3840x1280' }, ok: { resolved: { width: 3840, height: 1280 } } },
  { name: 'gpt-image-2 at the pixel floor (655360 = 1024x640)', body: { prompt: P, model: 'gpt-image-2', size: '1024x640' }, ok: { resolved: { width: 1024, height: 640 } } },
  { name: 'gpt-image-2 at the pixel ceiling (8294400 = 2880x2880)', body: { prompt: P, model: 'gpt-image-2', size: '2880x2880' }, ok: { resolved: { width: 2880, height: 2880 } } },
  { name: 'gpt-image-2 keeps auto and the standard sizes', body: { prompt: P, model: 'gpt-image-2', size: '1024x1536', quality: 'high' }, ok: { resolved: { width: 1024, height: 1536, quality: 'high' } } },
  { name: 'chatgpt-image-latest speaks the GPT rules', body: { prompt: P, model: 'chatgpt-image-latest', output_format: 'webp', moderation: 'low', n: 10 }, ok: { family: 'gpt-image', size: 'auto', n: 10, response_format: 'b64_json', resolved: { size: '1024x1024', quality: 'medium' } } },
  { name: 'chatgpt-image-latest refuses a flexible size', body: { prompt: P, model: 'chatgpt-image-latest', size: '1536x864' }, err: { code: 'invalid_value', param: 'size' } },
  { name: 'gpt-image-2 one pixel row under the floor (1008x640)', body: { prompt: P, model: 'gpt-image-2', size: '1008x640' }, err: { type: 'image_generation_user_error', code: 'invalid_value', param: 'size', message: /between 655360 and 8294400, but got 645120/ } },
  { name: 'gpt-image-2 above the pixel ceiling (2896x2880)', body: { prompt: P, model: 'gpt-image-2', size: '2896x2880' }, err: { type: 'image_generation_user_error', code: 'invalid_value', param: 'size', message: /total number of pixels/ } },
  { name: 'gpt-image-2 edge 3856', body: { prompt: P, model: 'gpt-image-2', size: '3856x2160' }, err: { type: 'image_generation_user_error', code: 'invalid_value', param: 'size', message: /at most 3840/ } },
  { name: 'gpt-image-2 just past 3:1', body: { prompt: P, model: 'gpt-image-2', size: '1024x3088' }, err: { type: 'image_generation_user_error', code: 'invalid_value', param: 'size', message: /between 1:3 and 3:1/ } },
  { name: 'gpt-image-2 too few pixels', body: { prompt: P, model: 'gpt-image-2', size: '512x512' }, err: { type: 'image_generation_user_error', code: 'invalid_value', param: 'size', message: /total number of pixels/ } },

  // --- quality, style, response_format
  { name: 'standard quality on a GPT model', body: { prompt: P, model: 'gpt-image-1', quality: 'standard' }, err: { code: 'invalid_value', param: 'quality', message: "Invalid value: 'standard'. Supported values are: 'low', 'medium', 'high', and 'auto'." } },
  { name: 'quality of the wrong type', body: { prompt: P, model: 'gpt-image-1', quality: 1 }, err: { code: 'invalid_type', param: 'quality', message: "Invalid type for 'quality': expected one of 'low', 'medium', 'high', or 'auto', but got an integer instead." } },
  { name: 'hd on dall-e-2', body: { prompt: P, quality: 'hd' }, err: { code: 'invalid_value', param: 'quality', message: "Invalid value: 'hd'. Supported values are: 'standard' and 'auto'." } },
  { name: 'high on dall-e-3', body: { prompt: P, model: 'dall-e-3', quality: 'high' }, err: { code: 'invalid_value', param: 'quality' } },
  { name: 'unknown style', body: { prompt: P, model: 'dall-e-3', style: 'loud' }, err: { code: 'invalid_value', param: 'style', message: "Invalid value: 'loud'. Supported values are: 'vivid' and 'natural'." } },
  { name: 'unknown response_format', body: { prompt: P, response_format: 'png' }, err: { code: 'invalid_value', param: 'response_format' } },

  // --- GPT-only options
  { name: 'unknown output_format', body: { prompt: P, model: 'gpt-image-1', output_format: 'gif' }, err: { code: 'invalid_value', param: 'output_format', message: "Invalid value: 'gif'. Supported values are: 'png', 'webp', and 'jpeg'." } },
  { name: 'output_compression above 100', body: { prompt: P, model: 'gpt-image-1', output_format: 'jpeg', output_compression: 101 }, err: { code: 'integer_above_max_value', param: 'output_compression' } },
  { name: 'output_compression below 0', body: { prompt: P, model: 'gpt-image-1', output_format: 'jpeg', output_compression: -1 }, err: { code: 'integer_below_min_value', param: 'output_compression' } },
  { name: 'output_compression below 100 with png', body: { prompt: P, model: 'gpt-image-1', output_compression: 80 }, err: { type: 'image_generation_user_error', code: 'invalid_png_output_compression', param: 'output_compression', message: 'Compression less than 100 is not supported for PNG output format.' } },
  { name: 'transparent background with jpeg', body: { prompt: P, model: 'gpt-image-1', background: 'transparent', output_format: 'jpeg' }, err: { code: 'invalid_value', param: 'background', message: /'png' or 'webp'/ } },
  { name: 'unknown background', body: { prompt: P, model: 'gpt-image-1', background: 'bogus' }, err: { code: 'invalid_value', param: 'background', message: "Invalid value: 'bogus'. Supported values are: 'transparent', 'opaque', and 'auto'." } },
  { name: 'unknown moderation', body: { prompt: P, model: 'gpt-image-1', moderation: 'high' }, err: { code: 'invalid_value', param: 'moderation', message: "Invalid value: 'high'. Supported values are: 'auto' and 'low'." } },
  { name: 'stream as a string', body: { prompt: P, model: 'gpt-image-1', stream: 'yes' }, err: { code: 'invalid_type', param: 'stream', message: "Invalid type for 'stream': expected a boolean, but got a string instead." } },
  { name: 'partial_images above 3', body: { prompt: P, model: 'gpt-image-1', stream: true, partial_images: 4 }, err: { code: 'integer_above_max_value', param: 'partial_images', message: /<= 3, but got 4/ } },
  // --- "no streaming" on the DALL·E families: stream false/null and partial_images 0/null change nothing
  { name: 'dall-e-3 takes stream: false', body: { prompt: P, model: 'dall-e-3', stream: false }, ok: { family: 'dall-e-3', stream: false, partial_images: 0, response_format: 'url' } },
  { name: 'dall-e-2 takes stream null and partial_images 0', body: { prompt: P, model: 'dall-e-2', stream: null, partial_images: 0 }, ok: { family: 'dall-e-2', stream: false, partial_images: 0 } },
  { name: 'dall-e-2 takes partial_images null', body: { prompt: P, model: 'dall-e-2', partial_images: null }, ok: { partial_images: 0 } },
  { name: 'dall-e-2 refuses stream: true', body: { prompt: P, model: 'dall-e-2', stream: true }, err: { code: 'unsupported_value', param: 'stream', message: "Unsupported value: 'stream' does not support true with this model. Only the default (false) value is supported." } },
  { name: 'dall-e-3 refuses partial_images 2', body: { prompt: P, model: 'dall-e-3', stream: false, partial_images: 2 }, err: { code: 'unsupported_value', param: 'partial_images', message: "Unsupported value: 'partial_images' does not support 2 with this model. Only the default (0) value is supported." } },
  { name: 'dall-e-3 stream of the wrong type', body: { prompt: P, model: 'dall-e-3', stream: 'false' }, err: { code: 'invalid_type', param: 'stream' } },
  { name: 'dall-e-2 partial_images out of range', body: { prompt: P, model: 'dall-e-2', partial_images: 4 }, err: { code: 'integer_above_max_value', param: 'partial_images' } },
  { name: 'GPT partial_images without stream is accepted (nothing to stream)', body: { prompt: P, model: 'gpt-image-1', partial_images: 2 }, ok: { stream: false, partial_images: 2 } },
  { name: 'partial_images below 0', body: { prompt: P, model: 'gpt-image-1', partial_images: -1 }, err: { code: 'integer_below_min_value', param: 'partial_images' } },
  { name: 'user must be a string', body: { prompt: P, user: 123 }, err: { code: 'invalid_type', param: 'user' } },

  // --- extensions
  { name: 'seed below 0', body: { prompt: P, model: 'gpt-image-1', seed: -1 }, err: { code: 'integer_below_min_value', param: 'seed' } },
  { name: 'seed above 2^32-1', body: { prompt: P, model: 'gpt-image-1', seed: 4294967296 }, err: { code: 'integer_above_max_value', param: 'seed' } },
  { name: 'per-model step limit', body: { prompt: P, model: 'gpt-image-1', num_inference_steps: 51 }, err: { code: 'integer_above_max_value', param: 'num_inference_steps', message: /<= 50/ } },
  { name: 'default step limit is 100', body: { prompt: P, model: 'gpt-image-1.5', num_inference_steps: 101 }, err: { code: 'integer_above_max_value', param: 'num_inference_steps', message: /<= 100/ } },
  { name: 'guidance_scale above 30', body: { prompt: P, model: 'gpt-image-1', guidance_scale: 30.5 }, err: { code: 'decimal_above_max_value', param: 'guidance_scale', message: "Invalid 'guidance_scale': decimal above maximum value. Expected a value <= 30, but got 30.5 instead." } },
  { name: 'guidance_scale as a string in JSON', body: { prompt: P, model: 'gpt-image-1', guidance_scale: '7' }, err: { code: 'invalid_type', param: 'guidance_scale', message: /expected a decimal/ } },
  { name: 'unknown scheduler', body: { prompt: P, model: 'gpt-image-1', scheduler: 'pndm' }, err: { code: 'invalid_value', param: 'scheduler' } },
  { name: 'negative_prompt of the wrong type', body: { prompt: P, model: 'gpt-image-1', negative_prompt: 5 }, err: { code: 'invalid_type', param: 'negative_prompt' } },
];

describe('parseGenerationRequest', () => {
  for (const c of generationCases) {
    it(c.name, () => {
      const cx = c.ctx ?? ctx;
      if ('ok' in c) {
        const parsed = parseGenerationRequest(c.body, cx);
        expect(parsed.endpoint).toBe('generations');
        expect(parsed).toMatchObject(c.ok);
      } else {
        expectApiError(() => parseGenerationRequest(c.body, cx), c.err);
      }
    });
  }

  it('does not mutate the body', () => {
    const body = { prompt: P, model: 'gpt-image-1', n: 2 };
    const copy = structuredClone(body);
    parseGenerationRequest(body, ctx);
    expect(body).toEqual(copy);
  });
});

// ---------------------------------------------------------------------------------------------
// Edits.

const png = (over: Partial<UploadedFilePart> = {}): UploadedFilePart => ({
  field: 'image',
  filename: 'in.png',
  mimetype: 'image/png',
  bytes: 10_000,
  ...over,
});
const files = (...images: UploadedFilePart[]): EditFiles => ({ images });

type EditCase =
  | { name: string; fields: Record<string, string | string[]>; files: EditFiles; ok: Record<string, unknown> }
  | { name: string; fields: Record<string, string | string[]>; files: EditFiles; err: ExpectedError };

// biome-ignore format: one case per line keeps the table scannable
const multipartCases: EditCase[] = [
  {
    name: 'GPT edit with strings converted (default model gpt-image-1.5)',
    fields: { prompt: P, n: '2', stream: 'true', partial_images: '2', output_format: 'webp', output_compression: '80', input_fidelity: 'high', quality: 'low' },
    files: files(png({ width: 1500, height: 1000 })),
    ok: {
      endpoint: 'edits', form: 'multipart', requested_model: 'gpt-image-1.5', family: 'gpt-image', n: 2, stream: true, partial_images: 2,
      output_format: 'webp', output_compression: 80, input_fidelity: 'high', response_format: 'b64_json', size: 'auto',
      resolved: { size: '1536x1024', quality: 'low' }, mask: null,
      images: [{ source: 'upload', param: 'image', mimetype: 'image/png', bytes: 10_000, width: 1500, height: 1000 }],
    },
  },
  {
    name: 'input_fidelity defaults to low on GPT models',
    fields: { prompt: P, model: 'gpt-image-1', stream: 'FALSE' },
    files: files(png()),
    ok: { input_fidelity: 'low', stream: false, resolved: { size: '1024x1024' } },
  },
  {
    name: 'dall-e-2 edit with mask and url output',
    fields: { prompt: P, model: 'dall-e-2', size: '512x512', response_format: 'url', n: '3' },
    files: { images: [png({ width: 1024, height: 1024 })], mask: { field: 'mask', filename: 'm.png', mimetype: 'image/png', bytes: 500, width: 1024, height: 1024 } },
    ok: { family: 'dall-e-2', size: '512x512', response_format: 'url', n: 3, input_fidelity: null, mask: { source: 'upload', param: 'mask', bytes: 500 }, resolved: { width: 512, quality: 'standard' } },
  },
  {
    name: 'several image[] parts are named image[i]',
    fields: { prompt: P, model: 'gpt-image-1' },
    files: files(png({ field: 'image[]' }), png({ field: 'image[]', mimetype: 'image/jpeg', filename: 'b.jpg' }), png({ field: 'image[]', mimetype: 'image/webp' })),
    ok: { images: [{ param: 'image[0]', mimetype: 'image/png' }, { param: 'image[1]', mimetype: 'image/jpeg' }, { param: 'image[2]', mimetype: 'image/webp' }] },
  },
  // --- the part's bytes decide its type, never its file name
  {
    name: 'a fetched URL as the file: query string in the name, octet-stream, PNG bytes',
    fields: { prompt: P, model: 'gpt-image-1' },
    files: files(png({ mimetype: 'application/octet-stream', filename: 'abc.png?expires=1764000000&sig=f00d', sniffedMimetype: 'image/png' })),
    ok: { images: [{ mimetype: 'image/png', filename: 'abc.png?expires=1764000000&sig=f00d' }] },
  },
  { name: 'dall-e-2: a query-string name on PNG bytes', fields: { prompt: P, model: 'dall-e-2' }, files: files(png({ mimetype: '', filename: 'x.png?sig=1', sniffedMimetype: 'image/png' })), ok: { images: [{ mimetype: 'image/png' }] } },
  { name: 'untyped part named blob with JPEG bytes', fields: { prompt: P, model: 'gpt-image-1' }, files: files(png({ mimetype: 'application/octet-stream', filename: 'blob', sniffedMimetype: 'image/jpeg' })), ok: { images: [{ mimetype: 'image/jpeg' }] } },
  { name: 'the bytes win over the declared type', fields: { prompt: P, model: 'gpt-image-1' }, files: files(png({ mimetype: 'image/png', sniffedMimetype: 'image/webp' })), ok: { images: [{ mimetype: 'image/webp' }] } },
  { name: 'bytes that are no image leave the declared type', fields: { prompt: P, model: 'gpt-image-1' }, files: files(png({ mimetype: 'image/png', sniffedMimetype: null })), ok: { images: [{ mimetype: 'image/png' }] } },
  { name: 'the file name does not type an untyped part', fields: { prompt: P, model: 'gpt-image-1' }, files: files(png({ mimetype: 'application/octet-stream', filename: 'photo.JPG' })), err: { code: 'unsupported_file_mimetype', param: 'image', message: /'application\/octet-stream'/ } },
  { name: 'dall-e-2: JPEG bytes declared as PNG', fields: { prompt: P, model: 'dall-e-2' }, files: files(png({ mimetype: 'image/png', sniffedMimetype: 'image/jpeg' })), err: { code: 'unsupported_file_mimetype', param: 'image', message: /unsupported mimetype \('image\/jpeg'\)/ } },
  { name: 'a mask is typed by its bytes too', fields: { prompt: P, model: 'gpt-image-1' }, files: { images: [png()], mask: { field: 'mask', filename: 'm.png?sig=2', mimetype: 'application/octet-stream', sniffedMimetype: 'image/png', bytes: 100 } }, ok: { mask: { mimetype: 'image/png' } } },
  // --- quality: the edit enum has standard for GPT models too
  { name: 'quality standard on a GPT edit means medium', fields: { prompt: P, model: 'gpt-image-1', quality: 'standard' }, files: files(png()), ok: { quality: 'standard', resolved: { quality: 'medium' } } },
  { name: 'quality standard on a gpt-image-2 edit', fields: { prompt: P, model: 'gpt-image-2', quality: 'standard' }, files: files(png()), ok: { resolved: { quality: 'medium' } } },
  { name: 'quality hd is still refused on GPT edits', fields: { prompt: P, model: 'gpt-image-1', quality: 'hd' }, files: files(png()), err: { code: 'invalid_value', param: 'quality', message: "Invalid value: 'hd'. Supported values are: 'standard', 'low', 'medium', 'high', and 'auto'." } },
  // --- the newest models on edits; "no streaming" on dall-e-2
  { name: 'gpt-image-2 edit at a flexible size', fields: { prompt: P, model: 'gpt-image-2', size: '1536x864' }, files: files(png()), ok: { input_fidelity: null, resolved: { size: '1536x864', width: 1536, height: 864 } } },
  { name: 'chatgpt-image-latest takes input_fidelity', fields: { prompt: P, model: 'chatgpt-image-latest', input_fidelity: 'high' }, files: files(png()), ok: { input_fidelity: 'high' } },
  { name: 'dall-e-2 edit with stream false and partial_images 0', fields: { prompt: P, model: 'dall-e-2', stream: 'false', partial_images: '0' }, files: files(png()), ok: { family: 'dall-e-2', stream: false, partial_images: 0 } },
  {
    name: 'extensions arrive as strings',
    fields: { prompt: P, model: 'gpt-image-1', seed: '7', guidance_scale: '0.5', num_inference_steps: '12', scheduler: 'lcm' },
    files: files(png()),
    ok: { extensions: { seed: 7, guidance_scale: 0.5, num_inference_steps: 12, scheduler: 'lcm' } },
  },
  { name: 'n that is not a number', fields: { prompt: P, n: 'abc' }, files: files(png()), err: { code: 'invalid_type', param: 'n', message: "Invalid type for 'n': expected an integer, but got a string value that could not be converted into an integer." } },
  { name: 'n that is fractional', fields: { prompt: P, n: '2.5' }, files: files(png()), err: { code: 'invalid_type', param: 'n' } },
  { name: 'n too large', fields: { prompt: P, n: '11' }, files: files(png()), err: { code: 'integer_above_max_value', param: 'n' } },
  { name: 'stream that is not a boolean', fields: { prompt: P, stream: 'yes' }, files: files(png()), err: { code: 'invalid_type', param: 'stream', message: /could not be converted into a boolean/ } },
  { name: 'guidance_scale that is not a number', fields: { prompt: P, model: 'gpt-image-1', guidance_scale: 'abc' }, files: files(png()), err: { code: 'invalid_type', param: 'guidance_scale' } },
  { name: 'repeated scalar field', fields: { prompt: P, n: ['1', '2'] }, files: files(png()), err: { code: 'invalid_type', param: 'n', message: /got an array instead/ } },
  { name: 'empty quality', fields: { prompt: P, quality: '' }, files: files(png()), err: { code: 'invalid_value', param: 'quality' } },
  { name: 'no image', fields: { prompt: P }, files: files(), err: { code: 'missing_required_parameter', param: 'image' } },
  { name: 'missing prompt', fields: {}, files: files(png()), err: { code: 'missing_required_parameter', param: 'prompt' } },
  { name: 'more than 16 images', fields: { prompt: P }, files: files(...Array.from({ length: 17 }, () => png({ field: 'image[]' }))), err: { code: 'array_above_max_length', param: 'image' } },
  { name: 'dall-e-2 with two images', fields: { prompt: P, model: 'dall-e-2' }, files: files(png({ field: 'image[]' }), png({ field: 'image[]' })), err: { code: 'array_above_max_length', param: 'image' } },
  { name: 'gif input', fields: { prompt: P }, files: files(png({ mimetype: 'image/gif' })), err: { code: 'unsupported_file_mimetype', param: 'image', message: "Invalid file 'image': unsupported mimetype ('image/gif'). Supported file formats are 'image/jpeg', 'image/png', and 'image/webp'." } },
  { name: 'untyped part without an image extension', fields: { prompt: P }, files: files(png({ mimetype: 'application/octet-stream', filename: 'blob' })), err: { code: 'unsupported_file_mimetype', param: 'image', message: /'application\/octet-stream'/ } },
  { name: 'dall-e-2 jpeg', fields: { prompt: P, model: 'dall-e-2' }, files: files(png({ mimetype: 'image/jpeg' })), err: { code: 'unsupported_file_mimetype', param: 'image', message: /Supported file formats are 'image\/png'\./ } },
  { name: 'GPT image of 50 MB', fields: { prompt: P }, files: files(png({ bytes: 50 * 1024 * 1024 })), err: { code: 'file_too_large', param: 'image' } },
  { name: 'dall-e-2 image of 4 MB', fields: { prompt: P, model: 'dall-e-2' }, files: files(png({ bytes: 4 * 1024 * 1024 })), err: { code: 'invalid_image', param: 'image', message: 'Uploaded image must be a PNG and less than 4 MB.' } },
  { name: 'dall-e-2 image not square', fields: { prompt: P, model: 'dall-e-2' }, files: files(png({ width: 1024, height: 768 })), err: { code: 'invalid_image', param: 'image', message: /square/ } },
  { name: 'empty file', fields: { prompt: P }, files: files(png({ bytes: 0 })), err: { code: 'invalid_image', param: 'image' } },
  { name: 'jpeg mask', fields: { prompt: P }, files: { images: [png()], mask: { field: 'mask', mimetype: 'image/jpeg', bytes: 100 } }, err: { code: 'unsupported_file_mimetype', param: 'mask' } },
  { name: 'mask of another size', fields: { prompt: P }, files: { images: [png({ width: 1024, height: 1024 })], mask: { field: 'mask', mimetype: 'image/png', bytes: 100, width: 512, height: 512 } }, err: { code: 'invalid_image', param: 'mask', message: /same dimensions/ } },
  { name: "file part named 'images'", fields: { prompt: P }, files: files(png({ field: 'images' })), err: { code: 'invalid_value', param: 'images', message: "Unknown parameter: 'images'. For multipart/form-data use 'image' or 'image[]'." } },
  { name: 'file part with an unknown name', fields: { prompt: P }, files: files(png({ field: 'picture' })), err: { code: 'unknown_parameter', param: 'picture' } },
  { name: 'image sent as a text field', fields: { prompt: P, image: 'not-a-file' }, files: files(png()), err: { code: 'invalid_type', param: 'image', message: "Invalid type for 'image': expected a file, but got a string instead." } },
  { name: 'style is not an edit field', fields: { prompt: P, style: 'vivid' }, files: files(png()), err: { code: 'unknown_parameter', param: 'style' } },
  { name: 'response_format on a GPT edit', fields: { prompt: P, response_format: 'url' }, files: files(png()), err: { code: 'unknown_parameter', param: 'response_format' } },
  { name: 'stream on a dall-e-2 edit', fields: { prompt: P, model: 'dall-e-2', stream: 'true' }, files: files(png()), err: { code: 'unsupported_value', param: 'stream' } },
  { name: 'partial_images on a dall-e-2 edit', fields: { prompt: P, model: 'dall-e-2', partial_images: '1' }, files: files(png()), err: { code: 'unsupported_value', param: 'partial_images' } },
  { name: 'dall-e-3 cannot edit', fields: { prompt: P, model: 'dall-e-3' }, files: files(png()), err: { code: 'invalid_value', param: 'model' } },
  { name: 'gpt-image-1-mini refuses input_fidelity', fields: { prompt: P, model: 'gpt-image-1-mini', input_fidelity: 'high' }, files: files(png()), err: { type: 'image_generation_user_error', code: 'invalid_input_fidelity_model', param: 'input_fidelity', message: "The model 'gpt-image-1-mini' does not support the 'input_fidelity' parameter." } },
  { name: 'gpt-image-2 refuses input_fidelity', fields: { prompt: P, model: 'gpt-image-2', input_fidelity: 'low' }, files: files(png()), err: { type: 'image_generation_user_error', code: 'invalid_input_fidelity_model', param: 'input_fidelity' } },
  { name: 'the gpt-image-2 snapshot refuses input_fidelity', fields: { prompt: P, model: 'gpt-image-2-2026-04-21', input_fidelity: 'high' }, files: files(png()), err: { type: 'image_generation_user_error', code: 'invalid_input_fidelity_model', param: 'input_fidelity', message: "The model 'gpt-image-2-2026-04-21' does not support the 'input_fidelity' parameter." } },
  { name: 'dall-e-2 edit prompt limit', fields: { prompt: 'x'.repeat(1001), model: 'dall-e-2' }, files: files(png()), err: { code: 'string_above_max_length', param: 'prompt' } },
];

describe('parseMultipartEditRequest', () => {
  for (const c of multipartCases) {
    it(c.name, () => {
      if ('ok' in c) expect(parseMultipartEditRequest(c.fields, c.files, ctx)).toMatchObject(c.ok);
      else expectApiError(() => parseMultipartEditRequest(c.fields, c.files, ctx), c.err);
    });
  }
});

const PNG_B64 = Buffer.from('\x89PNG\r\n\x1a\nfake-png-bytes', 'latin1').toString('base64');
const dataUrl = (mime = 'image/png') => `data:${mime};base64,${PNG_B64}`;

type JsonCase = { name: string; body: unknown; ok?: Record<string, unknown>; err?: ExpectedError };
// biome-ignore format: one case per line keeps the table scannable
const jsonEditCases: JsonCase[] = [
  {
    name: 'data URL + https URL + data-URL mask',
    body: { prompt: P, images: [{ image_url: dataUrl() }, { image_url: 'https://example.com/a.png' }], mask: { image_url: dataUrl() }, input_fidelity: 'high', size: '1024x1536' },
    ok: {
      form: 'json', requested_model: 'gpt-image-1.5', input_fidelity: 'high', size: '1024x1536', response_format: 'b64_json',
      images: [
        { source: 'data_url', param: 'images[0].image_url', mimetype: 'image/png', base64: PNG_B64, bytes: Buffer.from(PNG_B64, 'base64').length },
        { source: 'url', param: 'images[1].image_url', url: 'https://example.com/a.png' },
      ],
      mask: { source: 'data_url', param: 'mask.image_url' },
    },
  },
  { name: 'mask null is omitted', body: { prompt: P, images: [{ image_url: dataUrl('image/webp') }], mask: null }, ok: { mask: null, images: [{ mimetype: 'image/webp' }] } },
  { name: 'file_id is refused clearly', body: { prompt: P, images: [{ file_id: 'file-abc123' }] }, err: { code: 'unsupported_parameter', param: 'images[0].file_id', message: /no Files API/ } },
  { name: 'mask file_id is refused', body: { prompt: P, images: [{ image_url: dataUrl() }], mask: { file_id: 'file-m' } }, err: { code: 'unsupported_parameter', param: 'mask.file_id' } },
  { name: 'images missing', body: { prompt: P }, err: { code: 'missing_required_parameter', param: 'images' } },
  { name: 'images empty', body: { prompt: P, images: [] }, err: { code: 'empty_array', param: 'images' } },
  { name: 'images null', body: { prompt: P, images: null }, err: { code: 'invalid_type', param: 'images', message: /got null instead/ } },
  { name: 'images an object', body: { prompt: P, images: {} }, err: { code: 'invalid_type', param: 'images' } },
  { name: 'images item a string', body: { prompt: P, images: ['x'] }, err: { code: 'invalid_type', param: 'images[0]' } },
  { name: 'too many images', body: { prompt: P, images: Array.from({ length: 17 }, () => ({ image_url: dataUrl() })) }, err: { code: 'array_above_max_length', param: 'images' } },
  { name: "'image' key on the JSON form", body: { prompt: P, image: dataUrl() }, err: { code: 'invalid_value', param: 'image', message: "Unknown parameter: 'image'. For application/json on /v1/images/edits, use 'images' (array)." } },
  { name: 'dall-e-2 on the JSON form', body: { prompt: P, model: 'dall-e-2', images: [{ image_url: dataUrl() }] }, err: { code: 'invalid_value', param: 'model' } },
  { name: 'ftp URL', body: { prompt: P, images: [{ image_url: 'ftp://example.com/a.png' }] }, err: { code: 'invalid_value', param: 'images[0].image_url' } },
  { name: 'gif data URL', body: { prompt: P, images: [{ image_url: dataUrl('image/gif') }] }, err: { code: 'unsupported_file_mimetype', param: 'images[0].image_url' } },
  { name: 'non-base64 data URL', body: { prompt: P, images: [{ image_url: 'data:image/png,rawbytes' }] }, err: { code: 'invalid_value', param: 'images[0].image_url' } },
  { name: 'both image_url and file_id', body: { prompt: P, images: [{ image_url: dataUrl(), file_id: 'f' }] }, err: { code: 'invalid_value', param: 'images[0]' } },
  { name: 'unknown key inside an image reference', body: { prompt: P, images: [{ image_url: dataUrl(), detail: 'high' }] }, err: { code: 'unknown_parameter', param: 'images[0].detail' } },
  { name: 'webp mask is refused', body: { prompt: P, images: [{ image_url: dataUrl() }], mask: { image_url: dataUrl('image/webp') } }, err: { code: 'unsupported_file_mimetype', param: 'mask.image_url' } },
  { name: 'quality standard is not in the JSON edit enum', body: { prompt: P, images: [{ image_url: dataUrl() }], quality: 'standard' }, err: { code: 'invalid_value', param: 'quality', message: "Invalid value: 'standard'. Supported values are: 'low', 'medium', 'high', and 'auto'." } },
  { name: 'gpt-image-2 JSON edit at a flexible size', body: { prompt: P, model: 'gpt-image-2', images: [{ image_url: dataUrl() }], size: '2048x1152' }, ok: { input_fidelity: null, resolved: { width: 2048, height: 1152 } } },
  { name: 'response_format is unknown on JSON edits', body: { prompt: P, images: [{ image_url: dataUrl() }], response_format: 'b64_json' }, err: { code: 'unknown_parameter', param: 'response_format' } },
];

describe('parseJsonEditRequest', () => {
  for (const c of jsonEditCases) {
    it(c.name, () => {
      if (c.ok) expect(parseJsonEditRequest(c.body, ctx)).toMatchObject(c.ok);
      else expectApiError(() => parseJsonEditRequest(c.body, ctx), c.err!);
    });
  }

  it('parseEditRequest dispatches on the form', () => {
    expect(parseEditRequest({ form: 'json', body: { prompt: P, images: [{ image_url: dataUrl() }] } }, ctx).form).toBe('json');
    expect(parseEditRequest({ form: 'multipart', fields: { prompt: P }, files: files(png()) }, ctx).form).toBe('multipart');
  });
});

// ---------------------------------------------------------------------------------------------
// Variations.

describe('parseVariationRequest', () => {
  const image = png({ width: 512, height: 512 });
  it('accepts dall-e-2 fields as strings', () => {
    const v = parseVariationRequest({ n: '3', size: '256x256', response_format: 'b64_json', user: 'u', seed: '9' }, { image }, ctx);
    expect(v).toMatchObject({
      endpoint: 'variations',
      model: 'dall-e-2',
      family: 'dall-e-2',
      n: 3,
      size: '256x256',
      response_format: 'b64_json',
      user: 'u',
      extensions: { seed: 9 },
      image: { param: 'image', width: 512 },
      resolved: { width: 256, quality: 'standard' },
    });
  });
  it('defaults', () => {
    expect(parseVariationRequest({}, { image }, ctx)).toMatchObject({ n: 1, size: '1024x1024', response_format: 'url' });
  });
  it('types the part by its bytes, whatever its name', () => {
    const fetched = png({
      mimetype: 'application/octet-stream',
      filename: 'f.png?expires=1&sig=2',
      sniffedMimetype: 'image/png',
      width: 256,
      height: 256,
    });
    expect(parseVariationRequest({}, { image: fetched }, ctx).image).toMatchObject({
      mimetype: 'image/png',
      filename: 'f.png?expires=1&sig=2',
    });
  });
  // biome-ignore format: one case per line keeps the table scannable
  const bad: Array<[string, Record<string, string>, UploadedFilePart | undefined, ExpectedError]> = [
    ['GPT models cannot make variations', { model: 'gpt-image-1' }, image, { code: 'invalid_value', param: 'model' }],
    ['unknown model', { model: 'nope' }, image, { status: 404, code: 'model_not_found', param: 'model' }],
    ['prompt is not a variation field', { prompt: P }, image, { code: 'unknown_parameter', param: 'prompt' }],
    ['missing image', {}, undefined, { code: 'missing_required_parameter', param: 'image' }],
    ['jpeg image', {}, png({ mimetype: 'image/jpeg' }), { code: 'unsupported_file_mimetype', param: 'image' }],
    ['non-square image', {}, png({ width: 600, height: 400 }), { code: 'invalid_image', param: 'image' }],
    ['4 MB image', {}, png({ bytes: 4 * 1024 * 1024 }), { code: 'invalid_image', param: 'image', message: 'Uploaded image must be a PNG and less than 4 MB.' }],
    ['GPT size', { size: '1536x1024' }, image, { code: 'invalid_size', param: 'size' }],
    ['n unparseable', { n: 'two' }, image, { code: 'invalid_type', param: 'n' }],
    ['stream is not a variation field', { stream: 'false' }, image, { code: 'unknown_parameter', param: 'stream' }],
    ['an untyped part is not typed by its name', {}, png({ mimetype: 'application/octet-stream', filename: 'v.png' }), { code: 'unsupported_file_mimetype', param: 'image' }],
  ];
  for (const [name, fields, img, err] of bad) {
    it(name, () => expectApiError(() => parseVariationRequest(fields, { image: img }, ctx), err));
  }
});

// ---------------------------------------------------------------------------------------------
// Families.

describe('families', () => {
  it('the newest OpenAI names are served by default as GPT image models', () => {
    for (const name of ['gpt-image-2', 'gpt-image-2-2026-04-21', 'chatgpt-image-latest'])
      expect(OPENAI_MODEL_FAMILIES[name], name).toBe('gpt-image');
    expect(familyRules('gpt-image', 'chatgpt-image-latest')).toMatchObject({
      flexibleSize: null,
      supportsInputFidelity: true,
      promptMaxLength: 32000,
    });
    expect(familyRules('gpt-image', 'gpt-image-2')).toMatchObject({ supportsInputFidelity: false, nMax: 10 });
    expect(familyRules('gpt-image', 'gpt-image-2').flexibleSize).toEqual({
      multipleOf: 16,
      maxEdge: 3840,
      maxAspectRatio: 3,
      minPixels: 655_360,
      maxPixels: 3840 * 2160,
    });
  });
  it('refines GPT rules by model name', () => {
    expect(familyRules('gpt-image', 'gpt-image-1').flexibleSize).toBeNull();
    expect(familyRules('gpt-image', 'gpt-image-2-2026-04-21').flexibleSize).not.toBeNull();
    expect(familyRules('gpt-image', 'gpt-image-1-mini').supportsInputFidelity).toBe(false);
    expect(familyRules('gpt-image', 'gpt-image-1.5').supportsInputFidelity).toBe(true);
    expect(familyRules('dall-e-3').nMax).toBe(1);
  });
  it('resolves auto size from the input aspect ratio', () => {
    expect(resolveAutoSize()).toBe('1024x1024');
    expect(resolveAutoSize({ width: 1600, height: 900 })).toBe('1536x1024');
    expect(resolveAutoSize({ width: 900, height: 1600 })).toBe('1024x1536');
    expect(resolveAutoSize({ width: 1000, height: 1100 })).toBe('1024x1024');
  });
});

// ---------------------------------------------------------------------------------------------
// Usage.

describe('usage', () => {
  it('encodes with o200k_base (golden ids from tiktoken test cases)', () => {
    expect(encodeO200k('hello world')).toEqual([24912, 2375]);
    expect(encodeO200k(' 日本語とEnglish 12345!\n')).toEqual([17428, 40909, 5330, 28881, 220, 7633, 2548, 4175]);
    expect(encodeO200k('a\n\n')).toEqual([64, 279]);
    expect(encodeO200k('<|endoftext|>')).toEqual([27, 91, 419, 1440, 919, 91, 29]);
    expect(textTokens('hello world')).toBe(2);
    expect(textTokens('')).toBe(0);
  });

  it('output tokens match OpenAI’s gpt-image-1 table', () => {
    const table: Record<string, [number, number, number]> = { low: [272, 408, 400], medium: [1056, 1584, 1568], high: [4160, 6240, 6208] };
    for (const [q, [square, portrait, landscape]] of Object.entries(table)) {
      expect(outputImageTokens(q, '1024x1024')).toBe(square);
      expect(outputImageTokens(q, '1024x1536')).toBe(portrait);
      expect(outputImageTokens(q, '1536x1024')).toBe(landscape);
    }
    expect(outputImageTokens('auto', 'auto')).toBe(1056);
    expect(outputImageTokens('high', '512x512')).toBe(32 * 33);
  });

  it('flexible sizes: the same patch rule (rows x (cols + 1), partial patches rounded up)', () => {
    expect(outputImageTokens('low', '3840x2160')).toBe(34 * 61);
    expect(outputImageTokens('medium', '3840x2160')).toBe(68 * 121);
    expect(outputImageTokens('high', '3840x2160')).toBe(135 * 241);
    expect(outputImageTokens('medium', '1536x864')).toBe(27 * 49);
    expect(outputImageTokens('standard', '1024x1024')).toBe(outputImageTokens('medium', '1024x1024'));
  });

  it('input image tokens: tiles of the 512-px-shortest-side image', () => {
    expect(scaledInputSize(1024, 1025)).toEqual({ width: 512, height: 512 });
    expect(inputImageTokens(1024, 1025)).toBe(194);
    expect(inputImageTokens(1536, 1024)).toBe(65 + 129 * 2);
    expect(inputImageTokens(512, 513)).toBe(65 + 129 * 2);
    expect(inputImageTokens(300, 200)).toBe(194);
    expect(inputImageTokens(4096, 4096)).toBe(194);
    expect(scaledInputSize(8000, 2000)).toEqual({ width: 2048, height: 512 });
    expect(inputImageTokens(8000, 2000)).toBe(65 + 129 * 4);
    expect(inputImageTokens(1024, 1024, 'high')).toBe(194 + 4160);
    expect(inputImageTokens(1536, 1024, 'high')).toBe(323 + 6240);
    expect(inputImageTokens(1536, 1024, 'low')).toBe(323);
    expect(() => inputImageTokens(0, 10)).toThrow(RangeError);
  });

  it('partial images cost 100 each', () => {
    expect(partialImageTokens(3)).toBe(300);
    expect(partialImageTokens(0)).toBe(0);
  });

  it('buildUsage adds text, images, outputs and partials; validates as ImageGenUsage', () => {
    const u = buildUsage({
      prompt: 'hello world',
      inputImages: [{ width: 1024, height: 1024 }],
      inputFidelity: 'high',
      quality: 'high',
      size: '1024x1024',
      n: 2,
      partialImages: 2,
    });
    expect(u).toEqual({
      input_tokens: 2 + 194 + 4160,
      input_tokens_details: { text_tokens: 2, image_tokens: 194 + 4160 },
      output_tokens: 2 * 4160 + 200,
      total_tokens: 2 + 194 + 4160 + 2 * 4160 + 200,
      output_tokens_details: { image_tokens: 2 * 4160 + 200, text_tokens: 0 },
    });
    expect(validateSchema('ImageGenUsage', u)).toEqual([]);
    const plain = buildUsage({ textTokens: 10, quality: 'low', size: '1536x1024', n: 1, outputDetails: false });
    expect(plain).toEqual({
      input_tokens: 10,
      input_tokens_details: { text_tokens: 10, image_tokens: 0 },
      output_tokens: 400,
      total_tokens: 410,
    });
    expect(validateSchema('ImagesUsage', plain)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Responses and events against the spec.

describe('responses validate against the spec', () => {
  const usage = buildUsage({ prompt: P, quality: 'medium', size: '1024x1024', n: 1 });

  it('the schema helper rejects wrong shapes (negative control)', () => {
    expect(validateSchema('ImagesResponse', { data: [] }).length).toBeGreaterThan(0);
    expect(validateSchema('ImagesResponse', { created: 1, quality: 'auto' }).length).toBeGreaterThan(0);
    expect(validateSchema('ImageGenStreamEvent', { type: 'image_generation.completed', b64_json: 'x' }).length).toBeGreaterThan(0);
    expect(validateSchema('ErrorResponse', { error: { message: 'm', type: 't' } }).length).toBeGreaterThan(0);
    expect(() => validateSchema('NoSuchSchema', {})).toThrow();
  });

  it('dall-e-2 url response', () => {
    const body = buildImagesResponse({
      created: 1713833628,
      family: 'dall-e-2',
      images: [{ url: 'https://easel.example/v1/files/abc.png?sig=1', revised_prompt: 'ignored' }],
    });
    expect(body).toEqual({ created: 1713833628, data: [{ url: 'https://easel.example/v1/files/abc.png?sig=1' }] });
    expect(validateSchema('ImagesResponse', body)).toEqual([]);
  });

  it('dall-e-3 carries revised_prompt', () => {
    const body = buildImagesResponse({
      created: 1,
      family: 'dall-e-3',
      images: [{ b64_json: 'aGk=', revised_prompt: 'A cute baby sea otter, photo' }],
    });
    expect(body.data[0]).toEqual({ b64_json: 'aGk=', revised_prompt: 'A cute baby sea otter, photo' });
    expect(validateSchema('ImagesResponse', body)).toEqual([]);
  });

  it('GPT response echoes resolved settings and usage', () => {
    const body = buildImagesResponse({
      created: 1.9,
      family: 'gpt-image',
      images: [{ b64_json: 'aGk=' }, { b64_json: 'aGk=' }],
      output: { background: 'opaque', output_format: 'png', size: '1536x1024', quality: 'high' },
      usage,
    });
    expect(body).toMatchObject({ created: 1, background: 'opaque', output_format: 'png', size: '1536x1024', quality: 'high', usage });
    expect(validateSchema('ImagesResponse', body)).toEqual([]);
  });

  it('a flexible size is reported exactly (the spec enum predates them; all else validates)', () => {
    const body = buildImagesResponse({
      created: 1,
      family: 'gpt-image',
      images: [{ b64_json: 'aGk=' }],
      output: { background: 'transparent', output_format: 'webp', size: '3840x2160', quality: 'low' },
      usage,
    });
    expect(body.size).toBe('3840x2160');
    expect(validateSchema('ImagesResponse', body)).toEqual([
      '/size must be equal to one of the allowed values {"allowedValues":["1024x1024","1024x1536","1536x1024"]}',
    ]);
    expect(validateSchema('ImagesResponse', { ...body, size: '1024x1024' })).toEqual([]);
  });

  it('refuses images with both or neither of b64_json and url, and unresolved quality', () => {
    expect(() => buildImagesResponse({ created: 1, family: 'dall-e-2', images: [{}] })).toThrow(RangeError);
    expect(() => buildImagesResponse({ created: 1, family: 'dall-e-2', images: [{ url: 'https://x/y', b64_json: 'a' }] })).toThrow(
      RangeError,
    );
    expect(() =>
      buildImagesResponse({
        created: 1,
        family: 'gpt-image',
        images: [{ b64_json: 'a' }],
        output: { background: 'opaque', output_format: 'png', size: '1024x1024', quality: 'auto' },
      }),
    ).toThrow(RangeError);
  });

  for (const kind of ['generation', 'edit'] as const) {
    const union = kind === 'generation' ? 'ImageGenStreamEvent' : 'ImageEditStreamEvent';
    const prefix = kind === 'generation' ? 'ImageGen' : 'ImageEdit';
    it(`${kind} partial and completed events`, () => {
      const base = {
        b64_json: 'aGk=',
        created_at: 1620000000,
        size: '1024x1024',
        quality: 'high',
        background: 'transparent',
        output_format: 'png' as const,
      };
      const partial = partialImageEvent(kind, { ...base, partial_image_index: 0 });
      expect(partial.type).toBe(kind === 'generation' ? 'image_generation.partial_image' : 'image_edit.partial_image');
      expect(validateSchema(`${prefix}PartialImageEvent`, partial)).toEqual([]);
      expect(validateSchema(union, partial)).toEqual([]);
      const done = completedEvent(kind, { ...base, usage });
      expect(done.type).toBe(kind === 'generation' ? 'image_generation.completed' : 'image_edit.completed');
      expect('output_tokens_details' in done.usage).toBe(false);
      expect(validateSchema(`${prefix}CompletedEvent`, done)).toEqual([]);
      expect(validateSchema(union, done)).toEqual([]);
      const odd = partialImageEvent(kind, { ...base, size: 'auto', quality: 'auto', background: 'auto', partial_image_index: 2 });
      expect(odd).toMatchObject({ size: 'auto', quality: 'auto', background: 'auto' });
      expect(validateSchema(union, odd)).toEqual([]);
      const flexible = completedEvent(kind, { ...base, size: '1536x864', usage });
      expect(flexible.size).toBe('1536x864');
      expect(validateSchema(union, { ...flexible, size: '1024x1024' })).toEqual([]);
    });
  }

  it('SSE framing and error events', () => {
    const ev = partialImageEvent('generation', {
      b64_json: 'x',
      created_at: 1,
      size: '1024x1024',
      quality: 'low',
      background: 'opaque',
      output_format: 'jpeg',
      partial_image_index: 1,
    });
    const frame = formatSseEvent(ev);
    expect(frame.startsWith('event: image_generation.partial_image\ndata: {')).toBe(true);
    expect(frame.endsWith('\n\n')).toBe(true);
    expect(JSON.parse(frame.split('\n')[1].slice('data: '.length))).toEqual(ev);
    const err = streamErrorEvent(serverError('engine failed', false));
    expect(err).toEqual({ type: 'error', error: { message: 'engine failed', type: 'server_error', param: null, code: null } });
  });
});

// ---------------------------------------------------------------------------------------------
// Error factories.

describe('errors', () => {
  it('every factory produces a schema-valid body with the right status', () => {
    const cases: Array<[ApiError, number, string | null]> = [
      [modelNotFound('x'), 404, 'model_not_found'],
      [missingApiKey(), 401, null],
      [invalidApiKey(redactApiKey('sk-1234567890abcdefghij')), 401, 'invalid_api_key'],
      [invalidJsonBody(), 400, null],
      [invalidUrl('post', '/v1/images/foo'), 404, null],
      [unsupportedMediaType('text/plain', ['application/json']), 415, 'unsupported_content_type'],
      [payloadTooLarge(1024), 413, 'request_too_large'],
      [queueFull(5), 429, 'rate_limit_exceeded'],
      [serverError(), 500, null],
      [moderationBlocked({ requestId: 'req_1', categories: ['violence'] }), 400, 'moderation_blocked'],
    ];
    for (const [e, status, code] of cases) {
      expect(e.status).toBe(status);
      expect(e.code).toBe(code);
      expect(validateSchema('ErrorResponse', e.toBody())).toEqual([]);
      expect(JSON.parse(JSON.stringify(e))).toEqual(e.toBody());
    }
  });

  it('retry hints: deterministic failures say no, rate limits say yes with Retry-After', () => {
    expect(modelNotFound('x').shouldRetry).toBe(false);
    const q = queueFull(7);
    expect(q.shouldRetry).toBe(true);
    expect(q.retryAfterSeconds).toBe(7);
    expect(q.type).toBe('requests');
  });

  it('moderation_blocked carries OpenAI’s extra details', () => {
    const body = moderationBlocked({ requestId: 'req_1', categories: ['sexual'] }).toBody();
    expect(body.error).toMatchObject({
      type: 'image_generation_user_error',
      code: 'moderation_blocked',
      param: null,
      moderation_details: { moderation_stage: 'input', categories: ['sexual'] },
    });
    expect(body.error.message).toMatch(/^Your request was rejected by the safety system\. .*req_1.*safety_violations=\[sexual\]\.$/);
  });

  it('redacts API keys like OpenAI', () => {
    expect(redactApiKey('sk-1234567890abcdefghij')).toBe(`sk-12345${'*'.repeat(11)}ghij`);
    expect(redactApiKey('short')).toBe('*****');
  });
});
