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
    images: 2,
    status: 200,
    errorCode: null,
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
      delete bare.errorCode;
      await d.recordUsage(bare);
      await d.recordUsage(usage(300, { status: 429, images: 0, errorCode: 'rate_limit_exceeded' }));
      const rows = await d.listUsage();
      expect(rows).toEqual([
        { ...usage(300), status: 429, images: 0, errorCode: 'rate_limit_exceeded' },
        { ...usage(200), keyId: null, quality: null, user: null, prompt: null, errorCode: null },
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

    it('buckets usage in the database: totals per bucket, empty buckets absent, the range half-open', async () => {
      const d = await open();
      const t0 = 1_700_000_000_000;
      await d.recordUsage(usage(t0 - 1)); // before the range
      await d.recordUsage(usage(t0, { images: 1 }));
      await d.recordUsage(usage(t0 + 59_999, { images: 3 }));
      await d.recordUsage(usage(t0 + 60_000, { status: 500, images: 0, errorCode: null }));
      await d.recordUsage(usage(t0 + 180_000, { images: 4 }));
      await d.recordUsage(usage(t0 + 240_000)); // at endMs: excluded
      const rows = await d.usageBuckets({ startMs: t0, endMs: t0 + 240_000, widthMs: 60_000 });
      const blank = { source: null, size: null, model: null, userId: null, apiKeyId: null };
      expect(rows).toEqual([
        { bucketStartMs: t0, ...blank, images: 4, requests: 2 },
        { bucketStartMs: t0 + 60_000, ...blank, images: 0, requests: 1 },
        { bucketStartMs: t0 + 180_000, ...blank, images: 4, requests: 1 },
      ]);
      expect(await d.usageBuckets({ startMs: t0 + 1000, endMs: t0 + 2000, widthMs: 60_000 })).toEqual([]);
    });

    it('groups by source, size, model, user and key, and filters by each, nulls kept as their own group', async () => {
      const d = await open();
      const a = await d.createApiKey('a');
      const b = await d.createApiKey('b');
      const t0 = 1_700_000_000_000;
      await d.recordUsage(usage(t0, { keyId: a.id, user: 'u1', images: 1 }));
      await d.recordUsage(usage(t0 + 1, { keyId: a.id, user: 'u1', images: 2, size: '512x512' }));
      await d.recordUsage(usage(t0 + 2, { keyId: b.id, user: null, images: 1, endpoint: '/v1/images/edits', model: 'dall-e-2' }));
      await d.recordUsage(usage(t0 + 3, { keyId: b.id, user: null, images: 2, endpoint: '/v1/images/variations', model: 'dall-e-2' }));
      const q = { startMs: t0, endMs: t0 + 86_400_000, widthMs: 86_400_000 };
      const bySource = await d.usageBuckets({ ...q, groupBy: ['source'] });
      expect(bySource.map((r) => [r.source, r.images, r.requests, r.model])).toEqual([
        ['image.edit', 1, 1, null],
        ['image.generation', 3, 2, null],
        ['image.variation', 2, 1, null],
      ]);
      const byKeyUser = await d.usageBuckets({ ...q, groupBy: ['api_key_id', 'user_id'] });
      expect(byKeyUser.map((r) => [r.apiKeyId, r.userId, r.images]).sort()).toEqual(
        [
          [a.id, 'u1', 3],
          [b.id, null, 3],
        ].sort(),
      );
      const byModelSize = await d.usageBuckets({ ...q, groupBy: ['model', 'size'] });
      expect(byModelSize.map((r) => [r.model, r.size, r.requests])).toEqual([
        ['dall-e-2', '1024x1024', 2],
        ['gpt-image-1', '1024x1024', 1],
        ['gpt-image-1', '512x512', 1],
      ]);
      const only = async (f: Partial<Parameters<Db['usageBuckets']>[0]>) =>
        (await d.usageBuckets({ ...q, ...f })).map((r) => [r.images, r.requests]);
      expect(await only({ sources: ['image.edit', 'image.variation'] })).toEqual([[3, 2]]);
      expect(await only({ sizes: ['512x512'] })).toEqual([[2, 1]]);
      expect(await only({ models: ['dall-e-2'] })).toEqual([[3, 2]]);
      expect(await only({ userIds: ['u1'] })).toEqual([[3, 2]]);
      expect(await only({ apiKeyIds: [b.id], sources: ['image.edit'] })).toEqual([[1, 1]]);
      expect(await only({ models: ['nope'] })).toEqual([]);
      expect(await only({ userIds: ["u1' OR '1'='1"] })).toEqual([]); // values are bound, never spliced into SQL
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
