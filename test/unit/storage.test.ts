// Tests for the image store (filesystem), signed image URLs, the TTL sweeper and the data dir's disk faults (free-space
// guard, failing writes, usage rows retried), on real temp directories. Time is moved with injected clocks, not sleeps.

import * as nodeFs from 'node:fs/promises';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiError } from '../../src/contract/errors.js';
import { openSqliteDb, type SqliteDb } from '../../src/db/index.js';
import type { Db, UsageRecord } from '../../src/db/types.js';
import { DiskGuard, type FsSpace, guardStore } from '../../src/server/disk.js';
import { type RecorderLogger, UsageRecorder } from '../../src/server/records.js';
import { FsImageStore, type StoreFs } from '../../src/storage/fs-store.js';
import { signImageUrl, verifyImageUrl } from '../../src/storage/signing.js';
import { startSweeper } from '../../src/storage/sweeper.js';
import { IMAGE_ID_PATTERN, isImageId, newImageId } from '../../src/storage/types.js';
import { imageStoreContract } from '../contract/image-store.js';

const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
const JPEG = Buffer.from('ffd8ffe000104a464946', 'hex');
const WEBP = Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(4), Buffer.from('WEBPVP8 ')]);

let root: string;
let clock: number;
const now = () => clock;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'easel-storage-'));
  clock = 1_700_000_000_000;
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('image ids', () => {
  it('are 22-char base64url and distinct', () => {
    const ids = new Set(Array.from({ length: 1000 }, newImageId));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(IMAGE_ID_PATTERN);
    expect(isImageId('../../etc/passwd')).toBe(false);
    expect(isImageId('a'.repeat(21))).toBe(false);
    expect(isImageId('a'.repeat(22) + '\n')).toBe(false);
  });
});

describe('FsImageStore', () => {
  it('creates its directory on first put and round-trips bytes and metadata', async () => {
    const dir = join(root, 'nested', 'images');
    const store = new FsImageStore({ dir, now });
    const meta = await store.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 3600 });
    expect(meta.id).toMatch(IMAGE_ID_PATTERN);
    expect(meta).toMatchObject({
      contentType: 'image/png',
      ext: 'png',
      byteLength: PNG.length,
      createdAt: clock,
      expiresAt: clock + 3_600_000,
    });
    expect((await readdir(dir)).sort()).toEqual([`${meta.id}.json`, `${meta.id}.png`]);

    const got = await store.get(meta.id);
    expect(got).toBeDefined();
    expect(got!.bytes.equals(PNG)).toBe(true);
    expect(got).toMatchObject(meta);

    const j = await store.put({ bytes: JPEG, contentType: 'image/jpeg' }, { ttlSeconds: 60 });
    const w = await store.put({ bytes: WEBP, contentType: 'image/webp' }, { ttlSeconds: 60 });
    expect(j.ext).toBe('jpeg');
    expect(w.ext).toBe('webp');
    expect((await store.get(j.id))!.bytes.equals(JPEG)).toBe(true);
    expect((await store.get(w.id))!.contentType).toBe('image/webp');

    await store.delete(meta.id);
    expect(await store.get(meta.id)).toBeUndefined();
    expect((await readdir(dir)).filter((n) => n.startsWith(meta.id))).toEqual([]);
    // Deleting again, or an id never stored, is a no-op.
    await store.delete(meta.id);
    await store.delete(newImageId());
    expect(await store.get(newImageId())).toBeUndefined();
    await store.close();
  });

  it('rejects bad input to put', async () => {
    const store = new FsImageStore({ dir: root, now });
    await expect(store.put({ bytes: PNG, contentType: 'image/gif' as never }, { ttlSeconds: 1 })).rejects.toThrow();
    await expect(store.put({ bytes: 'x' as never, contentType: 'image/png' }, { ttlSeconds: 1 })).rejects.toThrow();
    await expect(store.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 0 })).rejects.toThrow();
    await expect(store.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: NaN })).rejects.toThrow();
    expect(await readdir(root)).toEqual([]);
  });

  it('hides an image once the injected clock passes its expiry', async () => {
    const store = new FsImageStore({ dir: root, now });
    const meta = await store.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 60 });
    clock += 59_999;
    expect(await store.get(meta.id)).toBeDefined();
    clock += 1;
    expect(await store.get(meta.id)).toBeUndefined();
    // Still on disk until swept.
    expect(await readdir(root)).toHaveLength(2);
  });

  it('sweep deletes expired images and only those', async () => {
    const store = new FsImageStore({ dir: root, now });
    const short = await Promise.all([1, 2, 3].map(() => store.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 10 })));
    const long = await Promise.all([1, 2].map(() => store.put({ bytes: JPEG, contentType: 'image/jpeg' }, { ttlSeconds: 1000 })));
    // A file that is not ours must survive.
    await writeFile(join(root, 'README.txt'), 'keep me');

    expect(await store.sweep()).toBe(0);
    expect(await store.sweep(clock + 10_000)).toBe(3);
    const left = (await readdir(root)).sort();
    expect(left).toEqual(['README.txt', ...long.flatMap((m) => [`${m.id}.jpeg`, `${m.id}.json`])].sort());
    for (const m of short) expect(await store.get(m.id)).toBeUndefined();
    for (const m of long) expect((await store.get(m.id))!.bytes.equals(JPEG)).toBe(true);
    expect(await store.sweep(clock + 10_000)).toBe(0);

    // The store's own clock is the default.
    clock += 1_000_000;
    expect(await store.sweep()).toBe(2);
    expect(await readdir(root)).toEqual(['README.txt']);
  });

  it('sweep on a store that never stored anything returns 0', async () => {
    const store = new FsImageStore({ dir: join(root, 'never-created'), now });
    expect(await store.sweep()).toBe(0);
  });

  it('sweep removes crash leftovers only after the grace period', async () => {
    const store = new FsImageStore({ dir: root, now, orphanGraceMs: 1000 });
    await mkdir(root, { recursive: true });
    const orphanId = newImageId();
    await writeFile(join(root, `${orphanId}.png`), PNG); // image whose sidecar was never written
    await writeFile(join(root, '.tmp-deadbeef'), 'partial');
    const realNow = Date.now();
    expect(await store.sweep(realNow)).toBe(0);
    expect((await readdir(root)).sort()).toEqual(['.tmp-deadbeef', `${orphanId}.png`].sort());
    await store.sweep(realNow + 60_000);
    expect(await readdir(root)).toEqual([]);
  });

  it('never touches paths outside its directory for traversal-shaped ids', async () => {
    const dir = join(root, 'images');
    const store = new FsImageStore({ dir, now });
    await store.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 60 });
    // A victim file next to the store that a naive join(dir, id + '.json') would reach.
    const victim = join(root, 'victim.json');
    const victimPng = join(root, 'victim.png');
    await writeFile(
      victim,
      JSON.stringify({ v: 1, id: '../victim', contentType: 'image/png', ext: 'png', byteLength: 3, createdAt: 0, expiresAt: 9e15 }),
    );
    await writeFile(victimPng, 'abc');
    for (const id of [
      '../victim',
      '..%2Fvictim',
      '/etc/passwd',
      '',
      '.',
      '..',
      'a/b',
      'x'.repeat(23),
      'x'.repeat(21) + '.',
      'x'.repeat(22) + '/..',
    ]) {
      expect(await store.get(id)).toBeUndefined();
      await store.delete(id);
    }
    expect(await readFile(victimPng, 'utf8')).toBe('abc');
    expect(await readFile(victim, 'utf8')).toContain('../victim');
  });

  it('ignores a sidecar whose contents do not match its name', async () => {
    const store = new FsImageStore({ dir: root, now });
    const a = await store.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 60 });
    const forged = newImageId();
    await writeFile(join(root, `${forged}.json`), await readFile(join(root, `${a.id}.json`)));
    await writeFile(join(root, `${forged}.png`), PNG);
    expect(await store.get(forged)).toBeUndefined();
    await writeFile(join(root, `${a.id}.json`), '{not json');
    expect(await store.get(a.id)).toBeUndefined();
  });

  it('handles concurrent puts without collisions or torn files', async () => {
    const store = new FsImageStore({ dir: root, now });
    const inputs = Array.from({ length: 64 }, (_, i) => Buffer.concat([PNG, Buffer.from(`image-${i}-`.repeat(100 + i))]));
    const metas = await Promise.all(inputs.map((bytes) => store.put({ bytes, contentType: 'image/png' }, { ttlSeconds: 60 })));
    expect(new Set(metas.map((m) => m.id)).size).toBe(inputs.length);
    const got = await Promise.all(metas.map((m) => store.get(m.id)));
    for (const [i, g] of got.entries()) expect(g!.bytes.equals(inputs[i])).toBe(true);
    const names = await readdir(root);
    expect(names).toHaveLength(inputs.length * 2);
    expect(names.some((n) => n.startsWith('.tmp-'))).toBe(false);
  });

  it('refuses work after close', async () => {
    const store = new FsImageStore({ dir: root, now });
    await store.close();
    await expect(store.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 1 })).rejects.toThrow(/closed/);
  });
});

describe('signed image URLs', () => {
  const secret = 'test-secret-0123456789';
  const id = 'AbCdEfGhIjKlMnOpQrStUv';
  const expiresAt = 1_700_000_600_000;

  function parts(url: string) {
    const u = new URL(url);
    const m = /^\/v1\/images\/files\/([A-Za-z0-9_-]+)\.(\w+)$/.exec(u.pathname);
    if (!m) throw new Error(`unexpected path ${u.pathname}`);
    return { id: m[1], ext: m[2], expires: u.searchParams.get('expires') ?? undefined, sig: u.searchParams.get('sig') ?? undefined };
  }

  it('has the documented shape', () => {
    const url = signImageUrl({ baseUrl: 'http://127.0.0.1:8080/', id, ext: 'png', expiresAt, secret });
    expect(url).toMatch(
      /^http:\/\/127\.0\.0\.1:8080\/v1\/images\/files\/AbCdEfGhIjKlMnOpQrStUv\.png\?expires=1700000600&sig=[A-Za-z0-9_-]{43}$/,
    );
  });

  it('verifies ok before expiry and expired at and after it', () => {
    const p = parts(signImageUrl({ baseUrl: 'https://easel.example', id, ext: 'webp', expiresAt, secret }));
    expect(verifyImageUrl({ ...p, secret, now: () => expiresAt - 1 })).toBe('ok');
    expect(verifyImageUrl({ ...p, secret, now: () => expiresAt })).toBe('expired');
    expect(verifyImageUrl({ ...p, secret, now: () => expiresAt + 3_600_000 })).toBe('expired');
    // expires given as a number works too.
    expect(verifyImageUrl({ ...p, expires: Number(p.expires), secret, now: () => 0 })).toBe('ok');
  });

  it('rejects tampered URLs', () => {
    const p = parts(signImageUrl({ baseUrl: 'https://easel.example', id, ext: 'png', expiresAt, secret }));
    const at = () => expiresAt - 1000;
    const other = 'ZbCdEfGhIjKlMnOpQrStUv';
    expect(verifyImageUrl({ ...p, id: other, secret, now: at })).toBe('bad_signature');
    expect(verifyImageUrl({ ...p, ext: 'jpeg', secret, now: at })).toBe('bad_signature');
    expect(verifyImageUrl({ ...p, expires: String(Number(p.expires) + 3600), secret, now: at })).toBe('bad_signature');
    expect(verifyImageUrl({ ...p, expires: '0' + p.expires, secret, now: at })).toBe('bad_signature');
    // A forged extension of an expired URL is a bad signature, not 'expired'.
    expect(verifyImageUrl({ ...p, expires: String(Number(p.expires) - 1), secret, now: () => expiresAt + 1e7 })).toBe('bad_signature');
    const flipped = (p.sig![0] === 'A' ? 'B' : 'A') + p.sig!.slice(1);
    expect(verifyImageUrl({ ...p, sig: flipped, secret, now: at })).toBe('bad_signature');
    expect(verifyImageUrl({ ...p, sig: p.sig!.slice(0, -1), secret, now: at })).toBe('bad_signature');
    expect(verifyImageUrl({ ...p, sig: p.sig + '=', secret, now: at })).toBe('bad_signature');
    expect(verifyImageUrl({ ...p, sig: undefined, secret, now: at })).toBe('bad_signature');
    expect(verifyImageUrl({ ...p, expires: undefined, secret, now: at })).toBe('bad_signature');
    expect(verifyImageUrl({ ...p, expires: '-1', secret, now: at })).toBe('bad_signature');
    expect(verifyImageUrl({ ...p, secret: secret + 'x', now: at })).toBe('bad_signature');
    expect(verifyImageUrl({ ...p, id: '../' + id.slice(3), secret, now: at })).toBe('bad_signature');
    expect(verifyImageUrl({ ...p, secret, now: at })).toBe('ok');
  });

  it('refuses an empty secret and invalid ids when signing', () => {
    expect(() => signImageUrl({ baseUrl: 'http://x', id, ext: 'png', expiresAt, secret: '' })).toThrow();
    expect(() => signImageUrl({ baseUrl: 'http://x', id: '../etc', ext: 'png', expiresAt, secret })).toThrow();
    expect(() => verifyImageUrl({ id, ext: 'png', expires: '1', sig: 'x', secret: Buffer.alloc(0), now: () => 0 })).toThrow();
  });

  it('works end to end with a stored image', async () => {
    const store = new FsImageStore({ dir: root, now });
    const meta = await store.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 3600 });
    const url = signImageUrl({ baseUrl: 'http://localhost:1', id: meta.id, ext: meta.ext, expiresAt: meta.expiresAt, secret });
    const p = parts(url);
    expect(verifyImageUrl({ ...p, secret, now })).toBe('ok');
    expect((await store.get(p.id))!.ext).toBe(p.ext);
    clock = meta.expiresAt;
    expect(verifyImageUrl({ ...p, secret, now })).toBe('expired');
    expect(await store.get(p.id)).toBeUndefined();
  });
});

describe('startSweeper', () => {
  it('sweeps on its timer with the injected clock and stops', async () => {
    const store = new FsImageStore({ dir: root, now: Date.now });
    const meta = await store.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 1 });
    let fake = Date.now();
    const sweeper = startSweeper(store, { intervalMs: 5, now: () => fake });
    await new Promise((r) => setTimeout(r, 30));
    expect(await readdir(root)).toHaveLength(2); // not expired by the sweeper's clock yet
    fake += 2000;
    for (let i = 0; i < 200 && (await readdir(root)).length > 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(await readdir(root)).toEqual([]);
    await sweeper.stop();
    // After stop, nothing is swept.
    await store.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 1 });
    fake += 10_000;
    await new Promise((r) => setTimeout(r, 30));
    expect(await readdir(root)).toHaveLength(2);
    expect(await sweeper.sweepNow()).toBe(0);
    expect(meta.id).toMatch(IMAGE_ID_PATTERN);
  });

  it('logs a failing sweep instead of throwing', async () => {
    const notADir = join(root, 'file');
    await writeFile(notADir, 'x');
    const store = new FsImageStore({ dir: notADir });
    const errors: unknown[] = [];
    const sweeper = startSweeper(store, { intervalMs: 60_000, logger: { error: (obj) => errors.push(obj) } });
    expect(await sweeper.sweepNow()).toBe(0);
    expect(errors).toHaveLength(1);
    expect(String((errors[0] as { err: Error }).err)).toMatch(/ENOTDIR/);
    await sweeper.stop();
  });
});

describe('crash leftovers', () => {
  it('the sweeper sweeps once at start: expired images and stale temp files go, a fresh temp file stays', async () => {
    const store = new FsImageStore({ dir: root }); // default grace: 5 minutes
    const expired = await store.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 1 });
    const kept = await store.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 3600 });
    await writeFile(join(root, '.tmp-stale'), 'half an image');
    const tenMinutesAgo = (Date.now() - 10 * 60 * 1000) / 1000;
    await utimes(join(root, '.tmp-stale'), tenMinutesAgo, tenMinutesAgo);
    await writeFile(join(root, '.tmp-fresh'), 'a write in progress');
    const sweeper = startSweeper(store, { intervalMs: 3_600_000, now: () => Date.now() + 2000 });
    expect(await sweeper.initial).toBe(1);
    expect((await readdir(root)).sort()).toEqual(['.tmp-fresh', `${kept.id}.json`, `${kept.id}.png`].sort());
    expect(expired.id).not.toBe(kept.id);
    await sweeper.stop();
  });

  it('sweepNow joins a sweep in progress instead of reporting 0', async () => {
    const store = new FsImageStore({ dir: root, now });
    await store.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 1 });
    const sweeper = startSweeper(store, { intervalMs: 3_600_000, now: () => clock + 1000 });
    expect(await sweeper.sweepNow()).toBe(1);
    await sweeper.stop();
  });
});

const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28 });

/** node:fs/promises whose writeFile writes part of the data, then fails like a full disk, from the `failFrom`-th call on. */
function fullDiskFs(failFrom: number): StoreFs & { writes: number } {
  const fs = {
    ...nodeFs,
    writes: 0,
    async writeFile(path: Parameters<typeof nodeFs.writeFile>[0], data: Buffer | string, opts?: Parameters<typeof nodeFs.writeFile>[2]) {
      if (++fs.writes < failFrom) return nodeFs.writeFile(path, data, opts);
      await nodeFs.writeFile(path, typeof data === 'string' ? data.slice(0, 3) : data.subarray(0, 3), opts);
      throw enospc();
    },
  };
  return fs as StoreFs & { writes: number };
}

describe('write faults', () => {
  it('a put that hits a full disk leaves no partial file, whether the image or its sidecar fails', async () => {
    for (const failFrom of [1, 2]) {
      const dir = join(root, `fail-${failFrom}`);
      const store = new FsImageStore({ dir, now, fs: fullDiskFs(failFrom) });
      await expect(store.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 60 })).rejects.toMatchObject({ code: 'ENOSPC' });
      expect(await readdir(dir)).toEqual([]);
    }
  });

  it('through the server guard the fault is a retryable 503 and the disk is probed again', async () => {
    let probes = 0;
    const guard = new DiskGuard({
      paths: [root],
      reserveBytes: 1,
      statfs: async () => {
        probes++;
        return { bavail: 100, bsize: 4096 };
      },
      clock: () => 0,
    });
    await guard.admit();
    const store = guardStore(new FsImageStore({ dir: root, now, fs: fullDiskFs(1) }), guard);
    const err = await store.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 60 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 503, shouldRetry: true, retryAfterSeconds: 10, code: 'service_unavailable' });
    expect(await readdir(root)).toEqual([]);
    await guard.state();
    expect(probes).toBe(2); // the cached probe was dropped by the fault
  });
});

describe('DiskGuard', () => {
  function probe(space: Record<string, FsSpace | 'missing'>) {
    const calls: string[] = [];
    const statfs = async (path: string) => {
      calls.push(path);
      const s = space[path];
      if (s === 'missing') throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
      return s;
    };
    return { calls, statfs };
  }

  it('refuses below the reserve with a retryable 503 and recovers by itself once space returns', async () => {
    let t = 0;
    const space = { '/data': { bavail: 10, bsize: 4096 } };
    const { calls, statfs } = probe(space);
    const guard = new DiskGuard({ paths: ['/data'], reserveBytes: 64 * 1024, statfs, clock: () => t });
    expect(await guard.state()).toEqual({ freeBytes: 40_960, reserveBytes: 65_536, low: true });
    const err = await guard.admit().catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 503, shouldRetry: true, retryAfterSeconds: 10, code: 'service_unavailable' });
    expect((err as ApiError).message).toMatch(/disk space.*40960 bytes free, 65536 reserved/);
    space['/data'] = { bavail: 1000, bsize: 4096 };
    t = 999;
    await expect(guard.admit()).rejects.toBeInstanceOf(ApiError); // the cached answer, not another statfs
    expect(calls).toHaveLength(1);
    t = 1000;
    await guard.admit();
    expect(await guard.state()).toMatchObject({ freeBytes: 4_096_000, low: false });
    expect(calls).toHaveLength(2);
  });

  it('takes the fullest filesystem, skips folders not made yet, and shares one probe between callers', async () => {
    const { calls, statfs } = probe({
      '/data': { bavail: 50, bsize: 1024 },
      '/data/images': 'missing',
      '/mnt/img': { bavail: 3, bsize: 4096 },
    });
    const guard = new DiskGuard({ paths: ['/data', '/data/images', '/mnt/img'], reserveBytes: 0, statfs, clock: () => 0 });
    const states = await Promise.all([guard.state(), guard.state(), guard.state()]);
    expect(states.map((s) => s.freeBytes)).toEqual([12_288, 12_288, 12_288]);
    expect(states[0].low).toBe(false); // a reserve of 0 turns the check off
    expect(calls).toEqual(['/data', '/data/images', '/mnt/img']);
  });
});

const ROW: UsageRecord = {
  requestId: 'req_disk_full',
  keyId: null,
  endpoint: '/v1/images/generations',
  model: 'gpt-image-1',
  servedModel: 'easel-default',
  size: '1024x1024',
  n: 1,
  quality: 'low',
  inputTokens: 7,
  outputTokens: 272,
  user: 'u-1',
  durationMs: 1234,
  images: 1,
  status: 200,
  errorCode: null,
  prompt: null,
  createdAt: 1_700_000_000_000,
};

/** The real SQLite database, whose usage inserts fail like a full disk (SQLITE_FULL) while `failures` lasts. */
function fullDatabase(db: SqliteDb, failures: { left: number }): Db {
  return new Proxy(db, {
    get(target, key) {
      if (key === 'recordUsage') {
        return async (r: UsageRecord) => {
          if (failures.left-- > 0) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
          return target.recordUsage(r);
        };
      }
      const value = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

function capture(): RecorderLogger & { lines: { level: string; obj: Record<string, unknown>; msg: string }[] } {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  return {
    lines,
    warn: (obj, msg) => lines.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
    error: (obj, msg) => lines.push({ level: 'error', obj: obj as Record<string, unknown>, msg }),
  };
}

async function settled(recorder: UsageRecorder): Promise<void> {
  for (let i = 0; i < 500 && recorder.pending > 0; i++) await new Promise((r) => setTimeout(r, 2));
  expect(recorder.pending).toBe(0);
}

describe('UsageRecorder', () => {
  let db: SqliteDb;
  beforeEach(() => {
    db = openSqliteDb({ path: join(root, 'easel.sqlite') });
  });
  afterEach(async () => {
    await db.close();
  });

  it('a row that fails with SQLITE_FULL is retried off the request path and lands', async () => {
    const log = capture();
    const recorder = new UsageRecorder(fullDatabase(db, { left: 2 }), () => log, { retryDelaysMs: [1, 1, 1] });
    await recorder.record(ROW);
    expect(await db.listUsage()).toEqual([]); // the request did not wait for the retries
    await settled(recorder);
    expect(await db.listUsage()).toEqual([ROW]);
    expect(recorder.dropped).toBe(0);
    expect(log.lines.map((l) => l.level)).toEqual(['warn', 'warn']);
  });

  it('a row that keeps failing is logged at error level whole, for replay, and counted', async () => {
    const log = capture();
    const recorder = new UsageRecorder(fullDatabase(db, { left: Infinity }), () => log, { retryDelaysMs: [1, 1] });
    await recorder.record(ROW);
    await settled(recorder);
    expect(recorder.dropped).toBe(1);
    const errors = log.lines.filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0].obj).toMatchObject({ usageRecord: ROW, attempts: 3 });
    expect(String(errors[0].obj.err)).toMatch(/database or disk is full/);
    expect(await db.listUsage()).toEqual([]);
  });

  it('close writes the rows still waiting for a retry, and drops (logged) what still fails', async () => {
    const log = capture();
    const failures = { left: 1 };
    const recorder = new UsageRecorder(fullDatabase(db, failures), () => log, { retryDelaysMs: [3_600_000] });
    await recorder.record(ROW);
    await recorder.record({ ...ROW, requestId: 'req_second' }); // written at once
    expect(recorder.pending).toBe(1);
    await recorder.close();
    expect((await db.listUsage()).map((r) => r.requestId).sort()).toEqual(['req_disk_full', 'req_second']);
    failures.left = 1;
    await recorder.record({ ...ROW, requestId: 'req_after_close' });
    expect(recorder.dropped).toBe(1);
    expect(log.lines.at(-1)).toMatchObject({ level: 'error', obj: { usageRecord: { requestId: 'req_after_close' } } });
  });
});

describe('startSweeper with interval 0', () => {
  it('never sweeps (a bucket lifecycle rule does the work instead)', async () => {
    const store = new FsImageStore({ dir: join(root, 'images'), now });
    await store.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 1 });
    clock += 5_000;
    const sweeper = startSweeper(store, { intervalMs: 0, now });
    expect(await sweeper.initial).toBe(0);
    expect(await sweeper.sweepNow()).toBe(0);
    await sweeper.stop();
    expect(await store.sweep()).toBe(1); // it was there to sweep all along
    expect(() => startSweeper(store, { intervalMs: -1 })).toThrow(RangeError);
  });
});

// The semantics every ImageStore shares (test/contract/image-store.ts); the tests above are about files on a disk.
imageStoreContract('filesystem', async (clock) => new FsImageStore({ dir: join(root, 'contract-images'), now: clock }));
