// The hub client, the cache resolution, the registry and the `models` CLI against a local hub (test/helpers/hub-server)
// serving the tiny fixture as repositories; everything lands in temporary Hugging Face caches, no network needed.
import { existsSync, lstatSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, readlink, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { Command, CommanderError } from 'commander';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { registerModelsCommands } from '../../src/cli/models.js';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { readModelFolder } from '../../src/engine/models/folder.js';
import { readModelInfo } from '../../src/engine/models/info.js';
import { hubCacheDir, isOffline, pipelineRoot, resolveCachedModel } from '../../src/hub/cache.js';
import { HubError, hubSettings, type ProgressEvent, parseRepoRef, pullModel, selectPipelineFiles } from '../../src/hub/hf.js';
import { createProgressReporter } from '../../src/hub/progress.js';
import { listModels, removeModel, resolveModelPath } from '../../src/hub/registry.js';
import { commitOf, fixtureRepos, gitOid, type HubFile, type LocalHub, sha256, startLocalHub } from '../helpers/hub-server.js';

const TINY = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');
const ROOT = 'tiny-org/tiny-sd';
const SUB = 'tiny-org/tiny-sd-onnx';
const { root: ROOT_FILES, subfolder: SUB_FILES } = fixtureRepos(TINY);

let hub: LocalHub;
let tmp: string;
let n = 0;
/** A fresh HF_HOME with its hub cache, and the env that points at both and at the local hub. */
function freshHome() {
  const home = join(tmp, `home-${++n}`);
  const cacheDir = join(home, 'hub');
  return { home, cacheDir, env: { HF_HOME: home, HF_ENDPOINT: hub.endpoint } as NodeJS.ProcessEnv };
}
const fast = { retryDelayMs: 5 };

beforeAll(async () => {
  hub = await startLocalHub({
    [ROOT]: { files: ROOT_FILES },
    [SUB]: { files: SUB_FILES },
    'tiny-org/gated': { files: ROOT_FILES, gatedFor: 'hf_ok' },
    'tiny-org/private': { files: ROOT_FILES, privateFor: 'hf_ok' },
    'tiny-org/pytorch-only': { files: ROOT_FILES.filter((f) => !f.path.endsWith('.onnx')) },
  });
  tmp = await mkdtemp(join(tmpdir(), 'easel-hub-'));
});
afterAll(async () => {
  await hub.close();
  await rm(tmp, { recursive: true, force: true });
});
beforeEach(() => hub.reset());

const storageOf = (cacheDir: string, repo: string) => join(cacheDir, `models--${repo.replace('/', '--')}`);
const shaOf = (repo: string) => hub.repos.get(repo)!.sha;
const file = (files: HubFile[], path: string) => files.find((f) => f.path === path)!;
const etagOf = (f: HubFile) => (/\.(onnx|safetensors|ckpt|bin)$/.test(f.path) ? sha256(f.content) : gitOid(f.content));

async function filesUnder(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...(await filesUnder(join(dir, e.name), `${prefix}${e.name}/`)));
    else out.push(`${prefix}${e.name}`);
  }
  return out.sort();
}

describe('settings, names and file selection', () => {
  it('finds the cache, token and offline switch the way huggingface_hub does', () => {
    expect(hubCacheDir({ HOME: '/h' })).toMatch(/\.cache\/huggingface\/hub$/);
    expect(hubCacheDir({ XDG_CACHE_HOME: '/x' })).toBe('/x/huggingface/hub');
    expect(hubCacheDir({ HF_HOME: '/hf' })).toBe('/hf/hub');
    expect(hubCacheDir({ HF_HOME: '/hf', HF_HUB_CACHE: '/c' })).toBe('/c');
    expect(hubSettings({ HF_ENDPOINT: 'https://mirror.example/', HF_TOKEN: 'hf_x' })).toMatchObject({
      endpoint: 'https://mirror.example',
      token: 'hf_x',
      offline: false,
    });
    expect(hubSettings({}).endpoint).toBe('https://huggingface.co');
    expect(['1', 'true', 'YES'].map((v) => isOffline({ HF_HUB_OFFLINE: v }))).toEqual([true, true, true]);
    expect(isOffline({ HF_HUB_OFFLINE: '0' })).toBe(false);
  });

  it('parses org/name[@revision] and rejects unsafe names', () => {
    expect(parseRepoRef('a/b')).toEqual({ repo: 'a/b', revision: 'main' });
    expect(parseRepoRef('a/b@refs/pr/1')).toEqual({ repo: 'a/b', revision: 'refs/pr/1' });
    for (const bad of ['a', 'a/b/c', '../x', 'a/b@..', 'a--b/c']) expect(() => parseRepoRef(bad), bad).toThrow(HubError);
    expect(() => parseRepoRef('a/b@v1', 'v2')).toThrow(/conflicting revisions/);
  });

  it('keeps what an ONNX pipeline needs, one file per part, and its external data', () => {
    const paths = [
      'model_index.json',
      '.gitattributes',
      'unet/config.json',
      'unet/model.onnx',
      'unet/model.onnx_data',
      'unet/model.fp16.onnx',
      'unet/model.fp16.onnx_data',
      'unet/diffusion_pytorch_model.safetensors',
      'text_encoder/model.onnx',
      'text_encoder/weights.pb',
      'text_encoder/pytorch_model.bin',
      'vae_decoder/model_fp16.onnx',
      'tokenizer/vocab.json',
      'scheduler/scheduler_config.json',
      'sd.ckpt',
    ];
    expect(selectPipelineFiles(paths)).toEqual([
      'model_index.json',
      'unet/config.json',
      'unet/model.onnx',
      'unet/model.onnx_data',
      'text_encoder/model.onnx',
      'text_encoder/weights.pb',
      'vae_decoder/model_fp16.onnx',
      'tokenizer/vocab.json',
      'scheduler/scheduler_config.json',
    ]);
    expect(selectPipelineFiles(paths, { variant: 'fp16' }).filter((p) => p.includes('onnx') || p.endsWith('.pb'))).toEqual([
      'unet/model.fp16.onnx',
      'unet/model.fp16.onnx_data',
      'text_encoder/model.onnx',
      'text_encoder/weights.pb',
      'vae_decoder/model_fp16.onnx',
    ]);
    const folders = ['model_index.json', 'onnx/unet/model.onnx', 'onnx/fp16/unet/model.onnx', 'unet/diffusion_pytorch_model.bin'];
    expect(selectPipelineFiles(folders)).toEqual(['model_index.json', 'onnx/unet/model.onnx']);
    expect(selectPipelineFiles(folders, { variant: 'fp16' })).toEqual(['model_index.json', 'onnx/fp16/unet/model.onnx']);
  });
});

describe('pullModel', () => {
  it('writes the standard layout: refs/main, relative snapshot links into blobs, one blob per etag', async () => {
    const { cacheDir, env } = freshHome();
    const events: ProgressEvent[] = [];
    const result = await pullModel(ROOT, { env, token: 'hf_secret', onProgress: (e) => events.push(e), ...fast });
    const storage = storageOf(cacheDir, ROOT);
    const sha = shaOf(ROOT);
    expect(result).toMatchObject({ repo: ROOT, revision: 'main', sha, snapshot: join(storage, 'snapshots', sha) });
    expect(result.path).toBe(result.snapshot);
    expect(await readFile(join(storage, 'refs', 'main'), 'utf8')).toBe(sha);

    const wanted = ROOT_FILES.filter((f) => !/fp16|safetensors|ckpt|gitattributes/.test(f.path));
    expect(await filesUnder(result.snapshot)).toEqual(wanted.map((f) => f.path).sort());
    for (const f of wanted) {
      const link = join(result.snapshot, f.path);
      expect(lstatSync(link).isSymbolicLink(), f.path).toBe(true);
      expect(await readlink(link)).toBe(relative(dirname(link), join(storage, 'blobs', etagOf(f))));
      expect(sha256(await readFile(link)), f.path).toBe(sha256(f.content));
    }
    expect((await readdir(join(storage, 'blobs'))).sort()).toEqual([...new Set(wanted.map(etagOf))].sort());
    expect(result.skipped).toEqual(expect.arrayContaining(['.gitattributes', 'unet/model.fp16.onnx', 'v1-5-pruned.ckpt']));

    // The token goes to the hub only, never to the CDN; skipped files are never asked for; downloads pin the commit.
    expect(hub.hits.filter((h) => h.server === 'hub').every((h) => h.auth === 'Bearer hf_secret')).toBe(true);
    expect(hub.hits.filter((h) => h.server === 'cdn').every((h) => h.auth === undefined)).toBe(true);
    expect(hub.hits.some((h) => /safetensors|ckpt|fp16/.test(h.url))).toBe(false);
    expect(hub.hits.filter((h) => h.url.includes('/resolve/')).every((h) => h.url.includes(`/resolve/${sha}/`))).toBe(true);
    const unet = events.filter((e) => e.file === 'unet/model.onnx');
    expect(unet.at(-1)).toEqual({
      file: 'unet/model.onnx',
      received: file(ROOT_FILES, 'unet/model.onnx').content.length,
      total: unet[0].total,
    });

    // A second pull reads the listing and links what is there.
    hub.reset();
    const again = await pullModel(`${ROOT}@main`, { env, ...fast });
    expect(again.files.some((f) => f.downloaded)).toBe(false);
    expect(hub.hits.every((h) => h.url.startsWith('/api/'))).toBe(true);
  });

  it('picks the fp16 files with a variant, and shares blobs with the plain pull of the same commit', async () => {
    const { cacheDir, env } = freshHome();
    const fp16 = await pullModel(ROOT, { env, variant: 'fp16', ...fast });
    const parts = ['text_encoder', 'unet', 'vae_decoder', 'vae_encoder'];
    const onnx = (await filesUnder(fp16.snapshot)).filter((p) => p.endsWith('.onnx'));
    expect(onnx).toEqual(parts.map((p) => `${p}/model.fp16.onnx`));
    expect(readModelFolder(fp16.path, { variant: 'fp16' }).paths.unet).toBe(join(fp16.snapshot, 'unet', 'model.fp16.onnx'));
    expect(readModelFolder(fp16.path).paths.unet).toBe(join(fp16.snapshot, 'unet', 'model.fp16.onnx')); // the only one there
    expect(resolveCachedModel(ROOT, { variant: 'fp16' }, env).path).toBe(fp16.snapshot);

    const plain = await pullModel(ROOT, { env, ...fast });
    expect(plain.files.filter((f) => f.downloaded).map((f) => f.path)).toEqual(parts.map((p) => `${p}/model.onnx`));
    expect(readModelFolder(plain.path).paths.unet).toBe(join(plain.snapshot, 'unet', 'model.onnx'));
    expect(readModelFolder(plain.path, { variant: 'fp16' }).paths.unet).toBe(join(plain.snapshot, 'unet', 'model.fp16.onnx'));
    const linked = new Set(await Promise.all((await filesUnder(plain.snapshot)).map((f) => realpath(join(plain.snapshot, f)))));
    expect((await readdir(join(storageOf(cacheDir, ROOT), 'blobs'))).length).toBe(linked.size);
    // Both in one snapshot: the variant picks its files, no variant the plain ones.
    expect(resolveCachedModel(ROOT, { variant: 'fp16' }, env).path).toBe(plain.snapshot);
    expect(resolveCachedModel(ROOT, {}, env).path).toBe(plain.snapshot);
    expect(() => resolveCachedModel(ROOT, { variant: 'int8' }, env)).toThrow(/no ONNX pipeline.*int8/);
  });

  it('finds an ONNX pipeline in onnx/ beside PyTorch weights, with model_index.json and tokenizer at the root', async () => {
    const { env } = freshHome();
    const result = await pullModel(SUB, { env, ...fast });
    expect(result.path).toBe(join(result.snapshot, 'onnx'));
    expect(result.skipped).toEqual(expect.arrayContaining(['unet/diffusion_pytorch_model.safetensors', 'vae/diffusion_pytorch_model.bin']));
    expect(readModelInfo(result.path).capabilities).toEqual(readModelInfo(TINY).capabilities);
    expect(readModelFolder(result.path).paths.tokenizer).toBe(join(result.snapshot, 'tokenizer'));
    expect(resolveCachedModel(SUB, {}, env).path).toBe(result.path);
    expect(resolveCachedModel(SUB, { subfolder: 'onnx' }, env).path).toBe(result.path);
    expect(() => pipelineRoot(result.snapshot, { subfolder: 'nope' })).toThrow(/no ONNX pipeline.*nope\//);
  });

  it('resumes a partial blob left by an earlier pull (or by huggingface_hub) with a Range request', async () => {
    const { cacheDir, env } = freshHome();
    const unet = file(ROOT_FILES, 'unet/model.onnx');
    const blobs = join(storageOf(cacheDir, ROOT), 'blobs');
    await mkdir(blobs, { recursive: true });
    await writeFile(join(blobs, `${sha256(unet.content)}.incomplete`), unet.content.subarray(0, 1000));
    await pullModel(ROOT, { env, ...fast });
    const hits = hub.hits.filter((h) => h.server === 'cdn' && h.url.includes(sha256(unet.content)));
    expect(hits.map((h) => h.range)).toEqual([`bytes=1000-${unet.content.length - 1}`]);
    expect(sha256(await readFile(join(blobs, sha256(unet.content))))).toBe(sha256(unet.content));
    expect((await readdir(blobs)).some((b) => b.endsWith('.incomplete'))).toBe(false);
  });

  it('retries a dropped connection from where it stopped, and starts over when a range is answered in full', async () => {
    const { env } = freshHome();
    const unet = file(ROOT_FILES, 'unet/model.onnx');
    const te = file(ROOT_FILES, 'text_encoder/model.onnx');
    hub.dropAfter.set('unet/model.onnx', 700);
    hub.dropAfter.set('model_index.json', 10); // a regular file, served by the hub itself
    hub.dropAfter.set('text_encoder/model.onnx', 300);
    hub.ignoreRange.add('text_encoder/model.onnx');
    const result = await pullModel(ROOT, { env, ...fast });
    const ranges = (f: HubFile) =>
      hub.hits
        .filter((h) => (h.server === 'cdn' ? h.url.includes(sha256(f.content)) : h.url.endsWith(`/${f.path}`) && !f.path.endsWith('.onnx')))
        .map((h) => h.range);
    expect(ranges(unet)).toEqual([undefined, `bytes=700-${unet.content.length - 1}`]);
    const index = file(ROOT_FILES, 'model_index.json');
    expect(ranges(index)).toEqual([undefined, `bytes=10-${index.content.length - 1}`]);
    expect(ranges(te)).toEqual([undefined, `bytes=300-${te.content.length - 1}`, undefined]);
    for (const f of [unet, te, index]) expect(sha256(await readFile(join(result.snapshot, f.path)))).toBe(sha256(f.content));
  });

  it('gives up on a stalled transfer after the idle timeout instead of hanging, and resumes it on the next try', async () => {
    const { env } = freshHome();
    const unet = file(ROOT_FILES, 'unet/model.onnx');
    hub.stallAfter.set('unet/model.onnx', 5000);
    const stalled = await pullModel(ROOT, { env, idleTimeoutMs: 300, retries: 0 }).catch((e) => e);
    expect(stalled).toMatchObject({ code: 'network', message: expect.stringMatching(/no data from http:\/\/127\.0\.0\.1:\d+ for 300 ms/) });
    const te = file(ROOT_FILES, 'vae_decoder/model.onnx'); // not reached by the first pull
    hub.stallAfter.set('vae_decoder/model.onnx', 3000); // within the next pull: retried from where it stopped
    const result = await pullModel(ROOT, { env, idleTimeoutMs: 300, ...fast });
    const ranges = (f: HubFile) => hub.hits.filter((h) => h.server === 'cdn' && h.url.includes(sha256(f.content))).map((h) => h.range);
    expect(ranges(unet)).toEqual([undefined, `bytes=5000-${unet.content.length - 1}`]);
    expect(ranges(te)).toEqual([undefined, `bytes=3000-${te.content.length - 1}`]);
    for (const f of [unet, te]) expect(sha256(await readFile(join(result.snapshot, f.path)))).toBe(sha256(f.content));
  });

  it('lets one of two concurrent pulls into one cache write each blob; the other links it', async () => {
    const { cacheDir, env } = freshHome();
    hub.dropAfter.set('unet/model.onnx', 2000); // slow the writer down with a retry
    const [a, b] = await Promise.all([pullModel(ROOT, { env, ...fast }), pullModel(ROOT, { env, ...fast })]);
    expect(a.snapshot).toBe(b.snapshot);
    const downloads = [...a.files, ...b.files].filter((f) => f.downloaded).map((f) => f.etag);
    expect(downloads.sort()).toEqual([...new Set(a.files.map((f) => f.etag))].sort()); // every blob written once
    const unet = file(ROOT_FILES, 'unet/model.onnx');
    const fetched = hub.hits.filter((h) => h.server === 'cdn' && h.url.includes(sha256(unet.content)));
    expect(fetched.map((h) => h.range)).toEqual([undefined, `bytes=2000-${unet.content.length - 1}`]);
    for (const f of await filesUnder(a.snapshot))
      expect(sha256(await readFile(join(a.snapshot, f))), f).toBe(sha256(file(ROOT_FILES, f).content));
    expect(await readdir(join(cacheDir, '.locks', `models--${ROOT.replace('/', '--')}`))).toEqual([]);
  });

  it('takes over the lock of a process that died while it held it', async () => {
    const { cacheDir, env } = freshHome();
    const locks = join(cacheDir, '.locks', `models--${ROOT.replace('/', '--')}`);
    await mkdir(locks, { recursive: true });
    const etag = sha256(file(ROOT_FILES, 'unet/model.onnx').content);
    await writeFile(join(locks, `${etag}.easel.lock`), JSON.stringify({ host: hostname(), pid: 2 ** 22 + 17 }));
    const result = await pullModel(ROOT, { env, ...fast });
    expect(result.files.find((f) => f.path === 'unet/model.onnx')!.downloaded).toBe(true);
    expect(await readdir(locks)).toEqual([]);
  });

  it('refuses bytes whose sha256 does not match and leaves nothing behind', async () => {
    const { cacheDir, env } = freshHome();
    hub.corrupt.add('unet/model.onnx');
    const err = await pullModel(ROOT, { env, ...fast }).catch((e) => e);
    expect(err).toBeInstanceOf(HubError);
    expect(err.code).toBe('checksum_mismatch');
    expect(err.message).toMatch(/unet\/model\.onnx: sha256 [0-9a-f]{64} is not [0-9a-f]{64}; download discarded/);
    const storage = storageOf(cacheDir, ROOT);
    expect(
      (await readdir(join(storage, 'blobs'))).filter((b) => b.startsWith(sha256(file(ROOT_FILES, 'unet/model.onnx').content))),
    ).toEqual([]);
    expect(existsSync(join(storage, 'refs', 'main'))).toBe(false);
    expect((await listModels({ env, shippedDir: join(tmp, 'none') })).length).toBe(0);
  });

  it('says what is wrong: missing repo or revision, gated, private, offline, unreachable, not an ONNX export', async () => {
    const { env } = freshHome();
    const fails = (ref: string, more: object = {}) => pullModel(ref, { env, ...fast, ...more }).catch((e: HubError) => e);
    expect(await fails('nobody/nothing')).toMatchObject({
      code: 'not_found',
      message: expect.stringMatching(/repository nobody\/nothing not found.*set HF_TOKEN/),
    });
    expect(await fails(`${ROOT}@v9`)).toMatchObject({
      code: 'not_found',
      message: expect.stringMatching(/revision "v9" not found in tiny-org\/tiny-sd/),
    });
    expect(await fails('tiny-org/gated')).toMatchObject({
      code: 'forbidden',
      message: expect.stringMatching(/tiny-org\/gated is gated: accept its terms at http/),
    });
    expect((await pullModel('tiny-org/gated', { env, token: 'hf_ok', ...fast })).sha).toBe(shaOf('tiny-org/gated'));
    expect(await fails('tiny-org/private')).toMatchObject({ message: expect.stringMatching(/If it is private, set HF_TOKEN/) });
    expect(await fails('tiny-org/private', { token: 'hf_no' })).toBeInstanceOf(HubError);
    expect(await fails('tiny-org/pytorch-only')).toMatchObject({
      code: 'not_a_pipeline',
      message: expect.stringMatching(/no unet ONNX file/),
    });

    hub.reset();
    expect(await fails(ROOT, { env: { ...env, HF_HUB_OFFLINE: '1' } })).toMatchObject({ code: 'offline' });
    expect(hub.hits).toEqual([]);
    expect(await fails(ROOT, { endpoint: 'http://127.0.0.1:9', retries: 1, retryDelayMs: 1 })).toMatchObject({
      code: 'network',
      message: expect.stringMatching(/cannot reach http:\/\/127\.0\.0\.1:9/),
    });
  });
});

/** A snapshot laid out by the cache rules alone, as Python's huggingface_hub writes one: no Easel code involved. */
async function handMadeSnapshot(cacheDir: string, repo: string, files: HubFile[], ref = 'main'): Promise<string> {
  const storage = storageOf(cacheDir, repo);
  const sha = commitOf(files);
  for (const f of files) {
    const blob = join(storage, 'blobs', etagOf(f));
    const pointer = join(storage, 'snapshots', sha, f.path);
    await mkdir(dirname(blob), { recursive: true });
    await mkdir(dirname(pointer), { recursive: true });
    await writeFile(blob, f.content);
    await symlink(relative(dirname(pointer), blob), pointer);
  }
  await mkdir(join(storage, 'refs'), { recursive: true });
  await writeFile(join(storage, 'refs', ref), sha);
  return join(storage, 'snapshots', sha);
}

describe('registry', () => {
  it('resolves and lists a snapshot that huggingface_hub laid out, and one in the old Easel layout', async () => {
    const { home, cacheDir, env } = freshHome();
    const tiny = ROOT_FILES.filter((f) => !/fp16|safetensors|ckpt/.test(f.path));
    const snapshot = await handMadeSnapshot(cacheDir, 'acme/hand', tiny, 'v1');
    expect(resolveCachedModel('acme/hand@v1', {}, env).path).toBe(snapshot);
    expect(resolveCachedModel(`acme/hand@${commitOf(tiny)}`, {}, env).path).toBe(snapshot);
    expect(readModelInfo(snapshot).capabilities).toEqual(readModelInfo(TINY).capabilities);
    expect(() => resolveCachedModel('acme/hand', {}, env)).toThrow(
      /acme\/hand@main is not in the Hugging Face cache .*run: easel models pull acme\/hand$/,
    );

    const legacySha = 'c'.repeat(40);
    const legacy = join(home, 'easel', 'acme--old');
    await cp(TINY, join(legacy, legacySha), { recursive: true });
    await mkdir(join(legacy, 'refs'));
    await writeFile(join(legacy, 'refs', 'main'), `${legacySha}\n`);
    const warned: string[] = [];
    expect(await resolveModelPath('acme/old', { env, warn: (l) => warned.push(l) })).toBe(join(legacy, legacySha));
    expect(warned).toEqual([expect.stringMatching(/acme\/old was loaded from the old cache .*easel models pull acme\/old/)]);

    await pullModel(ROOT, { env, variant: 'fp16', ...fast });
    await pullModel(ROOT, { env, ...fast });
    const listed = await listModels({ env, shippedDir: join(tmp, 'none') });
    expect(listed.map((m) => [m.name, m.source, m.revision, m.variants])).toEqual([
      ['acme/hand@v1', 'cached', 'v1', []],
      [ROOT, 'cached', 'main', ['fp16']],
      ['acme/old', 'legacy', 'main', undefined],
    ]);
    const blobSizes = new Map(tiny.map((f) => [etagOf(f), f.content.length]));
    expect(listed[0].sizeBytes).toBe([...blobSizes.values()].reduce((a, b) => a + b, 0));
  });

  it('pulls on demand unless offline, when the error says how to pull', async () => {
    const { env } = freshHome();
    const offline = { ...env, HF_HUB_OFFLINE: '1' };
    await expect(resolveModelPath(SUB, { env: offline, pull: true })).rejects.toThrow(
      /tiny-org\/tiny-sd-onnx@main is not in the Hugging Face cache .*run: easel models pull tiny-org\/tiny-sd-onnx \(HF_HUB_OFFLINE is set/,
    );
    expect(hub.hits).toEqual([]);
    await expect(resolveModelPath(SUB, { env })).rejects.toThrow(/easel models pull tiny-org\/tiny-sd-onnx/);
    const path = await resolveModelPath(SUB, { env, pull: true });
    expect(path).toMatch(/models--tiny-org--tiny-sd-onnx\/snapshots\/[0-9a-f]{40}\/onnx$/);
    hub.reset();
    expect(await resolveModelPath(SUB, { env: offline })).toBe(path);
    expect(await resolveModelPath(TINY, { env: offline })).toBe(TINY);
    // A relative folder with the shape of org/name is a folder (the forks pool lets a test change its directory).
    const cwd = process.cwd();
    try {
      process.chdir(join(TINY, '..', '..'));
      expect(await resolveModelPath('fixtures/tiny-sd', { env: offline })).toBe(TINY);
    } finally {
      process.chdir(cwd);
    }
    expect(hub.hits).toEqual([]);
  });

  it('removes a snapshot as delete-cache does: its refs and the blobs no other snapshot links', async () => {
    const { cacheDir, env } = freshHome();
    const first = await pullModel(ROOT, { env, ...fast });
    const repo = hub.repos.get(ROOT)!;
    const saved = { files: repo.files, sha: repo.sha };
    try {
      repo.files = repo.files.map((f) => (f.path === 'README.md' ? { ...f, content: Buffer.from('# tiny-sd, second commit\n') } : f));
      repo.sha = commitOf(repo.files);
      const second = await pullModel(ROOT, { env, ...fast });
      expect(second.files.filter((f) => f.downloaded).map((f) => f.path)).toEqual(['README.md']);
      const blobs = join(storageOf(cacheDir, ROOT), 'blobs');
      const before = (await readdir(blobs)).length;

      const removed = await removeModel(`${ROOT}@${first.sha}`, { env });
      const shared = new Set(second.files.filter((f) => f.path !== 'README.md').map((f) => f.etag));
      expect(removed).toMatchObject({ removed: [first.sha], keptBlobs: shared.size });
      expect(existsSync(first.snapshot)).toBe(false);
      expect((await readdir(blobs)).length).toBe(before - 1);
      for (const f of await filesUnder(second.snapshot)) expect(existsSync(await realpath(join(second.snapshot, f)))).toBe(true);
      expect(resolveCachedModel(ROOT, {}, env).sha).toBe(second.sha);

      await removeModel(ROOT, { env });
      expect(existsSync(storageOf(cacheDir, ROOT))).toBe(false);
      await expect(removeModel(ROOT, { env })).rejects.toThrow(/not in the Hugging Face cache/);
    } finally {
      Object.assign(repo, saved);
    }
  });

  it('lets a config model entry name a repository, resolved in the cache at start', async () => {
    const { cacheDir, env } = freshHome();
    await pullModel(SUB, { env, ...fast });
    const dir = await mkdtemp(join(tmp, 'cfg-'));
    const write = async (models: unknown) => {
      await writeFile(join(dir, 'easel.json'), JSON.stringify({ models }));
      return join(dir, 'easel.json');
    };
    const saved = process.env.HF_HUB_CACHE;
    process.env.HF_HUB_CACHE = cacheDir;
    try {
      const config = loadConfig({ config: await write([{ name: 'hub', repo: SUB }]) }, {});
      expect(config.models[0]).toMatchObject({ name: 'hub', repo: SUB, path: resolveCachedModel(SUB, {}, env).path });
      const uncached = () => loadConfig({ config: join(dir, 'easel.json') }, {});
      await write([{ name: 'hub', repo: 'acme/missing@v2' }]);
      expect(uncached).toThrow(ConfigError);
      expect(uncached).toThrow(/models\[0\]\.repo: .*easel models pull acme\/missing@v2/s);
      await write([{ name: 'hub', repo: SUB, path: TINY }]);
      expect(uncached).toThrow(/exactly one of "path".*or "repo"/);
    } finally {
      if (saved === undefined) delete process.env.HF_HUB_CACHE;
      else process.env.HF_HUB_CACHE = saved;
    }
  });
});

describe('models CLI', () => {
  function program(out: string[], env: NodeJS.ProcessEnv): Command {
    const p = new Command('easel').exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    const progress = { write: (s: string) => void out.push(s), isTTY: false };
    registerModelsCommands(p, { out: (s) => void out.push(s), progress, env });
    return p;
  }

  it('pull, list and rm', async () => {
    const { env } = freshHome();
    const out: string[] = [];
    await program(out, env).parseAsync(['models', 'pull', SUB], { from: 'user' });
    expect(out.join('')).toMatch(/downloading onnx\/unet\/model\.onnx \(\d+ kB\)\n/);
    expect(out.join('')).toMatch(
      /pulled tiny-org\/tiny-sd-onnx@main \([0-9a-f]{12}\): \d+ of \d+ files downloaded .*, 2 not needed for ONNX skipped\n.*\/onnx\n$/,
    );

    await program([], env).parseAsync(['models', 'pull', `${ROOT}@${shaOf(ROOT)}`], { from: 'user' });
    const listed: string[] = [];
    await program(listed, env).parseAsync(['models', 'list'], { from: 'user' });
    expect(listed.join('')).toMatch(new RegExp(`\n${ROOT}@${shaOf(ROOT)} +cached +${shaOf(ROOT).slice(0, 12)} `));
    const lines = listed.join('').trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+SOURCE\s+REVISION\s+SIZE\s+VARIANTS\s+PATH$/);
    expect(lines.some((l) => l.startsWith(SUB) && / cached +main [0-9a-f]{12} +\d+ kB +- +\S+\/onnx$/.test(l))).toBe(true);

    const removed: string[] = [];
    await program(removed, env).parseAsync(['models', 'rm', SUB], { from: 'user' });
    expect(removed.join('')).toMatch(/^removed tiny-org\/tiny-sd-onnx: 1 snapshot\(s\), \d+ kB freed\n$/);

    const failed = await program([], env)
      .parseAsync(['models', 'pull', 'nobody/nothing'], { from: 'user' })
      .catch((e) => e);
    expect(failed).toBeInstanceOf(CommanderError);
    expect(failed.exitCode).toBe(1);
    expect(failed.message).toMatch(/error: repository nobody\/nothing not found/);
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
