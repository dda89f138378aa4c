// Signed, expiring URLs for stored images (`response_format: "url"`): HMAC-SHA256 over id, extension and expiry,
// so a URL cannot be guessed, retargeted to another image, or extended. Clocks are injected, never read here.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { type ImageExt, isImageExt, isImageId } from './types.js';

export type VerifyResult = 'ok' | 'expired' | 'bad_signature';

export interface SignImageUrlParams {
  /** Public base URL of the server, e.g. `https://easel.example.com` (a trailing slash is ignored). */
  baseUrl: string;
  id: string;
  ext: ImageExt;
  /** Expiry in epoch milliseconds (e.g. StoredImage.expiresAt); the URL carries it as whole Unix seconds, rounded down. */
  expiresAt: number;
  secret: string | Buffer;
}

export interface VerifyImageUrlParams {
  id: string;
  ext: string;
  /** The `expires` query value: Unix seconds (a string straight from the query string is fine). */
  expires: string | number | undefined;
  /** The `sig` query value. */
  sig: string | undefined;
  secret: string | Buffer;
  /** Clock in epoch milliseconds. */
  now: () => number;
}

/** Path of an image file under the server, without base URL or query. */
export function imageFilePath(id: string, ext: ImageExt): string {
  return `/v1/images/files/${id}.${ext}`;
}

function checkSecret(secret: string | Buffer): void {
  const len = typeof secret === 'string' ? Buffer.byteLength(secret) : Buffer.isBuffer(secret) ? secret.length : 0;
  if (len === 0) throw new TypeError('image URL signing secret must be a non-empty string or Buffer');
}

/** The MAC input: a fixed domain tag plus each field on its own line, so fields cannot be shifted into one another. */
function signature(id: string, ext: string, expiresSec: number, secret: string | Buffer): string {
  return createHmac('sha256', secret).update(`easel-image-url-v1\n${id}\n${ext}\n${expiresSec}`).digest('base64url');
}

export function signImageUrl(p: SignImageUrlParams): string {
  checkSecret(p.secret);
  if (!isImageId(p.id)) throw new TypeError('signImageUrl: invalid image id');
  if (!isImageExt(p.ext)) throw new TypeError('signImageUrl: invalid image extension');
  if (!Number.isFinite(p.expiresAt) || p.expiresAt < 0) throw new RangeError('signImageUrl: invalid expiresAt');
  const expiresSec = Math.floor(p.expiresAt / 1000);
  const sig = signature(p.id, p.ext, expiresSec, p.secret);
  const base = p.baseUrl.replace(/\/+$/, '');
  return `${base}${imageFilePath(p.id, p.ext)}?expires=${expiresSec}&sig=${sig}`;
}

// Canonical decimal only (no sign, no leading zeros), so one expiry has exactly one spelling.
const EXPIRES_PATTERN = /^(0|[1-9][0-9]{0,14})$/;

/**
 * Checks a signed image URL's parts. The signature is checked first (constant time), so a forged URL
 * is always 'bad_signature' whatever its expiry; a genuine URL past its expiry is 'expired'.
 */
export function verifyImageUrl(p: VerifyImageUrlParams): VerifyResult {
  checkSecret(p.secret);
  const expiresStr = typeof p.expires === 'number' ? String(p.expires) : p.expires;
  if (
    !isImageId(p.id) ||
    !isImageExt(p.ext) ||
    typeof expiresStr !== 'string' ||
    !EXPIRES_PATTERN.test(expiresStr) ||
    typeof p.sig !== 'string'
  ) {
    return 'bad_signature';
  }
  const expiresSec = Number(expiresStr);
  const expected = Buffer.from(signature(p.id, p.ext, expiresSec, p.secret), 'utf8');
  const given = Buffer.from(p.sig, 'utf8');
  // timingSafeEqual needs equal lengths; the length of a valid signature is public (43 chars) anyway.
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'bad_signature';
  return p.now() >= expiresSec * 1000 ? 'expired' : 'ok';
}
