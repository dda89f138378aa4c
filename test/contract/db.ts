// The Db contract: one suite that every implementation (embedded SQLite, Postgres) must pass. Each test gets a fresh,
// migrated, empty database from `make`, with a clock the test controls; the suite closes it afterwards.
import { afterEach, describe, expect, it } from 'vitest';
import { hashApiKey } from '../../src/db/rows.js';
import type { Db, UsageRecord } from '../../src/db/types.js';

export type DbFactory = (now: () => number) => Promise<Db>;

/** A usage record at `createdAt`, every field set; `over` replaces some. */
export function usage(createdAt: number, over: Partial<UsageRecord> = {}): UsageRecord {
  return {
    requestId: `req_${createdAt}`,
    keyId: null,
    endpoint: '/v1/images/generations',
    model: 'gpt-image-1',
    servedModel: 'easel-default',
    size: '1024x1024',
    n: 2,
    quality: 'low',
    inputTokens: 12,
    outputTokens: 544,
    user: 'user-42',
    durationMs: 1234,
    status: 200,
    prompt: null,
    createdAt,
    ...over,
  };
}

export function dbContract(name: string, make: DbFactory): void {
  describe(`Db contract: ${name}`, () => {
    let clock = 1_700_000_000_000;
    let db: Db | undefined;
    const open = async () => {
      db = await make(() => clock);
      return db;
    };
    afterEach(async () => {
      await db?.close();
      db = undefined;
    });

    it('creates keys that verify, stamps last use, and revokes them once', async () => {
      const d = await open();
      const k = await d.createApiKey('ci');
      expect(k.key).toMatch(/^esk-/);
      expect(k.createdAt).toBe(clock);
      clock += 1000;
      expect(await d.verifyApiKey(k.key)).toEqual({ id: k.id, name: 'ci', admin: false, rpm: null, tpm: null });
      expect(k.key).toMatch(/^esk-[A-Za-z0-9_-]{43}$/);
      expect(await d.verifyApiKey(`${k.key}x`)).toBeUndefined();
      expect(await d.verifyApiKey(k.key.slice(0, -1))).toBeUndefined();
      expect(await d.verifyApiKey(hashApiKey(k.key))).toBeUndefined(); // the stored hash is no credential
      expect(await d.verifyApiKey('')).toBeUndefined();
      expect(await d.verifyApiKey(undefined as never)).toBeUndefined();
      expect(await d.verifyApiKey('not-a-key')).toBeUndefined();
      const [info] = await d.listApiKeys();
      expect(info).toEqual({
        id: k.id,
        name: 'ci',
        admin: false,
        rpm: null,
        tpm: null,
        createdAt: clock - 1000,
        lastUsedAt: clock,
        revokedAt: null,
      });
      clock += 1000;
      expect(await d.revokeApiKey(k.id)).toBe(true);
      expect(await d.revokeApiKey(k.id)).toBe(false);
      expect(await d.revokeApiKey('key_unknown')).toBe(false);
      expect(await d.verifyApiKey(k.key)).toBeUndefined();
      expect((await d.listApiKeys())[0]?.revokedAt).toBe(clock);
    });

    it('rejects empty or overlong key names and lists keys oldest first', async () => {
      const d = await open();
      await expect(d.createApiKey('  ')).rejects.toThrow(TypeError);
      await expect(d.createApiKey('x'.repeat(201))).rejects.toThrow(TypeError);
      const a = await d.createApiKey('a');
      clock += 1;
      const b = await d.createApiKey('b');
      expect((await d.listApiKeys()).map((k) => k.id)).toEqual([a.id, b.id]);
    });

    it('keeps the admin flag and per-key rpm/tpm limits; refuses limits that are not positive integers', async () => {
      const d = await open();
      const admin = await d.createApiKey('ops', { admin: true });
      clock += 1;
      const limited = await d.createApiKey('batch', { rpm: 60, tpm: 5000 });
      clock += 1;
      const onlyRpm = await d.createApiKey('rpm-only', { rpm: 1 });
      expect(admin).toMatchObject({ name: 'ops', admin: true, rpm: null, tpm: null });
      expect(limited).toMatchObject({ admin: false, rpm: 60, tpm: 5000 });
      expect(await d.verifyApiKey(admin.key)).toEqual({ id: admin.id, name: 'ops', admin: true, rpm: null, tpm: null });
      expect(await d.verifyApiKey(limited.key)).toEqual({ id: limited.id, name: 'batch', admin: false, rpm: 60, tpm: 5000 });
      expect(await d.verifyApiKey(onlyRpm.key)).toMatchObject({ rpm: 1, tpm: null });
      const listed = await d.listApiKeys();
      expect(listed.map((k) => [k.name, k.admin, k.rpm, k.tpm])).toEqual([
        ['ops', true, null, null],
        ['batch', false, 60, 5000],
        ['rpm-only', false, 1, null],
      ]);
      for (const bad of [0, -1, 1.5, Number.NaN, 2 ** 31]) {
        await expect(d.createApiKey('bad', { rpm: bad })).rejects.toThrow(/rpm must be a positive integer/);
        await expect(d.createApiKey('bad', { tpm: bad })).rejects.toThrow(/tpm must be a positive integer/);
      }
      expect((await d.listApiKeys()).length).toBe(3);
    });

    it('round-trips usage rows, optional fields as null, newest first', async () => {
      const d = await open();
      const k = await d.createApiKey('u');
      await d.recordUsage(usage(100, { keyId: k.id, prompt: 'a red fox', durationMs: 12.6 }));
      const bare = usage(200);
      delete bare.keyId;
      delete bare.quality;
      delete bare.user;
      delete bare.prompt;
      await d.recordUsage(bare);
      const rows = await d.listUsage();
      expect(rows).toEqual([
        { ...usage(200), keyId: null, quality: null, user: null, prompt: null },
        { ...usage(100), keyId: k.id, prompt: 'a red fox', durationMs: 13 },
      ]);
    });

    it('keeps repeated request ids; limit, since and insertion order break ties', async () => {
      const d = await open();
      for (let i = 0; i < 5; i++) await d.recordUsage(usage(1000 + (i >> 1), { requestId: 'same', n: i + 1 }));
      const all = await d.listUsage();
      expect(all.map((r) => r.n)).toEqual([5, 4, 3, 2, 1]);
      expect((await d.listUsage({ limit: 2 })).map((r) => r.n)).toEqual([5, 4]);
      expect((await d.listUsage({ limit: 0 })).length).toBe(0);
      expect((await d.listUsage({ limit: -3 })).length).toBe(0);
      expect((await d.listUsage({ since: 1001 })).map((r) => r.n)).toEqual([5, 4, 3]);
      expect((await d.listUsage({ since: 5000 })).length).toBe(0);
    });

    it('migrate on a current schema is a no-op that keeps the data', async () => {
      const d = await open();
      const k = await d.createApiKey('m');
      await d.migrate();
      await d.migrate();
      expect((await d.verifyApiKey(k.key))?.id).toBe(k.id);
    });
  });
}
