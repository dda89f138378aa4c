// Per-key rate limits with the official openai client against real servers on the tiny fixture:
// - embedded, auth on: OpenAI's six x-ratelimit-* headers on every answer to an image request (errors included),
//   429 rate_limit_exceeded (type requests / tokens) with Retry-After, a stream refused with the HTTP status before it
//   opens, a request larger than the whole token limit, a key's own rpm/tpm over the config defaults, and
//   easel_rejected_total{reason="rate_limited"};
// - cluster: two API nodes on one real Redis (and one engine worker) count against the same buckets, and Redis going
//   away is a 503 with Retry-After, not a hang.
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Config, loadConfig } from '../../src/config/config.js';
import { openSqliteDb } from '../../src/db/index.js';
import { type RunningServer, startServer } from '../../src/server/start.js';
import { type ApiNode, startApiNode } from '../../src/server/start-api.js';
import { type RunningWorker, startWorker } from '../../src/worker/main.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');
/** OpenAI's reset format (Go durations): 17ms, 1s, 1.5s, 6m0s, 1h2m3s. */
const DURATION = /^(?:\d+ms|(?:\d+h)?(?:\d+m)?\d+(?:\.\d+)?s)$/;

const LOW = { model: 'gpt-image-1', prompt: 'a red circle', size: '1024x1024', quality: 'low' } as const; // 272 tokens
const MEDIUM = { ...LOW, quality: 'medium' } as const; // 1056 tokens

type ApiErr = InstanceType<typeof OpenAI.APIError>;
type Family = { name: string; metrics: Array<{ labels?: Record<string, string>; value: string }> };
const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => Family[];
const quiet = { info() {}, warn() {}, error() {} };

async function refusal(p: Promise<unknown>): Promise<ApiErr> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OpenAI.APIError);
  return err as ApiErr;
}

function limitHeaders(h: Headers): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const kind of ['requests', 'tokens'])
    for (const what of ['limit', 'remaining', 'reset']) out[`${what}-${kind}`] = h.get(`x-ratelimit-${what}-${kind}`);
  return out;
}

describe('embedded, per API key', () => {
  let dir: string;
  let server: RunningServer;
  const keys: Record<string, string> = {};
  const client = (name: string) => new OpenAI({ apiKey: keys[name], baseURL: `${server.url}/v1`, maxRetries: 0 });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'easel-ratelimit-'));
    const base = loadConfig({ model: FIXTURE, port: 0, dataDir: dir }, { EASEL_THREADS: '1' });
    const config: Config = { ...base, auth: { mode: 'keys' }, rateLimits: { requestsPerMinute: 4, tokensPerMinute: 1000 } };
    const db = openSqliteDb({ path: join(dir, 'easel.sqlite') });
    for (const name of ['headers', 'burst', 'tokens', 'large']) keys[name] = (await db.createApiKey(name)).key;
    keys.own = (await db.createApiKey('own', { rpm: 10, tpm: 100_000 })).key;
    keys.admin = (await db.createApiKey('admin', { admin: true })).key;
    await db.close();
    server = await startServer(config, { waitForWarmUp: true });
  });

  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends the six headers on every answer to an image request, a refusal included', async () => {
    const { response } = await client('headers').images.generate(LOW).withResponse();
    const ok = limitHeaders(response.headers);
    expect(ok).toMatchObject({ 'limit-requests': '4', 'remaining-requests': '3', 'limit-tokens': '1000' });
    expect(Number(ok['remaining-tokens'])).toBeGreaterThanOrEqual(1000 - 272);
    expect(Number(ok['remaining-tokens'])).toBeLessThan(1000);
    expect(ok['reset-requests']).toMatch(DURATION);
    expect(ok['reset-tokens']).toMatch(DURATION);
    expect(ok['reset-requests']).not.toBe('0s');

    const bad = await refusal(client('headers').images.generate({ ...LOW, size: 'bogus' } as never));
    expect(bad.status).toBe(400);
    expect(limitHeaders(bad.headers!)).toMatchObject({ 'limit-requests': '4', 'remaining-requests': '2', 'limit-tokens': '1000' });

    // edits (multipart) are counted the same way, tokens included
    const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#ff0000' } })
      .png()
      .toBuffer();
    const image = await toFile(png, 'in.png', { type: 'image/png' });
    const { response: edited } = await client('headers')
      .images.edit({ ...LOW, image, prompt: 'a yellow star' })
      .withResponse();
    const e = limitHeaders(edited.headers);
    expect(e).toMatchObject({ 'limit-requests': '4', 'remaining-requests': '1' });
    expect(Number(e['remaining-tokens'])).toBeLessThan(1000 - 272);

    // other routes are not rate limited and carry none
    const models = await fetch(`${server.url}/v1/models`, { headers: { authorization: `Bearer ${keys.headers}` } });
    expect(models.headers.get('x-ratelimit-limit-requests')).toBeNull();
  });

  it('answers 429 type requests with Retry-After once the requests per minute are spent', async () => {
    for (let i = 0; i < 4; i++)
      expect((await refusal(client('burst').images.generate({ ...LOW, size: 'bogus' } as never))).status).toBe(400);
    const err = await refusal(client('burst').images.generate(LOW));
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(err.error).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded', param: null });
    expect((err.error as { message: string }).message).toMatch(/Limit 4, Used 4, Requested 1\. Please try again in \S+\./);
    expect(Number(err.headers!.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(err.headers!.get('x-ratelimit-remaining-requests')).toBe('0');
  });

  it('refuses a stream over the token limit with an HTTP 429 before it opens', async () => {
    for (let i = 0; i < 3; i++) await client('tokens').images.generate(LOW); // 816 of 1000 tokens
    const err = await refusal(
      client('tokens').images.generate({ ...LOW, stream: true, partial_images: 1 } as OpenAI.ImageGenerateParamsStreaming), // 372 more
    );
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(err.error).toMatchObject({ type: 'tokens', code: 'rate_limit_exceeded' });
    expect(err.headers!.get('content-type')).toMatch(/^application\/json/);
    expect(Number(err.headers!.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(err.headers!.get('x-ratelimit-remaining-tokens'))).toBeLessThan(372);
  });

  it('says a request larger than the whole token limit is too large, and not to retry it', async () => {
    const err = await refusal(client('large').images.generate(MEDIUM));
    expect(err.status).toBe(429);
    expect(err.error).toMatchObject({ type: 'tokens', code: 'rate_limit_exceeded' });
    expect((err.error as { message: string }).message).toContain('Request too large');
    expect(err.headers!.get('x-should-retry')).toBe('false');
    expect(err.headers!.get('retry-after')).toBeNull();
  });

  it("uses a key's own rpm and tpm over the config defaults", async () => {
    const { response } = await client('own').images.generate(MEDIUM).withResponse();
    const h = limitHeaders(response.headers);
    expect(h).toMatchObject({ 'limit-requests': '10', 'remaining-requests': '9', 'limit-tokens': '100000' });
    expect(Number(h['remaining-tokens'])).toBeGreaterThanOrEqual(100_000 - 1056);
  });

  it('counts the refusals in easel_rejected_total{reason="rate_limited"}', async () => {
    const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${keys.admin}` } });
    expect(res.status).toBe(200);
    const families = parsePrometheus(await res.text());
    const rejected = families.find((f) => f.name === 'easel_rejected_total')!;
    const limited = rejected.metrics.find((m) => m.labels?.reason === 'rate_limited');
    expect(Number(limited?.value)).toBe(3);
  });
});

describe('cluster: two API nodes on one Redis', () => {
  let redis: TestRedis;
  let dir: string;
  let worker: RunningWorker;
  const nodes: ApiNode[] = [];
  const clients: OpenAI[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'easel-ratelimit-cluster-'));
    const base = loadConfig({ model: FIXTURE, port: 0, dataDir: dir, queue: redis.url }, { EASEL_THREADS: '1' });
    const config: Config = { ...base, rateLimits: { requestsPerMinute: 3, tokensPerMinute: 1000 } };
    for (let i = 0; i < 2; i++) nodes.push(await startApiNode(config, { waitForWarmUp: true }));
    worker = await startWorker(config, { url: redis.url, log: quiet });
    for (const node of nodes) {
      for (let i = 0; i < 200 && (await fetch(`${node.url}/readyz`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 50));
      clients.push(new OpenAI({ apiKey: 'sk-any', baseURL: `${node.url}/v1`, maxRetries: 0, timeout: 30_000 }));
    }
  }, 60_000);

  afterAll(async () => {
    for (const node of nodes) await node.close();
    await worker?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('shares the buckets of a client address across nodes', async () => {
    const [a, b] = clients;
    await a.images.generate(LOW);
    await a.images.generate(LOW);
    const { response } = await b.images.generate(LOW).withResponse();
    const h = limitHeaders(response.headers);
    expect(h).toMatchObject({ 'limit-requests': '3', 'remaining-requests': '0', 'limit-tokens': '1000' });
    expect(Number(h['remaining-tokens'])).toBeGreaterThanOrEqual(1000 - 3 * 272);
    expect(Number(h['remaining-tokens'])).toBeLessThan(1000 - 2 * 272);
    for (const c of [b, a]) {
      const err = await refusal(c.images.generate(LOW));
      expect(err.status).toBe(429);
      expect(err.error).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded' });
      expect(Number(err.headers!.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
  });

  it('answers 503 with Retry-After while Redis is away, then counts again', async () => {
    const restarted = redis.restart(3000);
    let res: Response | undefined;
    for (let i = 0; i < 100; i++) {
      res = await fetch(`${nodes[0].url}/v1/images/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(LOW),
        signal: AbortSignal.timeout(10_000),
      });
      if (res.status === 503) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(res!.status).toBe(503);
    expect(Number(res!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const body = (await res!.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('service_unavailable');
    expect(body.error.message).toContain('rate limiter');
    await restarted;
    // a fresh Redis holds no buckets: the next request is counted from zero
    let after: Response | undefined;
    for (let i = 0; i < 100; i++) {
      after = await fetch(`${nodes[1].url}/v1/images/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...LOW, size: 'bogus' }),
        signal: AbortSignal.timeout(10_000),
      });
      if (after.status !== 503) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(after!.status).toBe(400);
    expect(after!.headers.get('x-ratelimit-remaining-requests')).toBe('2');
  });
});
