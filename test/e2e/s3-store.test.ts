// `easel serve` with its url images in an S3 bucket (s3rver, test/helpers/s3rver.ts), driven by the official openai
// client: signed URLs streamed from the bucket, presigned URLs fetched from the bucket itself, a serve that refuses to
// start on a missing bucket or unknown credentials, and a 503 with Retry-After while the bucket is down, then recovery.
// s3rver does not verify SigV4 signatures (only that the access key id exists): see test/unit/storage-s3.test.ts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import OpenAI from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { easel } from '../helpers/cli.js';
import { S3RVER_CREDENTIALS, startS3rver, type TestS3, useS3rverCredentials } from '../helpers/s3rver.js';
import { type ServedCli, serveCli, TINY_MODEL } from '../helpers/serve.js';

const BUCKET = 'easel-e2e';
const ASK = { model: 'dall-e-2', prompt: 'a red circle', size: '256x256', response_format: 'url', num_inference_steps: 2 } as const;

let s3: TestS3;
let raw: S3Client;
let dir: string;
let restoreEnv: (() => void) | undefined;
const servers: ServedCli[] = [];

/** The config for a server on this bucket (serveCli adds the tiny model and the data dir). */
function s3Config(prefix: string, extra: Record<string, unknown> = {}) {
  return {
    images: { store: `s3://${BUCKET}/${prefix}`, s3: { endpoint: s3.endpoint, forcePathStyle: true, timeoutSeconds: 1 }, ...extra },
  };
}

async function serve(name: string, config: Record<string, unknown>): Promise<{ server: ServedCli; client: OpenAI }> {
  const home = mkdtempSync(join(dir, `${name}-`));
  const server = await serveCli(home, config);
  servers.push(server);
  return { server, client: new OpenAI({ apiKey: 'sk-any', baseURL: `${server.url}/v1`, maxRetries: 0, timeout: 60_000 }) };
}

async function generateUrl(client: OpenAI): Promise<string> {
  const res = await client.images.generate(ASK as unknown as OpenAI.ImageGenerateParamsNonStreaming);
  expect(res.data).toHaveLength(1);
  return res.data![0].url!;
}

async function keys(prefix: string): Promise<string[]> {
  const res = await raw.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${prefix}/` }));
  return (res.Contents ?? []).map((o) => o.Key as string);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'easel-s3-e2e-'));
  s3 = await startS3rver([BUCKET]);
  raw = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: S3RVER_CREDENTIALS });
  // The servers find their credentials where the AWS SDK looks by default: the environment (serveCli passes it on).
  restoreEnv = useS3rverCredentials();
});

afterAll(async () => {
  for (const s of servers) await s.kill();
  raw?.destroy();
  await s3?.close();
  rmSync(dir, { recursive: true, force: true });
  restoreEnv?.();
});

describe('easel serve --store s3://...', () => {
  it('stores url images in the bucket under the prefix and serves their signed URLs from it', async () => {
    const { server, client } = await serve('signed', s3Config('signed'));
    const url = await generateUrl(client);
    const { pathname, searchParams } = new URL(url);
    expect(url.startsWith(`${server.url}/v1/images/files/`)).toBe(true);
    expect(searchParams.get('sig')).toBeTruthy();
    const id = pathname.split('/').pop()!;
    expect(await keys('signed')).toEqual([`signed/${id}`]);

    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(Number(res.headers.get('content-length'))).toBe(bytes.length);
    expect((await sharp(bytes).metadata()).width).toBe(256);
    // A tampered signature is still refused before the bucket is asked.
    expect((await fetch(url.replace(/sig=./, 'sig=A'))).status).toBe(403);
  });

  it('images.urlMode "presigned" hands out the bucket\'s own URL, fetched from the bucket directly', async () => {
    const { client } = await serve('presigned', s3Config('presigned', { urlMode: 'presigned' }));
    const url = new URL(await generateUrl(client));
    expect(url.origin).toBe(s3.endpoint);
    expect(url.pathname).toMatch(new RegExp(`^/${BUCKET}/presigned/[A-Za-z0-9_-]{22}\\.png$`));
    expect(url.searchParams.get('X-Amz-Expires')).toMatch(/^(3599|3600)$/); // images.urlTtlSeconds, an hour
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect((await sharp(Buffer.from(await res.arrayBuffer())).metadata()).format).toBe('png');
  });

  it('refuses to start on a missing bucket or unknown credentials, naming what failed', async () => {
    const file = join(dir, 'refuse.json');
    const images = { s3: { endpoint: s3.endpoint, forcePathStyle: true, timeoutSeconds: 1 } };
    writeFileSync(file, JSON.stringify({ models: [{ name: 'tiny', path: TINY_MODEL }], dataDir: join(dir, 'refuse'), images }));
    const missing = await easel(['serve', '--config', file, '--port', '0', '--store', 's3://no-such-bucket/x']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(
      /easel: image store s3:\/\/no-such-bucket\/x at http:\/\/127\.0\.0\.1:\d+: bucket "no-such-bucket" does not exist/,
    );
    expect(missing.stderr).not.toContain('listening');

    const wrong = await easel(['serve', '--config', file, '--port', '0'], {
      EASEL_STORE: `s3://${BUCKET}`,
      AWS_ACCESS_KEY_ID: 'AKIAWRONG',
    });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/image store s3:\/\/easel-e2e at .*: access denied .*check the credentials/);

    const bad = await easel(['serve', '--config', file, '--port', '0', '--store', 'bucket-without-scheme']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--store: expected s3://BUCKET[/PREFIX]');
  });

  it("answers 503 with Retry-After in OpenAI's envelope while the bucket is down, and recovers when it is back", async () => {
    const { client, server } = await serve('outage', s3Config('outage'));
    const before = await generateUrl(client);
    await s3.stop();
    try {
      const t = performance.now();
      const err = await generateUrl(client).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.APIError);
      const apiErr = err as InstanceType<typeof OpenAI.APIError>;
      expect(apiErr.status).toBe(503);
      expect(apiErr.headers?.get('retry-after')).toMatch(/^\d+$/);
      expect(apiErr.error).toMatchObject({ type: 'server_error', code: 'service_unavailable', param: null });
      expect(apiErr.message).toContain('image store is unavailable');

      const fetched = await fetch(before);
      expect(fetched.status).toBe(503);
      expect(Number(fetched.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await fetched.json()).toEqual({
        error: { message: 'The image store is unavailable; retry later.', type: 'server_error', param: null, code: 'service_unavailable' },
      });
      expect(performance.now() - t).toBeLessThan(30_000); // a generation plus bounded store retries, never a hang
      await server.waitForLog((l) => l.msg === 'image store unavailable');
    } finally {
      await s3.start();
    }
    expect((await fetch(before)).status).toBe(200);
    const after = await generateUrl(client);
    expect((await fetch(after)).status).toBe(200);
  });
});
