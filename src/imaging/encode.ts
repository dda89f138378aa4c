// Encodes the engine's RGBA pixels to PNG / JPEG / WebP with sharp, and resizes to the exact requested size.
// Alpha: kept for png/webp when the caller wants transparency, flattened onto a background otherwise.
import sharp from 'sharp';
import type { RgbaImage } from '../engine/types.js';
import type { ImageFormat } from './formats.js';

export type OutputFormat = ImageFormat;

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
