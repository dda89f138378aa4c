// bench/cluster: what going through Redis costs. In one run on one machine: the per-request wall time of an API node
// with `easel worker` processes over BullMQ against the embedded server (a ratio; goal <= 1.05 at medium quality on
// the default model), the extra time to a streamed partial image, and throughput with 1 and 2 workers.
// Rerun: npx tsx bench/cluster.ts [--model <folder>] [--quality medium] [--runs 5] [--burst 6]   (needs redis-server)
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultModelPath, loadConfig } from '../src/config/config.js';
import { parseGenerationRequest } from '../src/contract/generations.js';
import { BullMqQueue } from '../src/jobs/bullmq.js';
import { ModelCatalog } from '../src/server/catalog.js';
import { planJob } from '../src/server/plan.js';
import { parseContext } from '../src/server/routes/generations.js';
import { startRedis } from '../test/helpers/redis.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    quality: { type: 'string', default: 'medium' },
    runs: { type: 'string', default: '5' },
    burst: { type: 'string', default: '6' },
  },
});
const MAIN = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
const model = values.model ?? defaultModelPath();
const runs = Number(values.runs);
const burst = Number(values.burst);
const body = { model: 'gpt-image-1', prompt: 'a red circle on a blue background', size: '1024x1024', quality: values.quality, seed: 3 };

const redis = await startRedis();
const dir = mkdtempSync(join(tmpdir(), 'easel-bench-cluster-'));
const configFile = join(dir, 'easel.json');
writeFileSync(configFile, JSON.stringify({ models: [{ name: 'bench', path: model }], queue: { url: redis.url, maxWaiting: 64 } }));
const embeddedConfig = join(dir, 'embedded.json');
writeFileSync(embeddedConfig, JSON.stringify({ models: [{ name: 'bench', path: model }] }));
const servers: ChildProcess[] = [];

/** `easel serve` as its own process, as users run it; resolves to its URL once it listens (and /readyz is 200). */
async function serve(args: string[], waitReady: boolean, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--port', '0', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
  });
  servers.push(child);
  let err = '';
  child.stderr?.on('data', (d) => {
    err += d;
  });
  let url: string | undefined;
  while (!url) {
    if (child.exitCode !== null) throw new Error(`easel serve exited: ${err}`);
    url = /easel listening on (http:\/\/\S+)/.exec(err)?.[1];
    await new Promise((r) => setTimeout(r, 100));
  }
  while (waitReady && (await fetch(`${url}/readyz`)).status !== 200) await new Promise((r) => setTimeout(r, 100));
  return url;
}

// Both modes in processes of their own, with the same model and settings; only the queue differs.
const embedded = { url: await serve(['--config', embeddedConfig, '--data-dir', join(dir, 'embedded')], true) };
const node = { url: await serve(['--config', configFile, '--data-dir', join(dir, 'api')], false) };

const workers: ChildProcess[] = [];
async function addWorker(threads?: number): Promise<void> {
  const env = { ...process.env, ...(threads ? { EASEL_THREADS: String(threads) } : {}) };
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'worker', '--config', configFile], { env, stdio: 'ignore' });
  workers.push(child);
  const want = workers.length;
  for (;;) {
    const res = await fetch(`${node.url}/readyz`);
    const ready = (await res.json()) as { models: Array<{ workers: number }> };
    if (res.status === 200 && (ready.models[0]?.workers ?? 0) >= want) break;
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function stopWorkers(): Promise<void> {
  for (const w of workers.splice(0)) {
    const exited = once(w, 'exit');
    w.kill('SIGTERM');
    await exited;
  }
  // Until API nodes count them out.
  while ((((await (await fetch(`${node.url}/readyz`)).json()) as { models: Array<{ workers: number }> }).models[0]?.workers ?? 0) > 0) {
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function plain(base: string): Promise<number> {
  const t = performance.now();
  const res = await fetch(`${base}/v1/images/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`status ${res.status}`);
  return performance.now() - t;
}

/** Milliseconds to the first partial image event, and to the end of the stream. */
async function streamed(base: string): Promise<{ first: number; total: number }> {
  const t = performance.now();
  const res = await fetch(`${base}/v1/images/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true, partial_images: 2 }),
  });
  if (res.status !== 200 || !res.body) throw new Error(`status ${res.status}`);
  let first = 0;
  let text = '';
  for await (const chunk of res.body) {
    text += Buffer.from(chunk).toString();
    if (!first && text.includes('event: image_generation.partial_image')) first = performance.now() - t;
  }
  return { first, total: performance.now() - t };
}

/**
 * The queue's own cost: the same job submitted from here through BullMQ to the worker, its wall time minus the
 * engine and encode time the worker reports (what is left: admission, pickup, events and the result through Redis).
 */
async function queueAlone(): Promise<number> {
  const cfg = loadConfig({ config: configFile }, {});
  const models = ModelCatalog.fromConfig(cfg);
  const parsed = parseGenerationRequest(body, parseContext({ models } as never));
  const served = models.resolve(parsed.model)!;
  const plan = planJob(served, parsed);
  const queue = await BullMqQueue.open({ url: redis.url, models: ['bench'], maxWaiting: 64 });
  const spec = { model: 'bench', request: plan.request, output: plan.output, previewSteps: [], keyId: null, requestId: 'bench' };
  const left: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      const { id } = await queue.submit(spec);
      for await (const e of queue.events(id)) {
        if (e.type === 'result') left.push(performance.now() - t - e.timings.totalMs - e.timings.encodeMs);
      }
    }
  } finally {
    await queue.close();
  }
  return median(left);
}

async function throughput(base: string): Promise<number> {
  const t = performance.now();
  await Promise.all(Array.from({ length: burst }, () => plain(base)));
  return (burst / (performance.now() - t)) * 60_000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const cores = availableParallelism();

try {
  await addWorker();
  // Warm both paths, then alternate request by request so both see the same machine.
  await plain(embedded.url);
  await plain(node.url);
  const e: number[] = [];
  const c: number[] = [];
  const es: Array<{ first: number; total: number }> = [];
  const cs: Array<{ first: number; total: number }> = [];
  for (let i = 0; i < runs; i++) {
    e.push(await plain(embedded.url));
    c.push(await plain(node.url));
    es.push(await streamed(embedded.url));
    cs.push(await streamed(node.url));
  }
  const tEmbedded = await throughput(embedded.url);
  const t1 = await throughput(node.url);
  const q = await queueAlone();
  await stopWorkers();
  // Two workers on one machine share its cores: each gets half of them. With one, the same split shows the ratio
  // when the engine leaves cores to HTTP and Redis (as a GPU worker, or one on another machine, does).
  const half = Math.max(1, Math.floor(cores / 2));
  await addWorker(half);
  const embeddedHalf = {
    url: await serve(['--config', embeddedConfig, '--data-dir', join(dir, 'embedded')], true, { EASEL_THREADS: String(half) }),
  };
  await plain(embeddedHalf.url);
  const eh: number[] = [];
  const ch: number[] = [];
  for (let i = 0; i < runs; i++) {
    eh.push(await plain(embeddedHalf.url));
    ch.push(await plain(node.url));
  }
  await addWorker(half);
  const t2 = await throughput(node.url);

  const ef = median(es.map((s) => s.first));
  const cf = median(cs.map((s) => s.first));
  console.log(`model ${model}  gpt-image-1 1024x1024 png b64_json quality ${values.quality}  runs ${runs}  cores ${cores}`);
  console.log(`per request, embedded (median)          ${median(e).toFixed(1)} ms`);
  console.log(`per request, API node + worker (median) ${median(c).toFixed(1)} ms`);
  console.log(`ratio cluster / embedded                ${(median(c) / median(e)).toFixed(3)}   (goal <= 1.05)`);
  console.log(`the queue path alone (median)           ${q.toFixed(1)} ms   (wall - engine - encode, BullMQ from this process)`);
  console.log(
    `ratio with ${half} engine thread(s) of ${cores}       ${(median(ch) / median(eh)).toFixed(3)}   (${median(ch).toFixed(1)} / ${median(eh).toFixed(1)} ms)`,
  );
  console.log(`first partial image, embedded (median)  ${ef.toFixed(1)} ms`);
  console.log(`first partial image, cluster (median)   ${cf.toFixed(1)} ms   (+${(cf - ef).toFixed(1)} ms through Redis)`);
  console.log(
    `stream total, embedded / cluster        ${median(es.map((s) => s.total)).toFixed(1)} / ${median(cs.map((s) => s.total)).toFixed(1)} ms`,
  );
  console.log(`throughput, ${burst} at once: embedded        ${tEmbedded.toFixed(1)} images/min`);
  console.log(`throughput, 1 worker (all cores)        ${t1.toFixed(1)} images/min`);
  console.log(`throughput, 2 workers (${half} threads each)  ${t2.toFixed(1)} images/min   (x${(t2 / t1).toFixed(2)} of 1 worker)`);
} finally {
  await stopWorkers().catch(() => {});
  for (const s of servers) {
    const exited = once(s, 'exit');
    s.kill('SIGTERM');
    await exited;
  }
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
