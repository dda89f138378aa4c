// Where models live on this machine: shipped ones under the repository's models/ folder and ones pulled
// from the hub into the cache (<cache>/<org>--<name>/<sha>/ with refs/<revision>). Used by `models list`
// and to turn a name given to the server or CLI into a model folder.
import { type Dirent, existsSync } from 'node:fs';
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HubError, hubSettings, parseRepoRef, repoCacheDir } from './hf.js';

export interface ModelEntry {
  /** Shipped: folder name. Cached: org/name, with @revision when it is not "main". */
  name: string;
  source: 'shipped' | 'cached';
  path: string;
  sizeBytes: number;
  repo?: string;
  revision?: string;
  sha?: string;
}

export interface RegistryOptions {
  /** Hub cache; defaults to hubSettings().cacheDir (EASEL_MODELS_DIR or $HF_HOME/easel). */
  cacheDir?: string;
  /** Shipped models; defaults to the models/ folder at the package root. */
  shippedDir?: string;
}

/** models/ beside package.json: src/hub/ and dist/hub/ are both two levels below the package root. */
export function defaultShippedDir(): string {
  return fileURLToPath(new URL('../../models/', import.meta.url));
}

async function dirSize(path: string): Promise<number> {
  let total = 0;
  let entries: Dirent[];
  try {
    entries = await readdir(path, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(path, e.name);
    if (e.isDirectory()) total += await dirSize(p);
    else if (e.isFile()) total += (await lstat(p)).size;
    else if (e.isSymbolicLink())
      total += await stat(p).then(
        (s) => (s.isFile() ? s.size : 0),
        () => 0,
      );
  }
  return total;
}

async function readdirSafe(path: string): Promise<string[]> {
  try {
    return (await readdir(path, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Files under refs/, as revision names ("main", "refs/pr/1"). */
async function listRefs(refsDir: string, prefix = ''): Promise<string[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(refsDir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries) {
    if (e.name.endsWith('.tmp')) continue;
    if (e.isDirectory()) out.push(...(await listRefs(join(refsDir, e.name), `${prefix}${e.name}/`)));
    else if (e.isFile()) out.push(`${prefix}${e.name}`);
  }
  return out.sort();
}

async function shippedModels(dir: string): Promise<ModelEntry[]> {
  const out: ModelEntry[] = [];
  for (const name of (await readdirSafe(dir)).sort()) {
    const path = join(dir, name);
    if (!existsSync(join(path, 'model_index.json'))) continue;
    out.push({ name, source: 'shipped', path, sizeBytes: await dirSize(path) });
  }
  return out;
}

async function cachedModels(cacheDir: string): Promise<ModelEntry[]> {
  const out: ModelEntry[] = [];
  for (const folder of (await readdirSafe(cacheDir)).sort()) {
    const sep = folder.indexOf('--');
    if (sep <= 0) continue;
    const repo = `${folder.slice(0, sep)}/${folder.slice(sep + 2)}`;
    const repoDir = join(cacheDir, folder);
    for (const revision of await listRefs(join(repoDir, 'refs'))) {
      const sha = (await readFile(join(repoDir, 'refs', ...revision.split('/')), 'utf8')).trim();
      if (!/^[0-9a-f]{40}$/.test(sha)) continue;
      const path = join(repoDir, sha);
      if (!existsSync(join(path, 'model_index.json'))) continue;
      out.push({
        name: revision === 'main' ? repo : `${repo}@${revision}`,
        source: 'cached',
        path,
        sizeBytes: await dirSize(path),
        repo,
        revision,
        sha,
      });
    }
  }
  return out;
}

/** Shipped models first, then cached ones (one entry per recorded revision). */
export async function listModels(opts: RegistryOptions = {}): Promise<ModelEntry[]> {
  const cacheDir = opts.cacheDir ?? hubSettings().cacheDir;
  const shippedDir = opts.shippedDir ?? defaultShippedDir();
  return [...(await shippedModels(shippedDir)), ...(await cachedModels(cacheDir))];
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? join(homedir(), p.slice(1)) : p;
}

/**
 * A model folder from what a person typed: a path to a folder with model_index.json, the name of a
 * shipped model, or a pulled `org/name[@revision]` (revision defaults to main; a commit sha works too).
 */
export async function resolveModelPath(nameOrPath: string, opts: RegistryOptions = {}): Promise<string> {
  const input = nameOrPath.trim();
  if (!input) throw new HubError('no model given', 'invalid_argument');
  const asPath = resolve(expandHome(input));
  const looksLikePath = isAbsolute(input) || input.startsWith('.') || input.startsWith('~') || existsSync(asPath);
  if (looksLikePath && existsSync(asPath)) {
    if (!(await stat(asPath)).isDirectory()) throw new HubError(`${input} is not a folder`, 'invalid_argument');
    if (!existsSync(join(asPath, 'model_index.json'))) {
      throw new HubError(`${input} has no model_index.json: not a diffusers model folder`, 'not_a_pipeline');
    }
    return asPath;
  }
  if (looksLikePath) throw new HubError(`model folder ${input} does not exist`, 'not_found');

  const shippedDir = opts.shippedDir ?? defaultShippedDir();
  if (!input.includes('/') && !input.includes('@')) {
    const p = join(shippedDir, input);
    if (existsSync(join(p, 'model_index.json'))) return p;
    const known = (await shippedModels(shippedDir)).map((m) => m.name);
    throw new HubError(
      `no shipped model named "${input}"${known.length ? ` (shipped: ${known.join(', ')})` : ''}; ` +
        'give a folder path or a hub id org/name',
      'not_found',
    );
  }

  const { repo, revision } = parseRepoRef(input);
  const cacheDir = opts.cacheDir ?? hubSettings().cacheDir;
  const repoDir = repoCacheDir(cacheDir, repo);
  let sha: string | undefined;
  try {
    sha = (await readFile(join(repoDir, 'refs', ...revision.split('/')), 'utf8')).trim();
  } catch {
    // A commit sha that some completed pull recorded under another name (e.g. main) is fine too;
    // a snapshot no ref points at may be an interrupted pull.
    if (/^[0-9a-f]{40}$/.test(revision)) {
      for (const ref of await listRefs(join(repoDir, 'refs'))) {
        const target = await readFile(join(repoDir, 'refs', ...ref.split('/')), 'utf8').catch(() => '');
        if (target.trim() === revision) sha = revision;
      }
    }
  }
  if (sha && /^[0-9a-f]{40}$/.test(sha) && existsSync(join(repoDir, sha, 'model_index.json'))) return join(repoDir, sha);
  throw new HubError(`${input} is not in the model cache (${cacheDir}); run: easel models pull ${input}`, 'not_found');
}
