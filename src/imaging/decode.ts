// Reading input images with sharp: inspect the header first (real format, displayed size, pixel cap), then decode
// all pixels through one path to RGBA at a size, or to mask weights. Knows nothing of HTTP: problems are thrown
// as ImageInputError with a machine-readable reason, which the server turns into OpenAI errors and the CLI prints.
import sharp from 'sharp';
import type { RgbaImage } from '../engine/types.js';
import { IMAGE_FORMATS, type ImageFormat, sniffImageFormat } from './formats.js';

/** Largest declared input size (width x height) Easel decodes: 40 megapixels (160 MB of RGBA). */
export const MAX_INPUT_PIXELS = 40_000_000;

export type ImageInputReason =
  | 'empty'
  /** Not PNG, JPEG or WebP by its magic bytes. */
  | 'not_an_image'
  /** One of IMAGE_FORMATS, but not one the caller allows; details.format names it. */
  | 'unsupported_format'
  /** The header cannot be read, or declares no size. */
  | 'unreadable'
  /** Declared width x height over MAX_INPUT_PIXELS, or more than one frame (animation). */
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
 * Sniffs the format (must be one of `allowed`), reads the header and refuses declared sizes over
 * MAX_INPUT_PIXELS and animations, all without decoding pixels.
 */
export async function inspectImage(bytes: Buffer, allowed: readonly ImageFormat[] = IMAGE_FORMATS): Promise<InspectedImage> {
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
  if (width * height > MAX_INPUT_PIXELS || frames > 1) {
    throw new ImageInputError(
      'too_many_pixels',
      `the image is ${width}x${height}${frames > 1 ? ` with ${frames} frames` : ''}; images may have at most ${MAX_INPUT_PIXELS} pixels and one frame.`,
      { width, height, frames, maxPixels: MAX_INPUT_PIXELS },
    );
  }
  return { bytes, format, width, height, hasAlpha: meta.hasAlpha === true };
}

const corrupt = () => new ImageInputError('corrupt', 'the image is corrupt or truncated and could not be decoded.');

/**
 * The one decode: every pixel at the declared size, EXIF orientation applied (rotate() with no angle), as RGBA.
 * Data that does not fill its header, or a header that lies about the size, fails here.
 */
async function decodeFull(img: InspectedImage): Promise<sharp.Sharp> {
  const { data, info } = await sharp(img.bytes, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'warning' })
    .rotate()
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.width !== img.width || info.height !== img.height) throw new Error('decoded size differs from the header');
  return sharp(data, { raw: { width: img.width, height: img.height, channels: 4 } });
}

/** Runs `work` on the fully decoded image; any failure is the image's fault (sharp was handed checked input). */
async function withDecoded<T>(img: InspectedImage, work: (full: sharp.Sharp) => Promise<T>): Promise<T> {
  try {
    return await work(await decodeFull(img));
  } catch {
    throw corrupt();
  }
}

export interface DecodeOptions {
  /** Composite transparency onto white (for VAEs without an alpha channel). */
  flatten: boolean;
}

/** All pixels, resized (lanczos3, exact size) to width x height, as RGBA. */
export function decodeRgba(img: InspectedImage, width: number, height: number, opts: DecodeOptions): Promise<RgbaImage> {
  return withDecoded(img, async (full) => {
    const s = opts.flatten ? full.flatten({ background: { r: 255, g: 255, b: 255 } }) : full;
    const { data, info } = await s
      .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
      .ensureAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  });
}

/** Checks that an image decodes completely, without keeping its pixels. */
export async function verifyDecodes(img: InspectedImage): Promise<void> {
  await withDecoded(img, async () => undefined);
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
  const alpha = await withDecoded(mask, (full) =>
    full.resize(width, height, { fit: 'fill', kernel: 'nearest' }).extractChannel(3).raw().toBuffer(),
  );
  const out = new Float32Array(width * height);
  for (let i = 0; i < out.length; i++) out[i] = alpha[i] === 0 ? 1 : 0;
  return out;
}
