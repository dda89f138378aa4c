// OpenTelemetry in the embedded server: with an OTLP exporter configured, one generation's spans reach an OTLP/HTTP
// collector this test runs (server span under the caller's, queue wait and job under it, the stages under the job);
// a caller's not-sampled flag is honoured; with no exporter nothing is registered.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTracing, type Tracing, tracingEnabled } from '../../src/telemetry/otel.js';
import { startTinyServer, type TinyServer } from '../helpers/embedded.js';
import { type OtlpCollector, type OtlpSpan, startOtlpCollector } from '../helpers/otlp.js';

const PARENT = 'b7ad6b7169203331';

let collector: OtlpCollector;
let tracing: Tracing;
let tiny: TinyServer;

beforeAll(async () => {
  collector = await startOtlpCollector();
  expect(tracingEnabled()).toBe(false);
  tracing = await startTracing({ exporters: ['otlp'], otlpUrl: `${collector.endpoint}/v1/traces`, serviceName: 'easel-test' });
  tiny = await startTinyServer('easel-otel-');
});

afterAll(async () => {
  await tiny?.close();
  await tracing?.shutdown();
  await collector?.close();
});

function generate(traceparent: string) {
  return tiny.server.app.inject({
    method: 'POST',
    url: '/v1/images/generations',
    payload: { model: 'tiny', prompt: 'a square', quality: 'low' },
    headers: { 'content-type': 'application/json', traceparent },
  });
}

describe('OpenTelemetry spans of the embedded server', () => {
  it('exports the request’s spans under the caller’s, the job’s under the request’s', async () => {
    const trace = 'a'.repeat(31) + '1';
    const unsampled = 'b'.repeat(31) + '2';
    expect((await generate(`00-${trace}-${PARENT}-01`)).statusCode).toBe(200);
    expect((await generate(`00-${unsampled}-${PARENT}-00`)).statusCode).toBe(200);
    await tracing.shutdown(); // flushes the batch processor
    expect(tracingEnabled()).toBe(false);
    const mine = collector.spans.filter((s) => s.traceId === trace);
    const root = mine.find((s) => s.name === 'POST /v1/images/generations');
    expect(root).toMatchObject({ parentSpanId: PARENT, kind: 2 });
    const attr = (s: OtlpSpan | undefined, key: string) => s?.attributes.find((a) => a.key === key)?.value;
    expect(Number(attr(root, 'http.response.status_code')?.intValue)).toBe(200);
    const job = mine.find((s) => s.name === 'job');
    expect(job?.parentSpanId).toBe(root?.spanId);
    expect(attr(job, 'easel.outcome')?.stringValue).toBe('ok');
    expect(mine.find((s) => s.name === 'queue wait')?.parentSpanId).toBe(root?.spanId);
    const stages = mine.filter((s) => s.parentSpanId === job?.spanId).map((s) => s.name);
    expect(stages.sort()).toEqual(['denoise', 'encode', 'text_encoder', 'vae']);
    // The caller said not sampled: nothing of that trace is exported.
    expect(collector.spans.filter((s) => s.traceId === unsampled)).toEqual([]);
  });

  it('registers nothing and exports nothing without an exporter, and still answers traceparent', async () => {
    const off = await startTracing({ exporters: [], serviceName: 'easel-test' });
    expect(off.enabled).toBe(false);
    expect(tracingEnabled()).toBe(false);
    const before = collector.spans.length;
    const res = await generate(`00-${'c'.repeat(32)}-${PARENT}-01`);
    expect(res.headers.traceparent).toMatch(/^00-c{32}-[0-9a-f]{16}-01$/);
    await new Promise((r) => setTimeout(r, 100));
    expect(collector.spans.length).toBe(before);
  });
});
