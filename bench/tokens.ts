// bench/tokens: js-tiktoken's o200k_base versus Easel's (src/contract/o200k.ts), side by side: build time, memory
// after the build, the longest event-loop stall while building, and count times on ordinary and pathological prompts.
// Rerun: npx tsx bench/tokens.ts   (each encoder runs in its own child process, node --expose-gc, so none shares memory)
// js-tiktoken is not run on 'x' x 32000: measured once apart, it took 223 s (2-core machine under load) for 4000 tokens,
// the same ids as ours.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

type Impl = 'js-tiktoken' | 'easel';

interface Case {
  name: string;
  text: string;
  /** js-tiktoken's merge is super-quadratic: cases it would take over 30 s on are skipped for it. */
  jsTiktoken: boolean;
}

/** Seeded generator (mulberry32), so every run counts the same strings. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function randomText(length: number, from: number, to: number, seed: number): string {
  const next = random(seed);
  let s = '';
  for (let i = 0; i < length; i++) s += String.fromCodePoint(from + Math.floor(next() * (to - from)));
  return s;
}

const ORDINARY =
  'A watercolor painting of a lighthouse on a rocky coast at dusk, waves crashing, seagulls overhead, warm orange ' +
  'light from the lamp, soft clouds, 4k, highly detailed. Style: impressionist; palette: teal & amber (no text!).';

function cases(): Case[] {
  const x = (n: number): Case => ({ name: `'x' x ${n}`, text: 'x'.repeat(n), jsTiktoken: n <= 8000 });
  const cjk = (n: number): Case => ({ name: `CJK x ${n} (unspaced)`, text: randomText(n, 0x4e00, 0x6300, n), jsTiktoken: true });
  return [
    { name: 'ordinary prompt (205 chars)', text: ORDINARY, jsTiktoken: true },
    { name: 'README prompt', text: 'a red circle on a blue background', jsTiktoken: true },
    x(1000),
    x(4000),
    x(8000),
    x(32000),
    cjk(500),
    cjk(1000),
    cjk(2000),
    { name: 'random printable x 32000', text: randomText(32000, 0x20, 0x7f, 7), jsTiktoken: true },
  ];
}

interface Report {
  buildMs: number;
  stallMs: number;
  rssMiB: number;
  heapMiB: number;
  externalMiB: number;
  counts: Record<string, { tokens: number; ms: number } | null>;
}

const MiB = 2 ** 20;

/** Memory after full collections, with a pause so freed buffers are returned before reading. */
async function memory(): Promise<NodeJS.MemoryUsage> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run the child with --expose-gc');
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return process.memoryUsage();
}

/** Median of repeated runs (at least 3, until ~200 ms), or one run when a single count is slow. */
function time(count: () => number): { tokens: number; ms: number } {
  const times: number[] = [];
  let tokens = 0;
  let spent = 0;
  while (times.length < 3 || (spent < 200 && times.length < 101)) {
    const t = performance.now();
    tokens = count();
    const ms = performance.now() - t;
    times.push(ms);
    spent += ms;
    if (ms > 1000) break;
  }
  times.sort((a, b) => a - b);
  return { tokens, ms: times[Math.floor(times.length / 2)] };
}

async function child(impl: Impl): Promise<Report> {
  const require = createRequire(import.meta.url);
  const { Tiktoken } = await import('js-tiktoken/lite');
  const o200k = await import('../src/contract/o200k.js');
  const before = await memory();
  const stall = monitorEventLoopDelay({ resolution: 1 });
  stall.enable();
  await new Promise((resolve) => setTimeout(resolve, 20)); // the monitor's timer is running before the build starts
  const t = performance.now();
  let count: (text: string) => number;
  if (impl === 'js-tiktoken') {
    const tiktoken = new Tiktoken(require('js-tiktoken/ranks/o200k_base'));
    count = (text) => tiktoken.encode(text, [], []).length;
  } else {
    await o200k.warmTokenCounter();
    count = o200k.countO200k;
  }
  const buildMs = performance.now() - t;
  await new Promise((resolve) => setTimeout(resolve, 20)); // let the delay monitor see the end of a blocking build
  stall.disable();
  const after = await memory();
  const counts: Report['counts'] = {};
  for (const c of cases()) counts[c.name] = impl === 'easel' || c.jsTiktoken ? time(() => count(c.text)) : null;
  return {
    buildMs,
    stallMs: stall.max / 1e6,
    rssMiB: (after.rss - before.rss) / MiB,
    heapMiB: (after.heapUsed - before.heapUsed) / MiB,
    externalMiB: (after.external - before.external) / MiB,
    counts,
  };
}

function runChild(impl: Impl): Report {
  const self = fileURLToPath(import.meta.url);
  const run = spawnSync(process.execPath, [...process.execArgv, '--expose-gc', self, '--child', impl], {
    encoding: 'utf8',
    maxBuffer: 16 * MiB,
  });
  if (run.status !== 0) throw new Error(`bench child ${impl} failed:\n${run.stderr}`);
  return JSON.parse(run.stdout) as Report;
}

const pad = (s: string, n: number): string => s.padEnd(n);
const fmt = (n: number, digits = 1): string => n.toFixed(digits);

function print(js: Report, ours: Report): void {
  console.log(`o200k_base token counting, node ${process.version}; js-tiktoken skips cases it would take > 30 s on`);
  console.log(`${pad('', 34)}${pad('js-tiktoken', 22)}easel (o200k.ts)`);
  const row = (name: string, a: string, b: string): void => console.log(`${pad(name, 34)}${pad(a, 22)}${b}`);
  row('build (ms)', fmt(js.buildMs), fmt(ours.buildMs));
  row('longest event-loop stall (ms)', fmt(js.stallMs), fmt(ours.stallMs));
  row('RSS after build (MiB, delta)', fmt(js.rssMiB), fmt(ours.rssMiB));
  row('JS heap after build (MiB, delta)', fmt(js.heapMiB), fmt(ours.heapMiB));
  row('external after build (MiB, delta)', fmt(js.externalMiB), fmt(ours.externalMiB));
  for (const c of cases()) {
    const a = js.counts[c.name];
    const b = ours.counts[c.name];
    if (!b) throw new Error(`no easel timing for ${c.name}`);
    if (a && a.tokens !== b.tokens) throw new Error(`${c.name}: js-tiktoken counts ${a.tokens}, easel ${b.tokens}`);
    const cell = (r: { tokens: number; ms: number }): string => `${fmt(r.ms, r.ms < 10 ? 3 : 1)} ms (${r.tokens} tok)`;
    row(c.name, a ? cell(a) : 'skipped (> 30 s)', cell(b));
  }
}

const { values } = parseArgs({ options: { child: { type: 'string' } } });
if (values.child === 'js-tiktoken' || values.child === 'easel') {
  process.stdout.write(JSON.stringify(await child(values.child)));
} else {
  print(runChild('js-tiktoken'), runChild('easel'));
}
