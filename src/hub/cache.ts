// The standard Hugging Face cache as Easel reads it without the network: where it is, how `org/name[@revision]`
// maps to models--org--name/snapshots/<sha>, and which folder of a snapshot holds the ONNX pipeline. Synchronous, so
// the config can resolve a model entry naming a repository while it is parsed.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { getRepoFolderName } from '@huggingface/hub';
import { findOnnxFile } from '../engine/models/folder.js';

/** Why a hub-side step failed; `offline` and `not_cached` never touched the network. */
export type HubErrorCode =
  | 'invalid_argument'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'not_cached'
  | 'offline'
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

export interface RepoRef {
  repo: string;
  revision: string;
}

const REPO_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;
const REVISION_RE = /^[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;
export const SHA_RE = /^[0-9a-f]{40}$/;

/** Whether `text` has the shape of `org/name[@revision]` (a folder path never does once it is known not to exist). */
export function looksLikeRepoRef(text: string): boolean {
  return REPO_RE.test(text.split('@')[0]) && !text.startsWith('.');
}

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

function hfHome(env: NodeJS.ProcessEnv): string {
  return env.HF_HOME?.trim() || join(env.XDG_CACHE_HOME?.trim() || join(homedir(), '.cache'), 'huggingface');
}

/**
 * The hub cache, in huggingface_hub's order (the same as @huggingface/hub's getHFHubCachePath, but over `env` so tests
 * and config can pass theirs): HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub.
 */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.HF_HUB_CACHE?.trim() || env.HUGGINGFACE_HUB_CACHE?.trim() || join(hfHome(env), 'hub');
}

/** Where `easel models pull` wrote before it used the standard cache: EASEL_MODELS_DIR or $HF_HOME/easel. */
export function legacyCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.EASEL_MODELS_DIR?.trim() || join(hfHome(env), 'easel');
}

/** HF_HUB_OFFLINE as huggingface_hub reads it (1, true, yes, on). */
export function isOffline(env: NodeJS.ProcessEnv = process.env): boolean {
  return ['1', 'true', 'yes', 'on'].includes((env.HF_HUB_OFFLINE ?? '').trim().toLowerCase());
}

/** <cache>/models--org--name */
export function repoStorageDir(cacheDir: string, repo: string): string {
  return join(cacheDir, getRepoFolderName({ name: repo, type: 'model' }));
}

/** The commit a revision names in this cache: refs/<revision>, or a commit sha with a snapshot. */
export function cachedCommit(storage: string, revision: string): string | undefined {
  if (SHA_RE.test(revision) && existsSync(join(storage, 'snapshots', revision))) return revision;
  try {
    const sha = readFileSync(join(storage, 'refs', ...revision.split('/')), 'utf8').trim();
    return SHA_RE.test(sha) && existsSync(join(storage, 'snapshots', sha)) ? sha : undefined;
  } catch {
    return undefined;
  }
}

export interface PipelineSpec {
  /** Folder inside the repository holding the ONNX pipeline (e.g. "onnx"); found when absent. */
  subfolder?: string;
  /** Weights variant, e.g. "fp16": model.fp16.onnx files or an fp16/ folder. */
  variant?: string;
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** A folder whose unet/ has a loadable ONNX file for `variant`, under a model_index.json here or up to two levels up. */
function isPipelineRoot(dir: string, top: string, variant: string | undefined): boolean {
  if (!isDir(join(dir, 'unet')) || findOnnxFile(join(dir, 'unet'), variant) === undefined) return false;
  if (variant && !hasVariantFiles(dir, variant) && !dir.endsWith(`/${variant}`)) return false;
  for (let d = dir, i = 0; i < 3; d = dirname(d), i++) {
    if (existsSync(join(d, 'model_index.json'))) return true;
    if (d === top) break;
  }
  return false;
}

/** Whether any component folder of `dir` has a file named for `variant`. */
function hasVariantFiles(dir: string, variant: string): boolean {
  return readdirSync(dir, { withFileTypes: true }).some(
    (e) => e.isDirectory() && findOnnxFile(join(dir, e.name), variant, { variantOnly: true }) !== undefined,
  );
}

/**
 * The folder of a snapshot (or any checkout) that holds its ONNX pipeline: the subfolder asked for, else the root or
 * onnx/; with a variant, a <variant>/ folder inside it first. Throws naming what was looked for.
 */
export function pipelineRoot(top: string, spec: PipelineSpec = {}, what = top): string {
  const bases = spec.subfolder !== undefined ? [join(top, ...spec.subfolder.split('/'))] : [top, join(top, 'onnx')];
  const candidates = spec.variant ? bases.flatMap((b) => [join(b, spec.variant!), b]) : bases;
  for (const dir of candidates) if (isPipelineRoot(dir, top, spec.variant)) return dir;
  const where = spec.subfolder !== undefined ? `${spec.subfolder}/` : 'the root or onnx/';
  const variant = spec.variant ? ` with ${spec.variant} weights (model.${spec.variant}.onnx or a ${spec.variant}/ folder)` : '';
  throw new HubError(`${what} has no ONNX pipeline (model_index.json, unet/model.onnx) in ${where}${variant}`, 'not_a_pipeline');
}

export interface ResolvedModel {
  repo: string;
  revision: string;
  sha: string;
  /** The snapshot folder: <cache>/models--org--name/snapshots/<sha> */
  snapshot: string;
  /** The pipeline folder inside it (the snapshot itself, onnx/, or a variant folder). */
  path: string;
  /** Found in the old $HF_HOME/easel layout rather than the standard cache. */
  legacy: boolean;
}

/**
 * `org/name[@revision]` from the local caches only (never the network): the standard hub cache, then the old
 * $HF_HOME/easel layout. Throws `not_cached` with the command that fetches it.
 */
export function resolveCachedModel(ref: string, spec: PipelineSpec = {}, env: NodeJS.ProcessEnv = process.env): ResolvedModel {
  const { repo, revision } = parseRepoRef(ref);
  const cacheDir = hubCacheDir(env);
  const sha = cachedCommit(repoStorageDir(cacheDir, repo), revision);
  if (sha) {
    const snapshot = join(repoStorageDir(cacheDir, repo), 'snapshots', sha);
    const path = pipelineRoot(snapshot, spec, `${repo}@${revision}`);
    return { repo, revision, sha, snapshot, path, legacy: false };
  }
  const legacy = legacySnapshot(legacyCacheDir(env), repo, revision);
  if (legacy) return { repo, revision, sha: legacy.sha, snapshot: legacy.path, path: pipelineRoot(legacy.path, spec), legacy: true };
  const flags = [spec.variant && `--variant ${spec.variant}`, spec.subfolder && `--subfolder ${spec.subfolder}`].filter(Boolean);
  throw new HubError(
    `${repo}@${revision} is not in the Hugging Face cache (${cacheDir}); run: easel models pull ${ref}${flags.length ? ` ${flags.join(' ')}` : ''}`,
    'not_cached',
  );
}

/** The old layout: <dir>/<org>--<name>/<sha>/ with refs/<revision>. */
export function legacySnapshot(dir: string, repo: string, revision: string): { sha: string; path: string } | undefined {
  const base = join(dir, repo.replace('/', '--'));
  let sha = SHA_RE.test(revision) ? revision : undefined;
  if (!sha) {
    try {
      sha = readFileSync(join(base, 'refs', ...revision.split('/')), 'utf8').trim();
    } catch {
      return undefined;
    }
  }
  const path = join(base, sha);
  return SHA_RE.test(sha) && existsSync(join(path, 'model_index.json')) ? { sha, path } : undefined;
}

/** The one-line hint for a model found in the old layout. */
export function legacyHint(repo: string, env: NodeJS.ProcessEnv = process.env): string {
  return (
    `easel: ${repo} was loaded from the old cache ${legacyCacheDir(env)}; ` +
    `run \`easel models pull ${repo}\` to move it into ${hubCacheDir(env)}, then delete the old folder`
  );
}
