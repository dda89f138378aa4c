// Public API of the OpenAI Images contract: model families, request fields, parsers, errors, usage, responses.
// Pure functions only (no I/O); the server wires them to HTTP, the engine never sees them.

export * from './errors.js';
export * from './families.js';
export {
  ENDPOINTS,
  EXTENSION_REQUEST_FIELDS,
  GPT_ONLY_GENERATION_FIELDS,
  IMAGE_URL_MAX_LENGTH,
  allowedFields,
  type Endpoint,
  type EndpointField,
  type EndpointSpec,
  type FieldType,
  type FieldValue,
  type RequestField,
} from './request-fields.js';
export type { EaselExtensions, ParsedCommon, ResolvedOutput } from './common.js';
export { codePointLength, type Wire } from './fields.js';
export * from './generations.js';
export * from './edits.js';
export * from './variations.js';
export * from './usage.js';
export * from './responses.js';
