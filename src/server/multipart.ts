// multipart/form-data intake for the edit and variation routes: @fastify/multipart with limits, every part read
// into memory under one byte cap, its errors mapped to OpenAI errors, and the facts the contract checks per file.
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config/config.js';
import type { UploadedFilePart } from '../contract/edits.js';
import { ApiError, badRequest, fileTooLarge, payloadTooLarge } from '../contract/errors.js';
import { peekSize } from '../imaging/decode.js';
import { IMAGE_MIME_TYPES, sniffImageFormat } from '../imaging/formats.js';

/** Files one multipart request may carry: 16 images + mask, with room for the contract to report extra images. */
const MAX_FILES = 32;
const MAX_FIELDS = 64;

export interface MultipartFile {
  field: string;
  filename: string | null;
  mimetype: string;
  data: Buffer;
}

export interface MultipartBody {
  /** Text parts; a name sent several times becomes an array (the contract reports it). */
  fields: Record<string, string | string[]>;
  files: MultipartFile[];
}

/**
 * Registers @fastify/multipart on `scope` (an encapsulated plugin context, so other routes stay JSON-only). Bodies of
 * any other type reach the route unread, which refuses them with OpenAI's 415 naming what it accepts.
 */
export async function registerMultipart(scope: FastifyInstance, config: Readonly<Config>): Promise<void> {
  scope.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
  await scope.register(multipart, {
    limits: {
      fileSize: config.limits.uploadBytes,
      files: MAX_FILES,
      fields: MAX_FIELDS,
      parts: MAX_FILES + MAX_FIELDS,
      fieldSize: 1024 * 1024,
      headerPairs: 200,
    },
  });
}

/** RFC 2046 5.1.1: a boundary is 1 to 70 characters (the parser cannot search for one over 252). */
const MAX_BOUNDARY = 70;

function invalidMultipart(detail: string): ApiError {
  return badRequest(`The multipart/form-data body could not be parsed: ${detail}.`, null, 'invalid_multipart');
}

/** The Content-Type's boundary must be there and within RFC 2046's length before the parser is given the body. */
function checkBoundary(contentType: string | undefined): void {
  const m = /;\s*boundary=(?:"([^"]*)"|([^;\s]*))/i.exec(contentType ?? '');
  const boundary = m ? (m[1] ?? m[2]) : undefined;
  if (!boundary) throw invalidMultipart('the Content-Type header has no boundary');
  if (boundary.length > MAX_BOUNDARY) {
    throw invalidMultipart(`the boundary is ${boundary.length} characters long (at most ${MAX_BOUNDARY}, RFC 2046)`);
  }
}

/**
 * Limits become OpenAI's errors; every other failure while reading the parts comes from the body itself (a truncated
 * part, a malformed header, a stream that ends early), so it is the client's 400, never a 500.
 */
function multipartError(err: unknown, config: Readonly<Config>, field: string | undefined): ApiError {
  if (err instanceof ApiError) return err;
  const code = (err as { code?: string }).code;
  switch (code) {
    case 'FST_REQ_FILE_TOO_LARGE':
      return fileTooLarge(field ?? 'image', config.limits.uploadBytes, config.limits.uploadBytes + 1);
    case 'FST_FILES_LIMIT':
      return badRequest(`Too many files in one request (at most ${MAX_FILES}).`, 'image', 'too_many_files');
    case 'FST_FIELDS_LIMIT':
    case 'FST_PARTS_LIMIT':
      return badRequest(`Too many form fields in one request (at most ${MAX_FIELDS}).`, null, 'too_many_fields');
    case 'FST_PROTO_VIOLATION':
      return invalidMultipart('a field is named like an object prototype property (__proto__, constructor)');
    case 'ERR_STREAM_PREMATURE_CLOSE':
      return invalidMultipart(`the body ended inside the part '${field ?? ''}'`);
  }
  const message = err instanceof Error ? err.message.replace(/\.$/, '') : String(err);
  return invalidMultipart(message);
}

/** Reads every part into memory: scalars as strings, files as buffers; the total is capped at limits.uploadBytes. */
export async function readMultipart(req: FastifyRequest, config: Readonly<Config>): Promise<MultipartBody> {
  const fields: Record<string, string | string[]> = Object.create(null);
  const files: MultipartFile[] = [];
  let total = 0;
  let current: string | undefined;
  checkBoundary(req.headers['content-type']);
  try {
    for await (const part of req.parts()) {
      current = part.fieldname;
      if (part.type === 'file') {
        const data = await part.toBuffer();
        total += data.length;
        if (total > config.limits.uploadBytes) throw payloadTooLarge(config.limits.uploadBytes);
        files.push({ field: part.fieldname, filename: part.filename || null, mimetype: part.mimetype, data });
      } else {
        const value = typeof part.value === 'string' ? part.value : String(part.value);
        total += value.length;
        if (total > config.limits.uploadBytes) throw payloadTooLarge(config.limits.uploadBytes);
        const prev = fields[part.fieldname];
        fields[part.fieldname] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), value];
      }
    }
  } catch (err) {
    const refusal = multipartError(err, config, current);
    if (refusal.code === 'invalid_multipart') req.log.info({ err }, 'multipart body refused');
    throw refusal;
  }
  return { fields: { ...fields }, files };
}

/**
 * The facts the contract checks about a file part: the type its bytes show (which wins over the declared one; the
 * file name never decides), and width/height when the header can be read (best effort).
 */
export async function describeUpload(file: MultipartFile): Promise<UploadedFilePart> {
  const format = sniffImageFormat(file.data);
  const dims = await peekSize(file.data);
  return {
    field: file.field,
    filename: file.filename,
    mimetype: file.mimetype,
    sniffedMimetype: format ? IMAGE_MIME_TYPES[format] : null,
    bytes: file.data.length,
    ...(dims ?? {}),
  };
}
