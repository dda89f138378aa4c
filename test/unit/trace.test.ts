// W3C traceparent handling on the real embedded server (tiny fixture, app.inject): a valid one is continued and
// answered, an invalid one starts a new trace; the codec carries a job's trace; the OTEL_* variables are read strictly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJobSpec, encodeJobSpec } from '../../src/jobs/codec.js';
import { jobLogFields } from '../../src/telemetry/jobs.js';
import { tracingSettings } from '../../src/telemetry/otel.js';
import { formatTraceparent, parseTraceparent } from '../../src/telemetry/trace-context.js';
import { spec } from '../contract/job-queue.js';
import { startTinyServer, type TinyServer } from '../helpers/embedded.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';
const SENT = `00-${TRACE}-${PARENT}-01`;

describe('parseTraceparent', () => {
  it('reads the W3C example and writes it back unchanged', () => {
    expect(parseTraceparent(SENT)).toEqual({ traceId: TRACE, spanId: PARENT, flags: '01' });
    expect(formatTraceparent(parseTraceparent(SENT)!)).toBe(SENT);
  });

  it.each([
    ['uppercase hex', `00-${TRACE.toUpperCase()}-${PARENT}-01`],
    ['an all-zero trace id', `00-${'0'.repeat(32)}-${PARENT}-01`],
    ['an all-zero parent id', `00-${TRACE}-${'0'.repeat(16)}-01`],
    ['version ff', `ff-${TRACE}-${PARENT}-01`],
    ['version 00 with a fifth field', `${SENT}-extra`],
    ['a short trace id', `00-${TRACE.slice(1)}-${PARENT}-01`],
    ['a non-hex flag', `00-${TRACE}-${PARENT}-0x`],
    ['three fields', `00-${TRACE}-${PARENT}`],
    ['nothing', ''],
  ])('refuses %s', (_what, value) => {
    expect(parseTraceparent(value)).toBeUndefined();
  });

  it('accepts a later version with more fields (the spec’s forward compatibility), and refuses repeated headers', () => {
    expect(parseTraceparent(`cc-${TRACE}-${PARENT}-01-whatever`)).toEqual({ traceId: TRACE, spanId: PARENT, flags: '01' });
    expect(parseTraceparent([SENT, SENT])).toBeUndefined();
  });
});

describe('a job carries its trace through the Redis codec', () => {
  it('keeps a valid traceparent and drops one that does not parse', () => {
    expect(decodeJobSpec(encodeJobSpec(spec('m', 'p', { traceparent: SENT }))).traceparent).toBe(SENT);
    expect(decodeJobSpec(encodeJobSpec(spec('m', 'p', { traceparent: 'garbage' }))).traceparent).toBeUndefined();
    expect(jobLogFields({ requestId: 'req_1', traceparent: SENT })).toEqual({ request_id: 'req_1', trace_id: TRACE });
    expect(jobLogFields({ requestId: 'req_1' })).toEqual({ request_id: 'req_1' });
  });
});

describe('OTEL_* settings', () => {
  it('exports nothing unless an exporter or an OTLP endpoint is configured', () => {
    expect(tracingSettings({}, 'easel').exporters).toEqual([]);
    expect(tracingSettings({ OTEL_TRACES_EXPORTER: 'none' }, 'easel').exporters).toEqual([]);
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/', OTEL_SDK_DISABLED: 'true' }, 'easel').exporters).toEqual([]);
  });

  it('takes the OTLP endpoint (+ /v1/traces) or the traces endpoint as is, and the service name', () => {
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/' }, 'easel')).toEqual({
      exporters: ['otlp'],
      otlpUrl: 'http://c:4318/v1/traces',
      serviceName: 'easel',
    });
    const both = { OTEL_TRACES_EXPORTER: 'otlp,console', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t/x', OTEL_SERVICE_NAME: 'api-7' };
    expect(tracingSettings(both, 'easel')).toEqual({ exporters: ['otlp', 'console'], otlpUrl: 'http://t/x', serviceName: 'api-7' });
    expect(tracingSettings({ OTEL_TRACES_EXPORTER: 'otlp' }, 'w').otlpUrl).toBe('http://localhost:4318/v1/traces');
  });

  it('stops at a value it cannot honour, naming the variable', () => {
    expect(() => tracingSettings({ OTEL_TRACES_EXPORTER: 'zipkin' }, 'e')).toThrow(/^OTEL_TRACES_EXPORTER: 'zipkin'/);
    expect(() => tracingSettings({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, 'e')).toThrow(
      /^OTEL_EXPORTER_OTLP_PROTOCOL/,
    );
    expect(() => tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'c:4318' }, 'e')).toThrow(/^OTEL_EXPORTER_OTLP_ENDPOINT/);
  });
});

describe('traceparent on HTTP', () => {
  let tiny: TinyServer;

  beforeAll(async () => {
    tiny = await startTinyServer('easel-trace-');
  });

  afterAll(async () => {
    await tiny?.close();
  });

  const get = (headers: Record<string, string> = {}) => tiny.server.app.inject({ method: 'GET', url: '/v1/models', headers });

  it('continues a valid traceparent: same trace id and flags, the request’s own span id, next to x-request-id', async () => {
    const res = await get({ traceparent: SENT });
    const back = parseTraceparent(res.headers.traceparent as string);
    expect(back).toMatchObject({ traceId: TRACE, flags: '01' });
    expect(back?.spanId).not.toBe(PARENT);
    expect(res.headers['x-request-id']).toMatch(/^req_/);
  });

  it('keeps a caller’s not-sampled flag', async () => {
    const res = await get({ traceparent: `00-${TRACE}-${PARENT}-00` });
    expect(parseTraceparent(res.headers.traceparent as string)).toMatchObject({ traceId: TRACE, flags: '00' });
  });

  it('starts a new trace for an invalid or missing traceparent, one per request', async () => {
    const invalid = parseTraceparent((await get({ traceparent: `00-${TRACE.toUpperCase()}-${PARENT}-01` })).headers.traceparent as string);
    const none = parseTraceparent((await get()).headers.traceparent as string);
    expect(invalid?.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(invalid?.traceId).not.toBe(TRACE);
    expect(none?.traceId).not.toBe(invalid?.traceId);
  });

  it('answers errors and generations with it too', async () => {
    const lost = await tiny.server.app.inject({ method: 'GET', url: '/no/such', headers: { traceparent: SENT } });
    expect(lost.statusCode).toBe(404);
    expect(parseTraceparent(lost.headers.traceparent as string)?.traceId).toBe(TRACE);
    const made = await tiny.server.app.inject({
      method: 'POST',
      url: '/v1/images/generations',
      payload: { model: 'tiny', prompt: 'a square', quality: 'low' },
      headers: { 'content-type': 'application/json', traceparent: SENT },
    });
    expect(made.statusCode).toBe(200);
    expect(parseTraceparent(made.headers.traceparent as string)?.traceId).toBe(TRACE);
  });

  it('answers a stream (which writes its own head) with it', async () => {
    const res = await tiny.server.app.inject({
      method: 'POST',
      url: '/v1/images/generations',
      payload: { model: 'tiny', prompt: 'a square', quality: 'low', stream: true },
      headers: { 'content-type': 'application/json', traceparent: SENT },
    });
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(parseTraceparent(res.headers.traceparent as string)?.traceId).toBe(TRACE);
  });
});
