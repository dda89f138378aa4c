// The Db contract and Postgres-only behaviour (hashed storage, nodes migrating at once, failing closed on a bad
// database) against a real throwaway Postgres cluster started by test/helpers/postgres.ts.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiKey, openDb, openPostgresDb, PostgresDb, postgresMigrations } from '../../src/db/index.js';
import { dbContract, usage } from '../contract/db.js';
import { easel } from '../helpers/cli.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';

let server: TestPostgres;
beforeAll(async () => {
  server = await startPostgres();
}, 60_000);
afterAll(async () => {
  await server?.stop();
});

dbContract('Postgres', async (now) => openPostgresDb({ url: await server.newDatabase(), now }));

describe('PostgresDb', () => {
  it('stores only the hash of a key', async () => {
    const url = await server.newDatabase();
    const db = await openPostgresDb({ url });
    const k = await db.createApiKey('h');
    await db.close();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const r = await c.query('SELECT key_hash FROM api_keys');
    await c.end();
    expect(r.rows).toEqual([{ key_hash: hashApiKey(k.key) }]);
    expect(JSON.stringify(r.rows)).not.toContain(k.key);
  });

  it('several nodes migrating at once apply each migration once', async () => {
    const url = await server.newDatabase();
    const dbs = await Promise.all(Array.from({ length: 4 }, () => openPostgresDb({ url })));
    expect(await dbs[0]?.appliedMigrations()).toEqual(postgresMigrations.map((m) => m.id));
    await Promise.all(dbs.map((d) => d.close()));
  });

  it('a failing migration changes nothing; a newer database is refused', async () => {
    const url = await server.newDatabase();
    const broken = [...postgresMigrations, { id: '999_broken', sql: 'CREATE TABLE ok_part (x INTEGER); THIS IS NOT SQL;' }];
    await expect(openPostgresDb({ url, migrations: broken })).rejects.toThrow(/cannot use database/);
    const extra = [...postgresMigrations, { id: '999_future', sql: 'CREATE TABLE future (x INTEGER);' }];
    await (await openPostgresDb({ url, migrations: extra })).close();
    await expect(openPostgresDb({ url })).rejects.toThrow(/newer version/);
    const plain = new PostgresDb({ url });
    expect(await plain.appliedMigrations()).toEqual(extra.map((m) => m.id));
    await plain.close();
  });

  it('bad credentials or an unreachable server fail at open, naming the database without its password', async () => {
    const wrong = server.url('postgres', 'wrong-password');
    const err = await openDb({ url: wrong, dataDir: '/nonexistent' }).catch((e: Error) => e);
    expect(String(err)).toMatch(/cannot use database postgres:\/\/easel:\*\*\*@127\.0\.0\.1/);
    expect(String(err)).not.toContain('wrong-password');
    await expect(openDb({ url: 'postgres://easel@127.0.0.1:1/x', dataDir: '/nonexistent' })).rejects.toThrow(/127\.0\.0\.1:1/);
  });

  it('openDb refuses a URL that is not Postgres', async () => {
    await expect(openDb({ url: 'mysql://x', dataDir: '/nonexistent' })).rejects.toThrow(/postgres:\/\//);
  });
});

describe('easel with --db', () => {
  it('keys create, list and revoke use the Postgres named by --db (or EASEL_DB), not the data dir', async () => {
    const url = await server.newDatabase();
    const dir = await mkdtemp(join(tmpdir(), 'easel-pgcli-'));
    try {
      const created = await easel(['keys', 'create', 'ci', '--db', url, '--data-dir', dir]);
      expect(created.code, created.stderr).toBe(0);
      const id = /created key (key_\w+)/.exec(created.stderr)?.[1];
      const db = await openPostgresDb({ url });
      expect((await db.verifyApiKey(created.stdout.trim()))?.id).toBe(id);
      await db.close();
      const listed = await easel(['keys', 'list', '--data-dir', dir], { EASEL_DB: url });
      expect(listed.stdout).toBe(`${id}\tci\tactive\tstandard\t-\t-\n`);
      expect((await easel(['keys', 'revoke', String(id), '--db', url])).code).toBe(0);
      expect((await easel(['keys', 'list', '--db', url])).stdout).toBe(`${id}\tci\trevoked\tstandard\t-\t-\n`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('keys create --admin --rpm --tpm stores the flag and limits; a bad limit is refused before anything is written', async () => {
    const url = await server.newDatabase();
    const created = await easel(['keys', 'create', 'ops', '--admin', '--rpm', '30', '--tpm', '9000', '--db', url]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stderr).toMatch(/created admin key key_\w+ \(ops\)/);
    const db = await openPostgresDb({ url });
    expect(await db.verifyApiKey(created.stdout.trim())).toMatchObject({ name: 'ops', admin: true, rpm: 30, tpm: 9000 });
    await db.close();
    expect((await easel(['keys', 'list', '--db', url])).stdout).toMatch(/^key_\w+\tops\tactive\tadmin\t30\t9000\n$/);
    const bad = await easel(['keys', 'create', 'x', '--rpm', '0', '--db', url]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--rpm must be a positive integer/);
    expect((await easel(['keys', 'list', '--db', url])).stdout.split('\n').filter(Boolean)).toHaveLength(1);
  }, 60_000);

  it('easel usage --db reads the table from Postgres, bucketed there by day, model and key', async () => {
    const url = await server.newDatabase();
    const db = await openPostgresDb({ url });
    const k = await db.createApiKey('pg-app');
    const today = Math.floor(Date.now() / 86_400_000) * 86_400_000;
    await db.recordUsage(usage(today + 1, { keyId: k.id, images: 2 }));
    await db.recordUsage(usage(today + 2, { keyId: k.id, images: 0, status: 500 }));
    await db.close();
    const r = await easel(['usage', '--db', url]);
    expect(r.code, r.stderr).toBe(0);
    const day = new Date(today).toISOString().slice(0, 10);
    expect(
      r.stdout
        .split('\n')
        .slice(1, 3)
        .map((l) => l.split(/\s{2,}/)),
    ).toEqual([
      [day, 'gpt-image-1', `${k.id} (pg-app)`, '2', '2'],
      ['total', '2', '2'],
    ]);
  }, 60_000);

  it('easel serve with bad credentials exits 1 at start, naming the database and the reason', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'easel-pgcli-'));
    try {
      const r = await easel(['serve', '--port', '0', '--data-dir', dir, '--db', server.url('postgres', 'wrong-password')]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        /cannot use database postgres:\/\/easel:\*\*\*@127\.0\.0\.1:\d+\/postgres: .*password authentication failed/,
      );
      expect(r.stderr).not.toContain('wrong-password');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
