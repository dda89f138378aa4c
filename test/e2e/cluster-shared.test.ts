// A cluster on shared state: 2 API nodes (own data dirs) on one Postgres, one s3rver bucket, one Redis, 2 workers, keys
// from `easel keys create --db`: url images cross nodes, Usage API totals match the requests, a SIGKILL loses no record.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { easel as easelRun } from '../helpers/cli.js';
import { cluster, type EaselProcess } from '../helpers/cluster.js';
import { validateSchema } from '../helpers/openapi.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { S3RVER_CREDENTIALS, startS3rver, type TestS3 } from '../helpers/s3rver.js';
import { validateUsage } from '../helpers/usage-spec.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');
const BUCKET = 'easel-cluster';
// s3rver checks only the access key id, not the signature (test/helpers/s3rver.ts).
const AWS_ENV = { AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey };
// Tiny and cheap on 2 shared cores: dall-e-2 at 256x256, 2 steps.
const ASK = { model: 'dall-e-2', prompt: 'a red circle', size: '256x256', num_inference_steps: 2 } as const;

interface ApiNode {
  proc: EaselProcess;
  dataDir: string;
  port: number;
  url: string;
  /** With the standard key. */
  client: OpenAI;
  /** With the admin key: reads the Usage API. */
  admin: OpenAI;
}
interface Page {
  object: 'page';
  data: Array<{ results: Array<{ images: number; num_model_requests: number; api_key_id: string | null }> }>;
}

const easel = cluster({ waitMs: 60_000 });

let redis: TestRedis;
let pg: TestPostgres;
let s3: TestS3;
let dir: string;
let dbUrl: string;
let configFile: string;
let appKey: { key: string; id: string };
let adminKey: string;
const nodes: ApiNode[] = [];
/** Requests made and images delivered so far: what the Usage API must total. */
const made = { images: 0, requests: 0 };
/** Start of the Usage API window: a minute before the first request. */
const since = Math.floor(Date.now() / 1000) - 60;

async function createKey(name: string, admin: boolean): Promise<{ key: string; id: string }> {
  const run = await easelRun(['keys', 'create', name, ...(admin ? ['--admin'] : []), '--db', dbUrl]);
  expect(run.code, run.stderr).toBe(0);
  return { key: run.stdout.trim(), id: /key (key_\S+)/.exec(run.stderr)![1] };
}

/** `easel serve` on `port` (0: any) with its own data dir; resolves once its /readyz counts both workers. */
async function startNode(name: string, dataDir: string, port: number): Promise<Omit<ApiNode, 'client' | 'admin'>> {
  const { proc, url } = await easel.serve(name, ['--config', configFile, '--data-dir', dataDir, '--port', String(port)], AWS_ENV);
  await easel.waitFor(`${name}: /readyz 200 with 2 workers`, async () => {
    const res = await fetch(`${url}/readyz`);
    const body = (await res.json()) as { models?: Array<{ name: string; workers?: number }> };
    return res.status === 200 && body.models?.find((m) => m.name === 'tiny')?.workers === 2;
  });
  return { proc, dataDir, port: Number(new URL(url).port), url };
}

/** The node's openai clients, once the keys exist. */
function withKeys(node: Omit<ApiNode, 'client' | 'admin'>): ApiNode {
  const client = (apiKey: string) => new OpenAI({ apiKey, baseURL: `${node.url}/v1`, maxRetries: 0, timeout: 60_000 });
  return { ...node, client: client(appKey.key), admin: client(adminKey) };
}

async function usage(node: ApiNode, query: Record<string, unknown> = {}): Promise<Page> {
  const page = (await node.admin.get('/organization/usage/images', { query: { start_time: since, bucket_width: '1h', ...query } })) as Page;
  expect(validateUsage(page)).toEqual([]);
  return page;
}

function totals(page: Page): { images: number; requests: number } {
  const results = page.data.flatMap((b) => b.results);
  return { images: results.reduce((s, r) => s + r.images, 0), requests: results.reduce((s, r) => s + r.num_model_requests, 0) };
}

/**
 * The Usage API through `node` totals what was made. A JSON answer's row is written once its body has been handed to
 * the socket, which can be just after the client has read it: the totals are read until they match, then compared.
 */
async function expectTotals(node: ApiNode): Promise<void> {
  const deadline = Date.now() + 20_000;
  let got = totals(await usage(node));
  while ((got.images !== made.images || got.requests !== made.requests) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    got = totals(await usage(node));
  }
  expect(got).toEqual(made);
}

/** b64 images through `node`, each a PNG of the asked size; counted in `made`. */
async function generateB64(node: ApiNode, n: number): Promise<void> {
  const res = await node.client.images.generate({ ...ASK, n, response_format: 'b64_json' } as OpenAI.ImageGenerateParamsNonStreaming);
  expect(validateSchema('ImagesResponse', res)).toEqual([]);
  expect(res.data).toHaveLength(n);
  for (const item of res.data!) {
    const meta = await sharp(Buffer.from(item.b64_json!, 'base64')).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 256, 256]);
  }
  made.requests += 1;
  made.images += n;
}

async function fetchBytes(url: string): Promise<Buffer> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('image/png');
  return Buffer.from(await res.arrayBuffer());
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'easel-cluster-shared-'));
  // Each is assigned as soon as it runs, so afterAll stops it even if another failed to start.
  await Promise.all([
    startRedis().then((r) => (redis = r)),
    startPostgres().then((p) => (pg = p)),
    startS3rver([BUCKET]).then((s) => (s3 = s)),
  ]);
  dbUrl = await pg.newDatabase();
  configFile = join(dir, 'easel.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      models: [{ name: 'tiny', path: FIXTURE }],
      queue: { url: redis.url },
      db: { url: dbUrl },
      images: { store: `s3://${BUCKET}/cluster`, s3: { endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1' } },
      auth: { mode: 'keys' },
      // Nodes on several hosts share the URL secret through their config (README "Run a cluster").
      urlSecret: 'cluster-shared-test-url-secret',
    }),
  );
  for (const name of ['worker-1', 'worker-2']) easel.worker(name, ['--config', configFile]);
  // Both nodes start at once on the empty database (they take turns migrating it); the keys are made afterwards.
  const started = await Promise.all([startNode('api-a', join(dir, 'a'), 0), startNode('api-b', join(dir, 'b'), 0)]);
  appKey = await createKey('app', false);
  adminKey = (await createKey('ops', true)).key;
  nodes.push(...started.map(withKeys));
}, 180_000);

afterAll(async () => {
  await easel.stop();
  await Promise.allSettled([redis?.stop(), pg?.stop(), s3?.close()]);
  rmSync(dir, { recursive: true, force: true });
});

describe('2 API nodes on one Postgres, one bucket and one Redis, 2 workers', () => {
  let imageUrl: string;
  let imageBytes: Buffer;

  it('serves a url image made through node A from node B: the same PNG of the asked size', async () => {
    const [a, b] = nodes;
    const res = await a.client.images.generate({ ...ASK, response_format: 'url' } as OpenAI.ImageGenerateParamsNonStreaming);
    expect(validateSchema('ImagesResponse', res)).toEqual([]);
    made.requests += 1;
    made.images += 1;
    imageUrl = res.data![0].url!;
    expect(imageUrl.startsWith(`${a.url}/v1/images/files/`)).toBe(true);
    imageBytes = await fetchBytes(imageUrl);
    // B has its own data dir: the image can only come from the bucket.
    const viaB = await fetchBytes(imageUrl.replace(a.url, b.url));
    expect(viaB.equals(imageBytes)).toBe(true);
    const meta = await sharp(viaB).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 256, 256]);
  });

  it('b64 requests spread over both nodes are totalled by the Usage API on either node, all under the key used', async () => {
    await Promise.all([1, 2, 1, 3].map((n, i) => generateB64(nodes[i % 2], n)));
    for (const node of nodes) await expectTotals(node);
    const byKey = (await usage(nodes[1], { group_by: ['api_key_id'] })).data.flatMap((b) => b.results);
    expect(byKey.map((r) => [r.api_key_id, r.images, r.num_model_requests])).toEqual([[appKey.id, made.images, made.requests]]);
  });

  it('a SIGKILLed node restarts on its port and has lost no record, with those made on the other node meanwhile', async () => {
    const [a, b] = nodes;
    await expectTotals(b); // every row made so far is in Postgres
    a.proc.child.kill('SIGKILL');
    expect(await a.proc.exited).toBeNull(); // ended by the signal
    await Promise.all([generateB64(b, 1), generateB64(b, 2)]);
    await expectTotals(b);

    const restarted = withKeys(await startNode('api-a-restarted', a.dataDir, a.port));
    nodes[0] = restarted;
    expect(restarted.url).toBe(a.url);
    await expectTotals(restarted);
    // It serves again: the url image made before the kill, and new work.
    expect((await fetchBytes(imageUrl)).equals(imageBytes)).toBe(true);
    await generateB64(restarted, 1);
    for (const node of nodes) await expectTotals(node);
  }, 120_000);
});
