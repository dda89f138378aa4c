// Image intake for /v1/images/edits and /variations: multipart parsing with limits, and turning uploads,
// data: URLs and https URLs into checked pixels (real format sniffed, size read from the header before decoding).
//
// Hostile input is refused with a 400 naming the `param` before any engine work: decompression bombs (declared
// width x height over MAX_INPUT_PIXELS), corrupt or truncated files, non-images, masks without alpha or of the
// wrong size, and URLs that resolve to loopback / private / link-local addresses (every DNS answer is checked and
// the connection is pinned to a checked address, so a rebinding DNS server cannot slip a private one in).
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import sharp from 'sharp';
import type { Config } from '../config/config.js';
import type { EditImageInput, UploadedFilePart } from '../contract/edits.js';
import { ApiError, badRequest, fileTooLarge, invalidImage, payloadTooLarge, unsupportedMimetype } from '../contract/errors.js';
import type { RgbaImage } from '../engine/types.js';
import { IMAGE_MIME_TYPES, sniffImageFormat, type ImageFormat } from '../imaging/formats.js';

/** Largest declared input size (width x height) Easel decodes: 40 megapixels (160 MB of RGBA). */
export const MAX_INPUT_PIXELS = 40_000_000;
/** Time limit for fetching one image URL (connect + headers + body). */
export const URL_FETCH_TIMEOUT_MS = 10_000;
export const URL_MAX_REDIRECTS = 3;
/** Files one multipart request may carry: 16 images + mask, with room for the contract to report extra images. */
const MAX_FILES = 32;
const MAX_FIELDS = 64;

// ---------------------------------------------------------------------------------------------
// Multipart.

export interface MultipartFile {
  field: string;
  filename: string | null;
  mimetype: string;
  data: Buffer;
}

export interface MultipartBody {
  /** Text parts; a name sent several times becomes an array (the contract reports it). */
  fields: Record<string, string | string[]>;
  files: MultipartFile[];
}

/** Registers @fastify/multipart on `scope` (an encapsulated plugin context, so other routes stay JSON-only). */
export async function registerMultipart(scope: FastifyInstance, config: Readonly<Config>): Promise<void> {
  await scope.register(multipart, {
    limits: {
      fileSize: config.limits.uploadBytes,
      files: MAX_FILES,
      fields: MAX_FIELDS,
      parts: MAX_FILES + MAX_FIELDS,
      fieldSize: 1024 * 1024,
      headerPairs: 200,
    },
  });
}

function multipartError(err: unknown, config: Readonly<Config>, field: string | undefined): ApiError | unknown {
  const code = (err as { code?: string }).code;
  switch (code) {
    case 'FST_REQ_FILE_TOO_LARGE':
      return fileTooLarge(field ?? 'image', config.limits.uploadBytes, config.limits.uploadBytes + 1);
    case 'FST_FILES_LIMIT':
      return badRequest(`Too many files in one request (at most ${MAX_FILES}).`, 'image', 'too_many_files');
    case 'FST_FIELDS_LIMIT':
    case 'FST_PARTS_LIMIT':
      return badRequest(`Too many form fields in one request (at most ${MAX_FIELDS}).`, null, 'too_many_fields');
  }
  if (err instanceof ApiError) return err;
  if (err instanceof Error && /Unexpected end of (form|multipart)|Malformed part header|boundary/i.test(err.message)) {
    return badRequest(`The multipart/form-data body could not be parsed: ${err.message}.`, null, 'invalid_multipart');
  }
  return err;
}

/** Reads every part into memory: scalars as strings, files as buffers; the total is capped at limits.uploadBytes. */
export async function readMultipart(req: FastifyRequest, config: Readonly<Config>): Promise<MultipartBody> {
  const fields: Record<string, string | string[]> = Object.create(null);
  const files: MultipartFile[] = [];
  let total = 0;
  let current: string | undefined;
  try {
    for await (const part of req.parts()) {
      current = part.fieldname;
      if (part.type === 'file') {
        const data = await part.toBuffer();
        total += data.length;
        if (total > config.limits.uploadBytes) throw payloadTooLarge(config.limits.uploadBytes);
        files.push({ field: part.fieldname, filename: part.filename || null, mimetype: part.mimetype, data });
      } else {
        const value = typeof part.value === 'string' ? part.value : String(part.value);
        total += value.length;
        if (total > config.limits.uploadBytes) throw payloadTooLarge(config.limits.uploadBytes);
        const prev = fields[part.fieldname];
        fields[part.fieldname] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), value];
      }
    }
  } catch (err) {
    throw multipartError(err, config, current);
  }
  return { fields: { ...fields }, files };
}

/** The facts the contract checks about a file part; width/height when the header can be read (best effort). */
export async function describeUpload(file: MultipartFile): Promise<UploadedFilePart> {
  const dims = await peekDimensions(file.data);
  return { field: file.field, filename: file.filename, mimetype: file.mimetype, bytes: file.data.length, ...(dims ?? {}) };
}

// ---------------------------------------------------------------------------------------------
// Sniffing and checking images.

export type ImageKind = ImageFormat;
const KIND_MIMETYPES = IMAGE_MIME_TYPES;
const sniffImageType = sniffImageFormat;

/** Width and height as displayed: an EXIF orientation of 5-8 (camera held upright) swaps the stored ones. */
function displaySize(m: sharp.Metadata): { width: number; height: number } | undefined {
  if (!m.width || !m.height) return undefined;
  return (m.orientation ?? 1) >= 5 ? { width: m.height, height: m.width } : { width: m.width, height: m.height };
}

async function peekDimensions(buf: Buffer): Promise<{ width: number; height: number } | undefined> {
  if (!sniffImageType(buf)) return undefined;
  try {
    return displaySize(await sharp(buf, { limitInputPixels: false }).metadata());
  } catch {
    return undefined;
  }
}

/** An input image whose header has been read and checked; not decoded yet. */
export interface InspectedImage {
  param: string;
  bytes: Buffer;
  kind: ImageKind;
  /** Size as displayed (EXIF orientation applied, see displaySize). */
  width: number;
  height: number;
  hasAlpha: boolean;
}

/**
 * Sniffs the format (must be one of `allowed` mimetypes), reads the header with sharp and refuses declared sizes
 * over MAX_INPUT_PIXELS, all without decoding pixels.
 */
export async function inspectImage(bytes: Buffer, param: string, allowed: readonly string[]): Promise<InspectedImage> {
  if (bytes.length === 0) throw invalidImage(param, `Invalid file '${param}': the file is empty.`);
  const kind = sniffImageType(bytes);
  if (!kind) {
    throw invalidImage(param, `Invalid file '${param}': the file is not a PNG, JPEG or WebP image.`, 'invalid_image_format');
  }
  if (!allowed.includes(KIND_MIMETYPES[kind])) throw unsupportedMimetype(param, KIND_MIMETYPES[kind], allowed);
  let meta: sharp.Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch {
    throw invalidImage(param, `Invalid file '${param}': the image is corrupt and could not be read.`);
  }
  const size = displaySize(meta);
  if (!size) throw invalidImage(param, `Invalid file '${param}': the image has no readable size.`);
  const { width, height } = size;
  if (width * height > MAX_INPUT_PIXELS || (meta.pages ?? 1) > 1) {
    throw invalidImage(
      param,
      `Invalid file '${param}': the image is ${width}x${height}${(meta.pages ?? 1) > 1 ? ` with ${meta.pages} frames` : ''}; ` +
        `images may have at most ${MAX_INPUT_PIXELS} pixels and one frame.`,
      'image_too_large',
    );
  }
  return { param, bytes, kind, width, height, hasAlpha: meta.hasAlpha === true };
}

function decodeFailed(param: string): ApiError {
  return invalidImage(param, `Invalid file '${param}': the image is corrupt or truncated and could not be decoded.`);
}

/**
 * Decodes all pixels (so corrupt data and headers that lie about the size fail here) and returns them resized
 * to width x height. `flatten` composites transparency onto white for VAEs without an alpha channel.
 */
export async function decodeImage(img: InspectedImage, width: number, height: number, flatten: boolean): Promise<RgbaImage> {
  try {
    // Decode at the declared size first: a file whose data does not fill its header fails here. rotate() with no
    // angle applies the EXIF orientation, so the model sees the image the way every viewer shows it.
    const full = await sharp(img.bytes, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'warning' })
      .rotate()
      .ensureAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (full.info.width !== img.width || full.info.height !== img.height) throw new Error('size mismatch');
    let s = sharp(full.data, { raw: { width: img.width, height: img.height, channels: 4 } });
    if (flatten) s = s.flatten({ background: { r: 255, g: 255, b: 255 } });
    s = s.resize(width, height, { fit: 'fill', kernel: 'lanczos3' }).ensureAlpha();
    const { data, info } = await s.raw().toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch {
    throw decodeFailed(img.param);
  }
}

/** Checks that an image decodes completely, without keeping its pixels (extra edit images). */
export async function verifyDecodes(img: InspectedImage): Promise<void> {
  try {
    const { info } = await sharp(img.bytes, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'warning' })
      .rotate()
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.width !== img.width || info.height !== img.height) throw new Error('size mismatch');
  } catch {
    throw decodeFailed(img.param);
  }
}

/** Refuses a mask that has no alpha channel or whose size differs from the first image. */
export function checkMask(mask: InspectedImage, first: InspectedImage): void {
  if (!mask.hasAlpha) {
    throw invalidImage(
      'mask',
      "Invalid file 'mask': the mask must be a PNG with an alpha channel; fully transparent pixels mark the area to edit.",
      'invalid_mask',
    );
  }
  if (mask.width !== first.width || mask.height !== first.height) {
    throw invalidImage(
      'mask',
      `Invalid file 'mask': the mask must have the same dimensions as the image (${first.width}x${first.height}), but it is ${mask.width}x${mask.height}.`,
      'invalid_mask',
    );
  }
}

/**
 * OpenAI's mask semantics → the engine's: fully transparent mask pixels (alpha 0) are the area to edit (1),
 * everything else is kept (0). Resized to width x height with nearest-neighbour so the edge stays binary.
 */
export async function decodeMask(mask: InspectedImage, width: number, height: number): Promise<Float32Array> {
  let alpha: Buffer;
  try {
    const full = await sharp(mask.bytes, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'warning' })
      .rotate()
      .ensureAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (full.info.width !== mask.width || full.info.height !== mask.height) throw new Error('size mismatch');
    alpha = await sharp(full.data, { raw: { width: mask.width, height: mask.height, channels: 4 } })
      .resize(width, height, { fit: 'fill', kernel: 'nearest' })
      .extractChannel(3)
      .raw()
      .toBuffer();
  } catch {
    throw decodeFailed('mask');
  }
  const out = new Float32Array(width * height);
  for (let i = 0; i < out.length; i++) out[i] = alpha[i] === 0 ? 1 : 0;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Getting the bytes: uploads, data: URLs, https URLs.

export interface UrlFetchOptions {
  /** Allow loopback / private / link-local targets and plain http (development and tests only). */
  allowPrivate: boolean;
  maxBytes: number;
  timeoutMs?: number;
}

/** The bytes behind a parsed edit input; `upload` is the part's data for source 'upload'. */
export async function inputBytes(input: EditImageInput, upload: Buffer | undefined, opts: UrlFetchOptions): Promise<Buffer> {
  switch (input.source) {
    case 'upload':
      if (!upload) throw invalidImage(input.param, `Invalid file '${input.param}': the file is missing.`);
      return upload;
    case 'data_url': {
      const buf = Buffer.from(input.base64, 'base64');
      if (buf.length >= opts.maxBytes) throw fileTooLarge(input.param, opts.maxBytes, buf.length);
      return buf;
    }
    case 'url':
      return fetchImageUrl(input.url, input.param, opts);
  }
}

function urlError(param: string, detail: string, code = 'invalid_image_url'): ApiError {
  return badRequest(`Invalid '${param}': ${detail}`, param, code);
}

const V4_BLOCKED: Array<[number, number]> = [
  // [network, prefix length] — RFC 6890 special-purpose ranges that are not the public internet.
  [0x00000000, 8], // "this" network
  [0x0a000000, 8], // private
  [0x64400000, 10], // carrier-grade NAT
  [0x7f000000, 8], // loopback
  [0xa9fe0000, 16], // link-local
  [0xac100000, 12], // private
  [0xc0000000, 24], // IETF protocol assignments
  [0xc0000200, 24], // TEST-NET-1
  [0xc0a80000, 16], // private
  [0xc6120000, 15], // benchmarking
  [0xc6336400, 24], // TEST-NET-2
  [0xcb007100, 24], // TEST-NET-3
  [0xe0000000, 4], // multicast
  [0xf0000000, 4], // reserved + broadcast
];

function v4ToInt(ip: string): number {
  return ip.split('.').reduce((acc, part) => (acc * 256 + Number(part)) >>> 0, 0);
}

function isBlockedV4(ip: string): boolean {
  const n = v4ToInt(ip);
  return V4_BLOCKED.some(([net, len]) => (len === 0 ? true : n >>> (32 - len) === net >>> (32 - len)));
}

/** 16 bytes of an IPv6 address (accepts '::' compression and a trailing dotted IPv4). */
function v6Bytes(ip: string): number[] {
  let s = ip.toLowerCase().split('%')[0];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const n = v4ToInt(v4[1]);
    s = s.slice(0, -v4[1].length) + `${((n >>> 16) & 0xffff).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...new Array(8 - h.length - t.length).fill('0'), ...t];
  const out: number[] = [];
  for (const g of groups) {
    const v = parseInt(g || '0', 16);
    out.push((v >> 8) & 0xff, v & 0xff);
  }
  return out;
}

function isBlockedV6(ip: string): boolean {
  const b = v6Bytes(ip);
  const embedded = (at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
  const zeroUpTo = (n: number) => b.slice(0, n).every((x) => x === 0);
  if (zeroUpTo(15) && (b[15] === 0 || b[15] === 1)) return true; // :: and ::1
  if (zeroUpTo(10) && b[10] === 0xff && b[11] === 0xff) return isBlockedV4(embedded(12)); // IPv4-mapped
  if (zeroUpTo(12)) return isBlockedV4(embedded(12)); // IPv4-compatible (deprecated)
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b) return isBlockedV4(embedded(12)); // NAT64
  if (b[0] === 0x20 && b[1] === 0x02) return isBlockedV4(embedded(2)); // 6to4
  if ((b[0] & 0xfe) === 0xfc) return true; // unique local fc00::/7
  if (b[0] === 0xfe && (b[1] & 0xc0) === 0x80) return true; // link-local fe80::/10
  if (b[0] === 0xfe && (b[1] & 0xc0) === 0xc0) return true; // site-local fec0::/10 (deprecated)
  if (b[0] === 0xff) return true; // multicast
  if (b[0] === 0x20 && b[1] === 0x01 && b[2] === 0x0d && b[3] === 0xb8) return true; // documentation
  if (b[0] === 0x01 && b[1] === 0x00 && b.slice(2, 8).every((x) => x === 0)) return true; // discard 100::/64
  return false;
}

/** Loopback, private, link-local, multicast and other non-public addresses (IPv4 and IPv6). */
export function isPrivateAddress(ip: string): boolean {
  const family = isIP(ip);
  if (family === 4) return isBlockedV4(ip);
  if (family === 6) return isBlockedV6(ip);
  return true;
}

class BlockedAddressError extends Error {
  constructor(readonly address: string) {
    super(`address ${address} is not public`);
  }
}

/** A dns.lookup that answers only when every resolved address is public (so the connection uses a checked one). */
function guardedLookup(allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { all: true, family: options.family ?? 0 }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      if (!allowPrivate) {
        const bad = addresses.find((a) => isPrivateAddress(a.address));
        if (bad) return callback(new BlockedAddressError(bad.address) as NodeJS.ErrnoException, '', 0);
      }
      if (addresses.length === 0) return callback(new Error(`no address for ${hostname}`) as NodeJS.ErrnoException, '', 0);
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      callback(null, addresses[0].address, addresses[0].family);
    });
  };
}

/** GETs an image URL: https only (http too when private targets are allowed), capped in size and time. */
export async function fetchImageUrl(url: string, param: string, opts: UrlFetchOptions, redirects = 0): Promise<Buffer> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw urlError(param, 'the URL is not valid.');
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && opts.allowPrivate)) {
    throw urlError(param, 'image URLs must use https.');
  }
  if (u.username || u.password) throw urlError(param, 'image URLs must not contain credentials.');
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) && !opts.allowPrivate && isPrivateAddress(host)) {
    throw urlError(param, `the URL points at a private, loopback or link-local address (${host}), which this server does not fetch.`, 'image_url_not_allowed');
  }
  const timeoutMs = opts.timeoutMs ?? URL_FETCH_TIMEOUT_MS;
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise<Buffer>((resolve, reject) => {
    let settled = false;
    const finish = (err: unknown, buf?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(buf!);
    };
    const req = mod.get(
      u,
      { lookup: guardedLookup(opts.allowPrivate), headers: { accept: 'image/png, image/jpeg, image/webp', 'user-agent': 'easel' }, agent: false },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400 && res.headers.location) {
          res.resume();
          if (redirects >= URL_MAX_REDIRECTS) return finish(urlError(param, 'too many redirects.'));
          const next = new URL(res.headers.location, u).toString();
          fetchImageUrl(next, param, opts, redirects + 1).then((b) => finish(null, b), finish);
          return;
        }
        if (status < 200 || status >= 300) {
          res.resume();
          return finish(urlError(param, `fetching the image failed with HTTP ${status}.`));
        }
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared >= opts.maxBytes) {
          res.destroy();
          return finish(fileTooLarge(param, opts.maxBytes, declared));
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size >= opts.maxBytes) {
            res.destroy();
            finish(fileTooLarge(param, opts.maxBytes, size));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => finish(null, Buffer.concat(chunks)));
        res.on('error', () => finish(urlError(param, 'the download was interrupted.')));
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      finish(urlError(param, `fetching the image took longer than ${timeoutMs} ms.`));
    }, timeoutMs);
    req.on('error', (err) => {
      if (err instanceof BlockedAddressError) {
        finish(urlError(param, `the URL resolves to a private, loopback or link-local address (${err.address}), which this server does not fetch.`, 'image_url_not_allowed'));
      } else {
        finish(urlError(param, `the image could not be fetched (${(err as NodeJS.ErrnoException).code ?? err.message}).`));
      }
    });
  });
}
