// The Fastify application: request ids, browser safety, auth, and OpenAI's error envelope on every response (Fastify's
// own router, parser, client-error and shutdown refusals included), then the routes. Everything it needs is passed in.
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
import type { ServerDeps } from './deps.js';
import { JobCancelledError } from './dispatch.js';
import { registerEditRoutes } from './routes/edits.js';
import { registerFileRoutes } from './routes/files.js';
import { registerGenerationRoutes } from './routes/generations.js';
import { registerMetaRoutes } from './routes/meta.js';
import { registerVariationRoutes } from './routes/variations.js';
import { browserPolicy } from './security.js';

function newRequestId(): string {
  return `req_${randomBytes(12).toString('hex')}`;
}

/** Paths that never need an API key: health, docs, and signed image files (the signature is the credential). */
function isPublicPath(url: string): boolean {
  const path = url.split('?')[0];
  return path === '/healthz' || path === '/readyz' || path === '/openapi.json' || path === '/' || path.startsWith('/v1/images/files/');
}

/** Headers every response carries, whichever path sends it. */
function stamp(reply: FastifyReply, id: string): void {
  reply.header('x-request-id', id);
  reply.header('x-content-type-options', 'nosniff');
}

export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const policy = browserPolicy(deps.config);
  let closing = false;
  const app = Fastify({
    logger: deps.logger ?? false,
    genReqId: () => newRequestId(),
    requestIdHeader: false,
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
    clientErrorHandler: (err, socket) => answerClientError(err, socket),
    // Node would answer a request without Host itself (a bare 400); the Host check answers it in the envelope.
    http: { requireHostHeader: false },
    return503OnClosing: false,
  });

  app.addHook('preClose', async () => {
    closing = true;
  });

  app.addHook('onRequest', async (req, reply) => {
    stamp(reply, req.id);
    // A request that arrives on a kept-alive connection while the server drains: another node can take it.
    if (closing) throw serviceUnavailable('The server is shutting down; retry the request.', 1);
    policy.check(req);
    await authenticate(deps, req);
    refuseNonJson(req);
  });

  app.setErrorHandler((err: FastifyError | ApiError, req: FastifyRequest, reply: FastifyReply) => {
    const apiErr = toApiError(err, req);
    if (apiErr.status >= 500) req.log.error({ err }, 'request failed');
    sendError(reply, apiErr);
  });

  app.setNotFoundHandler((req, reply) => {
    sendError(reply, invalidUrl(req.method, req.url.split('?')[0]));
  });

  registerMetaRoutes(app, deps);
  registerFileRoutes(app, deps);
  registerGenerationRoutes(app, deps);
  registerEditRoutes(app, deps);
  registerVariationRoutes(app, deps);
  return app;
}

async function authenticate(deps: ServerDeps, req: FastifyRequest): Promise<void> {
  if (deps.config.auth.mode !== 'keys' || isPublicPath(req.url)) return;
  const header = req.headers.authorization;
  const m = typeof header === 'string' ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
  if (!m) throw missingApiKey();
  const key = await deps.db.verifyApiKey(m[1].trim());
  if (!key) throw invalidApiKey(redactApiKey(m[1].trim()));
  req.apiKeyId = key.id;
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

/** Writes the refusal straight to the socket (there is no request object yet) and closes the connection. */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
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
}

export function sendError(reply: FastifyReply, err: ApiError): void {
  if (!err.shouldRetry) reply.header('x-should-retry', 'false');
  if (err.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.retryAfterSeconds));
  void reply.code(err.status).type('application/json').send(err.toBody());
}

/** Maps Fastify's own errors (bad JSON, size, content type) onto OpenAI's statuses and bodies; other 4xx keep their status; anything else is a 500. */
function toApiError(err: FastifyError | ApiError, req: FastifyRequest): ApiError {
  if (err instanceof ApiError) return err;
  // A job cancelled while its client still waits: the server is shutting down, and another node can take it.
  if (err instanceof JobCancelledError) return serviceUnavailable('The server is shutting down; retry the request.', 1);
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
