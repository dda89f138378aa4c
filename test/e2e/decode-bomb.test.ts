// Decode bombs against a real `easel serve` child process (tiny-sd fixture): a small request holding 16 huge solid
// PNGs, as uploads, data: URLs or fetched URLs, or four at once, must not grow its peak RSS by more than ~100 MB.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');
const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
/** The bound for one request, whatever it holds. */
const MAX_GROWTH_MB = 100;
const COUNT = 16;

/** Peak and current resident set of process `pid`, in MB (/proc/PID/status). */
function memory(pid: number): { hwm: number; rss: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]);
  return { hwm: kb('VmHWM') / 1024, rss: kb('VmRSS') / 1024 };
}

/** A solid PNG of width x height: tiny compressed (~80 KB at 24 MP), huge decoded. */
const solidPng = (width: number, height: number) =>
  sharp({ create: { width, height, channels: 3, background: '#3366cc' } })
    .png({ compressionLevel: 9 })
    .toBuffer();

/**
 * Starts `easel serve` on a free port. MALLOC_ARENA_MAX=2 as sharp advises on glibc: without it the first large
 * decodes on a fresh process also grow glibc's per-thread arenas, once, by another ~50 MB (measured).
 */
function serve(dataDir: string, configFile: string): Promise<{ child: ChildProcess; url: string }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EASEL_')));
  const args = ['--import', 'tsx', MAIN, 'serve', '--port', '0', '--model', FIXTURE, '--data-dir', dataDir, '--config', configFile];
  const child = spawn(process.execPath, args, {
    env: { ...clean, EASEL_THREADS: '1', MALLOC_ARENA_MAX: '2' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk;
      const m = /easel listening on (\S+)/.exec(stderr);
      if (m) resolve({ child, url: m[1] });
    });
    child.on('exit', (code) => reject(new Error(`easel serve exited ${code}: ${stderr}`)));
  });
}

let child: ChildProcess;
let serverUrl: string;
let images: Server;
let imagesUrl: string;
let dataDir: string;
/** 24 MP each: under the 25 MP default, so what is measured is the bounded decode, not the refusal. */
let underLimit: Buffer;
/** 40 MP each: the request, refused from the headers alone. */
let overLimit: Buffer;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'easel-bomb-'));
  const file = join(dataDir, 'easel.json');
  // A budget that fits one 6000x4000 decode (decodeCost ~49 MB) at a time, so four requests at once cost what one does.
  writeFileSync(file, JSON.stringify({ limits: { allowPrivateImageUrls: true, decodeBudgetBytes: 64 * 1024 * 1024 } }));
  ({ child, url: serverUrl } = await serve(dataDir, file));
  underLimit = await solidPng(6000, 4000);
  overLimit = await solidPng(8000, 5000);
  const small = await solidPng(64, 64);
  const served: Record<string, Buffer> = { '/over.png': overLimit, '/small.png': small };
  images = createServer((req, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(served[req.url ?? ''] ?? underLimit));
  await new Promise<void>((r) => images.listen(0, '127.0.0.1', r));
  imagesUrl = `http://127.0.0.1:${(images.address() as AddressInfo).port}`;
  // Warm up every path with small images (the sessions, sharp's loaders, the encoder) before anything is measured.
  expect((await multipartEdit([small, small])).status).toBe(200);
  expect((await jsonEdit([`${imagesUrl}/small.png`, dataUrl(small)])).status).toBe(200);
});

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
  images?.closeAllConnections();
  await new Promise((r) => images?.close(r));
  rmSync(dataDir, { recursive: true, force: true });
});

const dataUrl = (png: Buffer) => `data:image/png;base64,${png.toString('base64')}`;
const EDIT = { model: 'gpt-image-1', prompt: 'a blue square', size: '1024x1024', quality: 'low' };

function multipartEdit(pngs: Buffer[]): Promise<Response> {
  const form = new FormData();
  for (const [k, v] of Object.entries(EDIT)) form.append(k, v);
  for (const png of pngs) form.append('image[]', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'bomb.png');
  return fetch(`${serverUrl}/v1/images/edits`, { method: 'POST', body: form });
}

function jsonEdit(urls: string[]): Promise<Response> {
  return fetch(`${serverUrl}/v1/images/edits`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...EDIT, images: urls.map((image_url) => ({ image_url })) }),
  });
}

/** Sends the requests at once; their statuses and bodies, and how much they raised the server's peak RSS (MB). */
async function measured(...sends: Array<() => Promise<Response>>): Promise<{ statuses: number[]; bodies: unknown[]; growthMb: number }> {
  const pid = child.pid!;
  writeFileSync(`/proc/${pid}/clear_refs`, '5'); // resets VmHWM to the current RSS
  const before = memory(pid).rss;
  const answers = await Promise.all(sends.map((send) => send()));
  const bodies = await Promise.all(answers.map((a) => a.json()));
  return { statuses: answers.map((a) => a.status), bodies, growthMb: memory(pid).hwm - before };
}

describe.runIf(process.platform === 'linux')('decode bombs cost one request at most ~100 MB of RSS', () => {
  const grew = (mb: number) => `peak RSS grew by ${mb.toFixed(1)} MB`;

  it(`${COUNT} solid 6000x4000 PNGs in one ~1.3 MB multipart request: decoded one at a time, straight to the working size`, async () => {
    const pngs = Array.from({ length: COUNT }, () => underLimit);
    expect(pngs.reduce((n, p) => n + p.length, 0)).toBeLessThan(2 * 1024 * 1024);
    const { statuses, growthMb } = await measured(() => multipartEdit(pngs));
    expect(statuses).toEqual([200]);
    expect(growthMb, grew(growthMb)).toBeLessThan(MAX_GROWTH_MB);
  });

  it('the same images as data: URLs', async () => {
    const { statuses, growthMb } = await measured(() => jsonEdit(Array.from({ length: COUNT }, () => dataUrl(underLimit))));
    expect(statuses).toEqual([200]);
    expect(growthMb, grew(growthMb)).toBeLessThan(MAX_GROWTH_MB);
  });

  it('the same images as fetched URLs', async () => {
    const { statuses, growthMb } = await measured(() => jsonEdit(Array.from({ length: COUNT }, (_, i) => `${imagesUrl}/${i}.png`)));
    expect(statuses).toEqual([200]);
    expect(growthMb, grew(growthMb)).toBeLessThan(MAX_GROWTH_MB);
  });

  it('four requests at once: the decode budget (here one decode at a time) bounds them together', async () => {
    const pngs = Array.from({ length: COUNT / 2 }, () => underLimit);
    const { statuses, growthMb } = await measured(...Array.from({ length: 4 }, () => () => multipartEdit(pngs)));
    expect(statuses).toEqual([200, 200, 200, 200]);
    expect(growthMb, grew(growthMb)).toBeLessThan(MAX_GROWTH_MB);
  });

  it(`${COUNT} solid 8000x5000 PNGs (40 MP): refused from the header, naming the first image, nothing decoded`, async () => {
    const { statuses, bodies, growthMb } = await measured(
      () => multipartEdit(Array.from({ length: COUNT }, () => overLimit)),
      () => jsonEdit([`${imagesUrl}/0.png`, `${imagesUrl}/over.png`]),
    );
    expect(statuses).toEqual([400, 400]);
    expect(bodies[0]).toMatchObject({ error: { param: 'image[0]', code: 'image_too_large' } });
    expect((bodies[0] as { error: { message: string } }).error.message).toContain('at most 25000000 pixels');
    expect(bodies[1]).toMatchObject({ error: { param: 'images[1].image_url', code: 'image_too_large' } });
    expect(growthMb, grew(growthMb)).toBeLessThan(MAX_GROWTH_MB);
  });
});
