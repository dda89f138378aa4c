// The hub cache end to end through the real `easel` CLI: pull from a local hub into a temporary HF_HUB_CACHE, then
// `easel serve --model org/name` with HF_HUB_OFFLINE=1 answers the official openai client without one hub request,
// a snapshot laid out by hand as huggingface_hub writes it generates too, and an uncached model stops the start.
import { spawn } from 'node:child_process';
import { existsSync, lstatSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import OpenAI from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { easel } from '../helpers/cli.js';
import { commitOf, filesOf, fixtureRepos, gitOid, type LocalHub, sha256, startLocalHub, withExternalData } from '../helpers/hub-server.js';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
const TINY = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');
const REPO = 'tiny-org/tiny-sd-onnx';
const EXTERNAL = 'tiny-org/tiny-sd-external';

let hub: LocalHub;
let tmp: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  const unet = withExternalData(filesOf(TINY).find((f) => f.path === 'unet/model.onnx')!.content, 'model.onnx_data');
  expect(unet.moved).toBeGreaterThan(0);
  const external = [
    ...filesOf(TINY).filter((f) => f.path !== 'unet/model.onnx'),
    { path: 'unet/model.onnx', content: unet.model },
    { path: 'unet/model.onnx_data', content: unet.data },
  ];
  hub = await startLocalHub({ [REPO]: { files: fixtureRepos(TINY).subfolder }, [EXTERNAL]: { files: external } });
  tmp = await mkdtemp(join(tmpdir(), 'easel-hub-e2e-'));
  env = { HF_HOME: join(tmp, 'hf'), HF_HUB_CACHE: join(tmp, 'cache'), HF_ENDPOINT: hub.endpoint, HF_TOKEN: '' };
});
afterAll(async () => {
  await hub?.close();
  await rm(tmp, { recursive: true, force: true });
});

/** `easel serve ARGS --port 0`; resolves with its URL once listening, or rejects with its stderr if it exits first. */
function serve(args: string[], extra: NodeJS.ProcessEnv) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EASEL_') && !k.startsWith('HF_')));
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', ...args, '--port', '0', '--data-dir', join(tmp, 'data')], {
    env: { ...clean, ...extra, EASEL_THREADS: '1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  const url = new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /easel listening on (http:\/\/\S+)/.exec(stderr);
      if (m) resolve(m[1]);
    });
    void exited.then((code) => reject(new Error(`exited ${code}: ${stderr}`)));
  });
  return {
    url,
    exited,
    stderr: () => stderr,
    stop: () => {
      child.kill('SIGKILL');
      return exited;
    },
  };
}

describe('models from the Hugging Face cache', () => {
  it('pulls into HF_HUB_CACHE, then serves it offline through the openai client', async () => {
    const pulled = await easel(['models', 'pull', REPO], env);
    expect(pulled.stderr).toContain('done onnx/unet/model.onnx');
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(pulled.stdout).toMatch(/models--tiny-org--tiny-sd-onnx\/snapshots\/[0-9a-f]{40}\/onnx\n$/);

    const listed = await easel(['models', 'list'], { ...env, HF_HUB_OFFLINE: '1' });
    expect(listed.stdout).toMatch(/tiny-org\/tiny-sd-onnx +cached +main [0-9a-f]{12}/);

    hub.reset();
    const server = serve(['--model', REPO], { ...env, HF_HUB_OFFLINE: '1' });
    try {
      const client = new OpenAI({ apiKey: 'sk-local', baseURL: `${await server.url}/v1`, maxRetries: 0 });
      const res = await client.images.generate({ model: 'gpt-image-1', prompt: 'a red circle', size: '1024x1024', quality: 'low' });
      const png = Buffer.from(res.data![0].b64_json!, 'base64');
      expect((await sharp(png).metadata()).width).toBe(1024);
      expect((await client.models.list()).data.map((m) => m.id)).toContain('easel-default');
    } finally {
      await server.stop();
    }
    expect(hub.hits).toEqual([]);
  });

  it('stops at start, naming the pull command, when an offline model is not cached', async () => {
    const server = serve(['--model', 'acme/not-cached'], { ...env, HF_HUB_OFFLINE: '1' });
    await expect(server.url).rejects.toThrow(/exited 1/);
    expect(server.stderr()).toMatch(/acme\/not-cached@main is not in the Hugging Face cache .*run: easel models pull acme\/not-cached/);
    expect(hub.hits).toEqual([]);
  });

  it('generates from a snapshot laid out by hand as huggingface_hub writes one', async () => {
    const files = fixtureRepos(TINY).root.filter((f) => !/fp16|safetensors|ckpt/.test(f.path));
    const storage = join(env.HF_HUB_CACHE!, 'models--acme--by-hand');
    const sha = commitOf(files);
    for (const f of files) {
      const blob = join(storage, 'blobs', f.path.endsWith('.onnx') ? sha256(f.content) : gitOid(f.content));
      const pointer = join(storage, 'snapshots', sha, f.path);
      await mkdir(dirname(blob), { recursive: true });
      await mkdir(dirname(pointer), { recursive: true });
      await writeFile(blob, f.content);
      await symlink(relative(dirname(pointer), blob), pointer);
    }
    await mkdir(join(storage, 'refs'));
    await writeFile(join(storage, 'refs', 'main'), sha);

    const out = join(tmp, 'by-hand.png');
    const run = await easel(['generate', 'a blue square', '-m', 'acme/by-hand', '--steps', '2', '-o', out], {
      ...env,
      HF_HUB_OFFLINE: '1',
    });
    expect(run.code, run.stderr).toBe(0);
    expect(existsSync(out)).toBe(true);
  });

  it('pulls on demand for generate -m, and loads a UNet whose weights are in model.onnx_data behind the snapshot links', async () => {
    const out = join(tmp, 'external.png');
    const run = await easel(['generate', 'a green ring', '-m', EXTERNAL, '--steps', '2', '-o', out], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('done unet/model.onnx_data');
    expect(existsSync(out)).toBe(true);
    const snapshot = join(env.HF_HUB_CACHE!, 'models--tiny-org--tiny-sd-external', 'snapshots', hub.repos.get(EXTERNAL)!.sha);
    expect(lstatSync(join(snapshot, 'unet', 'model.onnx_data')).isSymbolicLink()).toBe(true);
  });
});
