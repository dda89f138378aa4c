// Encodes the engine's RGBA pixels to PNG / JPEG / WebP with sharp, and resizes to the exact requested size.
// Alpha: kept for png/webp when the caller wants transparency, flattened onto a background otherwise.
import sharp from 'sharp';
import type { RgbaImage } from '../engine/types.js';
import type { ImageFormat } from './formats.js';

export type OutputFormat = ImageFormat;

/** sharp's resize kernels. Upscaling, libvips uses bicubic for all but `linear` and `nearest`. */
export const RESIZE_KERNELS = ['lanczos3', 'lanczos2', 'mitchell', 'cubic', 'linear', 'nearest'] as const satisfies ReadonlyArray<
  keyof sharp.KernelEnum
>;
export type ResizeKernel = (typeof RESIZE_KERNELS)[number];
export const JPEG_CHROMA_SUBSAMPLING = ['4:2:0', '4:4:4'] as const;

/** How pixels become bytes; `images.encoding` in the config overrides any of it. */
export interface EncodeSettings {
  /** Kernel of the upscale from the generated (native) size to the requested size. */
  readonly resizeKernel: ResizeKernel;
  /** zlib level 0–9 and per-row adaptive filtering; PNG output is always lossless (never a palette). */
  readonly png: { readonly compressionLevel: number; readonly adaptiveFiltering: boolean };
  readonly jpeg: { readonly mozjpeg: boolean; readonly chromaSubsampling: (typeof JPEG_CHROMA_SUBSAMPLING)[number] };
  /**
   * libwebp method 0–6 for lossy output (compression below 100) and for lossless output (compression 100), and
   * libwebp's lossless `quality` 1–100, which for lossless output is effort too (the pixels stay exact).
   */
  readonly webp: { readonly lossyEffort: number; readonly losslessEffort: number; readonly losslessQuality: number };
}

/**
 * The defaults, chosen by `npx tsx bench/encode.ts` (2 cores; a medium request generates in about 230 ms at
 * 1024x1024; times are resize + encode of a 1024x1024 image upscaled from 256x256, before → after):
 * - resize: `linear`, 17 ms against 35 ms for lanczos3 (which upscales exactly like cubic, mitchell and lanczos2:
 *   bicubic), at 49 dB PSNR to it; `nearest` costs 3 ms but draws 4-pixel steps (36 dB).
 * - png: zlib level 3, no adaptive filtering: 46 → about 23 ms, 158 → about 225 KiB. Level 6 adds 14 ms of
 *   encoding, adaptive filtering about 30 ms, level 9 about 160 ms.
 * - jpeg: libjpeg with 4:2:0 chroma as before: 36 → 20 ms (9 ms of it encoding); mozjpeg is 8x slower for 35% fewer bytes.
 * - webp lossless: method 0 with lossless quality 1: 355 → 51 ms, 70 → 179 KiB. Methods 1–4 cost 270–360 ms.
 * - webp lossy: method 1: 107 → 32 ms, 6.0 → 6.9 KiB at quality 50. Methods 3–6 cost 70–90 ms.
 * Shares of a request: png and jpeg 8–10%, webp 14–21% (before 13–18%, 31–35%, 55–64%); the goal was 10%.
 */
export const DEFAULT_ENCODE_SETTINGS: EncodeSettings = Object.freeze({
  resizeKernel: 'linear',
  png: Object.freeze({ compressionLevel: 3, adaptiveFiltering: false }),
  jpeg: Object.freeze({ mozjpeg: false, chromaSubsampling: '4:2:0' }),
  webp: Object.freeze({ lossyEffort: 1, losslessEffort: 0, losslessQuality: 1 }),
} as const);

export interface EncodeOptions {
  format: OutputFormat;
  /** 0–100, for jpeg and webp (100 = best quality; webp at 100 is lossless). */
  compression?: number;
  /** Keep the alpha channel (png/webp only) when any pixel is not opaque. Otherwise alpha is flattened onto `flattenColor`. */
  keepAlpha?: boolean;
  flattenColor?: { r: number; g: number; b: number };
  /** Resize to this size first (exact: no aspect-ratio preserving crop). */
  width?: number;
  height?: number;
}

function isOpaque(img: RgbaImage): boolean {
  for (let i = 3; i < img.data.length; i += 4) if (img.data[i] !== 255) return false;
  return true;
}

/**
 * The pixels at the output size, before the format is set. An opaque image drops its alpha channel before the
 * resize (same pixels, a third less work and no premultiplying), and so does one whose alpha is not kept.
 */
export function resizedPipeline(img: RgbaImage, opts: EncodeOptions, settings: EncodeSettings = DEFAULT_ENCODE_SETTINGS): sharp.Sharp {
  let s = sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), {
    raw: { width: img.width, height: img.height, channels: 4 },
  });
  const keepAlpha = opts.keepAlpha === true && opts.format !== 'jpeg' && !isOpaque(img);
  // sharp flattens before it resizes, whatever the order of these calls.
  if (!keepAlpha) s = s.flatten({ background: opts.flattenColor ?? { r: 255, g: 255, b: 255 } });
  if (opts.width && opts.height && (opts.width !== img.width || opts.height !== img.height)) {
    s = s.resize(opts.width, opts.height, { fit: 'fill', kernel: settings.resizeKernel });
  }
  return s;
}

/** Sets the output format on a pipeline: `quality` 1–100 (100 is lossless for webp; png ignores it). */
export function withFormat(
  s: sharp.Sharp,
  format: OutputFormat,
  quality: number,
  settings: EncodeSettings = DEFAULT_ENCODE_SETTINGS,
): sharp.Sharp {
  switch (format) {
    case 'png':
      return s.png({ ...settings.png, palette: false });
    case 'jpeg':
      return s.jpeg({ quality, ...settings.jpeg });
    case 'webp': {
      const { lossyEffort, losslessEffort, losslessQuality } = settings.webp;
      return s.webp(
        quality >= 100
          ? { lossless: true, effort: losslessEffort, quality: losslessQuality }
          : { quality, alphaQuality: quality, effort: lossyEffort },
      );
    }
  }
}

export async function encodeImage(
  img: RgbaImage,
  opts: EncodeOptions,
  settings: EncodeSettings = DEFAULT_ENCODE_SETTINGS,
): Promise<Buffer> {
  const q = Math.max(1, Math.min(100, Math.round(opts.compression ?? 100)));
  return withFormat(resizedPipeline(img, opts, settings), opts.format, q, settings).toBuffer();
}
