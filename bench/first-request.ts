// bench/first-request: is the first image after /readyz says ready as fast as the third? Starts the real
// `easel serve` (default model, fresh data dir) in a child process, waits for /readyz, then times requests 1..N of
// the same shape (different seeds) and prints each, the first/third ratio (goal <= 1.05) and the server's RSS.
// Rerun: npx tsx bench/first-request.ts [--quality medium] [--size 1024x1024] [--runs 5] [--tree DIR]
// --tree runs another checkout's CLI (e.g. `git worktree add /tmp/before <rev>` with node_modules linked in) to
// compare before and after on the same machine.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    quality: { type: 'string', default: 'medium' },
    size: { type: 'string', default: '1024x1024' },
    runs: { type: 'string', default: '5' },
    tree: { type: 'string', default: join(import.meta.dirname, '..') },
  },
});
const runs = Math.max(3, Number(values.runs));
const dataDir = mkdtempSync(join(tmpdir(), 'easel-first-'));
const main = join(values.tree, 'src', 'cli', 'main.ts');
const child = spawn(process.execPath, ['--import', 'tsx', main, 'serve', '--port', '0', '--data-dir', dataDir], {
  stdio: ['ignore', 'ignore', 'pipe'],
});

const rssMiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

const url = await new Promise<string>((resolve, reject) => {
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    const m = /easel listening on (http:\/\/\S+)/.exec(err);
    if (m) resolve(m[1]);
  });
  child.once('exit', (code) => reject(new Error(`easel serve exited ${code}: ${err}`)));
});

const readyAt = performance.now();
while ((await fetch(`${url}/readyz`)).status !== 200) await new Promise((r) => setTimeout(r, 50));
const readyMs = performance.now() - readyAt;
const rssReady = rssMiB();

const times: number[] = [];
for (let i = 0; i < runs; i++) {
  const t = performance.now();
  const res = await fetch(`${url}/v1/images/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'gpt-image-1',
      prompt: 'two pink hearts on a blue background',
      size: values.size,
      quality: values.quality,
      seed: 100 + i,
    }),
  });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`status ${res.status}`);
  times.push(performance.now() - t);
}
const rssAfter = rssMiB();
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
rmSync(dataDir, { recursive: true, force: true });

console.log(`${values.tree}: easel serve, default model, gpt-image-1 ${values.size} quality ${values.quality}, ${runs} requests in a row`);
console.log(`listening -> /readyz 200       ${readyMs.toFixed(0)} ms`);
for (const [i, t] of times.entries()) console.log(`request ${i + 1}                      ${t.toFixed(1)} ms`);
console.log(`ratio first / third            ${(times[0] / times[2]).toFixed(3)}   (goal <= 1.05)`);
console.log(`server RSS at ready / after    ${rssReady.toFixed(0)} MiB / ${rssAfter.toFixed(0)} MiB`);
