// OpenAI-style API errors: one class and a set of factories so every refusal Easel sends has
// OpenAI's body `{"error":{"message","type","param","code"}}`, its HTTP status and its wording.
//
// Wording sources (observed live OpenAI responses, quoted in public issue trackers and test suites):
// - "Unknown parameter: 'response_format'." / code unknown_parameter (vercel/ai#6102, gpt-image-1).
// - "Invalid value: 'standard'. Supported values are: 'low', 'medium', 'high', and 'auto'." /
//   code invalid_value, param quality (griptape-ai/griptape-nodes-engine#1031).
// - "Invalid type for 'n': expected an integer, but got a string instead." / code invalid_type;
//   "Invalid 'n': integer below minimum value. Expected a value >= 1, but got 0 instead." /
//   integer_below_min_value (and _above_max_value); multipart "...but got a string value that could
//   not be converted into an integer."; "Invalid size 'bogus'. Expected WIDTHxHEIGHT, for example
//   '1824x1024'." (a third-party proxy's recorded direct-API measurements of /v1/images, 2026-08).
// - "Invalid 'prompt': string too long. Expected a string with maximum length 1000, but got a string
//   with length 1635 instead." / string_above_max_length.
// - "You must provide n=1 for this model." (dall-e-3, code null) and "The size is not supported by this
//   model." / invalid_size (dall-e-3), both quoted from OpenAI responses in user reports.
// - "Your request was rejected by the safety system. ... safety_violations=[sexual]." / type
//   image_generation_user_error / code moderation_blocked, with moderation_details.
// - "Compression less than 100 is not supported for PNG output format." / invalid_png_output_compression.
// - "Invalid file 'image': unsupported mimetype ('application/octet-stream'). Supported file formats are
//   'image/jpeg', 'image/png', and 'image/webp'." and "Uploaded image must be a PNG and less than 4 MB."
// - "The model 'gpt-image-2' does not support the 'input_fidelity' parameter." /
//   invalid_input_fidelity_model.
// - "We could not parse the JSON body of your request. (HINT: ...)" and "Invalid URL (POST /v1/x)".
// - "Unsupported value: 'temperature' does not support 0.7 with this model. Only the default (1) value is
//   supported." / code unsupported_value (OpenAI's answer for a parameter a model takes only at its default).
// Messages for which no OpenAI original was found are written in the same style and marked
// "(Easel wording)" next to their factory.

/** The JSON body of every error response. Extra keys (e.g. `moderation_details`) sit beside the four. */
export interface ErrorObject {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
  [extra: string]: unknown;
}
export interface ErrorBody {
  error: ErrorObject;
}

export interface ApiErrorInit {
  status: number;
  message: string;
  type?: string;
  param?: string | null;
  code?: string | null;
  /** false for failures a retry cannot fix: the server sends `x-should-retry: false`. */
  shouldRetry?: boolean;
  /** Seconds for a `Retry-After` header (429 / 503). */
  retryAfterSeconds?: number;
  /** Extra keys merged into the error object (OpenAI adds e.g. `moderation_details`). */
  extra?: Record<string, unknown>;
}

export class ApiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  readonly code: string | null;
  readonly shouldRetry: boolean;
  readonly retryAfterSeconds: number | undefined;
  readonly extra: Record<string, unknown> | undefined;

  constructor(init: ApiErrorInit) {
    super(init.message);
    this.name = 'ApiError';
    this.status = init.status;
    this.type = init.type ?? 'invalid_request_error';
    this.param = init.param ?? null;
    this.code = init.code ?? null;
    this.shouldRetry = init.shouldRetry ?? false;
    this.retryAfterSeconds = init.retryAfterSeconds;
    this.extra = init.extra;
  }

  /** The response body, exactly `{"error":{"message","type","param","code", ...extra}}`. */
  toBody(): ErrorBody {
    return {
      error: { message: this.message, type: this.type, param: this.param, code: this.code, ...(this.extra ?? {}) },
    };
  }

  toJSON(): ErrorBody {
    return this.toBody();
  }
}

// ---------------------------------------------------------------------------------------------
// Phrasing helpers shared by the factories.

/** OpenAI's description of a JSON value's type: "a string", "an integer", "null", ... */
export function describeJsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string':
      return 'a string';
    case 'boolean':
      return 'a boolean';
    case 'number':
      return Number.isInteger(value) ? 'an integer' : 'a decimal number';
    case 'object':
      return 'an object';
    case 'undefined':
      return 'undefined';
    default:
      return `a ${typeof value}`;
  }
}

function quoteList(values: readonly string[], conjunction: 'and' | 'or'): string {
  const quoted = values.map((v) => `'${v}'`);
  if (quoted.length <= 1) return quoted.join('');
  if (quoted.length === 2) return `${quoted[0]} ${conjunction} ${quoted[1]}`;
  return `${quoted.slice(0, -1).join(', ')}, ${conjunction} ${quoted[quoted.length - 1]}`;
}

/** "one of 'low', 'medium', 'high', or 'auto'" as in OpenAI's invalid_type message for enums. */
export function expectedOneOf(values: readonly string[]): string {
  return `one of ${quoteList(values, 'or')}`;
}

function formatNumber(value: number): string {
  return String(value);
}

// ---------------------------------------------------------------------------------------------
// 400 invalid_request_error: field validation.

export function unknownParameter(name: string): ApiError {
  return new ApiError({ status: 400, message: `Unknown parameter: '${name}'.`, param: name, code: 'unknown_parameter' });
}

export function missingRequired(param: string): ApiError {
  return new ApiError({
    status: 400,
    message: `Missing required parameter: '${param}'.`,
    param,
    code: 'missing_required_parameter',
  });
}

/** `expected` is a phrase: "an integer", "a string", "a boolean", "a decimal", "an array of objects", or expectedOneOf(...). */
export function invalidType(param: string, expected: string, value: unknown): ApiError {
  return new ApiError({
    status: 400,
    message: `Invalid type for '${param}': expected ${expected}, but got ${describeJsonType(value)} instead.`,
    param,
    code: 'invalid_type',
  });
}

/** A multipart text field that cannot be read as the field's type. */
export function invalidTypeUnconvertible(param: string, kind: 'integer' | 'boolean' | 'decimal'): ApiError {
  const article = kind === 'integer' ? 'an' : 'a';
  return new ApiError({
    status: 400,
    message: `Invalid type for '${param}': expected ${article} ${kind}, but got a string value that could not be converted into ${article} ${kind}.`,
    param,
    code: 'invalid_type',
  });
}

export function invalidValue(param: string, value: string, allowed: readonly string[]): ApiError {
  const suffix = allowed.length > 0 ? ` Supported values are: ${quoteList(allowed, 'and')}.` : '';
  return new ApiError({
    status: 400,
    message: `Invalid value: '${value}'.${suffix}`,
    param,
    code: 'invalid_value',
  });
}

export function emptyString(param: string): ApiError {
  return new ApiError({
    status: 400,
    message: `Invalid '${param}': empty string. Expected a string with minimum length 1, but got an empty string instead.`,
    param,
    code: 'empty_string',
  });
}

export function stringTooLong(param: string, max: number, got: number): ApiError {
  return new ApiError({
    status: 400,
    message: `Invalid '${param}': string too long. Expected a string with maximum length ${max}, but got a string with length ${got} instead.`,
    param,
    code: 'string_above_max_length',
  });
}

export function emptyArray(param: string): ApiError {
  return new ApiError({
    status: 400,
    message: `Invalid '${param}': empty array. Expected an array with minimum length 1, but got an empty array instead.`,
    param,
    code: 'empty_array',
  });
}

export function arrayTooLong(param: string, max: number, got: number): ApiError {
  return new ApiError({
    status: 400,
    message: `Invalid '${param}': array too long. Expected an array with maximum length ${max}, but got an array with length ${got} instead.`,
    param,
    code: 'array_above_max_length',
  });
}

export function integerBelowMin(param: string, min: number, got: number): ApiError {
  return new ApiError({
    status: 400,
    message: `Invalid '${param}': integer below minimum value. Expected a value >= ${min}, but got ${formatNumber(got)} instead.`,
    param,
    code: 'integer_below_min_value',
  });
}

export function integerAboveMax(param: string, max: number, got: number): ApiError {
  return new ApiError({
    status: 400,
    message: `Invalid '${param}': integer above maximum value. Expected a value <= ${max}, but got ${formatNumber(got)} instead.`,
    param,
    code: 'integer_above_max_value',
  });
}

export function decimalBelowMin(param: string, min: number, got: number): ApiError {
  return new ApiError({
    status: 400,
    message: `Invalid '${param}': decimal below minimum value. Expected a value >= ${min}, but got ${formatNumber(got)} instead.`,
    param,
    code: 'decimal_below_min_value',
  });
}

export function decimalAboveMax(param: string, max: number, got: number): ApiError {
  return new ApiError({
    status: 400,
    message: `Invalid '${param}': decimal above maximum value. Expected a value <= ${max}, but got ${formatNumber(got)} instead.`,
    param,
    code: 'decimal_above_max_value',
  });
}

/** Generic 400 for rules that have no dedicated factory. */
export function badRequest(
  message: string,
  param: string | null = null,
  code: string | null = 'invalid_value',
  type = 'invalid_request_error',
): ApiError {
  return new ApiError({ status: 400, message, param, code, type });
}

// ---------------------------------------------------------------------------------------------
// 400: model-family rules.

/** dall-e-3 with n != 1; OpenAI's body has param null, Easel names the field. */
export function onlyNEquals1(): ApiError {
  return new ApiError({ status: 400, message: 'You must provide n=1 for this model.', param: 'n', code: null });
}

/** DALL·E sizes. OpenAI's body has param null, Easel names the field. */
export function sizeNotSupported(): ApiError {
  return new ApiError({ status: 400, message: 'The size is not supported by this model.', param: 'size', code: 'invalid_size' });
}

/** gpt-image-2 flexible-size refusals (type image_generation_user_error as observed). */
export function invalidFlexibleSize(message: string): ApiError {
  return new ApiError({ status: 400, message, param: 'size', code: 'invalid_value', type: 'image_generation_user_error' });
}

/** A field this model takes only at its default: `stream: true` or `partial_images` > 0 on a DALL·E model. */
export function onlyDefaultValue(param: string, value: string | number | boolean, defaultValue: string | number | boolean): ApiError {
  return new ApiError({
    status: 400,
    message: `Unsupported value: '${param}' does not support ${value} with this model. Only the default (${defaultValue}) value is supported.`,
    param,
    code: 'unsupported_value',
  });
}

export function inputFidelityNotSupported(model: string): ApiError {
  return new ApiError({
    status: 400,
    message: `The model '${model}' does not support the 'input_fidelity' parameter.`,
    param: 'input_fidelity',
    code: 'invalid_input_fidelity_model',
    type: 'image_generation_user_error',
  });
}

export function pngCompressionNotSupported(): ApiError {
  return new ApiError({
    status: 400,
    message: 'Compression less than 100 is not supported for PNG output format.',
    param: 'output_compression',
    code: 'invalid_png_output_compression',
    type: 'image_generation_user_error',
  });
}

/** (Easel wording) background transparent with output_format jpeg. */
export function transparentNeedsAlphaFormat(outputFormat: string): ApiError {
  return new ApiError({
    status: 400,
    message: `Transparent background requires an output format that supports transparency ('png' or 'webp'), but got '${outputFormat}'.`,
    param: 'background',
    code: 'invalid_value',
  });
}

/** For a served model that cannot produce alpha (wording as observed from OpenAI for gpt-image-2). */
export function transparentNotSupported(): ApiError {
  return new ApiError({
    status: 400,
    message: 'Transparent background is not supported for this model.',
    param: 'background',
    code: 'invalid_value',
    type: 'image_generation_user_error',
  });
}

/** (Easel wording) a model whose family the endpoint does not serve (dall-e-3 on edits, GPT on variations). */
export function modelNotSupportedByEndpoint(model: string, detail: string): ApiError {
  return new ApiError({
    status: 400,
    message: `Invalid value: '${model}'. ${detail}`,
    param: 'model',
    code: 'invalid_value',
  });
}

// ---------------------------------------------------------------------------------------------
// 400: uploaded files.

export function unsupportedMimetype(param: string, mimetype: string, allowed: readonly string[]): ApiError {
  return new ApiError({
    status: 400,
    message: `Invalid file '${param}': unsupported mimetype ('${mimetype}'). Supported file formats are ${quoteList(allowed, 'and')}.`,
    param,
    code: 'unsupported_file_mimetype',
  });
}

/** dall-e-2 image and mask limits, OpenAI's own sentence. */
export function dallE2ImageInvalid(param: string): ApiError {
  return new ApiError({ status: 400, message: 'Uploaded image must be a PNG and less than 4 MB.', param, code: 'invalid_image' });
}

/** (Easel wording) an uploaded file over the family's byte limit. */
export function fileTooLarge(param: string, limitBytes: number, gotBytes: number): ApiError {
  const mb = (n: number) => `${Math.round((n / (1024 * 1024)) * 100) / 100} MB`;
  return new ApiError({
    status: 400,
    message: `Invalid file '${param}': file too large. Files must be less than ${mb(limitBytes)}, but got ${mb(gotBytes)}.`,
    param,
    code: 'file_too_large',
  });
}

/** (Easel wording) image or mask problems found before any work: not square, wrong size, corrupt. */
export function invalidImage(param: string, message: string, code = 'invalid_image'): ApiError {
  return new ApiError({ status: 400, message, param, code });
}

// ---------------------------------------------------------------------------------------------
// Moderation.

export function moderationBlocked(
  options: { requestId?: string; categories?: readonly string[]; stage?: 'input' | 'output' } = {},
): ApiError {
  const categories = [...(options.categories ?? [])];
  const requestPart = options.requestId ? ` and include the request ID ${options.requestId}` : '';
  const violations = categories.length > 0 ? ` safety_violations=[${categories.join(', ')}].` : '';
  return new ApiError({
    status: 400,
    // OpenAI says "contact us at help.openai.com"; Easel points at the server's operator.
    message: `Your request was rejected by the safety system. If you believe this is an error, contact the server operator${requestPart}.${violations}`,
    type: 'image_generation_user_error',
    param: null,
    code: 'moderation_blocked',
    extra: { moderation_details: { moderation_stage: options.stage ?? 'input', categories } },
  });
}

// ---------------------------------------------------------------------------------------------
// Request envelope problems: body, content type, URL.

export function invalidJsonBody(): ApiError {
  return new ApiError({
    status: 400,
    message:
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
    param: null,
    code: null,
  });
}

/** (Easel wording) JSON that parses but is not an object. */
export function bodyNotObject(value: unknown): ApiError {
  return new ApiError({
    status: 400,
    message: `Invalid request body: expected a JSON object, but got ${describeJsonType(value)} instead.`,
    param: null,
    code: 'invalid_type',
  });
}

/** 415 (Easel status; OpenAI's sentence shape "Invalid Content-Type header (x), expected y."). */
export function unsupportedMediaType(contentType: string | undefined, expected: readonly string[]): ApiError {
  return new ApiError({
    status: 415,
    message: `Invalid Content-Type header (${contentType ?? 'none'}), expected ${expected.join(' or ')}.`,
    param: null,
    code: 'unsupported_content_type',
  });
}

/** 413 (Easel wording). */
export function payloadTooLarge(limitBytes: number): ApiError {
  return new ApiError({
    status: 413,
    message: `Request body too large. The maximum request size is ${limitBytes} bytes.`,
    param: null,
    code: 'request_too_large',
  });
}

export function invalidUrl(method: string, path: string): ApiError {
  return new ApiError({ status: 404, message: `Invalid URL (${method.toUpperCase()} ${path})`, param: null, code: null });
}

// ---------------------------------------------------------------------------------------------
// Auth, access, lookup, rate limits, server faults.

export function modelNotFound(model: string): ApiError {
  return new ApiError({
    status: 404,
    message: `The model \`${model}\` does not exist or you do not have access to it.`,
    param: 'model',
    code: 'model_not_found',
  });
}

export function missingApiKey(): ApiError {
  return new ApiError({
    status: 401,
    message:
      "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
    param: null,
    code: null,
  });
}

/** `redactedKey` should already be masked, e.g. "sk-abc1****wxyz". */
export function invalidApiKey(redactedKey: string): ApiError {
  return new ApiError({
    status: 401,
    message: `Incorrect API key provided: ${redactedKey}.`,
    param: null,
    code: 'invalid_api_key',
  });
}

/** Masks a key the way OpenAI does in its 401 message: first 8 and last 4 characters kept. */
export function redactApiKey(key: string): string {
  if (key.length <= 12) return '*'.repeat(key.length);
  return `${key.slice(0, 8)}${'*'.repeat(Math.min(key.length - 12, 24))}${key.slice(-4)}`;
}

export function forbidden(message: string, code: string | null = null, param: string | null = null): ApiError {
  return new ApiError({ status: 403, message, param, code });
}

export function notFound(message: string, code: string | null = null, param: string | null = null): ApiError {
  return new ApiError({ status: 404, message, param, code });
}

/** 429: the SDK retries these (with Retry-After), so shouldRetry is true. */
export function rateLimitExceeded(message: string, retryAfterSeconds?: number): ApiError {
  return new ApiError({
    status: 429,
    message,
    type: 'requests',
    param: null,
    code: 'rate_limit_exceeded',
    shouldRetry: true,
    retryAfterSeconds,
  });
}

/** (Easel wording) 429 when the generation queue is full. */
export function queueFull(retryAfterSeconds: number): ApiError {
  return rateLimitExceeded(
    `The server is busy with other image requests and its queue is full. Please retry after ${retryAfterSeconds} seconds.`,
    retryAfterSeconds,
  );
}

export function serverError(
  message = 'The server had an error while processing your request. Sorry about that!',
  shouldRetry = true,
): ApiError {
  return new ApiError({ status: 500, message, type: 'server_error', param: null, code: null, shouldRetry });
}

/** 503 with Retry-After: the server cannot take the request now (shutting down, a dependency down), but may soon. */
export function serviceUnavailable(message: string, retryAfterSeconds: number): ApiError {
  return new ApiError({
    status: 503,
    message,
    type: 'server_error',
    param: null,
    code: 'service_unavailable',
    shouldRetry: true,
    retryAfterSeconds,
  });
}
