// Input images for edits and variations as the routes need them: the bytes behind an upload, data: URL or https
// URL, then imaging/decode.ts's checks and decoding, with every ImageInputError turned into the OpenAI error that
// names the request parameter the image came from.
import type { EditImageInput } from '../contract/edits.js';
import { type ApiError, fileTooLarge, invalidImage, unsupportedMimetype } from '../contract/errors.js';
import type { RgbaImage } from '../engine/types.js';
import * as decode from '../imaging/decode.js';
import { formatOfMime, IMAGE_MIME_TYPES, type ImageFormat } from '../imaging/formats.js';
import { fetchImageUrl, type UrlFetchOptions } from './image-fetch.js';

/** An input image whose header has been read and checked, with the parameter it came from. */
export interface InspectedImage extends decode.InspectedImage {
  param: string;
}

/** The error code each refusal has always had (clients match on them). */
const CODES: Record<Exclude<decode.ImageInputReason, 'unsupported_format'>, string> = {
  empty: 'invalid_image',
  not_an_image: 'invalid_image_format',
  unreadable: 'invalid_image',
  too_many_pixels: 'image_too_large',
  corrupt: 'invalid_image',
  mask_no_alpha: 'invalid_mask',
  mask_size_mismatch: 'invalid_mask',
};

/** The OpenAI error for an image problem; anything that is not an ImageInputError passes through unchanged. */
function toApiError(err: unknown, param: string, allowedMimes: readonly string[] = []): ApiError | unknown {
  if (!(err instanceof decode.ImageInputError)) return err;
  if (err.reason === 'unsupported_format') {
    return unsupportedMimetype(param, IMAGE_MIME_TYPES[err.details.format as ImageFormat], allowedMimes);
  }
  return invalidImage(param, `Invalid file '${param}': ${err.message}`, CODES[err.reason]);
}

async function mapped<T>(param: string, work: () => Promise<T> | T, allowedMimes?: readonly string[]): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw toApiError(err, param, allowedMimes);
  }
}

/** The bytes behind a parsed edit input; `upload` is the part's data for source 'upload'. */
export async function inputBytes(input: EditImageInput, upload: Buffer | undefined, opts: UrlFetchOptions): Promise<Buffer> {
  switch (input.source) {
    case 'upload':
      if (!upload) throw invalidImage(input.param, `Invalid file '${input.param}': the file is missing.`);
      return upload;
    case 'data_url': {
      const buf = Buffer.from(input.base64, 'base64');
      if (buf.length >= opts.maxBytes) throw fileTooLarge(input.param, opts.maxBytes, buf.length);
      return buf;
    }
    case 'url':
      return fetchImageUrl(input.url, input.param, opts);
  }
}

/** Reads and checks the header (format among `allowedMimes`, size, pixel cap) without decoding pixels. */
export async function inspectImage(bytes: Buffer, param: string, allowedMimes: readonly string[]): Promise<InspectedImage> {
  const allowed = allowedMimes.map((m) => formatOfMime(m)).filter((f): f is ImageFormat => f !== undefined);
  const img = await mapped(param, () => decode.inspectImage(bytes, allowed), allowedMimes);
  return { ...img, param };
}

/** All pixels at width x height as RGBA; `flatten` composites transparency onto white. */
export function decodeImage(img: InspectedImage, width: number, height: number, flatten: boolean): Promise<RgbaImage> {
  return mapped(img.param, () => decode.decodeRgba(img, width, height, { flatten }));
}

/** Checks that an image decodes completely (extra edit images, whose pixels are not used). */
export function verifyDecodes(img: InspectedImage): Promise<void> {
  return mapped(img.param, () => decode.verifyDecodes(img));
}

/** Refuses a mask without alpha or of another size than the first image (errors name 'mask'). */
export function checkMask(mask: InspectedImage, first: InspectedImage): void {
  try {
    decode.checkMask(mask, first);
  } catch (err) {
    throw toApiError(err, 'mask');
  }
}

/** The mask as engine weights (1 = repaint) at width x height (errors name 'mask'). */
export function decodeMask(mask: InspectedImage, width: number, height: number): Promise<Float32Array> {
  return mapped('mask', () => decode.decodeMaskWeights(mask, width, height));
}
