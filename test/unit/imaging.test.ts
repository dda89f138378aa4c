// imaging/: the format table every layer shares, and the one decode path for input images (real files made
// with sharp: sniffing, header checks before decoding, truncated data, masks, the decode budget).
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { describe, expect, it, vi } from 'vitest';
import {
  checkMask,
  DecodeBudget,
  decodeCost,
  decodeMaskWeights,
  decodeRgba,
  ImageInputError,
  type ImageInputReason,
  inspectImage,
  MAX_INPUT_PIXELS,
  peekSize,
  verifyDecodes,
} from '../../src/imaging/decode.js';
import {
  formatOfExtension,
  formatOfFilename,
  formatOfMime,
  IMAGE_EXTENSIONS,
  IMAGE_FORMATS,
  IMAGE_MIME_TYPES,
  isImageFormat,
  sniffImageFormat,
} from '../../src/imaging/formats.js';

const solid = (format: 'png' | 'jpeg' | 'webp', width = 8, height = 8) =>
  sharp({ create: { width, height, channels: 4, background: { r: 10, g: 200, b: 30, alpha: 1 } } })
    .toFormat(format)
    .toBuffer();

describe('image formats', () => {
  it('maps every format to its MIME type and stored extension and back', () => {
    expect(IMAGE_FORMATS).toEqual(['png', 'jpeg', 'webp']);
    expect(IMAGE_MIME_TYPES).toEqual({ png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' });
    // Stored files and image URLs end in .jpeg (OpenAI's output_format), never .jpg.
    expect(IMAGE_EXTENSIONS).toEqual({ png: 'png', jpeg: 'jpeg', webp: 'webp' });
    for (const f of IMAGE_FORMATS) {
      expect(formatOfMime(IMAGE_MIME_TYPES[f])).toBe(f);
      expect(formatOfExtension(IMAGE_EXTENSIONS[f])).toBe(f);
      expect(isImageFormat(f)).toBe(true);
    }
  });

  it('refuses what is not a canonical name', () => {
    expect(formatOfMime('image/gif')).toBeUndefined();
    expect(formatOfMime('IMAGE/PNG')).toBeUndefined();
    expect(formatOfMime('image/jpg')).toBeUndefined();
    expect(formatOfExtension('jpg')).toBeUndefined();
    expect(isImageFormat('gif')).toBe(false);
    expect(isImageFormat(undefined)).toBe(false);
  });

  it('reads formats from file names, jpg and upper case included', () => {
    expect(formatOfFilename('photo.JPG')).toBe('jpeg');
    expect(formatOfFilename('a.b.webp')).toBe('webp');
    expect(formatOfFilename('x.png')).toBe('png');
    expect(formatOfFilename('x.gif')).toBeUndefined();
    expect(formatOfFilename('png')).toBeUndefined();
  });

  it('sniffs the real format from the bytes', async () => {
    for (const f of IMAGE_FORMATS) expect(sniffImageFormat(await solid(f)), f).toBe(f);
    const gif = Buffer.from('GIF89a\x01\x00\x01\x00', 'latin1');
    expect(sniffImageFormat(gif)).toBeUndefined();
    expect(sniffImageFormat(new Uint8Array())).toBeUndefined();
    expect(sniffImageFormat(Buffer.from('RIFF\0\0\0\0WAVE', 'latin1'))).toBeUndefined();
    expect(sniffImageFormat((await solid('png')).subarray(0, 7))).toBeUndefined();
  });
});

function pngChunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A PNG whose header declares width x height (RGB) over a few bytes of data: a decompression bomb when large. */
function declaredPng(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([sig, pngChunk('IHDR', ihdr), pngChunk('IDAT', deflateSync(Buffer.alloc(64))), pngChunk('IEND', Buffer.alloc(0))]);
}

async function reasonOf(work: Promise<unknown>): Promise<ImageInputReason | 'resolved'> {
  return work.then(
    () => 'resolved',
    (err: unknown) => {
      expect(err).toBeInstanceOf(ImageInputError);
      return (err as ImageInputError).reason;
    },
  );
}

/** 8x4: left half opaque red, right half fully transparent. */
const halfTransparent = () => {
  const raw = Buffer.alloc(8 * 4 * 4);
  for (let i = 0; i < 32; i++) if (i % 8 < 4) raw.set([255, 0, 0, 255], i * 4);
  return sharp(raw, { raw: { width: 8, height: 4, channels: 4 } })
    .png()
    .toBuffer();
};

describe('inspecting input images (header only)', () => {
  it('reads format, size and alpha', async () => {
    expect(await inspectImage(await solid('webp', 12, 5))).toMatchObject({ format: 'webp', width: 12, height: 5 });
    expect(await inspectImage(await halfTransparent())).toMatchObject({ format: 'png', width: 8, height: 4, hasAlpha: true });
    expect(await inspectImage(await solid('jpeg'))).toMatchObject({ format: 'jpeg', hasAlpha: false });
    expect(await peekSize(await solid('jpeg', 3, 7))).toEqual({ width: 3, height: 7 });
    expect(await peekSize(Buffer.from('nope'))).toBeUndefined();
  });

  it('refuses empty, non-image, disallowed, unreadable and oversized input with a reason', async () => {
    expect(await reasonOf(inspectImage(Buffer.alloc(0)))).toBe('empty');
    expect(await reasonOf(inspectImage(Buffer.from('GIF89a')))).toBe('not_an_image');
    expect(await reasonOf(inspectImage(await solid('jpeg'), ['png']))).toBe('unsupported_format');
    expect(await reasonOf(inspectImage(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3])))).toBe('unreadable');
    const side = Math.ceil(Math.sqrt(MAX_INPUT_PIXELS)) + 1;
    const bomb = inspectImage(declaredPng(side, side));
    await expect(bomb).rejects.toMatchObject({ reason: 'too_many_pixels', details: { width: side, height: side } });
    await expect(bomb).rejects.toThrow(`the image is ${side}x${side}; images may have at most ${MAX_INPUT_PIXELS} pixels and one frame.`);
  });

  it('takes the pixel limit from the caller (the server passes limits.maxInputPixels)', async () => {
    const img = await solid('png', 10, 6);
    expect(await inspectImage(img, ['png'], 60)).toMatchObject({ width: 10, height: 6 });
    await expect(inspectImage(img, ['png'], 59)).rejects.toMatchObject({ reason: 'too_many_pixels', details: { maxPixels: 59 } });
  });
});

describe('decoding input images', () => {
  it('decodes to RGBA at the asked size, flattening transparency onto white when asked', async () => {
    const img = await inspectImage(await halfTransparent(), ['png']);
    const kept = await decodeRgba(img, 8, 4, { flatten: false });
    expect([kept.width, kept.height, kept.data.length]).toEqual([8, 4, 8 * 4 * 4]);
    expect([...kept.data.subarray(0, 4)]).toEqual([255, 0, 0, 255]);
    expect(kept.data[7 * 4 + 3]).toBe(0);
    const flat = await decodeRgba(img, 16, 8, { flatten: true });
    expect([flat.width, flat.height]).toEqual([16, 8]);
    expect([...flat.data.subarray(15 * 4, 16 * 4)]).toEqual([255, 255, 255, 255]);
  });

  it('refuses data that does not fill its header', async () => {
    const good = await solid('png', 64, 64);
    const truncated = await inspectImage(good.subarray(0, good.length - 30));
    expect(await reasonOf(verifyDecodes(truncated))).toBe('corrupt');
    expect(await reasonOf(decodeRgba(truncated, 8, 8, { flatten: false }))).toBe('corrupt');
    expect(await reasonOf(decodeMaskWeights(truncated, 8, 8))).toBe('corrupt');
    // The header says 4000x4000 but the data holds almost nothing.
    expect(await reasonOf(verifyDecodes(await inspectImage(declaredPng(4000, 4000))))).toBe('corrupt');
    expect(await reasonOf(verifyDecodes(await inspectImage(good)))).toBe('resolved');
  });

  it('decodes a large image straight to the small size, every format and orientation', async () => {
    for (const format of IMAGE_FORMATS) {
      const big = await sharp({ create: { width: 3000, height: 1000, channels: 3, background: '#1e46dc' } })
        .toFormat(format)
        .withMetadata({ orientation: 6 })
        .toBuffer();
      const img = await inspectImage(big);
      expect([img.width, img.height], format).toEqual([1000, 3000]);
      const px = await decodeRgba(img, 20, 60, { flatten: true });
      expect([px.width, px.height], format).toEqual([20, 60]);
      const centre = [...px.data.subarray((30 * 20 + 10) * 4, (30 * 20 + 10) * 4 + 4)];
      expect(
        centre.every((v, i) => Math.abs(v - [30, 70, 220, 255][i]) < 12),
        `${format}: ${centre}`,
      ).toBe(true);
    }
  });

  it('turns transparent mask pixels into weight 1 (edit) and the rest into 0 (keep)', async () => {
    const mask = await inspectImage(await halfTransparent(), ['png']);
    const weights = await decodeMaskWeights(mask, 4, 2);
    expect([...weights]).toEqual([0, 0, 1, 1, 0, 0, 1, 1]);
  });

  it("checks that a mask has alpha and the image's size", async () => {
    const mask = await inspectImage(await halfTransparent(), ['png']);
    const image = await inspectImage(await solid('jpeg', 8, 4));
    expect(() => checkMask(mask, image)).not.toThrow();
    expect(() => checkMask(image, image)).toThrow(expect.objectContaining({ reason: 'mask_no_alpha' }));
    const other = await inspectImage(await solid('png', 8, 8));
    expect(() => checkMask(mask, other)).toThrow('the mask must have the same dimensions as the image (8x8), but it is 8x4.');
  });
});

describe('the decode budget', () => {
  /** A decode stand-in that stays running until released, recording the budget in use while it runs. */
  function gate() {
    let open!: () => void;
    const released = new Promise<void>((r) => {
      open = r;
    });
    return { open, work: () => released };
  }

  it('runs decodes while their bytes fit, the others in arrival order as bytes free up', async () => {
    const budget = new DecodeBudget(100);
    const order: string[] = [];
    const [a, b, c, d] = [gate(), gate(), gate(), gate()];
    const run = (name: string, bytes: number, g: ReturnType<typeof gate>) =>
      budget.run(bytes, () => {
        order.push(name);
        return g.work();
      });
    const all = [run('a', 60, a), run('b', 30, b), run('c', 50, c), run('d', 10, d)];
    // a + b fit (90); c (50) waits, and d waits behind c although it would fit: no decode is starved.
    await vi.waitFor(() => expect(order).toEqual(['a', 'b']));
    expect(budget.inUse).toBe(90);
    a.open();
    await vi.waitFor(() => expect(order).toEqual(['a', 'b', 'c', 'd']));
    expect(budget.inUse).toBe(90);
    for (const g of [b, c, d]) g.open();
    await Promise.all(all);
    expect(budget.inUse).toBe(0);
  });

  it('a cost over the whole budget runs alone; a failing decode frees its bytes', async () => {
    const budget = new DecodeBudget(100);
    const big = gate();
    const running = budget.run(1000, big.work);
    expect(budget.inUse).toBe(100);
    const small = budget.run(1, async () => budget.inUse);
    big.open();
    await running;
    expect(await small).toBe(1);
    await expect(budget.run(40, () => Promise.reject(new Error('corrupt')))).rejects.toThrow('corrupt');
    expect(budget.inUse).toBe(0);
  });

  it('charges an upper bound of what a streaming decode holds: a window of source rows and the output', () => {
    expect(decodeCost({ width: 6000, height: 4000 }, 512, 512)).toBe(6000 * 4 * 2048 + 512 * 512 * 4);
    expect(decodeCost({ width: 25_000, height: 1000 }, 512, 512)).toBe(25_000 * 4 * 1000 + 512 * 512 * 4);
  });
});
