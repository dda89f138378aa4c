// The ImageStore seam: where encoded images live between generation and a client fetching a `url` response.
// The filesystem store is the default; the S3-compatible store (s3.ts) implements the same interface.

import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
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

/** What `open` returns: the metadata and a stream of the encoded bytes (byteLength of them), to pipe to a client. */
export type OpenedImage = StoredImage & { body: Readable };

export interface PutOptions {
  /** Lifetime in seconds; must be a positive finite number. */
  ttlSeconds: number;
}

export interface ImageStore {
  put(img: EncodedImage, opts: PutOptions): Promise<StoredImage>;
  /**
   * The image, or undefined when unknown, expired, or when `id` (or `ext`) is not valid. `ext`, when the caller knows
   * it (an image URL names it), saves a store that keys objects by extension a lookup; another extension is undefined.
   */
  get(id: string, ext?: string): Promise<StoredImageWithBytes | undefined>;
  /**
   * As `get`, but the bytes come as a stream (the files route pipes it to the client without holding the image).
   * Both stores have it; it is optional so that wrappers (server/disk.ts guardStore) may leave it out, callers then use `get`.
   */
  open?(id: string, ext?: string): Promise<OpenedImage | undefined>;
  /** Deletes if present; unknown or invalid ids are a no-op. */
  delete(id: string): Promise<void>;
  /** Deletes every image expired at `now` (ms, default: the store's clock); returns how many were deleted. */
  sweep(now?: number): Promise<number>;
  close(): Promise<void>;
  /** Checks at start that the store can be written (a missing bucket or bad credentials throw, naming what failed). */
  check?(): Promise<void>;
  /** A URL the client fetches from the store itself, valid until the image expires (images.urlMode "presigned"). */
  presign?(img: StoredImage): Promise<string>;
}

/** How long a client is told to wait (Retry-After) when the store cannot be reached. */
export const STORE_RETRY_AFTER_SECONDS = 5;

/**
 * The store could not be reached or answered with a fault (timeout, refused connection, 5xx, throttling) after its
 * bounded retries: the server answers 503 with Retry-After. Not thrown for an image that simply is not there.
 */
export class StoreUnavailableError extends Error {
  readonly retryAfterSeconds = STORE_RETRY_AFTER_SECONDS;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
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
