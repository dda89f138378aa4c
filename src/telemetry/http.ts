// One trace per HTTP request: the caller's W3C traceparent continued (or a new trace), the request's own span id,
// the `traceparent` response header, trace_id/request_id on every log line, and the server span when tracing is on.
// A job's spec carries its request's traceparent (server/respond.ts), so the worker continues the trace.
import type { IncomingMessage } from 'node:http';
import type { Span } from '@opentelemetry/api';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { contextOfSpan, SpanStatusCode, startServerSpan } from './otel.js';
import { childOf, formatTraceparent, parseTraceparent, type TraceContext } from './trace-context.js';

export interface RequestTrace {
  /** The request's own span: the caller's trace id, this request's span id. */
  context: TraceContext;
  traceparent: string;
  span?: Span;
}

const byRequest = new WeakMap<IncomingMessage, RequestTrace>();

/** The request's trace, made on first use from its `traceparent` header (an invalid one starts a new trace). */
export function requestTrace(raw: IncomingMessage): RequestTrace {
  let t = byRequest.get(raw);
  if (!t) {
    const parent = parseTraceparent(raw.headers.traceparent);
    const span = startServerSpan(raw.method ?? 'HTTP', parent, { 'http.request.method': raw.method ?? '' });
    const context = span?.isRecording() ? contextOfSpan(span) : childOf(parent);
    t = { context, traceparent: formatTraceparent(context), ...(span ? { span } : {}) };
    byRequest.set(raw, t);
  }
  return t;
}

/** Fields every log line of the request carries (Fastify's childLoggerFactory adds them to its child logger). */
export function logBindings(raw: IncomingMessage, requestId: string): { request_id: string; trace_id: string } {
  return { request_id: requestId, trace_id: requestTrace(raw).context.traceId };
}

/**
 * In onRequest: answers with `traceparent` and ends the server span
 * (named by the route pattern, with the status) when the response closes, answered or not.
 */
export function traceRequest(req: FastifyRequest, reply: FastifyReply): void {
  const t = requestTrace(req.raw);
  // On the raw response, so that replies which write their own head (SSE streams) carry it too.
  reply.raw.setHeader('traceparent', t.traceparent);
  reply.raw.once('close', () => {
    if (!t.span) return;
    const route = req.is404 ? undefined : req.routeOptions.url;
    // Ended by the server (answered), else the client left first (nginx's 499).
    const status = reply.raw.writableEnded ? reply.statusCode : 499;
    t.span.updateName(route ? `${req.method} ${route}` : req.method);
    t.span.setAttributes({ 'http.response.status_code': status, ...(route ? { 'http.route': route } : {}), 'easel.request_id': req.id });
    if (status >= 500) t.span.setStatus({ code: SpanStatusCode.ERROR });
    t.span.end();
  });
}
