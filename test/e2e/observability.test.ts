// One request followed across a real cluster: redis-server, `easel serve --queue` and `easel worker --metrics-port`
// (child processes of the real CLI, tiny fixture) exporting OpenTelemetry spans to an OTLP/HTTP collector this test
// runs. The caller's traceparent comes back, reaches the worker's log lines, and parents the spans of both processes;
// the worker's own /metrics counts the image it made.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cluster, type EaselProcess } from '../helpers/cluster.js';
import { type OtlpCollector, startOtlpCollector } from '../helpers/otlp.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');
const TRACE = '0af7651916cd43dd8448eb211c80319c';
const PARENT = 'b7ad6b7169203331';

interface Family {
  name: string;
  metrics: Array<{ value?: string; labels?: Record<string, string> }>;
}
const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => Family[];

const easel = cluster();
let collector: OtlpCollector;
let redis: TestRedis;
let dir: string;
let apiProc: EaselProcess;
let workerProc: EaselProcess;
let apiUrl: string;
let workerMetricsUrl: string;

/** The JSON log lines a process wrote (pino's on the API node's stdout, the worker's on its stderr). */
function logLines(p: EaselProcess): Array<Record<string, unknown>> {
  return p.output.split('\n').flatMap((line) => {
    if (!line.startsWith('{')) return [];
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

beforeAll(async () => {
  collector = await startOtlpCollector();
  redis = await startRedis();
  dir = mkdtempSync(join(tmpdir(), 'easel-observability-'));
  const config = join(dir, 'easel.json');
  writeFileSync(config, JSON.stringify({ dataDir: dir, models: [{ name: 'tiny', path: FIXTURE }], queue: { url: redis.url } }));
  const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint, OTEL_BSP_SCHEDULE_DELAY: '100' };
  workerProc = easel.worker('worker', ['--config', config, '--metrics-port', '0'], { ...otel, OTEL_SERVICE_NAME: 'worker-test' });
  ({ proc: apiProc, url: apiUrl } = await easel.serve('api', ['--config', config, '--port', '0'], {
    ...otel,
    OTEL_SERVICE_NAME: 'api-test',
  }));
  workerMetricsUrl = await easel.line(workerProc, /easel worker metrics on (http:\/\/\S+)\/metrics/, 'the worker metrics port');
  await easel.waitFor('/readyz 200', async () => (await fetch(`${apiUrl}/readyz`)).status === 200, 60_000);
}, 90_000);

afterAll(async () => {
  await easel.stop();
  await redis?.stop();
  await collector?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('one trace from the API node to the worker', () => {
  let requestId: string;
  let answered: string | null;

  beforeAll(async () => {
    const client = new OpenAI({ apiKey: 'sk-any', baseURL: `${apiUrl}/v1`, maxRetries: 0, timeout: 60_000 });
    const { data, response } = await client.images
      .generate(
        { model: 'gpt-image-1', prompt: 'a blue square', size: '1024x1024', quality: 'low' },
        { headers: { traceparent: `00-${TRACE}-${PARENT}-01` } },
      )
      .withResponse();
    expect(data.data?.[0]?.b64_json).toBeTruthy();
    requestId = response.headers.get('x-request-id') ?? '';
    answered = response.headers.get('traceparent');
  }, 60_000);

  it('answers with the caller’s trace id next to x-request-id', () => {
    expect(requestId).toMatch(/^req_/);
    expect(answered).toMatch(new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`));
    expect(answered).not.toContain(PARENT);
  });

  it('puts trace_id and request_id on every log line of the request, on both sides of the queue', async () => {
    const started = await easel.waitFor('the worker’s job log line', () =>
      logLines(workerProc).find((l) => l.msg === 'job started' && l.request_id === requestId),
    );
    expect(started).toMatchObject({ trace_id: TRACE, model: 'tiny' });
    const ended = await easel.waitFor('the worker’s job end', () =>
      logLines(workerProc).find((l) => l.msg === 'job ended' && l.request_id === requestId),
    );
    expect(ended).toMatchObject({ trace_id: TRACE, outcome: 'ok' });
    await easel.waitFor('the API node’s request log', () =>
      logLines(apiProc).find((l) => l.msg === 'request completed' && l.reqId === requestId),
    );
    const lines = logLines(apiProc).filter((l) => l.reqId === requestId);
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['incoming request', 'request completed']));
    for (const l of lines) expect(l).toMatchObject({ trace_id: TRACE, request_id: requestId });
  });

  it('exports spans of both processes parented by the caller’s span, then the request’s, then the job’s', async () => {
    const server = await easel.waitFor('the API node’s server span', () =>
      collector.spans.find((s) => s.traceId === TRACE && s.name === 'POST /v1/images/generations'),
    );
    expect(server).toMatchObject({ parentSpanId: PARENT, kind: 2, service: 'api-test' });
    expect(answered).toBe(`00-${TRACE}-${server.spanId}-01`);
    const job = await easel.waitFor('the worker’s job span', () => collector.spans.find((s) => s.traceId === TRACE && s.name === 'job'));
    expect(job).toMatchObject({ parentSpanId: server.spanId, service: 'worker-test' });
    const stages = await easel.waitFor('the stage spans', () => {
      const found = collector.spans.filter((s) => s.parentSpanId === job.spanId);
      return found.length === 4 ? found : undefined;
    });
    expect(stages.map((s) => s.name).sort()).toEqual(['denoise', 'encode', 'text_encoder', 'vae']);
    const wait = collector.spans.find((s) => s.traceId === TRACE && s.name === 'queue wait');
    expect(wait).toMatchObject({ parentSpanId: server.spanId, service: 'worker-test' });
  });

  it('counts the image on the worker’s own /metrics, and the API node’s shows its queue per model', async () => {
    const text = await (await fetch(`${workerMetricsUrl}/metrics`)).text();
    const worker = parsePrometheus(text);
    const images = worker.find((f) => f.name === 'easel_images_generated_total')?.metrics.find((m) => m.labels?.model === 'tiny');
    expect(Number(images?.value)).toBe(1);
    expect(worker.map((f) => f.name)).toEqual(
      expect.arrayContaining(['easel_batch_size', 'easel_unet_step_seconds', 'process_resident_memory_bytes']),
    );
    const api = parsePrometheus(await (await fetch(`${apiUrl}/metrics`)).text());
    const value = (name: string) => Number(api.find((f) => f.name === name)?.metrics.find((m) => m.labels?.model === 'tiny')?.value);
    expect(value('easel_workers')).toBe(1);
    expect(value('easel_queue_waiting')).toBe(0);
    expect(value('easel_queue_running')).toBe(0);
  });
});
