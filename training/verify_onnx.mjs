// Checks an exported easel-shapes folder in onnxruntime-node (the runtime the engine uses) against
// PyTorch outputs written by training/verify_export.py: prints the max relative error per graph.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';

const [dir, refPath] = process.argv.slice(2);
const ref = JSON.parse(readFileSync(refPath, 'utf8'));
let worst = 0;
for (const c of ref.cases) {
  const sess = await ort.InferenceSession.create(join(dir, c.graph, 'model.onnx'), { intraOpNumThreads: 2 });
  const feeds = {};
  for (const [name, t] of Object.entries(c.inputs)) {
    const data = t.dtype === 'int32' ? Int32Array.from(t.data) : Float32Array.from(t.data);
    feeds[name] = new ort.Tensor(t.dtype, data, t.shape);
  }
  const t0 = performance.now();
  const out = await sess.run(feeds);
  const ms = performance.now() - t0;
  const got = out[c.output];
  const exp = c.expected;
  if (JSON.stringify(Array.from(got.dims)) !== JSON.stringify(exp.shape)) {
    console.log(`${c.graph}: shape ${got.dims} != ${exp.shape}`);
    process.exitCode = 1;
    continue;
  }
  let maxAbs = 0;
  let maxRef = 0;
  for (let i = 0; i < exp.data.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(got.data[i] - exp.data[i]));
    maxRef = Math.max(maxRef, Math.abs(exp.data[i]));
  }
  const rel = maxAbs / Math.max(maxRef, 1e-6);
  worst = Math.max(worst, rel);
  console.log(`${c.graph} ${JSON.stringify(exp.shape)}: max abs err ${maxAbs.toExponential(2)}, relative ${rel.toExponential(2)} (${ms.toFixed(0)} ms)`);
}
console.log(worst < 1e-3 ? `OK (worst relative error ${worst.toExponential(2)})` : `FAIL (worst ${worst})`);
if (worst >= 1e-3) process.exitCode = 1;
