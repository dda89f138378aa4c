// One usage record per answered image request (model, size, n, quality, tokens, user, status, error code, images
// delivered, duration), failed and cancelled ones included; the prompt only when records.storePrompts is on. A failing
// write never fails the request: it is retried, then logged whole.
import type { FastifyRequest } from 'fastify';
import type { ParsedCommon } from '../contract/common.js';
import { ApiError } from '../contract/errors.js';
import type { Db, UsageRecord } from '../db/types.js';
import type { ServerDeps } from './deps.js';

/** What a request that did not deliver its images records: the status and code its client got. */
export interface UsageFailure {
  status: number;
  errorCode: string | null;
}

/** The client left before its answer was delivered (nginx's 499); nothing was billed. */
export const CLIENT_LEFT: UsageFailure = Object.freeze({ status: 499, errorCode: 'client_closed_request' });

/** The status and code an error is answered with (the app's error handler sends ApiErrors as they are, others as 500). */
export function failureOf(err: unknown): UsageFailure {
  if (err instanceof Error && err.name === 'JobCancelledError') return CLIENT_LEFT;
  if (err instanceof ApiError) return { status: err.status, errorCode: err.code };
  return { status: 500, errorCode: null };
}

/** Requests that have their row: each answered request is recorded once, whichever path answers it first. */
const recorded = new WeakSet<FastifyRequest>();

/**
 * Records the request's row, unless it already has one. `status` 200 delivered `detail.images` images (default n);
 * any other status delivered none and names `detail.errorCode`.
 */
export async function recordUsage(
  deps: ServerDeps,
  req: FastifyRequest,
  parsed: ParsedCommon,
  endpoint: string,
  /** performance.now() when the request started. */
  started: number,
  status: number,
  tokens: { input: number; output: number },
  detail: { images?: number; errorCode?: string | null } = {},
): Promise<void> {
  if (recorded.has(req)) return;
  recorded.add(req);
  const ok = status === 200;
  await deps.usage.record({
    requestId: req.id,
    keyId: req.apiKeyId ?? null,
    endpoint,
    model: parsed.requested_model,
    servedModel: deps.models.resolve(parsed.model)?.local.name ?? parsed.model,
    size: parsed.resolved.size,
    n: parsed.n,
    quality: parsed.resolved.quality,
    inputTokens: tokens.input,
    outputTokens: tokens.output,
    user: parsed.user,
    durationMs: Math.round(performance.now() - started),
    images: ok ? (detail.images ?? parsed.n) : 0,
    status,
    errorCode: ok ? null : (detail.errorCode ?? null),
    prompt: deps.config.records.storePrompts ? parsed.prompt : null,
    createdAt: deps.now(),
  });
}

/** Records a request that failed (or whose client left) with what its client got; no tokens are billed. */
export function recordFailure(
  deps: ServerDeps,
  req: FastifyRequest,
  parsed: ParsedCommon,
  endpoint: string,
  started: number,
  failure: UsageFailure,
): Promise<void> {
  return recordUsage(deps, req, parsed, endpoint, started, failure.status, { input: 0, output: 0 }, { errorCode: failure.errorCode });
}

/** Pino-compatible subset (Fastify's logger fits). */
export interface RecorderLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface UsageRecorderOptions {
  /** Waits before each retry of a row that failed; default 0.25 s, 1 s, 4 s (then it is dropped). */
  retryDelaysMs?: readonly number[];
}

export const USAGE_RETRY_DELAYS_MS: readonly number[] = [250, 1000, 4000];

/**
 * Writes usage rows: the first try on the request path, retries off it (timers that never hold the process open).
 * A row that still fails is logged at error level with the whole record, so it can be replayed, and counted in `dropped`.
 */
export class UsageRecorder {
  /** Rows given up on since start (shown by /readyz as usage_records_dropped). */
  dropped = 0;
  private readonly delays: readonly number[];
  private readonly waiting = new Map<NodeJS.Timeout, UsageRecord>();
  private readonly writing = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly db: Db,
    private readonly log: () => RecorderLogger,
    opts: UsageRecorderOptions = {},
  ) {
    this.delays = opts.retryDelaysMs ?? USAGE_RETRY_DELAYS_MS;
  }

  /** Never rejects: a row that cannot be written now is retried later. */
  async record(r: UsageRecord): Promise<void> {
    await this.attempt(r, 0);
  }

  /** Rows still waiting for a retry. */
  get pending(): number {
    return this.waiting.size + this.writing.size;
  }

  /** Tries every waiting row once more now (the database is about to close); what still fails is dropped and logged. */
  async close(): Promise<void> {
    this.closed = true;
    const rows = [...this.waiting];
    this.waiting.clear();
    for (const [timer] of rows) clearTimeout(timer);
    await Promise.all([...this.writing]);
    await Promise.all(rows.map(([, r]) => this.attempt(r, this.delays.length)));
  }

  private async attempt(r: UsageRecord, tried: number): Promise<void> {
    try {
      await this.db.recordUsage(r);
    } catch (err) {
      if (tried >= this.delays.length || this.closed) return this.drop(r, err, tried + 1);
      this.log().warn({ err, requestId: r.requestId, attempt: tried + 1 }, 'could not record usage; retrying');
      this.retryLater(r, tried);
    }
  }

  private retryLater(r: UsageRecord, tried: number): void {
    const timer = setTimeout(() => {
      this.waiting.delete(timer);
      const write = this.attempt(r, tried + 1).finally(() => this.writing.delete(write));
      this.writing.add(write);
    }, this.delays[tried]);
    timer.unref();
    this.waiting.set(timer, r);
  }

  private drop(r: UsageRecord, err: unknown, attempts: number): void {
    this.dropped++;
    this.log().error({ err, attempts, usageRecord: r }, 'usage record dropped after retries; replay it from this log line');
  }
}
