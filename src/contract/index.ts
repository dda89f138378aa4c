// Public API of the OpenAI Images contract: model families, request fields, parsers, errors, usage, responses.
// Pure functions only (no I/O); the server wires them to HTTP, the engine never sees them.

export type { EaselExtensions, ParsedCommon, ResolvedOutput } from './common.js';
export * from './edits.js';
export * from './errors.js';
export * from './families.js';
export { codePointLength, type Wire } from './fields.js';
export * from './generations.js';
export {
  allowedFields,
  ENDPOINTS,
  type Endpoint,
  type EndpointField,
  type EndpointSpec,
  EXTENSION_REQUEST_FIELDS,
  type FieldType,
  type FieldValue,
  GPT_ONLY_GENERATION_FIELDS,
  IMAGE_URL_MAX_LENGTH,
  type RequestField,
} from './request-fields.js';
export * from './responses.js';
export * from './usage.js';
export * from './variations.js';
