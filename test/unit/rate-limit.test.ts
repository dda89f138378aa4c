// The rate limiter's arithmetic on a clock the test moves: buckets that drain at limit per minute, all-or-nothing takes,
// Retry-After and reset times, OpenAI's duration format for the reset headers, and the header set itself.
import { describe, expect, it } from 'vitest';
import {
  type Bucket,
  decide,
  drained,
  formatResetDuration,
  limitState,
  MemoryRateLimitStore,
  rateLimitHeaders,
  WINDOW_MS,
} from '../../src/server/rate-limit.js';

const empty = (at = 0): Record<'requests' | 'tokens', Bucket> => ({ requests: { used: 0, at }, tokens: { used: 0, at } });

describe('formatResetDuration (Go time.Duration style, as OpenAI writes x-ratelimit-reset-*)', () => {
  it.each([
    [0, '0s'],
    [-5, '0s'],
    [17, '17ms'],
    [999, '999ms'],
    [1000, '1s'],
    [1500, '1.5s'],
    [8640, '8.64s'],
    [1001, '1.001s'],
    [59_999, '59.999s'],
    [60_000, '1m0s'],
    [360_000, '6m0s'],
    [90_500, '1m30.5s'],
    [3_600_000, '1h0m0s'],
    [3_723_000, '1h2m3s'],
  ])('%d ms is %s', (ms, text) => {
    expect(formatResetDuration(ms)).toBe(text);
  });

  it('rounds a fraction of a millisecond up, so a reset is never reported early', () => {
    expect(formatResetDuration(0.2)).toBe('1ms');
    expect(formatResetDuration(1000.4)).toBe('1.001s');
  });
});

describe('bucket arithmetic', () => {
  it('drains at limit per minute and never below zero', () => {
    const b = { used: 30, at: 1000 };
    expect(drained(b, 60, 1000)).toBe(30);
    expect(drained(b, 60, 1000 + 10_000)).toBe(20);
    expect(drained(b, 60, 1000 + WINDOW_MS)).toBe(0);
    expect(drained(b, 60, 0)).toBe(30); // a clock that went back drains nothing
    expect(drained(b, 0, 5000)).toBe(0); // a limit that is off holds nothing
  });

  it('admits up to the limit, then refuses with the wait until one more fits', () => {
    let state = empty();
    const limits = { requests: 3, tokens: 0 };
    for (let i = 0; i < 3; i++) {
      const d = decide(state, { requests: 1, tokens: 0 }, limits, 0);
      expect(d.refused).toBeNull();
      state = { requests: { used: d.used.requests, at: 0 }, tokens: state.tokens };
    }
    const refused = decide(state, { requests: 1, tokens: 0 }, limits, 0);
    expect(refused).toMatchObject({ refused: 'requests', tooLarge: false, retryAfterMs: 20_000 });
    expect(refused.used.requests).toBe(3);
    // 20 s later one request has drained away
    expect(decide(state, { requests: 1, tokens: 0 }, limits, 20_000).refused).toBeNull();
  });

  it('is all or nothing: a refused token cost adds no request either', () => {
    const limits = { requests: 10, tokens: 1000 };
    const state = { requests: { used: 2, at: 0 }, tokens: { used: 900, at: 0 } };
    const d = decide(state, { requests: 1, tokens: 200 }, limits, 0);
    expect(d.refused).toBe('tokens');
    expect(d.used).toEqual({ requests: 2, tokens: 900 });
    expect(d.retryAfterMs).toBe(6000); // 100 tokens over, at 1000 per minute
  });

  it('checks requests before tokens when both are over', () => {
    const state = { requests: { used: 1, at: 0 }, tokens: { used: 1000, at: 0 } };
    expect(decide(state, { requests: 1, tokens: 1 }, { requests: 1, tokens: 1000 }, 0).refused).toBe('requests');
  });

  it('marks a cost over the whole limit as too large (waiting cannot help)', () => {
    const d = decide(empty(), { requests: 0, tokens: 5000 }, { requests: 10, tokens: 4000 }, 0);
    expect(d).toMatchObject({ refused: 'tokens', tooLarge: true });
  });

  it('leaves a limit of 0 off', () => {
    const d = decide(empty(), { requests: 1, tokens: 1e9 }, { requests: 0, tokens: 0 }, 0);
    expect(d.refused).toBeNull();
    expect(d.used).toEqual({ requests: 0, tokens: 0 });
  });

  it('reports remaining (floored) and the time until the bucket is empty', () => {
    expect(limitState(2.5, 10)).toEqual({ limit: 10, remaining: 7, resetMs: 15_000 });
    expect(limitState(0, 10)).toEqual({ limit: 10, remaining: 10, resetMs: 0 });
    expect(limitState(10, 10).remaining).toBe(0);
  });
});

describe('rateLimitHeaders', () => {
  it('writes the six OpenAI headers', () => {
    const h = rateLimitHeaders({ requests: limitState(1, 60), tokens: limitState(6208, 100_000) });
    expect(h).toEqual({
      'x-ratelimit-limit-requests': '60',
      'x-ratelimit-remaining-requests': '59',
      'x-ratelimit-reset-requests': '1s',
      'x-ratelimit-limit-tokens': '100000',
      'x-ratelimit-remaining-tokens': '93792',
      'x-ratelimit-reset-tokens': '3.725s',
    });
  });

  it('leaves out a limit that is off', () => {
    const h = rateLimitHeaders({ requests: limitState(0, 0), tokens: limitState(0, 500) });
    expect(Object.keys(h).sort()).toEqual(['x-ratelimit-limit-tokens', 'x-ratelimit-remaining-tokens', 'x-ratelimit-reset-tokens']);
  });
});

describe('MemoryRateLimitStore', () => {
  it('keeps one bucket pair per subject and drains it on its clock', async () => {
    let now = 1_000_000;
    const store = new MemoryRateLimitStore(() => now);
    const limits = { requests: 2, tokens: 100 };
    expect((await store.take('a', { requests: 1, tokens: 60 }, limits)).refused).toBeNull();
    expect((await store.take('a', { requests: 1, tokens: 60 }, limits)).refused).toBe('tokens');
    expect((await store.take('b', { requests: 1, tokens: 60 }, limits)).refused).toBeNull();
    expect((await store.take('a', { requests: 1, tokens: 0 }, limits)).refused).toBeNull();
    expect((await store.take('a', { requests: 1, tokens: 0 }, limits)).refused).toBe('requests');
    now += 30_000; // one request and 50 tokens drain away
    const d = await store.take('a', { requests: 1, tokens: 50 }, limits);
    expect(d.refused).toBeNull();
    expect(d.used).toEqual({ requests: 2, tokens: 60 });
  });
});
