// POST /v1/images/edits, both forms: multipart (text fields + described file parts) and JSON
// (`images: [{image_url}|{file_id}]`). Validates fields per family and the declared image inputs
// (count, type, byte size); decoding the pixels is the server's job, not this pure layer's.
//
// Spec: CreateImageEditRequest (multipart) and EditImageBodyJsonParam / ImageRefParam (JSON) in
// test/fixtures/openai/openai-openapi-images.yaml. Both forms default `model` to gpt-image-1.5.

import { IMAGE_MIME_TYPES } from '../imaging/formats.js';
import {
  type ParsedCommon,
  readExtensions,
  readGptOptions,
  readN,
  readPrompt,
  readQuality,
  readResponseFormat,
  readSize,
  readUser,
  rejectUnknownKeys,
  resolveModelField,
  resolveOutput,
} from './common.js';
import {
  type ApiError,
  arrayTooLong,
  badRequest,
  bodyNotObject,
  dallE2ImageInvalid,
  emptyArray,
  emptyString,
  fileTooLarge,
  inputFidelityNotSupported,
  invalidImage,
  invalidType,
  missingRequired,
  modelNotSupportedByEndpoint,
  stringTooLong,
  unknownParameter,
  unsupportedMimetype,
} from './errors.js';
import {
  type Dimensions,
  type EditImageLimits,
  editImageLimits,
  type FamilyRules,
  familyRules,
  type InputFidelity,
  type ParseContext,
} from './families.js';
import { type FieldReader, isPlainObject, jsonReader, multipartReader, readEnum } from './fields.js';
import {
  allowedFields,
  allowedTextFields,
  EDIT_QUALITY,
  IMAGE_FILE,
  IMAGE_FILES,
  IMAGE_URL_MAX_LENGTH,
  INPUT_FIDELITY,
} from './request-fields.js';

export const DEFAULT_EDIT_MODEL = 'gpt-image-1.5';

/** What the server tells this layer about one uploaded file part (no bytes, just facts). */
export interface UploadedFilePart {
  /** Form field name: image, image[], image[0], mask, ... */
  field: string;
  filename?: string | null;
  /** Declared Content-Type of the part. */
  mimetype: string;
  /**
   * MIME type of the image format the part's first bytes show (imaging/formats sniffImageFormat), null when they show
   * none; absent when the caller did not look. It wins over the declared type.
   */
  sniffedMimetype?: string | null;
  bytes: number;
  /** Pixel size, when the server already knows it (enables square / mask-size checks here). */
  width?: number;
  height?: number;
}

export interface EditFiles {
  images: readonly UploadedFilePart[];
  mask?: UploadedFilePart | null;
}

/** One validated input image (or mask), with the `param` name to blame if decoding it fails later. */
export type EditImageInput =
  | {
      source: 'upload';
      param: string;
      field: string;
      filename: string | null;
      mimetype: string;
      bytes: number;
      width?: number;
      height?: number;
    }
  | { source: 'data_url'; param: string; mimetype: string; base64: string; bytes: number }
  | { source: 'url'; param: string; url: string };

export interface ParsedEditRequest extends ParsedCommon {
  endpoint: 'edits';
  form: 'multipart' | 'json';
  /** low | high where the model supports it (default low), null otherwise. */
  input_fidelity: InputFidelity | null;
  images: EditImageInput[];
  mask: EditImageInput | null;
}

// ---------------------------------------------------------------------------------------------

/**
 * The part's type: what its bytes show when the server sniffed them, else the declared type, normalised
 * ("image/jpg" -> "image/jpeg"). The file name never decides: clients send names like
 * `abc.png?expires=…&sig=…` (the SDK names a fetched Response after its URL) or `blob`, with
 * application/octet-stream. OpenAI refuses untyped parts; Easel reads the bytes, as intake does again when it decodes.
 */
export function effectiveMimetype(part: { mimetype?: string | null; sniffedMimetype?: string | null }): string {
  if (part.sniffedMimetype) return part.sniffedMimetype;
  const m = (part.mimetype ?? '').split(';')[0].trim().toLowerCase();
  if (m === 'image/jpg' || m === 'image/pjpeg') return IMAGE_MIME_TYPES.jpeg;
  return m || 'application/octet-stream';
}

function dimsOf(x: { width?: number; height?: number }): Dimensions | undefined {
  if (typeof x.width === 'number' && typeof x.height === 'number' && x.width > 0 && x.height > 0) {
    return { width: x.width, height: x.height };
  }
  return undefined;
}

function checkUpload(part: UploadedFilePart, param: string, family: 'dall-e-2' | 'gpt-image', limits: EditImageLimits): EditImageInput {
  const mimetype = effectiveMimetype(part);
  if (!limits.mimetypes.includes(mimetype)) throw unsupportedMimetype(param, mimetype, limits.mimetypes);
  if (!Number.isFinite(part.bytes) || part.bytes <= 0) {
    throw invalidImage(param, `Invalid file '${param}': the file is empty.`, 'invalid_image');
  }
  if (part.bytes >= limits.maxImageBytes) {
    if (family === 'dall-e-2') throw dallE2ImageInvalid(param);
    throw fileTooLarge(param, limits.maxImageBytes, part.bytes);
  }
  const d = dimsOf(part);
  if (limits.requireSquare && d && d.width !== d.height) {
    throw invalidImage(param, `Invalid file '${param}': the image must be square, but it is ${d.width}x${d.height}.`);
  }
  return {
    source: 'upload',
    param,
    field: part.field,
    filename: part.filename ?? null,
    mimetype,
    bytes: part.bytes,
    ...(d ? { width: d.width, height: d.height } : {}),
  };
}

function checkMaskUpload(part: UploadedFilePart, limits: EditImageLimits, first: EditImageInput | undefined): EditImageInput {
  const mimetype = effectiveMimetype(part);
  if (!limits.maskMimetypes.includes(mimetype)) throw unsupportedMimetype('mask', mimetype, limits.maskMimetypes);
  if (!Number.isFinite(part.bytes) || part.bytes <= 0) throw invalidImage('mask', "Invalid file 'mask': the file is empty.");
  if (part.bytes >= limits.maskMaxBytes) throw fileTooLarge('mask', limits.maskMaxBytes, part.bytes);
  const d = dimsOf(part);
  const fd = first && first.source === 'upload' ? dimsOf(first) : undefined;
  if (d && fd && (d.width !== fd.width || d.height !== fd.height)) {
    throw invalidImage(
      'mask',
      `Invalid file 'mask': the mask must have the same dimensions as the image (${fd.width}x${fd.height}), but it is ${d.width}x${d.height}.`,
    );
  }
  return {
    source: 'upload',
    param: 'mask',
    field: part.field,
    filename: part.filename ?? null,
    mimetype,
    bytes: part.bytes,
    ...(d ? { width: d.width, height: d.height } : {}),
  };
}

/** Multipart names of image parts: image, image[], image[0], image[1], ... */
const isImageField = (name: string): boolean => name === IMAGE_FILE.name || name === IMAGE_FILES.name || IMAGE_FILES.alsoNamed.test(name);

function multipartImagesMessage(): ApiError {
  return badRequest("Unknown parameter: 'images'. For multipart/form-data use 'image' or 'image[]'.", 'images', 'invalid_value');
}
function jsonImageMessage(key: string): ApiError {
  return badRequest(`Unknown parameter: '${key}'. For application/json on /v1/images/edits, use 'images' (array).`, key, 'invalid_value');
}

function readInputFidelity(r: FieldReader, rules: FamilyRules, modelName: string): InputFidelity | null {
  if (!rules.gptFeatures) return null;
  const v = readEnum(r, INPUT_FIDELITY.name, INPUT_FIDELITY.valuesFor(), { nullable: INPUT_FIDELITY.nullable });
  if (!rules.supportsInputFidelity) {
    if (v !== undefined) throw inputFidelityNotSupported(modelName);
    return null;
  }
  return v ?? INPUT_FIDELITY.defaultFor();
}

function chooseFamily(requested: string, family: string): 'dall-e-2' | 'gpt-image' {
  if (family === 'dall-e-3') {
    throw modelNotSupportedByEndpoint(requested, 'Image edits support dall-e-2 and the GPT image models.');
  }
  return family as 'dall-e-2' | 'gpt-image';
}

// ---------------------------------------------------------------------------------------------

/** Multipart edits: `fields` are the text parts, `files` describes the file parts. */
export function parseMultipartEditRequest(
  fields: Record<string, string | readonly string[]>,
  files: EditFiles,
  ctx: ParseContext,
): ParsedEditRequest {
  const r = multipartReader(fields);
  const { requested, resolved } = resolveModelField(r, ctx, () => ctx.defaultModel ?? DEFAULT_EDIT_MODEL);
  const family = chooseFamily(requested, resolved.family);
  const rules = familyRules(family, requested, resolved.name);

  // Text parts: file-only names sent as text are type errors; `images` gets OpenAI's hint.
  const textAllowed = allowedTextFields(family, 'edits-multipart');
  const asTextFile = (name: string) => () => invalidType(name, 'a file', r.get(name));
  const special: Record<string, () => Error> = { images: multipartImagesMessage };
  for (const k of r.keys()) if (isImageField(k) || k === 'mask') special[k] = asTextFile(k);
  rejectUnknownKeys(r.keys(), textAllowed, resolved, special);
  for (const part of files.images) {
    if (isImageField(part.field)) continue;
    if (part.field === 'images') throw multipartImagesMessage();
    throw unknownParameter(part.field);
  }
  if (files.mask && files.mask.field !== 'mask') throw unknownParameter(files.mask.field);

  const prompt = readPrompt(r, rules);

  const limits = editImageLimits(family);
  const count = files.images.length;
  if (count === 0) throw missingRequired('image');
  if (count > limits.maxImages) {
    if (family === 'dall-e-2') {
      throw badRequest(`Invalid 'image': dall-e-2 accepts exactly one image, but got ${count}.`, 'image', 'array_above_max_length');
    }
    throw arrayTooLong('image', limits.maxImages, count);
  }
  const single = count === 1 && files.images[0].field === 'image';
  const images = files.images.map((part, i) => checkUpload(part, single ? 'image' : `image[${i}]`, family, limits));

  const n = readN(r, rules);
  const size = readSize(r, rules);
  const quality = readQuality(r, rules, EDIT_QUALITY);
  const response_format = readResponseFormat(r, rules);
  const gpt = readGptOptions(r, rules);
  const input_fidelity = readInputFidelity(r, rules, requested);
  const user = readUser(r);
  const extensions = readExtensions(r, resolved, rules);
  const mask = files.mask ? checkMaskUpload(files.mask, limits, images[0]) : null;

  const first = images[0];
  const firstDims = first.source === 'upload' ? dimsOf(first) : undefined;
  return {
    endpoint: 'edits',
    form: 'multipart',
    model: resolved.name,
    requested_model: requested,
    family,
    prompt,
    n,
    size,
    quality,
    response_format,
    ...gpt,
    input_fidelity,
    user,
    extensions,
    images,
    mask,
    resolved: resolveOutput(rules, size, quality, gpt.background, firstDims),
  };
}

/** Parses one ImageRefParam (`{image_url}` or `{file_id}`) at `param`. */
function readImageRef(value: unknown, param: string, limits: EditImageLimits, mask: boolean): EditImageInput {
  if (!isPlainObject(value)) throw invalidType(param, 'an object', value);
  for (const k of Object.keys(value)) {
    if (k !== 'image_url' && k !== 'file_id') throw unknownParameter(`${param}.${k}`);
  }
  const hasUrl = value.image_url !== undefined && value.image_url !== null;
  const hasFile = value.file_id !== undefined && value.file_id !== null;
  if (hasUrl && hasFile) {
    throw badRequest(`Invalid '${param}': provide exactly one of 'image_url' or 'file_id', not both.`, param, 'invalid_value');
  }
  if (hasFile) {
    // (Easel wording) Easel has no Files API, so file references cannot be honoured.
    throw badRequest(
      `Invalid '${param}.file_id': this server has no Files API, so file IDs cannot be used. Send the image in '${param}.image_url' as a data URL (data:image/png;base64,...) or an https URL, or upload it with multipart/form-data.`,
      `${param}.file_id`,
      'unsupported_parameter',
    );
  }
  if (!hasUrl) throw missingRequired(`${param}.image_url`);
  const urlParam = `${param}.image_url`;
  const url = value.image_url;
  if (typeof url !== 'string') throw invalidType(urlParam, 'a string', url);
  if (url.length > IMAGE_URL_MAX_LENGTH) throw stringTooLong(urlParam, IMAGE_URL_MAX_LENGTH, url.length);
  if (url.length === 0) throw emptyString(urlParam);

  if (/^data:/i.test(url)) {
    const m = /^data:([^;,]*)((?:;[^;,]*)*),(.*)$/is.exec(url);
    if (!m || !/;base64$/i.test(m[2] ?? '')) {
      throw badRequest(
        `Invalid '${urlParam}': expected a base64-encoded data URL, for example 'data:image/png;base64,...'.`,
        urlParam,
        'invalid_value',
      );
    }
    const mimetype = effectiveMimetype({ mimetype: m[1] });
    const allowed = mask ? limits.maskMimetypes : limits.mimetypes;
    if (!allowed.includes(mimetype)) throw unsupportedMimetype(urlParam, mimetype, allowed);
    const base64 = m[3].replace(/\s+/g, '');
    if (base64.length === 0 || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(base64)) {
      throw badRequest(`Invalid '${urlParam}': the data URL does not contain valid base64 data.`, urlParam, 'invalid_value');
    }
    const padding = base64.endsWith('==') ? 2 : base64.endsWith('=') ? 1 : 0;
    const bytes = Math.floor((base64.length * 3) / 4) - padding;
    const max = mask ? limits.maskMaxBytes : limits.maxImageBytes;
    if (bytes >= max) throw fileTooLarge(urlParam, max, bytes);
    return { source: 'data_url', param: urlParam, mimetype, base64, bytes };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined as unknown as URL;
  }
  if (!parsed || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')) {
    throw badRequest(`Invalid '${urlParam}': expected a data URL or an http(s) URL.`, urlParam, 'invalid_value');
  }
  return { source: 'url', param: urlParam, url: parsed.toString() };
}

/** JSON edits (GPT image models only, as in the spec). */
export function parseJsonEditRequest(body: unknown, ctx: ParseContext): ParsedEditRequest {
  if (!isPlainObject(body)) throw bodyNotObject(body);
  const r = jsonReader(body);
  const { requested, resolved } = resolveModelField(r, ctx, () => ctx.defaultModel ?? DEFAULT_EDIT_MODEL);
  if (resolved.family !== 'gpt-image') {
    throw modelNotSupportedByEndpoint(
      requested,
      'JSON image edits support the GPT image models only; send dall-e-2 edits as multipart/form-data.',
    );
  }
  const family = 'gpt-image' as const;
  const rules = familyRules(family, requested, resolved.name);
  rejectUnknownKeys(r.keys(), allowedFields(family, 'edits-json'), resolved, {
    image: () => jsonImageMessage('image'),
    'image[]': () => jsonImageMessage('image[]'),
  });

  const prompt = readPrompt(r, rules);

  const limits = editImageLimits(family);
  if (!r.has('images')) throw missingRequired('images');
  const list = r.get('images');
  if (!Array.isArray(list)) throw invalidType('images', 'an array of objects', list);
  if (list.length === 0) throw emptyArray('images');
  if (list.length > limits.maxImages) throw arrayTooLong('images', limits.maxImages, list.length);
  const images = list.map((item, i) => readImageRef(item, `images[${i}]`, limits, false));

  const n = readN(r, rules);
  const size = readSize(r, rules);
  const quality = readQuality(r, rules);
  const gpt = readGptOptions(r, rules);
  const input_fidelity = readInputFidelity(r, rules, requested);
  const user = readUser(r);
  const extensions = readExtensions(r, resolved, rules);
  const maskValue = r.get('mask');
  const mask = maskValue === undefined || maskValue === null ? null : readImageRef(maskValue, 'mask', limits, true);

  return {
    endpoint: 'edits',
    form: 'json',
    model: resolved.name,
    requested_model: requested,
    family,
    prompt,
    n,
    size,
    quality,
    response_format: readResponseFormat(r, rules),
    ...gpt,
    input_fidelity,
    user,
    extensions,
    images,
    mask,
    resolved: resolveOutput(rules, size, quality, gpt.background),
  };
}

/** Either form, for a server that has already split the body. */
export type EditInput =
  | { form: 'multipart'; fields: Record<string, string | readonly string[]>; files: EditFiles }
  | { form: 'json'; body: unknown };

export function parseEditRequest(input: EditInput, ctx: ParseContext): ParsedEditRequest {
  return input.form === 'json' ? parseJsonEditRequest(input.body, ctx) : parseMultipartEditRequest(input.fields, input.files, ctx);
}
