// The ImageStore contract: one suite every store must pass (the filesystem in test/unit/storage.test.ts, S3 on s3rver in
// test/unit/storage-s3.test.ts). Each test gets a fresh store from `make`, on a clock the test moves.
import { describe, expect, it } from 'vitest';
import { IMAGE_ID_PATTERN, type ImageStore, newImageId, type OpenedImage } from '../../src/storage/types.js';

export const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
export const JPEG = Buffer.from('ffd8ffe000104a464946', 'hex');
export const WEBP = Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(4), Buffer.from('WEBPVP8 ')]);

/** A fresh, empty store reading time from `now`; the suite closes it. */
export type ImageStoreFactory = (now: () => number) => Promise<ImageStore>;

async function drain(img: OpenedImage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of img.body) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

export function imageStoreContract(name: string, make: ImageStoreFactory): void {
  describe(`ImageStore contract: ${name}`, () => {
    const T0 = 1_700_000_000_000;
    const withStore = (body: (store: ImageStore, clock: { t: number }) => Promise<void>) => async () => {
      const clock = { t: T0 };
      const store = await make(() => clock.t);
      try {
        await body(store, clock);
      } finally {
        await store.close();
      }
    };

    it(
      'round-trips bytes and metadata for every format, by id alone or with its extension',
      withStore(async (store) => {
        const stored = [];
        for (const [bytes, contentType, ext] of [
          [PNG, 'image/png', 'png'],
          [JPEG, 'image/jpeg', 'jpeg'],
          [WEBP, 'image/webp', 'webp'],
        ] as const) {
          const meta = await store.put({ bytes, contentType }, { ttlSeconds: 3600 });
          expect(meta).toEqual({ id: meta.id, contentType, ext, byteLength: bytes.length, createdAt: T0, expiresAt: T0 + 3_600_000 });
          expect(meta.id).toMatch(IMAGE_ID_PATTERN);
          stored.push({ meta, bytes });
        }
        for (const { meta, bytes } of stored) {
          const got = await store.get(meta.id);
          expect(got).toMatchObject(meta);
          expect(got!.bytes.equals(bytes)).toBe(true);
          expect((await store.get(meta.id, meta.ext))!.bytes.equals(bytes)).toBe(true);
          const other = meta.ext === 'png' ? 'webp' : 'png';
          expect(await store.get(meta.id, other)).toBeUndefined();
        }
      }),
    );

    it(
      'open streams the same bytes with the same metadata',
      withStore(async (store) => {
        expect(store.open).toBeTypeOf('function');
        const meta = await store.put({ bytes: JPEG, contentType: 'image/jpeg' }, { ttlSeconds: 60 });
        const opened = await store.open!(meta.id, 'jpeg');
        expect(opened).toMatchObject(meta);
        expect((await drain(opened!)).equals(JPEG)).toBe(true);
        expect(await store.open!(meta.id, 'png')).toBeUndefined();
        expect(await store.open!(newImageId())).toBeUndefined();
      }),
    );

    it(
      'unknown, malformed and traversal-shaped ids or extensions are simply not there',
      withStore(async (store) => {
        await store.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 60 });
        for (const id of [newImageId(), '', '../../etc/passwd', 'a'.repeat(21), `${'a'.repeat(22)}/`, '%2e%2e']) {
          expect(await store.get(id)).toBeUndefined();
          expect(await store.open!(id)).toBeUndefined();
          await store.delete(id); // a no-op, never a throw
        }
        const meta = await store.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 60 });
        for (const ext of ['gif', '../png', 'json', 'PNG']) expect(await store.get(meta.id, ext)).toBeUndefined();
      }),
    );

    it(
      'rejects bad input to put and stores nothing',
      withStore(async (store) => {
        await expect(store.put({ bytes: 'x' as unknown as Buffer, contentType: 'image/png' }, { ttlSeconds: 1 })).rejects.toThrow(
          TypeError,
        );
        await expect(store.put({ bytes: PNG, contentType: 'image/gif' as 'image/png' }, { ttlSeconds: 1 })).rejects.toThrow(TypeError);
        for (const ttlSeconds of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
          await expect(store.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds })).rejects.toThrow(RangeError);
        }
        expect(await store.sweep(Number.MAX_SAFE_INTEGER)).toBe(0);
      }),
    );

    it(
      'hides an image once the clock passes its expiry',
      withStore(async (store, clock) => {
        const meta = await store.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 10 });
        clock.t = T0 + 9_999;
        expect(await store.get(meta.id)).toBeDefined();
        clock.t = T0 + 10_000;
        expect(await store.get(meta.id)).toBeUndefined();
        expect(await store.open!(meta.id, 'png')).toBeUndefined();
      }),
    );

    it(
      'sweep deletes the expired images and only those, and counts them',
      withStore(async (store, clock) => {
        expect(await store.sweep()).toBe(0); // nothing stored yet
        const short = await store.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 10 });
        const short2 = await store.put({ bytes: WEBP, contentType: 'image/webp' }, { ttlSeconds: 20 });
        const long = await store.put({ bytes: JPEG, contentType: 'image/jpeg' }, { ttlSeconds: 3600 });
        expect(await store.sweep(T0 + 5_000)).toBe(0);
        expect(await store.sweep(T0 + 20_000)).toBe(2);
        expect(await store.sweep(T0 + 20_000)).toBe(0);
        clock.t = T0 + 1_000; // before any expiry: only what was swept is gone
        expect(await store.get(short.id)).toBeUndefined();
        expect(await store.get(short2.id)).toBeUndefined();
        expect((await store.get(long.id))!.bytes.equals(JPEG)).toBe(true);
        clock.t = T0 + 3_600_000;
        expect(await store.sweep()).toBe(1); // the store's own clock by default
      }),
    );

    it(
      'delete removes an image at once and is idempotent',
      withStore(async (store) => {
        const a = await store.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 60 });
        const b = await store.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 60 });
        await store.delete(a.id);
        expect(await store.get(a.id)).toBeUndefined();
        await store.delete(a.id);
        expect(await store.get(b.id)).toBeDefined();
        expect(await store.sweep(Number.MAX_SAFE_INTEGER)).toBe(1); // only b was left
      }),
    );

    it(
      'concurrent puts get distinct ids and intact bytes',
      withStore(async (store) => {
        const blobs = Array.from({ length: 12 }, (_, i) => Buffer.concat([PNG, Buffer.alloc(100 + i, i)]));
        const metas = await Promise.all(blobs.map((bytes) => store.put({ bytes, contentType: 'image/png' }, { ttlSeconds: 60 })));
        expect(new Set(metas.map((m) => m.id)).size).toBe(blobs.length);
        const back = await Promise.all(metas.map((m) => store.get(m.id, 'png')));
        for (const [i, img] of back.entries()) expect(img!.bytes.equals(blobs[i])).toBe(true);
      }),
    );

    it('refuses work after close', async () => {
      const store = await make(() => T0);
      await store.close();
      await expect(store.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 1 })).rejects.toThrow(/closed/);
      await expect(store.get(newImageId())).rejects.toThrow(/closed/);
      await expect(store.sweep()).rejects.toThrow(/closed/);
    });
  });
}
