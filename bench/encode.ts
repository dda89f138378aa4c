// bench/encode: what resizing and encoding cost per format and setting, on images the default model generates, set
// against a medium request's generation time measured in the same run (goal: resize + encode <= 10% of the request).
// Rerun: npx tsx bench/encode.ts [--model models/easel-shapes] [--quality medium] [--runs 3] [--threads N]
// Tables: resize kernels (ms per output size; PSNR and max abs diff against lanczos3), encoder settings at 1024x1024
// (encode only, from the resized pixels: ms, bytes, PSNR against those pixels), then src/imaging/encode.ts's
// defaults against the encoder before issue 16, end to end at every size. Times are medians over every image and
// run; "% req" is a time's share of a generation plus that time, in the last table each image's generated again just
// before it is encoded, so that both see the same load. Run it on an otherwise idle machine: generation uses every
// core and encoding one, so other work on the machine makes encoding look cheaper than it is.
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { loadPipeline, type RgbaImage, type SchedulerName } from '../src/engine/index.js';
import { planSize, presetFor } from '../src/engine/plan.js';
import {
  DEFAULT_ENCODE_SETTINGS,
  type EncodeOptions,
  type EncodeSettings,
  encodeImage,
  type OutputFormat,
  RESIZE_KERNELS,
  resizedPipeline,
  withFormat,
} from '../src/imaging/encode.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/easel-shapes' },
    quality: { type: 'string', default: 'medium' },
    runs: { type: 'string', default: '3' },
    threads: { type: 'string' },
  },
});
const RUNS = Number(values.runs);
// Three opaque scenes and a transparent one (png and webp keep its alpha).
const PROMPTS = [
  'two pink hearts',
  'a red circle on a blue background',
  'a gradient from blue to pink',
  'two pink circles and a small gray ring at the bottom, transparent background',
];
const SIZES: Array<[number, number]> = [
  [1024, 1024],
  [1536, 1024],
  [1024, 1536],
];

// The libvips cache would answer repeated identical operations from memory; the server never repeats one.
sharp.cache(false);

/** src/imaging/encode.ts as it was before issue 16 (commit 34ff085), for the before/after table. */
function encodeBefore(img: RgbaImage, opts: EncodeOptions): Promise<Buffer> {
  let s = sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), {
    raw: { width: img.width, height: img.height, channels: 4 },
  });
  if (opts.width && opts.height) s = s.resize(opts.width, opts.height, { fit: 'fill', kernel: 'lanczos3' });
  if (!(opts.keepAlpha === true && opts.format !== 'jpeg')) s = s.flatten({ background: { r: 255, g: 255, b: 255 } });
  const q = opts.compression ?? 100;
  if (opts.format === 'png') return s.png({ compressionLevel: 6 }).toBuffer();
  if (opts.format === 'jpeg') return s.jpeg({ quality: q, mozjpeg: false }).toBuffer();
  return s.webp(q >= 100 ? { lossless: true } : { quality: q, alphaQuality: q }).toBuffer();
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const share = (ms: number, genMs: number) => `${((100 * ms) / (genMs + ms)).toFixed(1)}%`;

/** One warm-up call (whose result is returned) and RUNS timed calls; the times are appended to `times`. */
async function timed<T>(times: number[], f: () => Promise<T>): Promise<T> {
  const out = await f();
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await f();
    times.push(performance.now() - t);
  }
  return out;
}

function table(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(line(header));
  for (const r of rows) console.log(line(r));
  console.log();
}

interface Raw {
  data: Buffer;
  info: sharp.OutputInfo;
}
const raw = (s: sharp.Sharp): Promise<Raw> => s.raw().toBuffer({ resolveWithObject: true });
const fromRaw = ({ data, info }: Raw) => sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } });
const rgba = async (s: sharp.Sharp) => s.ensureAlpha().raw().toBuffer();

/**
 * PSNR in dB (Infinity when identical) and the max abs diff of two same-sized RGBA buffers, on premultiplied colour
 * plus alpha: what a fully transparent pixel hides (encoders may change it) does not count.
 */
function compare(a: Uint8Array, b: Uint8Array): { psnr: number; maxDiff: number } {
  let se = 0;
  let maxDiff = 0;
  const add = (d: number) => {
    se += d * d;
    if (Math.abs(d) > maxDiff) maxDiff = Math.abs(d);
  };
  for (let i = 0; i < a.length; i += 4) {
    for (let c = 0; c < 3; c++) add(Math.round((a[i + c] * a[i + 3]) / 255) - Math.round((b[i + c] * b[i + 3]) / 255));
    add(a[i + 3] - b[i + 3]);
  }
  const mse = se / a.length;
  return { psnr: mse === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10((255 * 255) / mse), maxDiff };
}
const dB = (psnr: number) => (Number.isFinite(psnr) ? `${psnr.toFixed(1)} dB` : 'lossless');

// --- generation: the model's preset, n = 1, at the native size each requested size plans to ---
const pipe = await loadPipeline(values.model!, { threads: values.threads ? Number(values.threads) : undefined });
const preset = presetFor(values.quality!, pipe.folder.extras.quality_presets);

interface SizeSample {
  name: string;
  width: number;
  height: number;
  images: RgbaImage[];
  genTimes: number[];
}

function requestFor(s: SizeSample, prompt: number) {
  const plan = planSize(s.width, s.height, pipe.capabilities);
  return {
    prompt: PROMPTS[prompt],
    width: plan.genWidth,
    height: plan.genHeight,
    numImages: 1,
    numInferenceSteps: preset.steps,
    guidanceScale: preset.guidance_scale,
    ...(preset.guidance_interval ? { guidanceInterval: preset.guidance_interval } : {}),
    scheduler: preset.scheduler as SchedulerName | undefined,
    seed: prompt + 1,
  };
}

const samples: SizeSample[] = [];
for (const [width, height] of SIZES) {
  const s: SizeSample = { name: `${width}x${height}`, width, height, images: [], genTimes: [] };
  for (let p = 0; p < PROMPTS.length; p++) s.images.push((await timed(s.genTimes, () => pipe.generate(requestFor(s, p)))).images[0]);
  samples.push(s);
}
const genMs = (s: SizeSample) => median(s.genTimes);
console.log(
  `model ${values.model}  quality ${values.quality} (${preset.steps} steps)  images ${PROMPTS.length} per size  runs ${RUNS}  ` +
    `sharp ${sharp.versions.sharp}  libvips ${sharp.versions.vips}  libvips threads ${sharp.concurrency()}`,
);

// --- resize kernels: native size → requested size, to raw pixels, the way encodeImage prepares png/webp ---
const keepAlphaAt = (s: SizeSample) => ({ format: 'png' as const, keepAlpha: true, width: s.width, height: s.height });
const reference = new Map<SizeSample, Buffer[]>();
for (const s of samples) {
  const settings = { ...DEFAULT_ENCODE_SETTINGS, resizeKernel: 'lanczos3' as const };
  reference.set(s, await Promise.all(s.images.map((img) => rgba(resizedPipeline(img, keepAlphaAt(s), settings)))));
}
const resizeRows: string[][] = [];
for (const resizeKernel of RESIZE_KERNELS) {
  const settings = { ...DEFAULT_ENCODE_SETTINGS, resizeKernel };
  const cells: string[] = [];
  const psnrs: number[] = [];
  let maxDiff = 0;
  for (const s of samples) {
    const times: number[] = [];
    for (const [i, img] of s.images.entries()) {
      const out = await timed(times, () => raw(resizedPipeline(img, keepAlphaAt(s), settings)));
      const c = compare(await rgba(fromRaw(out)), reference.get(s)![i]);
      psnrs.push(c.psnr);
      maxDiff = Math.max(maxDiff, c.maxDiff);
    }
    cells.push(`${median(times).toFixed(1)} (${share(median(times), genMs(s))})`);
  }
  resizeRows.push([resizeKernel, ...cells, dB(Math.min(...psnrs)), String(maxDiff)]);
}
console.log(
  `generate ms (median): ${samples.map((s) => `${s.name} ${genMs(s).toFixed(0)} (at ${s.images[0].width}x${s.images[0].height})`).join('  ')}\n`,
);
console.log('resize to raw pixels (opaque images drop alpha first): ms (% req)');
table(['kernel', ...samples.map((s) => s.name), 'min PSNR vs lanczos3', 'max abs diff'], resizeRows);

// --- encoder settings at 1024x1024, from the pixels the default kernel gives ---
interface Candidate {
  name: string;
  format: OutputFormat;
  apply(s: sharp.Sharp): sharp.Sharp;
}

const patched = (format: OutputFormat, quality: number, patch: Partial<EncodeSettings>): Candidate['apply'] => {
  const settings = { ...DEFAULT_ENCODE_SETTINGS, ...patch };
  return (s) => withFormat(s, format, quality, settings);
};
const webp = (patch: Partial<EncodeSettings['webp']>) => ({ webp: { ...DEFAULT_ENCODE_SETTINGS.webp, ...patch } });

function candidates(): Candidate[] {
  const list: Candidate[] = [];
  const add = (name: string, format: OutputFormat, apply: Candidate['apply']) => list.push({ name, format, apply });
  for (const compressionLevel of [0, 1, 2, 3, 4, 5, 6, 9]) {
    for (const adaptiveFiltering of [false, true]) {
      const name = `png level ${compressionLevel}${adaptiveFiltering ? ' adaptive' : ''}`;
      add(name, 'png', patched('png', 100, { png: { compressionLevel, adaptiveFiltering } }));
    }
  }
  // Palette PNGs are quantised (lossy), shown for comparison only: Easel's PNGs stay lossless.
  for (const effort of [1, 7]) add(`png palette effort ${effort}`, 'png', (s) => s.png({ palette: true, effort }));
  for (const losslessEffort of [0, 1, 2, 3, 4, 5, 6]) {
    add(`webp lossless effort ${losslessEffort} q80`, 'webp', patched('webp', 100, webp({ losslessEffort, losslessQuality: 80 })));
  }
  // For lossless output libwebp's `quality` is effort too; at method 0 it is most of the time.
  for (const losslessQuality of [1, 25, 50, 100]) {
    add(`webp lossless effort 0 q${losslessQuality}`, 'webp', patched('webp', 100, webp({ losslessEffort: 0, losslessQuality })));
  }
  for (const lossyEffort of [0, 1, 2, 3, 4, 5, 6])
    add(`webp q50 effort ${lossyEffort}`, 'webp', patched('webp', 50, webp({ lossyEffort })));
  for (const quality of [100, 50]) {
    for (const mozjpeg of [false, true]) {
      for (const chromaSubsampling of ['4:2:0', '4:4:4'] as const) {
        const name = `jpeg q${quality} ${mozjpeg ? 'mozjpeg' : 'libjpeg'} ${chromaSubsampling}`;
        add(name, 'jpeg', patched('jpeg', quality, { jpeg: { mozjpeg, chromaSubsampling } }));
      }
    }
  }
  return list;
}

const square = samples[0];
const resizedFor = async (format: OutputFormat) =>
  Promise.all(square.images.map((img) => raw(resizedPipeline(img, { ...keepAlphaAt(square), format }))));
const upscaled = { png: await resizedFor('png'), webp: await resizedFor('webp'), jpeg: await resizedFor('jpeg') };
const encodeRows: string[][] = [];
for (const c of candidates()) {
  const times: number[] = [];
  const bytes: number[] = [];
  const psnrs: number[] = [];
  for (const px of upscaled[c.format]) {
    const out = await timed(times, () => c.apply(fromRaw(px)).toBuffer());
    bytes.push(out.length);
    psnrs.push(compare(await rgba(sharp(out)), await rgba(fromRaw(px))).psnr);
  }
  const ms = median(times);
  encodeRows.push([c.name, ms.toFixed(1), share(ms, genMs(square)), (mean(bytes) / 1024).toFixed(1), dB(Math.min(...psnrs))]);
}
console.log(`encode only at ${square.name}, from the resized pixels`);
table(['setting', 'ms', '% req', 'KiB (mean)', 'min PSNR'], encodeRows);

// --- the defaults against the encoder before issue 16, end to end (resize + encode) ---
const CASES: Array<{ format: OutputFormat; compression: number }> = [
  { format: 'png', compression: 100 },
  { format: 'jpeg', compression: 100 },
  { format: 'jpeg', compression: 50 },
  { format: 'webp', compression: 100 },
  { format: 'webp', compression: 50 },
];
/** Per image: the generation just before its encodes, and the median encode time and the bytes of each encoder. */
interface Paired {
  genMs: number;
  before: { ms: number; bytes: number };
  after: { ms: number; bytes: number };
}

async function encodeTimed(f: () => Promise<Buffer>): Promise<{ ms: number; bytes: number }> {
  const times: number[] = [];
  const out = await timed(times, f);
  return { ms: median(times), bytes: out.length };
}

const rows: string[][] = [];
let worst = 0;
for (const s of samples) {
  for (const { format, compression } of CASES) {
    const paired: Paired[] = [];
    for (const [p, img] of s.images.entries()) {
      const opts = { format, compression, keepAlpha: format !== 'jpeg', width: s.width, height: s.height };
      const t = performance.now();
      await pipe.generate(requestFor(s, p));
      const gen = performance.now() - t;
      paired.push({
        genMs: gen,
        before: await encodeTimed(() => encodeBefore(img, opts)),
        after: await encodeTimed(() => encodeImage(img, opts)),
      });
    }
    // Each image's encode against the generation just before it, so that both ran under the same load.
    const pct = (which: 'before' | 'after') => mean(paired.map((x) => x[which].ms / (x.genMs + x[which].ms)));
    worst = Math.max(worst, pct('after'));
    const cells = (which: 'before' | 'after') => [
      median(paired.map((x) => x[which].ms)).toFixed(1),
      `${(100 * pct(which)).toFixed(1)}%`,
      (mean(paired.map((x) => x[which].bytes)) / 1024).toFixed(1),
    ];
    rows.push([`${s.name} ${format} ${compression}`, median(paired.map((x) => x.genMs)).toFixed(0), ...cells('before'), ...cells('after')]);
  }
}
await pipe.dispose();
console.log('resize + encode: before issue 16 (lanczos3, png level 6, webp effort 4, RGBA kept when opaque), against');
console.log(`the defaults ${JSON.stringify(DEFAULT_ENCODE_SETTINGS)}`);
table(['request', 'generate ms', 'before ms', '% req', 'KiB', 'default ms', '% req', 'KiB'], rows);
console.log(`worst share of a request with the defaults: ${(100 * worst).toFixed(1)}%  (goal <= 10%)`);
