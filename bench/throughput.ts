// bench/throughput: how the embedded server shares its engine. Images/s and p50/p95 latency at concurrency 1, 2, 4
// and 8 for low and medium quality, with 1 and 2 ONNX Runtime threads side by side; 8 concurrent n=1 requests against
// one n=8 request; and a light client's p95 while another client floods heavy requests, against that client alone.
// Rerun: npx tsx bench/throughput.ts [--model <folder>] [--rounds 2] [--concurrency 1,2,4,8] [--qualities low,medium]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/config.js';
import { type RunningServer, startServer } from '../src/server/start.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    rounds: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '1,2,4,8' },
    qualities: { type: 'string', default: 'low,medium' },
  },
});
const rounds = Number(values.rounds);
const levels = values.concurrency.split(',').map(Number);
const qualities = values.qualities.split(',');

interface Body {
  quality: string;
  n?: number;
  size?: string;
  user?: string;
}

async function generate(server: RunningServer, body: Body): Promise<number> {
  const t = performance.now();
  const res = await fetch(`${server.url}/v1/images/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-image-1', prompt: 'a red circle on a blue background', size: '1024x1024', ...body }),
  });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`status ${res.status}`);
  return performance.now() - t;
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];

/** `concurrency` clients, each sending `rounds` requests back to back: images/s over the wall time, and latencies. */
async function closedLoop(server: RunningServer, concurrency: number, body: Body): Promise<{ imagesPerS: number; lat: number[] }> {
  const lat: number[] = [];
  const t = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = 0; i < rounds; i++) lat.push(await generate(server, body));
    }),
  );
  const wall = (performance.now() - t) / 1000;
  return { imagesPerS: (concurrency * rounds * (body.n ?? 1)) / wall, lat };
}

const dataDirs: string[] = [];
async function serverWith(threads: number): Promise<RunningServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'easel-bench-throughput-'));
  dataDirs.push(dataDir);
  const config = loadConfig({ port: 0, dataDir, model: values.model });
  // Room for the flood below; no rate limit gets in the way of a benchmark.
  const tuned = {
    ...config,
    engine: { ...config.engine, threads },
    queue: { ...config.queue, maxWaiting: 64 },
    rateLimits: { ...config.rateLimits, requestsPerMinute: 1_000_000, tokensPerMinute: 1_000_000_000 },
  };
  return startServer(tuned, { waitForWarmUp: true });
}

const servers = { 1: await serverWith(1), 2: await serverWith(2) } as const;
for (const s of Object.values(servers)) await generate(s, { quality: 'low' });

console.log(`model ${values.model ?? 'models/easel-shapes'}  gpt-image-1 1024x1024 png b64_json  ${rounds} requests per client`);
console.log('\n# throughput by concurrency (threads side by side, alternating)');
console.log('quality  conc  threads  images/s  p50 ms  p95 ms   | 1-thread / 2-thread images/s');
for (const quality of qualities) {
  for (const c of levels) {
    const one = await closedLoop(servers[1], c, { quality });
    const two = await closedLoop(servers[2], c, { quality });
    for (const [threads, r] of [
      [1, one],
      [2, two],
    ] as const) {
      const row = `${quality.padEnd(7)}  ${String(c).padStart(4)}  ${String(threads).padStart(7)}  ${r.imagesPerS.toFixed(2).padStart(8)}  ${pct(r.lat, 0.5).toFixed(0).padStart(6)}  ${pct(r.lat, 0.95).toFixed(0).padStart(6)}`;
      console.log(threads === 2 ? `${row}   | ${(one.imagesPerS / two.imagesPerS).toFixed(2)}` : row);
    }
  }
}

console.log('\n# 8 concurrent n=1 requests against one n=8 request (2 threads; goal >= 0.95)');
for (const quality of qualities) {
  const eightOnes: number[] = [];
  const oneEight: number[] = [];
  for (let i = 0; i < rounds; i++) {
    let t = performance.now();
    await Promise.all(Array.from({ length: 8 }, () => generate(servers[2], { quality })));
    eightOnes.push(performance.now() - t);
    t = performance.now();
    await generate(servers[2], { quality, n: 8 });
    oneEight.push(performance.now() - t);
  }
  const ratio = pct(oneEight, 0.5) / pct(eightOnes, 0.5);
  console.log(
    `${quality.padEnd(7)}  8 x n=1 ${pct(eightOnes, 0.5).toFixed(0)} ms   1 x n=8 ${pct(oneEight, 0.5).toFixed(0)} ms   ratio ${ratio.toFixed(3)}`,
  );
}

console.log('\n# a light client while another floods heavy requests (2 threads, fair order across `user`)');
const light: Body = { quality: 'low', user: 'light' };
const heavy: Body = { quality: 'high', n: 4, user: 'flood' };
const alone: number[] = [];
for (let i = 0; i < 4 * rounds; i++) alone.push(await generate(servers[2], light));
let flooding = true;
const flood = Array.from({ length: 4 }, async () => {
  while (flooding) await generate(servers[2], heavy);
});
await new Promise((r) => setTimeout(r, 1000)); // the flood's jobs are queued
const underFlood: number[] = [];
for (let i = 0; i < 4 * rounds; i++) underFlood.push(await generate(servers[2], light));
flooding = false;
await Promise.all(flood);
const heavyAlone = await generate(servers[2], { ...heavy, user: 'timing' });
console.log(
  `light p95 alone ${pct(alone, 0.95).toFixed(0)} ms   under the flood ${pct(underFlood, 0.95).toFixed(0)} ms   ratio ${(pct(underFlood, 0.95) / pct(alone, 0.95)).toFixed(2)}`,
);
console.log(`one heavy request alone ${heavyAlone.toFixed(0)} ms (the goal: a light request waits at most about one running job)`);

for (const s of Object.values(servers)) await s.close();
for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
