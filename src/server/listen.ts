// Puts a built server on the network, for the embedded server (start.ts) and an API node (start-api.ts) alike: the
// app on config.host:config.port (0 picks a free port) and, with metrics.port, /metrics on a listener of its own.
import type { FastifyInstance } from 'fastify';
import { listenForMetricsPort, type ServerMetrics } from './metrics.js';

interface Built {
  app: FastifyInstance;
  metrics: ServerMetrics;
  close(): Promise<void>;
  shutdown(drainMs?: number): Promise<void>;
}

/** `server` listening, with its url (and metricsUrl); its close() and shutdown() end the metrics listener too. */
export async function listen<T extends Built>(
  config: { host: string; port: number; metrics: { port?: number } },
  server: T,
): Promise<T & { url: string; metricsUrl?: string }> {
  try {
    const address = await server.app.listen({ host: config.host, port: config.port });
    const url = address.replace('[::1]', '127.0.0.1');
    const scrape = await listenForMetricsPort(config, server.metrics);
    const { close, shutdown } = server;
    return Object.assign(server, {
      url,
      ...(scrape ? { metricsUrl: scrape.url } : {}),
      close: () => close.call(server).finally(() => scrape?.close()),
      shutdown: (drainMs?: number) => shutdown.call(server, drainMs).finally(() => scrape?.close()),
    });
  } catch (err) {
    await server.close();
    throw err;
  }
}
