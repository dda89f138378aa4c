// One typed, frozen Config built from the schema's defaults, an optional JSON file, EASEL_* environment variables and
// CLI flags (later ones win). Any bad file, key or value throws a ConfigError listing every problem: it fails closed.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OPENAI_MODEL_FAMILIES } from '../contract/families.js';
import { readEnv, readSetting } from './env.js';
import { ConfigError, describeIssue, problemsOf } from './errors.js';
import { type Config, configSchema, type Setting, type SettingValues, withoutPassword } from './schema.js';

export { ENV_VARS } from './env.js';
export { ConfigError } from './errors.js';
export type { Config, FamilyName, ModelEntry } from './schema.js';

/** The package root (where package.json and models/ live), whether running from src/ or dist/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the Easel package root');
    dir = up;
  }
  return dir;
}

/** The shipped default model, or the engine's tiny fixture until the default model exists. */
export function defaultModelPath(root = packageRoot()): string {
  const shipped = join(root, 'models', 'easel-shapes');
  if (existsSync(join(shipped, 'model_index.json'))) return shipped;
  return join(root, 'test', 'fixtures', 'tiny-sd');
}

export interface ConfigFlags {
  config?: string;
  host?: string;
  port?: number;
  dataDir?: string;
  publicBaseUrl?: string;
  model?: string;
  /** The weights variant of `model` (e.g. fp16). */
  variant?: string;
  /** queue.url: the cluster's Redis. */
  queue?: string;
  /** db.url: a Postgres for keys and usage. */
  db?: string;
  /** images.store: s3://BUCKET[/PREFIX]. */
  store?: string;
  /** metrics.port: GET /metrics on its own port. */
  metricsPort?: number;
}

const FLAG_NAMES: { readonly [K in keyof Required<ConfigFlags>]: string } = {
  config: '--config',
  host: '--host',
  port: '--port',
  dataDir: '--data-dir',
  publicBaseUrl: '--public-url',
  model: '--model',
  variant: '--variant',
  queue: '--queue',
  db: '--db',
  store: '--store',
  metricsPort: '--metrics-port',
};

/** The setting each flag sets (its own name, but for --queue and --db). */
const FLAG_SETTINGS: { readonly [K in keyof Required<ConfigFlags>]: Setting } = {
  config: 'config',
  host: 'host',
  port: 'port',
  dataDir: 'dataDir',
  publicBaseUrl: 'publicBaseUrl',
  model: 'model',
  variant: 'variant',
  queue: 'queue.url',
  db: 'db.url',
  store: 'images.store',
  metricsPort: 'metrics.port',
};

function readFlags(flags: ConfigFlags, problems: string[]): Partial<SettingValues> {
  const out: Partial<Record<Setting, unknown>> = {};
  for (const key of Object.keys(FLAG_NAMES) as Array<keyof ConfigFlags>) {
    if (flags[key] === undefined) continue;
    const value = readSetting(FLAG_SETTINGS[key], flags[key], FLAG_NAMES[key], problems);
    if (value !== undefined) out[FLAG_SETTINGS[key]] = value;
  }
  return out as Partial<SettingValues>;
}

/** The file's text parsed as JSON, or undefined with a problem naming the file. */
function readJson(file: string, problems: string[]): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    problems.push(`${file}: cannot read the config file (${code === 'ENOENT' ? 'no such file' : (err as Error).message})`);
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    problems.push(`${file}: not valid JSON (${(err as Error).message})`);
    return undefined;
  }
}

/** The config a file describes (or the defaults when there is none), checked against the schema. */
function fromFile(file: string | undefined, problems: string[]): Config | undefined {
  const ctx = { base: file ? dirname(resolve(file)) : process.cwd(), defaultModelPath: defaultModelPath() };
  const input = file ? readJson(file, problems) : {};
  if (input === undefined) return undefined;
  const parsed = configSchema(ctx).safeParse(input, { error: describeIssue });
  if (parsed.success) return parsed.data;
  problems.push(...problemsOf(file ?? 'defaults', parsed.error));
  return undefined;
}

/** `--model`/EASEL_MODEL: a configured model's name makes it the default; anything else is a folder served as easel-default. */
function serveModel(cfg: Config, model: string, variant: string | undefined): void {
  if (cfg.models.some((m) => m.name === model)) cfg.defaultModel = model;
  else {
    const others = cfg.models.filter((m) => m.name !== 'easel-default');
    cfg.models = [{ name: 'easel-default', path: resolve(model), family: 'gpt-image', ...(variant ? { variant } : {}) }, ...others];
    cfg.defaultModel = 'easel-default';
  }
  for (const name of Object.keys(OPENAI_MODEL_FAMILIES)) cfg.aliases[name] = cfg.defaultModel;
}

function applySettings(cfg: Config, s: Partial<SettingValues>): void {
  if (s.host !== undefined) cfg.host = s.host;
  if (s.port !== undefined) cfg.port = s.port;
  if (s.dataDir !== undefined) cfg.dataDir = s.dataDir;
  if (s.publicBaseUrl !== undefined) cfg.publicBaseUrl = s.publicBaseUrl;
  if (s.urlSecret !== undefined) cfg.urlSecret = s.urlSecret;
  if (s['auth.mode'] !== undefined) cfg.auth.mode = s['auth.mode'];
  if (s['engine.provider'] !== undefined) cfg.engine.provider = s['engine.provider'];
  if (s['engine.threads'] !== undefined) cfg.engine.threads = s['engine.threads'];
  if (s['queue.url'] !== undefined) cfg.queue.url = s['queue.url'];
  if (s['db.url'] !== undefined) cfg.db.url = s['db.url'];
  if (s['images.store'] !== undefined) cfg.images.store = s['images.store'];
  if (s['metrics.port'] !== undefined) cfg.metrics.port = s['metrics.port'];
  if (s.model !== undefined) serveModel(cfg, s.model, s.variant);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/**
 * Builds the Config: defaults ← file (flags.config or EASEL_CONFIG) ← environment ← flags. Relative paths in the file
 * resolve against the file's folder. Throws a ConfigError listing every problem in the file, the environment and flags.
 */
export function loadConfig(flags: ConfigFlags = {}, env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  const envProblems: string[] = [];
  const flagProblems: string[] = [];
  const fromEnv = readEnv(env, envProblems);
  const fromFlags = readFlags(flags, flagProblems);
  const fileProblems: string[] = [];
  const cfg = fromFile(fromFlags.config ?? fromEnv.config, fileProblems);
  const problems = [...fileProblems, ...envProblems, ...flagProblems];
  if (!cfg || problems.length) throw new ConfigError(problems);
  applySettings(cfg, { ...fromEnv, ...fromFlags });
  return deepFreeze(cfg);
}

/** The config as `easel config print` shows it: secrets replaced by "<redacted>". */
export function redactConfig(cfg: Readonly<Config>): Readonly<Config> {
  const queue = cfg.queue.url === undefined ? cfg.queue : { ...cfg.queue, url: String(withoutPassword(cfg.queue.url)) };
  const db = cfg.db.url === undefined ? cfg.db : { ...cfg.db, url: String(withoutPassword(cfg.db.url)) };
  return { ...cfg, queue, db, ...(cfg.urlSecret === undefined ? {} : { urlSecret: '<redacted>' }) };
}
