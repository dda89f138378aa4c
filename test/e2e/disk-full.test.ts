// The data dir's disk full, for real on a small tmpfs where this machine lets us mount one (root), and with the free-space
// probe and the store's writes injected (any machine): a 503 before any work, /readyz disk_low, recovery, no partial file,
// usage rows retried then counted; and crash leftovers swept as the server starts.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statfsSync, utimesSync, writeFileSync } from 'node:fs';
import * as nodeFs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { openSqliteDb } from '../../src/db/index.js';
import type { FsSpace } from '../../src/server/disk.js';
import { type RunningServer, type StartOptions, startServer } from '../../src/server/start.js';
import { FsImageStore, type StoreFs } from '../../src/storage/index.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');
const MiB = 1024 * 1024;
const root = mkdtempSync(join(tmpdir(), 'easel-disk-'));

/** A 16 MiB tmpfs under the temp dir, or undefined where mounting is refused (not root, no CAP_SYS_ADMIN). */
function mountTmpfs(): string | undefined {
  const dir = join(root, 'tmpfs');
  mkdirSync(dir);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m,mode=0700', 'tmpfs', dir], { stdio: 'ignore' });
    return dir;
  } catch {
    return undefined;
  }
}
const tmpfs = mountTmpfs();

const servers: RunningServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  if (tmpfs) execFileSync('umount', [tmpfs]);
  rmSync(root, { recursive: true, force: true });
});

async function serve(dataDir: string, storage: object, opts: StartOptions = {}): Promise<RunningServer> {
  const file = join(root, `config-${servers.length}.json`);
  writeFileSync(file, JSON.stringify({ storage }));
  const config = loadConfig({ config: file, model: FIXTURE, port: 0, dataDir }, { EASEL_THREADS: '1' });
  const server = await startServer(config, { waitForWarmUp: true, ...opts });
  servers.push(server);
  return server;
}

function generate(server: RunningServer, body: object): Promise<Response> {
  return fetch(`${server.url}/v1/images/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'dall-e-2', prompt: 'a red circle', size: '256x256', ...body }),
  });
}

const ASKS = [
  { response_format: 'url' },
  { response_format: 'b64_json' },
  { model: 'gpt-image-1', size: '1024x1024', quality: 'low', stream: true },
];

/** Every kind of job (url, b64_json, a stream) is refused with the retryable 503 before anything is generated or sent. */
async function expectRefused(server: RunningServer): Promise<void> {
  for (const ask of ASKS) {
    const res = await generate(server, ask);
    expect(res.status, JSON.stringify(ask)).toBe(503);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/); // not an SSE stream: refused before it opened
    expect(res.headers.get('retry-after')).toBe('10');
    expect(res.headers.get('x-should-retry')).toBe('true');
    expect((await res.json()).error).toMatchObject({ type: 'server_error', code: 'service_unavailable' });
  }
}

interface Ready {
  status: string;
  disk: { free_bytes: number; reserve_bytes: number };
  usage_records_dropped: number;
}

async function readyz(server: RunningServer): Promise<{ code: number; body: Ready }> {
  const res = await fetch(`${server.url}/readyz`);
  return { code: res.status, body: (await res.json()) as Ready };
}

/** Polls /readyz (the free-space probe is cached for a second) until `done`; no timing is asserted. */
async function readyzUntil(server: RunningServer, done: (r: { code: number; body: Ready }) => boolean) {
  let r = await readyz(server);
  for (let i = 0; i < 200 && !done(r); i++) {
    await new Promise((ok) => setTimeout(ok, 25));
    r = await readyz(server);
  }
  return r;
}

/** Usage rows of delivered answers, or all of them (a request failed after admission, e.g. on a full store, has one too). */
async function usageRows(dataDir: string, opts: { all?: boolean } = {}): Promise<number> {
  const db = openSqliteDb({ path: join(dataDir, 'easel.sqlite'), migrate: false });
  try {
    return (await db.listUsage()).filter((r) => opts.all || r.status === 200).length;
  } finally {
    await db.close();
  }
}

function files(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** Fills the filesystem holding `dir` until only `leaveBytes` (rounded to pages) are free. */
function fill(dir: string, leaveBytes: number): string {
  const { bavail, bsize } = statfsSync(dir);
  const path = join(dir, 'filler');
  writeFileSync(path, Buffer.alloc(Math.max(0, bavail * bsize - leaveBytes)));
  if (leaveBytes === 0) {
    // Top up to the last byte: a write stops at ENOSPC.
    try {
      for (;;) writeFileSync(path, Buffer.alloc(4096), { flag: 'a' });
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    }
  }
  return path;
}

describe.skipIf(!tmpfs)('a full disk, for real on a 16 MiB tmpfs', () => {
  it('under the reserve: 503 before any work and /readyz says disk_low; with space back it serves again by itself', async () => {
    const dataDir = join(tmpfs!, 'reserve');
    const server = await serve(dataDir, { reserveBytes: 4 * MiB });
    const filler = fill(tmpfs!, 1 * MiB);
    const low = await readyzUntil(server, (r) => r.body.status === 'disk_low');
    expect(low.code).toBe(503);
    expect(low.body.disk.reserve_bytes).toBe(4 * MiB);
    expect(low.body.disk.free_bytes).toBeLessThan(4 * MiB);
    await expectRefused(server);
    expect(files(join(dataDir, 'images'))).toEqual([]);
    expect(await usageRows(dataDir)).toBe(0);

    rmSync(filler);
    expect((await readyzUntil(server, (r) => r.code === 200)).body.status).toBe('ready');
    const res = await generate(server, { response_format: 'url' });
    expect(res.status).toBe(200);
    const image = await fetch((await res.json()).data[0].url);
    expect(image.headers.get('content-type')).toBe('image/png');
    expect(await usageRows(dataDir)).toBe(1);
  });

  it('a write that finds the disk full: a retryable 503 and no partial file; a usage row hitting SQLITE_FULL is retried, then counted', async () => {
    const dataDir = join(tmpfs!, 'full');
    const server = await serve(dataDir, { reserveBytes: 0 }, { io: { usageRetryDelaysMs: [10, 10] } });
    expect((await generate(server, { response_format: 'url' })).status).toBe(200);
    const stored = files(join(dataDir, 'images'));
    expect(stored).toHaveLength(2); // an image and its sidecar

    const filler = fill(tmpfs!, 0);
    const res = await generate(server, { response_format: 'url' });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('10');
    expect(res.headers.get('x-should-retry')).not.toBe('false');
    expect((await res.json()).error.message).toMatch(/could not be stored \((ENOSPC|EDQUOT)\)/);
    expect(files(join(dataDir, 'images'))).toEqual(stored); // no .tmp- file, no image without its sidecar

    // Inline images need no store: the answer is delivered, and the row that cannot be written is never silent.
    expect((await generate(server, { response_format: 'b64_json' })).status).toBe(200);
    const dropped = await readyzUntil(server, (r) => r.body.usage_records_dropped > 0);
    expect(dropped.body.usage_records_dropped).toBeGreaterThanOrEqual(1);

    rmSync(filler);
    expect((await generate(server, { response_format: 'b64_json' })).status).toBe(200);
    // Four rows were due (the 503 has one too): each is written or dropped and counted, whichever found space.
    const written = await usageRows(dataDir, { all: true });
    expect(written + (await readyz(server)).body.usage_records_dropped).toBe(4);
    expect(written).toBeGreaterThanOrEqual(2);
  });
});

describe('a full disk, injected: the free-space probe and the store writes', () => {
  it('a probe under the reserve refuses every job and /readyz says so; space back, it serves again', async () => {
    const space: FsSpace = { bavail: 256, bsize: 4096 }; // 1 MiB free, default reserve 64 MiB
    const dataDir = join(root, 'probe');
    const server = await serve(dataDir, {}, { io: { statfs: async () => space } });
    const low = await readyz(server);
    expect(low).toMatchObject({ code: 503, body: { status: 'disk_low', disk: { free_bytes: MiB, reserve_bytes: 64 * MiB } } });
    await expectRefused(server);
    expect(await usageRows(dataDir)).toBe(0);

    space.bavail = 1 << 20; // 4 GiB
    expect((await readyzUntil(server, (r) => r.code === 200)).body).toMatchObject({ status: 'ready', usage_records_dropped: 0 });
    expect((await generate(server, { response_format: 'b64_json' })).status).toBe(200);
  });

  it('an image write failing with ENOSPC after part of the file is a retryable 503 and leaves nothing behind', async () => {
    const full = { on: false };
    const storeFs: StoreFs = {
      ...nodeFs,
      async writeFile(path, data, opts) {
        if (!full.on) return nodeFs.writeFile(path, data, opts);
        await nodeFs.writeFile(path, Buffer.from(data as Buffer).subarray(0, 100), opts);
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      },
    };
    const dataDir = join(root, 'writes');
    const server = await serve(dataDir, {}, { io: { storeFs } });
    expect((await generate(server, { response_format: 'url' })).status).toBe(200);
    const stored = files(join(dataDir, 'images'));
    full.on = true;
    const res = await generate(server, { response_format: 'url' });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('10');
    expect((await res.json()).error).toMatchObject({ code: 'service_unavailable', message: expect.stringContaining('ENOSPC') });
    expect(files(join(dataDir, 'images'))).toEqual(stored);
    expect((await generate(server, { response_format: 'b64_json' })).status).toBe(200);
  });
});

describe('crash leftovers are swept as the server starts', () => {
  it('a stale .tmp- file, an image without its sidecar and an expired image go; a fresh .tmp- file and a live image stay', async () => {
    const dataDir = join(root, 'leftovers');
    const images = join(dataDir, 'images');
    const past = new FsImageStore({ dir: images, now: () => Date.now() - 2 * 3_600_000 });
    const expired = await past.put({ bytes: Buffer.from('png'), contentType: 'image/png' }, { ttlSeconds: 60 });
    const live = await new FsImageStore({ dir: images }).put({ bytes: Buffer.from('png'), contentType: 'image/png' }, { ttlSeconds: 3600 });
    const tenMinutesAgo = (Date.now() - 10 * 60_000) / 1000;
    for (const name of ['.tmp-0123456789abcdef', 'AAAAAAAAAAAAAAAAAAAAAA.png']) {
      writeFileSync(join(images, name), 'half written');
      utimesSync(join(images, name), tenMinutesAgo, tenMinutesAgo);
    }
    writeFileSync(join(images, '.tmp-fedcba9876543210'), 'being written now');
    expect(files(images)).toHaveLength(7);

    await serve(dataDir, {});
    expect(files(images)).toEqual(['.tmp-fedcba9876543210', `${live.id}.json`, `${live.id}.png`].sort());
    expect(expired.id).not.toBe(live.id);
  });
});
