// `easel usage`: the Usage API's images data as a table by day (UTC), model and API key, read straight from the
// server's database (SQLite in the data dir, or the Postgres of db.url), bucketed by the database like the API.
import { Command, InvalidArgumentError } from 'commander';
import { loadConfig } from '../config/config.js';
import { type ApiKeyInfo, openDb, type UsageBucketRow } from '../db/index.js';

const DAY_MS = 86_400_000;
const MAX_DAYS = 3660;

export interface UsageTableOptions {
  /** Days to show, ending with today (UTC). */
  days: number;
  now: number;
}

function positiveDays(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > MAX_DAYS) throw new InvalidArgumentError(`--days must be an integer from 1 to ${MAX_DAYS}`);
  return n;
}

/** The first day shown (00:00 UTC, epoch ms) and the end of the range (now). */
export function usageRange(opts: UsageTableOptions): { startMs: number; endMs: number } {
  const today = Math.floor(opts.now / DAY_MS) * DAY_MS;
  return { startMs: today - (opts.days - 1) * DAY_MS, endMs: opts.now + 1 };
}

function keyLabel(id: string | null, keys: Map<string, ApiKeyInfo>): string {
  if (id === null) return '-';
  const k = keys.get(id);
  return k ? `${id} (${k.name})` : id;
}

/** Rows (already ordered by day, then model, then key) as an aligned table with a total line. */
export function formatUsageTable(rows: UsageBucketRow[], keys: Map<string, ApiKeyInfo>): string {
  if (rows.length === 0) return 'no image requests in this range\n';
  const body = rows.map((r) => [
    new Date(r.bucketStartMs).toISOString().slice(0, 10),
    r.model ?? '-',
    keyLabel(r.apiKeyId, keys),
    String(r.requests),
    String(r.images),
  ]);
  const total = ['total', '', '', String(rows.reduce((s, r) => s + r.requests, 0)), String(rows.reduce((s, r) => s + r.images, 0))];
  const table = [['DAY', 'MODEL', 'KEY', 'REQUESTS', 'IMAGES'], ...body, total];
  const widths = table[0].map((_, c) => Math.max(...table.map((r) => r[c].length)));
  const numeric = (c: number) => c >= 3;
  return `${table
    .map((r) =>
      r
        .map((cell, c) => (numeric(c) ? cell.padStart(widths[c]) : cell.padEnd(widths[c])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

export function registerUsageCommand(program: Command): void {
  program.addCommand(
    new Command('usage')
      .description('image usage by day (UTC), model and API key: what GET /v1/organization/usage/images reports')
      .option('--days <n>', 'days to show, ending today (default 7)', positiveDays, 7)
      .option('--data-dir <dir>', 'data directory of the server (default ./data)')
      .option('--config <file>', 'JSON config file of the server')
      .option('--db <url>', "the server's Postgres (db.url), if it uses one")
      .action(async (o: { days: number; dataDir?: string; config?: string; db?: string }) => {
        const config = loadConfig({ config: o.config, dataDir: o.dataDir, db: o.db });
        const db = await openDb({ url: config.db.url, dataDir: config.dataDir });
        try {
          const range = usageRange({ days: o.days, now: Date.now() });
          const rows = await db.usageBuckets({ ...range, widthMs: DAY_MS, groupBy: ['model', 'api_key_id'] });
          const keys = new Map((await db.listApiKeys()).map((k) => [k.id, k]));
          process.stdout.write(formatUsageTable(rows, keys));
        } finally {
          await db.close();
        }
      }),
  );
}
