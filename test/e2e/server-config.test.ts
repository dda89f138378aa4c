// End-to-end checks of configured behaviour: a bad config stops the CLI before it listens, a bounded queue answering
// 429 + Retry-After while staying responsive, API-key auth (keys made through the same database the CLI uses), and
// quality presets from a model folder's easel.json, with the official openai client.
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { openSqliteDb } from '../../src/db/index.js';
import { type RunningServer, startServer } from '../../src/server/start.js';
import { easel } from '../helpers/cli.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');

describe('a bad config stops the CLI, naming the file and the key', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'easel-badcfg-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('`easel serve --config bad.json` exits 1 before listening', async () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ auth: { mode: 'key' } }));
    const run = await easel(['serve', '--config', file, '--port', '0', '--data-dir', join(dir, 'data')]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`easel: invalid config:\n  ${file}: auth.mode: expected one of "none" | "keys", got "key"`);
    expect(run.stderr).not.toContain('listening');
  });

  it('`easel serve` with EASEL_AUTH=kyes exits 1 rather than serving without auth', async () => {
    const run = await easel(['serve', '--port', '0', '--data-dir', join(dir, 'data')], { EASEL_AUTH: 'kyes' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('EASEL_AUTH: expected one of "none" | "keys", got "kyes"');
  });

  it('`easel config check` exits 1 listing every problem, and 0 with "ok:" for a good file', async () => {
    const bad = join(dir, 'two.json');
    writeFileSync(bad, JSON.stringify({ limits: { bodyBytes: '2MB' }, engine: { provider: 'gpu' } }));
    const failed = await easel(['config', 'check', bad]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('limits.bodyBytes: expected an integer, got "2MB"');
    expect(failed.stderr).toContain('engine.provider: expected one of "cpu" | "cuda" | "webgpu", got "gpu"');
    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({ models: [{ name: 'tiny', path: FIXTURE }] }));
    const ok = await easel(['config', 'check', good]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^ok: .*models tiny/);
  });
});

describe('bounded queue and API keys', () => {
  let dir: string;
  let server: RunningServer;
  let key: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'easel-cfg-'));
    const file = join(dir, 'easel.json');
    writeFileSync(
      file,
      JSON.stringify({
        models: [{ name: 'tiny', path: FIXTURE, family: 'gpt-image' }],
        queue: { maxWaiting: 1 },
        auth: { mode: 'keys' },
        dataDir: 'data',
      }),
    );
    const config = loadConfig({ config: file, port: 0 }, { EASEL_THREADS: '1' });
    expect(config.defaultModel).toBe('tiny');
    const db = openSqliteDb({ path: join(config.dataDir, 'easel.sqlite') });
    key = (await db.createApiKey('test')).key;
    await db.close();
    server = await startServer(config, { waitForWarmUp: true });
  });

  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('requires a valid key on /v1 but not on health', async () => {
    const none = new OpenAI({ apiKey: 'esk-wrong', baseURL: `${server.url}/v1`, maxRetries: 0 });
    await expect(none.images.generate({ model: 'tiny', prompt: 'x' })).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const res = await fetch(`${server.url}/v1/models`);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBeDefined();
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const ok = new OpenAI({ apiKey: key, baseURL: `${server.url}/v1`, maxRetries: 0 });
    expect((await ok.models.list()).data.map((m) => m.id)).toContain('tiny');
  });

  it('answers 429 with Retry-After when the queue is full, and keeps serving health', async () => {
    const client = new OpenAI({ apiKey: key, baseURL: `${server.url}/v1`, maxRetries: 0 });
    const slow = () =>
      client.images
        .generate({ model: 'gpt-image-1', prompt: 'busy', size: '1024x1024', num_inference_steps: 100 } as never)
        .withResponse()
        .then(
          () => 200,
          (e: InstanceType<typeof OpenAI.APIError>) => {
            if (e.status === 429) expect(Number(e.headers?.get('retry-after'))).toBeGreaterThan(0);
            return e.status;
          },
        );
    const all = Promise.all([slow(), slow(), slow(), slow()]);
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    const statuses = await all;
    // One runs and, when it has started before the others arrive, one more waits: how many of the four are admitted
    // depends on arrival order on a loaded machine, so only "some served, some refused, nothing else" is asserted.
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(1);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(1);
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
  });
});

describe('quality presets from a model folder easel.json', () => {
  let dir: string;
  let server: RunningServer;
  let client: OpenAI;

  /** A copy of the tiny fixture whose medium preset is `preset`. */
  function modelWith(name: string, preset: Record<string, unknown>): string {
    const d = join(dir, name);
    cpSync(FIXTURE, d, { recursive: true });
    writeFileSync(join(d, 'easel.json'), JSON.stringify({ quality_presets: { medium: preset } }));
    return d;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'easel-presets-'));
    const models = [
      { name: 'guided', path: modelWith('guided', { steps: 2, guidance_scale: 7.5 }), family: 'gpt-image' },
      // an interval that holds no timestep: every step runs the conditional pass alone
      {
        name: 'interval',
        path: modelWith('interval', { steps: 2, guidance_scale: 7.5, guidance_interval: [-2, -1] }),
        family: 'gpt-image',
      },
      { name: 'unguided', path: modelWith('unguided', { steps: 2, guidance_scale: 1 }), family: 'gpt-image' },
    ];
    const file = join(dir, 'easel.json');
    writeFileSync(file, JSON.stringify({ models, dataDir: 'data' }));
    server = await startServer(loadConfig({ config: file, port: 0 }, { EASEL_THREADS: '1' }), { waitForWarmUp: true });
    client = new OpenAI({ apiKey: 'sk-local', baseURL: `${server.url}/v1`, maxRetries: 0 });
  });

  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function pixels(model: string): Promise<Buffer> {
    const res = await client.images.generate({ model, prompt: 'a red circle', quality: 'medium', size: '1024x1024', seed: 3 } as never);
    return sharp(Buffer.from((res as OpenAI.ImagesResponse).data![0].b64_json!, 'base64'))
      .raw()
      .toBuffer();
  }
  const meanAbsDiff = (a: Buffer, b: Buffer) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;

  it('guidance_interval reaches the engine: outside it, the steps run unguided', async () => {
    const [guided, interval, unguided] = [await pixels('guided'), await pixels('interval'), await pixels('unguided')];
    expect(meanAbsDiff(interval, unguided)).toBeLessThan(0.5);
    expect(meanAbsDiff(interval, guided)).toBeGreaterThan(0.5);
  });
});
