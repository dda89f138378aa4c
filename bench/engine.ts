// bench/engine: how much the engine adds on top of the model's own compute.
// Prints total pipeline wall time, the sum of raw session.run times inside it, and their ratio (goal <= 1.03).
// With --torch (the default model only), also the same model in PyTorch eager (training/bench_torch.py), side by side;
// that reference samples with DDIM, so --torch runs the engine with DDIM too unless --scheduler names another.
// Rerun: npx tsx bench/engine.ts --model <folder> [--steps 20] [--size 512x512] [--n 1] [--guidance 7.5] [--runs 5]
//          [--scheduler NAME (default: the folder's scheduler_config.json)] [--torch]
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { loadPipeline } from '../src/engine/index.js';
import { isSchedulerName, SCHEDULER_NAMES } from '../src/engine/schedulers/index.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'test/fixtures/tiny-sd' },
    steps: { type: 'string', default: '20' },
    size: { type: 'string' },
    n: { type: 'string', default: '1' },
    guidance: { type: 'string', default: '7.5' },
    runs: { type: 'string', default: '5' },
    threads: { type: 'string' },
    scheduler: { type: 'string' },
    torch: { type: 'boolean', default: false },
  },
});
const scheduler = values.scheduler ?? (values.torch ? 'ddim' : undefined);
if (scheduler !== undefined && !isSchedulerName(scheduler)) {
  console.error(`unknown --scheduler ${scheduler} (known: ${SCHEDULER_NAMES.join(', ')})`);
  process.exit(2);
}

const pipe = await loadPipeline(values.model!, { threads: values.threads ? Number(values.threads) : undefined });
const [w, h] = values.size ? values.size.split('x').map(Number) : [pipe.capabilities.nativeWidth, pipe.capabilities.nativeHeight];
const req = {
  prompt: 'a red circle and a blue square on a yellow background',
  width: w,
  height: h,
  numImages: Number(values.n),
  numInferenceSteps: Number(values.steps),
  guidanceScale: Number(values.guidance),
  scheduler,
  seed: 1,
};
await pipe.generate(req); // warm-up: first runs allocate arenas
const rows: Array<{ total: number; run: number }> = [];
for (let i = 0; i < Number(values.runs); i++) {
  const r = await pipe.generate(req);
  rows.push({ total: r.timings.totalMs, run: r.timings.sessionRunMs });
}
await pipe.dispose();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const total = median(rows.map((r) => r.total));
const run = median(rows.map((r) => r.run));
console.log(
  `model ${values.model}  ${w}x${h}  steps ${values.steps}  n ${values.n}  guidance ${values.guidance}  ` +
    `scheduler ${scheduler ?? "the model's"}  runs ${rows.length}`,
);
console.log(`pipeline wall time (median)   ${total.toFixed(1)} ms`);
console.log(`sum of session.run (median)   ${run.toFixed(1)} ms`);
console.log(`ratio wall / session.run      ${(total / run).toFixed(3)}   (goal <= 1.03)`);

if (values.torch) {
  // Same weights, steps, guidance and latent size in PyTorch eager with the same thread count (2 by default).
  const scale = pipe.folder.vaeScaleFactor;
  const latent = `${h / scale}x${w / scale}`;
  const out = execFileSync(
    '/usr/bin/python3',
    [
      'training/bench_torch.py',
      '--steps',
      String(values.steps),
      '--latent',
      latent,
      '--cfg',
      String(values.guidance),
      '--runs',
      String(values.runs),
      '--threads',
      values.threads ?? '2',
    ],
    { encoding: 'utf8' },
  );
  const torch = JSON.parse(out.trim().split('\n').pop()!) as { median_ms: number; torch: string };
  console.log(`PyTorch ${torch.torch} eager (median) ${torch.median_ms.toFixed(1)} ms`);
  console.log(`ratio Easel / PyTorch eager   ${(total / torch.median_ms).toFixed(3)}   (< 1 means Easel is faster)`);
}
