// `easel usage` through the real CLI (child process) over a real SQLite database in a temp data dir: the table by
// day, model and key, the --days window, --config naming the data dir, and a bad --days refused.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteDb } from '../../src/db/index.js';
import { usage } from '../contract/db.js';
import { easel } from '../helpers/cli.js';

const DAY = 86_400_000;
let dir: string;
let keyId: string;
const today = Math.floor(Date.now() / DAY) * DAY;
const iso = (ms: number) => new Date(ms).toISOString().slice(0, 10);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'easel-usage-cli-'));
  const db = openSqliteDb({ path: join(dir, 'data', 'easel.sqlite') });
  const k = await db.createApiKey('app');
  keyId = k.id;
  await db.recordUsage(usage(today + 1000, { keyId, images: 1 }));
  await db.recordUsage(usage(today + 2000, { keyId, images: 2 }));
  await db.recordUsage(usage(today + 3000, { keyId, status: 503, images: 0, errorCode: 'queue_unavailable' }));
  await db.recordUsage(usage(today + 4000, { model: 'dall-e-2', endpoint: '/v1/images/variations', images: 1 }));
  await db.recordUsage(usage(today - DAY + 5000, { keyId, images: 4 }));
  await db.recordUsage(usage(today - 10 * DAY, { keyId, images: 8 }));
  await db.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('easel usage', () => {
  it('prints requests and images by day, model and key (the key named), with a total', async () => {
    const r = await easel(['usage', '--data-dir', join(dir, 'data')]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^DAY\s+MODEL\s+KEY\s+REQUESTS\s+IMAGES$/);
    const cells = lines.slice(1).map((l) => l.split(/\s{2,}/));
    expect(cells).toEqual([
      [iso(today - DAY), 'gpt-image-1', `${keyId} (app)`, '1', '4'],
      [iso(today), 'dall-e-2', '-', '1', '1'],
      [iso(today), 'gpt-image-1', `${keyId} (app)`, '3', '3'],
      ['total', '5', '8'],
    ]);
  });

  it('--days widens the window; --config finds the data dir; a bad --days is refused', async () => {
    const wide = await easel(['usage', '--days', '30', '--data-dir', join(dir, 'data')]);
    expect(wide.stdout.trimEnd().split('\n').at(-1)).toMatch(/^total\s+6\s+16$/);
    const file = join(dir, 'easel.json');
    writeFileSync(file, JSON.stringify({ dataDir: join(dir, 'data') }));
    const viaConfig = await easel(['usage', '--days', '1', '--config', file]);
    expect(viaConfig.code, viaConfig.stderr).toBe(0);
    expect(viaConfig.stdout.trimEnd().split('\n').at(-1)).toMatch(/^total\s+4\s+4$/);
    const bad = await easel(['usage', '--days', '0', '--data-dir', join(dir, 'data')]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--days must be an integer from 1 to 3660/);
    const empty = await easel(['usage', '--data-dir', join(dir, 'empty')]);
    expect(empty.stdout).toBe('no image requests in this range\n');
  }, 60_000);
});
