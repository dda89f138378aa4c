// An OTLP/HTTP trace collector for tests: a plain HTTP server on a free port of 127.0.0.1 that keeps every span
// the exporter POSTs as JSON to /v1/traces, with the service.name of the resource that sent it.
import { once } from 'node:events';
import { createServer } from 'node:http';

type Attribute = { key: string; value: { stringValue?: string; intValue?: number | string } };

/** An OTLP/JSON span as the exporter sends it (ids in hex), with its resource's service.name. */
export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Attribute[];
  service: string;
}

interface TracesRequest {
  resourceSpans: Array<{ resource?: { attributes?: Attribute[] }; scopeSpans: Array<{ spans: Array<Omit<OtlpSpan, 'service'>> }> }>;
}

export interface OtlpCollector {
  /** http://127.0.0.1:PORT: OTEL_EXPORTER_OTLP_ENDPOINT (the exporter adds /v1/traces). */
  endpoint: string;
  /** Every span received so far, in arrival order. */
  spans: OtlpSpan[];
  close(): Promise<void>;
}

function spansOf(msg: TracesRequest): OtlpSpan[] {
  return msg.resourceSpans.flatMap((rs) => {
    const service = rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
    return rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => ({ ...s, service })));
  });
}

export async function startOtlpCollector(): Promise<OtlpCollector> {
  const spans: OtlpSpan[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      if (req.url === '/v1/traces' && req.headers['content-type']?.startsWith('application/json'))
        spans.push(...spansOf(JSON.parse(body) as TracesRequest));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
