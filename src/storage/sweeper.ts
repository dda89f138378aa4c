// TTL sweeper: deletes expired images and crash leftovers from an ImageStore at start, then on a timer, so `url` responses
// fill neither disk nor bucket. The timer is unref'd (never keeps the process alive); a failing sweep is logged, never thrown.

import type { ImageStore } from './types.js';

/** Pino-compatible subset (Fastify's logger fits), so the server can pass its own. */
export interface SweeperLogger {
  error(obj: unknown, msg?: string): void;
  debug?(obj: unknown, msg?: string): void;
}

export interface SweeperOptions {
  /** 0: no sweeping at all (an S3 bucket's lifecycle rule deletes expired images instead). */
  intervalMs: number;
  /** Clock in epoch milliseconds, passed to `store.sweep`. Default Date.now. */
  now?: () => number;
  logger?: SweeperLogger;
}

export interface Sweeper {
  /** The sweep started with the sweeper (what a crash or a stopped server left behind); never rejects. */
  readonly initial: Promise<number>;
  /** Stops the timer; resolves once a sweep in progress (if any) has finished. */
  stop(): Promise<void>;
  /** Runs one sweep now (joining the one in progress, if any; 0 once stopped); never rejects. */
  sweepNow(): Promise<number>;
}

const consoleLogger: SweeperLogger = {
  error: (obj, msg) => console.error(msg ?? 'image sweep failed', obj),
};

export function startSweeper(store: ImageStore, opts: SweeperOptions): Sweeper {
  const { intervalMs } = opts;
  if (!Number.isFinite(intervalMs) || intervalMs < 0) throw new RangeError('startSweeper: intervalMs must be >= 0');
  if (intervalMs === 0) return { initial: Promise.resolve(0), sweepNow: () => Promise.resolve(0), stop: async () => undefined };
  const now = opts.now ?? Date.now;
  const logger = opts.logger ?? consoleLogger;
  let inFlight: Promise<number> | undefined;
  let stopped = false;

  const sweepNow = (): Promise<number> => {
    if (stopped) return Promise.resolve(0);
    if (inFlight) return inFlight;
    inFlight = (async () => {
      try {
        const n = await store.sweep(now());
        if (n > 0) logger.debug?.({ deleted: n }, 'swept expired images');
        return n;
      } catch (err) {
        logger.error({ err }, 'image sweep failed');
        return 0;
      } finally {
        inFlight = undefined;
      }
    })();
    return inFlight;
  };

  const initial = sweepNow();
  const timer = setInterval(() => void sweepNow(), intervalMs);
  timer.unref();

  return {
    initial,
    sweepNow,
    async stop() {
      stopped = true;
      clearInterval(timer);
      if (inFlight) await inFlight;
    },
  };
}
