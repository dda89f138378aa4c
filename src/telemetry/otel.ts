// OpenTelemetry tracing from the standard OTEL_* variables: with an exporter configured (OTEL_TRACES_EXPORTER=otlp or
// console, or an OTLP endpoint set) a tracer provider is registered and spans are exported; without one nothing is
// registered, the API stays a no-op and nothing is slowed. A bad value stops the process at start, naming the variable.
import { type Context as OtelContext, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api';
import { EASEL_VERSION } from '../version.js';
import type { TraceContext } from './trace-context.js';

export type TracesExporter = 'otlp' | 'console';

export interface TracingSettings {
  exporters: TracesExporter[];
  /** OTLP/HTTP traces URL (…/v1/traces), when exporting by OTLP. */
  otlpUrl?: string;
  serviceName: string;
}

export class TelemetryConfigError extends Error {
  override readonly name = 'TelemetryConfigError';
}

const DEFAULT_OTLP = 'http://localhost:4318';

/**
 * What the OTEL_* variables ask for (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/):
 * OTEL_SDK_DISABLED=true turns tracing off; OTEL_TRACES_EXPORTER lists otlp, console or none (Easel's default is none
 * unless an OTLP endpoint is set, so a server nobody configured exports nothing); OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
 * (as is) or OTEL_EXPORTER_OTLP_ENDPOINT (+ /v1/traces); OTEL_SERVICE_NAME (default `fallbackName`).
 */
export function tracingSettings(env: NodeJS.ProcessEnv, fallbackName: string): TracingSettings {
  const serviceName = env.OTEL_SERVICE_NAME?.trim() || fallbackName;
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return { exporters: [], serviceName };
  const tracesUrl = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  const baseUrl = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  const listed = env.OTEL_TRACES_EXPORTER?.trim();
  const names = listed ? listed.split(',').map((s) => s.trim().toLowerCase()) : tracesUrl || baseUrl ? ['otlp'] : ['none'];
  for (const n of names) {
    if (n !== 'otlp' && n !== 'console' && n !== 'none') {
      throw new TelemetryConfigError(`OTEL_TRACES_EXPORTER: '${n}' is not supported (use otlp, console or none)`);
    }
  }
  const exporters = [...new Set(names.filter((n): n is TracesExporter => n !== 'none'))];
  if (!exporters.includes('otlp')) return { exporters, serviceName };
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL)?.trim();
  if (protocol && protocol !== 'http/protobuf' && protocol !== 'http/json') {
    throw new TelemetryConfigError(`OTEL_EXPORTER_OTLP_PROTOCOL: '${protocol}' is not supported (Easel exports OTLP over HTTP)`);
  }
  const otlpUrl = tracesUrl || `${(baseUrl || DEFAULT_OTLP).replace(/\/+$/, '')}/v1/traces`;
  if (!URL.canParse(otlpUrl) || !/^https?:$/.test(new URL(otlpUrl).protocol)) {
    const name = tracesUrl ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' : 'OTEL_EXPORTER_OTLP_ENDPOINT';
    throw new TelemetryConfigError(`${name}: '${tracesUrl || baseUrl}' is not an http(s) URL`);
  }
  return { exporters, otlpUrl, serviceName };
}

export interface Tracing {
  /** Whether a provider is registered (spans are recorded and exported). */
  readonly enabled: boolean;
  /** Exports what is pending and stops (shutdown's last step). */
  shutdown(): Promise<void>;
}

let active: { tracer: Tracer } | undefined;

/**
 * Registers a tracer provider when the settings name an exporter (the SDK is loaded only then). One per process: a
 * second call while one is registered returns a Tracing that is enabled and does nothing.
 */
export async function startTracing(settings: TracingSettings): Promise<Tracing> {
  if (settings.exporters.length === 0) return { enabled: false, shutdown: async () => {} };
  if (active) return { enabled: true, shutdown: async () => {} };
  const [{ NodeTracerProvider, BatchSpanProcessor, ConsoleSpanExporter }, { OTLPTraceExporter }, resources] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ]);
  const resource = resources
    .defaultResource()
    .merge(resources.resourceFromAttributes({ 'service.name': settings.serviceName, 'service.version': EASEL_VERSION }))
    // OTEL_RESOURCE_ATTRIBUTES (and OTEL_SERVICE_NAME again, which wins).
    .merge(resources.detectResources({ detectors: [resources.envDetector] }));
  const spanProcessors = settings.exporters.map((e) =>
    e === 'otlp'
      ? new BatchSpanProcessor(new OTLPTraceExporter({ url: settings.otlpUrl }))
      : new BatchSpanProcessor(new ConsoleSpanExporter()),
  );
  const provider = new NodeTracerProvider({ resource, spanProcessors });
  provider.register();
  active = { tracer: provider.getTracer('easel', EASEL_VERSION) };
  return {
    enabled: true,
    async shutdown() {
      active = undefined;
      await provider.shutdown();
      trace.disable();
    },
  };
}

export function tracingEnabled(): boolean {
  return active !== undefined;
}

/** An OpenTelemetry context whose parent is the given trace context (a remote span). */
export function contextOf(parent: TraceContext | undefined): OtelContext {
  if (!parent) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: parent.traceId,
    spanId: parent.spanId,
    traceFlags: Number.parseInt(parent.flags, 16) & 1,
    isRemote: true,
  });
}

/** The trace context a span names (its children's parent). */
export function contextOfSpan(span: Span): TraceContext {
  const c = span.spanContext();
  return { traceId: c.traceId, spanId: c.spanId, flags: (c.traceFlags & 0xff).toString(16).padStart(2, '0') };
}

export interface SpanTimes {
  /** Epoch ms. */
  start: number;
  end: number;
}

/**
 * A span that already happened (start and end known), under `parent`; undefined when tracing is off. Children are
 * made with `under` set to the returned span.
 */
export function recordSpan(
  name: string,
  times: SpanTimes,
  parent: { context?: TraceContext; under?: Span },
  attributes: Record<string, string | number | boolean> = {},
  error?: string,
): Span | undefined {
  if (!active) return undefined;
  const ctx = parent.under ? trace.setSpan(ROOT_CONTEXT, parent.under) : contextOf(parent.context);
  const span = active.tracer.startSpan(name, { kind: SpanKind.INTERNAL, startTime: times.start, attributes }, ctx);
  if (error) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
  span.end(Math.max(times.start, times.end));
  return span;
}

/** A server span for an HTTP request, started now under the caller's context; undefined when tracing is off. */
export function startServerSpan(name: string, parent: TraceContext | undefined, attributes: Record<string, string>): Span | undefined {
  if (!active) return undefined;
  return active.tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, contextOf(parent));
}

export { SpanStatusCode };
