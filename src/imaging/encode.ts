// Encodes the engine's RGBA pixels to PNG / JPEG / WebP with sharp, and resizes to the exact requested size.
// Alpha: kept for png/webp when the caller wants transparency, flattened onto a background otherwise.
import sharp from 'sharp';
import type { RgbaImage } from '../engine/types.js';

export type OutputFormat = 'png' | 'jpeg' | 'webp';

export const CONTENT_TYPES: Record<OutputFormat, 'image/png' | 'image/jpeg' | 'image/webp'> = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
};

export interface EncodeOptions {
  format: OutputFormat;
  /** 0–100, for jpeg and webp (100 = best quality; webp at 100 is lossless). */
  compression?: number;
  /** Keep the alpha channel (png/webp only). When false, alpha is flattened onto `flattenColor`. */
  keepAlpha?: boolean;
  flattenColor?: { r: number; g: number; b: number };
  /** Resize to this size first (lanczos3, exact: no aspect-ratio preserving crop). */
  width?: number;
  height?: number;
}

function pipelineFor(img: RgbaImage, opts: EncodeOptions): sharp.Sharp {
  let s = sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), {
    raw: { width: img.width, height: img.height, channels: 4 },
  });
  if (opts.width && opts.height && (opts.width !== img.width || opts.height !== img.height)) {
    s = s.resize(opts.width, opts.height, { fit: 'fill', kernel: 'lanczos3' });
  }
  const keepAlpha = opts.keepAlpha === true && opts.format !== 'jpeg';
  if (!keepAlpha) s = s.flatten({ background: opts.flattenColor ?? { r: 255, g: 255, b: 255 } });
  return s;
}

export async function encodeImage(img: RgbaImage, opts: EncodeOptions): Promise<Buffer> {
  const s = pipelineFor(img, opts);
  const q = Math.max(1, Math.min(100, Math.round(opts.compression ?? 100)));
  switch (opts.format) {
    case 'png':
      return s.png({ compressionLevel: 6 }).toBuffer();
    case 'jpeg':
      return s.jpeg({ quality: q, mozjpeg: false }).toBuffer();
    case 'webp':
      return s.webp(q >= 100 ? { lossless: true } : { quality: q, alphaQuality: q }).toBuffer();
  }
}

/** Resizes RGBA pixels (lanczos3), keeping alpha. */
export async function resizeRgba(img: RgbaImage, width: number, height: number): Promise<RgbaImage> {
  if (img.width === width && img.height === height) return img;
  const { data, info } = await sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), {
    raw: { width: img.width, height: img.height, channels: 4 },
  })
    .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** Decodes any image sharp reads into RGBA pixels, optionally resized (fill) to an exact size. */
export async function decodeToRgba(bytes: Buffer, size?: { width: number; height: number }): Promise<RgbaImage> {
  let s = sharp(bytes, { limitInputPixels: 64_000_000 }).ensureAlpha();
  if (size) s = s.resize(size.width, size.height, { fit: 'fill', kernel: 'lanczos3' });
  const { data, info } = await s.raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}
