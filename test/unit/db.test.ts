// Tests for the embedded SQLite Db: migrations, hashed API keys, usage records, persistence across reopen.
// Every test uses a real database file in a fresh temp directory; the clock is injected.

import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sqliteMigrations } from '../../src/db/migrations/sqlite.js';
import { hashApiKey } from '../../src/db/rows.js';
import { openSqliteDb, type SqliteDb } from '../../src/db/sqlite.js';
import { dbContract, usage } from '../contract/db.js';

let root: string;
let dbPath: string;
let clock: number;
const now = () => clock;
const open: SqliteDb[] = [];

function openDb(opts: Partial<Parameters<typeof openSqliteDb>[0]> = {}): SqliteDb {
  const db = openSqliteDb({ path: dbPath, now, ...opts });
  open.push(db);
  return db;
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'easel-db-'));
  dbPath = join(root, 'data', 'nested', 'easel.sqlite');
  clock = 1_700_000_000_000;
});
afterEach(async () => {
  for (const db of open.splice(0)) await db.close();
  await rm(root, { recursive: true, force: true });
});

describe('SqliteDb migrations', () => {
  it('creates the file and parent dirs, uses WAL, and records migrations', async () => {
    const db = openDb();
    expect(existsSync(dbPath)).toBe(true);
    expect(db.journalMode()).toBe('wal');
    expect(db.appliedMigrations()).toEqual(sqliteMigrations.map((m) => m.id));
  });

  it('migrate twice is a no-op and reopen does not re-apply', async () => {
    const db = openDb();
    const k = await db.createApiKey('first');
    await db.migrate();
    await db.migrate();
    expect(db.appliedMigrations()).toEqual(sqliteMigrations.map((m) => m.id));
    await db.close();
    const again = openDb();
    expect(again.appliedMigrations()).toEqual(sqliteMigrations.map((m) => m.id));
    expect((await again.verifyApiKey(k.key))?.id).toBe(k.id);
    const raw = new Database(dbPath, { readonly: true });
    const rows = raw.prepare('SELECT id, applied_at FROM schema_migrations').all() as { id: string; applied_at: number }[];
    raw.close();
    expect(rows).toHaveLength(sqliteMigrations.length);
  });

  it('applies a later migration on reopen, and a failing migration changes nothing', async () => {
    openDb().close();
    const extra = [...sqliteMigrations, { id: '999_test', sql: 'CREATE TABLE test_extra (x INTEGER);' }];
    const db = openDb({ migrations: extra });
    expect(db.appliedMigrations()).toEqual(extra.map((m) => m.id));
    await db.close();

    const broken = [...extra, { id: '9999_broken', sql: 'CREATE TABLE ok_part (x INTEGER); THIS IS NOT SQL;' }];
    expect(() => openDb({ migrations: broken })).toThrow();
    const raw = new Database(dbPath, { readonly: true });
    const tables = (raw.prepare("SELECT name FROM sqlite_master WHERE type='table'").all() as { name: string }[]).map((r) => r.name);
    raw.close();
    expect(tables).not.toContain('ok_part');
    expect(tables).toContain('test_extra');
  });

  it('an older database upgrades in place: keys become standard without limits, old rows get their source and images', async () => {
    const v1 = openDb({ migrations: sqliteMigrations.filter((m) => m.id === '001_init') });
    const raw = new Database(dbPath);
    raw.prepare("INSERT INTO api_keys (id, name, key_hash, created_at) VALUES ('key_old', 'old', 'h', 1)").run();
    const insert = raw.prepare(
      `INSERT INTO usage_records (request_id, endpoint, model, served_model, size, n, input_tokens, output_tokens, duration_ms, status, created_at)
       VALUES (?, ?, 'dall-e-2', 'easel-default', '256x256', 3, 0, 0, 10, ?, ?)`,
    );
    insert.run('r1', '/v1/images/edits', 200, 10);
    insert.run('r2', '/v1/images/variations', 503, 20);
    raw.close();
    await v1.close();
    const db = openDb();
    expect(await db.listApiKeys()).toMatchObject([{ id: 'key_old', admin: false, rpm: null, tpm: null }]);
    const rows = await db.usageBuckets({ startMs: 0, endMs: 100, widthMs: 100, groupBy: ['source'] });
    expect(rows.map((r) => [r.source, r.images, r.requests])).toEqual([
      ['image.edit', 3, 1],
      ['image.variation', 0, 1],
    ]);
  });

  it('refuses a database written by a newer version', async () => {
    const extra = [...sqliteMigrations, { id: '999_future', sql: 'CREATE TABLE future (x INTEGER);' }];
    openDb({ migrations: extra }).close();
    expect(() => openDb()).toThrow(/newer version/);
  });
});

// Key and usage semantics common to every Db are in the contract suite (test/contract/db.ts) at the bottom; these
// tests are about the SQLite file itself.
describe('SqliteDb API keys', () => {
  it('never stores the plaintext key', async () => {
    const db = openDb();
    const k = await db.createApiKey('secret-holder');
    await db.close();
    const raw = new Database(dbPath, { readonly: true });
    const row = raw.prepare('SELECT * FROM api_keys WHERE id = ?').get(k.id) as Record<string, unknown>;
    raw.close();
    expect(row.key_hash).toBe(hashApiKey(k.key));
    expect(Object.values(row).map(String)).not.toContain(k.key);
    for (const v of Object.values(row)) expect(String(v)).not.toContain(k.key.slice(4));
    // Nor anywhere in the database files (main file + WAL).
    for (const f of [dbPath, dbPath + '-wal']) {
      if (existsSync(f)) expect((await readFile(f)).includes(Buffer.from(k.key.slice(4)))).toBe(false);
    }
  });
});

describe('SqliteDb usage records', () => {
  it('keeps keys and usage across reopen', async () => {
    const db = openDb();
    const k = await db.createApiKey('persist');
    await db.recordUsage(usage(clock, { keyId: k.id, prompt: null }));
    await db.close();
    const again = openDb();
    expect((await again.verifyApiKey(k.key))?.name).toBe('persist');
    expect(await again.listUsage()).toEqual([usage(clock, { keyId: k.id, prompt: null })]);
  });
});

dbContract('SQLite', async (now) => openSqliteDb({ path: ':memory:', now }));
