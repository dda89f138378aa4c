// ImageStore on an S3-compatible bucket (AWS S3, MinIO, R2, Ceph...) through @aws-sdk/client-s3, so every API node of
// a cluster serves every image. Every call is bounded (timeouts, few retries): an outage fails fast as StoreUnavailableError.

import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadBucketCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { IMAGE_EXTENSIONS, IMAGE_FORMATS } from '../imaging/formats.js';
import { DEFAULT_LEFTOVER_GRACE_MS, newStoredImage } from './fs-store.js';
import { MAX_PRESIGN_SECONDS } from './open.js';
import {
  type EncodedImage,
  extForContentType,
  type ImageStore,
  isImageContentType,
  isImageExt,
  isImageId,
  type OpenedImage,
  type PutOptions,
  type StoredImage,
  type StoredImageWithBytes,
  StoreUnavailableError,
} from './types.js';

export interface S3ImageStoreOptions {
  bucket: string;
  /** Key prefix without slashes at either end; '' (default) keys objects at the bucket's root. */
  prefix?: string;
  /** An S3-compatible server's URL (MinIO, s3rver...); absent: AWS S3 for the region. */
  endpoint?: string;
  /** Default us-east-1 (what S3-compatible servers expect when they ignore regions). */
  region?: string;
  /** Bucket in the path (http://host/bucket/key) instead of the host name; most S3-compatible servers need it. */
  forcePathStyle?: boolean;
  /** Explicit credentials; absent: the AWS SDK's default chain (AWS_ACCESS_KEY_ID..., profile, SSO, instance role). */
  credentials?: S3ClientConfig['credentials'];
  /** Bound on connecting and on each request (socket idle too), per attempt. Default 5000. */
  timeoutMs?: number;
  /** Attempts per call, the first included. Default 2. */
  maxAttempts?: number;
  /** Clock in epoch milliseconds. Default Date.now. */
  now?: () => number;
  /** An object named like an image but without readable metadata is swept once older than this. Default 5 minutes. */
  orphanGraceMs?: number;
  /** Keys per ListObjectsV2 page while sweeping; default (and S3's maximum) 1000. Tests make it small to page. */
  listPageSize?: number;
}

const META_CREATED = 'easel-created-at';
const META_EXPIRES = 'easel-expires-at';
/** DeleteObjects takes at most 1000 keys. */
const DELETE_BATCH = 1000;
/** HEADs in flight while sweeping. */
const SWEEP_CONCURRENCY = 8;
/** Expiries remembered at most (about 100 bytes each); past it the memory starts over, costing HEADs, never results. */
const MAX_KNOWN_EXPIRIES = 1_000_000;
const IMAGE_KEY = /^([A-Za-z0-9_-]{22})\.([a-z]+)$/;

type Send = S3Client['send'];
type SdkError = Error & { $metadata?: { httpStatusCode?: number }; code?: string; Code?: string };

function statusOf(err: unknown): number | undefined {
  return (err as SdkError | undefined)?.$metadata?.httpStatusCode;
}

/** The object (or bucket) is not there: a normal answer, not an outage. */
function isNotFound(err: unknown): boolean {
  const name = (err as SdkError | undefined)?.name;
  return statusOf(err) === 404 || name === 'NoSuchKey' || name === 'NotFound';
}

function describe(err: unknown): string {
  const e = err as SdkError;
  const status = statusOf(err);
  const code = e?.code ?? e?.Code;
  // A HEAD's error has no body: the SDK then names it "Unknown"/"UnknownError", which says nothing; the status does.
  const name = e?.name === 'Unknown' ? undefined : e?.name;
  const message = e?.message && e.message !== e.name && e.message !== 'UnknownError' ? `: ${e.message}` : '';
  const parts = [name, code && code !== e?.name ? code : undefined, status ? `HTTP ${status}` : undefined].filter(Boolean);
  return `${parts.join(' ')}${message}`;
}

function parseMeta(
  id: string,
  ext: string,
  contentType: string | undefined,
  metadata: Record<string, string> | undefined,
  byteLength: number | undefined,
): StoredImage | undefined {
  const createdAt = Number(metadata?.[META_CREATED]);
  const expiresAt = Number(metadata?.[META_EXPIRES]);
  // Some servers add "; charset" or the like to a content type; the stored one never has parameters.
  const type = contentType?.split(';')[0].trim();
  if (!isImageContentType(type) || !isImageExt(ext) || extForContentType(type) !== ext) return undefined;
  if (!Number.isFinite(createdAt) || !Number.isFinite(expiresAt) || !Number.isSafeInteger(byteLength)) return undefined;
  return { id, contentType: type, ext, byteLength: byteLength as number, createdAt, expiresAt };
}

export class S3ImageStore implements ImageStore {
  readonly bucket: string;
  readonly prefix: string;
  private readonly client: S3Client;
  private readonly now: () => number;
  private readonly orphanGraceMs: number;
  /** Whole-call deadline (all attempts and their back-off): a net under the SDK's own timeouts. */
  private readonly deadlineMs: number;
  private readonly where: string;
  private readonly listPageSize: number;
  /**
   * Object key -> expiry (ms) of images this store wrote or has read the metadata of. ListObjectsV2 carries no user
   * metadata, so without it every sweep would HEAD every image; with it a sweep HEADs only the ones new to this node.
   */
  private readonly expiries = new Map<string, number>();
  private headCount = 0;
  private closed = false;

  constructor(opts: S3ImageStoreOptions) {
    if (typeof opts.bucket !== 'string' || opts.bucket.length === 0) throw new TypeError('S3ImageStore: bucket is required');
    this.bucket = opts.bucket;
    this.prefix = (opts.prefix ?? '').replace(/^\/+|\/+$/g, '');
    this.now = opts.now ?? Date.now;
    this.orphanGraceMs = opts.orphanGraceMs ?? DEFAULT_LEFTOVER_GRACE_MS;
    this.listPageSize = opts.listPageSize ?? 1000;
    const timeoutMs = opts.timeoutMs ?? 5000;
    const maxAttempts = opts.maxAttempts ?? 2;
    this.deadlineMs = timeoutMs * maxAttempts + 1000;
    this.where = `s3://${this.bucket}${this.prefix ? `/${this.prefix}` : ''} at ${opts.endpoint ?? `AWS S3 (${opts.region ?? 'us-east-1'})`}`;
    this.client = new S3Client({
      region: opts.region ?? 'us-east-1',
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      forcePathStyle: opts.forcePathStyle ?? false,
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      maxAttempts,
      retryMode: 'standard',
      requestHandler: { connectionTimeout: timeoutMs, requestTimeout: timeoutMs, socketTimeout: timeoutMs, throwOnRequestTimeout: true },
      // Checksums only where S3 requires them: several S3-compatible servers refuse the newer default trailers.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  /** HEAD requests sweeps have made so far: what sweeping costs (the tests check that known images cost none). */
  get sweepHeads(): number {
    return this.headCount;
  }

  private remember(key: string, expiresAt: number): void {
    if (this.expiries.size >= MAX_KNOWN_EXPIRIES) this.expiries.clear();
    this.expiries.set(key, expiresAt);
  }

  /** The object key of an image: PREFIX/<id>.<ext>. */
  keyOf(id: string, ext: string): string {
    return this.prefix ? `${this.prefix}/${id}.${ext}` : `${id}.${ext}`;
  }

  private get base(): string {
    return this.prefix ? `${this.prefix}/` : '';
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('S3ImageStore is closed');
  }

  /** One SDK call under the whole-call deadline; any failure but "not found" becomes StoreUnavailableError. */
  private async send<T>(what: string, call: (send: Send, signal: AbortSignal) => Promise<T>): Promise<T> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error(`timed out after ${this.deadlineMs} ms`)), this.deadlineMs);
    try {
      return await call(this.client.send.bind(this.client) as Send, abort.signal);
    } catch (err) {
      if (isNotFound(err)) throw err;
      throw new StoreUnavailableError(`image store ${this.where}: ${what} failed (${describe(err)})`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  async put(img: EncodedImage, opts: PutOptions): Promise<StoredImage> {
    this.checkOpen();
    const meta = newStoredImage('S3ImageStore', img, opts, this.now());
    const command = new PutObjectCommand({
      Bucket: this.bucket,
      Key: this.keyOf(meta.id, meta.ext),
      Body: img.bytes,
      ContentType: meta.contentType,
      ContentLength: meta.byteLength,
      Metadata: { [META_CREATED]: String(meta.createdAt), [META_EXPIRES]: String(meta.expiresAt) },
    });
    // A PUT is atomic in S3: the object is visible whole or not at all, so nothing partial is ever served.
    await this.send('put', (send, abortSignal) => send(command, { abortSignal }));
    this.remember(command.input.Key as string, meta.expiresAt);
    return meta;
  }

  /** The extension an id is stored under, from a listing (callers that know it from a URL skip this). */
  private async findExt(id: string): Promise<string | undefined> {
    const list = await this.send('list', (send, abortSignal) =>
      send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: `${this.base}${id}.`, MaxKeys: 10 }), { abortSignal }),
    );
    for (const o of list.Contents ?? []) {
      const m = IMAGE_KEY.exec((o.Key ?? '').slice(this.base.length));
      if (m && m[1] === id && isImageExt(m[2])) return m[2];
    }
    return undefined;
  }

  /** GetObject with its metadata checked: undefined (the body discarded) when missing, malformed or expired. */
  private async fetch(id: string, ext?: string): Promise<{ meta: StoredImage; body: Readable } | undefined> {
    this.checkOpen();
    if (!isImageId(id) || (ext !== undefined && !isImageExt(ext))) return undefined;
    const found = ext ?? (await this.findExt(id));
    if (!found) return undefined;
    let res: GetObjectCommandOutput;
    try {
      const command = new GetObjectCommand({ Bucket: this.bucket, Key: this.keyOf(id, found) });
      res = await this.send('get', (send, abortSignal) => send(command, { abortSignal }));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    const body = res.Body as Readable | undefined;
    const meta = parseMeta(id, found, res.ContentType, res.Metadata, res.ContentLength);
    if (meta) this.remember(this.keyOf(id, found), meta.expiresAt);
    if (!body || !meta || meta.expiresAt <= this.now()) {
      body?.destroy();
      return undefined;
    }
    return { meta, body };
  }

  async get(id: string, ext?: string): Promise<StoredImageWithBytes | undefined> {
    const got = await this.fetch(id, ext);
    if (!got) return undefined;
    let bytes: Buffer;
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of got.body) chunks.push(chunk as Buffer);
      bytes = Buffer.concat(chunks);
    } catch (err) {
      throw new StoreUnavailableError(`image store ${this.where}: reading ${id} failed (${describe(err)})`, { cause: err });
    }
    return { ...got.meta, bytes };
  }

  async open(id: string, ext?: string): Promise<OpenedImage | undefined> {
    const got = await this.fetch(id, ext);
    return got ? { ...got.meta, body: got.body } : undefined;
  }

  async delete(id: string): Promise<void> {
    this.checkOpen();
    if (!isImageId(id)) return;
    // One request for every extension the id could have: deleting a key that is not there is no error in S3.
    await this.deleteKeys(IMAGE_FORMATS.map((f) => this.keyOf(id, IMAGE_EXTENSIONS[f])));
  }

  private async deleteKeys(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      const command = new DeleteObjectsCommand({
        Bucket: this.bucket,
        Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
      });
      const res = await this.send('delete', (send, abortSignal) => send(command, { abortSignal }));
      const failed = (res.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      const kept = new Set(failed.map((e) => e.Key));
      for (const key of batch) if (!kept.has(key)) this.expiries.delete(key);
      if (failed.length) {
        const first = failed[0];
        throw new StoreUnavailableError(
          `image store ${this.where}: delete of ${failed.length} objects failed (${first.Code}: ${first.Message})`,
        );
      }
    }
  }

  /** Whether a listed object is to go: expired by its metadata, or without metadata and older than the grace period. */
  private async isExpired(key: string, id: string, ext: string, lastModified: number, t: number): Promise<boolean> {
    const known = this.expiries.get(key);
    if (known !== undefined) return known <= t;
    let head: HeadObjectCommandOutput;
    this.headCount++;
    try {
      head = await this.send('head', (send, abortSignal) =>
        send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal }),
      );
    } catch (err) {
      if (isNotFound(err)) return false; // deleted meanwhile
      throw err;
    }
    const meta = parseMeta(id, ext, head.ContentType, head.Metadata, head.ContentLength);
    if (!meta) return t - lastModified > this.orphanGraceMs;
    this.remember(key, meta.expiresAt);
    return meta.expiresAt <= t;
  }

  async sweep(now?: number): Promise<number> {
    this.checkOpen();
    const t = now ?? this.now();
    let deleted = 0;
    let token: string | undefined;
    const listed = new Set<string>();
    do {
      const list = await this.send('list', (send, abortSignal) =>
        send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.base, ContinuationToken: token, MaxKeys: this.listPageSize }), {
          abortSignal,
        }),
      );
      // An image's expiry is in its metadata, which a listing does not carry: known ones are remembered, others HEADed.
      const candidates = (list.Contents ?? []).flatMap((o) => {
        const m = IMAGE_KEY.exec((o.Key ?? '').slice(this.base.length));
        return m && isImageExt(m[2]) ? [{ key: o.Key as string, id: m[1], ext: m[2], at: o.LastModified?.getTime() ?? t }] : [];
      });
      for (const c of candidates) listed.add(c.key);
      const doomed: string[] = [];
      for (let i = 0; i < candidates.length; i += SWEEP_CONCURRENCY) {
        const slice = candidates.slice(i, i + SWEEP_CONCURRENCY);
        const verdicts = await Promise.all(slice.map((c) => this.isExpired(c.key, c.id, c.ext, c.at, t)));
        slice.forEach((c, j) => {
          if (verdicts[j]) doomed.push(c.key);
        });
      }
      await this.deleteKeys(doomed);
      deleted += doomed.length;
      token = list.IsTruncated ? list.NextContinuationToken : undefined;
    } while (token);
    // Forget images gone without this node (another node's sweep, a lifecycle rule): the memory follows the bucket.
    for (const key of this.expiries.keys()) if (!listed.has(key)) this.expiries.delete(key);
    return deleted;
  }

  async presign(img: StoredImage): Promise<string> {
    this.checkOpen();
    const expiresIn = Math.min(MAX_PRESIGN_SECONDS, Math.max(1, Math.floor((img.expiresAt - this.now()) / 1000)));
    const command = new GetObjectCommand({ Bucket: this.bucket, Key: this.keyOf(img.id, img.ext) });
    try {
      return await getSignedUrl(this.client, command, { expiresIn });
    } catch (err) {
      throw new StoreUnavailableError(`image store ${this.where}: presigning failed (${describe(err)})`, { cause: err });
    }
  }

  /** HeadBucket, then a tiny object written and deleted: a missing bucket, bad credentials or a read-only key fail here. */
  async check(): Promise<void> {
    this.checkOpen();
    try {
      await this.send('HeadBucket', (send, abortSignal) => send(new HeadBucketCommand({ Bucket: this.bucket }), { abortSignal }));
      const Key = `${this.base}.easel-check-${randomBytes(6).toString('hex')}`;
      await this.send('test write', (send, abortSignal) =>
        send(new PutObjectCommand({ Bucket: this.bucket, Key, Body: 'easel', ContentType: 'text/plain' }), { abortSignal }),
      );
      await this.send('test delete', (send, abortSignal) => send(new DeleteObjectCommand({ Bucket: this.bucket, Key }), { abortSignal }));
    } catch (err) {
      throw new Error(this.checkFailure(err), { cause: err });
    }
  }

  private checkFailure(err: unknown): string {
    const cause = (err as { cause?: unknown }).cause ?? err;
    const status = statusOf(cause);
    const name = (cause as SdkError)?.name ?? '';
    const store = `image store ${this.where}`;
    if (isNotFound(cause) || name === 'NoSuchBucket') return `${store}: bucket "${this.bucket}" does not exist`;
    if (status === 403 || /AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|Forbidden/.test(name)) {
      return `${store}: access denied (${describe(cause)}); check the credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE) and the bucket's policy`;
    }
    if (name === 'CredentialsProviderError') return `${store}: no AWS credentials found (${describe(cause)})`;
    if (status === 301) return `${store}: the bucket is in another region than images.s3.region (${describe(cause)})`;
    return err instanceof StoreUnavailableError ? err.message : `${store}: ${describe(cause)}`;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.client.destroy();
  }
}
