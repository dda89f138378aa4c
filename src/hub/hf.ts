// Hugging Face hub client for `easel models pull`: downloads the files a diffusers ONNX pipeline needs,
// resuming partial files, verifying sha256/size, and storing them as <cache>/<org>--<name>/<sha>/.
//
// Hub endpoints used (the same ones huggingface_hub's model_info / hf_hub_download call):
//   GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=true -> {sha, siblings: [{rfilename, size, lfs?}]}
//   GET {endpoint}/{repo}/resolve/{sha}/{path}                        -> file bytes, often via a redirect (LFS/CDN)
// Error codes come in the X-Error-Code header (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo).
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

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

export type HubErrorCode =
  | 'invalid_argument'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'checksum_mismatch'
  | 'bad_response'
  | 'network'
  | 'not_a_pipeline';

/** A failure with a message meant for the person at the terminal. */
export class HubError extends Error {
  constructor(
    message: string,
    readonly code: HubErrorCode,
    readonly status?: number,
    readonly retryable = false,
  ) {
    super(message);
    this.name = 'HubError';
  }
}

export interface HubSettings {
  endpoint: string;
  token: string | undefined;
  cacheDir: string;
}

/**
 * Settings from the environment, as huggingface_hub reads them: HF_ENDPOINT, HF_TOKEN, HF_HOME (default
 * $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface). Easel's cache is EASEL_MODELS_DIR or $HF_HOME/easel.
 */
export function hubSettings(env: NodeJS.ProcessEnv = process.env): HubSettings {
  const endpoint = (env.HF_ENDPOINT?.trim() || DEFAULT_ENDPOINT).replace(/\/+$/, '');
  const token = env.HF_TOKEN?.trim() || undefined;
  const hfHome = env.HF_HOME?.trim() || join(env.XDG_CACHE_HOME?.trim() || join(homedir(), '.cache'), 'huggingface');
  const cacheDir = env.EASEL_MODELS_DIR?.trim() || join(hfHome, 'easel');
  return { endpoint, token, cacheDir };
}

export interface RepoRef {
  repo: string;
  revision: string;
}

const REPO_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;
const REVISION_RE = /^[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;
const SHA_RE = /^[0-9a-f]{40}$/;

/** "org/name" or "org/name@revision" (revision defaults to "main"). */
export function parseRepoRef(ref: string, revision?: string): RepoRef {
  const at = ref.indexOf('@');
  const repo = at >= 0 ? ref.slice(0, at) : ref;
  const inline = at >= 0 ? ref.slice(at + 1) : undefined;
  if (inline !== undefined && revision !== undefined && inline !== revision) {
    throw new HubError(`conflicting revisions: "${ref}" and --revision ${revision}`, 'invalid_argument');
  }
  const rev = inline ?? revision ?? 'main';
  if (!REPO_RE.test(repo) || repo.includes('--') || repo.includes('..')) {
    throw new HubError(`"${repo}" is not a hub repository id; expected org/name (e.g. stabilityai/sd-turbo)`, 'invalid_argument');
  }
  if (!REVISION_RE.test(rev) || rev.split('/').some((s) => s === '.' || s === '..')) {
    throw new HubError(`"${rev}" is not a valid revision (branch, tag or commit sha)`, 'invalid_argument');
  }
  return { repo, revision: rev };
}

/** <cache>/<org>--<name> */
export function repoCacheDir(cacheDir: string, repo: string): string {
  return join(cacheDir, repo.replace('/', '--'));
}

export interface Sibling {
  rfilename: string;
  size?: number;
  lfs?: { sha256: string; size: number };
}
export interface RepoInfo {
  repo: string;
  revision: string;
  sha: string;
  siblings: Sibling[];
}

/**
 * Which files of a repository a diffusers ONNX pipeline needs (model_index.json, component configs,
 * scheduler, tokenizers, model.onnx and its external data, Easel's extras). PyTorch/Flax weights,
 * safetensors and the rest are skipped. `weights.pb` is the external-data name older optimum exports used.
 */
export function isPipelineFile(path: string): boolean {
  return [
    /^model_index\.json$/,
    /^(easel\.json|palette\.json|README\.md|MODEL\.md)$/,
    /^[^/]+\/config\.json$/,
    /^scheduler\/[^/]+\.(json|txt)$/,
    /^tokenizer[^/]*\/[^/]+\.(json|txt|model)$/,
    /^[^/]+\/model\.onnx(_data)?$/,
    /^[^/]+\/weights\.pb$/,
  ].some((re) => re.test(path));
}

/** A repository path that is safe to join under the snapshot folder. */
function safeRelativePath(path: string): boolean {
  if (path.length === 0 || path.startsWith('/') || path.includes('\\') || path.includes('\0')) return false;
  return path.split('/').every((seg) => seg.length > 0 && seg !== '.' && seg !== '..' && !seg.startsWith('.'));
}

export interface PullOptions {
  revision?: string;
  /** Defaults from hubSettings(). */
  endpoint?: string;
  token?: string;
  cacheDir?: string;
  onProgress?: ProgressCallback;
  /** Extra attempts after a transient failure (network error, 5xx, 429). Default 3. */
  retries?: number;
  /** First back-off delay; doubles each retry. Default 1000 ms. */
  retryDelayMs?: number;
  /** Abort a request when no bytes arrive for this long. Default 60 s. */
  idleTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface PulledFile {
  path: string;
  size: number;
  sha256?: string;
  /** false when the file was already complete in the cache. */
  downloaded: boolean;
}
export interface PullResult {
  repo: string;
  revision: string;
  sha: string;
  /** The snapshot folder: <cache>/<org>--<name>/<sha> */
  path: string;
  files: PulledFile[];
  skipped: string[];
}

interface Client {
  endpoint: string;
  origin: string;
  token?: string;
  retries: number;
  retryDelayMs: number;
  idleTimeoutMs: number;
  signal?: AbortSignal;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(resolve, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

/** Turn a hub error response into a HubError with a message that says what to do. */
async function errorFor(res: Response, what: string, repo: string, revision: string, client: Client, isFile = false): Promise<HubError> {
  const code = res.headers.get('x-error-code') ?? '';
  const serverMsg = res.headers.get('x-error-message') ?? (await res.text().catch(() => '')).slice(0, 200);
  const detail = serverMsg ? ` (server said: ${serverMsg.trim()})` : '';
  const where = `${client.endpoint}/${repo}`;
  if (code === 'RevisionNotFound') return new HubError(`revision "${revision}" not found in ${repo}${detail}`, 'not_found', res.status);
  if (code === 'EntryNotFound') return new HubError(`${what} not found in ${repo}@${revision}${detail}`, 'not_found', res.status);
  if (code === 'GatedRepo') {
    return new HubError(
      `${repo} is gated: accept its terms at ${where} with the account whose token is in HF_TOKEN${detail}`,
      'forbidden',
      res.status,
    );
  }
  if (res.status === 404 && isFile && code !== 'RepoNotFound' && code !== 'RepositoryNotFound') {
    return new HubError(`${what} missing from ${repo}@${revision} (HTTP 404)${detail}`, 'not_found', 404);
  }
  if (code === 'RepoNotFound' || code === 'RepositoryNotFound' || res.status === 404) {
    const hint = client.token ? '' : ' If it is private, set HF_TOKEN.';
    return new HubError(
      `repository ${repo} not found at ${client.endpoint} (${what}: HTTP ${res.status}).${hint}`,
      'not_found',
      res.status,
    );
  }
  if (res.status === 401) {
    return client.token
      ? new HubError(`HF_TOKEN was rejected by ${client.endpoint} (401) while fetching ${what} of ${repo}${detail}`, 'unauthorized', 401)
      : new HubError(`${repo} needs authentication (401): set HF_TOKEN to a token that can read it${detail}`, 'unauthorized', 401);
  }
  if (res.status === 403) {
    return new HubError(`access to ${repo} denied (403) while fetching ${what}; check HF_TOKEN's permissions${detail}`, 'forbidden', 403);
  }
  const retryable = res.status === 408 || res.status === 429 || res.status >= 500;
  return new HubError(`${what} of ${repo}: HTTP ${res.status}${detail}`, retryable ? 'network' : 'bad_response', res.status, retryable);
}

/**
 * GET with manual redirects so the Authorization header only goes to the hub's own origin (LFS files
 * redirect to a CDN with a signed URL). `idle` aborts the request when armed and not fed.
 */
async function hubGet(client: Client, url: string, headers: Record<string, string>, controller: AbortController): Promise<Response> {
  let current = url;
  for (let hop = 0; hop <= 10; hop++) {
    const h: Record<string, string> = { 'user-agent': USER_AGENT, ...headers };
    if (client.token && new URL(current).origin === client.origin) h.authorization = `Bearer ${client.token}`;
    let res: Response;
    try {
      res = await fetch(current, { headers: h, redirect: 'manual', signal: controller.signal });
    } catch (err) {
      if (client.signal?.aborted) throw client.signal.reason;
      throw new HubError(`cannot reach ${new URL(current).origin}: ${describe(err)}`, 'network', undefined, true);
    }
    if ([301, 302, 303, 307, 308].includes(res.status)) {
      const loc = res.headers.get('location');
      await res.body?.cancel();
      if (!loc) throw new HubError(`redirect without Location from ${current}`, 'bad_response', res.status);
      current = new URL(loc, current).toString();
      continue;
    }
    return res;
  }
  throw new HubError(`too many redirects fetching ${url}`, 'bad_response');
}

function describe(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  const cause = e?.cause?.code ?? e?.cause?.message;
  return cause ? `${e.message} (${cause})` : String(e?.message ?? err);
}

/** Run `fn` with retries on transient HubErrors, doubling the delay each time. */
async function withRetries<T>(client: Client, fn: (attempt: number) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!(err instanceof HubError) || !err.retryable || attempt >= client.retries) throw err;
      await sleep(client.retryDelayMs * 2 ** attempt, client.signal);
    }
  }
}

function makeClient(opts: PullOptions): Client & { cacheDir: string } {
  const s = hubSettings();
  const endpoint = (opts.endpoint ?? s.endpoint).replace(/\/+$/, '');
  let origin: string;
  try {
    origin = new URL(endpoint).origin;
  } catch {
    throw new HubError(`HF_ENDPOINT "${endpoint}" is not a URL`, 'invalid_argument');
  }
  return {
    endpoint,
    origin,
    token: opts.token ?? s.token,
    cacheDir: opts.cacheDir ?? s.cacheDir,
    retries: opts.retries ?? 3,
    retryDelayMs: opts.retryDelayMs ?? 1000,
    idleTimeoutMs: opts.idleTimeoutMs ?? 60_000,
    signal: opts.signal,
  };
}

function linkedController(client: Client): { controller: AbortController; dispose: () => void } {
  const controller = new AbortController();
  const onAbort = () => controller.abort(client.signal?.reason);
  client.signal?.addEventListener('abort', onAbort, { once: true });
  return { controller, dispose: () => client.signal?.removeEventListener('abort', onAbort) };
}

async function fetchInfo(client: Client, repo: string, revision: string): Promise<RepoInfo> {
  const url = `${client.endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}?blobs=true`;
  return withRetries(client, async () => {
    const { controller, dispose } = linkedController(client);
    const timer = setTimeout(() => controller.abort(new Error('timed out')), client.idleTimeoutMs);
    try {
      const res = await hubGet(client, url, { accept: 'application/json' }, controller);
      if (!res.ok) throw await errorFor(res, 'the file listing', repo, revision, client);
      let body: { sha?: unknown; siblings?: unknown };
      try {
        body = (await res.json()) as typeof body;
      } catch (err) {
        if (controller.signal.aborted && !client.signal?.aborted)
          throw new HubError(`listing of ${repo} timed out`, 'network', undefined, true);
        throw new HubError(`listing of ${repo} is not JSON: ${describe(err)}`, 'bad_response', res.status, true);
      }
      if (typeof body.sha !== 'string' || !SHA_RE.test(body.sha) || !Array.isArray(body.siblings)) {
        throw new HubError(`listing of ${repo}@${revision} lacks a commit sha or file list`, 'bad_response', res.status);
      }
      const siblings: Sibling[] = [];
      for (const s of body.siblings as Array<Record<string, unknown>>) {
        if (typeof s?.rfilename !== 'string') continue;
        const lfs = s.lfs as Record<string, unknown> | undefined;
        siblings.push({
          rfilename: s.rfilename,
          size: typeof s.size === 'number' ? s.size : undefined,
          lfs:
            lfs && typeof lfs.sha256 === 'string' && typeof lfs.size === 'number'
              ? { sha256: lfs.sha256.toLowerCase(), size: lfs.size }
              : undefined,
        });
      }
      return { repo, revision, sha: body.sha, siblings };
    } catch (err) {
      if (err instanceof HubError || client.signal?.aborted) throw err;
      throw new HubError(`listing of ${repo}: ${describe(err)}`, 'network', undefined, true);
    } finally {
      clearTimeout(timer);
      dispose();
    }
  });
}

async function hashFile(path: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * One file into `dest`, through `dest.part`: resumes an existing .part with a Range request, starts over
 * when the server ignores the range, verifies sha256 (LFS) or size, then renames into place.
 */
async function downloadFile(
  client: Client,
  repo: string,
  sha: string,
  file: Sibling,
  dest: string,
  onProgress?: ProgressCallback,
): Promise<void> {
  const part = `${dest}.part`;
  const expectedSize = file.lfs?.size ?? file.size;
  const expectedSha = file.lfs?.sha256;
  const url = `${client.endpoint}/${repo}/resolve/${sha}/${encodePath(file.rfilename)}`;
  await mkdir(dirname(dest), { recursive: true });

  let hash = createHash('sha256');
  let have = (await sizeOf(part)) ?? 0;
  if (expectedSize !== undefined && have > expectedSize) {
    await rm(part, { force: true });
    have = 0;
  }
  if (have > 0) await hashFile(part, hash);

  await withRetries(client, async () => {
    const { controller, dispose } = linkedController(client);
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => controller.abort(new Error('no data received')), client.idleTimeoutMs);
    };
    const restart = async () => {
      hash = createHash('sha256');
      have = 0;
      await rm(part, { force: true });
    };
    try {
      // A complete .part left by an interrupted rename: nothing to fetch.
      if (expectedSize !== undefined && have === expectedSize && have > 0) return;
      arm();
      const headers: Record<string, string> = { 'accept-encoding': 'identity' };
      if (have > 0) headers.range = `bytes=${have}-`;
      const res = await hubGet(client, url, headers, controller);
      if (res.status === 416 && have > 0) {
        await res.body?.cancel();
        await restart();
        throw new HubError(`server refused to resume ${file.rfilename}; starting over`, 'network', 416, true);
      }
      if (res.status !== 200 && res.status !== 206) throw await errorFor(res, file.rfilename, repo, sha, client, true);
      if (res.status === 206) {
        const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
        if (!m || Number(m[1]) !== have) {
          await res.body?.cancel();
          await restart();
          throw new HubError(`unexpected Content-Range for ${file.rfilename}; starting over`, 'network', 206, true);
        }
      } else if (have > 0) {
        await restart(); // 200 to a range request: the server sent the whole file
      }
      const fh = await open(part, have > 0 ? 'a' : 'w');
      try {
        onProgress?.({ file: file.rfilename, received: have, total: expectedSize });
        if (res.body) {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            arm();
            await fh.write(chunk);
            hash.update(chunk);
            have += chunk.length;
            if (expectedSize !== undefined && have > expectedSize) break;
            onProgress?.({ file: file.rfilename, received: have, total: expectedSize });
          }
        }
      } finally {
        await fh.close();
      }
    } catch (err) {
      if (client.signal?.aborted) throw client.signal.reason;
      if (err instanceof HubError) throw err;
      throw new HubError(`download of ${file.rfilename} interrupted at ${have} bytes: ${describe(err)}`, 'network', undefined, true);
    } finally {
      clearTimeout(timer);
      dispose();
    }
    if (expectedSize !== undefined && have < expectedSize) {
      throw new HubError(`download of ${file.rfilename} ended early (${have} of ${expectedSize} bytes)`, 'network', undefined, true);
    }
  });

  if (expectedSize !== undefined && have !== expectedSize) {
    await rm(part, { force: true });
    throw new HubError(`${file.rfilename}: got ${have} bytes, the hub lists ${expectedSize}; download discarded`, 'checksum_mismatch');
  }
  if (expectedSha) {
    const got = hash.digest('hex');
    if (got !== expectedSha) {
      await rm(part, { force: true });
      throw new HubError(
        `${file.rfilename}: sha256 ${got} does not match the hub's ${expectedSha}; download discarded`,
        'checksum_mismatch',
      );
    }
  }
  await rename(part, dest);
}

async function writeAtomically(path: string, content: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, content);
  await rename(tmp, path);
}

/**
 * Download a diffusers ONNX pipeline from the hub into <cache>/<org>--<name>/<sha>/ and record
 * refs/<revision> -> sha once every file is verified. Files already complete are not fetched again.
 */
export async function pullModel(ref: string, opts: PullOptions = {}): Promise<PullResult> {
  const { repo, revision } = parseRepoRef(ref, opts.revision);
  const client = makeClient(opts);
  const info = await fetchInfo(client, repo, revision);

  const wanted = info.siblings.filter((s) => isPipelineFile(s.rfilename) && safeRelativePath(s.rfilename));
  const skipped = info.siblings.map((s) => s.rfilename).filter((p) => !wanted.some((w) => w.rfilename === p));
  if (!wanted.some((s) => s.rfilename === 'model_index.json')) {
    throw new HubError(`${repo}@${revision} has no model_index.json: not a diffusers pipeline`, 'not_a_pipeline');
  }
  if (!wanted.some((s) => s.rfilename.endsWith('/model.onnx'))) {
    throw new HubError(
      `${repo}@${revision} has no */model.onnx: not an ONNX export (look for an "-onnx" variant or export it with optimum-cli)`,
      'not_a_pipeline',
    );
  }

  const repoDir = repoCacheDir(client.cacheDir, repo);
  const snapshot = join(repoDir, info.sha);
  const files: PulledFile[] = [];
  for (const s of wanted) {
    const dest = join(snapshot, ...s.rfilename.split('/'));
    const expectedSize = s.lfs?.size ?? s.size;
    const existing = await sizeOf(dest);
    // Files are renamed into place only after verification, so a present file of the right size is done.
    if (existing !== undefined && (expectedSize === undefined || existing === expectedSize)) {
      opts.onProgress?.({ file: s.rfilename, received: existing, total: existing });
      files.push({ path: s.rfilename, size: existing, sha256: s.lfs?.sha256, downloaded: false });
      continue;
    }
    if (existing !== undefined) await rm(dest, { force: true });
    await downloadFile(client, repo, info.sha, s, dest, opts.onProgress);
    files.push({ path: s.rfilename, size: (await sizeOf(dest)) ?? 0, sha256: s.lfs?.sha256, downloaded: true });
  }
  await writeAtomically(join(repoDir, 'refs', ...revision.split('/')), `${info.sha}\n`);
  return { repo, revision, sha: info.sha, path: snapshot, files, skipped };
}
