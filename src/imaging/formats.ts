// The one list of image formats Easel reads and writes, with each format's MIME type and file extension.
// Pure data plus magic-byte sniffing (no sharp), so contract/, storage/, server/ and the CLI can all import it.

export const IMAGE_FORMATS = ['png', 'jpeg', 'webp'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

export const IMAGE_MIME_TYPES = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
} as const satisfies Record<ImageFormat, string>;
export type ImageMimeType = (typeof IMAGE_MIME_TYPES)[ImageFormat];

/**
 * Extension of stored files and of image URLs: the format's name as OpenAI's `output_format` spells it
 * ('jpeg', not 'jpg'), so URLs handed out before stay valid.
 */
export const IMAGE_EXTENSIONS = {
  png: 'png',
  jpeg: 'jpeg',
  webp: 'webp',
} as const satisfies Record<ImageFormat, string>;
export type ImageExtension = (typeof IMAGE_EXTENSIONS)[ImageFormat];

/** Extensions clients give their files, beyond IMAGE_EXTENSIONS (lower case, without the dot). */
const FILENAME_ALIASES: Readonly<Record<string, ImageFormat>> = { jpg: 'jpeg' };

export function isImageFormat(value: unknown): value is ImageFormat {
  return typeof value === 'string' && (IMAGE_FORMATS as readonly string[]).includes(value);
}

/** The format whose canonical MIME type is exactly `mime` ('image/png'); callers normalise case and aliases first. */
export function formatOfMime(mime: ImageMimeType): ImageFormat;
export function formatOfMime(mime: string): ImageFormat | undefined;
export function formatOfMime(mime: string): ImageFormat | undefined {
  return IMAGE_FORMATS.find((f) => IMAGE_MIME_TYPES[f] === mime);
}

/** The format whose stored-file extension is exactly `ext` ('png', 'jpeg', 'webp'; no dot). */
export function formatOfExtension(ext: string): ImageFormat | undefined {
  return IMAGE_FORMATS.find((f) => IMAGE_EXTENSIONS[f] === ext);
}

/** The format a file name's extension names, case-insensitively, 'jpg' included ('photo.JPG' -> 'jpeg'). */
export function formatOfFilename(name: string): ImageFormat | undefined {
  const ext = /\.([a-z0-9]+)$/i.exec(name)?.[1]?.toLowerCase();
  if (!ext) return undefined;
  return formatOfExtension(ext) ?? FILENAME_ALIASES[ext];
}

const startsWith = (bytes: Uint8Array, at: number, expected: readonly number[]): boolean =>
  bytes.length >= at + expected.length && expected.every((b, i) => bytes[at + i] === b);

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG_SOI = [0xff, 0xd8, 0xff];
const RIFF = [0x52, 0x49, 0x46, 0x46];
const WEBP = [0x57, 0x45, 0x42, 0x50];

/** The real format from the magic bytes (a declared MIME type or file name is not trusted). */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (startsWith(bytes, 0, PNG_SIGNATURE)) return 'png';
  if (startsWith(bytes, 0, JPEG_SOI)) return 'jpeg';
  if (startsWith(bytes, 0, RIFF) && startsWith(bytes, 8, WEBP)) return 'webp';
  return undefined;
}
