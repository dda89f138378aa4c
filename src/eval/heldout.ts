// Loads the default model's held-out prompt set (training/heldout.json) and the palette to score it with, so that
// `npm run eval:default-model` and tests read them the same way.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Palette, SceneGeometry, SceneSpec } from './scene-scorer.js';

export interface HeldoutPrompt {
  id: number;
  category?: string;
  prompt: string;
  expect: SceneSpec;
  /** What in this prompt never appeared in training ("pair:green star", "together:cross+triangle", ...). */
  unseen?: string[];
}

export interface HeldoutSet {
  prompts: HeldoutPrompt[];
  palette: Palette;
  /** Where the palette came from: the model folder's palette.json or heldout.json's own. */
  paletteSource: string;
  geometry: SceneGeometry;
}

function isRgb(v: unknown): v is [number, number, number] {
  return Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && x >= 0 && x <= 255);
}

function checkPalette(p: unknown, where: string): Palette {
  if (!p || typeof p !== 'object') throw new Error(`${where}: palette must be an object of name -> [r, g, b]`);
  for (const [k, v] of Object.entries(p)) if (!isRgb(v)) throw new Error(`${where}: palette colour '${k}' is not [r, g, b]`);
  return p as Palette;
}

/**
 * Reads `heldoutPath` (default training/heldout.json under `root`) and the palette: `<modelDir>/palette.json` when
 * that file exists, else heldout.json's own `palette`.
 */
export function loadHeldout(opts: { root: string; modelDir?: string; heldoutPath?: string }): HeldoutSet {
  const file = opts.heldoutPath ?? join(opts.root, 'training', 'heldout.json');
  const doc = JSON.parse(readFileSync(file, 'utf8')) as {
    palette?: unknown;
    geometry?: SceneGeometry;
    prompts?: HeldoutPrompt[];
  };
  if (!Array.isArray(doc.prompts) || doc.prompts.length === 0) throw new Error(`${file}: no prompts`);
  if (!doc.geometry?.sizes) throw new Error(`${file}: no geometry.sizes`);
  for (const p of doc.prompts) {
    if (typeof p.prompt !== 'string' || !p.expect?.background || !Array.isArray(p.expect.objects)) {
      throw new Error(`${file}: prompt ${p.id} lacks prompt/expect`);
    }
  }
  const modelPalette = opts.modelDir ? join(opts.modelDir, 'palette.json') : undefined;
  let palette: Palette;
  let paletteSource: string;
  if (modelPalette && existsSync(modelPalette)) {
    palette = checkPalette(JSON.parse(readFileSync(modelPalette, 'utf8')), modelPalette);
    paletteSource = modelPalette;
  } else {
    palette = checkPalette(doc.palette, file);
    paletteSource = `${file} (palette)`;
  }
  return { prompts: doc.prompts, palette, paletteSource, geometry: doc.geometry };
}
