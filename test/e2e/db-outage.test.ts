// A Postgres outage while the server runs: requests that need the database (an API key check, the Usage API) get a
// retryable 503 with Retry-After in OpenAI's envelope, promptly and without a 500; when Postgres is back, so is the
// server, with no restart. Real Postgres (test/helpers/postgres.ts), a real server, the official openai client.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { openPostgresDb } from '../../src/db/index.js';
import { type RunningServer, startServer } from '../../src/server/start.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');

let pg: TestPostgres;
let server: RunningServer;
let dataDir: string;
let key: string;
let admin: string;

beforeAll(async () => {
  pg = await startPostgres();
  const url = await pg.newDatabase();
  const db = await openPostgresDb({ url });
  key = (await db.createApiKey('app')).key;
  admin = (await db.createApiKey('ops', { admin: true })).key;
  await db.close();
  dataDir = mkdtempSync(join(tmpdir(), 'easel-db-outage-'));
  const config = loadConfig({ model: FIXTURE, port: 0, dataDir, db: url }, { EASEL_THREADS: '1', EASEL_AUTH: 'keys' });
  server = await startServer(config, { waitForWarmUp: true });
}, 120_000);

afterAll(async () => {
  await server?.close();
  await pg?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const client = (apiKey: string) => new OpenAI({ baseURL: `${server.url}/v1`, apiKey, maxRetries: 0 });

async function generate(apiKey: string): Promise<Response> {
  return fetch(`${server.url}/v1/images/generations`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-image-1', prompt: 'a red circle', size: '1024x1024', quality: 'low' }),
  });
}

/** Waits until the Usage API counts `n` requests today (rows are written just after each answer). */
async function untilRequests(n: number): Promise<void> {
  const start_time = Math.floor(Date.now() / 1000) - 3600;
  for (;;) {
    const page = (await client(admin).get('/organization/usage/images', { query: { start_time, bucket_width: '1d' } })) as {
      data: Array<{ results: Array<{ num_model_requests: number }> }>;
    };
    const requests = page.data.flatMap((b) => b.results).reduce((sum, r) => sum + r.num_model_requests, 0);
    if (requests >= n) return expect(requests).toBe(n);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Postgres outage at run time', () => {
  it('answers 503 with Retry-After while the database is down, and recovers when it is back', async () => {
    const before = await client(key).images.generate({ model: 'gpt-image-1', prompt: 'a red circle', size: '1024x1024', quality: 'low' });
    expect(before.data?.[0]?.b64_json).toBeTruthy();
    await untilRequests(1); // its usage row is written after the answer

    await pg.pause();
    const down = await generate(key);
    expect(down.status).toBe(503);
    expect(Number(down.headers.get('retry-after'))).toBeGreaterThan(0);
    const body = (await down.json()) as { error: { message: string; type: string; code: string | null } };
    expect(body.error.message).toMatch(/database is unreachable/);

    // The official client sees an APIError with status 503 (no retries configured), not a connection failure.
    const usage = await client(admin)
      .get('/organization/usage/images', { query: { start_time: Math.floor(Date.now() / 1000) - 3600 } })
      .catch((e: unknown) => e);
    expect(usage).toBeInstanceOf(OpenAI.APIError);
    expect((usage as InstanceType<typeof OpenAI.APIError>).status).toBe(503);

    // Health does not depend on the database: the process is alive and answers.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);

    await pg.resume();
    const after = await client(key).images.generate({ model: 'gpt-image-1', prompt: 'a red circle', size: '1024x1024', quality: 'low' });
    expect(after.data?.[0]?.b64_json).toBeTruthy();
    // Both generations answered while the database was up are recorded; the refused ones never reached a handler.
    await untilRequests(2);
  }, 120_000);
});
