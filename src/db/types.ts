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
  /** HTTP status sent to the client. */
  status: number;
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
  close(): Promise<void>;
}

export const API_KEY_PREFIX = 'esk-';
