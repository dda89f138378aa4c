// A real cluster on one machine: redis-server, 2 API nodes (`easel serve --queue`) sharing one data dir and 2 engine
// workers (`easel worker`), all child processes of the real CLI on the tiny fixture, driven by the official openai
// client. Faults: kill -9 of a worker holding a job, SIGTERM of an API node with requests in flight, and a Redis
// restart. Every request must end in its right answer (a valid image, or a documented 429/503 with its headers),
// none may hang, and each delivered answer has exactly one usage row.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteDb } from '../../src/db/index.js';
import { easel as easelRun } from '../helpers/cli.js';
import { cluster, type EaselProcess } from '../helpers/cluster.js';
import { validateSchema } from '../helpers/openapi.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');

const easel = cluster();
const { waitFor } = easel;

let redis: TestRedis;
let dataDir: string;
let configFile: string;
const api: Array<{ proc: EaselProcess; url: string; client: OpenAI; stopping?: boolean }> = [];
const workers: EaselProcess[] = [];

function startWorker(name: string): EaselProcess {
  return easel.worker(name, ['--config', configFile]);
}

async function readyz(url: string): Promise<{ status: number; body: { models?: Array<{ name: string; workers?: number }> } }> {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: (await res.json()) as never };
}

/** Workers the node counts for the model: readyz's per-model count. */
async function liveWorkers(url: string): Promise<number | undefined> {
  const { body } = await readyz(url);
  return body.models?.find((m) => m.name === 'tiny')?.workers;
}

beforeAll(async () => {
  redis = await startRedis();
  dataDir = mkdtempSync(join(tmpdir(), 'easel-cluster-'));
  configFile = join(dataDir, 'easel.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      dataDir,
      models: [{ name: 'tiny', path: FIXTURE }],
      queue: { url: redis.url, maxWaiting: 32, lockSeconds: 2 },
      server: { drainSeconds: 20 },
    }),
  );
  for (const name of ['api-1', 'api-2']) {
    const { proc, url } = await easel.serve(name, ['--config', configFile, '--port', '0']);
    api.push({ proc, url, client: new OpenAI({ apiKey: 'sk-any', baseURL: `${url}/v1`, maxRetries: 0, timeout: 60_000 }) });
  }
  workers.push(startWorker('worker-1'), startWorker('worker-2'));
  for (const node of api)
    await waitFor(
      '2 live workers and /readyz 200',
      async () => (await readyz(node.url)).status === 200 && (await liveWorkers(node.url)) === 2,
    );
}, 90_000);

afterAll(async () => {
  if (process.env.EASEL_CLUSTER_LOG)
    writeFileSync(process.env.EASEL_CLUSTER_LOG, easel.procs.map((p) => `--- ${p.name}\n${p.output}`).join('\n'));
  await easel.stop();
  await redis?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

type Outcome =
  | { kind: 'image'; requestId: string | null; format: string | undefined }
  | { kind: 'refused'; status: number; retryAfter: string | null; requestId: string | null; message: string }
  | { kind: 'unreachable' };

// 100 steps keep a job running long enough to be killed in; JPEG and 256x256 keep encoding cheap on 2 cores.
const GPT = { model: 'gpt-image-1', prompt: 'a red circle', size: '1024x1024', output_format: 'jpeg', num_inference_steps: 100 } as const;
const DALLE = { model: 'dall-e-2', prompt: 'a red circle', size: '256x256', response_format: 'url', num_inference_steps: 100 } as const;

/** A url-mode image, fetched from a node still up: nodes sharing a data dir (and its URL secret) serve each other's. */
async function fetchImage(url: string): Promise<string> {
  const live = api.find((n) => n.proc.child.exitCode === null && !n.stopping) ?? api[1];
  const res = await fetch(url.replace(/^http:\/\/[^/]+/, live.url));
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer()).toString('base64');
}

async function imageOf(b64: string): Promise<string | undefined> {
  return (await sharp(Buffer.from(b64, 'base64')).metadata()).format;
}

/** One request of each kind the API answers; a refusal or a closed node is an outcome, anything else throws. */
async function request(client: OpenAI, kind: 'plain' | 'url' | 'stream', onPartial?: () => void): Promise<Outcome> {
  try {
    if (kind === 'stream') {
      const { data: stream, response } = await client.images
        .generate({ ...GPT, stream: true, partial_images: 3 } as OpenAI.ImageGenerateParamsStreaming)
        .withResponse();
      let completed: string | undefined;
      for await (const e of stream) {
        const ev = e as { type: string; b64_json?: string };
        expect(
          validateSchema(ev.type === 'image_generation.completed' ? 'ImageGenCompletedEvent' : 'ImageGenPartialImageEvent', ev),
        ).toEqual([]);
        if (ev.type === 'image_generation.partial_image') onPartial?.();
        else completed = ev.b64_json;
      }
      expect(completed).toBeDefined();
      return { kind: 'image', requestId: response.headers.get('x-request-id'), format: await imageOf(completed!) };
    }
    const { data, response } = await client.images.generate((kind === 'url' ? DALLE : GPT) as never).withResponse();
    const res = data as OpenAI.ImagesResponse;
    expect(validateSchema('ImagesResponse', res)).toEqual([]);
    const item = res.data![0];
    const b64 = item.b64_json ?? (await fetchImage(item.url!));
    return { kind: 'image', requestId: response.headers.get('x-request-id'), format: await imageOf(b64) };
  } catch (err) {
    if (err instanceof OpenAI.APIConnectionError) return { kind: 'unreachable' };
    if (err instanceof OpenAI.APIError && (err.status === 429 || err.status === 503)) {
      const retryAfter = err.headers?.get('retry-after') ?? null;
      return { kind: 'refused', status: err.status, retryAfter, requestId: err.requestID ?? null, message: err.message };
    }
    throw err;
  }
}

const delivered: string[] = [];

function tally(outcomes: Outcome[]): { images: number; refused: Outcome[]; unreachable: number } {
  for (const o of outcomes) {
    if (o.kind === 'image') {
      expect(['jpeg', 'png']).toContain(o.format);
      expect(o.requestId).toMatch(/^req_/);
      delivered.push(o.requestId!);
    }
    if (o.kind === 'refused') expect(Number(o.retryAfter)).toBeGreaterThanOrEqual(1); // 429/503 always say when to retry
  }
  return {
    images: outcomes.filter((o) => o.kind === 'image').length,
    refused: outcomes.filter((o) => o.kind === 'refused'),
    unreachable: outcomes.filter((o) => o.kind === 'unreachable').length,
  };
}

describe('easel worker', () => {
  it("needs the cluster's Redis, and says how to give it", async () => {
    const run = await easelRun(['worker', '--model', FIXTURE]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('--queue redis://HOST:PORT');
    const bad = await easelRun(['worker', '--queue', 'localhost:6379']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--queue: expected a redis:// or rediss:// URL');
  });
});

describe('a cluster of 2 API nodes and 2 workers on Redis', () => {
  it('answers plain, url and streaming requests on both nodes; /v1/models comes from the workers', async () => {
    const models = await api[1].client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(expect.arrayContaining(['tiny', 'gpt-image-1', 'dall-e-2']));
    const outcomes = await Promise.all(api.flatMap((n) => (['plain', 'url', 'stream'] as const).map((k) => request(n.client, k))));
    expect(tally(outcomes)).toMatchObject({ images: 6, refused: [], unreachable: 0 });
  });

  it('re-runs the job of a worker killed with -9 mid-job on the other worker; every client gets its image', async () => {
    let killed = false;
    const victim = workers[0];
    // A stream whose first partial image says its job is running; the rest keep both workers busy.
    const outcomes = await Promise.all([
      request(api[0].client, 'stream', () => {
        if (killed) return;
        killed = true;
        victim.child.kill('SIGKILL');
      }),
      ...Array.from({ length: 7 }, (_, i) => request(api[i % 2].client, (['plain', 'url', 'stream'] as const)[i % 3])),
    ]);
    expect(killed).toBe(true);
    expect(await victim.exited).toBeNull(); // killed by the signal
    expect(tally(outcomes)).toMatchObject({ images: 8, refused: [], unreachable: 0 });
    // The survivor took over at least one job from the dead worker's expired lock.
    expect(workers[1].output).toMatch(/job stalled/);
    await waitFor('the dead worker to drop out', async () => (await liveWorkers(api[0].url)) === 1);
    workers[0] = startWorker('worker-3');
    await waitFor('the replacement worker', async () => (await liveWorkers(api[0].url)) === 2);
    // Nothing is left behind in the queue: no job stuck as running under a dead worker's name.
    await waitFor('an empty queue', async () => {
      const q = ((await readyz(api[0].url)).body as { queue?: { running: number; waiting: number } }).queue;
      return q?.running === 0 && q.waiting === 0;
    });
  });

  it('SIGTERM on an API node: its in-flight requests finish, new ones are refused with a retry hint, it exits 0', async () => {
    const node = api[0];
    let signalled = false;
    // SIGTERM once the stream's job runs (its first partial image); the other requests may or may not be admitted yet.
    const running = request(node.client, 'stream', () => {
      if (signalled) return;
      signalled = true;
      node.stopping = true;
      node.proc.child.kill('SIGTERM');
    });
    const others = (['plain', 'url', 'plain'] as const).map((k) => request(node.client, k));
    await waitFor('SIGTERM', () => signalled);
    // Draining (503), or already gone if what it had finished at once.
    await waitFor('the node to drain', async () => (await readyz(node.url).catch(() => ({ status: 503 }))).status === 503);
    const late = await request(node.client, 'plain');
    expect(late.kind === 'unreachable' || (late.kind === 'refused' && late.status === 503)).toBe(true);
    // The running job finishes well within server.drainSeconds (20 s); a request that reached the queue after SIGTERM
    // is refused with a retryable 503 (tally checked its Retry-After), as new work is.
    expect(tally([await running]).images).toBe(1);
    const counts = tally(await Promise.all(others));
    expect(counts.unreachable).toBe(0);
    expect(counts.images + counts.refused.length).toBe(3);
    for (const r of counts.refused) expect(r).toMatchObject({ status: 503 });
    expect(await node.proc.exited).toBe(0);
    // The other node serves on.
    expect(tally([await request(api[1].client, 'stream')]).images).toBe(1);
  });

  it('survives a Redis restart: requests in flight end (image or clear error), none hangs, nodes and workers reconnect', async () => {
    const node = api[1];
    // A failure is a 5xx, or (a stream already answering 200) an `error` event, which the SDK throws without a status.
    const inFlight = (['plain', 'stream', 'url'] as const).map((k) =>
      request(node.client, k).catch((err: unknown) => {
        expect(err).toBeInstanceOf(OpenAI.APIError);
        const status = (err as { status?: number }).status;
        if (status === undefined) expect(k).toBe('stream');
        else expect(status).toBeGreaterThanOrEqual(500);
        return { kind: 'error' as const };
      }),
    );
    await waitFor('jobs running', async () => ((await readyz(node.url)).body as { queue?: { running: number } }).queue?.running);
    await redis.restart(500);
    for (const o of await Promise.all(inFlight)) if (o.kind === 'image') delivered.push(o.requestId!);
    await waitFor('workers to beat again after the restart', async () => (await liveWorkers(node.url)) === 2, 30_000);
    expect(tally([await request(node.client, 'plain')]).images).toBe(1);
  });

  it('SIGTERM on the workers: the job running finishes, no new one is taken, they exit 0; then a 503 says so', async () => {
    const node = api[1];
    let stopped = false;
    const answer = request(node.client, 'stream', () => {
      if (stopped) return;
      stopped = true;
      for (const w of workers) w.child.kill('SIGTERM');
    });
    expect(tally([await answer]).images).toBe(1);
    expect(await Promise.all(workers.map((w) => w.exited))).toEqual([0, 0]);
    await waitFor('no live worker', async () => (await liveWorkers(node.url)) === 0);
    const refused = await request(node.client, 'plain');
    expect(refused).toMatchObject({ kind: 'refused', status: 503 });
  });

  it('records exactly one usage row per delivered answer, in the data dir both nodes share', async () => {
    const db = openSqliteDb({ path: join(dataDir, 'easel.sqlite') });
    try {
      const rows = (await db.listUsage({ limit: 1000 })) as Array<{ requestId: string; status: number }>;
      const ok = rows.filter((r) => r.status === 200).map((r) => r.requestId);
      expect(ok.sort()).toEqual([...delivered].sort());
      expect(new Set(rows.map((r) => r.requestId)).size).toBe(rows.length);
    } finally {
      await db.close();
    }
  });
});
