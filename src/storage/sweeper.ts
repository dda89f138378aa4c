// Periodic TTL sweeper: deletes expired images from an ImageStore so `url` responses do not fill the disk.
// The timer is unref'd (never keeps the process alive) and a failing sweep is logged, never thrown.

import type { ImageStore } from './types.js';

/** Pino-compatible subset (Fastify's logger fits), so the server can pass its own. */
export interface SweeperLogger {
  error(obj: unknown, msg?: string): void;
  debug?(obj: unknown, msg?: string): void;
}

export interface SweeperOptions {
  intervalMs: number;
  /** Clock in epoch milliseconds, passed to `store.sweep`. Default Date.now. */
  now?: () => number;
  logger?: SweeperLogger;
}

export interface Sweeper {
  /** Stops the timer; resolves once a sweep in progress (if any) has finished. */
  stop(): Promise<void>;
  /** Runs one sweep now (skipped, resolving 0, if one is already running); never rejects. */
  sweepNow(): Promise<number>;
}

const consoleLogger: SweeperLogger = {
  error: (obj, msg) => console.error(msg ?? 'image sweep failed', obj),
};

export function startSweeper(store: ImageStore, opts: SweeperOptions): Sweeper {
  const { intervalMs } = opts;
  if (!Number.isFinite(intervalMs) || intervalMs <= 0) throw new RangeError('startSweeper: intervalMs must be > 0');
  const now = opts.now ?? Date.now;
  const logger = opts.logger ?? consoleLogger;
  let inFlight: Promise<number> | undefined;
  let stopped = false;

  const sweepNow = (): Promise<number> => {
    if (stopped || inFlight) return Promise.resolve(0);
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

  const timer = setInterval(() => void sweepNow(), intervalMs);
  timer.unref();

  return {
    sweepNow,
    async stop() {
      stopped = true;
      clearInterval(timer);
      if (inFlight) await inFlight;
    },
  };
}
