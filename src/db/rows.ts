// What the SQLite and Postgres Dbs share, so both keep exactly the same semantics: API key minting, hashing, limits and
// the cheap pre-check, the usage-list bounds, the Usage API's bucketing SQL, the row shapes and their mapping.
import { createHash, randomBytes } from 'node:crypto';
import {
  API_KEY_PREFIX,
  type ApiKeyInfo,
  type CreateApiKeyOptions,
  type ListUsageOptions,
  type UsageBucketQuery,
  type UsageBucketRow,
  type UsageGroupField,
  type UsageRecord,
  type UsageSource,
  type VerifiedApiKey,
} from './types.js';

const MAX_KEY_LENGTH = 256;
const MAX_NAME_LENGTH = 200;
const DEFAULT_USAGE_LIMIT = 100;
const MAX_USAGE_LIMIT = 10_000;

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** A new key for `name` (checked): its id, the secret shown once, and the hash that is stored. */
export function mintApiKey(name: string): { id: string; key: string; keyHash: string } {
  if (typeof name !== 'string' || name.trim().length === 0 || name.length > MAX_NAME_LENGTH) {
    throw new TypeError(`API key name must be a non-empty string of at most ${MAX_NAME_LENGTH} characters`);
  }
  const key = API_KEY_PREFIX + randomBytes(32).toString('base64url');
  return { id: 'key_' + randomBytes(8).toString('hex'), key, keyHash: hashApiKey(key) };
}

/** A key's checked admin flag and limits: rpm/tpm must be positive integers (at most 2^31-1) when given. */
export function keyOptions(opts: CreateApiKeyOptions = {}): { admin: boolean; rpm: number | null; tpm: number | null } {
  const limit = (name: 'rpm' | 'tpm'): number | null => {
    const v = opts[name];
    if (v === undefined) return null;
    if (!Number.isInteger(v) || v < 1 || v > 2_147_483_647) throw new TypeError(`${name} must be a positive integer`);
    return v;
  };
  return { admin: opts.admin === true, rpm: limit('rpm'), tpm: limit('tpm') };
}

/** Whether `key` could be one of ours at all (before any lookup). */
export function looksLikeApiKey(key: unknown): key is string {
  return typeof key === 'string' && key.startsWith(API_KEY_PREFIX) && key.length <= MAX_KEY_LENGTH;
}

/** listUsage's bounds: limit default 100, capped at 10000; since defaults to the beginning. */
export function usageQueryBounds(opts: ListUsageOptions): { limit: number; since: number } {
  const rawLimit = opts.limit !== undefined && Number.isFinite(opts.limit) ? opts.limit : DEFAULT_USAGE_LIMIT;
  const limit = Math.min(MAX_USAGE_LIMIT, Math.max(0, Math.floor(rawLimit)));
  const since = opts.since !== undefined && Number.isFinite(opts.since) ? opts.since : Number.MIN_SAFE_INTEGER;
  return { limit, since };
}

/** Columns of usage_records in insert order, and a record's values for them (nulls where optional). */
export const USAGE_COLUMNS = [
  'request_id',
  'key_id',
  'endpoint',
  'model',
  'served_model',
  'size',
  'n',
  'quality',
  'input_tokens',
  'output_tokens',
  'end_user',
  'duration_ms',
  'status',
  'prompt',
  'created_at',
  'source',
  'images',
  'error_code',
] as const;

/** The Usage API's source for an endpoint path. */
export function usageSource(endpoint: string): UsageSource {
  if (endpoint === '/v1/images/edits') return 'image.edit';
  if (endpoint === '/v1/images/variations') return 'image.variation';
  return 'image.generation';
}

export function usageValues(r: UsageRecord): Array<string | number | null> {
  return [
    r.requestId,
    r.keyId ?? null,
    r.endpoint,
    r.model,
    r.servedModel,
    r.size,
    r.n,
    r.quality ?? null,
    r.inputTokens,
    r.outputTokens,
    r.user ?? null,
    Math.round(r.durationMs),
    r.status,
    r.prompt ?? null,
    r.createdAt,
    usageSource(r.endpoint),
    r.images,
    r.errorCode ?? null,
  ];
}

export interface UsageRow {
  request_id: string;
  key_id: string | null;
  endpoint: string;
  model: string;
  served_model: string;
  size: string;
  n: number;
  quality: string | null;
  input_tokens: number;
  output_tokens: number;
  end_user: string | null;
  duration_ms: number;
  status: number;
  prompt: string | null;
  created_at: number;
  source: string | null;
  images: number;
  error_code: string | null;
}

export function rowToUsage(r: UsageRow): UsageRecord {
  return {
    requestId: r.request_id,
    keyId: r.key_id,
    endpoint: r.endpoint,
    model: r.model,
    servedModel: r.served_model,
    size: r.size,
    n: r.n,
    quality: r.quality,
    inputTokens: r.input_tokens,
    outputTokens: r.output_tokens,
    user: r.end_user,
    durationMs: r.duration_ms,
    status: r.status,
    prompt: r.prompt,
    createdAt: r.created_at,
    images: r.images,
    errorCode: r.error_code,
  };
}

/** The usage_records column behind each group_by field (OpenAI's user_id is end_user, its api_key_id key_id). */
const GROUP_COLUMNS: Record<UsageGroupField, string> = {
  source: 'source',
  size: 'size',
  model: 'model',
  user_id: 'end_user',
  api_key_id: 'key_id',
};
const GROUP_ORDER: readonly UsageGroupField[] = ['source', 'model', 'size', 'user_id', 'api_key_id'];

/**
 * The bucketing query both dialects run: portable SQL (integer division of epoch ms, SUM and COUNT, IN lists) with
 * placeholders written by `param(i)` (SQLite '?', Postgres '$i'), and its values in placeholder order.
 */
export function usageBucketSql(q: UsageBucketQuery, param: (i: number) => string): { sql: string; values: Array<string | number> } {
  const values: Array<string | number> = [];
  const p = (v: string | number): string => {
    values.push(v);
    return param(values.length);
  };
  const grouped = GROUP_ORDER.filter((f) => q.groupBy?.includes(f));
  const select = [
    `CAST((created_at - ${p(Math.floor(q.startMs))}) / ${p(Math.floor(q.widthMs))} AS BIGINT) AS bucket`,
    ...grouped.map((f) => `${GROUP_COLUMNS[f]} AS g_${f}`),
    'SUM(images) AS images',
    'COUNT(*) AS requests',
  ];
  const where = [`created_at >= ${p(Math.floor(q.startMs))}`, `created_at < ${p(Math.floor(q.endMs))}`];
  const filters: Array<[string, readonly string[] | undefined]> = [
    ['source', q.sources],
    ['size', q.sizes],
    ['model', q.models],
    ['end_user', q.userIds],
    ['key_id', q.apiKeyIds],
  ];
  for (const [column, list] of filters) {
    if (list && list.length > 0) where.push(`${column} IN (${list.map((v) => p(v)).join(', ')})`);
  }
  const keys = ['bucket', ...grouped.map((f) => `g_${f}`)].join(', ');
  const sql = `SELECT ${select.join(', ')} FROM usage_records WHERE ${where.join(' AND ')} GROUP BY ${keys} ORDER BY ${keys}`;
  return { sql, values };
}

export interface BucketRow {
  bucket: number;
  images: number | null;
  requests: number;
  g_source?: string | null;
  g_size?: string | null;
  g_model?: string | null;
  g_user_id?: string | null;
  g_api_key_id?: string | null;
}

export function rowToBucket(q: UsageBucketQuery, r: BucketRow): UsageBucketRow {
  return {
    bucketStartMs: Math.floor(q.startMs) + Number(r.bucket) * Math.floor(q.widthMs),
    source: r.g_source ?? null,
    size: r.g_size ?? null,
    model: r.g_model ?? null,
    userId: r.g_user_id ?? null,
    apiKeyId: r.g_api_key_id ?? null,
    images: Number(r.images ?? 0),
    requests: Number(r.requests),
  };
}

/** api_keys columns as both dialects return them (admin: SQLite 0/1, Postgres boolean). */
export interface KeyRow {
  id: string;
  name: string;
  admin: number | boolean;
  rpm: number | null;
  tpm: number | null;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export const KEY_COLUMNS = 'id, name, admin, rpm, tpm, created_at, last_used_at, revoked_at';
/** What verifyApiKey reads. */
export const VERIFIED_KEY_COLUMNS = 'id, name, admin, rpm, tpm';

export function rowToVerifiedKey(r: Pick<KeyRow, 'id' | 'name' | 'admin' | 'rpm' | 'tpm'>): VerifiedApiKey {
  return { id: r.id, name: r.name, admin: r.admin === true || r.admin === 1, rpm: r.rpm, tpm: r.tpm };
}

export function rowToKeyInfo(r: KeyRow): ApiKeyInfo {
  return { ...rowToVerifiedKey(r), createdAt: r.created_at, lastUsedAt: r.last_used_at, revokedAt: r.revoked_at };
}

/** Migrations in id order (both dialects name them so that this is the order they apply in). */
export function sortMigrations<M extends { id: string }>(ms: readonly M[]): M[] {
  return [...ms].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
