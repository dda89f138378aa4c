// The EASEL_* environment variables in one table (name → setting), read with the same schemas as the config file.
// Enum values are matched case-insensitively (EASEL_AUTH=KEYS means keys); a bad value is a problem, never ignored.
import { z } from 'zod';
import { describeIssue, problemsOf } from './errors.js';
import { SETTINGS, type Setting, type SettingValues } from './schema.js';

export interface EnvVar {
  name: string;
  setting: Setting;
  /** What it sets, for `--help` and the README. */
  doc: string;
}

export const ENV_VARS: readonly EnvVar[] = [
  { name: 'EASEL_CONFIG', setting: 'config', doc: 'JSON config file (like --config)' },
  { name: 'EASEL_HOST', setting: 'host', doc: 'host' },
  { name: 'EASEL_PORT', setting: 'port', doc: 'port' },
  { name: 'EASEL_DATA_DIR', setting: 'dataDir', doc: 'dataDir (relative to the working directory)' },
  { name: 'EASEL_PUBLIC_URL', setting: 'publicBaseUrl', doc: 'publicBaseUrl' },
  { name: 'EASEL_MODEL', setting: 'model', doc: 'a model folder served as easel-default, or a model name to make default (like --model)' },
  { name: 'EASEL_AUTH', setting: 'auth.mode', doc: 'auth.mode' },
  { name: 'EASEL_PROVIDER', setting: 'engine.provider', doc: 'engine.provider' },
  { name: 'EASEL_THREADS', setting: 'engine.threads', doc: 'engine.threads' },
  { name: 'EASEL_URL_SECRET', setting: 'urlSecret', doc: 'urlSecret' },
  { name: 'EASEL_QUEUE', setting: 'queue.url', doc: "queue.url: the cluster's Redis (like --queue)" },
  { name: 'EASEL_DB', setting: 'db.url', doc: 'db.url: a Postgres for keys and usage (like --db)' },
  { name: 'EASEL_STORE', setting: 'images.store', doc: 'images.store: an S3 bucket for url images, s3://BUCKET[/PREFIX] (like --store)' },
  { name: 'EASEL_METRICS_PORT', setting: 'metrics.port', doc: 'metrics.port: GET /metrics on its own port (like --metrics-port)' },
];

/** Text → the value the setting's schema checks: enum names case-insensitively, integers as numbers. */
function coerce(schema: z.ZodType, raw: string): unknown {
  const text = raw.trim();
  if (schema instanceof z.ZodEnum) {
    return schema.options.find((o) => String(o).toLowerCase() === text.toLowerCase()) ?? text;
  }
  if (schema instanceof z.ZodNumber) return /^[+-]?\d+$/.test(text) ? Number(text) : text;
  return raw;
}

/** Checks one value for a setting; problems are prefixed by `source` (an environment variable or a flag). */
export function readSetting<K extends Setting>(
  setting: K,
  value: unknown,
  source: string,
  problems: string[],
): SettingValues[K] | undefined {
  const schema: z.ZodType = SETTINGS[setting];
  const parsed = schema.safeParse(typeof value === 'string' ? coerce(schema, value) : value, { error: describeIssue });
  if (parsed.success) return parsed.data as SettingValues[K];
  problems.push(...problemsOf(source, parsed.error));
  return undefined;
}

/** The settings given by the environment; an unset or empty variable sets nothing. */
export function readEnv(env: NodeJS.ProcessEnv, problems: string[]): Partial<SettingValues> {
  const out: Partial<Record<Setting, unknown>> = {};
  for (const v of ENV_VARS) {
    const raw = env[v.name];
    if (raw === undefined || raw.trim() === '') continue;
    const value = readSetting(v.setting, raw, v.name, problems);
    if (value !== undefined) out[v.setting] = value;
  }
  return out as Partial<SettingValues>;
}
