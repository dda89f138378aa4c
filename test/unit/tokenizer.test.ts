// Tests for the CLIP BPE tokenizer against a small vocabulary written here, with expectations derived by
// hand from CLIP's rules (transformers models/clip/tokenization_clip.py), plus a golden table when present.

import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClipTokenizer, cleanText } from '../../src/engine/tokenizers/clip.js';

// --- A CLIP-layout vocabulary, built independently of the code under test --------------------------
// CLIP's vocab.json starts with the 256 byte symbols in bytes_to_unicode order (the printable ranges
// '!'..'~', '¡'..'¬', '®'..'ÿ' first, then the 68 other bytes as U+0100.. in byte order), then the same
// 256 symbols with '</w>', then merged tokens, then <|startoftext|>, <|endoftext|>.
const printableRanges: Array<[number, number]> = [
  [0x21, 0x7e],
  [0xa1, 0xac],
  [0xae, 0xff],
];
const byteSymbols: string[] = [];
for (const [lo, hi] of printableRanges) for (let b = lo; b <= hi; b++) byteSymbols.push(String.fromCharCode(b));
{
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = printableRanges.some(([lo, hi]) => b >= lo && b <= hi);
    if (!printable) byteSymbols.push(String.fromCharCode(256 + n++));
  }
}

/** Merges in rank order; every merge result gets a vocab entry unless listed in `missing`. */
const MERGES: Array<[string, string]> = [
  ['e', 'd</w>'], // 0: "red" merges e+d</w> first ...
  ['r', 'e'], // 1: ... though r+e is also a merge, it ranks lower
  ['r', 'ed</w>'], // 2
  ['a', 'a'], // 3: only inside words: the last 'a' of a word is 'a</w>'
  ['c', 'a'], // 4
  ['ca', 't</w>'], // 5
  ['Ã', '©</w>'], // 6: "é" = UTF-8 C3 A9 -> 'Ã' '©'
  ['!', '!'], // 7
  ['!!', '!</w>'], // 8
  ['x', 'y</w>'], // 9: result deliberately missing from the vocab -> unk
];
const MISSING = new Set(['xy</w>']);

function buildVocab(): Record<string, number> {
  const tokens = [...byteSymbols, ...byteSymbols.map((s) => `${s}</w>`)];
  for (const [a, b] of MERGES) if (!MISSING.has(a + b) && !tokens.includes(a + b)) tokens.push(a + b);
  tokens.push('<|startoftext|>', '<|endoftext|>');
  return Object.fromEntries(tokens.map((t, i) => [t, i]));
}
const VOCAB = buildVocab();
const BOS = VOCAB['<|startoftext|>'];
const EOS = VOCAB['<|endoftext|>'];
const id = (t: string): number => {
  const v = VOCAB[t];
  if (v === undefined) throw new Error(`test vocab lacks ${t}`);
  return v;
};

let dir: string;
async function writeFolder(name: string, files: Record<string, unknown>): Promise<string> {
  const p = join(dir, name);
  await mkdir(p, { recursive: true });
  for (const [file, content] of Object.entries(files)) {
    await writeFile(join(p, file), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return p;
}
const mergesTxt = `#version: 0.2\n${MERGES.map(([a, b]) => `${a} ${b}`).join('\n')}\n`;
const v1Config = {
  bos_token: { __type: 'AddedToken', content: '<|startoftext|>', lstrip: false },
  eos_token: { __type: 'AddedToken', content: '<|endoftext|>', lstrip: false },
  unk_token: { __type: 'AddedToken', content: '<|endoftext|>', lstrip: false },
  pad_token: '<|endoftext|>',
  model_max_length: 77,
  do_lower_case: true,
  clean_up_tokenization_spaces: true,
};

let tok: ClipTokenizer;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'easel-tok-'));
  const p = await writeFolder('v1', { 'vocab.json': VOCAB, 'merges.txt': mergesTxt, 'tokenizer_config.json': v1Config });
  tok = await ClipTokenizer.fromFolder(p);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('test vocabulary layout matches real CLIP ids', () => {
  // Anchors from openai/clip-vit-large-patch14 vocab.json: "!"=0, "a"=64, "Ġ"(space byte)=220, "a</w>"=320,
  // "!</w>"=256. If our independent layout gets these right, the byte table order is right.
  it('anchors', () => {
    expect(VOCAB['!']).toBe(0);
    expect(VOCAB.a).toBe(64);
    expect(VOCAB['\u0120']).toBe(220);
    expect(VOCAB['!</w>']).toBe(256);
    expect(VOCAB['a</w>']).toBe(320);
  });
});

describe('ClipTokenizer.tokenize (hand-derived)', () => {
  const cases: Array<[string, string, string[]]> = [
    // single letter: the only symbol carries </w>
    ['single letter gets </w>', 'a', ['a</w>']],
    // "red" -> [r, e, d</w>]; pairs (r,e)=1, (e,d</w>)=0 -> merge rank 0 -> [r, ed</w>]; (r,ed</w>)=2 -> red</w>
    ['merges by rank, not left to right', 'red', ['red</w>']],
    // "rex" -> [r, e, x</w>]; only (r,e) is known -> [re, x</w>]
    ['partial merge', 'rex', ['re', 'x</w>']],
    // "aa" -> [a, a</w>]: the pair is (a, a</w>), not the merge (a, a)
    ['</w> blocks a merge at word end', 'aa', ['a', 'a</w>']],
    // "aaa" -> [a, a, a</w>] -> (a,a) at 0 -> [aa, a</w>]
    ['merge inside word', 'aaa', ['aa', 'a</w>']],
    // "aaaaa" -> [a,a,a,a,a</w>] -> all non-overlapping (a,a) left to right -> [aa, aa, a</w>]
    ['all occurrences left to right', 'aaaaa', ['aa', 'aa', 'a</w>']],
    // "cat" -> [c, a, t</w>]: (c,a)=4 -> [ca, t</w>]: (ca,t</w>)=5 -> cat</w>
    ['two-step merge', 'cat', ['cat</w>']],
    // upper case and surrounding/multiple whitespace are cleaned away
    ['lower-case and whitespace', '  A\tRED\n\n CAT  ', ['a</w>', 'red</w>', 'cat</w>']],
    // numbers: [\p{N}] matches one digit at a time
    ['digits split one by one', 'a 1234', ['a</w>', '1</w>', '2</w>', '3</w>', '4</w>']],
    ['letters then digit', 'x2', ['x</w>', '2</w>']],
    // punctuation runs are one pre-token: "!!!" -> [!, !, !</w>] -> (!,!)=7 -> [!!, !</w>] -> (!!,!</w>)=8
    ['punctuation run', 'cat!!!', ['cat</w>', '!!!</w>']],
    ['comma between words', 'a,cat', ['a</w>', ',</w>', 'cat</w>']],
    // contractions: 't / 's are pre-tokens of their own: "'t" -> [', t</w>]
    ['contractions', "don't", ['d', 'o', 'n</w>', "'", 't</w>']],
    // underscore is not a letter for CLIP's regex: a separate punctuation pre-token
    ['underscore', 'a_a', ['a</w>', '_</w>', 'a</w>']],
    // é = UTF-8 C3 A9 -> symbols 'Ã' '©</w>' -> merge 6 -> 'Ã©</w>'
    ['accented letter via bytes', 'é', ['Ã©</w>']],
    // É lower-cases to é first
    ['accented capital', 'É', ['Ã©</w>']],
    // e + U+0301 (combining acute) is NFC-normalised to é
    ['NFC', 'e\u0301', ['Ã©</w>']],
    // 🙂 U+1F642 = F0 9F 99 82 -> 'ð' 'Ł' 'Ļ' 'Ĥ' (GPT-2's byte table), no merges
    ['emoji bytes', '🙂', ['ð', 'Ł', 'Ļ', 'Ĥ</w>']],
    // ² is \p{N} (No), one pre-token: C2 B2 -> 'Â' '²</w>'
    ['superscript digit is a number', 'a²', ['a</w>', 'Â', '²</w>']],
    // zero-width space (Cf) is removed by the cleaning, joining the word
    ['format characters removed', 'c\u200Bat', ['cat</w>']],
    // CJK ideographs become words of their own (BasicTokenizer._tokenize_chinese_chars)
    ['CJK split per ideograph', '猫犬', ['ç', 'Į', '«</w>', 'ç', 'Ĭ', '¬</w>']],
    // special tokens pass through whole
    ['special token in text', 'a <|endoftext|> cat', ['a</w>', '<|endoftext|>', 'cat</w>']],
    // split before cleaning/regex, as transformers' added-token trie does: "<" is its own word
    ['special token after punctuation', '<<|startoftext|>', ['<</w>', '<|startoftext|>']],
    ['empty prompt', '', []],
    ['only spaces', '   \n ', []],
  ];
  it.each(cases)('%s', (_name, text, expected) => {
    expect(tok.tokenize(text)).toEqual(expected);
  });

  it('cleanText collapses whitespace, strips and lower-cases', () => {
    expect(cleanText('  Hello\u00a0\u00a0 WORLD\r\n')).toBe('hello world');
    expect(cleanText('a\u0000b\u0007c')).toBe('abc');
  });
});

describe('ClipTokenizer.encode', () => {
  const pad = (ids: number[], padId: number) => [...ids, ...new Array(77 - ids.length).fill(padId)];

  it('BOS + ids + EOS, padded with EOS for CLIP v1', () => {
    const { ids, length } = tok.encode('A red cat!!!');
    expect(ids).toBeInstanceOf(Int32Array);
    expect(length).toBe(6);
    expect([...ids]).toEqual(pad([BOS, id('a</w>'), id('red</w>'), id('cat</w>'), id('!!!</w>'), EOS], EOS));
  });

  it('real CLIP numbers for plain bytes', () => {
    // "a" -> a</w> = 320 and "!" -> !</w> = 256, the ids openai/clip-vit-large-patch14 gives them
    expect([...tok.encode('a !').ids.slice(1, 3)]).toEqual([320, 256]);
  });

  it('unknown tokens map to the unk token (<|endoftext|>)', () => {
    // "xy" -> [x, y</w>] -> merge 9 -> "xy</w>", which the vocab lacks
    expect(tok.tokenize('xy')).toEqual(['xy</w>']);
    expect([...tok.encode('xy').ids.slice(0, 3)]).toEqual([BOS, EOS, EOS]);
    expect(tok.encode('xy').length).toBe(3);
  });

  it('empty prompt is BOS EOS', () => {
    const { ids, length } = tok.encode('');
    expect(length).toBe(2);
    expect([...ids]).toEqual(pad([BOS, EOS], EOS));
  });

  it('exactly 75 tokens fit; 76 and more are truncated keeping EOS last', () => {
    const fit = tok.encode(Array(75).fill('a').join(' '));
    expect(fit.length).toBe(77);
    expect(fit.ids[75]).toBe(id('a</w>'));
    expect(fit.ids[76]).toBe(EOS);

    const over = tok.encode(Array(200).fill('cat').join(' ') + ' rex');
    expect(over.length).toBe(77);
    expect(over.ids.length).toBe(77);
    expect(over.ids[0]).toBe(BOS);
    expect([...over.ids.slice(1, 76)].every((v) => v === id('cat</w>'))).toBe(true);
    expect(over.ids[76]).toBe(EOS);
  });

  it('pads with "!" (id 0) when the config says so (SD 2.x / SDXL tokenizer_2)', async () => {
    const p = await writeFolder('sd2', {
      'vocab.json': VOCAB,
      'merges.txt': mergesTxt,
      'tokenizer_config.json': { ...v1Config, pad_token: '!' },
      'special_tokens_map.json': { bos_token: '<|startoftext|>', eos_token: '<|endoftext|>', pad_token: '!', unk_token: '<|endoftext|>' },
    });
    const t2 = await ClipTokenizer.fromFolder(p);
    expect(t2.padId).toBe(0);
    const { ids, length } = t2.encode('a red cat');
    expect(length).toBe(5);
    expect([...ids]).toEqual(pad([BOS, id('a</w>'), id('red</w>'), id('cat</w>'), EOS], 0));
    // "!" in the prompt stays punctuation (open_clip behaviour; see the header of clip.ts)
    expect(t2.tokenize('cat!')).toEqual(['cat</w>', '!</w>']);
  });

  it('pad_token as an AddedToken object, max length from special_tokens_map/config', async () => {
    const p = await writeFolder('obj', {
      'vocab.json': VOCAB,
      'merges.txt': mergesTxt,
      'tokenizer_config.json': { model_max_length: 8, pad_token: { content: '!', lstrip: false } },
    });
    const t = await ClipTokenizer.fromFolder(p);
    expect(t.maxLength).toBe(8);
    expect(t.padId).toBe(0);
    expect(t.bosId).toBe(BOS);
    expect(t.eosId).toBe(EOS);
    const { ids, length } = t.encode('a a a a a a a a a');
    expect(length).toBe(8);
    expect([...ids]).toEqual([BOS, ...Array(6).fill(id('a</w>')), EOS]);
    expect([...t.encode('cat').ids]).toEqual([BOS, id('cat</w>'), EOS, 0, 0, 0, 0, 0]);
  });

  it('defaults: max length 77, pad = eos, when there is no config at all', async () => {
    const p = await writeFolder('bare', { 'vocab.json': VOCAB, 'merges.txt': mergesTxt });
    const t = await ClipTokenizer.fromFolder(p);
    expect(t.maxLength).toBe(77);
    expect(t.padId).toBe(EOS);
    expect(t.vocabSize).toBe(Object.keys(VOCAB).length);
  });

  it('a huge model_max_length ("no limit") falls back to 77', async () => {
    const p = await writeFolder('huge', {
      'vocab.json': VOCAB,
      'merges.txt': mergesTxt,
      'tokenizer_config.json': { model_max_length: 1e30 },
    });
    expect((await ClipTokenizer.fromFolder(p)).maxLength).toBe(77);
  });
});

describe('tokenizer.json gives the same ids as vocab.json + merges.txt', () => {
  const texts = ['A red cat!!!', "don't rex, aa aaa 1234 é É 🙂 猫", 'xy <|endoftext|> red', Array(90).fill('cat').join(' ')];
  const tokenizerJson = (merges: unknown) => ({
    version: '1.0',
    added_tokens: [
      { id: BOS, content: '<|startoftext|>', special: true, lstrip: false, rstrip: false, normalized: true },
      { id: EOS, content: '<|endoftext|>', special: true, lstrip: false, rstrip: false, normalized: true },
    ],
    model: { type: 'BPE', vocab: VOCAB, merges, unk_token: '<|endoftext|>', end_of_word_suffix: '</w>' },
  });
  it.each([
    ['merges as "a b" strings', MERGES.map(([a, b]) => `${a} ${b}`)],
    ['merges as [a, b] pairs', MERGES],
  ])('%s', async (name, merges) => {
    const p = await writeFolder(`tj-${name.replace(/\W+/g, '-')}`, {
      'tokenizer.json': tokenizerJson(merges),
      'tokenizer_config.json': v1Config,
    });
    const tj = await ClipTokenizer.fromFolder(p);
    for (const t of texts) expect([...tj.encode(t).ids]).toEqual([...tok.encode(t).ids]);
    expect(tj.vocabSize).toBe(tok.vocabSize);
  });

  it('a folder without a tokenizer is a clear error', async () => {
    const p = await writeFolder('empty', { 'tokenizer_config.json': v1Config });
    await expect(ClipTokenizer.fromFolder(p)).rejects.toThrow(/no tokenizer found/);
  });
});

describe('decode', () => {
  it('round-trips words, dropping special tokens and cleaning spaces before punctuation', () => {
    expect(tok.decode(tok.encode('A red cat, 12!!! é 🙂').ids)).toBe('a red cat, 1 2!!! é 🙂');
  });
  it('keeps special tokens when asked', () => {
    expect(tok.decode(tok.encode('red').ids.slice(0, 3), { skipSpecialTokens: false })).toBe('<|startoftext|> red <|endoftext|>');
  });
});

// --- Golden table from the project's Python reference encoder (training/bpe.py) ----------------------
// test/fixtures/tokenizer-golden.json holds texts and the ids bpe.py's encode() gives for them with the
// tiny-sd and tiny-sdxl (tokenizer_2, pad "!") fixture tokenizers; its "command" field remakes it.
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const goldenPath = join(repoRoot, 'test/fixtures/tokenizer-golden.json');
describe.runIf(existsSync(goldenPath))('golden table from training/bpe.py', async () => {
  const golden = JSON.parse(await readFile(goldenPath, 'utf8')) as {
    texts: string[];
    tables: Array<{ tokenizer: string; pad_id: number | null; ids: number[][] }>;
  };
  it('covers enough cases', () => {
    expect(golden.texts.length).toBeGreaterThanOrEqual(30);
    expect(golden.tables.length).toBe(2);
  });
  describe.each(golden.tables.map((t) => [t.tokenizer, t] as const))('%s', (_name, table) => {
    it('our ids equal the Python reference encoder', async () => {
      const t = await ClipTokenizer.fromFolder(join(repoRoot, table.tokenizer));
      if (table.pad_id !== null) expect(t.padId).toBe(table.pad_id);
      expect(table.ids.length).toBe(golden.texts.length);
      golden.texts.forEach((text, i) => {
        expect({ text, ids: [...t.encode(text).ids] }).toEqual({ text, ids: table.ids[i] });
      });
    });
  });
});

// The decision behind the parity pack's known difference `sdxl-prompt-with-bang` (docs/parity.md): on SDXL's second
// tokenizer (pad "!"), transformers turns a typed "!" into the pad id 0; open_clip, which those encoders were trained
// with, keeps it as the punctuation token "!</w>" (256 in CLIP's vocabulary). Easel follows open_clip.
describe('SDXL tokenizer_2 of the parity pack: "!" in a prompt', () => {
  it('is "!</w>" (256), not the pad id 0, and padding is still 0', async () => {
    const t = await ClipTokenizer.fromFolder(join(import.meta.dirname, '..', 'fixtures', 'parity', 'pipelines', 'sdxl', 'tokenizer_2'));
    expect(t.padId).toBe(0);
    const { ids, length } = t.encode('a red circle!');
    expect(t.tokenize('a red circle!').at(-1)).toBe('!</w>');
    expect(ids[length - 2]).toBe(256);
    expect(ids[length - 1]).toBe(t.eosId);
    expect([...ids.slice(length)].every((v) => v === 0)).toBe(true);
  });
});
