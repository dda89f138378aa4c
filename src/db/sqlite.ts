// Embedded default Db on better-sqlite3: one file under the data dir, WAL mode, migrations from ./migrations/sqlite.ts.
// API keys are stored only as SHA-256 hashes and found by hash lookup; all queries are prepared statements.

import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { type Migration, sqliteMigrations } from './migrations/sqlite.js';
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
import type {
  ApiKeyInfo,
  CreateApiKeyOptions,
  CreatedApiKey,
  Db,
  ListUsageOptions,
  UsageBucketQuery,
  UsageBucketRow,
  UsageRecord,
  VerifiedApiKey,
} from './types.js';

export interface SqliteDbOptions {
  /** Database file; its parent directory is created if missing. ':memory:' for a throwaway database. */
  path: string;
  /** Clock in epoch milliseconds (key creation, last use, revocation). Default Date.now. */
  now?: () => number;
  /** Apply pending migrations on open (default true). */
  migrate?: boolean;
  /** How long a writer waits for another connection's lock, e.g. the CLI creating a key while the server runs. */
  busyTimeoutMs?: number;
  /** Migrations to apply; tests only. Default: sqliteMigrations. */
  migrations?: readonly Migration[];
}

/**
 * The database holds key hashes, usage and maybe prompts: owner-only (0600) like url-secret. It is created that way
 * before SQLite opens it, and an older one of ours is tightened; SQLite gives the -wal and -shm files the database's mode.
 */
function makePrivate(path: string): void {
  closeSync(openSync(path, 'a', 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    if (!existsSync(file) || (statSync(file).mode & 0o077) === 0) continue;
    try {
      chmodSync(file, 0o600);
    } catch (err) {
      // Someone else's file (a shared database): leave its mode to its owner.
      if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    }
  }
}

export class SqliteDb implements Db {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly migrations: readonly Migration[];
  private stmts: ReturnType<SqliteDb['prepareAll']> | undefined;

  constructor(opts: SqliteDbOptions) {
    this.path = opts.path;
    this.now = opts.now ?? Date.now;
    this.migrations = sortMigrations(opts.migrations ?? sqliteMigrations);
    if (opts.path !== ':memory:' && opts.path !== '') {
      mkdirSync(dirname(opts.path), { recursive: true });
      makePrivate(opts.path);
    }
    this.db = new Database(opts.path);
    try {
      this.db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
      this.db.pragma('journal_mode = WAL'); // stays 'memory' for ':memory:'
      this.db.pragma('synchronous = NORMAL'); // durable enough under WAL, much faster than FULL
      this.db.pragma('foreign_keys = ON');
      if (opts.migrate !== false) this.migrateNow();
    } catch (err) {
      this.db.close();
      throw err;
    }
  }

  /** The journal mode actually in effect ('wal' for a file database). */
  journalMode(): string {
    return String(this.db.pragma('journal_mode', { simple: true }));
  }

  /** Ids of applied migrations, in order. */
  appliedMigrations(): string[] {
    this.ensureMigrationsTable();
    return (this.db.prepare('SELECT id FROM schema_migrations ORDER BY id').all() as { id: string }[]).map((r) => r.id);
  }

  private ensureMigrationsTable(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)');
  }

  async migrate(): Promise<void> {
    this.migrateNow();
  }

  /** Synchronous body of migrate(), also run on open. */
  private migrateNow(): void {
    const known = new Set(this.migrations.map((m) => m.id));
    // IMMEDIATE: take the write lock before reading what is applied, so two processes cannot both apply a migration.
    const run = this.db.transaction(() => {
      this.ensureMigrationsTable();
      const applied = new Set((this.db.prepare('SELECT id FROM schema_migrations').all() as { id: string }[]).map((r) => r.id));
      const unknown = [...applied].filter((id) => !known.has(id));
      if (unknown.length > 0) {
        throw new Error(
          `database ${this.path} has migrations this Easel does not know (${unknown.join(', ')}): it was written by a newer version`,
        );
      }
      const record = this.db.prepare('INSERT INTO schema_migrations (id, applied_at) VALUES (?, ?)');
      for (const m of this.migrations) {
        if (applied.has(m.id)) continue;
        this.db.exec(m.sql);
        record.run(m.id, this.now());
      }
    });
    run.immediate();
    this.stmts = undefined; // schema may have changed
  }

  private prepareAll() {
    const d = this.db;
    return {
      insertKey: d.prepare('INSERT INTO api_keys (id, name, key_hash, admin, rpm, tpm, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      findKey: d.prepare(`SELECT ${VERIFIED_KEY_COLUMNS} FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL`),
      touchKey: d.prepare('UPDATE api_keys SET last_used_at = ? WHERE id = ?'),
      revokeKey: d.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      listKeys: d.prepare(`SELECT ${KEY_COLUMNS} FROM api_keys ORDER BY created_at, id`),
      insertUsage: d.prepare(`INSERT INTO usage_records (${USAGE_COLUMNS.join(', ')}) VALUES (${USAGE_COLUMNS.map(() => '?').join(', ')})`),
      listUsage: d.prepare(
        `SELECT ${USAGE_COLUMNS.join(', ')} FROM usage_records WHERE created_at >= ? ORDER BY created_at DESC, id DESC LIMIT ?`,
      ),
    };
  }

  private get s() {
    if (!this.stmts) this.stmts = this.prepareAll();
    return this.stmts;
  }

  async createApiKey(name: string, opts?: CreateApiKeyOptions): Promise<CreatedApiKey> {
    const o = keyOptions(opts);
    const { id, key, keyHash } = mintApiKey(name);
    const createdAt = this.now();
    this.s.insertKey.run(id, name, keyHash, o.admin ? 1 : 0, o.rpm, o.tpm, createdAt);
    return { id, key, name, ...o, createdAt };
  }

  async verifyApiKey(key: string): Promise<VerifiedApiKey | undefined> {
    if (!looksLikeApiKey(key)) return undefined;
    const row = this.s.findKey.get(hashApiKey(key)) as KeyRow | undefined;
    if (!row) return undefined;
    this.s.touchKey.run(this.now(), row.id);
    return rowToVerifiedKey(row);
  }

  async revokeApiKey(id: string): Promise<boolean> {
    if (typeof id !== 'string') return false;
    return this.s.revokeKey.run(this.now(), id).changes > 0;
  }

  async listApiKeys(): Promise<ApiKeyInfo[]> {
    return (this.s.listKeys.all() as KeyRow[]).map(rowToKeyInfo);
  }

  async recordUsage(r: UsageRecord): Promise<void> {
    this.s.insertUsage.run(...usageValues(r));
  }

  async listUsage(opts: ListUsageOptions = {}): Promise<UsageRecord[]> {
    const { limit, since } = usageQueryBounds(opts);
    return (this.s.listUsage.all(since, limit) as UsageRow[]).map(rowToUsage);
  }

  async usageBuckets(q: UsageBucketQuery): Promise<UsageBucketRow[]> {
    const { sql, values } = usageBucketSql(q, () => '?');
    return (this.db.prepare(sql).all(...values) as BucketRow[]).map((r) => rowToBucket(q, r));
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

export function openSqliteDb(opts: SqliteDbOptions): SqliteDb {
  return new SqliteDb(opts);
}
