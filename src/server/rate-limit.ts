// Per-key rate limits as OpenAI applies them: image requests and output tokens per minute, OpenAI's x-ratelimit-*
// headers and 429s. Buckets live in memory (embedded) or in Redis (API nodes share them through one Lua script).
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Redis } from 'ioredis';
import type { Config } from '../config/config.js';
import { ApiError, serviceUnavailable } from '../contract/errors.js';

/** Per minute; 0 turns a limit off. */
export interface Limits {
  requests: number;
  tokens: number;
}

export type LimitName = 'requests' | 'tokens';

/** A bucket: how much of its limit is in use at epoch ms `at` (it drains at `limit` per minute). */
export interface Bucket {
  used: number;
  at: number;
}

export const WINDOW_MS = 60_000;

/** The bucket's use `now`: what it held at `at`, drained at limit per minute, never below 0. */
export function drained(b: Bucket, limit: number, now: number): number {
  if (limit <= 0) return 0;
  return Math.max(0, b.used - (Math.max(0, now - b.at) * limit) / WINDOW_MS);
}

/** What one take decided; `used` is each bucket's use after it (unchanged when refused). */
export interface Decision {
  refused: LimitName | null;
  /** The cost alone is over the limit: waiting cannot help. */
  tooLarge: boolean;
  /** Milliseconds until the refused cost would fit (0 when admitted). */
  retryAfterMs: number;
  used: Record<LimitName, number>;
}

const NAMES: readonly LimitName[] = ['requests', 'tokens'];

/**
 * One take, all or nothing: admitted when every limit that is on has room for its cost (requests are checked first),
 * and then both costs are added. The Redis store runs the same steps in Lua (LUA below).
 */
export function decide(before: Record<LimitName, Bucket>, cost: Limits, limits: Limits, now: number): Decision {
  const used = { requests: drained(before.requests, limits.requests, now), tokens: drained(before.tokens, limits.tokens, now) };
  for (const name of NAMES) {
    const limit = limits[name];
    if (limit > 0 && used[name] + cost[name] > limit) {
      const retryAfterMs = Math.ceil(((used[name] + cost[name] - limit) * WINDOW_MS) / limit);
      return { refused: name, tooLarge: cost[name] > limit, retryAfterMs, used };
    }
  }
  for (const name of NAMES) if (limits[name] > 0) used[name] += cost[name];
  return { refused: null, tooLarge: false, retryAfterMs: 0, used };
}

/** What the headers say of one limit. */
export interface LimitState {
  limit: number;
  remaining: number;
  /** Milliseconds until the bucket is empty again (OpenAI: "until the rate limit resets to its initial state"). */
  resetMs: number;
}

export function limitState(used: number, limit: number): LimitState {
  return { limit, remaining: Math.max(0, Math.floor(limit - used)), resetMs: limit > 0 ? Math.ceil((used * WINDOW_MS) / limit) : 0 };
}

/**
 * A duration as OpenAI's reset headers write it (Go's time.Duration format, to the millisecond): `0s`, `17ms`, `1s`,
 * `1.5s`, `6m0s`, `1h2m3s`.
 */
export function formatResetDuration(ms: number): string {
  const total = Math.max(0, Math.ceil(ms));
  if (total === 0) return '0s';
  if (total < 1000) return `${total}ms`;
  const hours = Math.floor(total / 3_600_000);
  const minutes = Math.floor((total % 3_600_000) / 60_000);
  const secMs = total % 60_000;
  const seconds = `${Math.floor(secMs / 1000)}${
    secMs % 1000
      ? `.${String(secMs % 1000)
          .padStart(3, '0')
          .replace(/0+$/, '')}`
      : ''
  }s`;
  if (hours > 0) return `${hours}h${minutes}m${seconds}`;
  if (minutes > 0) return `${minutes}m${seconds}`;
  return seconds;
}

/** The six OpenAI headers for the limits that are on (a limit of 0 sends none of its three). */
export function rateLimitHeaders(states: Partial<Record<LimitName, LimitState>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of NAMES) {
    const s = states[name];
    if (!s || s.limit <= 0) continue;
    out[`x-ratelimit-limit-${name}`] = String(s.limit);
    out[`x-ratelimit-remaining-${name}`] = String(s.remaining);
    out[`x-ratelimit-reset-${name}`] = formatResetDuration(s.resetMs);
  }
  return out;
}

/**
 * Where the buckets live. `take` is atomic per subject; it rejects when the store cannot be reached.
 *
 * Not @fastify/rate-limit: it counts one per request in fixed windows and writes its own headers (reset in seconds);
 * OpenAI's need a second, variable-cost limit (tokens, known once the request is planned) and resets such as `6m0s`.
 */
export interface RateLimitStore {
  take(subject: string, cost: Limits, limits: Limits): Promise<Decision>;
  close(): Promise<void>;
}

/** Entries whose buckets have drained are swept once the map holds this many. */
const SWEEP_AT = 10_000;

/** The embedded server's buckets: one process, so a Map is atomic enough. */
export class MemoryRateLimitStore implements RateLimitStore {
  private readonly buckets = new Map<string, { limits: Limits; state: Record<LimitName, Bucket> }>();

  constructor(private readonly now: () => number = Date.now) {}

  async take(subject: string, cost: Limits, limits: Limits): Promise<Decision> {
    const now = this.now();
    if (this.buckets.size >= SWEEP_AT) this.sweep(now);
    const entry = this.buckets.get(subject);
    const before = entry?.state ?? { requests: { used: 0, at: now }, tokens: { used: 0, at: now } };
    const d = decide(before, cost, limits, now);
    if (!d.refused)
      this.buckets.set(subject, {
        limits,
        state: { requests: { used: d.used.requests, at: now }, tokens: { used: d.used.tokens, at: now } },
      });
    return d;
  }

  private sweep(now: number): void {
    for (const [subject, e] of this.buckets) {
      if (drained(e.state.requests, e.limits.requests, now) === 0 && drained(e.state.tokens, e.limits.tokens, now) === 0)
        this.buckets.delete(subject);
    }
  }

  async close(): Promise<void> {
    this.buckets.clear();
  }
}

/**
 * decide() in Lua, on Redis's clock (every node agrees on it). KEYS: the requests and tokens hashes (fields u, t);
 * ARGV: request cost, token cost, request limit, token limit, window ms. Returns refused (0 none, 1 requests, 2 tokens),
 * too large (0/1), retry-after ms, and both uses after, as strings (Lua numbers would be truncated to integers).
 */
const LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[5])
local cost = { tonumber(ARGV[1]), tonumber(ARGV[2]) }
local limit = { tonumber(ARGV[3]), tonumber(ARGV[4]) }
local used = { 0, 0 }
for i = 1, 2 do
  if limit[i] > 0 then
    local v = redis.call('HMGET', KEYS[i], 'u', 't')
    local u = tonumber(v[1]) or 0
    local at = tonumber(v[2]) or now
    local elapsed = now - at
    if elapsed < 0 then elapsed = 0 end
    u = u - elapsed * limit[i] / window
    if u < 0 then u = 0 end
    used[i] = u
  end
end
for i = 1, 2 do
  if limit[i] > 0 and used[i] + cost[i] > limit[i] then
    local too_large = 0
    if cost[i] > limit[i] then too_large = 1 end
    return { i, too_large, math.ceil((used[i] + cost[i] - limit[i]) * window / limit[i]), tostring(used[1]), tostring(used[2]) }
  end
end
for i = 1, 2 do
  if limit[i] > 0 and cost[i] > 0 then
    used[i] = used[i] + cost[i]
    redis.call('HSET', KEYS[i], 'u', tostring(used[i]), 't', now)
    redis.call('PEXPIRE', KEYS[i], math.ceil(used[i] * window / limit[i]) + 1000)
  end
end
return { 0, 0, 0, tostring(used[1]), tostring(used[2]) }
`;

/** Fails fast when Redis is away (no offline queue, one retry, a short command timeout): the request gets a 503. */
const REDIS_COMMAND_TIMEOUT_MS = 1000;

/** API nodes' buckets, shared through the cluster's Redis under `<prefix>:ratelimit:{subject}:*`. */
export class RedisRateLimitStore implements RateLimitStore {
  private constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  /** Connects and waits until Redis answers (as long as it takes: the API node has just reached it for its queue). */
  static async open(url: string, prefix = 'easel'): Promise<RedisRateLimitStore> {
    const redis = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, commandTimeout: REDIS_COMMAND_TIMEOUT_MS });
    redis.on('error', () => {}); // each failed command rejects on its own (a 503); ioredis keeps reconnecting
    if (redis.status !== 'ready') await new Promise<void>((resolve) => redis.once('ready', () => resolve()));
    return new RedisRateLimitStore(redis, prefix);
  }

  async take(subject: string, cost: Limits, limits: Limits): Promise<Decision> {
    // The hash tag keeps both keys of a subject in one slot (Redis Cluster runs a script on one slot only).
    const base = `${this.prefix}:ratelimit:{${subject}}`;
    const args = [cost.requests, cost.tokens, limits.requests, limits.tokens, WINDOW_MS];
    const r = (await this.redis.eval(LUA, 2, `${base}:requests`, `${base}:tokens`, ...args)) as [number, number, number, string, string];
    return {
      refused: r[0] === 1 ? 'requests' : r[0] === 2 ? 'tokens' : null,
      tooLarge: r[1] === 1,
      retryAfterMs: Number(r[2]),
      used: { requests: Number(r[3]), tokens: Number(r[4]) },
    };
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The API key's own limits (easel keys create --rpm/--tpm); null where the key has none. Set by auth. */
    keyRateLimits?: { rpm: number | null; tpm: number | null };
    /** Set by RateLimiter.admit on image requests: charges the planned job's output tokens (dispatch.ts, at submit). */
    chargeTokens?: (tokens: number) => Promise<void>;
  }
}

/** The routes that make images: the ones rate limits count (other answers carry no rate-limit headers). */
const LIMITED_ROUTES = new Set(['/v1/images/generations', '/v1/images/edits', '/v1/images/variations']);

export function isLimitedRoute(req: FastifyRequest): boolean {
  return req.method === 'POST' && !req.is404 && LIMITED_ROUTES.has(req.routeOptions.url ?? '');
}

/**
 * The HTTP side: whose bucket (the API key; the client address when auth is off, since `user` is whatever the client
 * writes), the limits that apply (the key's own, else rateLimits), headers on the answer, 429s.
 */
export class RateLimiter {
  constructor(
    private readonly store: RateLimitStore,
    private readonly defaults: Readonly<Config['rateLimits']>,
  ) {}

  private limitsFor(req: FastifyRequest): Limits {
    return {
      requests: req.keyRateLimits?.rpm ?? this.defaults.requestsPerMinute,
      tokens: req.keyRateLimits?.tpm ?? this.defaults.tokensPerMinute,
    };
  }

  private subjectOf(req: FastifyRequest): string {
    return req.apiKeyId ? `key:${req.apiKeyId}` : `ip:${req.ip}`;
  }

  /**
   * In onRequest, after auth: counts one request on an image route (before its body is read), writes the headers and
   * leaves req.chargeTokens for the planned job. Throws the 429 (or a 503 when Redis is unreachable).
   */
  async admit(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (!isLimitedRoute(req)) return;
    const limits = this.limitsFor(req);
    if (limits.requests <= 0 && limits.tokens <= 0) return;
    const subject = this.subjectOf(req);
    await this.take(req, reply, subject, { requests: 1, tokens: 0 }, limits);
    req.chargeTokens = (tokens) => this.take(req, reply, subject, { requests: 0, tokens }, limits);
  }

  private async take(req: FastifyRequest, reply: FastifyReply, subject: string, cost: Limits, limits: Limits): Promise<void> {
    let d: Decision;
    try {
      d = await this.store.take(subject, cost, limits);
    } catch (err) {
      req.log.warn({ err }, 'rate limit store unreachable');
      throw serviceUnavailable('The rate limiter cannot reach its store (Redis); retry the request.', 2);
    }
    const headers = rateLimitHeaders({
      requests: limitState(d.used.requests, limits.requests),
      tokens: limitState(d.used.tokens, limits.tokens),
    });
    // On the raw response, so a stream's writeHead (sse.ts) sends them too.
    for (const [name, value] of Object.entries(headers)) reply.raw.setHeader(name, value);
    if (d.refused) throw refusal(d, cost, limits, req.apiKeyId !== undefined);
  }
}

/** OpenAI's 429: type `requests` or `tokens`, code rate_limit_exceeded, its wording ("Limit N, Used U, Requested R"). */
function refusal(d: Decision, cost: Limits, limits: Limits, byKey: boolean): ApiError {
  const name = d.refused!;
  const label = name === 'requests' ? 'requests per min (RPM)' : 'image output tokens per min (TPM)';
  const who = byKey ? 'this API key' : 'this client address';
  const head = `Limit ${limits[name]}, Used ${Math.ceil(d.used[name])}, Requested ${cost[name]}.`;
  if (d.tooLarge) {
    return new ApiError({
      status: 429,
      message: `Request too large for ${label} of ${who}: Limit ${limits[name]}, Requested ${cost[name]}. Ask for fewer images, a lower quality or a smaller size.`,
      type: name,
      code: 'rate_limit_exceeded',
    });
  }
  const seconds = Math.max(1, Math.ceil(d.retryAfterMs / 1000));
  return new ApiError({
    status: 429,
    message: `Rate limit reached on ${label} for ${who}: ${head} Please try again in ${formatResetDuration(d.retryAfterMs)}.`,
    type: name,
    code: 'rate_limit_exceeded',
    shouldRetry: true,
    retryAfterSeconds: seconds,
  });
}
