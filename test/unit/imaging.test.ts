// imaging/: the format table every layer shares, and the one decode path for input images (real files made
// with sharp: sniffing, header checks before decoding, truncated data, masks).
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
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
