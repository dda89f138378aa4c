// A request's image URLs against a real server (tiny-sd fixture) and a local image host: fetched a few at once,
// under one deadline that names the slow URL and aborts the others, and under one byte total (limits.uploadBytes).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { type RunningServer, startServer } from '../../src/server/start.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');
const CONCURRENCY = 3;

let server: RunningServer;
let host: Server;
let hostUrl: string;
let dataDir: string;
let png: Buffer;
/** ~770 KB of PNG noise: two of them pass the 1 MiB upload limit of this server. */
let noisy: Buffer;

/** What the image host saw: paths requested, requests closed, and the most open at once under /wave/. */
const seen: string[] = [];
const closed: string[] = [];
const held: Array<() => void> = [];
let open = 0;
let maxOpen = 0;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'easel-urls-'));
  const file = join(dataDir, 'easel.json');
  const limits = {
    allowPrivateImageUrls: true,
    imageUrlConcurrency: CONCURRENCY,
    imageUrlDeadlineSeconds: 1,
    uploadBytes: 1024 * 1024,
  };
  writeFileSync(file, JSON.stringify({ limits }));
  server = await startServer(loadConfig({ config: file, model: FIXTURE, port: 0, dataDir }, { EASEL_THREADS: '1' }), {
    waitForWarmUp: true,
  });
  png = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#3366cc' } })
    .png()
    .toBuffer();
  const raw = Buffer.from(Array.from({ length: 512 * 512 * 3 }, (_, i) => (i * 2654435761) >>> 24));
  noisy = await sharp(raw, { raw: { width: 512, height: 512, channels: 3 } })
    .png({ compressionLevel: 0 })
    .toBuffer();
  host = createServer((req, res) => {
    const path = req.url ?? '';
    seen.push(path);
    req.on('close', () => closed.push(path));
    if (path.startsWith('/hang')) return; // never answers
    if (path.startsWith('/noisy')) return res.writeHead(200, { 'content-type': 'image/png' }).end(noisy);
    if (!path.startsWith('/wave/')) return res.writeHead(200, { 'content-type': 'image/png' }).end(png);
    // Held until CONCURRENCY requests are open at once: a fetcher that takes them one by one never gets an answer.
    open++;
    maxOpen = Math.max(maxOpen, open);
    held.push(() => {
      open--;
      res.writeHead(200, { 'content-type': 'image/png' }).end(png);
    });
    if (held.length === CONCURRENCY) for (const answer of held.splice(0)) answer();
  });
  await new Promise<void>((r) => host.listen(0, '127.0.0.1', r));
  hostUrl = `http://127.0.0.1:${(host.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await server?.close();
  host?.closeAllConnections();
  await new Promise((r) => host?.close(r));
  rmSync(dataDir, { recursive: true, force: true });
});

async function edit(paths: string[]): Promise<{ status: number; body: { error?: Record<string, unknown> } }> {
  const res = await fetch(`${server.url}/v1/images/edits`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'gpt-image-1',
      prompt: 'a blue square',
      size: '1024x1024',
      quality: 'low',
      images: paths.map((p) => ({ image_url: hostUrl + p })),
    }),
  });
  return { status: res.status, body: await res.json() };
}

describe("a request's image URLs", () => {
  it(`are fetched ${CONCURRENCY} at once (limits.imageUrlConcurrency), never more`, async () => {
    const paths = Array.from({ length: 2 * CONCURRENCY }, (_, i) => `/wave/${i}.png`);
    const { status } = await edit(paths);
    expect(status).toBe(200);
    expect(maxOpen).toBe(CONCURRENCY);
    expect(seen).toEqual(expect.arrayContaining(paths));
  });

  it('share one deadline (limits.imageUrlDeadlineSeconds): a 400 naming the slow URL, the others aborted', async () => {
    const { status, body } = await edit(['/a.png', '/hang/1.png', '/b.png', '/hang/3.png', '/hang/4.png', '/c.png']);
    expect(status).toBe(400);
    expect(body.error).toEqual({
      message:
        "Invalid 'images[1].image_url': fetching this request's image URLs took longer than 1 s in total, and this one had not arrived.",
      type: 'invalid_request_error',
      param: 'images[1].image_url',
      code: 'invalid_image_url',
    });
    // Every download still open at the deadline was closed; the one still waiting its turn never started.
    await vi.waitFor(() => expect(closed).toEqual(expect.arrayContaining(['/hang/1.png', '/hang/3.png', '/hang/4.png'])), {
      timeout: 5000,
      interval: 20,
    });
    expect(seen).not.toContain('/c.png');
  });

  it('share one byte total (limits.uploadBytes): the download that passes it is stopped', async () => {
    expect(2 * noisy.length).toBeGreaterThan(1024 * 1024);
    const { status, body } = await edit(['/noisy/0.png', '/noisy/1.png']);
    expect(status).toBe(400);
    expect(body.error).toMatchObject({ code: 'file_too_large', message: expect.stringContaining('add up to more than 1 MB') });
    expect(body.error?.param).toMatch(/^images\[[01]\]\.image_url$/);
  });
});
