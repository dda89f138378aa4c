// The Fastify application: request ids, auth, OpenAI-style error envelope, and the routes.
// Everything it needs (config, models, queue, store, db, clock) is passed in, so tests build it on an ephemeral port.
import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import {
  ApiError,
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

function newRequestId(): string {
  return `req_${randomBytes(12).toString('hex')}`;
}

/** Paths that never need an API key: health, docs, and signed image files (the signature is the credential). */
function isPublicPath(url: string): boolean {
  const path = url.split('?')[0];
  return (
    path === '/healthz' ||
    path === '/readyz' ||
    path === '/openapi.json' ||
    path === '/' ||
    path.startsWith('/v1/images/files/')
  );
}

export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const app = Fastify({
    logger: deps.logger ?? false,
    genReqId: () => newRequestId(),
    requestIdHeader: false,
    bodyLimit: deps.config.limits.bodyBytes,
    // Keep the raw body errors ours: JSON that does not parse becomes OpenAI's 400 below.
    onProtoPoisoning: 'remove',
    onConstructorPoisoning: 'remove',
  });

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
    if (deps.config.auth.mode !== 'keys' || isPublicPath(req.url)) return;
    const header = req.headers.authorization;
    const m = typeof header === 'string' ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
    if (!m) throw missingApiKey();
    const key = await deps.db.verifyApiKey(m[1].trim());
    if (!key) throw invalidApiKey(redactApiKey(m[1].trim()));
    req.apiKeyId = key.id;
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

export function sendError(reply: FastifyReply, err: ApiError): void {
  if (!err.shouldRetry) reply.header('x-should-retry', 'false');
  if (err.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.retryAfterSeconds));
  void reply.code(err.status).type('application/json').send(err.toBody());
}

/** Maps Fastify's own errors (bad JSON, size, content type) onto OpenAI's statuses and bodies; anything else is a 500. */
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
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return unsupportedMediaType(req.headers['content-type'], ['application/json']);
  }
  if (err instanceof SyntaxError) return invalidJsonBody();
  const status = (err as FastifyError).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new ApiError({ status, message: err.message, code: code ?? null });
  }
  return serverError();
}
