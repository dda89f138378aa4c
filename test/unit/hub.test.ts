// Tests for the hub client, registry and `models` CLI against a local fake of the Hugging Face hub
// (API listing, resolve with LFS redirects to a second "CDN" origin, Range, auth), no network needed.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { registerModelsCommands } from '../../src/cli/models.js';
import { HubError, hubSettings, isPipelineFile, type ProgressEvent, parseRepoRef, pullModel } from '../../src/hub/hf.js';
import { createProgressReporter } from '../../src/hub/progress.js';
import { listModels, resolveModelPath } from '../../src/hub/registry.js';

// ---------------------------------------------------------------------------------------------------
// Fake hub
function seededBytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface FakeFile {
  path: string;
  content: Buffer;
  lfs: boolean;
}
const SHA = 'a'.repeat(8) + '0123456789abcdef0123456789abcdef';
const FILES: FakeFile[] = [
  { path: '.gitattributes', content: Buffer.from('*.onnx filter=lfs\n'), lfs: false },
  { path: 'README.md', content: Buffer.from('# tiny\n'), lfs: false },
  { path: 'model_index.json', content: Buffer.from('{"_class_name":"StableDiffusionPipeline"}\n'), lfs: false },
  { path: 'scheduler/scheduler_config.json', content: Buffer.from('{"_class_name":"EulerDiscreteScheduler"}\n'), lfs: false },
  { path: 'tokenizer/vocab.json', content: Buffer.from('{"a</w>":0}\n'), lfs: false },
  { path: 'tokenizer/merges.txt', content: Buffer.from('#version: 0.2\n'), lfs: false },
  { path: 'unet/config.json', content: Buffer.from('{"in_channels":4}\n'), lfs: false },
  { path: 'unet/model.onnx', content: seededBytes(150_000, 1), lfs: true },
  { path: 'unet/model.onnx_data', content: seededBytes(400_000, 2), lfs: true },
  { path: 'text_encoder/model.onnx', content: seededBytes(90_000, 3), lfs: true },
  { path: 'unet/diffusion_pytorch_model.safetensors', content: seededBytes(50_000, 4), lfs: true },
  { path: 'text_encoder/flax_model.msgpack', content: seededBytes(1000, 5), lfs: true },
];
const WANTED = FILES.filter(
  (f) => !['.gitattributes', 'unet/diffusion_pytorch_model.safetensors', 'text_encoder/flax_model.msgpack'].includes(f.path),
);
const REPO = 'tiny-org/tiny-sd';

interface Hit {
  server: 'hub' | 'cdn';
  url: string;
  range?: string;
  auth?: string;
}
const hub = {
  requiredToken: undefined as string | undefined,
  /** path -> bytes after which the first response for it is cut off */
  dropAfter: new Map<string, number>(),
  corrupt: new Set<string>(),
  ignoreRange: new Set<string>(),
  hits: [] as Hit[],
};
let hubServer: http.Server;
let cdnServer: http.Server;
let endpoint: string;
let cdnBase: string;

function serveBytes(req: http.IncomingMessage, res: http.ServerResponse, file: FakeFile): void {
  let body = file.content;
  if (hub.corrupt.has(file.path)) {
    body = Buffer.from(body);
    body[body.length >> 1] ^= 0xff;
  }
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  let status = 200;
  const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes' };
  if (m && !hub.ignoreRange.has(file.path)) {
    const start = Number(m[1]);
    if (start >= body.length) {
      res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
      return;
    }
    headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
    body = body.subarray(start);
    status = 206;
  }
  headers['content-length'] = body.length;
  res.writeHead(status, headers);
  const cut = hub.dropAfter.get(file.path);
  if (cut !== undefined) {
    hub.dropAfter.delete(file.path); // first try only
    // Give the client a moment to read what was sent before the connection goes away.
    res.write(body.subarray(0, cut), () => setTimeout(() => res.socket?.destroy(), 50));
    return;
  }
  res.end(body);
}

function hubHandler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  hub.hits.push({ server: 'hub', url: url.pathname + url.search, range: req.headers.range, auth: req.headers.authorization });
  const fail = (status: number, code: string, message: string): void => {
    res
      .writeHead(status, { 'x-error-code': code, 'x-error-message': message, 'content-type': 'application/json' })
      .end(JSON.stringify({ error: message }));
  };
  if (hub.requiredToken && req.headers.authorization !== `Bearer ${hub.requiredToken}`) {
    fail(401, 'RepoNotFound', 'Invalid username or password.');
    return;
  }
  let m = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
  if (m) {
    if (m[1] !== REPO) {
      fail(404, 'RepoNotFound', 'Repository not found');
      return;
    }
    const rev = decodeURIComponent(m[2]);
    if (rev !== 'main' && rev !== SHA) {
      fail(404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      return;
    }
    const blobs = url.searchParams.get('blobs') === 'true';
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        id: REPO,
        sha: SHA,
        siblings: FILES.map((f) =>
          blobs
            ? {
                rfilename: f.path,
                size: f.content.length,
                blobId: 'b'.repeat(40),
                ...(f.lfs ? { lfs: { sha256: sha256(f.content), size: f.content.length, pointerSize: 133 } } : {}),
              }
            : { rfilename: f.path },
        ),
      }),
    );
    return;
  }
  m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
  if (m) {
    if (m[1] !== REPO) {
      fail(404, 'RepoNotFound', 'Repository not found');
      return;
    }
    if (m[2] !== SHA && m[2] !== 'main') {
      fail(404, 'RevisionNotFound', 'Invalid rev id');
      return;
    }
    const path = m[3].split('/').map(decodeURIComponent).join('/');
    const file = FILES.find((f) => f.path === path);
    if (!file) {
      fail(404, 'EntryNotFound', 'Entry not found');
      return;
    }
    // Like the real hub: LFS files redirect to a signed URL on another origin.
    if (file.lfs) {
      res.writeHead(302, { location: `${cdnBase}/blobs/${sha256(file.content)}?X-Amz-Signature=fake` }).end();
      return;
    }
    serveBytes(req, res, file);
    return;
  }
  fail(404, 'NotFound', 'no route');
}

function cdnHandler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  hub.hits.push({ server: 'cdn', url: url.pathname, range: req.headers.range, auth: req.headers.authorization });
  const m = /^\/blobs\/([0-9a-f]{64})$/.exec(url.pathname);
  const file = m && FILES.find((f) => f.lfs && sha256(f.content) === m[1]);
  if (!file || url.searchParams.get('X-Amz-Signature') !== 'fake') {
    res.writeHead(403).end();
    return;
  }
  serveBytes(req, res, file);
}

async function listen(handler: http.RequestListener): Promise<[http.Server, string]> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return [server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`];
}

// ---------------------------------------------------------------------------------------------------
let tmp: string;
let savedEnv: Record<string, string | undefined>;
const ENV_KEYS = ['HF_TOKEN', 'HF_ENDPOINT', 'EASEL_MODELS_DIR', 'HF_HOME', 'XDG_CACHE_HOME'];
beforeAll(async () => {
  savedEnv = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
  for (const k of ENV_KEYS) delete process.env[k];
  [hubServer, endpoint] = await listen(hubHandler);
  [cdnServer, cdnBase] = await listen(cdnHandler);
  tmp = await mkdtemp(join(tmpdir(), 'easel-hub-'));
});
afterAll(async () => {
  for (const [k, v] of Object.entries(savedEnv))
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  await new Promise((r) => hubServer.close(r));
  await new Promise((r) => cdnServer.close(r));
  await rm(tmp, { recursive: true, force: true });
});
beforeEach(() => {
  hub.requiredToken = undefined;
  hub.dropAfter.clear();
  hub.corrupt.clear();
  hub.ignoreRange.clear();
  hub.hits = [];
});

let n = 0;
const freshCache = () => join(tmp, `cache-${++n}`);
const fast = { retryDelayMs: 5 };

async function filesUnder(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...(await filesUnder(join(dir, e.name), `${prefix}${e.name}/`)));
    else out.push(`${prefix}${e.name}`);
  }
  return out.sort();
}

describe('settings and names', () => {
  it('reads HF_ENDPOINT, HF_TOKEN, EASEL_MODELS_DIR / HF_HOME like huggingface_hub', () => {
    expect(hubSettings({ HOME: '/h' })).toMatchObject({ endpoint: 'https://huggingface.co', token: undefined });
    expect(hubSettings({}).cacheDir).toMatch(/\.cache\/huggingface\/easel$/);
    expect(hubSettings({ HF_HOME: '/hf' }).cacheDir).toBe('/hf/easel');
    expect(hubSettings({ HF_HOME: '/hf', EASEL_MODELS_DIR: '/m' }).cacheDir).toBe('/m');
    expect(hubSettings({ HF_ENDPOINT: 'https://mirror.example/', HF_TOKEN: 'hf_x' })).toMatchObject({
      endpoint: 'https://mirror.example',
      token: 'hf_x',
    });
  });
  it('parses org/name[@revision] and rejects unsafe names', () => {
    expect(parseRepoRef('a/b')).toEqual({ repo: 'a/b', revision: 'main' });
    expect(parseRepoRef('a/b@v1.0')).toEqual({ repo: 'a/b', revision: 'v1.0' });
    expect(parseRepoRef('a/b', 'refs/pr/3')).toEqual({ repo: 'a/b', revision: 'refs/pr/3' });
    for (const bad of ['a', 'a/b/c', '../x', 'a/..', 'a/b@../../etc', 'a/b@']) expect(() => parseRepoRef(bad), bad).toThrow(HubError);
    expect(() => parseRepoRef('a/b@x', 'y')).toThrow(/conflicting/);
  });
  it('keeps only what a diffusers ONNX pipeline needs', () => {
    expect(FILES.filter((f) => isPipelineFile(f.path)).map((f) => f.path)).toEqual(WANTED.map((f) => f.path));
    expect(isPipelineFile('vae_decoder/model.onnx')).toBe(true);
    expect(isPipelineFile('tokenizer_2/merges.txt')).toBe(true);
    expect(isPipelineFile('unet/diffusion_pytorch_model.bin')).toBe(false);
    expect(isPipelineFile('unet/fp16/model.onnx')).toBe(false);
  });
});

describe('pullModel', () => {
  it('downloads the pipeline files, verifies them and records refs/main', async () => {
    const cacheDir = freshCache();
    const events: ProgressEvent[] = [];
    const result = await pullModel(REPO, { endpoint, cacheDir, token: 'hf_secret', onProgress: (e) => events.push(e), ...fast });

    const snapshot = join(cacheDir, 'tiny-org--tiny-sd', SHA);
    expect(result.sha).toBe(SHA);
    expect(result.path).toBe(snapshot);
    expect(await filesUnder(snapshot)).toEqual(WANTED.map((f) => f.path).sort());
    for (const f of WANTED) {
      const got = await readFile(join(snapshot, f.path));
      expect(sha256(got), f.path).toBe(sha256(f.content));
    }
    expect(result.skipped.sort()).toEqual([
      '.gitattributes',
      'text_encoder/flax_model.msgpack',
      'unet/diffusion_pytorch_model.safetensors',
    ]);
    expect((await readFile(join(cacheDir, 'tiny-org--tiny-sd', 'refs', 'main'), 'utf8')).trim()).toBe(SHA);
    expect(result.files.every((f) => f.downloaded)).toBe(true);

    // The token goes to the hub, never to the CDN the LFS files redirect to; skipped files are not fetched.
    expect(hub.hits.filter((h) => h.server === 'hub').every((h) => h.auth === 'Bearer hf_secret')).toBe(true);
    const cdnHits = hub.hits.filter((h) => h.server === 'cdn');
    expect(cdnHits).toHaveLength(3);
    expect(cdnHits.every((h) => h.auth === undefined)).toBe(true);
    expect(hub.hits.some((h) => h.url.includes('safetensors') || h.url.includes('msgpack'))).toBe(false);
    // Downloads are pinned to the commit sha the listing returned.
    expect(hub.hits.filter((h) => h.url.includes('/resolve/')).every((h) => h.url.includes(`/resolve/${SHA}/`))).toBe(true);

    // Progress ends at total for each file.
    const onnxData = events.filter((e) => e.file === 'unet/model.onnx_data');
    expect(onnxData.length).toBeGreaterThan(1);
    expect(onnxData.at(-1)).toEqual({ file: 'unet/model.onnx_data', received: 400_000, total: 400_000 });

    // A second pull only asks for the listing.
    hub.hits = [];
    const again = await pullModel(`${REPO}@main`, { endpoint, cacheDir, ...fast });
    expect(again.files.some((f) => f.downloaded)).toBe(false);
    expect(hub.hits.map((h) => h.url)).toEqual([`/api/models/${REPO}/revision/main?blobs=true`]);
  });

  it('resumes an interrupted download with a Range request', async () => {
    const cacheDir = freshCache();
    const partPath = join(cacheDir, 'tiny-org--tiny-sd', SHA, 'unet', 'model.onnx_data.part');
    hub.dropAfter.set('unet/model.onnx_data', 123_456);
    // No retries: the pull fails and leaves the partial file behind.
    const err = await pullModel(REPO, { endpoint, cacheDir, retries: 0 }).catch((e) => e);
    expect(err).toBeInstanceOf(HubError);
    expect((err as HubError).code).toBe('network');
    expect((err as HubError).message).toMatch(/unet\/model\.onnx_data/);
    expect((await stat(partPath)).size).toBe(123_456);
    expect(existsSync(join(cacheDir, 'tiny-org--tiny-sd', SHA, 'unet', 'model.onnx_data'))).toBe(false);
    expect(existsSync(join(cacheDir, 'tiny-org--tiny-sd', 'refs', 'main'))).toBe(false);

    hub.hits = [];
    await pullModel(REPO, { endpoint, cacheDir, ...fast });
    const dataSha = sha256(FILES.find((f) => f.path === 'unet/model.onnx_data')!.content);
    const dataHits = hub.hits.filter((h) => h.server === 'cdn' && h.url.includes(dataSha));
    expect(dataHits.map((h) => h.range)).toEqual(['bytes=123456-']);
    const got = await readFile(join(cacheDir, 'tiny-org--tiny-sd', SHA, 'unet', 'model.onnx_data'));
    expect(sha256(got)).toBe(sha256(FILES.find((f) => f.path === 'unet/model.onnx_data')!.content));
    expect(existsSync(partPath)).toBe(false);
  });

  it('retries within one pull, resuming from where the connection dropped', async () => {
    const cacheDir = freshCache();
    hub.dropAfter.set('unet/model.onnx', 70_000);
    hub.dropAfter.set('model_index.json', 10); // a regular (non-LFS) file, served by the hub itself
    await pullModel(REPO, { endpoint, cacheDir, ...fast });
    const onnx = hub.hits.filter((h) => h.url.includes(sha256(FILES.find((f) => f.path === 'unet/model.onnx')!.content)));
    expect(onnx.map((h) => h.range)).toEqual([undefined, 'bytes=70000-']);
    const idx = hub.hits.filter((h) => h.url.endsWith('/model_index.json'));
    expect(idx.map((h) => h.range)).toEqual([undefined, 'bytes=10-']);
    for (const f of WANTED)
      expect(sha256(await readFile(join(cacheDir, 'tiny-org--tiny-sd', SHA, f.path))), f.path).toBe(sha256(f.content));
  });

  it('starts over when the server answers a Range request with the whole file (200)', async () => {
    const cacheDir = freshCache();
    hub.dropAfter.set('text_encoder/model.onnx', 30_000);
    hub.ignoreRange.add('text_encoder/model.onnx');
    await pullModel(REPO, { endpoint, cacheDir, ...fast });
    const hits = hub.hits.filter(
      (h) => h.server === 'cdn' && h.url.includes(sha256(FILES.find((f) => f.path === 'text_encoder/model.onnx')!.content)),
    );
    expect(hits.map((h) => h.range)).toEqual([undefined, 'bytes=30000-']);
    const got = await readFile(join(cacheDir, 'tiny-org--tiny-sd', SHA, 'text_encoder', 'model.onnx'));
    expect(got.length).toBe(90_000);
    expect(sha256(got)).toBe(sha256(FILES.find((f) => f.path === 'text_encoder/model.onnx')!.content));
  });

  it('refuses a file whose sha256 does not match and leaves nothing in place', async () => {
    const cacheDir = freshCache();
    hub.corrupt.add('unet/model.onnx');
    const err = await pullModel(REPO, { endpoint, cacheDir, ...fast }).catch((e) => e);
    expect(err).toBeInstanceOf(HubError);
    expect((err as HubError).code).toBe('checksum_mismatch');
    expect((err as HubError).message).toMatch(/unet\/model\.onnx: sha256 [0-9a-f]{64} does not match/);
    const unet = join(cacheDir, 'tiny-org--tiny-sd', SHA, 'unet');
    expect(existsSync(join(unet, 'model.onnx'))).toBe(false);
    expect(existsSync(join(unet, 'model.onnx.part'))).toBe(false);
    expect(existsSync(join(cacheDir, 'tiny-org--tiny-sd', 'refs', 'main'))).toBe(false);
    expect(await listModels({ cacheDir, shippedDir: join(tmp, 'none') })).toEqual([]);
  });

  it('gives clear errors for a missing repo, a missing revision and missing auth', async () => {
    const cacheDir = freshCache();
    const missing = await pullModel('nobody/nothing', { endpoint, cacheDir, ...fast }).catch((e) => e);
    expect(missing).toBeInstanceOf(HubError);
    expect(missing.code).toBe('not_found');
    expect(missing.message).toMatch(/repository nobody\/nothing not found at http:\/\/127\.0\.0\.1:\d+.*set HF_TOKEN/);

    const rev = await pullModel(`${REPO}@v9`, { endpoint, cacheDir, ...fast }).catch((e) => e);
    expect(rev.code).toBe('not_found');
    expect(rev.message).toMatch(/revision "v9" not found in tiny-org\/tiny-sd/);

    hub.requiredToken = 'hf_right';
    const noAuth = await pullModel(REPO, { endpoint, cacheDir, ...fast }).catch((e) => e);
    expect(noAuth).toBeInstanceOf(HubError);
    expect(noAuth.message).toMatch(/HF_TOKEN/);
    const wrong = await pullModel(REPO, { endpoint, cacheDir, token: 'hf_wrong', ...fast }).catch((e) => e);
    expect(wrong).toBeInstanceOf(HubError);
    const ok = await pullModel(REPO, { endpoint, cacheDir, token: 'hf_right', ...fast });
    expect(ok.sha).toBe(SHA);
    expect(existsSync(cacheDir) && (await readdir(cacheDir))).toEqual(['tiny-org--tiny-sd']);
  });

  it('reports an unreachable endpoint after its retries', async () => {
    const [dead, deadUrl] = await listen(() => undefined);
    await new Promise((r) => dead.close(r));
    const err = await pullModel(REPO, { endpoint: deadUrl, cacheDir: freshCache(), retries: 1, retryDelayMs: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(HubError);
    expect(err.message).toMatch(/cannot reach http:\/\/127\.0\.0\.1/);
  });
});

describe('registry', () => {
  it('lists shipped and pulled models and resolves names to folders', async () => {
    const cacheDir = freshCache();
    const shippedDir = join(tmp, 'shipped');
    await mkdir(join(shippedDir, 'easel-default'), { recursive: true });
    await writeFile(join(shippedDir, 'easel-default', 'model_index.json'), '{}');
    await mkdir(join(shippedDir, 'not-a-model'), { recursive: true });

    await pullModel(REPO, { endpoint, cacheDir, ...fast });
    const models = await listModels({ cacheDir, shippedDir });
    const snapshot = join(cacheDir, 'tiny-org--tiny-sd', SHA);
    expect(models).toEqual([
      { name: 'easel-default', source: 'shipped', path: join(shippedDir, 'easel-default'), sizeBytes: 2 },
      {
        name: REPO,
        source: 'cached',
        path: snapshot,
        sizeBytes: WANTED.reduce((a, f) => a + f.content.length, 0),
        repo: REPO,
        revision: 'main',
        sha: SHA,
      },
    ]);

    const opts = { cacheDir, shippedDir };
    expect(await resolveModelPath(REPO, opts)).toBe(snapshot);
    expect(await resolveModelPath(`${REPO}@main`, opts)).toBe(snapshot);
    expect(await resolveModelPath(`${REPO}@${SHA}`, opts)).toBe(snapshot);
    expect(await resolveModelPath('easel-default', opts)).toBe(join(shippedDir, 'easel-default'));
    expect(await resolveModelPath(snapshot, opts)).toBe(snapshot);
    await expect(resolveModelPath(`${REPO}@v2`, opts)).rejects.toThrow(/not in the model cache.*easel models pull tiny-org\/tiny-sd@v2/);
    await expect(resolveModelPath('other/model', opts)).rejects.toThrow(/easel models pull other\/model/);
    await expect(resolveModelPath('nope', opts)).rejects.toThrow(/no shipped model named "nope" \(shipped: easel-default\)/);
    await expect(resolveModelPath(join(shippedDir, 'not-a-model'), opts)).rejects.toThrow(/no model_index\.json/);
    await expect(resolveModelPath('./does/not/exist', opts)).rejects.toThrow(/does not exist/);
  });
});

describe('models CLI', () => {
  function program(out: string[], progress: string[]): Command {
    const p = new Command('easel').exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    registerModelsCommands(p, { out: (s) => void out.push(s), progress: { write: (s: string) => void progress.push(s), isTTY: false } });
    return p;
  }

  it('pull then list', async () => {
    const cacheDir = freshCache();
    process.env.HF_ENDPOINT = endpoint;
    try {
      const out: string[] = [];
      const progress: string[] = [];
      await program(out, progress).parseAsync(['models', 'pull', REPO, '--cache-dir', cacheDir], { from: 'user' });
      expect(out.join('')).toMatch(/pulled tiny-org\/tiny-sd@main \(aaaaaaaa0123\): 9 of 9 files downloaded/);
      expect(progress.join('')).toContain('downloading unet/model.onnx_data (400 kB)\n');
      expect(progress.join('')).toContain('done unet/model.onnx_data (400 kB)\n');

      const listed: string[] = [];
      await program(listed, []).parseAsync(['models', 'list', '--cache-dir', cacheDir], { from: 'user' });
      const lines = listed.join('').trimEnd().split('\n');
      expect(lines[0]).toMatch(/^NAME\s+SOURCE\s+PATH\s+SIZE$/);
      expect(lines.some((l) => l.startsWith(REPO) && l.includes(' cached ') && l.includes(join(cacheDir, 'tiny-org--tiny-sd', SHA)))).toBe(
        true,
      );

      const failed = await program([], [])
        .parseAsync(['models', 'pull', 'nobody/nothing', '--cache-dir', cacheDir], { from: 'user' })
        .catch((e) => e);
      expect(failed).toBeInstanceOf(CommanderError);
      expect(failed.exitCode).toBe(1);
      expect(failed.message).toMatch(/error: repository nobody\/nothing not found/);
    } finally {
      delete process.env.HF_ENDPOINT;
    }
  });
});

describe('progress reporter', () => {
  it('draws a bar on a TTY and plain lines otherwise', () => {
    let t = 0;
    const tty: string[] = [];
    const bar = createProgressReporter({ write: (s: string) => void tty.push(s), isTTY: true, columns: 80 }, { now: () => t });
    bar.update({ file: 'unet/model.onnx', received: 0, total: 1000 });
    t = 500;
    bar.update({ file: 'unet/model.onnx', received: 500, total: 1000 });
    t = 1000;
    bar.update({ file: 'unet/model.onnx', received: 1000, total: 1000 });
    bar.done();
    const drawn = tty.join('');
    expect(drawn).toContain('\r\x1b[K');
    expect(drawn).toMatch(/unet\/model\.onnx +\[#+-+\] {2}50% 500 B\/1\.00 kB 1\.00 kB\/s/);
    expect(drawn).toMatch(/\[#+\] 100% 1\.00 kB\/1\.00 kB/);
    expect(drawn.endsWith('\n')).toBe(true);

    const plain: string[] = [];
    const lines = createProgressReporter({ write: (s: string) => void plain.push(s), isTTY: false });
    lines.update({ file: 'a.json', received: 0, total: 2_500_000 });
    lines.update({ file: 'a.json', received: 1_000_000, total: 2_500_000 });
    lines.update({ file: 'a.json', received: 2_500_000, total: 2_500_000 });
    expect(plain).toEqual(['downloading a.json (2.50 MB)\n', 'done a.json (2.50 MB)\n']);
  });
});
