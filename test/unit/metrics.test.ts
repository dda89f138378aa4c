// GET /metrics on the real embedded server (tiny fixture, app.inject): the exposition is parsed with a real Prometheus
// text parser after real requests, and who may read it follows auth (an admin key), metrics.public and metrics.port.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { openSqliteDb } from '../../src/db/index.js';
import { createEmbeddedServer, type EmbeddedServer, type StartOptions, startServer } from '../../src/server/start.js';
import { WorkerMetrics } from '../../src/worker/metrics.js';

interface Sample {
  value?: string;
  labels?: Record<string, string>;
}
interface Family {
  name: string;
  type: string;
  metrics: Sample[];
}
// The package ships CommonJS without types.
const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => Family[];

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');
const dirs: string[] = [];

/** The config of a server on the tiny fixture with auth on, a queue that holds one job waiting, and `extra`; and keys. */
async function configWith(extra: Record<string, unknown>) {
  const dir = mkdtempSync(join(tmpdir(), 'easel-metrics-'));
  dirs.push(dir);
  const file = join(dir, 'easel.json');
  const models = [{ name: 'tiny', path: FIXTURE, family: 'gpt-image' }];
  writeFileSync(
    file,
    JSON.stringify({
      models,
      queue: { maxWaiting: 1 },
      auth: { mode: 'keys' },
      dataDir: 'data',
      limits: { maxSteps: 100, maxImageStepMegapixels: 1000 },
      ...extra,
    }),
  );
  const config = loadConfig({ config: file, port: 0 }, { EASEL_THREADS: '1' });
  const db = openSqliteDb({ path: join(config.dataDir, 'easel.sqlite') });
  const key = (await db.createApiKey('ops', { admin: true })).key;
  const standardKey = (await db.createApiKey('app')).key;
  await db.close();
  return { config, key, standardKey };
}

/** The server of configWith, wired but not listening (app.inject); `key` is an admin key. */
async function serverWith(
  extra: Record<string, unknown>,
  opts: StartOptions = {},
): Promise<{ server: EmbeddedServer; key: string; standardKey: string }> {
  const { config, key, standardKey } = await configWith(extra);
  return { server: await createEmbeddedServer(config, { ...opts, waitForWarmUp: true }), key, standardKey };
}

let server: EmbeddedServer;
let key: string;
let standardKey: string;

beforeAll(async () => {
  ({ server, key, standardKey } = await serverWith({}));
});

afterAll(async () => {
  await server?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function generate(body: Record<string, unknown>) {
  return server.app.inject({
    method: 'POST',
    url: '/v1/images/generations',
    payload: { model: 'tiny', size: '1024x1024', quality: 'low', ...body },
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
  });
}

async function scrape(): Promise<Family[]> {
  const res = await server.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${key}` } });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheus(res.body);
}

/**
 * A histogram's _count and _sum for the labels, from prom-client's own reading of the registry: the text parser folds
 * every label set of a histogram into one sample, so it cannot tell them apart.
 */
async function histogram(name: string, labels: Record<string, string>): Promise<{ count: number; sum: number }> {
  const metric = await server.metrics.registry.getSingleMetric(name)?.get();
  // A histogram's values name their series (_bucket, _sum, _count).
  const values = (metric?.values ?? []) as Array<{ metricName?: string; value: number; labels: Record<string, string | number> }>;
  const value = (suffix: string) =>
    values.find((v) => v.metricName === `${name}${suffix}` && Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
  return { count: value('_count'), sum: value('_sum') };
}

/** The value of the sample of `name` whose labels include `labels` (0 when there is none yet). */
function sampleValue(families: Family[], name: string, labels: Record<string, string> = {}): number {
  const family = families.find((f) => f.name === name);
  const sample = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return Number(sample?.value ?? 0);
}

describe('GET /metrics', () => {
  it('counts one generated image under its served model, size and quality, and never labels the prompt', async () => {
    const labels = { model: 'tiny', size: '1024x1024', quality: 'low' };
    const before = sampleValue(await scrape(), 'easel_images_generated_total', labels);
    const prompt = 'a uniquely worded lighthouse prompt';
    expect((await generate({ prompt })).statusCode).toBe(200);
    const after = await scrape();
    expect(sampleValue(after, 'easel_images_generated_total', labels)).toBe(before + 1);
    const labelValues = after.flatMap((f) => f.metrics.flatMap((m) => Object.values(m.labels ?? {})));
    expect(labelValues.some((v) => v.includes('lighthouse'))).toBe(false);
    expect(labelValues).not.toContain(key);
    const stages = after.find((f) => f.name === 'easel_stage_seconds');
    expect(stages?.type).toBe('HISTOGRAM');
  });

  it('observes the batch a job ran: n images in one job is one batch of n', async () => {
    const before = await histogram('easel_batch_size', { model: 'tiny' });
    expect((await generate({ prompt: 'two squares', n: 2 })).statusCode).toBe(200);
    const after = await histogram('easel_batch_size', { model: 'tiny' });
    expect(after.count).toBe(before.count + 1);
    expect(after.sum).toBe(before.sum + 2);
  });

  it('counts requests by route pattern, method and status, unknown paths as 404', async () => {
    const before = await scrape();
    const route = { route: '/v1/images/generations', method: 'POST', status: '400' };
    expect((await generate({ prompt: 'x', n: 0 })).statusCode).toBe(400);
    const lost = await server.app.inject({ method: 'GET', url: '/no/such/path-123', headers: { authorization: `Bearer ${key}` } });
    expect(lost.statusCode).toBe(404);
    const after = await scrape();
    expect(sampleValue(after, 'easel_http_requests_total', route)).toBe(sampleValue(before, 'easel_http_requests_total', route) + 1);
    const unknown = { route: '404', method: 'GET', status: '404' };
    expect(sampleValue(after, 'easel_http_requests_total', unknown)).toBe(sampleValue(before, 'easel_http_requests_total', unknown) + 1);
    const routes = after.find((f) => f.name === 'easel_http_requests_total')?.metrics.map((m) => m.labels?.route);
    expect(routes).not.toContain('/no/such/path-123');
  });

  it('counts a full queue’s 429 under easel_rejected_total{reason="queue_full"}', async () => {
    const reason = { reason: 'queue_full' };
    const before = sampleValue(await scrape(), 'easel_rejected_total', reason);
    const slow = () => generate({ prompt: 'busy', num_inference_steps: 100 }).then((r) => r.statusCode);
    const statuses = await Promise.all([slow(), slow(), slow(), slow()]);
    const refused = statuses.filter((s) => s === 429).length;
    expect(refused).toBeGreaterThanOrEqual(1);
    expect(sampleValue(await scrape(), 'easel_rejected_total', reason)).toBe(before + refused);
  });

  it('counts a flagged prompt under moderation and an oversized body under too_large', async () => {
    const before = await scrape();
    const flagged = await generate({ prompt: 'a gore scene' });
    expect(flagged.json().error.code).toBe('moderation_blocked');
    const big = await generate({ prompt: 'x'.repeat(3 * 1024 * 1024) });
    expect(big.statusCode).toBe(413);
    const after = await scrape();
    for (const reason of ['moderation', 'too_large']) {
      expect(sampleValue(after, 'easel_rejected_total', { reason })).toBe(sampleValue(before, 'easel_rejected_total', { reason }) + 1);
    }
  });

  it('shows the default process metrics, the workers and the data dir’s free space', async () => {
    const families = await scrape();
    const names = families.map((f) => f.name);
    expect(names).toEqual(expect.arrayContaining(['process_cpu_seconds_total', 'nodejs_heap_size_used_bytes']));
    expect(sampleValue(families, 'easel_workers', { model: 'tiny' })).toBe(1);
    expect(sampleValue(families, 'easel_data_dir_free_bytes')).toBeGreaterThan(0);
    expect(sampleValue(families, 'easel_usage_write_failures_total')).toBe(0);
    expect(names).toEqual(expect.arrayContaining(['easel_queue_waiting', 'easel_queue_running']));
  });

  it('shows the queue per model: waiting and running jobs of the model, while they wait and run', async () => {
    const depth = (f: Family[]) => [
      sampleValue(f, 'easel_queue_running', { model: 'tiny' }),
      sampleValue(f, 'easel_queue_waiting', { model: 'tiny' }),
    ];
    const idle = await scrape();
    expect(idle.find((f) => f.name === 'easel_queue_waiting')?.metrics.map((m) => m.labels?.model)).toEqual(['tiny']);
    expect(depth(idle)).toEqual([0, 0]);
    // Two long jobs: one runs while the other waits, for as long as the first one takes.
    const slow = () => generate({ prompt: 'busy', n: 4, num_inference_steps: 100 });
    let done = false;
    const jobs = Promise.all([slow(), slow()]).finally(() => {
      done = true;
    });
    const seen = new Set<string>();
    while (!done) {
      seen.add(depth(await scrape()).join());
      await new Promise((r) => setTimeout(r, 5));
    }
    await jobs;
    expect(seen).toContain('1,1');
    expect(depth(await scrape())).toEqual([0, 0]);
  });

  it('exports every metric of the issue’s table, and every one the shipped dashboard and alert rules query', async () => {
    const server = (await scrape()).map((f) => f.name);
    const worker = (await new WorkerMetrics().registry.getMetricsAsJSON()).map((m) => m.name);
    const table = [
      'easel_http_requests_total',
      'easel_http_request_duration_seconds',
      'easel_queue_waiting',
      'easel_queue_running',
      'easel_queue_wait_seconds',
      'easel_job_duration_seconds',
      'easel_images_generated_total',
      'easel_unet_step_seconds',
      'easel_batch_size',
      'easel_stage_seconds',
      'easel_rejected_total',
      'easel_usage_write_failures_total',
      'easel_workers',
      'easel_data_dir_free_bytes',
    ];
    expect(server).toEqual(expect.arrayContaining(table));
    const docs = ['docs/grafana/easel.json', 'docs/prometheus/alerts.yml'].map((f) =>
      readFileSync(join(import.meta.dirname, '..', '..', f), 'utf8'),
    );
    const queried = new Set(docs.flatMap((text) => [...text.matchAll(/\b(easel_[a-z_]+?)(?:_bucket|_sum|_count)?\b/g)].map((m) => m[1])));
    expect(queried.size).toBeGreaterThan(10);
    expect([...queried].filter((name) => !server.includes(name))).toEqual([]);
    // A worker's own /metrics: its job metrics and the process ones the dashboard's RSS panel reads.
    expect(worker).toEqual(expect.arrayContaining(['easel_job_duration_seconds', 'easel_batch_size', 'process_resident_memory_bytes']));
  });

  it('needs an admin key when auth is on: none or a bad one is a 401, a standard key a 403', async () => {
    expect((await server.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
    const wrong = { authorization: 'Bearer esk-not-a-key' };
    expect((await server.app.inject({ method: 'GET', url: '/metrics', headers: wrong })).statusCode).toBe(401);
    const standard = await server.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${standardKey}` } });
    expect(standard.statusCode).toBe(403);
    expect(standard.json().error).toMatchObject({ code: 'insufficient_permissions', type: 'invalid_request_error' });
    // The same key still generates: only /metrics is for admins.
    const models = await server.app.inject({ method: 'GET', url: '/v1/models', headers: { authorization: `Bearer ${standardKey}` } });
    expect(models.statusCode).toBe(200);
  });

  it('moves to a listener of its own with metrics.port: no key there, a 404 on the API port', async () => {
    const { config, key: admin } = await configWith({ metrics: { port: 0 } });
    const running = await startServer(config, { waitForWarmUp: true });
    try {
      expect(running.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(new URL(running.metricsUrl!).port).not.toBe(new URL(running.url).port);
      const onApi = await fetch(`${running.url}/metrics`, { headers: { authorization: `Bearer ${admin}` } });
      expect(onApi.status).toBe(404);
      const res = await fetch(`${running.metricsUrl}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(sampleValue(parsePrometheus(await res.text()), 'easel_workers', { model: 'tiny' })).toBe(1);
      expect((await fetch(`${running.metricsUrl}/v1/models`)).status).toBe(404);
    } finally {
      await running.close();
    }
    // Closed with the server.
    await expect(fetch(`${running.metricsUrl}/metrics`)).rejects.toThrow();
  });

  it('is open with metrics.public, while the API still needs a key; a full disk counts as disk_full', async () => {
    // A data dir with 4 KiB free against the default 64 MiB reserve: every job is refused with a 503.
    const open = await serverWith({ metrics: { public: true } }, { io: { statfs: async () => ({ bavail: 1, bsize: 4096 }) } });
    try {
      expect((await open.server.app.inject({ method: 'GET', url: '/v1/models' })).statusCode).toBe(401);
      const headers = { 'content-type': 'application/json', authorization: `Bearer ${open.key}` };
      const payload = { model: 'tiny', prompt: 'x' };
      const refused = await open.server.app.inject({ method: 'POST', url: '/v1/images/generations', payload, headers });
      expect(refused.statusCode).toBe(503);
      const res = await open.server.app.inject({ method: 'GET', url: '/metrics' });
      expect(res.statusCode).toBe(200);
      const families = parsePrometheus(res.body);
      expect(sampleValue(families, 'easel_rejected_total', { reason: 'disk_full' })).toBe(1);
      expect(sampleValue(families, 'easel_data_dir_free_bytes')).toBe(4096);
      expect(sampleValue(families, 'easel_data_dir_reserve_bytes')).toBe(64 * 1024 * 1024);
    } finally {
      await open.server.close();
    }
  });
});
