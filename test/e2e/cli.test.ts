// The `easel generate` and `easel edit` commands on the tiny fixture: they plan like the server (the model's
// quality presets, native sizes, then an exact resize) and name the file when an input is refused.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { easel } from '../helpers/cli.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'easel-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('easel generate / edit', () => {
  it('generates at the requested size through the planner and is deterministic for a seed', async () => {
    const args = (out: string) => [
      'generate',
      'a red circle',
      '--model',
      FIXTURE,
      '--size',
      '96x80',
      '--quality',
      'low',
      '--seed',
      '7',
      '--threads',
      '1',
      '-o',
      join(dir, out),
    ];
    const a = await easel(args('a.png'));
    await easel(args('b.png'));
    expect(a.code, a.stderr).toBe(0);
    expect(a.stderr).toMatch(/seed 7;/);
    const meta = await sharp(join(dir, 'a.png')).metadata();
    expect([meta.width, meta.height]).toEqual([96, 80]);
    expect(await sharp(join(dir, 'a.png')).raw().toBuffer()).toEqual(await sharp(join(dir, 'b.png')).raw().toBuffer());
  });

  it('edits an image, writes it at the input size, and refuses a non-image naming its path', async () => {
    const input = join(dir, 'in.png');
    await sharp({ create: { width: 64, height: 48, channels: 3, background: '#3050e0' } })
      .png()
      .toFile(input);
    const ok = await easel([
      'edit',
      input,
      'a green heart',
      '--model',
      FIXTURE,
      '--seed',
      '1',
      '--threads',
      '1',
      '-o',
      join(dir, 'out.webp'),
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    const meta = await sharp(join(dir, 'out.webp')).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['webp', 64, 48]);

    const bad = join(dir, 'bad.png');
    writeFileSync(bad, 'not an image');
    const refused = await easel(['edit', bad, 'x', '--model', FIXTURE]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`easel: ${bad}: `);
  });
});
