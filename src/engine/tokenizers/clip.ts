// CLIP's byte-level BPE tokenizer: turns a prompt into the fixed-length id rows the text encoders read.
// Mirrors transformers' slow CLIPTokenizer (models/clip/tokenization_clip.py) on its no-ftfy path.
//
// Behaviour, step by step (references are to transformers' tokenization_clip.py / tokenization_utils.py):
// 1. Split the raw text on special tokens (bos/eos/unk and added tokens), as PreTrainedTokenizer.tokenize
//    does with its trie; special tokens pass through whole.
// 2. Each other chunk is cleaned like BasicTokenizer(strip_accents=False, do_split_on_punc=False), which
//    CLIPTokenizer uses when ftfy is not installed: drop NUL, U+FFFD and category-C characters, turn
//    whitespace into spaces, put spaces around CJK ideographs, NFC-normalise, split on whitespace,
//    lower-case each word, join with single spaces. (ftfy.fix_text and html.unescape are not applied.)
// 3. Pre-tokenize with CLIP's regex, map UTF-8 bytes through GPT-2's bytes_to_unicode table, mark the
//    last symbol of each word with `</w>`, merge pairs by rank (CLIPTokenizer.bpe), look ids up
//    (unknown -> unk token, `<|endoftext|>` for CLIP).
// 4. encode(): BOS + ids + EOS, truncated to model_max_length with EOS kept last, padded with pad_token.
//
// One deliberate difference: transformers registers *every* special token, pad included, as an added
// token, so with SD 2.x / SDXL `pad_token: "!"` each "!" in a prompt becomes id 0 instead of going through
// BPE (diffusers issue #4153). Those text encoders were trained with open_clip, which has no such split,
// so Easel only splits on tokens that are not ordinary vocabulary symbols; "!" stays punctuation.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const CLIP_BOS = '<|startoftext|>';
export const CLIP_EOS = '<|endoftext|>';
const END_OF_WORD = '</w>';
const DEFAULT_MAX_LENGTH = 77;
/** transformers reads at most 49152 - 256 - 2 merges from merges.txt (CLIPTokenizer.__init__). */
const MAX_MERGES_TXT = 49152 - 256 - 2;
/** Bound on the per-word BPE cache so arbitrary prompts cannot grow memory without limit. */
const CACHE_LIMIT = 20_000;

/** CLIP's pre-tokenizer pattern (tokenization_clip.py `self.pat`), case-insensitive. */
const PRETOKENIZE = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+/giu;
const IS_OTHER = /^\p{C}$/u; // Cc, Cf, Cs, Co, Cn: BasicTokenizer's _is_control (minus \t \n \r)
const IS_SPACE_SEPARATOR = /^\p{Zs}$/u; // _is_whitespace: " ", \t, \n, \r or category Zs

/**
 * GPT-2's reversible byte -> printable character table (openai/gpt-2 encoder.py `bytes_to_unicode`, also
 * in transformers' tokenization_clip.py): printable Latin-1 bytes map to themselves, the other 68 bytes
 * to U+0100 + n in byte order.
 */
export function bytesToUnicode(): string[] {
  const table: string[] = new Array(256);
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let extra = 0;
  for (let b = 0; b < 256; b++) table[b] = printable(b) ? String.fromCharCode(b) : String.fromCharCode(256 + extra++);
  return table;
}

const BYTE_ENCODER = bytesToUnicode();
const BYTE_DECODER = new Map<string, number>(BYTE_ENCODER.map((c, b) => [c, b]));
const utf8 = new TextEncoder();

/** BasicTokenizer._is_chinese_char: the CJK Unified Ideographs blocks (not Hangul, Hiragana or Katakana). */
function isCjk(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/**
 * The text cleaning CLIPTokenizer applies without ftfy: BasicTokenizer(strip_accents=False,
 * do_split_on_punc=False).tokenize joined by spaces (transformers models/clip/tokenization_clip.py).
 */
export function cleanText(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp === 0 || cp === 0xfffd) continue;
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || IS_SPACE_SEPARATOR.test(ch)) {
      out += ' ';
    } else if (IS_OTHER.test(ch)) {
    } else if (isCjk(cp)) {
      out += ` ${ch} `;
    } else {
      out += ch;
    }
  }
  // Python's str.split() also breaks on U+2028/U+2029, which survive the cleaning above; JS \s agrees.
  return out
    .normalize('NFC')
    .split(/\s+/u)
    .filter((w) => w.length > 0)
    .map((w) => w.toLowerCase())
    .join(' ');
}

/** What a tokenizer is made of, independent of the files it came from. */
export interface ClipTokenizerSpec {
  vocab: Map<string, number> | Record<string, number>;
  /** Merges in rank order. */
  merges: ReadonlyArray<readonly [string, string]>;
  maxLength?: number;
  bosToken?: string;
  eosToken?: string;
  /** Defaults to the eos token (CLIP v1); SD 2.x / SDXL text_encoder_2 tokenizers use "!". */
  padToken?: string;
  /** Defaults to `<|endoftext|>` as in CLIPTokenizer. */
  unkToken?: string;
  /** Extra tokens that are never split (tokenizer.json added_tokens, tokenizer_config added_tokens_decoder). */
  addedTokens?: ReadonlyArray<{ content: string; id?: number }>;
  /** tokenizer_config `clean_up_tokenization_spaces`, used by decode(). */
  cleanUpTokenizationSpaces?: boolean;
}

export interface EncodedPrompt {
  /** maxLength ids: BOS, tokens, EOS, then padding. */
  ids: Int32Array;
  /** Number of ids before padding (BOS and EOS included). */
  length: number;
}

type Json = Record<string, unknown>;

/** A token in tokenizer configs is either a string or an AddedToken object `{content, ...}`. */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as Json).content === 'string') return (value as Json).content as string;
  return undefined;
}

async function readJsonIfExists(path: string): Promise<Json | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(text) as Json;
  } catch (err) {
    throw new Error(`${path}: invalid JSON (${(err as Error).message})`);
  }
}

/** merges.txt as CLIPTokenizer reads it: `#version` header line, then "a b" per line, at most 48894. */
export function parseMergesTxt(text: string): Array<[string, string]> {
  const lines = text.trim().split('\n');
  const start = lines.length > 0 && lines[0].startsWith('#') ? 1 : 0;
  const merges: Array<[string, string]> = [];
  for (const line of lines.slice(start, start + MAX_MERGES_TXT)) {
    const parts = line.trim().split(/\s+/);
    if (parts.length === 2) merges.push([parts[0], parts[1]]);
  }
  return merges;
}

function parseTokenizerJsonMerges(raw: unknown, path: string): Array<[string, string]> {
  if (!Array.isArray(raw)) throw new Error(`${path}: model.merges must be an array`);
  return raw.map((m, i) => {
    if (typeof m === 'string') {
      const parts = m.split(' ');
      if (parts.length !== 2) throw new Error(`${path}: merge #${i} "${m}" is not "a b"`);
      return [parts[0], parts[1]] as [string, string];
    }
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return [m[0], m[1]];
    throw new Error(`${path}: merge #${i} is neither "a b" nor [a, b]`);
  });
}

/** The sequence length a tokenizer config's model_max_length means for a CLIP text encoder. */
export function effectiveMaxLength(max: unknown): number {
  // model_max_length is int(1e30) when a tokenizer has "no limit"; CLIP's text encoders take 77.
  return typeof max === 'number' && Number.isInteger(max) && max >= 2 && max <= 1_000_000 ? max : DEFAULT_MAX_LENGTH;
}

export class ClipTokenizer {
  readonly maxLength: number;
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly unkId: number;
  readonly bosToken: string;
  readonly eosToken: string;
  readonly padToken: string;

  private readonly encoder: Map<string, number>;
  private readonly decoder: Map<number, string>;
  private readonly ranks: Map<string, number>;
  private readonly specialIds: Set<number>;
  /** Tokens split out of raw text before cleaning, longest first. */
  private readonly splitTokens: string[];
  private readonly cleanUpSpaces: boolean;
  private readonly cache = new Map<string, string[]>();

  constructor(spec: ClipTokenizerSpec) {
    this.encoder = spec.vocab instanceof Map ? new Map(spec.vocab) : new Map(Object.entries(spec.vocab));
    for (const t of spec.addedTokens ?? []) {
      if (t.id !== undefined && !this.encoder.has(t.content)) this.encoder.set(t.content, t.id);
    }
    this.decoder = new Map();
    for (const [tok, id] of this.encoder) this.decoder.set(id, tok);
    this.ranks = new Map();
    spec.merges.forEach(([a, b], rank) => {
      const key = `${a} ${b}`;
      if (!this.ranks.has(key)) this.ranks.set(key, rank);
    });

    this.maxLength = effectiveMaxLength(spec.maxLength);
    this.vocabSize = this.encoder.size;
    this.bosToken = spec.bosToken ?? CLIP_BOS;
    this.eosToken = spec.eosToken ?? CLIP_EOS;
    this.padToken = spec.padToken ?? this.eosToken;
    const unkToken = spec.unkToken ?? CLIP_EOS;
    const id = (token: string, role: string): number => {
      const v = this.encoder.get(token);
      if (v === undefined) throw new Error(`CLIP tokenizer: ${role} token ${JSON.stringify(token)} is not in the vocabulary`);
      return v;
    };
    this.bosId = id(this.bosToken, 'bos');
    this.eosId = id(this.eosToken, 'eos');
    this.padId = id(this.padToken, 'pad');
    this.unkId = this.encoder.get(unkToken) ?? this.eosId;
    this.specialIds = new Set([this.bosId, this.eosId, this.padId, this.unkId]);
    this.cleanUpSpaces = spec.cleanUpTokenizationSpaces ?? false;

    // Special tokens are kept whole by the BPE cache too (CLIPTokenizer.cache starts with them).
    const split = new Set<string>([this.bosToken, this.eosToken, unkToken]);
    for (const t of spec.addedTokens ?? []) split.add(t.content);
    // See the header: a pad token that is an ordinary symbol ("!") is not split out of prompts.
    if (this.padToken !== this.bosToken && this.padToken !== this.eosToken && this.padToken !== unkToken) split.delete(this.padToken);
    this.splitTokens = [...split].filter((t) => t.length > 0 && this.encoder.has(t)).sort((a, b) => b.length - a.length);
    for (const t of this.splitTokens) this.cache.set(t, [t]);
  }

  /**
   * Load `tokenizer/` of a diffusers folder: vocab.json + merges.txt (what CLIPTokenizer reads) when both
   * exist, else tokenizer.json; settings from tokenizer_config.json, overridden by special_tokens_map.json.
   */
  static async fromFolder(dir: string): Promise<ClipTokenizer> {
    const config = (await readJsonIfExists(join(dir, 'tokenizer_config.json'))) ?? {};
    const specialMap = (await readJsonIfExists(join(dir, 'special_tokens_map.json'))) ?? {};
    const setting = (key: string) => tokenContent(specialMap[key]) ?? tokenContent(config[key]);

    const vocabJson = await readJsonIfExists(join(dir, 'vocab.json'));
    let mergesTxt: string | undefined;
    try {
      mergesTxt = await readFile(join(dir, 'merges.txt'), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }

    let vocab: Record<string, number>;
    let merges: Array<[string, string]>;
    const addedTokens: Array<{ content: string; id?: number }> = [];
    let unkFromModel: string | undefined;
    if (vocabJson && mergesTxt !== undefined) {
      vocab = vocabJson as Record<string, number>;
      merges = parseMergesTxt(mergesTxt);
    } else {
      const path = join(dir, 'tokenizer.json');
      const tj = await readJsonIfExists(path);
      if (!tj) throw new Error(`${dir}: no tokenizer found (need vocab.json + merges.txt, or tokenizer.json)`);
      const model = tj.model as Json | undefined;
      if (!model || typeof model.vocab !== 'object' || model.vocab === null) throw new Error(`${path}: model.vocab missing`);
      if (model.type !== undefined && model.type !== 'BPE') throw new Error(`${path}: model.type is ${String(model.type)}, expected BPE`);
      vocab = model.vocab as Record<string, number>;
      merges = parseTokenizerJsonMerges(model.merges, path);
      if (typeof model.unk_token === 'string') unkFromModel = model.unk_token;
      for (const t of (tj.added_tokens as Json[] | undefined) ?? []) {
        if (typeof t.content === 'string') addedTokens.push({ content: t.content, id: typeof t.id === 'number' ? t.id : undefined });
      }
    }
    const decoderEntries = config.added_tokens_decoder;
    if (decoderEntries && typeof decoderEntries === 'object') {
      for (const [idStr, value] of Object.entries(decoderEntries as Json)) {
        const content = tokenContent(value);
        if (content !== undefined) addedTokens.push({ content, id: Number(idStr) });
      }
    }

    const maxLength = typeof config.model_max_length === 'number' ? config.model_max_length : undefined;
    return new ClipTokenizer({
      vocab,
      merges,
      maxLength,
      bosToken: setting('bos_token'),
      eosToken: setting('eos_token'),
      padToken: setting('pad_token'),
      unkToken: setting('unk_token') ?? unkFromModel,
      addedTokens,
      cleanUpTokenizationSpaces: config.clean_up_tokenization_spaces === true,
    });
  }

  /** CLIPTokenizer.bpe: merge the lowest-ranked adjacent pair (all its occurrences) until none is known. */
  private bpe(token: string): string[] {
    const cached = this.cache.get(token);
    if (cached) return cached;
    let word = [...token];
    word[word.length - 1] += END_OF_WORD;
    while (word.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const first = word[best];
      const second = word[best + 1];
      const merged: string[] = [];
      for (let i = 0; i < word.length; ) {
        if (i < word.length - 1 && word[i] === first && word[i + 1] === second) {
          merged.push(first + second);
          i += 2;
        } else {
          merged.push(word[i]);
          i += 1;
        }
      }
      word = merged;
    }
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(token, word);
    return word;
  }

  /** Raw text -> pieces: special tokens (kept whole) and the text between them. */
  private splitOnSpecial(text: string): Array<{ text: string; special: boolean }> {
    const out: Array<{ text: string; special: boolean }> = [];
    let start = 0;
    let i = 0;
    outer: while (i < text.length) {
      for (const t of this.splitTokens) {
        if (text.startsWith(t, i)) {
          if (i > start) out.push({ text: text.slice(start, i), special: false });
          out.push({ text: t, special: true });
          i += t.length;
          start = i;
          continue outer;
        }
      }
      i++;
    }
    if (start < text.length) out.push({ text: text.slice(start), special: false });
    return out;
  }

  /** BPE tokens of a prompt, without BOS/EOS (like CLIPTokenizer.tokenize). */
  tokenize(text: string): string[] {
    const tokens: string[] = [];
    for (const piece of this.splitOnSpecial(text)) {
      if (piece.special) {
        tokens.push(piece.text);
        continue;
      }
      for (const m of cleanText(piece.text).matchAll(PRETOKENIZE)) {
        let mapped = '';
        for (const b of utf8.encode(m[0])) mapped += BYTE_ENCODER[b];
        for (const t of this.bpe(mapped)) tokens.push(t);
      }
    }
    return tokens;
  }

  /** Token ids of a prompt without BOS/EOS, untruncated (for counting tokens). */
  tokenIds(text: string): number[] {
    return this.tokenize(text).map((t) => this.encoder.get(t) ?? this.unkId);
  }

  /** BOS + ids + EOS, truncated to maxLength (EOS kept last) and padded with the pad token. */
  encode(text: string): EncodedPrompt {
    const body = this.tokenIds(text).slice(0, this.maxLength - 2);
    const ids = new Int32Array(this.maxLength).fill(this.padId);
    ids[0] = this.bosId;
    ids.set(body, 1);
    ids[body.length + 1] = this.eosId;
    return { ids, length: body.length + 2 };
  }

  /**
   * Ids back to text, like PreTrainedTokenizer.decode: special ids (bos, eos, unk, pad) are dropped unless
   * skipSpecialTokens is false; `</w>` becomes a space; undecodable bytes become U+FFFD.
   */
  decode(ids: ArrayLike<number>, opts: { skipSpecialTokens?: boolean } = {}): string {
    const skip = opts.skipSpecialTokens ?? true;
    const parts: string[] = [];
    let run: string[] = [];
    const flush = () => {
      if (run.length === 0) return;
      const bytes: number[] = [];
      for (const ch of run.join('')) {
        const b = BYTE_DECODER.get(ch);
        if (b !== undefined) bytes.push(b);
      }
      parts.push(new TextDecoder('utf-8').decode(new Uint8Array(bytes)).replaceAll(END_OF_WORD, ' ').trim());
      run = [];
    };
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      const tok = this.decoder.get(id);
      if (tok === undefined) continue;
      if (this.specialIds.has(id) && (skip || this.splitTokens.includes(tok))) {
        if (skip) continue;
        flush();
        parts.push(tok);
        continue;
      }
      run.push(tok);
    }
    flush();
    let text = parts.filter((p) => p.length > 0).join(' ');
    if (this.cleanUpSpaces) {
      // PreTrainedTokenizerBase.clean_up_tokenization
      text = text
        .replaceAll(' .', '.')
        .replaceAll(' ?', '?')
        .replaceAll(' !', '!')
        .replaceAll(' ,', ',')
        .replaceAll(" ' ", "'")
        .replaceAll(" n't", "n't")
        .replaceAll(" 'm", "'m")
        .replaceAll(" 's", "'s")
        .replaceAll(" 've", "'ve")
        .replaceAll(" 're", "'re");
    }
    return text;
  }
}
