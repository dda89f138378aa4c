// One writer per blob across processes: two `easel serve --model org/name` starting together on one cache would
// otherwise append to the same blobs/<etag>.incomplete and could rename interleaved bytes into place.
// The lock is .locks/models--org--name/<etag>.easel.lock (beside huggingface_hub's own lock files), holding host and pid.

import { mkdir, open, readFile, rm, stat, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';

/** A holder on another host that has not touched its lock for this long is taken to be gone. */
const REMOTE_STALE_MS = 10 * 60_000;
/** A lock file that never got its content (its writer died at once) is stale after this. */
const EMPTY_STALE_MS = 60_000;
const POLL_MS = 200;

export interface BlobLock {
  /** Marks the holder alive for other hosts (cheap; call it as bytes arrive). */
  touch(): void;
  release(): Promise<void>;
}

interface Holder {
  host: string;
  pid: number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the lock at `path` belongs to no live holder (false when it is gone already: just try again). */
async function isStale(path: string): Promise<boolean> {
  const [text, info] = await Promise.all([readFile(path, 'utf8').catch(() => undefined), stat(path).catch(() => undefined)]);
  if (text === undefined || info === undefined) return false;
  const age = Date.now() - info.mtimeMs;
  let holder: Holder;
  try {
    holder = JSON.parse(text) as Holder;
  } catch {
    return age > EMPTY_STALE_MS;
  }
  if (holder.host === hostname()) return !alive(holder.pid);
  return age > REMOTE_STALE_MS;
}

/** Waits `ms`, or rejects with `signal`'s reason once it aborts (hf.ts waits between retries with it too). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

/** Waits until this process holds the lock at `path` (taking it over from a dead holder). */
export async function lockBlob(path: string, signal?: AbortSignal): Promise<BlobLock> {
  await mkdir(dirname(path), { recursive: true });
  for (;;) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(JSON.stringify({ host: hostname(), pid: process.pid } satisfies Holder));
      await fh.close();
      let touched = Date.now();
      return {
        touch() {
          if (Date.now() - touched < 30_000) return;
          touched = Date.now();
          void utimes(path, new Date(), new Date()).catch(() => undefined);
        },
        release: () => rm(path, { force: true }),
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (await isStale(path)) await rm(path, { force: true });
    else await sleep(POLL_MS, signal);
  }
}
