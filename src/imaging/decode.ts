// Reading input images with sharp: the header first (real format, displayed size, pixel cap), then one streaming
// decode that resizes as it reads, under a DecodeBudget on memory. Knows nothing of HTTP: problems are thrown as
// ImageInputError with a machine-readable reason, which the server turns into OpenAI errors and the CLI prints.
import sharp from 'sharp';
import type { RgbaImage } from '../engine/types.js';
import { IMAGE_FORMATS, type ImageFormat, sniffImageFormat } from './formats.js';

/** Default largest declared input size (width x height): 25 megapixels; the server's is limits.maxInputPixels. */
export const MAX_INPUT_PIXELS = 25_000_000;

export type ImageInputReason =
  | 'empty'
  /** Not PNG, JPEG or WebP by its magic bytes. */
  | 'not_an_image'
  /** One of IMAGE_FORMATS, but not one the caller allows; details.format names it. */
  | 'unsupported_format'
  /** The header cannot be read, or declares no size. */
  | 'unreadable'
  /** Declared width x height over the pixel limit, or more than one frame (animation). */
  | 'too_many_pixels'
  /** The header reads but the pixel data does not decode completely (truncated, corrupt, lying about its size). */
  | 'corrupt'
  | 'mask_no_alpha'
  | 'mask_size_mismatch';

/** Why an input image was refused. `message` is a sentence about the image that names no parameter or file. */
export class ImageInputError extends Error {
  constructor(
    readonly reason: ImageInputReason,
    message: string,
    readonly details: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
    this.name = 'ImageInputError';
  }
}

/** An input image whose header has been read and checked; not decoded yet. */
export interface InspectedImage {
  bytes: Buffer;
  format: ImageFormat;
  /** Size as displayed (EXIF orientation applied, see displaySize). */
  width: number;
  height: number;
  hasAlpha: boolean;
}

const formatName = (f: ImageFormat) => (f === 'webp' ? 'WebP' : f.toUpperCase());

/** Width and height as displayed: an EXIF orientation of 5-8 (camera held upright) swaps the stored ones. */
function displaySize(m: sharp.Metadata): { width: number; height: number } | undefined {
  if (!m.width || !m.height) return undefined;
  return (m.orientation ?? 1) >= 5 ? { width: m.height, height: m.width } : { width: m.width, height: m.height };
}

/** Header metadata only; no pixel is decoded, so no pixel limit applies yet. */
const readHeader = (bytes: Buffer) => sharp(bytes, { limitInputPixels: false }).metadata();

/** The displayed size when the bytes are a known format with a readable header (best effort, never throws). */
export async function peekSize(bytes: Buffer): Promise<{ width: number; height: number } | undefined> {
  if (!sniffImageFormat(bytes)) return undefined;
  try {
    return displaySize(await readHeader(bytes));
  } catch {
    return undefined;
  }
}

/**
 * Sniffs the format (must be one of `allowed`), reads the header and refuses declared sizes over `maxPixels` and
 * animations, all without decoding pixels.
 */
export async function inspectImage(
  bytes: Buffer,
  allowed: readonly ImageFormat[] = IMAGE_FORMATS,
  maxPixels: number = MAX_INPUT_PIXELS,
): Promise<InspectedImage> {
  if (bytes.length === 0) throw new ImageInputError('empty', 'the file is empty.');
  const format = sniffImageFormat(bytes);
  if (!format) throw new ImageInputError('not_an_image', 'the file is not a PNG, JPEG or WebP image.');
  if (!allowed.includes(format)) {
    const names = allowed.map(formatName).join(' or ');
    throw new ImageInputError('unsupported_format', `the image is ${formatName(format)}, but only ${names} is accepted here.`, {
      format,
      allowed,
    });
  }
  let meta: sharp.Metadata;
  try {
    meta = await readHeader(bytes);
  } catch {
    throw new ImageInputError('unreadable', 'the image is corrupt and could not be read.');
  }
  const size = displaySize(meta);
  if (!size) throw new ImageInputError('unreadable', 'the image has no readable size.');
  const { width, height } = size;
  const frames = meta.pages ?? 1;
  if (width * height > maxPixels || frames > 1) {
    throw new ImageInputError(
      'too_many_pixels',
      `the image is ${width}x${height}${frames > 1 ? ` with ${frames} frames` : ''}; images may have at most ${maxPixels} pixels and one frame.`,
      { width, height, frames, maxPixels },
    );
  }
  return { bytes, format, width, height, hasAlpha: meta.hasAlpha === true };
}

const corrupt = () => new ImageInputError('corrupt', 'the image is corrupt or truncated and could not be decoded.');

/**
 * The one decode: a libvips pipeline that reads the file sequentially and resizes as it reads (JPEG and WebP shrink
 * on load), with EXIF orientation applied (rotate() with no angle), so no full-size pixel buffer ever exists. The
 * pixel limit is the header's own size; data that does not fill its header fails (failOn 'warning').
 */
const pipeline = (img: InspectedImage) =>
  sharp(img.bytes, { limitInputPixels: Math.max(1, img.width * img.height), failOn: 'warning', sequentialRead: true }).rotate();

/** Runs the decode; any failure is the image's fault (sharp was handed checked input). */
async function decoding<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch {
    throw corrupt();
  }
}

export interface DecodeOptions {
  /** Composite transparency onto white (for VAEs without an alpha channel). */
  flatten: boolean;
}

/** All pixels, resized (lanczos3, exact size) to width x height as they are decoded, as RGBA. */
export function decodeRgba(img: InspectedImage, width: number, height: number, opts: DecodeOptions): Promise<RgbaImage> {
  return decoding(async () => {
    const p = pipeline(img);
    if (opts.flatten) p.flatten({ background: { r: 255, g: 255, b: 255 } });
    const { data, info } = await p
      .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
      .ensureAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  });
}

/** Side of the thumbnail verifyDecodes decodes to: every byte of the file is still read and checked. */
export const VERIFY_SIDE = 64;

/** Checks that an image decodes completely, without keeping its pixels. */
export async function verifyDecodes(img: InspectedImage): Promise<void> {
  const side = (n: number) => Math.min(n, VERIFY_SIDE);
  await decoding(() => pipeline(img).resize(side(img.width), side(img.height), { fit: 'fill' }).raw().toBuffer());
}

/** Refuses a mask that has no alpha channel or whose size differs from the image it masks. */
export function checkMask(mask: InspectedImage, image: InspectedImage): void {
  if (!mask.hasAlpha) {
    throw new ImageInputError(
      'mask_no_alpha',
      'the mask must be a PNG with an alpha channel; fully transparent pixels mark the area to edit.',
    );
  }
  if (mask.width !== image.width || mask.height !== image.height) {
    throw new ImageInputError(
      'mask_size_mismatch',
      `the mask must have the same dimensions as the image (${image.width}x${image.height}), but it is ${mask.width}x${mask.height}.`,
      { image: { width: image.width, height: image.height }, mask: { width: mask.width, height: mask.height } },
    );
  }
}

/**
 * OpenAI's mask semantics → the engine's weights: fully transparent mask pixels (alpha 0) are the area to edit (1),
 * everything else is kept (0). Resized to width x height with nearest-neighbour so the edge stays binary.
 */
export async function decodeMaskWeights(mask: InspectedImage, width: number, height: number): Promise<Float32Array> {
  const alpha = await decoding(() =>
    pipeline(mask).resize(width, height, { fit: 'fill', kernel: 'nearest' }).ensureAlpha().extractChannel(3).raw().toBuffer(),
  );
  const out = new Float32Array(width * height);
  for (let i = 0; i < out.length; i++) out[i] = alpha[i] === 0 ? 1 : 0;
  return out;
}

/**
 * Source rows a streaming decode may hold at once, measured (sharp 0.34, libvips 8.17, one libvips thread): PNGs
 * resized with lanczos3 peak at about 1500 rows of RGBA (6000x4000 to 512x512: +36 MB; 8000x5000: +47 MB;
 * 25000x1000, the whole image: +98 MB); JPEG and WebP, shrunk on load, far less.
 */
const SOURCE_ROWS_IN_FLIGHT = 2048;

/** An upper bound on the bytes decoding `img` to width x height holds at its peak: the source window and the output. */
export function decodeCost(img: { width: number; height: number }, width: number, height: number): number {
  return img.width * 4 * Math.min(img.height, SOURCE_ROWS_IN_FLIGHT) + width * height * 4;
}

/**
 * A semaphore on bytes: decodes run while their cost (decodeCost) fits in what is free, the others wait in arrival
 * order (a large decode is never starved by small ones). One cost larger than the whole budget runs alone.
 */
export class DecodeBudget {
  #free: number;
  readonly #waiting: Array<{ bytes: number; start: () => void }> = [];

  constructor(readonly capacity: number) {
    this.#free = capacity;
  }

  /** Bytes charged by the decodes running now. */
  get inUse(): number {
    return this.capacity - this.#free;
  }

  /** Runs `work` once `bytes` (capped at the capacity) are free, and frees them when it settles. */
  async run<T>(bytes: number, work: () => Promise<T>): Promise<T> {
    const charge = Math.min(Math.max(0, bytes), this.capacity);
    await this.#acquire(charge);
    try {
      return await work();
    } finally {
      this.#release(charge);
    }
  }

  #acquire(bytes: number): Promise<void> {
    if (this.#waiting.length === 0 && bytes <= this.#free) {
      this.#free -= bytes;
      return Promise.resolve();
    }
    return new Promise((start) => this.#waiting.push({ bytes, start }));
  }

  #release(bytes: number): void {
    this.#free += bytes;
    while (this.#waiting.length > 0 && this.#waiting[0].bytes <= this.#free) {
      const next = this.#waiting.shift()!;
      this.#free -= next.bytes;
      next.start();
    }
  }
}
