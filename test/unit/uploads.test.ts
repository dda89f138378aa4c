// Input images are read the way viewers show them: a phone JPEG stores its pixels sideways and says so in the EXIF
// orientation tag, and the size checks, `size: "auto"` and the pixels the model sees must all follow the tag.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage, describeUpload, inspectImage, verifyDecodes } from '../../src/server/uploads.js';

const RED = [220, 30, 30];
const BLUE = [30, 70, 220];

/** A 64x32 picture stored landscape: left half red, right half blue; `orientation` goes into its EXIF. */
async function sidewaysJpeg(orientation: number): Promise<Buffer> {
  const w = 64;
  const h = 32;
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) raw.set(x < w / 2 ? RED : BLUE, (y * w + x) * 3);
  }
  return sharp(raw, { raw: { width: w, height: h, channels: 3 } })
    .jpeg({ quality: 95 })
    .withMetadata({ orientation })
    .toBuffer();
}

const near = (px: ArrayLike<number>, rgb: number[]) => rgb.every((v, i) => Math.abs((px[i] ?? 0) - v) < 24);

describe('EXIF orientation of input images', () => {
  it('orientation 6 (rotate 90° clockwise): portrait size, left half of the stored pixels on top', async () => {
    const bytes = await sidewaysJpeg(6);
    expect((await sharp(bytes).metadata()).orientation).toBe(6);
    const img = await inspectImage(bytes, 'image', ['image/jpeg']);
    expect([img.width, img.height]).toEqual([32, 64]);
    expect(await describeUpload({ field: 'image', filename: 'a.jpg', mimetype: 'image/jpeg', data: bytes })).toMatchObject({
      width: 32,
      height: 64,
    });
    await verifyDecodes(img);
    const px = await decodeImage(img, 32, 64, false);
    const at = (x: number, y: number) => px.data.subarray((y * 32 + x) * 4, (y * 32 + x) * 4 + 4);
    expect(near(at(16, 8), RED), `top is red, got ${[...at(16, 8)]}`).toBe(true);
    expect(near(at(16, 56), BLUE), `bottom is blue, got ${[...at(16, 56)]}`).toBe(true);
  });

  it('orientation 1 keeps the stored layout', async () => {
    const img = await inspectImage(await sidewaysJpeg(1), 'image', ['image/jpeg']);
    expect([img.width, img.height]).toEqual([64, 32]);
    const px = await decodeImage(img, 64, 32, false);
    const at = (x: number, y: number) => px.data.subarray((y * 64 + x) * 4, (y * 64 + x) * 4 + 4);
    expect(near(at(8, 16), RED)).toBe(true);
    expect(near(at(56, 16), BLUE)).toBe(true);
  });
});
