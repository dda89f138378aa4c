// Planning from model info (no sessions) and the worker's alpha rule, on the shipped default model's folder:
// styles, the background "auto" rule for n > 1, the ignored-words warning and the blend of extra edit images.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseGenerationRequest } from '../../src/contract/generations.js';
import { readModelInfo } from '../../src/engine/models/info.js';
import { DEFAULT_STYLES, styledGuidance } from '../../src/engine/plan.js';
import { blendEditInputs } from '../../src/imaging/blend.js';
import type { ServedModel } from '../../src/server/catalog.js';
import { planJob } from '../../src/server/plan.js';
import { ignoredWords, ignoredWordsWarning } from '../../src/server/vocabulary.js';
import { resolveAlpha } from '../../src/worker/encode.js';

const MODEL = join(import.meta.dirname, '..', '..', 'models', 'easel-shapes');
const info = readModelInfo(MODEL);
const served = (family: ServedModel['family'], id: string): ServedModel => ({
  id,
  family,
  local: { name: 'easel-default', path: MODEL, info },
  isAlias: true,
});
const ctx = {
  resolveModel: (name: string) =>
    name === 'dall-e-3'
      ? { name, family: 'dall-e-3' as const, extensions: [] }
      : { name, family: 'gpt-image' as const, extensions: ['guidance_scale'] },
};

function rgba(alpha: number) {
  return { width: 2, height: 1, data: Uint8Array.from([1, 2, 3, alpha, 4, 5, 6, 255]) };
}

describe('planning from model info', () => {
  it('style vivid keeps the preset guidance, natural halves it above 1; an explicit guidance_scale wins', () => {
    const d3 = parseGenerationRequest({ model: 'dall-e-3', prompt: 'a red circle', style: 'natural' }, ctx);
    const preset = info.presets!.standard.guidance_scale;
    expect(planJob(served('dall-e-3', 'dall-e-3'), d3, 'vivid').request.guidanceScale).toBe(preset);
    expect(planJob(served('dall-e-3', 'dall-e-3'), d3, 'natural').request.guidanceScale).toBe(1 + (preset - 1) / 2);
    const explicit = parseGenerationRequest({ model: 'gpt-image-1', prompt: 'x', guidance_scale: 4 }, ctx);
    expect(planJob(served('gpt-image', 'gpt-image-1'), explicit, 'natural').request.guidanceScale).toBe(4);
    expect(styledGuidance(1, DEFAULT_STYLES.natural)).toBe(1);
  });

  it('plans alpha auto for background auto on an alpha model, keep for transparent, flatten for opaque and jpeg', () => {
    const plan = (extra: object) =>
      planJob(served('gpt-image', 'gpt-image-1'), parseGenerationRequest({ model: 'gpt-image-1', prompt: 'x', ...extra }, ctx)).output
        .alpha;
    expect(plan({})).toBe('auto');
    expect(plan({ background: 'transparent' })).toBe('keep');
    expect(plan({ background: 'opaque' })).toBe('flatten');
    expect(plan({ output_format: 'jpeg' })).toBe('flatten');
  });
});

describe('the worker under background auto', () => {
  const out = { width: 2, height: 1, format: 'png' as const, compression: 100, alpha: 'auto' as const };
  it('keeps alpha only when every image has transparent pixels', () => {
    expect(resolveAlpha([rgba(0), rgba(10)], out).alpha).toBe('keep');
    expect(resolveAlpha([rgba(0), rgba(255)], out).alpha).toBe('flatten');
    expect(resolveAlpha([rgba(255)], { ...out, alpha: 'keep' }).alpha).toBe('keep');
  });
});

describe('ignored words', () => {
  it('lists the distinct unknown words in order, lower-cased, with non-Latin-1 ones percent-encoded in the header', () => {
    const vocab = info.extras.prompt_vocabulary!;
    expect(ignoredWords('Two pink hearts at the top', vocab)).toEqual([]);
    expect(ignoredWords('A Dog, a dog and a 猫 near a red circle', vocab)).toEqual(['dog', '猫', 'near']);
    expect(ignoredWordsWarning(['dog', '猫'])).toBe('the model does not know these words and ignored them: dog, %E7%8C%AB');
    const many = Array.from({ length: 25 }, (_, i) => `w${i}`);
    expect(ignoredWordsWarning(many)).toMatch(/w19 and 5 more$/);
  });
});

describe('blend of extra edit images', () => {
  it('gives the first image half the weight and the others the rest', () => {
    const img = (v: number) => ({ width: 1, height: 1, data: Uint8Array.from([v, v, v, 255]) });
    expect(Array.from(blendEditInputs(img(200), [img(0), img(100)]).data)).toEqual([125, 125, 125, 255]);
    expect(blendEditInputs(img(7), [])).toEqual(img(7));
  });
});
