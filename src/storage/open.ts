// Picks the ImageStore from config: an s3:// store URL opens the S3 store and checks the bucket before the server
// starts (a missing bucket or bad credentials stop it, naming what failed); anything else the filesystem under dataDir.

import { FsImageStore, type StoreFs } from './fs-store.js';
import { parseS3StoreUrl, S3_STORE_RULE } from './s3-url.js';
import type { ImageStore } from './types.js';

/** S3 caps a SigV4 presigned URL at 7 days. */
export const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

/** The config's `images` section, as far as the store goes (structural, so storage needs nothing from config/). */
export interface ImagesSettings {
  /** 's3://BUCKET[/PREFIX]'; unset means the filesystem at `dir`. */
  store?: string | undefined;
  urlMode: 'signed' | 'presigned';
  urlTtlSeconds: number;
  s3: { endpoint?: string | undefined; region?: string | undefined; forcePathStyle: boolean; timeoutSeconds: number };
}

export interface OpenImageStoreOptions {
  images: ImagesSettings;
  /** The filesystem store's folder (<dataDir>/images). */
  dir: string;
  now?: () => number;
  orphanGraceMs?: number;
  /** The filesystem store's calls (tests inject faults). */
  fs?: StoreFs;
  /** Default process.env: AWS_REGION when images.s3.region is not set. */
  env?: NodeJS.ProcessEnv;
}

export interface OpenedStore {
  store: ImageStore;
  /** 'fs' when images are on this machine's disk (the disk guard watches it), 's3' when they are in a bucket. */
  kind: 'fs' | 's3';
}

/** The store the config names, checked: a config it cannot serve, a missing bucket or refused credentials throw. */
export async function openImageStore(opts: OpenImageStoreOptions): Promise<OpenedStore> {
  const { images } = opts;
  if (images.store === undefined || images.store === '') {
    if (images.urlMode === 'presigned') {
      throw new Error('images.urlMode: "presigned" needs images.store s3://BUCKET (the filesystem store has no URLs of its own)');
    }
    return { kind: 'fs', store: new FsImageStore({ dir: opts.dir, now: opts.now, orphanGraceMs: opts.orphanGraceMs, fs: opts.fs }) };
  }
  const loc = parseS3StoreUrl(images.store);
  if (!loc) throw new Error(`images.store: ${S3_STORE_RULE}, got ${JSON.stringify(images.store)}`);
  if (images.urlMode === 'presigned' && images.urlTtlSeconds > MAX_PRESIGN_SECONDS) {
    throw new Error(`images.urlTtlSeconds: a presigned URL lives at most ${MAX_PRESIGN_SECONDS} s (7 days), got ${images.urlTtlSeconds}`);
  }
  const env = opts.env ?? process.env;
  // Loaded only when asked for: the AWS SDK costs start-up time that a filesystem store never needs.
  const { S3ImageStore } = await import('./s3.js');
  const store = new S3ImageStore({
    ...loc,
    endpoint: images.s3.endpoint,
    region: images.s3.region ?? (env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined),
    forcePathStyle: images.s3.forcePathStyle,
    timeoutMs: images.s3.timeoutSeconds * 1000,
    now: opts.now,
    orphanGraceMs: opts.orphanGraceMs,
  });
  try {
    await store.check();
  } catch (err) {
    await store.close();
    throw err;
  }
  return { kind: 's3', store };
}
