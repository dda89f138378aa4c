// Networked Db on Postgres through a `pg` pool, for several API nodes sharing keys and usage. Same semantics as
// ./sqlite.ts (hashed keys, nullable usage fields, newest-first listUsage); migrations run under an advisory lock.

import pg from 'pg';
import { postgresMigrations } from './migrations/postgres.js';
import type { Migration } from './migrations/sqlite.js';
import {
  type BucketRow,
  hashApiKey,
  KEY_COLUMNS,
  type KeyRow,
  keyOptions,
  looksLikeApiKey,
  mintApiKey,
  rowToBucket,
  rowToKeyInfo,
  rowToUsage,
  rowToVerifiedKey,
  sortMigrations,
  USAGE_COLUMNS,
  type UsageRow,
  usageBucketSql,
  usageQueryBounds,
  usageValues,
  VERIFIED_KEY_COLUMNS,
} from './rows.js';
import {
  type ApiKeyInfo,
  type CreateApiKeyOptions,
  type CreatedApiKey,
  type Db,
  DbUnavailableError,
  type ListUsageOptions,
  type UsageBucketQuery,
  type UsageBucketRow,
  type UsageRecord,
  type VerifiedApiKey,
} from './types.js';

export interface PostgresDbOptions {
  /** postgres://user:password@host:port/database */
  url: string;
  now?: () => number;
  /** Migrations to apply; tests only. Default: postgresMigrations. */
  migrations?: readonly Migration[];
  /** Pool size (default 10). */
  maxConnections?: number;
  /** Most milliseconds to get a connection (default 3000). */
  connectTimeoutMs?: number;
  /** Most milliseconds one statement may take, including a dropped connection going unnoticed (default 10000). */
  queryTimeoutMs?: number;
}

/** Socket errors, Postgres' connection-exception class (08) and shutdown codes (57P01-57P03), pg's own timeouts. */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EPIPE',
  'EAI_AGAIN',
  '57P01',
  '57P02',
  '57P03',
]);
const UNREACHABLE_MESSAGES = /timeout exceeded when trying to connect|Connection terminated|Query read timeout|connection timeout/i;

/** The DbUnavailableError for an error that means the server is out of reach, else undefined. */
function unreachable(err: unknown): DbUnavailableError | undefined {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if (UNREACHABLE_CODES.has(code) || code.startsWith('08') || UNREACHABLE_MESSAGES.test(message)) {
    return new DbUnavailableError(`the database is unreachable (${code || message})`, 2, { cause: err });
  }
  return undefined;
}

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

export class PostgresDb implements Db {
  private readonly pool: pg.Pool;
  private readonly now: () => number;
  private readonly migrations: readonly Migration[];
  private closed = false;

  constructor(opts: PostgresDbOptions) {
    this.now = opts.now ?? Date.now;
    this.migrations = sortMigrations(opts.migrations ?? postgresMigrations);
    this.pool = new pg.Pool({
      connectionString: opts.url,
      max: opts.maxConnections ?? 10,
      types,
      // An outage answers within seconds: connecting, and every statement, are bounded.
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 3000,
      query_timeout: opts.queryTimeoutMs ?? 10_000,
    });
    // An idle client losing its connection must not crash the process; the next query gets a fresh one.
    this.pool.on('error', () => {});
  }

  /** A pooled query; losing the server (refused, timed out, dropped) becomes DbUnavailableError. */
  private async query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(sql, values);
    } catch (err) {
      throw unreachable(err) ?? err;
    }
  }

  /** Ids of applied migrations, in order. */
  async appliedMigrations(): Promise<string[]> {
    const r = await this.query<{ id: string }>('SELECT id FROM schema_migrations ORDER BY id');
    return r.rows.map((row) => row.id);
  }

  async migrate(): Promise<void> {
    const client = await this.pool.connect().catch((err: unknown) => {
      throw unreachable(err) ?? err;
    });
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

  async createApiKey(name: string, opts?: CreateApiKeyOptions): Promise<CreatedApiKey> {
    const o = keyOptions(opts);
    const { id, key, keyHash } = mintApiKey(name);
    const createdAt = this.now();
    await this.query('INSERT INTO api_keys (id, name, key_hash, admin, rpm, tpm, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
      id,
      name,
      keyHash,
      o.admin,
      o.rpm,
      o.tpm,
      createdAt,
    ]);
    return { id, key, name, ...o, createdAt };
  }

  async verifyApiKey(key: string): Promise<VerifiedApiKey | undefined> {
    if (!looksLikeApiKey(key)) return undefined;
    const r = await this.query<KeyRow>(
      `UPDATE api_keys SET last_used_at = $1 WHERE key_hash = $2 AND revoked_at IS NULL RETURNING ${VERIFIED_KEY_COLUMNS}`,
      [this.now(), hashApiKey(key)],
    );
    const row = r.rows[0];
    return row ? rowToVerifiedKey(row) : undefined;
  }

  async revokeApiKey(id: string): Promise<boolean> {
    if (typeof id !== 'string') return false;
    const r = await this.query('UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [this.now(), id]);
    return (r.rowCount ?? 0) > 0;
  }

  async listApiKeys(): Promise<ApiKeyInfo[]> {
    const r = await this.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM api_keys ORDER BY created_at, id`);
    return r.rows.map(rowToKeyInfo);
  }

  async recordUsage(r: UsageRecord): Promise<void> {
    const params = USAGE_COLUMNS.map((_, i) => `$${i + 1}`).join(', ');
    await this.query(`INSERT INTO usage_records (${USAGE_COLUMNS.join(', ')}) VALUES (${params})`, usageValues(r));
  }

  async listUsage(opts: ListUsageOptions = {}): Promise<UsageRecord[]> {
    const { limit, since } = usageQueryBounds(opts);
    const r = await this.query<UsageRow>(
      `SELECT ${USAGE_COLUMNS.join(', ')} FROM usage_records WHERE created_at >= $1 ORDER BY created_at DESC, id DESC LIMIT $2`,
      [since, limit],
    );
    return r.rows.map(rowToUsage);
  }

  async usageBuckets(q: UsageBucketQuery): Promise<UsageBucketRow[]> {
    const { sql, values } = usageBucketSql(q, (i) => `$${i}`);
    const r = await this.query<BucketRow>(sql, values);
    return r.rows.map((row) => rowToBucket(q, row));
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
