// imaging/encode.ts: encodes use the one default table (chosen by bench/encode.ts), every setting of config's
// images.encoding changes what comes out and reaches the worker, PNG and WebP 100 stay lossless, and alpha is dropped
// only where no pixel needs it.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import type { RgbaImage } from '../../src/engine/types.js';
import { DEFAULT_ENCODE_SETTINGS, type EncodeSettings, encodeImage, resizedPipeline } from '../../src/imaging/encode.js';
import { createEmbeddedServer } from '../../src/server/start.js';

/** A 64x48 scene like the default model's: an anti-aliased red disc on blue, or on a transparent background. */
function scene(transparent = false): RgbaImage {
  const width = 64;
  const height = 48;
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let inside = 0;
      for (let s = 0; s < 16; s++) inside += Math.hypot(x + ((s % 4) + 0.5) / 4 - 30, y + (Math.floor(s / 4) + 0.5) / 4 - 24) < 15 ? 1 : 0;
      const c = inside / 16;
      const i = (y * width + x) * 4;
      if (transparent) data.set([220, 30, 40, Math.round(255 * c)], i);
      else data.set([Math.round(220 * c + 20 * (1 - c)), Math.round(30 * c + 60 * (1 - c)), Math.round(40 * c + 200 * (1 - c)), 255], i);
    }
  }
  return { width, height, data };
}

const OUT = { width: 256, height: 192 };
const with_ = (patch: Partial<EncodeSettings>): EncodeSettings => ({ ...DEFAULT_ENCODE_SETTINGS, ...patch });
const pixels = (bytes: Buffer) => sharp(bytes).raw().toBuffer({ resolveWithObject: true });
/** The pixels encode starts from, at the output size: what a lossless format must give back exactly. */
const resized = (img: RgbaImage, settings = DEFAULT_ENCODE_SETTINGS) =>
  resizedPipeline(img, { format: 'png', keepAlpha: true, ...OUT }, settings)
    .raw()
    .toBuffer({ resolveWithObject: true });

describe('the default table', () => {
  it('is the one bench/encode.ts chose', () => {
    expect(DEFAULT_ENCODE_SETTINGS).toEqual({
      resizeKernel: 'linear',
      png: { compressionLevel: 3, adaptiveFiltering: false },
      jpeg: { mozjpeg: false, chromaSubsampling: '4:2:0' },
      webp: { lossyEffort: 1, losslessEffort: 0, losslessQuality: 1 },
    });
    expect(Object.isFrozen(DEFAULT_ENCODE_SETTINGS.webp)).toBe(true);
  });

  it('is what encodeImage uses when given no settings', async () => {
    const img = scene();
    const src = () => sharp(Buffer.from(img.data), { raw: { width: 64, height: 48, channels: 4 } }).flatten({ background: '#ffffff' });
    const up = () => src().resize(OUT.width, OUT.height, { fit: 'fill', kernel: 'linear' });
    const expected = {
      png: await up().png({ compressionLevel: 3, adaptiveFiltering: false }).toBuffer(),
      jpeg: await up().jpeg({ quality: 50, mozjpeg: false, chromaSubsampling: '4:2:0' }).toBuffer(),
      webp: await up().webp({ lossless: true, effort: 0, quality: 1 }).toBuffer(),
      webp50: await up().webp({ quality: 50, alphaQuality: 50, effort: 1 }).toBuffer(),
    };
    const got = {
      png: await encodeImage(img, { format: 'png', keepAlpha: true, ...OUT }),
      jpeg: await encodeImage(img, { format: 'jpeg', compression: 50, ...OUT }),
      webp: await encodeImage(img, { format: 'webp', compression: 100, keepAlpha: true, ...OUT }),
      webp50: await encodeImage(img, { format: 'webp', compression: 50, keepAlpha: true, ...OUT }),
    };
    for (const k of Object.keys(expected) as Array<keyof typeof expected>) expect(got[k].equals(expected[k]), k).toBe(true);
  });
});

describe('settings override the table', () => {
  it('webp lossless effort changes the bytes, never the pixels', async () => {
    const img = scene();
    const opts = { format: 'webp' as const, compression: 100, ...OUT };
    const fast = await encodeImage(img, opts);
    const slow = await encodeImage(
      img,
      opts,
      with_({ webp: { ...DEFAULT_ENCODE_SETTINGS.webp, losslessEffort: 6, losslessQuality: 100 } }),
    );
    expect(slow.equals(fast)).toBe(false);
    expect(slow.length).toBeLessThan(fast.length);
    const want = (await resized(img)).data;
    expect((await pixels(fast)).data.equals(want)).toBe(true);
    expect((await pixels(slow)).data.equals(want)).toBe(true);
  });

  it('png level, jpeg mozjpeg and subsampling, webp lossy effort and the resize kernel each change the output', async () => {
    const img = scene();
    const differs = async (opts: Parameters<typeof encodeImage>[1], patch: Partial<EncodeSettings>) =>
      !(await encodeImage(img, opts, with_(patch))).equals(await encodeImage(img, opts));
    const { png, jpeg, webp } = DEFAULT_ENCODE_SETTINGS;
    expect(await differs({ format: 'png', ...OUT }, { png: { ...png, compressionLevel: 9 } })).toBe(true);
    expect(await differs({ format: 'png', ...OUT }, { png: { ...png, adaptiveFiltering: true } })).toBe(true);
    expect(await differs({ format: 'jpeg', compression: 80, ...OUT }, { jpeg: { ...jpeg, mozjpeg: true } })).toBe(true);
    expect(await differs({ format: 'jpeg', compression: 80, ...OUT }, { jpeg: { ...jpeg, chromaSubsampling: '4:4:4' } })).toBe(true);
    expect(await differs({ format: 'webp', compression: 50, ...OUT }, { webp: { ...webp, lossyEffort: 6 } })).toBe(true);
    const nearest = with_({ resizeKernel: 'nearest' });
    const pngNearest = await encodeImage(img, { format: 'png', ...OUT }, nearest);
    expect((await pixels(pngNearest)).data.equals((await resized(img, nearest)).data)).toBe(true);
    expect((await resized(img, nearest)).data.equals((await resized(img)).data)).toBe(false);
  });
});

describe('alpha', () => {
  it('an opaque image is encoded without an alpha channel, with the same pixels', async () => {
    const img = scene();
    const out = await encodeImage(img, { format: 'png', keepAlpha: true, ...OUT });
    const { data, info } = await pixels(out);
    expect(info.channels).toBe(3);
    const kept = await sharp(Buffer.from(img.data), { raw: { width: 64, height: 48, channels: 4 } })
      .resize(OUT.width, OUT.height, { fit: 'fill', kernel: 'linear' })
      .removeAlpha()
      .raw()
      .toBuffer();
    expect(data.equals(kept)).toBe(true);
  });

  it('an image with transparent pixels keeps its alpha in png and lossless webp', async () => {
    const img = scene(true);
    const want = await resized(img);
    expect(want.info.channels).toBe(4);
    for (const format of ['png', 'webp'] as const) {
      const { data, info } = await pixels(await encodeImage(img, { format, compression: 100, keepAlpha: true, ...OUT }));
      expect(info.channels, format).toBe(4);
      for (let i = 3; i < data.length; i += 4) if (data[i] !== want.data[i]) throw new Error(`${format}: alpha differs at ${i}`);
    }
  });
});

describe('images.encoding reaches the worker', () => {
  const dir = mkdtempSync(join(tmpdir(), 'easel-encode-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');

  /** The bytes of one seeded webp (lossless) generation on a server with `encoding` in its config file. */
  async function generateWith(name: string, encoding: object): Promise<Buffer> {
    mkdirSync(join(dir, name));
    const file = join(dir, name, 'easel.json');
    writeFileSync(file, JSON.stringify({ images: { encoding } }));
    const config = loadConfig({ config: file, model: FIXTURE, port: 0, dataDir: join(dir, name, 'data') }, { EASEL_THREADS: '1' });
    const server = await createEmbeddedServer(config, { waitForWarmUp: true });
    try {
      const res = await server.app.inject({
        method: 'POST',
        url: '/v1/images/generations',
        headers: { 'content-type': 'application/json' },
        payload: { model: 'gpt-image-1', prompt: 'a red circle', size: '1024x1024', quality: 'low', output_format: 'webp', seed: 7 },
      });
      expect(res.statusCode, res.body).toBe(200);
      return Buffer.from(res.json().data[0].b64_json, 'base64');
    } finally {
      await server.close();
    }
  }

  // The fixture's pixels are noise, which lossless WebP at high efforts takes seconds over: effort 2 is enough.
  it('a webp effort of 2 gives other bytes than the default, and the same pixels', async () => {
    const byDefault = await generateWith('default', {});
    const effort2 = await generateWith('effort2', { webp: { losslessEffort: 2 } });
    expect(effort2.equals(byDefault)).toBe(false);
    expect((await pixels(effort2)).data.equals((await pixels(byDefault)).data)).toBe(true);
  });
});
