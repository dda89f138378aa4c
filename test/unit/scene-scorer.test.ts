// The adherence scorer of the default model (src/eval/scene-scorer.ts) on ground-truth renders of training/scenes.py:
// every render scores fully right against its own spec and fails, for the right reason, against a different one.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { RgbaImage } from '../../src/engine/types.js';
import { classifyShape, maskFeatures, type SceneSpec, scoreScene } from '../../src/eval/scene-scorer.js';

const dir = join(import.meta.dirname, '..', 'fixtures', 'scenes');
interface Case {
  name: string;
  file: string;
  width: number;
  height: number;
  spec: SceneSpec;
  rendered?: SceneSpec;
  ok: boolean;
  reason?: string;
}
const doc = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')) as {
  palette: Record<string, [number, number, number]>;
  geometry: { sizes: Record<string, number> };
  cases: Case[];
};

async function load(file: string, scale = 1): Promise<RgbaImage> {
  let img = sharp(join(dir, file)).ensureAlpha();
  if (scale !== 1) {
    const meta = await sharp(join(dir, file)).metadata();
    img = img.resize(meta.width! * scale, meta.height! * scale, { kernel: 'lanczos3' });
  }
  const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data) };
}

describe('scoreScene on ground-truth renders', () => {
  it('has positive and negative cases for every check', () => {
    expect(doc.cases.filter((c) => c.ok).length).toBeGreaterThanOrEqual(10);
    const reasons = new Set(doc.cases.filter((c) => !c.ok).map((c) => c.reason));
    for (const r of ['background', 'count', 'color', 'position', 'shape', 'size']) expect(reasons).toContain(r);
    const shapes = new Set(doc.cases.filter((c) => c.ok).flatMap((c) => c.spec.objects.map((o) => o.shape)));
    expect(shapes.size).toBe(8);
    const kinds = new Set(doc.cases.filter((c) => c.ok).map((c) => c.spec.background.kind));
    expect(kinds.size).toBe(3);
  });

  for (const c of doc.cases.filter((k) => k.ok)) {
    it(`scores ${c.name} (${c.width}x${c.height}) fully right`, async () => {
      const img = await load(c.file);
      expect([img.width, img.height]).toEqual([c.width, c.height]);
      const r = scoreScene(img, c.spec, doc.palette, doc.geometry);
      expect(r.reasons).toEqual([]);
      expect(r.ok).toBe(true);
      expect(r.checks.objects).toHaveLength(c.spec.objects.length);
      // On clean renders the classifier is confident and right about every shape.
      expect(r.found.map((f) => f.shape).sort()).toEqual(c.spec.objects.map((o) => o.shape).sort());
      expect(r.found.map((f) => f.size).sort()).toEqual(c.spec.objects.map((o) => o.size).sort());
    });
  }

  for (const c of doc.cases.filter((k) => !k.ok)) {
    it(`fails ${c.name} for its ${c.reason}`, async () => {
      const r = scoreScene(await load(c.file), c.spec, doc.palette, doc.geometry);
      expect(r.ok).toBe(false);
      expect(r.reasons.length).toBeGreaterThan(0);
      // Only the check that differs between the rendered and the asserted spec fails.
      for (const reason of r.reasons) expect(reason.split(':')[0]).toBe(c.reason);
      // ...and the same render passes against the spec it was rendered from.
      expect(scoreScene(await load(c.file), c.rendered!, doc.palette, doc.geometry).ok).toBe(true);
    });
  }

  it('gives the same verdicts on 4x upscaled images (1024x1024, 1536x1024 and 1024x1536)', async () => {
    for (const name of ['three_mixed', 'two_objects_wide', 'diamond_tall', 'star_transparent', 'neg_shape_triangle', 'neg_position']) {
      const c = doc.cases.find((k) => k.name === name)!;
      const img = await load(c.file, 4);
      expect(img.width).toBe(c.width * 4);
      const r = scoreScene(img, c.spec, doc.palette, doc.geometry);
      expect(r.ok, `${name}: ${r.reasons.join('; ')}`).toBe(c.ok);
    }
  });

  it('says how far off a wrong size is, as a ratio of the expected diameter and the allowed band', async () => {
    const c = doc.cases.find((k) => k.name === 'neg_size')!;
    const [reason] = scoreScene(await load(c.file), c.spec, doc.palette, doc.geometry).reasons;
    expect(reason).toMatch(
      /^size: .* drawn at diameter 0\.\d{3} of S = \d+\.\d{2}x the expected 0\.\d{2} \(allowed 0\.7-1\.4x; nearest size: \w+\)$/,
    );
    const ratio = Number(/= (\d+\.\d+)x/.exec(reason!)![1]);
    expect(ratio < 0.7 || ratio > 1.4).toBe(true);
  });

  it('ignores size when told to', async () => {
    const c = doc.cases.find((k) => k.name === 'neg_size')!;
    expect(scoreScene(await load(c.file), c.spec, doc.palette, doc.geometry, { checkSize: false }).ok).toBe(true);
  });

  it('reports a blank canvas as missing every object', async () => {
    const w = 256,
      h = 256;
    const data = new Uint8Array(w * h * 4).fill(255);
    const spec: SceneSpec = {
      background: { kind: 'solid', color: 'white' },
      objects: [{ color: 'red', shape: 'circle', size: 'medium', position: null }],
    };
    const r = scoreScene({ width: w, height: h, data }, spec, doc.palette, doc.geometry);
    expect(r.ok).toBe(false);
    expect(r.checks.background.ok).toBe(true);
    expect(r.reasons).toEqual([expect.stringMatching(/^count: expected 1 object\(s\), found 0/)]);
  });
});

describe('classifyShape', () => {
  it('says unknown for a shape too small to read', () => {
    const mask = new Uint8Array(8 * 8).fill(1);
    expect(classifyShape(maskFeatures(mask, 8, 8)).shape).toBe('unknown');
  });
  it('reads a filled square and a square with a hole', () => {
    const n = 40;
    const full = new Uint8Array(n * n).fill(1);
    expect(classifyShape(maskFeatures(full, n, n)).shape).toBe('square');
    const disc = new Uint8Array(n * n);
    for (let y = 0; y < n; y++)
      for (let x = 0; x < n; x++) {
        const r = Math.hypot(x + 0.5 - n / 2, y + 0.5 - n / 2);
        disc[y * n + x] = r <= n / 2 && r >= 0.55 * (n / 2) ? 1 : 0;
      }
    const f = maskFeatures(disc, n, n);
    expect(f.hole).toBeGreaterThan(0.25);
    expect(classifyShape(f).shape).toBe('ring');
  });
});
