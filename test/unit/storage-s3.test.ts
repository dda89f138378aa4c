// The S3 image store against s3rver (a real S3-compatible HTTP server from npm, in this process): the ImageStore
// contract, how objects are keyed and described, paged sweeps, presigned URLs, the start-up check, and outages.
//
// What s3rver does not do like AWS S3, and so what these tests cannot show:
// - it does not verify SigV4 signatures (V4 "has incomplete support"): a wrong secret key is accepted; only an unknown
//   access key id is refused (403 InvalidAccessKeyId), which is what the credential tests use;
// - it does not check a presigned URL's X-Amz-Expires against the clock, so a presigned URL's lifetime is checked
//   here on the URL itself, not by waiting for the bucket to refuse it;
// - it ignores regions (any region is accepted) and serves path-style URLs only here (forcePathStyle: true);
// - its paging tokens use DES, gone from Node 20's OpenSSL: test/helpers/s3rver.ts swaps in AES for it.
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { CreateBucketCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openImageStore } from '../../src/storage/open.js';
import { S3ImageStore, type S3ImageStoreOptions } from '../../src/storage/s3.js';
import { newImageId, StoreUnavailableError } from '../../src/storage/types.js';
import { imageStoreContract, JPEG, PNG } from '../contract/image-store.js';
import { S3RVER_CREDENTIALS, startS3rver, type TestS3, useS3rverCredentials } from '../helpers/s3rver.js';

const BUCKET = 'easel-test';
let s3: TestS3;
let raw: S3Client;
let prefixes = 0;

beforeAll(async () => {
  s3 = await startS3rver([BUCKET]);
  raw = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: S3RVER_CREDENTIALS });
});
afterAll(async () => {
  raw?.destroy();
  await s3?.close();
});

/** A store on its own fresh prefix (so tests never see each other's objects). */
function store(over: Partial<S3ImageStoreOptions> = {}): S3ImageStore {
  return new S3ImageStore({
    bucket: BUCKET,
    prefix: `t${++prefixes}/images`,
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    timeoutMs: 1000,
    ...over,
  });
}

async function keysUnder(prefix: string): Promise<string[]> {
  const res = await raw.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key as string).sort();
}

imageStoreContract('S3 (s3rver), under a prefix', async (now) => store({ now }));
let buckets = 0;
imageStoreContract('S3 (s3rver), at the bucket root', async (now) => {
  const Bucket = `easel-root-${++buckets}`; // a bucket of its own per test: nothing else at its root
  await raw.send(new CreateBucketCommand({ Bucket }));
  return store({ bucket: Bucket, prefix: '', now });
});

describe('S3ImageStore: objects', () => {
  it('keys PREFIX/<id>.<ext> with the content type, and created/expires in the metadata', async () => {
    const st = store({ now: () => 1_700_000_000_000 });
    const meta = await st.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 60 });
    expect(await keysUnder(st.prefix)).toEqual([`${st.prefix}/${meta.id}.png`]);
    const head = await raw.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `${st.prefix}/${meta.id}.png` }));
    expect(head.ContentType).toBe('image/png');
    expect(head.ContentLength).toBe(PNG.length);
    expect(head.Metadata).toEqual({ 'easel-created-at': '1700000000000', 'easel-expires-at': '1700000060000' });
    await st.close();
  });

  it('sweep pages through the listing, leaves what is not an image alone, and takes metadata-less images after the grace', async () => {
    const t0 = Date.now();
    const st = store({ listPageSize: 2, orphanGraceMs: 60_000, now: () => t0 });
    const expiring = await Promise.all([1, 2, 3, 4, 5].map(() => st.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 10 })));
    const keep = await st.put({ bytes: JPEG, contentType: 'image/jpeg' }, { ttlSeconds: 3600 });
    const foreign = [`${st.prefix}/notes.txt`, `${st.prefix}/nested/${newImageId()}.png`, `${st.prefix}/${newImageId()}.gif`];
    const bare = `${st.prefix}/${newImageId()}.png`; // named like an image, written by someone else without metadata
    for (const Key of [...foreign, bare])
      await raw.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: 'x', ContentType: 'image/png' }));

    expect(await st.sweep(t0 + 11_000)).toBe(5);
    const left = await keysUnder(st.prefix);
    expect(left).toEqual([...foreign, bare, `${st.prefix}/${keep.id}.jpeg`].sort());
    for (const m of expiring) expect(left).not.toContain(`${st.prefix}/${m.id}.png`);
    // The bare object's age is its LastModified (the server's clock): swept once older than the grace period.
    expect(await st.sweep(Date.now() + 61_000)).toBe(1);
    expect(await keysUnder(st.prefix)).toEqual([...foreign, `${st.prefix}/${keep.id}.jpeg`].sort());
    await st.close();
  });

  it('a sweep HEADs only images new to this store: its own and those already read cost a listing alone', async () => {
    const t0 = Date.now();
    const writer = store({ now: () => t0 });
    const metas = await Promise.all(
      [10, 20, 3600].map((ttlSeconds) => writer.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds })),
    );
    expect(await writer.sweep(t0 + 15_000)).toBe(1);
    expect(writer.sweepHeads).toBe(0);
    // Another node on the same prefix learns each expiry once, then sweeps from memory like the writer.
    const other = store({ prefix: writer.prefix, now: () => t0 });
    expect(await other.sweep(t0 + 15_000)).toBe(0);
    expect(other.sweepHeads).toBe(2);
    expect(await other.sweep(t0 + 25_000)).toBe(1);
    expect(other.sweepHeads).toBe(2);
    // What the other node deleted, the writer forgets on its next sweep; the long-lived image stays.
    expect(await writer.sweep(t0 + 25_000)).toBe(0);
    expect(await keysUnder(writer.prefix)).toEqual([`${writer.prefix}/${metas[2].id}.png`]);
    await writer.close();
    await other.close();
  });

  it('presign gives the bucket URL of the object, valid as long as the image', async () => {
    let t = Date.now();
    const st = store({ now: () => t });
    const meta = await st.put({ bytes: JPEG, contentType: 'image/jpeg' }, { ttlSeconds: 3600 });
    t += 600_000; // ten minutes later the URL lives for the 50 minutes left
    const url = new URL(await st.presign(meta));
    expect(`${url.origin}${url.pathname}`).toBe(`${s3.endpoint}/${BUCKET}/${st.prefix}/${meta.id}.jpeg`);
    expect(url.searchParams.get('X-Amz-Expires')).toBe('3000');
    expect(url.searchParams.get('X-Amz-Algorithm')).toBe('AWS4-HMAC-SHA256');
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    expect(Buffer.from(await res.arrayBuffer()).equals(JPEG)).toBe(true);
    await st.close();
  });
});

describe('S3ImageStore: the start-up check names what failed', () => {
  it('passes on a writable bucket and leaves nothing behind', async () => {
    const st = store();
    await st.check();
    expect(await keysUnder(st.prefix)).toEqual([]);
    await st.close();
  });

  it('a missing bucket', async () => {
    const st = store({ bucket: 'no-such-bucket' });
    await expect(st.check()).rejects.toThrow(/bucket "no-such-bucket" does not exist/);
    await st.close();
  });

  it('an access key the server does not know', async () => {
    const st = store({ credentials: { accessKeyId: 'AKIAWRONG', secretAccessKey: 'nope' } });
    await expect(st.check()).rejects.toThrow(/access denied .*HTTP 403.*check the credentials/);
    await st.close();
  });

  it('an endpoint nobody listens on', async () => {
    const st = store({ endpoint: 'http://127.0.0.1:9', maxAttempts: 1 });
    await expect(st.check()).rejects.toThrow(/s3:\/\/easel-test\/.* at http:\/\/127\.0\.0\.1:9: HeadBucket failed .*ECONNREFUSED/);
    await st.close();
  });

  it('openImageStore checks before handing the store out, and refuses configs it cannot serve', async () => {
    const images = {
      urlMode: 'signed' as const,
      urlTtlSeconds: 3600,
      s3: { endpoint: s3.endpoint, forcePathStyle: true, timeoutSeconds: 1 },
    };
    const restoreEnv = useS3rverCredentials(); // the SDK's default chain reads the process environment
    try {
      const opened = await openImageStore({ images: { ...images, store: `s3://${BUCKET}/open` }, dir: '/nonexistent' });
      expect(opened.kind).toBe('s3');
      await opened.store.close();
      await expect(openImageStore({ images: { ...images, store: 's3://missing-bucket' }, dir: '/x' })).rejects.toThrow(
        /bucket "missing-bucket" does not exist/,
      );
      process.env.AWS_ACCESS_KEY_ID = 'AKIAWRONG';
      await expect(openImageStore({ images: { ...images, store: `s3://${BUCKET}` }, dir: '/x' })).rejects.toThrow(/access denied/);
    } finally {
      restoreEnv();
    }
    await expect(openImageStore({ images: { ...images, urlMode: 'presigned' }, dir: '/x' })).rejects.toThrow(
      /images.urlMode: "presigned" needs images.store s3:\/\/BUCKET/,
    );
    await expect(
      openImageStore({ images: { ...images, urlMode: 'presigned', urlTtlSeconds: 8 * 86400, store: `s3://${BUCKET}` }, dir: '/x' }),
    ).rejects.toThrow(/images.urlTtlSeconds: a presigned URL lives at most 604800 s/);
  });
});

describe('S3ImageStore: outages fail fast with StoreUnavailableError, and it recovers', () => {
  it('while the server is down every call fails within its bounds; once back, the images are there', async () => {
    const st = store({ timeoutMs: 500 });
    const meta = await st.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 60 });
    await s3.stop();
    try {
      for (const call of [
        () => st.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 60 }),
        () => st.get(meta.id),
        () => st.open(meta.id, 'png'),
        () => st.delete(meta.id),
        () => st.sweep(),
      ]) {
        const t = performance.now();
        const err = await call().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(StoreUnavailableError);
        expect((err as StoreUnavailableError).retryAfterSeconds).toBeGreaterThan(0);
        expect((err as Error).message).toMatch(/ECONNREFUSED/);
        expect(performance.now() - t).toBeLessThan(3000);
      }
    } finally {
      await s3.start();
    }
    expect((await st.get(meta.id))!.bytes.equals(PNG)).toBe(true);
    await st.close();
  });

  it('a server that accepts connections and never answers times out instead of hanging', async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((s) => sockets.add(s)).listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const { port } = silent.address() as { port: number };
    const st = store({ endpoint: `http://127.0.0.1:${port}`, timeoutMs: 300, maxAttempts: 2 });
    try {
      const t = performance.now();
      const err = await st.put({ bytes: PNG, contentType: 'image/png' }, { ttlSeconds: 60 }).catch((e: unknown) => e);
      const ms = performance.now() - t;
      expect(err).toBeInstanceOf(StoreUnavailableError);
      expect(ms).toBeGreaterThan(250);
      expect(ms).toBeLessThan(3000); // two attempts of 300 ms, their back-off, and nothing more
    } finally {
      await st.close();
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });
});
