// A throwaway S3-compatible server for tests: s3rver (npm) in this process on a free port, its objects in a temp dir.
// stop()/start() take it down and back on the same port with the same objects, for outage tests. Keys: S3RVER/S3RVER.
import nodeCrypto from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';

/** The part of s3rver's API used here (it ships no types). */
interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
  httpServer?: Server;
}
type S3rverCtor = new (opts: {
  port: number;
  address: string;
  directory: string;
  silent: boolean;
  configureBuckets: { name: string }[];
}) => S3rverInstance;

const S3rver = createRequire(import.meta.url)('s3rver') as S3rverCtor;

/**
 * s3rver 3.7 encrypts ListObjectsV2 continuation tokens with single DES, which Node 20's OpenSSL 3 no longer offers:
 * every listing that needs a second page fails with InternalError. The tokens are opaque to clients, so 'des' is
 * swapped for AES-128-CBC (key and IV doubled to 16 bytes) in both directions. No other caller asks for 'des'.
 */
function letS3rverPage(): void {
  type Cipheriv = typeof nodeCrypto.createCipheriv;
  type Decipheriv = typeof nodeCrypto.createDecipheriv;
  const c = nodeCrypto as { createCipheriv: Cipheriv; createDecipheriv: Decipheriv; easelDesSwapped?: true };
  if (c.easelDesSwapped) return;
  const cipher = c.createCipheriv;
  const decipher = c.createDecipheriv;
  const twice = (b: nodeCrypto.BinaryLike | nodeCrypto.KeyObject | null) => Buffer.concat([b as Buffer, b as Buffer]);
  c.createCipheriv = ((alg: string, key: Buffer, iv: Buffer, opts?: never) =>
    alg === 'des' ? cipher('aes-128-cbc', twice(key), twice(iv)) : cipher(alg, key, iv, opts)) as Cipheriv;
  c.createDecipheriv = ((alg: string, key: Buffer, iv: Buffer, opts?: never) =>
    alg === 'des' ? decipher('aes-128-cbc', twice(key), twice(iv)) : decipher(alg, key, iv, opts)) as Decipheriv;
  c.easelDesSwapped = true;
}

/** s3rver's one account: it checks that a request names this access key id, but not the V4 signature's secret. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/**
 * Puts s3rver's keys in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, where the AWS SDK's default chain (and a child
 * server given this environment) looks; the function returned puts back what the two were, unset ones unset.
 */
export function useS3rverCredentials(): () => void {
  const saved = { AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY };
  process.env.AWS_ACCESS_KEY_ID = S3RVER_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3RVER_CREDENTIALS.secretAccessKey;
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

export interface TestS3 {
  /** http://127.0.0.1:PORT, for images.s3.endpoint (with forcePathStyle). */
  endpoint: string;
  port: number;
  /** Where s3rver keeps buckets and objects. */
  dir: string;
  /** Stops listening and cuts every open connection (what an outage looks like to clients); objects are kept. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  /** Stops and removes the temp dir. */
  close(): Promise<void>;
}

/** s3rver with `buckets` created, on a free port of 127.0.0.1. */
export async function startS3rver(buckets: readonly string[] = ['easel-test']): Promise<TestS3> {
  letS3rverPage();
  const dir = mkdtempSync(join(tmpdir(), 'easel-s3rver-'));
  const port = await freePort();
  let server: S3rverInstance | undefined;
  const start = async () => {
    if (server) return;
    const s = new S3rver({ port, address: '127.0.0.1', directory: dir, silent: true, configureBuckets: buckets.map((name) => ({ name })) });
    await s.run();
    server = s;
  };
  const stop = async () => {
    const s = server;
    if (!s) return;
    server = undefined;
    const closed = s.close();
    s.httpServer?.closeAllConnections(); // keep-alive sockets would otherwise hold close() open
    await closed;
  };
  await start();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    dir,
    stop,
    start,
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
