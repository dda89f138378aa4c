// Scores a directory of held-out images (NNN.png, NNN = the prompt id in training/heldout.json) with the project's
// scene scorer, without a server: for the autoencoder's ceiling (training/ae_ceiling.py) or saved eval outputs
// (`npm run eval:default-model -- --out DIR`). Run: npx tsx training/score_pngs.ts DIR [--model models/easel-shapes]
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { packageRoot } from '../src/config/config.js';
import { loadHeldout } from '../src/eval/heldout.js';
import { scoreScene } from '../src/eval/scene-scorer.js';

const { values, positionals } = parseArgs({
  options: { model: { type: 'string', default: 'models/easel-shapes' } },
  allowPositionals: true,
});
const dir = positionals[0];
if (!dir) {
  console.error('usage: npx tsx training/score_pngs.ts DIR [--model DIR]');
  process.exit(2);
}
const set = loadHeldout({ root: packageRoot(), modelDir: resolve(values.model!) });
let n = 0;
let ok = 0;
const failed: Record<string, number> = {};
for (const p of set.prompts) {
  const file = join(dir, `${String(p.id).padStart(3, '0')}.png`);
  if (!existsSync(file)) continue;
  const { data, info } = await sharp(file).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  const score = scoreScene({ width: info.width, height: info.height, data: new Uint8Array(data) }, p.expect, set.palette, set.geometry);
  n++;
  if (score.ok) ok++;
  else console.log(`${String(p.id).padStart(3)}  FAIL  ${p.prompt.slice(0, 70).padEnd(70)}  ${score.reasons.join('; ')}`);
  const checks: Record<string, boolean> = {
    background: score.checks.background.ok,
    count: score.checks.count.ok,
    position: score.checks.objects.every((o) => o.found !== null && o.position),
    shape: score.checks.objects.every((o) => o.found !== null && o.shape),
    size: score.checks.objects.every((o) => o.found !== null && o.size),
  };
  for (const [k, v] of Object.entries(checks)) if (!v) failed[k] = (failed[k] ?? 0) + 1;
}
console.log(`checks failed: ${JSON.stringify(failed)}`);
console.log(`fully right: ${ok}/${n} = ${((100 * ok) / Math.max(1, n)).toFixed(1)}%`);
