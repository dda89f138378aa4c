// The data dir's free space against a reserve: below it, work that would write (images, usage rows) is refused with a
// retryable 503 before anything is generated, /readyz says why, and a write that fails on a full disk is a 503 too.
import { statfs as nodeStatfs } from 'node:fs/promises';
import type { FastifyReply } from 'fastify';
import { type ApiError, serviceUnavailable } from '../contract/errors.js';
import type { EncodedImage, ImageStore, PutOptions, StoredImage } from '../storage/types.js';
import { tagRejection } from './metrics.js';

/** What statfs tells us (node:fs's StatFs has more); bigint-free numbers as Node returns them by default. */
export interface FsSpace {
  bavail: number;
  bsize: number;
}

export interface DiskState {
  /** Bytes an unprivileged writer may still use on the fullest of the probed filesystems (null: none exists yet). */
  freeBytes: number | null;
  reserveBytes: number;
  low: boolean;
}

export interface DiskGuardOptions {
  /** Folders whose filesystems hold what the server writes (the data dir, the image store); missing ones are skipped. */
  paths: readonly string[];
  /** Free bytes to keep; 0 turns the check off. */
  reserveBytes: number;
  /** A probe answer is reused for this long (statfs costs ~12 µs on a local disk, far more on a stalled NFS). */
  maxAgeMs?: number;
  /** Default node:fs/promises statfs; tests pass a probe that reports a full disk. */
  statfs?: (path: string) => Promise<FsSpace>;
  /** Monotonic clock in ms for the cache; default performance.now. */
  clock?: () => number;
}

/** How long a client is told to wait when the disk is low: long enough for the sweeper or an operator to free space. */
export const DISK_LOW_RETRY_AFTER_SECONDS = 10;

/** errno codes of a write that failed because the disk (or the user's quota) is full, or the device failed. */
const DISK_FAULTS = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS', 'SQLITE_FULL', 'SQLITE_IOERR']);

export function isDiskFault(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && (DISK_FAULTS.has(code) || code.startsWith('SQLITE_IOERR'));
}

export class DiskGuard {
  readonly reserveBytes: number;
  private readonly paths: readonly string[];
  private readonly maxAgeMs: number;
  private readonly statfs: (path: string) => Promise<FsSpace>;
  private readonly clock: () => number;
  private last: { at: number; state: DiskState } | undefined;
  private probing: Promise<DiskState> | undefined;

  constructor(opts: DiskGuardOptions) {
    this.paths = opts.paths;
    this.reserveBytes = opts.reserveBytes;
    this.maxAgeMs = opts.maxAgeMs ?? 1000;
    this.statfs = opts.statfs ?? nodeStatfs;
    this.clock = opts.clock ?? (() => performance.now());
  }

  /** The current state: the cached probe while fresh, else one probe shared by every caller waiting for it. */
  async state(): Promise<DiskState> {
    if (this.last && this.clock() - this.last.at < this.maxAgeMs) return this.last.state;
    this.probing ??= this.probe().finally(() => {
      this.probing = undefined;
    });
    return this.probing;
  }

  /** Throws the retryable 503 when free space is under the reserve; call before accepting a job. */
  async admit(): Promise<void> {
    const s = await this.state();
    if (!s.low) return;
    const message = `The server is low on disk space (${s.freeBytes} bytes free, ${s.reserveBytes} reserved); retry later.`;
    throw tagRejection(serviceUnavailable(message, DISK_LOW_RETRY_AFTER_SECONDS), 'disk_full');
  }

  /** Forget the cached probe (a write just failed for want of space): the next check looks again. */
  invalidate(): void {
    this.last = undefined;
  }

  private async probe(): Promise<DiskState> {
    let freeBytes: number | null = null;
    for (const path of this.paths) {
      const space = await this.statfs(path).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined; // not created yet: its parent's filesystem is probed too
        throw err;
      });
      if (space) freeBytes = Math.min(freeBytes ?? Number.POSITIVE_INFINITY, space.bavail * space.bsize);
    }
    const low = freeBytes !== null && freeBytes < this.reserveBytes;
    const state = { freeBytes, reserveBytes: this.reserveBytes, low };
    this.last = { at: this.clock(), state };
    return state;
  }
}

/** Refuses a job with a retryable 503 (Retry-After, x-should-retry: true) while the disk is under its reserve. */
export async function admitWrites(guard: DiskGuard, reply: FastifyReply): Promise<void> {
  try {
    await guard.admit();
  } catch (err) {
    reply.header('x-should-retry', 'true'); // the error envelope only ever sends false
    throw err;
  }
}

/**
 * The store as the server uses it: a put that fails on a full disk or a failing device (after the image was generated)
 * is a retryable 503, and the guard looks at the disk again. The store itself leaves no partial file behind.
 */
export function guardStore(store: ImageStore, guard: DiskGuard): ImageStore {
  return {
    async put(img: EncodedImage, opts: PutOptions): Promise<StoredImage> {
      try {
        return await store.put(img, opts);
      } catch (err) {
        if (!isDiskFault(err)) throw err;
        guard.invalidate();
        throw storageFault(err);
      }
    },
    get: (id) => store.get(id),
    // Optional capabilities pass through, so a guarded store streams (and presigns) like the one it wraps.
    ...(store.open ? { open: store.open.bind(store) } : {}),
    ...(store.presign ? { presign: store.presign.bind(store) } : {}),
    delete: (id) => store.delete(id),
    sweep: (now) => store.sweep(now),
    close: () => store.close(),
  };
}

function storageFault(err: unknown): ApiError {
  const code = (err as { code: string }).code;
  return tagRejection(
    serviceUnavailable(`The image could not be stored (${code}); retry later.`, DISK_LOW_RETRY_AFTER_SECONDS),
    'disk_full',
  );
}
