// Makes a runnable SD 1.5-architecture pipeline from the weight-free graphs in bench/fixtures/sd15-shape: copies the
// folder to OUT and writes each part's external-data file with seeded Gaussian values per tensor, at the mean and
// standard deviation its manifest records (a constant where the tensor was constant). About 4.1 GB; noise images.
// Rerun: npx tsx bench/fill-sd15.ts OUT [--seed N]      (bench/sd-size.ts calls it when given no --dir)
import { closeSync, cpSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createRng } from '../src/engine/rng.js';

export const SD15_SHAPE = join(import.meta.dirname, 'fixtures', 'sd15-shape');

interface TensorEntry {
  name: string;
  file: string;
  offset: number;
  /** Bytes (fp32). */
  length: number;
  mean: number;
  std: number;
  const?: number;
}

/** Writes OUT; tensors are filled in 16 MiB slices so memory stays small whatever the tensor's size. */
export function fillSd15(out: string, seed = 0): void {
  cpSync(SD15_SHAPE, out, { recursive: true, filter: (src) => !src.endsWith('README.md') });
  const manifest = JSON.parse(readFileSync(join(SD15_SHAPE, 'weights-manifest.json'), 'utf8')) as {
    parts: Record<string, TensorEntry[]>;
  };
  const rng = createRng(seed);
  const slice = new Float32Array(4 * 1024 * 1024);
  for (const [part, tensors] of Object.entries(manifest.parts)) {
    const fds = new Map<string, number>();
    try {
      for (const t of tensors) {
        let fd = fds.get(t.file);
        if (fd === undefined) {
          fd = openSync(join(out, part, t.file), 'w');
          fds.set(t.file, fd);
        }
        for (let done = 0; done < t.length; ) {
          const n = Math.min(slice.length, (t.length - done) / 4);
          const values = slice.subarray(0, n);
          if (t.const !== undefined) values.fill(t.const);
          else for (let i = 0; i < n; i++) values[i] = t.mean + t.std * rng.normal();
          writeSync(fd, new Uint8Array(values.buffer, 0, n * 4), 0, n * 4, t.offset + done);
          done += n * 4;
        }
      }
    } finally {
      for (const fd of fds.values()) closeSync(fd);
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = process.argv[2];
  if (!out) throw new Error('usage: npx tsx bench/fill-sd15.ts OUT [--seed N]');
  const i = process.argv.indexOf('--seed');
  fillSd15(out, i > 0 ? Number(process.argv[i + 1]) : 0);
}
