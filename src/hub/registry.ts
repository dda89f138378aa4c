// Where models live on this machine: shipped ones under the package's models/ folder, the standard Hugging Face cache
// (scanned with @huggingface/hub's scanCacheDir) and the old $HF_HOME/easel layout. Used by `models list|rm` and to
// turn what a person typed (a path, a shipped name, org/name[@revision]) into a pipeline folder.
import { type Dirent, existsSync, readdirSync } from 'node:fs';
import { lstat, readdir, readFile, realpath, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scanCacheDir } from '@huggingface/hub';
import { findOnnxFile } from '../engine/models/folder.js';
import {
  cachedCommit,
  HubError,
  hubCacheDir,
  isOffline,
  legacyCacheDir,
  legacyHint,
  type PipelineSpec,
  parseRepoRef,
  pipelineRoot,
  repoStorageDir,
  resolveCachedModel,
  SHA_RE,
} from './cache.js';
import { type ProgressCallback, pullModel } from './hf.js';

export interface ModelEntry {
  /** Shipped: folder name. Cached: org/name, with @revision when it is not "main". */
  name: string;
  source: 'shipped' | 'cached' | 'legacy';
  /** The pipeline folder (inside the snapshot for cached ones). */
  path: string;
  sizeBytes: number;
  repo?: string;
  /** The refs naming this snapshot ("main"), or its commit sha when none does. */
  revision?: string;
  sha?: string;
  /** Weights variants found (e.g. ["fp16"]); empty when only the plain files are there. */
  variants?: string[];
}

export interface RegistryOptions {
  /** The hub cache; defaults to HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub. */
  cacheDir?: string;
  /** Shipped models; defaults to the models/ folder at the package root. */
  shippedDir?: string;
  env?: NodeJS.ProcessEnv;
}

/** models/ beside package.json: src/hub/ and dist/hub/ are both two levels below the package root. */
export function defaultShippedDir(): string {
  return fileURLToPath(new URL('../../models/', import.meta.url));
}

/** Bytes under `path`, each file counted once however many links point at it (snapshots link into blobs/). */
async function dirSize(path: string, seen = new Set<string>()): Promise<number> {
  let total = 0;
  let entries: Dirent[];
  try {
    entries = await readdir(path, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(path, e.name);
    if (e.isDirectory()) total += await dirSize(p, seen);
    else if (e.isFile() || e.isSymbolicLink()) {
      const real = await realpath(p).catch(() => undefined);
      if (!real || seen.has(real)) continue;
      seen.add(real);
      total += await stat(real).then(
        (s) => (s.isFile() ? s.size : 0),
        () => 0,
      );
    }
  }
  return total;
}

async function subdirs(path: string): Promise<string[]> {
  try {
    return (await readdir(path, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

async function shippedModels(dir: string): Promise<ModelEntry[]> {
  const out: ModelEntry[] = [];
  for (const name of (await subdirs(dir)).sort()) {
    const path = join(dir, name);
    if (!existsSync(join(path, 'model_index.json'))) continue;
    out.push({ name, source: 'shipped', path, sizeBytes: await dirSize(path) });
  }
  return out;
}

/** Variant names in a pipeline folder: model.<v>.onnx / model_<v>.onnx in its parts, or <v>/unet folders. */
function variantsIn(root: string): string[] {
  const found = new Set<string>();
  if (!existsSync(root)) return [];
  for (const e of readdirSync(root, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    if (existsSync(join(root, e.name, 'unet')) && findOnnxFile(join(root, e.name, 'unet'))) found.add(e.name);
    for (const f of readdirSync(join(root, e.name))) {
      const m = /^model[._]([A-Za-z0-9-]+)\.onnx$/.exec(f);
      if (m) found.add(m[1]);
    }
  }
  return [...found].sort();
}

/** A snapshot's pipeline folder, plain or for its first variant; undefined when Easel cannot serve it. */
function servable(snapshot: string): { path: string; variants: string[] } | undefined {
  const variants = [...new Set([...variantsIn(snapshot), ...variantsIn(join(snapshot, 'onnx'))])].filter((v) => v !== 'onnx');
  for (const spec of [{}, ...variants.map((variant) => ({ variant }))] as PipelineSpec[]) {
    try {
      const path = pipelineRoot(snapshot, spec);
      return { path, variants: variantsIn(path) };
    } catch {
      // not with this variant
    }
  }
  return undefined;
}

async function cachedModels(cacheDir: string): Promise<ModelEntry[]> {
  if (!existsSync(cacheDir)) return [];
  const { repos } = await scanCacheDir(cacheDir);
  const out: ModelEntry[] = [];
  for (const r of repos.filter((x) => x.id.type === 'model').sort((a, b) => a.id.name.localeCompare(b.id.name))) {
    for (const rev of r.revisions) {
      const found = servable(rev.path);
      if (!found) continue;
      const refs = [...rev.refs].sort();
      const revision = refs.includes('main') ? 'main' : (refs[0] ?? rev.commitOid);
      out.push({
        name: revision === 'main' ? r.id.name : `${r.id.name}@${revision}`,
        source: 'cached',
        path: found.path,
        sizeBytes: await dirSize(rev.path),
        repo: r.id.name,
        revision: refs.length ? refs.join(',') : rev.commitOid,
        sha: rev.commitOid,
        variants: found.variants,
      });
    }
  }
  return out;
}

/** The old layout <dir>/<org>--<name>/<sha>/ with refs/<revision>: still listed (and loaded), with a hint to move it. */
async function legacyModels(dir: string): Promise<ModelEntry[]> {
  const out: ModelEntry[] = [];
  for (const folder of (await subdirs(dir)).sort()) {
    const sep = folder.indexOf('--');
    if (sep <= 0) continue;
    const repo = `${folder.slice(0, sep)}/${folder.slice(sep + 2)}`;
    for (const ref of await readdir(join(dir, folder, 'refs')).catch(() => [] as string[])) {
      const sha = (await readFile(join(dir, folder, 'refs', ref), 'utf8').catch(() => '')).trim();
      const path = join(dir, folder, sha);
      if (!SHA_RE.test(sha) || !existsSync(join(path, 'model_index.json'))) continue;
      out.push({
        name: ref === 'main' ? repo : `${repo}@${ref}`,
        source: 'legacy',
        path,
        sizeBytes: await dirSize(path),
        repo,
        revision: ref,
        sha,
      });
    }
  }
  return out;
}

/** Shipped models first, then the standard cache (one entry per snapshot Easel can serve), then the old layout. */
export async function listModels(opts: RegistryOptions = {}): Promise<ModelEntry[]> {
  const env = opts.env ?? process.env;
  return [
    ...(await shippedModels(opts.shippedDir ?? defaultShippedDir())),
    ...(await cachedModels(opts.cacheDir ?? hubCacheDir(env))),
    ...(await legacyModels(legacyCacheDir(env))),
  ];
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? join(homedir(), p.slice(1)) : p;
}

export interface ResolveOptions extends RegistryOptions, PipelineSpec {
  /** Pull a hub model that is not cached (never when HF_HUB_OFFLINE is set). Default false. */
  pull?: boolean;
  onProgress?: ProgressCallback;
  /** Where the one-line hint for a model in the old layout goes. */
  warn?: (line: string) => void;
}

/** A folder path: its pipeline folder (the folder itself, onnx/ or a variant folder). */
async function resolveFolder(input: string, asPath: string, spec: PipelineSpec): Promise<string> {
  if (!(await stat(asPath)).isDirectory()) throw new HubError(`${input} is not a folder`, 'invalid_argument');
  if (spec.variant === undefined && spec.subfolder === undefined && existsSync(join(asPath, 'model_index.json'))) return asPath;
  try {
    return pipelineRoot(asPath, spec, input);
  } catch (err) {
    if (!existsSync(join(asPath, 'model_index.json'))) {
      throw new HubError(`${input} has no model_index.json: not a diffusers model folder`, 'not_a_pipeline');
    }
    throw err;
  }
}

/**
 * A pipeline folder from what a person typed: a path to a folder with model_index.json, the name of a shipped model,
 * or `org/name[@revision]` from the hub cache (pulled first when `pull` is set and the network is allowed).
 */
export async function resolveModelPath(nameOrPath: string, opts: ResolveOptions = {}): Promise<string> {
  const input = nameOrPath.trim();
  const env = opts.env ?? process.env;
  const spec: PipelineSpec = { variant: opts.variant, subfolder: opts.subfolder };
  if (!input) throw new HubError('no model given', 'invalid_argument');
  const asPath = resolve(expandHome(input));
  // An existing folder wins, so `-m models/easel-shapes` stays a path although it has the shape of org/name.
  if (existsSync(asPath)) return resolveFolder(input, asPath, spec);
  if (isAbsolute(input) || input.startsWith('.') || input.startsWith('~'))
    throw new HubError(`model folder ${input} does not exist`, 'not_found');

  const shippedDir = opts.shippedDir ?? defaultShippedDir();
  if (!input.includes('/') && !input.includes('@')) {
    const p = join(shippedDir, input);
    if (existsSync(join(p, 'model_index.json'))) return p;
    const known = (await shippedModels(shippedDir)).map((m) => m.name);
    throw new HubError(
      `no shipped model named "${input}"${known.length ? ` (shipped: ${known.join(', ')})` : ''}; give a folder path or a hub id org/name`,
      'not_found',
    );
  }
  const cacheEnv = opts.cacheDir ? { ...env, HF_HUB_CACHE: opts.cacheDir } : env;
  try {
    const found = resolveCachedModel(input, spec, cacheEnv);
    if (found.legacy) opts.warn?.(legacyHint(found.repo, cacheEnv));
    return found.path;
  } catch (err) {
    if (!(err instanceof HubError && err.code === 'not_cached') || !opts.pull) throw err;
    if (isOffline(env)) throw new HubError(`${err.message} (HF_HUB_OFFLINE is set, so Easel did not try the hub)`, 'not_cached');
  }
  return (await pullModel(input, { ...spec, cacheDir: opts.cacheDir, env, onProgress: opts.onProgress })).path;
}

export interface RemoveResult {
  repo: string;
  /** Snapshots (commit shas) removed. */
  removed: string[];
  /** Blobs deleted; blobs another snapshot still links are kept. */
  freedBytes: number;
  keptBlobs: number;
}

/** Every blob a snapshot's files link to (resolved paths). */
async function blobsOf(snapshot: string, out = new Set<string>()): Promise<Set<string>> {
  for (const e of await readdir(snapshot, { withFileTypes: true }).catch(() => [])) {
    const p = join(snapshot, e.name);
    if (e.isDirectory()) await blobsOf(p, out);
    else {
      const real = await realpath(p).catch(() => undefined);
      if (real) out.add(real);
    }
  }
  return out;
}

/** Files under refs/ (nested ones like refs/pr/1 included), as [name, path]. */
async function refFiles(dir: string, prefix = ''): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (e.isDirectory()) out.push(...(await refFiles(join(dir, e.name), `${prefix}${e.name}/`)));
    else out.push([`${prefix}${e.name}`, join(dir, e.name)]);
  }
  return out;
}

/**
 * `easel models rm org/name[@revision]`, as huggingface-cli delete-cache does it: the revision's snapshot and the refs
 * naming it go, and the blobs no remaining snapshot links; without a revision, every snapshot of the repository.
 */
export async function removeModel(ref: string, opts: RegistryOptions = {}): Promise<RemoveResult> {
  const { repo, revision } = parseRepoRef(ref);
  const storage = repoStorageDir(opts.cacheDir ?? hubCacheDir(opts.env ?? process.env), repo);
  const all = (await subdirs(join(storage, 'snapshots'))).filter((s) => SHA_RE.test(s));
  const targets = ref.includes('@') ? [cachedCommit(storage, revision)].filter((s): s is string => s !== undefined) : all;
  if (targets.length === 0) {
    throw new HubError(`${ref} is not in the Hugging Face cache (${dirname(storage)}); \`easel models list\` shows what is`, 'not_cached');
  }
  const kept = new Set<string>();
  for (const s of all.filter((s) => !targets.includes(s))) await blobsOf(join(storage, 'snapshots', s), kept);
  const doomed = new Set<string>();
  for (const s of targets) await blobsOf(join(storage, 'snapshots', s), doomed);
  let freedBytes = 0;
  let keptBlobs = 0;
  for (const blob of doomed) {
    if (kept.has(blob)) {
      keptBlobs++;
      continue;
    }
    freedBytes += (await lstat(blob)).size;
    await rm(blob, { force: true });
  }
  for (const s of targets) await rm(join(storage, 'snapshots', s), { recursive: true, force: true });
  for (const [, file] of await refFiles(join(storage, 'refs'))) {
    if (targets.includes((await readFile(file, 'utf8')).trim())) await rm(file, { force: true });
  }
  if (targets.length === all.length) await rm(storage, { recursive: true, force: true });
  return { repo, removed: targets, freedBytes, keptBlobs };
}
