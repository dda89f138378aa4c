// The Db seam: API keys (stored hashed) and per-request usage records, behind one interface so the embedded
// SQLite default and Postgres (src/db/postgres.ts) are interchangeable. All times are epoch milliseconds.

/** One request's accounting row. Optional fields come back from `listUsage` as null. */
export interface UsageRecord {
  requestId: string;
  keyId?: string | null;
  /** e.g. '/v1/images/generations' */
  endpoint: string;
  /** The model name the client asked for (e.g. 'dall-e-3'). */
  model: string;
  /** The local model that served it (after alias resolution). */
  servedModel: string;
  size: string;
  n: number;
  quality?: string | null;
  inputTokens: number;
  outputTokens: number;
  /** OpenAI's `user` field (end-user identifier). */
  user?: string | null;
  durationMs: number;
  /** Images delivered to the client: 0 when the request failed or was cancelled. */
  images: number;
  /** HTTP status sent to the client (499 when the client left first; for a stream that failed, the error event's status). */
  status: number;
  /** The error's `code` when the request failed (e.g. 'rate_limit_exceeded', 'client_closed_request'); null on success. */
  errorCode?: string | null;
  /** Prompt text; only recorded when the server is configured to keep prompts. */
  prompt?: string | null;
  createdAt: number;
}

export interface CreatedApiKey {
  id: string;
  /** The secret key ('esk-' + random). Shown once: only its hash is stored. */
  key: string;
  name: string;
  admin: boolean;
  rpm: number | null;
  tpm: number | null;
  createdAt: number;
}

export interface ApiKeyInfo {
  id: string;
  name: string;
  /** May read the organization Usage API (`easel keys create NAME --admin`). */
  admin: boolean;
  /** Per-key limits (requests, tokens per minute); null when the key has none of its own. */
  rpm: number | null;
  tpm: number | null;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

export interface CreateApiKeyOptions {
  admin?: boolean;
  /** Positive integers; omitted means no per-key limit. */
  rpm?: number;
  tpm?: number;
}

/** What a valid, unrevoked key resolves to on each request. */
export interface VerifiedApiKey {
  id: string;
  name: string;
  admin: boolean;
  rpm: number | null;
  tpm: number | null;
}

export interface ListUsageOptions {
  /** Maximum rows, newest first. Default 100, capped at 10000. */
  limit?: number;
  /** Only records with createdAt >= since. */
  since?: number;
}

/** What the Usage API groups images usage by (OpenAI's group_by values, less project_id: Easel has one project). */
export type UsageGroupField = 'source' | 'size' | 'model' | 'user_id' | 'api_key_id';

/** OpenAI's images usage sources, from the endpoint that answered. */
export type UsageSource = 'image.generation' | 'image.edit' | 'image.variation';

/** One page of the Usage API, in epoch milliseconds: rows with startMs <= createdAt < endMs, cut into buckets. */
export interface UsageBucketQuery {
  startMs: number;
  endMs: number;
  /** Bucket i covers [startMs + i*widthMs, startMs + (i+1)*widthMs). */
  widthMs: number;
  /** Filters: only rows matching one of the values (omitted or empty: no filter). */
  sources?: readonly string[];
  sizes?: readonly string[];
  models?: readonly string[];
  userIds?: readonly string[];
  apiKeyIds?: readonly string[];
  groupBy?: readonly UsageGroupField[];
}

/** One result row: a bucket's totals for one combination of the grouped fields (null where not grouped). */
export interface UsageBucketRow {
  /** Start of the bucket, epoch ms. */
  bucketStartMs: number;
  source: string | null;
  size: string | null;
  model: string | null;
  userId: string | null;
  apiKeyId: string | null;
  images: number;
  requests: number;
}

/**
 * Every method is async so a networked database (Postgres) fits the same seam as the embedded SQLite file.
 * Callers await each call; the SQLite implementation answers synchronously inside the promise.
 */
export interface Db {
  /** Applies pending migrations; a no-op when the schema is current. */
  migrate(): Promise<void>;
  /** Throws TypeError for an empty or overlong name, or an rpm/tpm that is not a positive integer. */
  createApiKey(name: string, opts?: CreateApiKeyOptions): Promise<CreatedApiKey>;
  /** The key's id, name, admin flag and limits if it exists and is not revoked (and stamps last_used_at), else undefined. */
  verifyApiKey(key: string): Promise<VerifiedApiKey | undefined>;
  /** True if the key was active and is now revoked; false if unknown or already revoked. */
  revokeApiKey(id: string): Promise<boolean>;
  listApiKeys(): Promise<ApiKeyInfo[]>;
  recordUsage(r: UsageRecord): Promise<void>;
  listUsage(opts?: ListUsageOptions): Promise<UsageRecord[]>;
  /**
   * Usage totals (images delivered, requests recorded) per bucket and group, computed by the database: only buckets
   * holding at least one matching row, ordered by bucket and then by the grouped fields.
   */
  usageBuckets(q: UsageBucketQuery): Promise<UsageBucketRow[]>;
  close(): Promise<void>;
}

export const API_KEY_PREFIX = 'esk-';

/**
 * The database cannot be reached now (refused, timed out, or its connection dropped): the API answers a retryable 503
 * with Retry-After, never a hang or a bare 500. Other database errors stay what they are.
 */
export class DbUnavailableError extends Error {
  override readonly name = 'DbUnavailableError';
  constructor(
    message: string,
    /** Suggested seconds before retrying. */
    readonly retryAfterSeconds = 2,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
