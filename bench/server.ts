// bench/server: end-to-end HTTP latency of a b64_json 1024x1024 PNG generation versus engine + encode time for the
// same request in-process, as a ratio (goal <= 1.05), plus peak RSS. Both measured in this one process, alternating.
// Rerun: npx tsx bench/server.ts [--model <folder>] [--quality low] [--runs 5]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/config.js';
import { parseGenerationRequest } from '../src/contract/generations.js';
import { planJob } from '../src/server/plan.js';
import { parseContext } from '../src/server/routes/generations.js';
import { startServer } from '../src/server/start.js';
import { encodeOutput } from '../src/worker/encode.js';

const { values } = parseArgs({
  options: { model: { type: 'string' }, quality: { type: 'string', default: 'low' }, runs: { type: 'string', default: '5' } },
});
const dataDir = mkdtempSync(join(tmpdir(), 'easel-bench-'));
const config = loadConfig({ port: 0, dataDir, model: values.model });
const server = await startServer(config, { waitForWarmUp: true });
const body = { model: 'gpt-image-1', prompt: 'a red circle on a blue background', size: '1024x1024', quality: values.quality, seed: 3 };

async function http(): Promise<number> {
  const t = performance.now();
  const res = await fetch(`${server.url}/v1/images/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  // Until the last byte arrives; parsing the JSON is the client's work, not the server's.
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`status ${res.status}`);
  return performance.now() - t;
}

async function direct(): Promise<number> {
  const parsed = parseGenerationRequest(body, parseContext({ models: server.models } as never));
  const served = server.models.resolve(parsed.model)!;
  const plan = planJob(served, parsed);
  const t = performance.now();
  const r = await server.engines.pipeline(served.local.name).generate(plan.request);
  await Promise.all(r.images.map((img) => encodeOutput(img, plan.output)));
  return performance.now() - t;
}

await http();
await direct();
const h: number[] = [];
const d: number[] = [];
for (let i = 0; i < Number(values.runs); i++) {
  h.push(await http());
  d.push(await direct());
}
await server.close();
rmSync(dataDir, { recursive: true, force: true });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`model ${config.models[0].path}  gpt-image-1 1024x1024 png b64_json quality ${values.quality}  runs ${h.length}`);
console.log(`HTTP end-to-end (median)      ${median(h).toFixed(1)} ms`);
console.log(`engine + encode (median)      ${median(d).toFixed(1)} ms`);
console.log(`ratio HTTP / engine+encode    ${(median(h) / median(d)).toFixed(3)}   (goal <= 1.05)`);
console.log(`peak RSS                      ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
