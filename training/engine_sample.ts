// Generates PNGs from an exported easel-shapes folder through Easel's own engine (no special case), to
// check the export end to end. Run: npx tsx training/engine_sample.ts models/easel-shapes OUTDIR "prompt" ...
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadPipeline } from '../src/engine/index.js';

const [dir, outDir, ...prompts] = process.argv.slice(2);
if (!dir || !outDir || prompts.length === 0) throw new Error('usage: engine_sample.ts MODEL_DIR OUT_DIR PROMPT...');
mkdirSync(outDir, { recursive: true });
const pipe = await loadPipeline(dir);
const steps = Number(process.env.STEPS ?? 16);
const cfg = Number(process.env.CFG ?? 4);
const [w, h] = (process.env.SIZE ?? '256x256').split('x').map(Number);
for (const [i, prompt] of prompts.entries()) {
  const t0 = performance.now();
  const {
    images: [img],
  } = await pipe.generate({ prompt, width: w, height: h, numInferenceSteps: steps, guidanceScale: cfg, seed: 1 });
  const file = join(outDir, `engine_${i}.png`);
  await sharp(Buffer.from(img.data), { raw: { width: img.width, height: img.height, channels: 4 } })
    .png()
    .toFile(file);
  console.log(`${file}  ${(performance.now() - t0).toFixed(0)} ms  ${prompt}`);
}
await pipe.dispose();
