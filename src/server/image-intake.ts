// Input images for edits and variations as the routes need them: the bytes behind an upload, data: URL or https
// URL (a request's URLs fetched together under one deadline), imaging/decode.ts's checks and bounded decoding, and
// every ImageInputError turned into the OpenAI error that names the request parameter the image came from.
import type { Config } from '../config/config.js';
import type { EditImageInput } from '../contract/edits.js';
import { type ApiError, fileTooLarge, invalidImage, unsupportedMimetype } from '../contract/errors.js';
import type { RgbaImage } from '../engine/types.js';
import * as decode from '../imaging/decode.js';
import { formatOfMime, IMAGE_MIME_TYPES, type ImageFormat } from '../imaging/formats.js';
import { UrlFetchSession } from './image-fetch.js';

/** An input image whose header has been read and checked, with the parameter it came from. */
export interface InspectedImage extends decode.InspectedImage {
  param: string;
}

/** The config keys image intake reads. */
export type IntakeLimits = Pick<
  Config['limits'],
  | 'maxInputPixels'
  | 'decodeBudgetBytes'
  | 'uploadBytes'
  | 'allowPrivateImageUrls'
  | 'imageUrlConcurrency'
  | 'imageUrlTimeoutSeconds'
  | 'imageUrlDeadlineSeconds'
>;

/** One input image to read: what the contract parsed, its multipart data, and what the endpoint accepts for it. */
export interface ImageSource {
  input: EditImageInput;
  /** The part's data, for source 'upload'. */
  upload?: Buffer;
  mimetypes: readonly string[];
  maxBytes: number;
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

/** The bytes behind an upload or a data: URL (capped at maxBytes); URLs are fetched by readImages' session. */
export function localBytes(input: EditImageInput, upload: Buffer | undefined, maxBytes: number): Buffer {
  switch (input.source) {
    case 'upload':
      if (!upload) throw invalidImage(input.param, `Invalid file '${input.param}': the file is missing.`);
      return upload;
    case 'data_url': {
      const buf = Buffer.from(input.base64, 'base64');
      if (buf.length >= maxBytes) throw fileTooLarge(input.param, maxBytes, buf.length);
      return buf;
    }
    case 'url':
      throw new Error(`${input.param} is a URL; fetch it through a UrlFetchSession`);
  }
}

/** Reads and checks the header (format among `allowedMimes`, size, pixel cap) without decoding pixels. */
export async function inspectImage(
  bytes: Buffer,
  param: string,
  allowedMimes: readonly string[],
  maxPixels = decode.MAX_INPUT_PIXELS,
): Promise<InspectedImage> {
  const allowed = allowedMimes.map((m) => formatOfMime(m)).filter((f): f is ImageFormat => f !== undefined);
  const img = await mapped(param, () => decode.inspectImage(bytes, allowed, maxPixels), allowedMimes);
  return { ...img, param };
}

/** Refuses a mask without alpha or of another size than the first image (errors name 'mask'). */
export function checkMask(mask: InspectedImage, first: InspectedImage): void {
  try {
    decode.checkMask(mask, first);
  } catch (err) {
    throw toApiError(err, 'mask');
  }
}

/** One decode budget per server (its frozen config.limits), shared by every request it serves. */
const budgets = new WeakMap<IntakeLimits, decode.DecodeBudget>();

/**
 * Image intake under a server's limits: headers checked against limits.maxInputPixels, URLs fetched under the
 * limits.imageUrl* settings, and every decode charged to the decode budget (limits.decodeBudgetBytes) it shares
 * with the server's other requests. Routes decode one image at a time, each straight to the working size.
 */
export class ImageIntake {
  readonly budget: decode.DecodeBudget;

  constructor(readonly limits: IntakeLimits) {
    const known = budgets.get(limits);
    this.budget = known ?? new decode.DecodeBudget(limits.decodeBudgetBytes);
    if (!known) budgets.set(limits, this.budget);
  }

  /**
   * Every source's bytes and checked header, in order. URLs are fetched at once (at most imageUrlConcurrency at a
   * time, one deadline for all) and checked as they arrive; the first refusal aborts the fetches still running.
   */
  async readImages(sources: readonly ImageSource[]): Promise<InspectedImage[]> {
    const session = this.#urlSession();
    const inspect = (s: ImageSource, bytes: Buffer) => inspectImage(bytes, s.input.param, s.mimetypes, this.limits.maxInputPixels);
    const fetched = sources.map((s) => {
      const { input } = s;
      if (input.source !== 'url') return undefined;
      const p = session.fetch(input.url, input.param, s.maxBytes).then((bytes) => inspect(s, bytes));
      // A refusal stops the other downloads at once; each pending fetch then rejects with this same error.
      p.catch((err: unknown) => session.close(err));
      return p;
    });
    try {
      const out: InspectedImage[] = [];
      for (const [i, s] of sources.entries()) out.push(await (fetched[i] ?? inspect(s, localBytes(s.input, s.upload, s.maxBytes))));
      return out;
    } finally {
      session.close();
    }
  }

  /** All pixels, decoded straight to width x height as RGBA; `flatten` composites transparency onto white. */
  decodeImage(img: InspectedImage, width: number, height: number, flatten: boolean): Promise<RgbaImage> {
    const cost = decode.decodeCost(img, width, height);
    return mapped(img.param, () => this.budget.run(cost, () => decode.decodeRgba(img, width, height, { flatten })));
  }

  /** Checks that an image decodes completely (extra edit images with a mask, whose pixels are not used). */
  verifyDecodes(img: InspectedImage): Promise<void> {
    const cost = decode.decodeCost(img, decode.VERIFY_SIDE, decode.VERIFY_SIDE);
    return mapped(img.param, () => this.budget.run(cost, () => decode.verifyDecodes(img)));
  }

  /** The mask as engine weights (1 = repaint) at width x height (errors name 'mask'). */
  decodeMask(mask: InspectedImage, width: number, height: number): Promise<Float32Array> {
    const cost = decode.decodeCost(mask, width, height);
    return mapped('mask', () => this.budget.run(cost, () => decode.decodeMaskWeights(mask, width, height)));
  }

  #urlSession(): UrlFetchSession {
    const l = this.limits;
    return new UrlFetchSession({
      allowPrivate: l.allowPrivateImageUrls,
      concurrency: l.imageUrlConcurrency,
      timeoutMs: l.imageUrlTimeoutSeconds * 1000,
      deadlineMs: l.imageUrlDeadlineSeconds * 1000,
      totalBytes: l.uploadBytes,
    });
  }
}
