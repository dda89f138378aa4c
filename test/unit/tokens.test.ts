// o200k_base counting (src/contract/o200k.ts) must give js-tiktoken's tokens exactly, on ordinary prompts and on
// the long unspaced runs that made js-tiktoken's quadratic merge freeze the server, in milliseconds, warm before use.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Tiktoken } from 'js-tiktoken/lite';
import { beforeAll, describe, expect, it } from 'vitest';
import { countO200k, encodeO200k, warmTokenCounter } from '../../src/contract/o200k.js';
import { buildUsage, textTokens } from '../../src/contract/usage.js';
import { type LongRecipe, longText } from '../fixtures/make-tokens-golden.js';

interface Golden {
  jsTiktoken: string;
  prompts: Array<[string, number]>;
  long: Array<{ recipe: LongRecipe; tokens: number }>;
}

const golden = JSON.parse(readFileSync(new URL('../fixtures/tokens-golden.json', import.meta.url), 'utf8')) as Golden;
const require = createRequire(import.meta.url);
let tiktoken: Tiktoken;
const reference = (text: string): number[] => tiktoken.encode(text, [], []);

describe('warmTokenCounter', () => {
  it('builds without holding the event loop, once', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    const warm = warmTokenCounter();
    expect(warmTokenCounter()).toBe(warm);
    await warm;
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(3); // a synchronous build lets no timer run until it is done
    await warmTokenCounter();
  });
});

describe('o200k_base counts', () => {
  beforeAll(() => {
    tiktoken = new Tiktoken(require('js-tiktoken/ranks/o200k_base'));
  });

  it('match the golden set made with js-tiktoken', () => {
    expect(golden.prompts.length).toBeGreaterThan(250);
    const wrong = golden.prompts.filter(([text, tokens]) => countO200k(text) !== tokens || encodeO200k(text).length !== tokens);
    expect(wrong).toEqual([]);
  });

  it('give the same token ids as js-tiktoken on the golden prompts', () => {
    const wrong = golden.prompts.filter(([text]) => encodeO200k(text).join() !== reference(text).join());
    expect(wrong.map(([text]) => text)).toEqual([]);
  });

  it('give the same ids as js-tiktoken on long unspaced runs (compared live)', () => {
    const texts = [
      'x'.repeat(2000),
      'ab'.repeat(700),
      '🎨'.repeat(300),
      longText({ from: 0x4e00, to: 0x6300, length: 500, seed: 1 }),
      longText({ from: 0x61, to: 0x7b, length: 1500, seed: 2 }),
      longText({ from: 0x20, to: 0x7f, length: 8000, seed: 3 }),
    ];
    for (const text of texts) expect(encodeO200k(text)).toEqual(reference(text));
  });

  it('match js-tiktoken on the long golden texts (up to 32000 chars), each in well under a second', () => {
    expect(golden.long.length).toBeGreaterThan(5);
    for (const { recipe, tokens } of golden.long) {
      const text = longText(recipe);
      const started = performance.now();
      expect(countO200k(text), JSON.stringify(recipe)).toBe(tokens);
      expect(performance.now() - started).toBeLessThan(500);
    }
  });

  it("count a 32000-char 'x' prompt (js-tiktoken: minutes) in bounded time", () => {
    const started = performance.now();
    expect(countO200k('x'.repeat(32000))).toBe(4000);
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('feed usage.input_tokens as before', () => {
    expect(textTokens('')).toBe(0);
    expect(textTokens('a red circle on a blue background')).toBe(7);
    expect(buildUsage({ prompt: 'a red circle on a blue background', quality: 'low', size: '1024x1024', n: 1 })).toEqual({
      input_tokens: 7,
      input_tokens_details: { text_tokens: 7, image_tokens: 0 },
      output_tokens: 272,
      total_tokens: 279,
      output_tokens_details: { image_tokens: 272, text_tokens: 0 },
    });
  });
});
