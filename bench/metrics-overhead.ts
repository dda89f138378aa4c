// bench/metrics-overhead: what metrics and tracing cost a generation. Three `easel serve` processes on the same model:
// "on" exports OpenTelemetry spans (OTLP/HTTP to a sink in this process) and is scraped every second; "off" and
// "control" have no OTEL_* and nobody reads their /metrics. Requests rotate between them, one at a time; the ratio of
// medians on/off is printed beside control/off, the noise floor of two identical processes (goal: on/off within it).
// Rerun: npx tsx bench/metrics-overhead.ts [--model <folder>] [--runs 10]
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { model: { type: 'string' }, quality: { type: 'string', default: 'low' }, runs: { type: 'string', default: '10' } },
});
const MAIN = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
const body = JSON.stringify({
  model: 'gpt-image-1',
  prompt: 'a red circle on a blue background',
  size: '1024x1024',
  quality: values.quality,
  seed: 3,
});

// The OTLP sink: counts the spans the "on" server exports.
let spans = 0;
const sink = createServer((req, res) => {
  let text = '';
  req.on('data', (d) => {
    text += d;
  });
  req.on('end', () => {
    spans += (text.match(/"spanId"/g) ?? []).length;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
sink.listen(0, '127.0.0.1');
await once(sink, 'listening');
const otlp = `http://127.0.0.1:${(sink.address() as { port: number }).port}`;

interface Served {
  name: string;
  url: string;
  child: ChildProcess;
  dir: string;
}

async function serve(name: string, env: NodeJS.ProcessEnv): Promise<Served> {
  const dir = mkdtempSync(join(tmpdir(), `easel-bench-${name}-`));
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EASEL_') && !k.startsWith('OTEL_')));
  const args = ['--import', 'tsx', MAIN, 'serve', '--port', '0', '--data-dir', dir, ...(values.model ? ['--model', values.model] : [])];
  const child = spawn(process.execPath, args, { env: { ...clean, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (d) => {
      stderr += d;
      const m = /easel listening on (http:\/\/\S+)/.exec(stderr);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`${name} exited ${code}: ${stderr}`)));
  });
  for (;;) {
    if ((await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  return { name, url, child, dir };
}

async function generate(s: Served): Promise<number> {
  const t = performance.now();
  const res = await fetch(`${s.url}/v1/images/generations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`${s.name}: status ${res.status}`);
  return performance.now() - t;
}

const on = await serve('on', { OTEL_EXPORTER_OTLP_ENDPOINT: otlp, OTEL_BSP_SCHEDULE_DELAY: '1000' });
const off = await serve('off', {});
const control = await serve('control', {});
let scrapes = 0;
const scraper = setInterval(() => {
  void fetch(`${on.url}/metrics`)
    .then((r) => r.text())
    .then(() => {
      scrapes++;
    });
}, 1000);

const all = [on, off, control];
for (const s of all) await generate(s);
const times: Record<string, number[]> = { on: [], off: [], control: [] };
for (let i = 0; i < Number(values.runs); i++) {
  // Each process first, second and third in turn, so no one always follows the same neighbour.
  const order = all.map((_, k) => all[(i + k) % all.length]);
  for (const s of i % 2 === 0 ? order : order.reverse()) times[s.name].push(await generate(s));
}
clearInterval(scraper);
await new Promise((r) => setTimeout(r, 1500)); // the last spans' export
for (const s of all) {
  s.child.kill('SIGKILL');
  rmSync(s.dir, { recursive: true, force: true });
}
sink.close();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(
  `model ${values.model ?? 'default'}  gpt-image-1 1024x1024 png b64_json quality ${values.quality}  runs ${times.on.length} each`,
);
console.log(`metrics + tracing on (median)   ${median(times.on).toFixed(1)} ms   (${spans} spans exported, ${scrapes} scrapes)`);
console.log(`off (median)                    ${median(times.off).toFixed(1)} ms`);
console.log(`control, as off (median)        ${median(times.control).toFixed(1)} ms`);
console.log(`ratio on / off                  ${(median(times.on) / median(times.off)).toFixed(3)}`);
console.log(`ratio control / off             ${(median(times.control) / median(times.off)).toFixed(3)}   (the noise floor)`);
