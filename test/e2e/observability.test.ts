// One request followed across a real cluster: redis-server, `easel serve --queue` and `easel worker --metrics-port`
// (child processes of the real CLI, tiny fixture) exporting OpenTelemetry spans to an OTLP/HTTP collector this test
// runs. The caller's traceparent comes back, reaches the worker's log lines, and parents the spans of both processes;
// the worker's own /metrics counts the image it made.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const ROOT = join(import.meta.dirname, '..', '..');
const MAIN = join(ROOT, 'src', 'cli', 'main.ts');
const FIXTURE = join(ROOT, 'test', 'fixtures', 'tiny-sd');
const TRACE = '0af7651916cd43dd8448eb211c80319c';
const PARENT = 'b7ad6b7169203331';

interface Family {
  name: string;
  metrics: Array<{ value?: string; labels?: Record<string, string> }>;
}
const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => Family[];

interface Proc {
  name: string;
  child: ChildProcess;
  output: string;
}

/** An OTLP/JSON span as the exporter sends it (ids in hex). */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  service: string;
}

const procs: Proc[] = [];
const spans: OtlpSpan[] = [];
let collector: Server;
let redis: TestRedis;
let dir: string;
let apiUrl: string;
let workerMetricsUrl: string;

function easel(name: string, args: string[], env: NodeJS.ProcessEnv): Proc {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EASEL_') && !k.startsWith('OTEL_')));
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { env: { ...clean, ...env }, cwd: ROOT });
  const p: Proc = { name, child, output: '' };
  child.stdout?.on('data', (d) => {
    p.output += d;
  });
  child.stderr?.on('data', (d) => {
    p.output += d;
  });
  procs.push(p);
  return p;
}

async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await Promise.resolve(check()).catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}\n${procs.map((p) => `--- ${p.name}\n${p.output.slice(-3000)}`).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The JSON log lines a process wrote (pino's on the API node's stdout, the worker's on its stderr). */
function logLines(p: Proc): Array<Record<string, unknown>> {
  return p.output.split('\n').flatMap((line) => {
    if (!line.startsWith('{')) return [];
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

/** Collects OTLP/HTTP JSON trace exports (POST /v1/traces) into `spans`. */
async function startCollector(): Promise<number> {
  collector = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      if (req.url === '/v1/traces' && req.headers['content-type']?.startsWith('application/json')) {
        const msg = JSON.parse(body) as {
          resourceSpans: Array<{
            resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> };
            scopeSpans: Array<{ spans: Array<Omit<OtlpSpan, 'service'>> }>;
          }>;
        };
        for (const rs of msg.resourceSpans) {
          const service = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
          for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ ...s, service });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  collector.listen(0, '127.0.0.1');
  await once(collector, 'listening');
  return (collector.address() as { port: number }).port;
}

beforeAll(async () => {
  const otlpPort = await startCollector();
  redis = await startRedis();
  dir = mkdtempSync(join(tmpdir(), 'easel-observability-'));
  const config = join(dir, 'easel.json');
  writeFileSync(config, JSON.stringify({ dataDir: dir, models: [{ name: 'tiny', path: FIXTURE }], queue: { url: redis.url } }));
  const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${otlpPort}`, OTEL_BSP_SCHEDULE_DELAY: '100' };
  const api = easel('api', ['serve', '--config', config, '--port', '0'], { ...otel, OTEL_SERVICE_NAME: 'api-test' });
  const worker = easel('worker', ['worker', '--config', config, '--metrics-port', '0'], {
    ...otel,
    OTEL_SERVICE_NAME: 'worker-test',
    EASEL_THREADS: '1',
  });
  apiUrl = await waitFor('the API node to listen', () => /easel listening on (http:\/\/\S+)/.exec(api.output)?.[1]);
  workerMetricsUrl = await waitFor(
    'the worker metrics port',
    () => /easel worker metrics on (http:\/\/\S+)\/metrics/.exec(worker.output)?.[1],
  );
  await waitFor('/readyz 200', async () => (await fetch(`${apiUrl}/readyz`)).status === 200, 60_000);
}, 90_000);

afterAll(async () => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await Promise.all(procs.map((p) => (p.child.exitCode === null && p.child.signalCode === null ? once(p.child, 'exit') : undefined)));
  await redis?.stop();
  collector?.close();
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
    const [api, worker] = procs;
    const started = await waitFor('the worker’s job log line', () =>
      logLines(worker).find((l) => l.msg === 'job started' && l.request_id === requestId),
    );
    expect(started).toMatchObject({ trace_id: TRACE, model: 'tiny' });
    const ended = await waitFor('the worker’s job end', () =>
      logLines(worker).find((l) => l.msg === 'job ended' && l.request_id === requestId),
    );
    expect(ended).toMatchObject({ trace_id: TRACE, outcome: 'ok' });
    await waitFor('the API node’s request log', () => logLines(api).find((l) => l.msg === 'request completed' && l.reqId === requestId));
    const lines = logLines(api).filter((l) => l.reqId === requestId);
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['incoming request', 'request completed']));
    for (const l of lines) expect(l).toMatchObject({ trace_id: TRACE, request_id: requestId });
  });

  it('exports spans of both processes parented by the caller’s span, then the request’s, then the job’s', async () => {
    const server = await waitFor('the API node’s server span', () =>
      spans.find((s) => s.traceId === TRACE && s.name === 'POST /v1/images/generations'),
    );
    expect(server).toMatchObject({ parentSpanId: PARENT, kind: 2, service: 'api-test' });
    expect(answered).toBe(`00-${TRACE}-${server.spanId}-01`);
    const job = await waitFor('the worker’s job span', () => spans.find((s) => s.traceId === TRACE && s.name === 'job'));
    expect(job).toMatchObject({ parentSpanId: server.spanId, service: 'worker-test' });
    const stages = await waitFor('the stage spans', () => {
      const found = spans.filter((s) => s.parentSpanId === job.spanId);
      return found.length === 4 ? found : undefined;
    });
    expect(stages.map((s) => s.name).sort()).toEqual(['denoise', 'encode', 'text_encoder', 'vae']);
    const wait = spans.find((s) => s.traceId === TRACE && s.name === 'queue wait');
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
