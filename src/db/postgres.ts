// Networked Db on Postgres through a `pg` pool, for several API nodes sharing keys and usage. Same semantics as
// ./sqlite.ts (hashed keys, nullable usage fields, newest-first listUsage); migrations run under an advisory lock.

import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { postgresMigrations } from './migrations/postgres.js';
import type { Migration } from './migrations/sqlite.js';
import { hashApiKey } from './sqlite.js';
import { API_KEY_PREFIX, type ApiKeyInfo, type CreatedApiKey, type Db, type ListUsageOptions, type UsageRecord } from './types.js';

export interface PostgresDbOptions {
  /** postgres://user:password@host:port/database */
  url: string;
  now?: () => number;
  /** Migrations to apply; tests only. Default: postgresMigrations. */
  migrations?: readonly Migration[];
  /** Pool size (default 10). */
  maxConnections?: number;
}

const MAX_KEY_LENGTH = 256;
const MAX_NAME_LENGTH = 200;
const DEFAULT_USAGE_LIMIT = 100;
const MAX_USAGE_LIMIT = 10_000;
/** Arbitrary constant key for pg_advisory_xact_lock: every Easel node migrating the same database takes it. */
const MIGRATION_LOCK = 7_415_032_019;

// BIGINT (int8) columns come back as strings by default; our times are epoch ms, well inside 2^53.
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === pg.types.builtins.INT8) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

/** The URL with any password replaced, for error messages and logs. */
export function redactDbUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable database URL)';
  }
}

interface UsageRow {
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
}

function rowToUsage(r: UsageRow): UsageRecord {
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
  };
}

export class PostgresDb implements Db {
  private readonly pool: pg.Pool;
  private readonly now: () => number;
  private readonly migrations: readonly Migration[];
  private closed = false;

  constructor(opts: PostgresDbOptions) {
    this.now = opts.now ?? Date.now;
    this.migrations = [...(opts.migrations ?? postgresMigrations)].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.pool = new pg.Pool({ connectionString: opts.url, max: opts.maxConnections ?? 10, types, connectionTimeoutMillis: 10_000 });
    // An idle client losing its connection must not crash the process; the next query gets a fresh one.
    this.pool.on('error', () => {});
  }

  /** Ids of applied migrations, in order. */
  async appliedMigrations(): Promise<string[]> {
    const r = await this.pool.query<{ id: string }>('SELECT id FROM schema_migrations ORDER BY id');
    return r.rows.map((row) => row.id);
  }

  async migrate(): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      // Nodes starting together queue here; the lock ends with the transaction.
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)');
      const applied = new Set((await client.query<{ id: string }>('SELECT id FROM schema_migrations')).rows.map((r) => r.id));
      const known = new Set(this.migrations.map((m) => m.id));
      const unknown = [...applied].filter((id) => !known.has(id));
      if (unknown.length > 0) {
        throw new Error(`database has migrations this Easel does not know (${unknown.join(', ')}): it was written by a newer version`);
      }
      for (const m of this.migrations) {
        if (applied.has(m.id)) continue;
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (id, applied_at) VALUES ($1, $2)', [m.id, this.now()]);
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async createApiKey(name: string): Promise<CreatedApiKey> {
    if (typeof name !== 'string' || name.trim().length === 0 || name.length > MAX_NAME_LENGTH) {
      throw new TypeError(`API key name must be a non-empty string of at most ${MAX_NAME_LENGTH} characters`);
    }
    const id = 'key_' + randomBytes(8).toString('hex');
    const key = API_KEY_PREFIX + randomBytes(32).toString('base64url');
    const createdAt = this.now();
    await this.pool.query('INSERT INTO api_keys (id, name, key_hash, created_at) VALUES ($1, $2, $3, $4)', [
      id,
      name,
      hashApiKey(key),
      createdAt,
    ]);
    return { id, key, name, createdAt };
  }

  async verifyApiKey(key: string): Promise<{ id: string; name: string } | undefined> {
    if (typeof key !== 'string' || !key.startsWith(API_KEY_PREFIX) || key.length > MAX_KEY_LENGTH) return undefined;
    const r = await this.pool.query<{ id: string; name: string }>(
      'UPDATE api_keys SET last_used_at = $1 WHERE key_hash = $2 AND revoked_at IS NULL RETURNING id, name',
      [this.now(), hashApiKey(key)],
    );
    const row = r.rows[0];
    return row ? { id: row.id, name: row.name } : undefined;
  }

  async revokeApiKey(id: string): Promise<boolean> {
    if (typeof id !== 'string') return false;
    const r = await this.pool.query('UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [this.now(), id]);
    return (r.rowCount ?? 0) > 0;
  }

  async listApiKeys(): Promise<ApiKeyInfo[]> {
    const r = await this.pool.query<{
      id: string;
      name: string;
      created_at: number;
      last_used_at: number | null;
      revoked_at: number | null;
    }>('SELECT id, name, created_at, last_used_at, revoked_at FROM api_keys ORDER BY created_at, id');
    return r.rows.map((row) => ({
      id: row.id,
      name: row.name,
      createdAt: row.created_at,
      lastUsedAt: row.last_used_at,
      revokedAt: row.revoked_at,
    }));
  }

  async recordUsage(r: UsageRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO usage_records (request_id, key_id, endpoint, model, served_model, size, n, quality,
         input_tokens, output_tokens, end_user, duration_ms, status, prompt, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
      [
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
      ],
    );
  }

  async listUsage(opts: ListUsageOptions = {}): Promise<UsageRecord[]> {
    const rawLimit = opts.limit !== undefined && Number.isFinite(opts.limit) ? opts.limit : DEFAULT_USAGE_LIMIT;
    const limit = Math.min(MAX_USAGE_LIMIT, Math.max(0, Math.floor(rawLimit)));
    const since = opts.since !== undefined && Number.isFinite(opts.since) ? opts.since : Number.MIN_SAFE_INTEGER;
    const r = await this.pool.query<UsageRow>(
      `SELECT request_id, key_id, endpoint, model, served_model, size, n, quality, input_tokens, output_tokens,
         end_user, duration_ms, status, prompt, created_at
       FROM usage_records WHERE created_at >= $1 ORDER BY created_at DESC, id DESC LIMIT $2`,
      [since, limit],
    );
    return r.rows.map(rowToUsage);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}

/**
 * Connects, checks the credentials with a first query and applies migrations; on any failure the pool is closed and
 * the error names the (redacted) URL, so `easel serve` stops at start instead of running half-working.
 */
export async function openPostgresDb(opts: PostgresDbOptions): Promise<PostgresDb> {
  const db = new PostgresDb(opts);
  try {
    await db.migrate();
  } catch (err) {
    await db.close().catch(() => {});
    throw new Error(`cannot use database ${redactDbUrl(opts.url)}: ${(err as Error).message}`, { cause: err });
  }
  return db;
}
