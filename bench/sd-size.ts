// bench/sd-size: the engine on a full-size SD 1.5-shaped pipeline (random weights): load time, ms per UNet step (the
// slope between step counts), VAE ms, the sum of session.run and RSS after load, at the request's peak and after it,
// beside raw ORT sessions (ORT's default options, the graphs as shipped) running the same loop. Each case runs in its own
// child process so its RSS is its own; cases are interleaved in one run, so compare ratios, not absolute times.
// Rerun: npx tsx bench/sd-size.ts [--dir DIR] [--steps-list 1,4,8] [--size 512x512] [--cases engine,raw] [--threads 2]
//          [--rounds 1]   (cases: engine, raw, engine-b1 (CFG as two batches of 1), engine-all (graph level 'all'),
//          engine-arena (ORT CPU arena on), engine-unfused (attention as exported), engine-tiled (VAE tiles of 512 px))
// VAE tiling at 1024x1024: npx tsx bench/sd-size.ts --dir DIR --size 1024x1024 --steps-list 1 --cases engine,engine-tiled
// Without --dir it fills bench/fixtures/sd15-shape into a temporary folder (bench/fill-sd15.ts: 4.1 GB) and removes it after.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fillSd15, SD15_SHAPE } from './fill-sd15.js';

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    'steps-list': { type: 'string', default: '1,4,8' },
    size: { type: 'string', default: '512x512' },
    cases: { type: 'string', default: 'engine,raw' },
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '1' },
    child: { type: 'string' },
  },
});
const steps = values['steps-list']!.split(',').map(Number);
const [width, height] = values.size!.split('x').map(Number);
const threads = Number(values.threads);

interface StepRow {
  steps: number;
  totalMs: number;
  denoiseMs: number;
  vaeMs: number;
  sessionRunMs: number;
  peakRssMiB: number;
  rssAfterMiB: number;
  /** Wall time of each step after the first (between step callbacks). */
  stepMs: number[];
}
interface CaseResult {
  name: string;
  loadMs: number;
  loadPeakRssMiB: number;
  rssAfterLoadMiB: number;
  rows: StepRow[];
}

const status = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) / 1024;
/** Resets VmHWM (Linux: writing 5 to clear_refs), so each phase's peak is its own. */
const resetPeak = () => {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    // older kernels: the peak then covers the whole process
  }
};

async function engineCase(name: string, dir: string): Promise<CaseResult> {
  const { loadPipeline } = await import('../src/engine/index.js');
  const opts = {
    threads,
    maxBatchSize: name === 'engine-b1' ? 1 : undefined,
    graphOptimizationLevel: name === 'engine-all' ? ('all' as const) : undefined,
    cpuMemArena: name === 'engine-arena' ? true : undefined,
    fuseAttention: name === 'engine-unfused' ? false : undefined,
    vaeTileSize: name === 'engine-tiled' ? 512 : undefined,
  };
  resetPeak();
  const t0 = performance.now();
  const pipe = await loadPipeline(dir, opts);
  const loadMs = performance.now() - t0;
  const loadPeakRssMiB = status('VmHWM');
  const rssAfterLoadMiB = status('VmRSS');
  const rows: StepRow[] = [];
  const request = (n: number, onStep?: () => void) =>
    pipe.generate(
      { prompt: 'a red circle', width, height, numInferenceSteps: n, guidanceScale: 7.5, seed: 1, scheduler: 'euler' },
      { onStep },
    );
  // Warm-up: ORT's first run of a session is several times slower than the next; its peak counts in the first row.
  resetPeak();
  await request(1);
  for (const n of steps) {
    if (rows.length > 0) resetPeak();
    const marks: number[] = [];
    const r = await request(n, () => marks.push(performance.now()));
    const t = r.timings;
    rows.push({
      steps: n,
      totalMs: t.totalMs,
      denoiseMs: t.denoiseMs,
      vaeMs: t.vaeMs,
      sessionRunMs: t.sessionRunMs,
      peakRssMiB: status('VmHWM'),
      rssAfterMiB: status('VmRSS'),
      stepMs: marks.slice(1).map((m, i) => m - marks[i]),
    });
  }
  await pipe.dispose();
  return { name, loadMs, loadPeakRssMiB, rssAfterLoadMiB, rows };
}

/** ORT with its default session options on the graphs as shipped, running the same text encoder / UNet / VAE calls. */
async function rawCase(dir: string): Promise<CaseResult> {
  const ort = await import('onnxruntime-node');
  const opts = { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1, logSeverityLevel: 3 as const };
  resetPeak();
  const t0 = performance.now();
  const te = await ort.InferenceSession.create(join(dir, 'text_encoder', 'model.onnx'), opts);
  const unet = await ort.InferenceSession.create(join(dir, 'unet', 'model.onnx'), opts);
  const vae = await ort.InferenceSession.create(join(dir, 'vae_decoder', 'model.onnx'), opts);
  const loadMs = performance.now() - t0;
  const loadPeakRssMiB = status('VmHWM');
  const rssAfterLoadMiB = status('VmRSS');
  let runMs = 0;
  const run = async (s: typeof te, feeds: Record<string, InstanceType<typeof ort.Tensor>>) => {
    const t = performance.now();
    const out = await s.run(feeds);
    runMs += performance.now() - t;
    return out;
  };
  const h = height / 8;
  const w = width / 8;
  const rows: StepRow[] = [];
  for (const [k, n] of [1, ...steps].entries()) {
    if (k !== 1) resetPeak();
    runMs = 0;
    const stepMs: number[] = [];
    const t = performance.now();
    const ids = new ort.Tensor('int32', new Int32Array(2 * 77).fill(49407), [2, 77]);
    const hidden = Object.values(await run(te, { input_ids: ids }))[0];
    const latents = new Float32Array(4 * h * w).map((_, i) => Math.sin(i));
    const tLoop = performance.now();
    for (let i = 0; i < n; i++) {
      const tStep = performance.now();
      const sample = new Float32Array(2 * latents.length);
      sample.set(latents);
      sample.set(latents, latents.length);
      const out = Object.values(
        await run(unet, {
          sample: new ort.Tensor('float32', sample, [2, 4, h, w]),
          timestep: new ort.Tensor('float32', Float32Array.of(999 - i, 999 - i), [2]),
          encoder_hidden_states: hidden,
        }),
      )[0].data as Float32Array;
      for (let j = 0; j < latents.length; j++) latents[j] -= 0.1 * (out[j] + 7.5 * (out[latents.length + j] - out[j]));
      if (i > 0) stepMs.push(performance.now() - tStep);
    }
    const denoiseMs = performance.now() - tLoop;
    const tVae = performance.now();
    await run(vae, { latent_sample: new ort.Tensor('float32', latents, [1, 4, h, w]) });
    const vaeMs = performance.now() - tVae;
    rows.push({
      steps: n,
      totalMs: performance.now() - t,
      denoiseMs,
      vaeMs,
      sessionRunMs: runMs,
      peakRssMiB: status('VmHWM'),
      rssAfterMiB: status('VmRSS'),
      stepMs,
    });
  }
  await Promise.all([te.release(), unet.release(), vae.release()]);
  // The first request was the warm-up, as in the engine case (its peak counts in the first measured row).
  return { name: 'raw', loadMs, loadPeakRssMiB, rssAfterLoadMiB, rows: rows.slice(1) };
}

function runChild(name: string, dir: string): CaseResult {
  const args = [...process.execArgv, fileURLToPath(import.meta.url), '--child', name, '--dir', dir];
  args.push('--steps-list', values['steps-list']!, '--size', values.size!, '--threads', values.threads!);
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  if (r.status !== 0 || !line) throw new Error(`case ${name} failed (exit ${r.status}): ${r.stdout}`);
  return JSON.parse(line) as CaseResult;
}

function weightBytes(dir: string): number {
  let total = 0;
  for (const part of ['text_encoder', 'unet', 'vae_decoder']) {
    const p = join(dir, part, 'weights.pb');
    if (existsSync(p)) total += statSync(p).size;
  }
  return total;
}

function report(results: CaseResult[], weights: number): void {
  const gib = (mib: number) => `${(mib / 1024).toFixed(2)} GiB (${((mib * 1048576) / weights).toFixed(2)}x)`;
  console.log(
    `\n${width}x${height}, CFG 7.5, Euler, ${threads} threads; weights ${(weights / 2 ** 30).toFixed(2)} GiB; steps ${steps.join(', ')}`,
  );
  for (const c of results) {
    const first = c.rows[0];
    const last = c.rows[c.rows.length - 1];
    const slope = c.rows.length > 1 ? (last.denoiseMs - first.denoiseMs) / (last.steps - first.steps) : first.denoiseMs / first.steps;
    const peak = Math.max(...c.rows.map((r) => r.peakRssMiB));
    const each = c.rows.flatMap((r) => r.stepMs).sort((a, b) => a - b);
    const median = each.length > 0 ? each[Math.floor(each.length / 2)].toFixed(0) : '-';
    console.log(
      `${c.name.padEnd(15)} load ${(c.loadMs / 1000).toFixed(1)} s  ms/step ${slope.toFixed(0)} (slope), ${median} (median of ${each.length})  VAE ${last.vaeMs.toFixed(0)} ms`,
    );
    console.log(
      `${''.padEnd(15)} RSS after load ${gib(c.rssAfterLoadMiB)}  load peak ${gib(c.loadPeakRssMiB)}  request peak ${gib(peak)}  after ${gib(last.rssAfterMiB)}`,
    );
    for (const r of c.rows) {
      console.log(
        `${''.padEnd(15)} ${String(r.steps).padStart(2)} steps: total ${r.totalMs.toFixed(0)} ms  denoise ${r.denoiseMs.toFixed(0)}  VAE ${r.vaeMs.toFixed(0)}  Σ session.run ${r.sessionRunMs.toFixed(0)} (wall/run ${(r.totalMs / r.sessionRunMs).toFixed(3)})`,
      );
    }
  }
}

if (values.child) {
  const dir = values.dir!;
  const result = values.child === 'raw' ? await rawCase(dir) : await engineCase(values.child, dir);
  console.log(JSON.stringify(result));
} else {
  let dir = values.dir;
  let temp: string | undefined;
  if (!dir) {
    temp = mkdtempSync(join(tmpdir(), 'easel-sd15-'));
    dir = temp;
    console.error(`filling ${dir} from ${SD15_SHAPE} (bench/fill-sd15.ts) ...`);
    fillSd15(dir);
  }
  try {
    const cases = values.cases!.split(',');
    const results: CaseResult[] = [];
    for (let round = 0; round < Number(values.rounds); round++) {
      for (const name of cases) {
        console.error(`round ${round + 1}: ${name} ...`);
        results.push(runChild(name, dir));
      }
    }
    report(results, weightBytes(dir));
  } finally {
    if (temp) rmSync(temp, { recursive: true, force: true });
  }
}
