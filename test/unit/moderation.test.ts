// The local word filter behind `moderation`: whole words, through trivial obfuscation, with a false-positive list.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { createWordFilter, normalizeForModeration } from '../../src/server/moderation.js';

const { categories, lowCategories } = loadConfig({}, {}).moderation;
const filter = createWordFilter(categories, lowCategories);
const flagged = (prompt: string, level: 'auto' | 'low' = 'auto') => (filter(prompt, level) as { flagged: boolean }).flagged;

describe('moderation word filter', () => {
  it.each([
    'a nude figure',
    'a n\u200Bude figure', // zero-width space
    'a nu\u00ADde figure', // soft hyphen
    'a \u202Enude\u202C figure', // bidi controls
    'a ｎｕｄｅ figure', // full-width letters
    'a n-u-d-e figure',
    'a n.u.d.e figure',
    'a n_u_d_e figure',
    'a n u d e figure',
    'two nudes',
    'three beheadings',
    'NSFW art',
    'a self harm scene',
  ])('blocks %j under auto', (prompt) => {
    expect(flagged(prompt)).toBe(true);
  });

  it.each([
    'a nudibranch on a reef',
    'a Goretex jacket',
    'a gorgeous sunset',
    'a red circle on a blue background',
    'a b c d e in a row', // joined single letters that spell nothing listed
    'an explicit instruction', // only the phrase "explicit sex" is listed
    'pornographer', // neither a listed word nor its plural
  ])('allows %j', (prompt) => {
    expect(flagged(prompt)).toBe(false);
  });

  it('low enforces only the low categories', () => {
    expect(flagged('a nude figure', 'low')).toBe(false);
    expect(flagged('u-n-d-e-r-a-g-e sex', 'low')).toBe(true);
  });

  it('normalises for matching only', () => {
    expect(normalizeForModeration('A ｎ-ｕ-ｄ-ｅ\u200B Figure')).toBe('a nude figure');
    expect(normalizeForModeration('a b c d e in a row')).toBe('a bcde in a row');
  });
});
