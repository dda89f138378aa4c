// The ImageStore seam: where encoded images live between generation and a client fetching a `url` response.
// The filesystem store is the default; an S3-compatible store (later issue) implements the same interface.

import { randomBytes } from 'node:crypto';
import { formatOfExtension, formatOfMime, IMAGE_EXTENSIONS, type ImageExtension, type ImageMimeType } from '../imaging/formats.js';

export type ImageContentType = ImageMimeType;
/** File extension used in stored file names and in image URLs (matches OpenAI's `output_format` values). */
export type ImageExt = ImageExtension;

/** An encoded image ready to store or send. */
export interface EncodedImage {
  bytes: Buffer;
  contentType: ImageContentType;
}

/**
 * Metadata of a stored image. Times are Unix epoch milliseconds.
 * Note: the size field is `byteLength`, not `bytes`, so that `StoredImage & { bytes: Buffer }` stays a usable type.
 */
export interface StoredImage {
  id: string;
  contentType: ImageContentType;
  ext: ImageExt;
  byteLength: number;
  createdAt: number;
  expiresAt: number;
}

/** What `get` returns: the metadata plus the encoded bytes. */
export type StoredImageWithBytes = StoredImage & EncodedImage;

export interface PutOptions {
  /** Lifetime in seconds; must be a positive finite number. */
  ttlSeconds: number;
}

export interface ImageStore {
  put(img: EncodedImage, opts: PutOptions): Promise<StoredImage>;
  /** The image, or undefined when unknown, expired, or when `id` is not a valid image id. */
  get(id: string): Promise<StoredImageWithBytes | undefined>;
  /** Deletes if present; unknown or invalid ids are a no-op. */
  delete(id: string): Promise<void>;
  /** Deletes every image expired at `now` (ms, default: the store's clock); returns how many were deleted. */
  sweep(now?: number): Promise<number>;
  close(): Promise<void>;
}

/** Ids are 16 random bytes in base64url: 22 characters of [A-Za-z0-9_-]. */
export const IMAGE_ID_PATTERN = /^[A-Za-z0-9_-]{22}$/;

export function newImageId(): string {
  return randomBytes(16).toString('base64url');
}

export function isImageId(id: unknown): id is string {
  return typeof id === 'string' && IMAGE_ID_PATTERN.test(id);
}

export function isImageContentType(t: unknown): t is ImageContentType {
  return typeof t === 'string' && formatOfMime(t) !== undefined;
}

export function isImageExt(e: unknown): e is ImageExt {
  return typeof e === 'string' && formatOfExtension(e) !== undefined;
}

export function extForContentType(t: ImageContentType): ImageExt {
  return IMAGE_EXTENSIONS[formatOfMime(t)];
}
