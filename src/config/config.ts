// One typed, frozen Config built from defaults, an optional JSON file, EASEL_* environment variables and CLI flags
// (later ones win). It is passed explicitly to whatever needs it; nothing reads process.env elsewhere.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type FamilyName = 'dall-e-2' | 'dall-e-3' | 'gpt-image';

export interface ModelEntry {
  /** Name clients use in `model`. */
  name: string;
  /** Diffusers-layout ONNX folder. */
  path: string;
  /** Which OpenAI family's request rules this name speaks (default gpt-image). */
  family?: FamilyName;
}

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  /** Absolute base for `url` responses, e.g. https://images.example.com; defaults to the request's own origin. */
  publicBaseUrl?: string;
  models: ModelEntry[];
  defaultModel: string;
  /** OpenAI model name → served model name, each speaking that OpenAI family's rules. */
  aliases: Record<string, string>;
  auth: {
    /** 'none': any or no bearer token is accepted; 'keys': a key made by `easel keys create` is required. */
    mode: 'none' | 'keys';
  };
  queue: { maxWaiting: number };
  engine: { provider: 'cpu' | 'cuda' | 'webgpu'; threads?: number; maxBatchSize: number };
  images: { urlTtlSeconds: number; sweepIntervalSeconds: number };
  /** HMAC secret for signed image URLs; generated and kept in the data dir when not given. */
  urlSecret?: string;
  moderation: {
    /** Category → words/phrases refused under moderation 'auto'. */
    categories: Record<string, string[]>;
    /** Categories still enforced under moderation 'low'. */
    lowCategories: string[];
  };
  records: { storePrompts: boolean };
  limits: {
    bodyBytes: number;
    uploadBytes: number;
    /** Let edit image URLs reach loopback/private/link-local addresses and plain http (development only). */
    allowPrivateImageUrls?: boolean;
  };
}

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

export const OPENAI_MODEL_FAMILIES: Record<string, FamilyName> = {
  'dall-e-2': 'dall-e-2',
  'dall-e-3': 'dall-e-3',
  'gpt-image-1': 'gpt-image',
  'gpt-image-1-mini': 'gpt-image',
  'gpt-image-1.5': 'gpt-image',
};

const DEFAULT_MODERATION: Config['moderation'] = {
  // A deliberately simple word filter (documented in README): whole-word, case-insensitive matches.
  categories: {
    'sexual/minors': ['child porn', 'cp porn', 'underage sex', 'loli porn'],
    sexual: ['porn', 'pornographic', 'nude', 'naked', 'nsfw', 'explicit sex'],
    violence: ['gore', 'beheading', 'dismembered', 'mutilated'],
    'self-harm': ['suicide', 'self-harm', 'self harm'],
    hate: ['nazi propaganda', 'white power', 'ethnic cleansing'],
  },
  lowCategories: ['sexual/minors'],
};

function defaults(root: string): Config {
  return {
    host: '127.0.0.1',
    port: 8080,
    dataDir: resolve('data'),
    models: [{ name: 'easel-default', path: defaultModelPath(root), family: 'gpt-image' }],
    defaultModel: 'easel-default',
    aliases: Object.fromEntries(Object.keys(OPENAI_MODEL_FAMILIES).map((k) => [k, 'easel-default'])),
    auth: { mode: 'none' },
    queue: { maxWaiting: 16 },
    engine: { provider: 'cpu', maxBatchSize: 8 },
    images: { urlTtlSeconds: 3600, sweepIntervalSeconds: 300 },
    moderation: DEFAULT_MODERATION,
    records: { storePrompts: false },
    limits: { bodyBytes: 2 * 1024 * 1024, uploadBytes: 64 * 1024 * 1024 },
  };
}

export interface ConfigFlags {
  config?: string;
  host?: string;
  port?: number;
  dataDir?: string;
  publicBaseUrl?: string;
  model?: string;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

function intEnv(env: NodeJS.ProcessEnv, key: string): number | undefined {
  const v = env[key];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`${key} must be an integer, got '${v}'`);
  return n;
}

/** Builds the Config: defaults ← file ← environment ← flags. Relative model paths resolve against the file's folder. */
export function loadConfig(flags: ConfigFlags = {}, env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  const root = packageRoot();
  const cfg = defaults(root);
  const file = flags.config ?? env.EASEL_CONFIG;
  if (file) {
    const raw = JSON.parse(readFileSync(file, 'utf8')) as Partial<Config>;
    const base = dirname(resolve(file));
    Object.assign(cfg, { ...raw, models: cfg.models, aliases: cfg.aliases });
    for (const key of ['auth', 'queue', 'engine', 'images', 'moderation', 'records', 'limits'] as const) {
      if (raw[key]) Object.assign(cfg[key], raw[key]);
    }
    if (raw.models) {
      cfg.models = raw.models.map((m) => ({ ...m, path: isAbsolute(m.path) ? m.path : resolve(base, m.path) }));
    }
    if (raw.defaultModel) cfg.defaultModel = raw.defaultModel;
    else if (raw.models?.length) cfg.defaultModel = raw.models[0].name;
    cfg.aliases = {
      ...Object.fromEntries(Object.keys(OPENAI_MODEL_FAMILIES).map((k) => [k, cfg.defaultModel])),
      ...(raw.aliases ?? {}),
    };
    if (raw.dataDir) cfg.dataDir = resolve(base, raw.dataDir);
  }
  cfg.host = flags.host ?? env.EASEL_HOST ?? cfg.host;
  cfg.port = flags.port ?? intEnv(env, 'EASEL_PORT') ?? cfg.port;
  cfg.dataDir = resolve(flags.dataDir ?? env.EASEL_DATA_DIR ?? cfg.dataDir);
  cfg.publicBaseUrl = flags.publicBaseUrl ?? env.EASEL_PUBLIC_URL ?? cfg.publicBaseUrl;
  cfg.urlSecret = env.EASEL_URL_SECRET ?? cfg.urlSecret;
  if (env.EASEL_AUTH === 'keys' || env.EASEL_AUTH === 'none') cfg.auth.mode = env.EASEL_AUTH;
  const provider = env.EASEL_PROVIDER;
  if (provider === 'cpu' || provider === 'cuda' || provider === 'webgpu') cfg.engine.provider = provider;
  cfg.engine.threads = intEnv(env, 'EASEL_THREADS') ?? cfg.engine.threads;
  const modelFlag = flags.model ?? env.EASEL_MODEL;
  if (modelFlag) {
    // --model PATH serves that folder as the default model (all OpenAI aliases point at it).
    const entry = cfg.models.find((m) => m.name === modelFlag);
    if (entry) cfg.defaultModel = entry.name;
    else {
      cfg.models = [{ name: 'easel-default', path: resolve(modelFlag), family: 'gpt-image' }, ...cfg.models.filter((m) => m.name !== 'easel-default')];
      cfg.defaultModel = 'easel-default';
    }
    for (const k of Object.keys(OPENAI_MODEL_FAMILIES)) cfg.aliases[k] = cfg.defaultModel;
  }
  validate(cfg);
  return deepFreeze(cfg);
}

function validate(cfg: Config): void {
  if (!Number.isInteger(cfg.port) || cfg.port < 0 || cfg.port > 65535) throw new Error(`invalid port ${cfg.port}`);
  const names = new Set(cfg.models.map((m) => m.name));
  if (!names.has(cfg.defaultModel)) throw new Error(`defaultModel '${cfg.defaultModel}' is not among models`);
  for (const [alias, target] of Object.entries(cfg.aliases)) {
    if (!names.has(target)) throw new Error(`alias '${alias}' points at unknown model '${target}'`);
  }
  if (cfg.queue.maxWaiting < 0) throw new Error('queue.maxWaiting must be >= 0');
}
