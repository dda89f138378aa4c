// `easel models pull`: fetches the files a diffusers ONNX pipeline needs into the standard Hugging Face cache
// (models--org--name/{blobs,snapshots,refs}), so diffusers and optimum see what Easel pulled and the other way round.
//
// @huggingface/hub does the talking: modelInfo (revision -> commit), listFiles (the tree with sizes, git and LFS
// oids) and downloadFile (the file as a ranged blob), all through our fetch below, which adds HF_TOKEN (only towards
// the hub's own origin), HF_ENDPOINT, the idle timeout and the X-Error-Code messages. What the package lacks is kept
// here: its downloadFileToCacheDir truncates a partial blob instead of resuming it, checks no hash and reports no
// progress, and snapshotDownload fetches every file (PyTorch weights included). So this module resumes
// blobs/<etag>.incomplete with a Range request, checks the sha256 (LFS) or git blob sha1 and size, and links the
// snapshot the way huggingface_hub does (relative symlinks, one blob per etag).
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, open, readlink, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { downloadFile, listFiles, modelInfo } from '@huggingface/hub';
import { lockBlob, sleep } from './blob-lock.js';
import { HubError, hubCacheDir, isOffline, type PipelineSpec, parseRepoRef, pipelineRoot, repoStorageDir, SHA_RE } from './cache.js';

export { HubError, type HubErrorCode, parseRepoRef, type RepoRef } from './cache.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';
const USER_AGENT = 'easel/0.1 (model pull)';

export interface ProgressEvent {
  /** Path inside the repository, e.g. "unet/model.onnx". */
  file: string;
  /** Bytes of this file on disk so far (resumed bytes included). */
  received: number;
  /** Expected size, when known. */
  total: number | undefined;
}
export type ProgressCallback = (event: ProgressEvent) => void;

export interface HubSettings {
  endpoint: string;
  token: string | undefined;
  /** The standard hub cache (HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub). */
  cacheDir: string;
  offline: boolean;
}

/** Settings from the environment, as huggingface_hub reads them: HF_ENDPOINT, HF_TOKEN, the cache, HF_HUB_OFFLINE. */
export function hubSettings(env: NodeJS.ProcessEnv = process.env): HubSettings {
  return {
    endpoint: (env.HF_ENDPOINT?.trim() || DEFAULT_ENDPOINT).replace(/\/+$/, ''),
    token: env.HF_TOKEN?.trim() || env.HUGGING_FACE_HUB_TOKEN?.trim() || undefined,
    cacheDir: hubCacheDir(env),
    offline: isOffline(env),
  };
}

// --- which files: what an ONNX pipeline reads, in the repository root or a subfolder (onnx/, onnx/fp16/)

const PREFIX = '^(?:[^/]+/){0,2}';
const SMALL_FILES = [
  new RegExp(`${PREFIX}model_index\\.json$`),
  new RegExp(`${PREFIX}(easel|palette)\\.json$`),
  /^(README|MODEL)\.md$/,
  new RegExp(`${PREFIX}[^/]+/config\\.json$`),
  new RegExp(`${PREFIX}scheduler/[^/]+\\.(json|txt)$`),
  new RegExp(`${PREFIX}tokenizer[^/]*/[^/]+\\.(json|txt|model)$`),
];
const ONNX_FILE = new RegExp(`${PREFIX}[^/]+/model(?:[._][A-Za-z0-9-]+)?\\.onnx$`);

/** Config, scheduler, tokenizer and Easel files: small, and read from the nearest folder that has them. */
export function isPipelineFile(path: string): boolean {
  return SMALL_FILES.some((re) => re.test(path));
}

/** The ONNX file a part folder contributes for `variant` (see findOnnxFile, which loads it), or undefined. */
function pickOnnx(names: string[], variant: string | undefined): string | undefined {
  if (variant) {
    const named = [`model.${variant}.onnx`, `model_${variant}.onnx`].find((n) => names.includes(n));
    if (named) return named;
  }
  if (names.includes('model.onnx')) return 'model.onnx';
  return !variant && names.length === 1 ? names[0] : undefined;
}

/**
 * The repository files to fetch: the small pipeline files plus, per part folder, one ONNX file (the variant's when
 * it has one) and its external data (<file>_data, <file>.data, weights.pb). With a variant that has its own folder
 * (…/fp16/unet/model.onnx) only that folder's parts; without one, such variant folders are left out. PyTorch, Flax
 * and safetensors weights are never fetched.
 */
export function selectPipelineFiles(paths: readonly string[], spec: PipelineSpec = {}): string[] {
  const inSub = (p: string) => spec.subfolder === undefined || p.startsWith(`${spec.subfolder}/`);
  const byDir = new Map<string, string[]>();
  for (const p of paths) {
    if (!ONNX_FILE.test(p) || !inSub(p)) continue;
    const dir = dirname(p);
    byDir.set(dir, [...(byDir.get(dir) ?? []), p.slice(dir.length + 1)]);
  }
  let dirs = [...byDir.keys()];
  const v = spec.variant;
  if (v && dirs.some((d) => d.split('/').slice(0, -1).includes(v))) dirs = dirs.filter((d) => d.split('/').slice(0, -1).includes(v));
  else dirs = dirs.filter((d) => !isVariantFolderOf(d, byDir));
  const wanted = new Set(paths.filter(isPipelineFile));
  for (const dir of dirs) {
    const file = pickOnnx(byDir.get(dir)!, v);
    if (!file) continue;
    for (const name of [file, `${file}_data`, `${file}.data`, 'weights.pb']) {
      if (paths.includes(`${dir}/${name}`)) wanted.add(`${dir}/${name}`);
    }
  }
  return paths.filter((p) => wanted.has(p));
}

/** a/fp16/unet when a/unet holds ONNX files too: a variant folder, fetched only when its variant is asked for. */
function isVariantFolderOf(dir: string, byDir: Map<string, string[]>): boolean {
  const segs = dir.split('/');
  if (segs.length < 2) return false;
  const plain = [...segs.slice(0, -2), segs.at(-1)!].join('/');
  return byDir.has(plain);
}

// --- the client: our fetch for @huggingface/hub

export interface PullOptions extends PipelineSpec {
  revision?: string;
  /** Defaults from hubSettings(env). */
  endpoint?: string;
  token?: string;
  cacheDir?: string;
  env?: NodeJS.ProcessEnv;
  onProgress?: ProgressCallback;
  /** Extra attempts after a transient failure (network error, 5xx, 429). Default 3. */
  retries?: number;
  /** First back-off delay; doubles each retry. Default 1000 ms. */
  retryDelayMs?: number;
  /** Abort a request when no bytes arrive for this long. Default 60 s. */
  idleTimeoutMs?: number;
  signal?: AbortSignal;
}

interface Client {
  endpoint: string;
  origin: string;
  token?: string;
  repo: string;
  revision: string;
  retries: number;
  retryDelayMs: number;
  idleTimeoutMs: number;
  signal?: AbortSignal;
  /** The HubError our fetch threw last: the package's blob stream passes on only its message. */
  lastError?: HubError;
  fetch: typeof fetch;
}

function makeClient(repo: string, revision: string, opts: PullOptions): Client {
  const s = hubSettings(opts.env);
  if (s.offline) {
    throw new HubError(`HF_HUB_OFFLINE is set: pulling ${repo} needs the network (unset it, or serve what is cached)`, 'offline');
  }
  const endpoint = (opts.endpoint ?? s.endpoint).replace(/\/+$/, '');
  if (!URL.canParse(endpoint)) throw new HubError(`HF_ENDPOINT "${endpoint}" is not a URL`, 'invalid_argument');
  const client: Client = {
    endpoint,
    origin: new URL(endpoint).origin,
    token: opts.token ?? s.token,
    repo,
    revision,
    retries: opts.retries ?? 3,
    retryDelayMs: opts.retryDelayMs ?? 1000,
    idleTimeoutMs: opts.idleTimeoutMs ?? 60_000,
    signal: opts.signal,
    fetch: (input, init) => hubFetch(client, input, init),
  };
  return client;
}

function describe(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  const cause = e?.cause?.code ?? e?.cause?.message;
  return cause ? `${e.message} (${cause})` : String(e?.message ?? err);
}

/** The repository path a resolve URL asks for, or undefined for API calls. */
function fileOf(url: URL, client: Client): string | undefined {
  const prefix = `${new URL(client.endpoint).pathname.replace(/\/$/, '')}/${client.repo}/resolve/`;
  if (!url.pathname.startsWith(prefix)) return undefined;
  return url.pathname.slice(prefix.length).split('/').slice(1).map(decodeURIComponent).join('/');
}

/**
 * fetch for @huggingface/hub: follows redirects itself so the token goes to the hub's origin only (LFS and Xet files
 * redirect to a CDN with a signed URL), times out a request that stops sending, refuses a resumed range answered with
 * the whole file, and turns an error answer into a HubError that says what to do.
 */
async function hubFetch(client: Client, input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
  const first = new URL(input instanceof Request ? input.url : String(input));
  const headers = new Headers(init.headers);
  headers.set('user-agent', USER_AGENT);
  headers.delete('authorization');
  const range = headers.get('range');
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let finished = false;
  const arm = () => {
    clearTimeout(timer);
    if (finished) return;
    timer = setTimeout(() => {
      client.lastError = new HubError(`no data from ${first.origin} for ${client.idleTimeoutMs} ms`, 'network', undefined, true);
      controller.abort(client.lastError);
    }, client.idleTimeoutMs);
    timer.unref();
  };
  const onAbort = () => controller.abort(client.signal?.reason);
  client.signal?.addEventListener('abort', onAbort, { once: true });
  const done = () => {
    finished = true;
    clearTimeout(timer);
    client.signal?.removeEventListener('abort', onAbort);
  };
  try {
    arm();
    let url = first;
    for (let hop = 0; ; hop++) {
      if (hop > 10) throw new HubError(`too many redirects fetching ${first}`, 'bad_response');
      if (client.token && url.origin === client.origin) headers.set('authorization', `Bearer ${client.token}`);
      else headers.delete('authorization');
      let res: Response;
      try {
        res = await fetch(url, { method: init.method, body: init.body, headers, redirect: 'manual', signal: controller.signal });
      } catch (err) {
        if (client.signal?.aborted) throw client.signal.reason;
        throw client.lastError ?? new HubError(`cannot reach ${url.origin}: ${describe(err)}`, 'network', undefined, true);
      }
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        await res.body?.cancel();
        url = new URL(location, url);
        continue;
      }
      if (!res.ok) throw await errorFor(res, client, fileOf(first, client));
      if (range && !range.startsWith('bytes=0-') && res.status === 200) {
        await res.body?.cancel();
        throw new HubError(`${url.origin} ignored the range request; starting over`, 'network', 200, true);
      }
      return withIdleTimeout(res, arm, done);
    }
  } catch (err) {
    done();
    if (err instanceof HubError) client.lastError = err;
    throw err;
  }
}

/** The response with its body re-arming the idle timer on every chunk and clearing it at the end. */
function withIdleTimeout(res: Response, arm: () => void, done: () => void): Response {
  if (!res.body) {
    done();
    return res;
  }
  const body = res.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctl) {
        arm();
        ctl.enqueue(chunk);
      },
      flush: done,
    }),
  );
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
}

/** A hub error answer as a HubError with a message that says what to do (X-Error-Code as the hub sends it). */
async function errorFor(res: Response, client: Client, file: string | undefined): Promise<HubError> {
  const code = res.headers.get('x-error-code') ?? '';
  const serverMsg = res.headers.get('x-error-message') ?? (await res.text().catch(() => '')).slice(0, 200);
  const detail = serverMsg ? ` (server said: ${serverMsg.trim()})` : '';
  const { repo, revision, endpoint } = client;
  const what = file ?? 'the file listing';
  if (code === 'RevisionNotFound') return new HubError(`revision "${revision}" not found in ${repo}${detail}`, 'not_found', res.status);
  if (code === 'EntryNotFound') return new HubError(`${what} not found in ${repo}@${revision}${detail}`, 'not_found', res.status);
  if (code === 'GatedRepo') {
    return new HubError(
      `${repo} is gated: accept its terms at ${endpoint}/${repo} with the account whose token is in HF_TOKEN${detail}`,
      'forbidden',
      res.status,
    );
  }
  if (res.status === 404 && file !== undefined && code !== 'RepoNotFound') {
    return new HubError(`${what} missing from ${repo}@${revision} (HTTP 404)${detail}`, 'not_found', 404);
  }
  if (code === 'RepoNotFound' || res.status === 404) {
    const hint = client.token ? '' : ' If it is private, set HF_TOKEN.';
    return new HubError(`repository ${repo} not found at ${endpoint} (${what}: HTTP ${res.status}).${hint}`, 'not_found', res.status);
  }
  if (res.status === 401) {
    return client.token
      ? new HubError(`HF_TOKEN was rejected by ${endpoint} (401) while fetching ${what} of ${repo}${detail}`, 'unauthorized', 401)
      : new HubError(`${repo} needs authentication (401): set HF_TOKEN to a token that can read it${detail}`, 'unauthorized', 401);
  }
  if (res.status === 403) {
    return new HubError(`access to ${repo} denied (403) while fetching ${what}; check HF_TOKEN's permissions${detail}`, 'forbidden', 403);
  }
  const retryable = res.status === 408 || res.status === 429 || res.status >= 500;
  return new HubError(`${what} of ${repo}: HTTP ${res.status}${detail}`, retryable ? 'network' : 'bad_response', res.status, retryable);
}

/** Run `fn` with retries on transient HubErrors, doubling the delay each time. */
async function withRetries<T>(client: Client, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      client.lastError = undefined;
      return await fn();
    } catch (err) {
      const e = err instanceof HubError ? err : (client.lastError ?? err);
      if (client.signal?.aborted) throw client.signal.reason;
      if (!(e instanceof HubError)) throw new HubError(`${client.repo}: ${describe(e)}`, 'network');
      if (!e.retryable || attempt >= client.retries) throw e;
      await sleep(client.retryDelayMs * 2 ** attempt, client.signal);
    }
  }
}

// --- the listing and the blobs

interface RepoFile {
  path: string;
  size: number;
  /** The blob's name in the cache, as huggingface_hub names it: the LFS sha256, else the git blob sha1. */
  etag: string;
  lfs: boolean;
}

async function listing(client: Client): Promise<{ sha: string; files: RepoFile[] }> {
  const { repo, revision, endpoint: hubUrl } = client;
  const info = await withRetries(client, () =>
    modelInfo({ name: repo, revision, hubUrl, fetch: client.fetch, additionalFields: ['sha'] as const }),
  );
  const sha = (info as { sha?: unknown }).sha;
  if (typeof sha !== 'string' || !SHA_RE.test(sha)) throw new HubError(`${repo}@${revision}: the hub sent no commit sha`, 'bad_response');
  const files = await withRetries(client, async () => {
    const out: RepoFile[] = [];
    for await (const e of listFiles({ repo, revision: sha, recursive: true, hubUrl, fetch: client.fetch })) {
      if (e.type !== 'file') continue;
      const etag = (e.lfs?.oid ?? e.oid ?? '').toLowerCase();
      // The etag names the blob file: only a hex digest of the right length may become a path.
      if (!(e.lfs ? /^[0-9a-f]{64}$/ : SHA_RE).test(etag))
        throw new HubError(`${repo}: the listing gives ${e.path} no valid oid`, 'bad_response');
      out.push({ path: e.path, size: e.lfs?.size ?? e.size, etag, lfs: !!e.lfs });
    }
    return out;
  });
  return { sha, files };
}

/** A repository path safe to join under the snapshot (no absolute, parent or hidden segments). */
function safeRelativePath(path: string): boolean {
  if (path.length === 0 || path.startsWith('/') || path.includes('\\') || path.includes('\0')) return false;
  return path.split('/').every((seg) => seg.length > 0 && seg !== '.' && seg !== '..' && !seg.startsWith('.'));
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The hash the etag is: sha256 of the bytes (LFS) or git's sha1 of "blob <size>\0" + bytes. */
function hasherFor(file: RepoFile): Hash {
  if (file.lfs) return createHash('sha256');
  return createHash('sha1').update(`blob ${file.size}\0`);
}

/**
 * One blob into blobs/<etag> through blobs/<etag>.incomplete (the name huggingface_hub resumes too): a partial file
 * is continued with a ranged read of the package's blob, then size and hash are checked before the rename.
 */
async function downloadBlob(client: Client, sha: string, file: RepoFile, blobPath: string, onProgress?: ProgressCallback): Promise<void> {
  const part = `${blobPath}.incomplete`;
  await mkdir(dirname(blobPath), { recursive: true });
  let have = (await sizeOf(part)) ?? 0;
  let hash = hasherFor(file);
  if (have > file.size) {
    await rm(part);
    have = 0;
  }
  for await (const chunk of have > 0 ? createReadStream(part) : []) hash.update(chunk as Buffer);

  const url = `${client.endpoint}/${client.repo}/resolve/${sha}/${file.path.split('/').map(encodeURIComponent).join('/')}`;
  const blob = await downloadFile({
    repo: client.repo,
    path: file.path,
    revision: sha,
    hubUrl: client.endpoint,
    fetch: client.fetch,
    xet: false,
    downloadInfo: { etag: file.etag, size: file.size, url },
  });
  if (!blob) throw new HubError(`${file.path} not found in ${client.repo}@${sha}`, 'not_found');

  await withRetries(client, async () => {
    if (have === file.size) {
      if (have === 0) await writeFile(part, '');
      return;
    }
    const fh = await open(part, have > 0 ? 'a' : 'w');
    try {
      onProgress?.({ file: file.path, received: have, total: file.size });
      for await (const chunk of (have > 0 ? blob.slice(have) : blob).stream() as unknown as AsyncIterable<Uint8Array>) {
        await fh.write(chunk);
        hash.update(chunk);
        have += chunk.length;
        if (have > file.size) break;
        onProgress?.({ file: file.path, received: have, total: file.size });
      }
    } catch (err) {
      const e = client.lastError ?? err;
      if (e instanceof HubError && e.status === 200) {
        // The server answered the resume with the whole file: start this blob over.
        hash = hasherFor(file);
        have = 0;
      }
      if (e instanceof HubError) throw e;
      throw new HubError(`download of ${file.path} interrupted at ${have} bytes: ${describe(e)}`, 'network', undefined, true);
    } finally {
      await fh.close();
    }
    if (have < file.size) {
      throw new HubError(`download of ${file.path} ended early (${have} of ${file.size} bytes)`, 'network', undefined, true);
    }
  });

  const got = hash.digest('hex');
  if (have !== file.size || got !== file.etag) {
    await rm(part, { force: true });
    const why =
      have !== file.size
        ? `got ${have} bytes, the hub lists ${file.size}`
        : `${file.lfs ? 'sha256' : 'git sha1'} ${got} is not ${file.etag}`;
    throw new HubError(`${file.path}: ${why}; download discarded`, 'checksum_mismatch');
  }
  await rename(part, blobPath);
}

/** snapshots/<sha>/<path> -> ../../blobs/<etag>, relative like huggingface_hub's (replacing anything else there). */
async function linkSnapshotFile(pointer: string, blobPath: string): Promise<void> {
  await mkdir(dirname(pointer), { recursive: true });
  const target = relative(dirname(pointer), blobPath);
  const current = await readlink(pointer).catch(() => undefined);
  if (current === target) return;
  if (await lstat(pointer).catch(() => undefined)) await rm(pointer, { force: true });
  await symlink(target, pointer);
}

export interface PulledFile {
  path: string;
  size: number;
  etag: string;
  /** false when the blob was already in the cache. */
  downloaded: boolean;
}
export interface PullResult {
  repo: string;
  revision: string;
  sha: string;
  /** <cache>/models--org--name/snapshots/<sha> */
  snapshot: string;
  /** The pipeline folder inside the snapshot (the snapshot itself, onnx/, or a variant folder). */
  path: string;
  files: PulledFile[];
  skipped: string[];
}

/**
 * Download a diffusers ONNX pipeline into the standard cache and record refs/<revision> once every file is verified.
 * Blobs already present (pulled before, by Easel or by Python) are linked, not fetched again.
 */
export async function pullModel(ref: string, opts: PullOptions = {}): Promise<PullResult> {
  const { repo, revision } = parseRepoRef(ref, opts.revision);
  const client = makeClient(repo, revision, opts);
  const { sha, files: all } = await listing(client);
  const spec = { variant: opts.variant, subfolder: opts.subfolder };
  const picked = new Set(selectPipelineFiles(all.map((f) => f.path).filter(safeRelativePath), spec));
  const wanted = all.filter((f) => picked.has(f.path));
  if (!wanted.some((f) => f.path.endsWith('model_index.json'))) {
    throw new HubError(`${repo}@${revision} has no model_index.json: not a diffusers pipeline`, 'not_a_pipeline');
  }
  if (!wanted.some((f) => /(^|\/)unet\/model[^/]*\.onnx$/.test(f.path))) {
    const variant = opts.variant ? ` for variant ${opts.variant}` : '';
    throw new HubError(
      `${repo}@${revision} has no unet ONNX file${variant}${opts.subfolder ? ` in ${opts.subfolder}/` : ''}: not an ONNX export (look for an "-onnx" repository or export it with optimum-cli)`,
      'not_a_pipeline',
    );
  }

  const storage = repoStorageDir(opts.cacheDir ?? hubSettings(opts.env).cacheDir, repo);
  const snapshot = join(storage, 'snapshots', sha);
  const files: PulledFile[] = [];
  for (const f of wanted) {
    const blobPath = join(storage, 'blobs', f.etag);
    let downloaded = false;
    if ((await sizeOf(blobPath)) !== f.size) {
      const lock = await lockBlob(join(dirname(storage), '.locks', basename(storage), `${f.etag}.easel.lock`), opts.signal);
      try {
        // Another process may have written it while this one waited for the lock.
        if ((await sizeOf(blobPath)) !== f.size) {
          const onProgress = (e: ProgressEvent) => {
            lock.touch();
            opts.onProgress?.(e);
          };
          await downloadBlob(client, sha, f, blobPath, onProgress);
          downloaded = true;
        }
      } finally {
        await lock.release();
      }
    }
    if (!downloaded) opts.onProgress?.({ file: f.path, received: f.size, total: f.size });
    await linkSnapshotFile(join(snapshot, ...f.path.split('/')), blobPath);
    files.push({ path: f.path, size: f.size, etag: f.etag, downloaded });
  }
  // refs/ even for a pull by commit sha, which names no ref: scanCacheDir skips a repository without the folder.
  await mkdir(join(storage, 'refs'), { recursive: true });
  if (revision !== sha) {
    const refFile = join(storage, 'refs', ...revision.split('/'));
    await mkdir(dirname(refFile), { recursive: true });
    await writeFile(`${refFile}.${process.pid}.tmp`, sha);
    await rename(`${refFile}.${process.pid}.tmp`, refFile);
  }
  const skipped = all.map((f) => f.path).filter((p) => !picked.has(p));
  return { repo, revision, sha, snapshot, path: pipelineRoot(snapshot, spec, `${repo}@${revision}`), files, skipped };
}
