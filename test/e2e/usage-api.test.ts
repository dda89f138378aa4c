// End-to-end tests of OpenAI's Usage API for images (GET /v1/organization/usage/images) with the official openai
// client against a real server (tiny-sd fixture, SQLite, auth on): totals equal to the requests made, grouping,
// filters, paging, and the 401/403/400 answers; every response is validated against the vendored spec.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import type { UsagePage as Page } from '../../src/contract/usage-api.js';
import { openPostgresDb, openSqliteDb } from '../../src/db/index.js';
import { type RunningServer, startServer } from '../../src/server/start.js';
import { validateSchema } from '../helpers/openapi.js';
import { startPostgres } from '../helpers/postgres.js';
import { validateUsage } from '../helpers/usage-spec.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');
const DAY = 86_400_000;

let dir: string;
let server: RunningServer;
let clock: number;
let admin: OpenAI;
let standard: OpenAI;
let standardKeyId: string;
/** Yesterday 00:00 UTC: the requests below are made at known offsets from it. */
const t0 = Math.floor(Date.now() / DAY) * DAY - DAY;
const day0 = t0 / 1000;

async function usage(query: Record<string, unknown>): Promise<Page> {
  const page = (await admin.get('/organization/usage/images', { query })) as Page;
  expect(validateUsage(page)).toEqual([]);
  return page;
}

function totals(pages: Page[]): { images: number; requests: number } {
  const results = pages.flatMap((p) => p.data.flatMap((b) => b.results));
  return { images: results.reduce((s, r) => s + r.images, 0), requests: results.reduce((s, r) => s + r.num_model_requests, 0) };
}

/**
 * Waits until `n` requests are recorded: a JSON answer's row is written once its body has been handed to the socket,
 * which can be just after the client has read it, and the clock must not move before then.
 */
async function recorded(client: OpenAI, n: number): Promise<void> {
  const query = { start_time: day0, end_time: day0 + 2 * 86_400 };
  const deadline = Date.now() + 20_000;
  for (;;) {
    const got = totals([(await client.get('/organization/usage/images', { query })) as Page]).requests;
    if (got === n) return;
    if (Date.now() > deadline) throw new Error(`${got} requests recorded, expected ${n}`);
    await new Promise((ok) => setTimeout(ok, 20));
  }
}

async function png(size: number, color: string) {
  const bytes = await sharp({ create: { width: size, height: size, channels: 3, background: color } })
    .png()
    .toBuffer();
  return toFile(bytes, 'in.png', { type: 'image/png' });
}

async function queueRunning(): Promise<number> {
  const ready = (await (await fetch(`${server.url}/readyz`)).json()) as { queue: { running: number } };
  return ready.queue.running;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'easel-usage-api-'));
  const config = loadConfig({ model: FIXTURE, port: 0, dataDir: dir }, { EASEL_THREADS: '1', EASEL_AUTH: 'keys' });
  const db = openSqliteDb({ path: join(dir, 'easel.sqlite') });
  const adminKey = await db.createApiKey('ops', { admin: true });
  const std = await db.createApiKey('app');
  await db.close();
  standardKeyId = std.id;
  clock = t0;
  server = await startServer(config, { waitForWarmUp: true, now: () => clock });
  admin = new OpenAI({ apiKey: adminKey.key, baseURL: `${server.url}/v1`, maxRetries: 0 });
  standard = new OpenAI({ apiKey: std.key, baseURL: `${server.url}/v1`, maxRetries: 0 });

  // What is made, with the standard key: day 0 00:00:30 two generations (1 + 2 images, user alice); 00:02:30 an
  // edit (bob); 01:00:10 a variation (dall-e-2, 256x256, no user); 01:00:20 a generation cancelled by its client.
  clock = t0 + 30_000;
  await standard.images.generate({ model: 'gpt-image-1', prompt: 'a', size: '1024x1024', quality: 'low', user: 'alice' });
  await standard.images.generate({ model: 'gpt-image-1', prompt: 'b', size: '1024x1024', quality: 'low', n: 2, user: 'alice' });
  await recorded(admin, 2);
  clock = t0 + 150_000;
  await standard.images.edit({ model: 'gpt-image-1', image: await png(64, '#336699'), prompt: 'c', quality: 'low', user: 'bob' });
  await recorded(admin, 3);
  clock = t0 + 3_610_000;
  await standard.images.createVariation({ model: 'dall-e-2', image: await png(64, '#993366'), size: '256x256' });
  await recorded(admin, 4);
  clock = t0 + 3_620_000;
  const controller = new AbortController();
  const slow = standard.images
    .generate({ model: 'gpt-image-1', prompt: 'slow', size: '1024x1024', num_inference_steps: 100 } as never, { signal: controller.signal })
    .catch(() => 'aborted');
  const deadline = Date.now() + 30_000;
  while ((await queueRunning()) === 0 && Date.now() < deadline) await new Promise((ok) => setTimeout(ok, 20));
  controller.abort();
  expect(await slow).toBe('aborted');
  await recorded(admin, 5); // the cancelled request's row
  clock = t0 + DAY + 3_600_000;
}, 180_000);

afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('GET /v1/organization/usage/images', () => {
  it('needs an admin key: none is 401, an ordinary key 403, both in OpenAI error envelopes', async () => {
    const res = await fetch(`${server.url}/v1/organization/usage/images?start_time=${day0}`);
    expect(res.status).toBe(401);
    expect(validateSchema('ErrorResponse', await res.json())).toEqual([]);
    const err = await standard.get('/organization/usage/images', { query: { start_time: day0 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
    const denied = err as InstanceType<typeof OpenAI.PermissionDeniedError>;
    expect(validateSchema('ErrorResponse', { error: denied.error })).toEqual([]);
    expect(denied.code).toBe('insufficient_permissions');
    const wrong = new OpenAI({ apiKey: 'esk-wrong', baseURL: `${server.url}/v1`, maxRetries: 0 });
    await expect(wrong.get('/organization/usage/images', { query: { start_time: day0 } })).rejects.toBeInstanceOf(
      OpenAI.AuthenticationError,
    );
  });

  it('totals equal the requests made: images delivered, every request counted (the cancelled one with 0 images)', async () => {
    const page = await usage({ start_time: day0 });
    // end_time defaults to now (day 1, 01:00): 2 daily buckets, both listed, the second empty.
    expect(page.data.map((b) => [b.start_time, b.end_time, b.results.length])).toEqual([
      [day0, day0 + 86_400, 1],
      [day0 + 86_400, day0 + 86_400 + 3600, 0],
    ]);
    expect(page.data[0]!.results[0]).toEqual({
      object: 'organization.usage.images.result',
      images: 5,
      num_model_requests: 5,
      source: null,
      size: null,
      project_id: null,
      user_id: null,
      api_key_id: null,
      model: null,
    });
    expect(page).toMatchObject({ object: 'page', has_more: false, next_page: null });
  });

  it('groups by source, model and size, by user and key, and by project (one project: proj_default)', async () => {
    const q = { start_time: day0, end_time: day0 + 86_400 };
    const bySource = (await usage({ ...q, group_by: ['source'] })).data[0]!.results;
    expect(bySource.map((r) => [r.source, r.images, r.num_model_requests])).toEqual([
      ['image.edit', 1, 1],
      ['image.generation', 3, 3],
      ['image.variation', 1, 1],
    ]);
    expect(bySource.every((r) => r.model === null && r.size === null)).toBe(true);
    const byModelSize = (await usage({ ...q, group_by: ['model', 'size'] })).data[0]!.results;
    expect(byModelSize.map((r) => [r.model, r.size, r.images])).toEqual([
      ['dall-e-2', '256x256', 1],
      ['gpt-image-1', '1024x1024', 4],
    ]);
    const byUserKey = (await usage({ ...q, group_by: ['user_id', 'api_key_id', 'project_id'] })).data[0]!.results;
    const rows = byUserKey.map((r) => [r.user_id, r.api_key_id, r.project_id, r.images, r.num_model_requests]);
    expect(rows.sort((a, b) => String(a[0]).localeCompare(String(b[0])))).toEqual([
      ['alice', standardKeyId, 'proj_default', 3, 2],
      ['bob', standardKeyId, 'proj_default', 1, 1],
      [null, standardKeyId, 'proj_default', 1, 2],
    ]);
  });

  it('filters by sources, sizes, models, user_ids, api_key_ids and project_ids', async () => {
    const q = { start_time: day0, end_time: day0 + 86_400 };
    const sum = async (f: Record<string, unknown>) => totals([await usage({ ...q, ...f })]);
    expect(await sum({ sources: ['image.edit', 'image.variation'] })).toEqual({ images: 2, requests: 2 });
    expect(await sum({ sizes: ['256x256'] })).toEqual({ images: 1, requests: 1 });
    expect(await sum({ models: ['gpt-image-1'] })).toEqual({ images: 4, requests: 4 });
    expect(await sum({ user_ids: ['alice', 'bob'] })).toEqual({ images: 4, requests: 3 });
    expect(await sum({ api_key_ids: [standardKeyId] })).toEqual({ images: 5, requests: 5 });
    expect(await sum({ api_key_ids: ['key_other'] })).toEqual({ images: 0, requests: 0 });
    expect(await sum({ project_ids: ['proj_default'] })).toEqual({ images: 5, requests: 5 });
    expect(await sum({ project_ids: ['proj_other'] })).toEqual({ images: 0, requests: 0 });
    // The plain repeated form works as well as the SDK's `name[]=`.
    const res = await fetch(`${server.url}/v1/organization/usage/images?start_time=${day0}&sources=image.edit&sources=image.variation`, {
      headers: { authorization: `Bearer ${admin.apiKey}` },
    });
    expect(totals([(await res.json()) as Page])).toEqual({ images: 2, requests: 2 });
  });

  it('pages through minute buckets with next_page, every bucket listed once, totals kept', async () => {
    const q = { start_time: day0, end_time: day0 + 2 * 3600, bucket_width: '1m', limit: 50 };
    const pages: Page[] = [await usage(q)];
    while (pages.at(-1)!.has_more) pages.push(await usage({ ...q, page: pages.at(-1)!.next_page }));
    expect(pages.map((p) => p.data.length)).toEqual([50, 50, 20]);
    const starts = pages.flatMap((p) => p.data.map((b) => b.start_time));
    expect(starts).toEqual(Array.from({ length: 120 }, (_, i) => day0 + 60 * i));
    expect(totals(pages)).toEqual({ images: 5, requests: 5 });
    const busy = pages.flatMap((p) => p.data).filter((b) => b.results.length > 0);
    expect(busy.map((b) => [(b.start_time - day0) / 60, b.results[0]!.images, b.results[0]!.num_model_requests])).toEqual([
      [0, 3, 2],
      [2, 1, 1],
      [60, 1, 2],
    ]);
    expect(pages.at(-1)!.next_page).toBeNull();
    // Hourly default limit 24 and daily default 7.
    expect((await usage({ start_time: day0 - 30 * 86_400, bucket_width: '1h' })).data).toHaveLength(24);
    expect((await usage({ start_time: day0 - 30 * 86_400 })).data).toHaveLength(7);
  });

  it('refuses bad parameters with 400 invalid_request_error naming the parameter', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{}, 'start_time'],
      [{ start_time: 'yesterday' }, 'start_time'],
      [{ start_time: 1e13 }, 'start_time'],
      [{ start_time: [day0, day0 + 1] }, 'start_time'],
      [{ start_time: day0, end_time: day0 }, 'end_time'],
      [{ start_time: day0, bucket_width: '2h' }, 'bucket_width'],
      [{ start_time: day0, limit: 0 }, 'limit'],
      [{ start_time: day0, limit: 32 }, 'limit'],
      [{ start_time: day0, bucket_width: '1h', limit: 169 }, 'limit'],
      [{ start_time: day0, bucket_width: '1m', limit: 1441 }, 'limit'],
      [{ start_time: day0, sources: ['image.upscale'] }, 'sources'],
      [{ start_time: day0, sizes: ['big'] }, 'sizes'],
      [{ start_time: day0, group_by: ['prompt'] }, 'group_by'],
      [{ start_time: day0, page: 'not-a-cursor' }, 'page'],
    ];
    for (const [query, param] of cases) {
      const err = await admin.get('/organization/usage/images', { query }).catch((e: unknown) => e);
      expect(err, JSON.stringify(query)).toBeInstanceOf(OpenAI.BadRequestError);
      const bad = err as InstanceType<typeof OpenAI.BadRequestError>;
      expect(bad.param, JSON.stringify(query)).toBe(param);
      expect(bad.type).toBe('invalid_request_error');
      expect(validateSchema('ErrorResponse', { error: bad.error })).toEqual([]);
    }
    // The usage reads changed nothing.
    expect(totals([await usage({ start_time: day0, end_time: day0 + 86_400 })])).toEqual({ images: 5, requests: 5 });
  });
});

describe('with auth.mode "none"', () => {
  it('answers without a key, like every other endpoint of a keyless server', async () => {
    const open = mkdtempSync(join(tmpdir(), 'easel-usage-open-'));
    const keyless = await startServer(loadConfig({ model: FIXTURE, port: 0, dataDir: open }, { EASEL_THREADS: '1' }));
    try {
      const res = await fetch(`${keyless.url}/v1/organization/usage/images?start_time=${day0}&bucket_width=1h&limit=2`);
      expect(res.status).toBe(200);
      const page = (await res.json()) as Page;
      expect(validateUsage(page)).toEqual([]);
      expect(page.data.map((b) => b.results)).toEqual([[], []]);
      expect(page.has_more).toBe(true);
    } finally {
      await keyless.close();
      rmSync(open, { recursive: true, force: true });
    }
  });
});

describe('on Postgres (db.url)', () => {
  it('the same answers from usage rows in Postgres, bucketed there', async () => {
    const pg = await startPostgres();
    const data = mkdtempSync(join(tmpdir(), 'easel-usage-pg-'));
    try {
      const url = await pg.newDatabase();
      const db = await openPostgresDb({ url });
      const key = await db.createApiKey('pg-ops', { admin: true });
      await db.close();
      let now = t0 + 30_000;
      const config = loadConfig({ model: FIXTURE, port: 0, dataDir: data, db: url }, { EASEL_THREADS: '1', EASEL_AUTH: 'keys' });
      const node = await startServer(config, { now: () => now });
      try {
        const c = new OpenAI({ apiKey: key.key, baseURL: `${node.url}/v1`, maxRetries: 0 });
        await c.images.generate({ model: 'gpt-image-1', prompt: 'p', size: '1024x1024', quality: 'low', n: 2, user: 'carol' });
        await recorded(c, 1);
        now = t0 + 3_630_000;
        await c.images.generate({ model: 'gpt-image-1', prompt: 'q', size: '1024x1024', quality: 'low' });
        const page = (await c.get('/organization/usage/images', {
          query: { start_time: day0, end_time: day0 + 7200, bucket_width: '1h', group_by: ['user_id', 'api_key_id'] },
        })) as Page;
        expect(validateUsage(page)).toEqual([]);
        expect(page.data.map((b) => b.results.map((r) => [r.user_id, r.api_key_id, r.images, r.num_model_requests]))).toEqual([
          [['carol', key.id, 2, 1]],
          [[null, key.id, 1, 1]],
        ]);
      } finally {
        await node.close();
      }
    } finally {
      await pg.stop();
      rmSync(data, { recursive: true, force: true });
    }
  }, 120_000);
});
