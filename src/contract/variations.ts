// POST /v1/images/variations (dall-e-2 family only): validates the multipart text fields and the
// described `image` part (one square PNG under 4 MB), fills defaults, or throws OpenAI's error.
//
// Spec: CreateImageVariationRequest in test/fixtures/openai/openai-openapi-images.yaml.

import {
  type ParsedCommon,
  readExtensions,
  readN,
  readResponseFormat,
  readSize,
  readUser,
  rejectUnknownKeys,
  resolveModelField,
  resolveOutput,
} from './common.js';
import { type EditImageInput, effectiveMimetype, type UploadedFilePart } from './edits.js';
import {
  badRequest,
  dallE2ImageInvalid,
  invalidImage,
  invalidType,
  missingRequired,
  modelNotSupportedByEndpoint,
  unknownParameter,
  unsupportedMimetype,
} from './errors.js';
import { editImageLimits, familyRules, type ParseContext } from './families.js';
import { multipartReader } from './fields.js';
import { allowedTextFields } from './request-fields.js';

export const DEFAULT_VARIATION_MODEL = 'dall-e-2';

export interface ParsedVariationRequest extends ParsedCommon {
  endpoint: 'variations';
  image: Extract<EditImageInput, { source: 'upload' }>;
}

export function parseVariationRequest(
  fields: Record<string, string | readonly string[]>,
  files: { image?: UploadedFilePart | null; others?: readonly UploadedFilePart[] },
  ctx: ParseContext,
): ParsedVariationRequest {
  const r = multipartReader(fields);
  const { requested, resolved } = resolveModelField(r, ctx, () => ctx.defaultModel ?? DEFAULT_VARIATION_MODEL);
  if (resolved.family !== 'dall-e-2') {
    throw modelNotSupportedByEndpoint(requested, 'Image variations support dall-e-2 models only.');
  }
  const rules = familyRules('dall-e-2', requested, resolved.name);

  const textAllowed = allowedTextFields('dall-e-2', 'variations');
  rejectUnknownKeys(r.keys(), textAllowed, resolved, { image: () => invalidType('image', 'a file', r.get('image')) });
  for (const part of files.others ?? []) throw unknownParameter(part.field);

  const part = files.image;
  if (!part) throw missingRequired('image');
  if (part.field !== 'image') throw unknownParameter(part.field);
  const limits = editImageLimits('dall-e-2');
  const mimetype = effectiveMimetype(part);
  if (!limits.mimetypes.includes(mimetype)) throw unsupportedMimetype('image', mimetype, limits.mimetypes);
  if (!Number.isFinite(part.bytes) || part.bytes <= 0) throw invalidImage('image', "Invalid file 'image': the file is empty.");
  if (part.bytes >= limits.maxImageBytes) throw dallE2ImageInvalid('image');
  const hasDims = typeof part.width === 'number' && typeof part.height === 'number';
  if (hasDims && part.width !== part.height) {
    throw badRequest(`Invalid file 'image': the image must be square, but it is ${part.width}x${part.height}.`, 'image', 'invalid_image');
  }

  const n = readN(r, rules);
  const size = readSize(r, rules);
  const response_format = readResponseFormat(r, rules);
  const user = readUser(r);
  const extensions = readExtensions(r, resolved, rules);

  return {
    endpoint: 'variations',
    model: resolved.name,
    requested_model: requested,
    family: 'dall-e-2',
    prompt: '',
    n,
    size,
    quality: 'standard',
    response_format,
    output_format: 'png',
    output_compression: 100,
    background: 'auto',
    moderation: 'auto',
    user,
    stream: false,
    partial_images: 0,
    extensions,
    image: {
      source: 'upload',
      param: 'image',
      field: part.field,
      filename: part.filename ?? null,
      mimetype,
      bytes: part.bytes,
      ...(hasDims ? { width: part.width, height: part.height } : {}),
    },
    resolved: resolveOutput(rules, size, 'standard', 'auto'),
  };
}
