// A listener of its own for GET /metrics (`--metrics-port`, metrics.port): the usual scrape setup, a port the
// firewall keeps inside the cluster, with no API key. Used by an API node or embedded server and by `easel worker`.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';

export interface MetricsSource {
  readonly contentType: string;
  text(): Promise<string>;
}

export interface MetricsListener {
  /** http://host:port (the port picked when 0 was asked for). */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Serves `GET /metrics` (and HEAD) on host:port; anything else is a 404, a failed scrape a 500. Resolves once listening. */
export async function listenForMetrics(source: MetricsSource, host: string, port: number): Promise<MetricsListener> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(path === '/metrics' ? 405 : 404, { 'content-type': 'text/plain; charset=utf-8' }).end('only GET /metrics here\n');
      return;
    }
    source.text().then(
      (text) => res.writeHead(200, { 'content-type': source.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (err: unknown) =>
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`scrape failed: ${(err as Error)?.message}\n`),
    );
  });
  server.keepAliveTimeout = 65_000; // longer than Prometheus' scrape interval, so a scraper keeps its connection
  server.listen(port, host);
  await Promise.race([
    once(server, 'listening'),
    once(server, 'error').then(([err]) => {
      throw new Error(`metrics.port: cannot listen on ${host}:${port}: ${(err as Error).message}`);
    }),
  ]);
  const bound = (server.address() as { port: number }).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${bound}`,
    port: bound,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
