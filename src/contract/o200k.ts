// o200k_base token counting for `usage.input_tokens` in bounded time and memory: js-tiktoken's merge is quadratic
// on a long unspaced run (a valid 32000-char prompt blocked the server for minutes) and its rank Map costs ~146 MiB.
//
// Same tokens as js-tiktoken `new Tiktoken(o200k_base).encode(text, [], [])` (and so as OpenAI's tiktoken):
// - Pre-tokenizer: o200k_base's own regex (`pat_str` from js-tiktoken's rank file), each piece UTF-8 encoded as
//   TextEncoder does (lone surrogates become U+FFFD). Special-token text such as "<|endoftext|>" is plain text.
// - A piece that is itself a token is one token; otherwise the byte-pair merge of tiktoken (src/lib.rs
//   `byte_pair_merge`): repeatedly merge the adjacent pair whose concatenation has the lowest rank, the leftmost
//   among equal ranks, until no pair is a token. Here a heap keyed (rank, start byte) over a linked list of parts
//   does it in O(n log n) instead of rescanning every pair after each merge (O(n²)).
// - Ranks: js-tiktoken's `dist/ranks/o200k_base.cjs` (`module.exports = {pat_str, special_tokens, bpe_ranks}`, where
//   bpe_ranks is "name offset tok0 tok1 …", base64 byte strings whose rank is offset + index). Read as JSON and packed
//   into one Buffer of token bytes + an open-addressing hash table of ranks (typed arrays, ~5 MiB in all).

import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

interface RankFile {
  pat_str: string;
  bpe_ranks: string;
}

/** The packed rank table: token bytes by rank, and a hash from byte string to rank. */
interface Vocabulary {
  pattern: RegExp;
  bytes: Buffer;
  start: Uint32Array;
  length: Uint8Array;
  /** Open addressing, linear probing; each slot holds a rank or -1. */
  slots: Int32Array;
  maxTokenBytes: number;
}

let vocabulary: Vocabulary | undefined;
let building: Generator<void, Vocabulary> | undefined;
let warming: Promise<void> | undefined;

const TOKENS_PER_STEP = 4096;

function rankFilePath(): string {
  return createRequire(import.meta.url).resolve('js-tiktoken/ranks/o200k_base');
}

function parseRankFile(text: string, path: string): RankFile {
  const parsed: unknown = JSON.parse(text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1));
  const file = parsed as Partial<RankFile>;
  if (typeof file.pat_str !== 'string' || typeof file.bpe_ranks !== 'string') {
    throw new Error(`o200k_base: ${path} is not the expected {pat_str, bpe_ranks} rank file`);
  }
  return { pat_str: file.pat_str, bpe_ranks: file.bpe_ranks };
}

/** FNV-1a (32-bit) of bytes[from, to). */
function hashBytes(bytes: Uint8Array, from: number, to: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
}

/** The rank of the byte string bytes[from, to), or -1 if it is not a token. */
function rankOf(v: Vocabulary, bytes: Uint8Array, from: number, to: number): number {
  const size = to - from;
  if (size > v.maxTokenBytes) return -1;
  const mask = v.slots.length - 1;
  for (let slot = hashBytes(bytes, from, to) & mask; ; slot = (slot + 1) & mask) {
    const rank = v.slots[slot];
    if (rank < 0) return -1;
    if (v.length[rank] === size && sameBytes(v.bytes, v.start[rank], bytes, from, size)) return rank;
  }
}

function sameBytes(a: Uint8Array, aFrom: number, b: Uint8Array, bFrom: number, size: number): boolean {
  for (let i = 0; i < size; i++) if (a[aFrom + i] !== b[bFrom + i]) return false;
  return true;
}

/** Packs the rank file, yielding every TOKENS_PER_STEP tokens so an async caller can let other work run. */
function* pack(file: RankFile): Generator<void, Vocabulary> {
  const text = file.bpe_ranks;
  const capacity = countSpaces(text); // every token field follows a space
  let slotCount = 1;
  while (slotCount < capacity * 2) slotCount *= 2;
  const slots = new Int32Array(slotCount).fill(-1);
  const scratch = Buffer.allocUnsafe(Math.ceil((text.length * 3) / 4));
  let start = new Uint32Array(capacity);
  let length = new Uint8Array(capacity);
  let used = 0;
  let maxRank = -1;
  let packed = 0;
  for (const line of lines(text)) {
    let rank = line.offset;
    for (let from = line.tokensFrom; from < line.end; rank++) {
      const to = fieldEnd(text, from, line.end);
      const size = scratch.write(text.slice(from, to), used, 'base64');
      if (size > 255) throw new Error('o200k_base: a token longer than 255 bytes');
      if (rank >= start.length) [start, length] = [grow(start, rank), grow(length, rank)];
      start[rank] = used;
      length[rank] = size;
      insert(slots, scratch, used, size, rank, start, length);
      used += size;
      maxRank = Math.max(maxRank, rank);
      from = to + 1;
      if (++packed % TOKENS_PER_STEP === 0) yield;
    }
  }
  yield;
  const pattern = new RegExp(file.pat_str, 'gu');
  pattern.exec('compile'); // irregexp compiles a pattern on its first use: ~20 ms for these Unicode classes
  return {
    pattern,
    bytes: Buffer.from(scratch.subarray(0, used)),
    start: start.slice(0, maxRank + 1),
    length: length.slice(0, maxRank + 1),
    slots,
    maxTokenBytes: length.reduce((a, b) => Math.max(a, b), 0),
  };
}

interface RankLine {
  offset: number;
  /** Index of the first token field, and of the line's end. */
  tokensFrom: number;
  end: number;
}

/** The lines of bpe_ranks ("name offset tok0 tok1 …"), as positions in the text (no 200k-string split). */
function* lines(text: string): Generator<RankLine> {
  for (let from = 0; from < text.length; ) {
    let end = text.indexOf('\n', from);
    if (end < 0) end = text.length;
    const nameEnd = fieldEnd(text, from, end);
    const offsetEnd = fieldEnd(text, nameEnd + 1, end);
    if (offsetEnd < end) yield { offset: Number.parseInt(text.slice(nameEnd + 1, offsetEnd), 10), tokensFrom: offsetEnd + 1, end };
    from = end + 1;
  }
}

/** End of the space-separated field starting at `from`, at most `end`. */
function fieldEnd(text: string, from: number, end: number): number {
  const space = text.indexOf(' ', from);
  return space < 0 || space > end ? end : space;
}

function countSpaces(text: string): number {
  let spaces = 0;
  for (let i = text.indexOf(' '); i >= 0; i = text.indexOf(' ', i + 1)) spaces++;
  return spaces;
}

function grow<T extends Uint32Array | Uint8Array>(array: T, index: number): T {
  const bigger = new (array.constructor as new (size: number) => T)(Math.max(index + 1, array.length * 2));
  bigger.set(array);
  return bigger;
}

/** Inserts `rank`; a byte string listed twice keeps its last rank, as js-tiktoken's object of ranks does. */
function insert(
  slots: Int32Array,
  bytes: Uint8Array,
  from: number,
  size: number,
  rank: number,
  start: Uint32Array,
  length: Uint8Array,
): void {
  const mask = slots.length - 1;
  for (let slot = hashBytes(bytes, from, from + size) & mask; ; slot = (slot + 1) & mask) {
    const other = slots[slot];
    if (other < 0 || (length[other] === size && sameBytes(bytes, start[other], bytes, from, size))) {
      slots[slot] = rank;
      return;
    }
  }
}

function finish(steps: Generator<void, Vocabulary>): Vocabulary {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/** The packed vocabulary, built synchronously on first use unless warmTokenCounter() already did. */
function ready(): Vocabulary {
  if (!vocabulary) {
    const path = rankFilePath();
    vocabulary = finish(building ?? pack(parseRankFile(readFileSync(path, 'utf8'), path)));
    building = undefined;
  }
  return vocabulary;
}

/**
 * Builds the o200k_base table (~150 ms of work) in steps of a few ms, so the event loop keeps running meanwhile.
 * Idempotent; call it before reporting ready so the first request does not pay for it.
 */
export function warmTokenCounter(): Promise<void> {
  warming ??= warm().catch((error: unknown) => {
    warming = undefined;
    throw error;
  });
  return warming;
}

async function warm(): Promise<void> {
  const path = rankFilePath();
  const text = await readFile(path, 'utf8');
  if (vocabulary) return;
  building ??= pack(parseRankFile(text, path));
  while (!vocabulary && building) {
    const step = building.next();
    if (step.done) {
      vocabulary = step.value;
      building = undefined;
    } else {
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  // Compiles the hot paths before the first request does. V8 compiles a regex apart for one-byte and two-byte
  // strings, and to native code only once it has run, so each kind of text is counted a few times.
  for (let i = 0; i < 3; i++) for (const text of WARM_UP_TEXTS) countO200k(text);
}

/** Words, a contraction, digits, an unspaced run (merges), then the same with CJK and an emoji (two-byte). */
const WARM_UP_TEXTS = [`Warm-up: it's 2024, ${'x'.repeat(1000)}\n`, "Warm-up: it's 2024, 日本語のテキスト, 🎨\n"];

// Scratch space for one piece, reused across calls (counting is synchronous, so never shared).
let pieceBytes = new Uint8Array(1024);
let next = new Int32Array(1024);
let prev = new Int32Array(1024);
let pairRank = new Int32Array(1024);
let heap = new Float64Array(3072);

const POSITIONS = 2 ** 32;

function reserve(bytes: number): void {
  if (pieceBytes.length >= bytes) return;
  const size = 2 ** Math.ceil(Math.log2(bytes));
  pieceBytes = new Uint8Array(size);
  next = new Int32Array(size);
  prev = new Int32Array(size);
  pairRank = new Int32Array(size);
  heap = new Float64Array(size * 3);
}

function heapPush(size: number, key: number): number {
  let i = size;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (heap[parent] <= key) break;
    heap[i] = heap[parent];
    i = parent;
  }
  heap[i] = key;
  return size + 1;
}

/** Removes heap[0] from a heap of `size` keys (the caller has read it). */
function heapPop(size: number): number {
  const last = heap[size - 1];
  const n = size - 1;
  let i = 0;
  for (;;) {
    let child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && heap[child + 1] < heap[child]) child++;
    if (heap[child] >= last) break;
    heap[i] = heap[child];
    i = child;
  }
  if (n > 0) heap[i] = last;
  return n;
}

/**
 * tiktoken's byte-pair merge of pieceBytes[0, n): part i spans [i, next[i]); pairRank[i] is the rank of part i
 * joined with the part after it (-1: none). Returns how many parts remain; they are walked from 0 by next[].
 */
function mergeParts(v: Vocabulary, n: number): number {
  let heapSize = 0;
  for (let i = 0; i < n; i++) {
    next[i] = i + 1;
    prev[i] = i - 1;
    pairRank[i] = i + 1 < n ? rankOf(v, pieceBytes, i, i + 2) : -1;
    if (pairRank[i] >= 0) heapSize = heapPush(heapSize, pairRank[i] * POSITIONS + i);
  }
  let parts = n;
  while (heapSize > 0) {
    const key = heap[0];
    heapSize = heapPop(heapSize);
    const rank = Math.floor(key / POSITIONS);
    const i = key - rank * POSITIONS;
    if (pairRank[i] !== rank) continue; // stale: part i has grown (or was merged away) since this was pushed
    const merged = next[i];
    const after = next[merged];
    next[i] = after;
    if (after < n) prev[after] = i;
    pairRank[merged] = -1;
    parts--;
    pairRank[i] = after < n ? rankOf(v, pieceBytes, i, next[after]) : -1;
    if (pairRank[i] >= 0) heapSize = heapPush(heapSize, pairRank[i] * POSITIONS + i);
    const before = prev[i];
    if (before >= 0) {
      pairRank[before] = rankOf(v, pieceBytes, before, after);
      if (pairRank[before] >= 0) heapSize = heapPush(heapSize, pairRank[before] * POSITIONS + before);
    }
  }
  return parts;
}

const utf8 = new TextEncoder();

/** Calls `onPiece(byteCount)` for each pre-tokenized piece, its UTF-8 bytes in pieceBytes. */
function eachPiece(v: Vocabulary, text: string, onPiece: (size: number) => void): void {
  const pattern = v.pattern;
  pattern.lastIndex = 0;
  for (let match = pattern.exec(text); match !== null; match = pattern.exec(text)) {
    const piece = match[0];
    reserve(piece.length * 3);
    onPiece(utf8.encodeInto(piece, pieceBytes).written);
  }
}

/** Number of o200k_base tokens in `text` (special-token text counted as plain text). */
export function countO200k(text: string): number {
  const v = ready();
  let count = 0;
  eachPiece(v, text, (size) => {
    count += size === 1 || rankOf(v, pieceBytes, 0, size) >= 0 ? 1 : mergeParts(v, size);
  });
  return count;
}

/** o200k_base token ids of `text` (special-token text such as "<|endoftext|>" encoded as plain text). */
export function encodeO200k(text: string): number[] {
  const v = ready();
  const ids: number[] = [];
  eachPiece(v, text, (size) => {
    const whole = rankOf(v, pieceBytes, 0, size);
    if (whole >= 0) {
      ids.push(whole);
      return;
    }
    mergeParts(v, size);
    for (let i = 0; i < size; i = next[i]) ids.push(rankOf(v, pieceBytes, i, next[i]));
  });
  return ids;
}
