// The Fastify application: connection deadlines, request ids, browser safety, auth, and OpenAI's error envelope on
// every response (Fastify's own router, parser, client-error and shutdown refusals included), a drain for shutdown,
// then the routes. A client that leaves is logged as nginx's 499, never as an error. Everything it needs is passed in.
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import {
  ApiError,
  badRequest,
  invalidApiKey,
  invalidJsonBody,
  invalidUrl,
  missingApiKey,
  payloadTooLarge,
  redactApiKey,
  serverError,
  serviceUnavailable,
  unsupportedMediaType,
} from '../contract/errors.js';
import { DbUnavailableError } from '../db/types.js';
import { logBindings, traceRequest } from '../telemetry/http.js';
import { closeReason, connectionLimits, guardConnections, markClosing, serverTimeouts, tagRequest } from './connections.js';
import type { ServerDeps } from './deps.js';
import { JobCancelledError, shuttingDown } from './dispatch.js';
import { checkMetricsReader, rejectionReason } from './metrics.js';
import { MemoryRateLimitStore, RateLimiter, type RateLimitStore } from './rate-limit.js';
import { registerEditRoutes } from './routes/edits.js';
import { registerFileRoutes } from './routes/files.js';
import { registerGenerationRoutes } from './routes/generations.js';
import { registerMetaRoutes } from './routes/meta.js';
import { registerPlaygroundRoutes } from './routes/playground.js';
import { registerUsageRoutes } from './routes/usage.js';
import { registerVariationRoutes } from './routes/variations.js';
import { browserPolicy } from './security.js';

/** Shutdown's control of the HTTP side (start.ts drives it; see README "Limits, timeouts and shutdown"). */
export interface Drain {
  /** From now on new work is refused with a retryable 503 and /readyz answers 503 "draining". */
  begin(): void;
  /** Resolves true when no admitted request is still being answered, or false after `ms`. */
  settled(ms: number): Promise<boolean>;
  /** Ends every connection, idle or half-sent. */
  closeAll(): void;
}

declare module 'fastify' {
  interface FastifyInstance {
    drain: Drain;
  }
}

function newRequestId(): string {
  return `req_${randomBytes(12).toString('hex')}`;
}

/**
 * Paths that never need an API key: health, docs, the playground page and its assets (it asks for a key itself), signed
 * image files (the signature is the credential), and /metrics when metrics.public is set (otherwise it needs an admin
 * key: checkMetricsReader).
 */
function isPublicPath(url: string, metricsPublic: boolean): boolean {
  const path = url.split('?')[0];
  return (
    (metricsPublic && path === '/metrics') ||
    path === '/healthz' ||
    path === '/readyz' ||
    path === '/openapi.json' ||
    path === '/' ||
    path.startsWith('/playground/') ||
    path.startsWith('/v1/images/files/')
  );
}

/** Headers every response carries, whichever path sends it. */
function stamp(reply: FastifyReply, id: string): void {
  reply.header('x-request-id', id);
  reply.header('x-content-type-options', 'nosniff');
}

/** What a server is built with beyond its deps: the API node's shared rate-limit buckets (Redis); else in memory. */
export interface BuildOptions {
  rateLimitStore?: RateLimitStore;
}

export async function buildServer(deps: ServerDeps, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const policy = browserPolicy(deps.config);
  const limiter = new RateLimiter(opts.rateLimitStore ?? new MemoryRateLimitStore(), deps.config.rateLimits);
  const limits = connectionLimits(deps.config);
  const timeouts = serverTimeouts(limits);
  let closing = false;
  const app = Fastify({
    requestTimeout: timeouts.requestTimeout,
    keepAliveTimeout: timeouts.keepAliveTimeout,
    logger: deps.logger ?? false,
    genReqId: () => newRequestId(),
    requestIdHeader: false,
    // Every log line of a request carries its request_id and trace_id (telemetry/http.ts).
    childLoggerFactory: (logger, bindings, opts, raw) => logger.child({ ...bindings, ...logBindings(raw, String(bindings.reqId)) }, opts),
    bodyLimit: deps.config.limits.bodyBytes,
    // X-Forwarded-Host/-Proto count only from configured proxies; the Host check and url responses read the result.
    trustProxy: deps.config.server.trustProxy,
    // Keep the raw body errors ours: JSON that does not parse becomes OpenAI's 400 below.
    onProtoPoisoning: 'remove',
    onConstructorPoisoning: 'remove',
    // Router refusals in OpenAI's envelope too (Fastify's own bodies have no x-request-id); so are Node's, below.
    frameworkErrors: (err, req, reply) => {
      stamp(reply, req.id);
      sendError(reply, routerError(err, req));
    },
    clientErrorHandler: (err, socket) => {
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') app.log.info({ remoteAddress: socket.remoteAddress }, 'request timed out; answered 408');
      answerClientError(err, socket);
    },
    // Node would answer a request without Host itself (a bare 400); the Host check answers it in the envelope.
    http: { requireHostHeader: false, ...timeouts.http },
    return503OnClosing: false,
  });
  guardConnections(app.server, {
    limits,
    log: () => app.log,
    refuseStalledBody: (socket) =>
      answerClientError(Object.assign(new Error('request body stalled'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), socket),
  });

  // Requests past preHandler and not yet answered: what the drain waits for (a half-sent body is not among them).
  let busy = 0;
  const onSettled: Array<() => void> = [];
  let closingAll = false;
  app.decorate('drain', {
    begin: () => {
      closing = true;
    },
    settled: (ms: number) =>
      new Promise<boolean>((resolve) => {
        if (busy === 0) return resolve(true);
        const timer = setTimeout(() => resolve(false), ms);
        onSettled.push(() => {
          clearTimeout(timer);
          resolve(true);
        });
      }),
    closeAll: () => {
      closingAll = true;
      if (app.server.listening) app.server.close(); // no new connections (app.close() stops listening anyway)
      app.server.closeAllConnections();
    },
  } satisfies Drain);

  app.addHook('preClose', async () => {
    closing = true;
  });

  app.addHook('onRequest', async (req, reply) => {
    stamp(reply, req.id);
    traceRequest(req, reply);
    tagRequest(req.raw, req.id);
    logIfClientLeaves(req, reply, () => closingAll);
    if (closing && req.url.split('?')[0] !== '/healthz') return refuseWhileDraining(req, reply);
    policy.check(req);
    await authenticate(deps, req);
    await limiter.admit(req, reply); // image requests: rate limits and their headers (rate-limit.ts)
    refuseNonJson(req);
  });

  // A request whose body arrives during the drain still gets its answer; a job it asks for is refused by the queue.
  app.addHook('preHandler', async (_req, reply) => {
    busy++;
    reply.raw.once('close', () => {
      busy--;
      if (busy === 0) for (const done of onSettled.splice(0)) done();
    });
  });

  // Route pattern labels only ('404' for unknown paths), so a scanner's URLs never become label values.
  app.addHook('onResponse', async (req, reply) => {
    const route = req.is404 ? '404' : (req.routeOptions.url ?? '404');
    deps.metrics.observeRequest(route, req.method, reply.statusCode, reply.elapsedTime / 1000);
  });

  app.setErrorHandler((err: FastifyError | ApiError, req: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof JobCancelledError || connectionGone(req, reply)) {
      // The client left: nothing can be sent (the 499 is logged when the response closes).
      reply.hijack();
      if (!reply.raw.destroyed) reply.raw.destroy();
      return;
    }
    const apiErr = toApiError(err, req);
    const rejected = rejectionReason(apiErr);
    if (rejected) deps.metrics.reject(rejected);
    if (apiErr.status === 503 || apiErr.status === 504) req.log.info({ code: apiErr.code }, apiErr.message);
    else if (apiErr.status >= 500) req.log.error({ err }, 'request failed');
    sendError(reply, apiErr);
  });

  app.setNotFoundHandler((req, reply) => {
    sendError(reply, invalidUrl(req.method, req.url.split('?')[0]));
  });

  // With metrics.port, /metrics is served on its own listener instead (start.ts, start-api.ts).
  if (deps.config.metrics.port === undefined) {
    app.get('/metrics', async (_req, reply) => reply.type(deps.metrics.contentType).send(await deps.metrics.text()));
  }
  registerMetaRoutes(app, deps);
  registerFileRoutes(app, deps);
  registerGenerationRoutes(app, deps);
  registerEditRoutes(app, deps);
  registerVariationRoutes(app, deps);
  registerUsageRoutes(app, deps);
  registerPlaygroundRoutes(app);
  return app;
}

/**
 * While draining: /readyz says so (load balancers stop sending), anything else on a kept-alive or new connection gets
 * a retryable 503 (another node can take it) and the connection is closed after the answer.
 */
function refuseWhileDraining(req: FastifyRequest, reply: FastifyReply): FastifyReply {
  reply.header('connection', 'close');
  if (req.url.split('?')[0] === '/readyz') return reply.code(503).send({ status: 'draining' });
  sendError(reply, shuttingDown());
  return reply;
}

function connectionGone(req: FastifyRequest, reply: FastifyReply): boolean {
  return reply.raw.destroyed || req.raw.socket?.destroyed === true;
}

/**
 * A response that closes before it is finished, when the server did not end its connection (a stall, a refusal,
 * shutdown), is a client that went away: logged at info as nginx's 499 `client closed request`, never as an error.
 */
function logIfClientLeaves(req: FastifyRequest, reply: FastifyReply, shuttingDownAll: () => boolean): void {
  reply.raw.once('close', () => {
    if (reply.raw.writableFinished || closeReason(req.raw.socket) || shuttingDownAll()) return;
    req.log.info({ res: { statusCode: 499 }, responseTime: reply.elapsedTime }, 'client closed request');
  });
}

async function authenticate(deps: ServerDeps, req: FastifyRequest): Promise<void> {
  if (deps.config.auth.mode !== 'keys' || isPublicPath(req.url, deps.config.metrics.public)) return;
  const header = req.headers.authorization;
  const m = typeof header === 'string' ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
  if (!m) throw missingApiKey();
  const key = await deps.db.verifyApiKey(m[1].trim());
  if (!key) throw invalidApiKey(redactApiKey(m[1].trim()));
  if (req.url.split('?')[0] === '/metrics') checkMetricsReader(key);
  req.apiKeyId = key.id;
  req.apiKeyAdmin = key.admin;
  req.keyRateLimits = { rpm: key.rpm, tpm: key.tpm };
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/**
 * A JSON-only route (one whose plugin scope has no multipart parser) refuses any other body before reading it, as
 * OpenAI does. Multipart routes refuse what they cannot take themselves, with OpenAI's 415 naming what they accept.
 */
function refuseNonJson(req: FastifyRequest): void {
  if (req.is404 || !BODY_METHODS.has(req.method) || req.server.hasContentTypeParser('multipart/form-data')) return;
  const type = req.headers['content-type'];
  const bodyless = type === undefined && (req.headers['content-length'] ?? '0') === '0' && !req.headers['transfer-encoding'];
  if (bodyless || /^application\/json\s*(;|$)/i.test(type ?? '')) return;
  throw jsonOnly(type);
}

/**
 * OpenAI's answer to a non-JSON body on a JSON-only endpoint: 400 unsupported_content_type with this sentence
 * (observed live: openai/openai-openapi#194 and #502). The missing-header wording is Easel's.
 */
function jsonOnly(contentType: string | undefined): ApiError {
  const shown = contentType?.slice(0, 200);
  const message = !shown
    ? "Unsupported content type: none. This API method only accepts 'application/json' requests, but the request has no Content-Type header. Please try again with a supported content type."
    : `Unsupported content type: '${shown}'. This API method only accepts 'application/json' requests, but you specified the header 'Content-Type: ${shown}'. Please try again with a supported content type.`;
  return new ApiError({ status: 400, message, param: null, code: 'unsupported_content_type' });
}

/** (Easel wording) Fastify's router refusals: a path that is not valid percent-encoding, a parameter over 100 characters. */
function routerError(err: FastifyError, req: FastifyRequest): ApiError {
  const full = req.url.split('?')[0];
  const path = full.length > 120 ? `${full.slice(0, 120)}...` : full;
  switch (err.code) {
    case 'FST_ERR_BAD_URL':
      return new ApiError({
        status: 400,
        message: `Invalid URL (${req.method} ${path}): the path is not valid percent-encoding.`,
        code: 'invalid_url',
      });
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new ApiError({
        status: 414,
        message: `Invalid URL (${req.method} ${path}): a path segment is longer than 100 characters.`,
        code: 'url_too_long',
      });
  }
  req.log.error({ err }, 'router failed');
  return serverError();
}

/** (Easel wording) What Node's HTTP parser refuses before Fastify sees a request: malformed, too slow, headers too big. */
function clientErrorFor(code: string | undefined): ApiError {
  switch (code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new ApiError({ status: 408, message: 'The request took too long to arrive.', code: 'request_timeout', shouldRetry: true });
    case 'HPE_HEADER_OVERFLOW':
      return new ApiError({ status: 431, message: 'The request headers are too large.', code: 'request_header_fields_too_large' });
  }
  return new ApiError({ status: 400, message: 'The HTTP request could not be parsed.', code: 'invalid_http_request' });
}

const REASONS: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' };

/** How long a refused connection may stay half-closed, so the client reads the answer before the socket goes. */
const REFUSAL_LINGER_MS = 1000;

/** Writes the refusal straight to the socket (there may be no request object yet) and closes the connection. */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  markClosing(socket, 'refused');
  if (!socket.writable) {
    socket.destroy(err);
    return;
  }
  const apiErr = clientErrorFor(err.code);
  const body = JSON.stringify(apiErr.toBody());
  const head = [
    `HTTP/1.1 ${apiErr.status} ${REASONS[apiErr.status]}`,
    'content-type: application/json; charset=utf-8',
    `content-length: ${Buffer.byteLength(body)}`,
    `x-request-id: ${newRequestId()}`,
    'x-content-type-options: nosniff',
    ...(apiErr.shouldRetry ? [] : ['x-should-retry: false']),
    'connection: close',
  ];
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
  setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
}

export function sendError(reply: FastifyReply, err: ApiError): void {
  if (!err.shouldRetry) reply.header('x-should-retry', 'false');
  if (err.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.retryAfterSeconds));
  void reply.code(err.status).type('application/json').send(err.toBody());
}

/** Maps Fastify's own errors (bad JSON, size, content type) onto OpenAI's statuses and bodies; other 4xx keep their status; anything else is a 500. */
function toApiError(err: FastifyError | ApiError, req: FastifyRequest): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof DbUnavailableError)
    return serviceUnavailable('The database is unreachable; retry the request.', err.retryAfterSeconds);
  const code = (err as FastifyError).code;
  switch (code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return invalidJsonBody();
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return payloadTooLarge(Number(req.routeOptions.bodyLimit ?? 0));
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      // A net: JSON-only routes refuse other types in onRequest, and multipart scopes pass every type to the route.
      return req.server.hasContentTypeParser('multipart/form-data')
        ? unsupportedMediaType(req.headers['content-type'], ['multipart/form-data', 'application/json'])
        : jsonOnly(req.headers['content-type']);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return badRequest('The request body does not match its Content-Length header.', null, 'invalid_content_length');
  }
  if (err instanceof SyntaxError) return invalidJsonBody();
  const status = (err as FastifyError).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new ApiError({ status, message: err.message, code: code ?? null });
  }
  return serverError();
}
