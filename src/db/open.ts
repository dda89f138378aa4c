// Picks the Db implementation from config: a postgres:// URL opens Postgres (shared by several nodes), anything
// else the embedded SQLite file under the data dir. Either way the schema is current when the promise resolves.

import { join } from 'node:path';
import { openPostgresDb } from './postgres.js';
import { openSqliteDb } from './sqlite.js';
import type { Db } from './types.js';

export interface OpenDbOptions {
  /** config `db.url`: 'postgres://...' or 'postgresql://...'; unset means SQLite at <dataDir>/easel.sqlite. */
  url?: string | undefined;
  dataDir: string;
  now?: () => number;
}

export function isPostgresUrl(url: string | undefined): url is string {
  return url !== undefined && /^postgres(ql)?:\/\//i.test(url);
}

export async function openDb(opts: OpenDbOptions): Promise<Db> {
  if (isPostgresUrl(opts.url)) return openPostgresDb({ url: opts.url, ...(opts.now ? { now: opts.now } : {}) });
  if (opts.url !== undefined && opts.url !== '') throw new Error('db.url must be a postgres:// or postgresql:// URL');
  return openSqliteDb({ path: join(opts.dataDir, 'easel.sqlite'), ...(opts.now ? { now: opts.now } : {}) });
}
