// Default ImageStore: images on the local filesystem, one image file plus a small JSON sidecar per id.
// Writes are atomic (temp file + rename, the temp file removed on any fault) and ids are checked before any path is built.

import { randomBytes } from 'node:crypto';
import * as nodeFs from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { IMAGE_EXTENSIONS, IMAGE_FORMATS } from '../imaging/formats.js';
import {
  type EncodedImage,
  extForContentType,
  type ImageStore,
  isImageContentType,
  isImageExt,
  isImageId,
  newImageId,
  type OpenedImage,
  type PutOptions,
  type StoredImage,
  type StoredImageWithBytes,
} from './types.js';

/** The filesystem calls the store makes; node:fs/promises by default, a faulty one in tests (ENOSPC, EIO). */
export type StoreFs = Pick<typeof nodeFs, 'mkdir' | 'readdir' | 'readFile' | 'rename' | 'rm' | 'stat' | 'writeFile'>;

/** Default age after which a `.tmp-` file or a sidecar-less image counts as a crash leftover: 5 minutes. */
export const DEFAULT_LEFTOVER_GRACE_MS = 5 * 60 * 1000;

export interface FsImageStoreOptions {
  /** Directory holding the images; created (recursively) on first use. */
  dir: string;
  /** Clock in epoch milliseconds; injected so tests can move time. Default Date.now. */
  now?: () => number;
  /**
   * Temp files and image files without a sidecar older than this are removed by `sweep` (left behind by a crash
   * mid-write); younger ones may be a write in progress. Default DEFAULT_LEFTOVER_GRACE_MS.
   */
  orphanGraceMs?: number;
  /** Filesystem calls; default node:fs/promises. */
  fs?: StoreFs;
}

/**
 * What a store's put() checks before writing anything (a Buffer, a known image type, a positive finite TTL), and the
 * record of the image it is about to store: a new id, made at `createdAt`, expiring ttlSeconds later. Shared with
 * S3ImageStore; `store` names the caller in the errors.
 */
export function newStoredImage(store: string, img: EncodedImage, opts: PutOptions, createdAt: number): StoredImage {
  if (!Buffer.isBuffer(img?.bytes)) throw new TypeError(`${store}.put: bytes must be a Buffer`);
  if (!isImageContentType(img.contentType)) {
    throw new TypeError(`${store}.put: unsupported content type ${String(img.contentType)}`);
  }
  const ttl = opts?.ttlSeconds;
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0) {
    throw new RangeError(`${store}.put: ttlSeconds must be a positive finite number`);
  }
  return {
    id: newImageId(),
    contentType: img.contentType,
    ext: extForContentType(img.contentType),
    byteLength: img.bytes.length,
    createdAt,
    expiresAt: createdAt + Math.round(ttl * 1000),
  };
}

const SIDECAR_EXT = '.json';
const TMP_PREFIX = '.tmp-';

interface Sidecar {
  v: 1;
  id: string;
  contentType: StoredImage['contentType'];
  ext: StoredImage['ext'];
  byteLength: number;
  createdAt: number;
  expiresAt: number;
}

function parseSidecar(text: string, id: string): StoredImage | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const s = raw as Partial<Sidecar>;
  if (
    s.v !== 1 ||
    s.id !== id ||
    !isImageContentType(s.contentType) ||
    !isImageExt(s.ext) ||
    s.ext !== extForContentType(s.contentType) ||
    !Number.isSafeInteger(s.byteLength) ||
    !Number.isFinite(s.createdAt) ||
    !Number.isFinite(s.expiresAt)
  ) {
    return undefined;
  }
  return {
    id,
    contentType: s.contentType,
    ext: s.ext,
    byteLength: s.byteLength as number,
    createdAt: s.createdAt as number,
    expiresAt: s.expiresAt as number,
  };
}

function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === 'ENOENT';
}

export class FsImageStore implements ImageStore {
  readonly dir: string;
  private readonly now: () => number;
  private readonly orphanGraceMs: number;
  private readonly fs: StoreFs;
  private ready: Promise<void> | undefined;
  private closed = false;

  constructor(opts: FsImageStoreOptions) {
    if (typeof opts.dir !== 'string' || opts.dir.length === 0) throw new TypeError('FsImageStore: dir is required');
    this.dir = opts.dir;
    this.now = opts.now ?? Date.now;
    this.orphanGraceMs = opts.orphanGraceMs ?? DEFAULT_LEFTOVER_GRACE_MS;
    this.fs = opts.fs ?? nodeFs;
  }

  private ensureDir(): Promise<void> {
    if (!this.ready) {
      this.ready = this.fs.mkdir(this.dir, { recursive: true, mode: 0o700 }).then(
        () => undefined,
        (err: unknown) => {
          this.ready = undefined; // let a later call retry
          throw err;
        },
      );
    }
    return this.ready;
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('FsImageStore is closed');
  }

  private sidecarPath(id: string): string {
    return join(this.dir, id + SIDECAR_EXT);
  }

  private imagePath(id: string, ext: string): string {
    return join(this.dir, `${id}.${ext}`);
  }

  private async writeAtomic(path: string, data: Buffer | string): Promise<void> {
    const tmp = join(this.dir, `${TMP_PREFIX}${randomBytes(8).toString('hex')}`);
    try {
      await this.fs.writeFile(tmp, data, { mode: 0o600, flag: 'wx' });
      await this.fs.rename(tmp, path);
    } catch (err) {
      // A full disk or an I/O error may leave part of the file: it never stays behind (the sweep is a second net).
      await this.fs.rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  async put(img: EncodedImage, opts: PutOptions): Promise<StoredImage> {
    this.checkOpen();
    const meta = newStoredImage('FsImageStore', img, opts, this.now());
    await this.ensureDir();
    // Image first, sidecar last: an id is only visible once its sidecar exists, so readers never see half an image.
    await this.writeAtomic(this.imagePath(meta.id, meta.ext), img.bytes);
    const sidecar: Sidecar = { v: 1, ...meta };
    try {
      await this.writeAtomic(this.sidecarPath(meta.id), JSON.stringify(sidecar));
    } catch (err) {
      await this.fs.rm(this.imagePath(meta.id, meta.ext), { force: true }).catch(() => undefined);
      throw err;
    }
    return meta;
  }

  private async readMeta(id: string): Promise<StoredImage | undefined> {
    let text: string;
    try {
      text = await this.fs.readFile(this.sidecarPath(id), 'utf8');
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    return parseSidecar(text, id);
  }

  async get(id: string, ext?: string): Promise<StoredImageWithBytes | undefined> {
    this.checkOpen();
    if (!isImageId(id)) return undefined; // never build a path from an untrusted string
    const meta = await this.readMeta(id);
    if (!meta || meta.expiresAt <= this.now() || (ext !== undefined && ext !== meta.ext)) return undefined;
    let bytes: Buffer;
    try {
      bytes = await this.fs.readFile(this.imagePath(id, meta.ext));
    } catch (err) {
      if (isNotFound(err)) return undefined; // deleted between the two reads
      throw err;
    }
    return { ...meta, bytes };
  }

  /** The image read whole (they are small, and a local read does not stall) and handed out as a stream. */
  async open(id: string, ext?: string): Promise<OpenedImage | undefined> {
    const img = await this.get(id, ext);
    if (!img) return undefined;
    const { bytes, ...meta } = img;
    return { ...meta, body: Readable.from([bytes]) };
  }

  async delete(id: string): Promise<void> {
    this.checkOpen();
    if (!isImageId(id)) return;
    const meta = await this.readMeta(id);
    // Sidecar first so the id disappears at once; then the image under whichever extension it has.
    await this.fs.rm(this.sidecarPath(id), { force: true });
    const exts = meta ? [meta.ext] : IMAGE_FORMATS.map((f) => IMAGE_EXTENSIONS[f]);
    await Promise.all(exts.map((e) => this.fs.rm(this.imagePath(id, e), { force: true })));
  }

  async sweep(now?: number): Promise<number> {
    this.checkOpen();
    const t = now ?? this.now();
    let names: string[];
    try {
      names = await this.fs.readdir(this.dir);
    } catch (err) {
      if (isNotFound(err)) return 0; // nothing stored yet
      throw err;
    }
    const ids = new Set<string>();
    const images = new Map<string, string>(); // id -> image file name
    const temps: string[] = [];
    for (const name of names) {
      if (name.startsWith(TMP_PREFIX)) {
        temps.push(name);
        continue;
      }
      const dot = name.indexOf('.');
      if (dot < 0) continue;
      const id = name.slice(0, dot);
      const ext = name.slice(dot + 1);
      if (!isImageId(id)) continue; // not ours: leave it alone
      if (name.endsWith(SIDECAR_EXT) && ext === 'json') ids.add(id);
      else if (isImageExt(ext)) images.set(id, name);
    }

    let deleted = 0;
    for (const id of ids) {
      const meta = await this.readMeta(id);
      if (meta && meta.expiresAt > t) continue;
      // Expired, or a sidecar we cannot read (corrupt): either way the image can never be served again.
      await this.delete(id);
      images.delete(id);
      deleted++;
    }

    // Crash leftovers: image files with no sidecar and temp files, once older than the grace period.
    const leftovers = [...temps, ...[...images].filter(([id]) => !ids.has(id)).map(([, name]) => name)];
    for (const name of leftovers) {
      const p = join(this.dir, name);
      try {
        const st = await this.fs.stat(p);
        if (t - st.mtimeMs > this.orphanGraceMs) await this.fs.rm(p, { force: true });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return deleted;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

export function createFsImageStore(opts: FsImageStoreOptions): FsImageStore {
  return new FsImageStore(opts);
}
