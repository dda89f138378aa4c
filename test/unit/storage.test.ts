// Tests for the image store (filesystem), signed image URLs and the TTL sweeper, on real temp directories.
// Time is moved with injected clocks, never with sleeps, except the sweeper's own timer test.

import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsImageStore } from '../../src/storage/fs-store.js';
import { signImageUrl, verifyImageUrl } from '../../src/storage/signing.js';
import { startSweeper } from '../../src/storage/sweeper.js';
import { IMAGE_ID_PATTERN, isImageId, newImageId } from '../../src/storage/types.js';

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
