// Health, readiness, model listing and the OpenAPI document: everything that is not image work.
import type { FastifyInstance } from 'fastify';
import { notFound } from '../../contract/errors.js';
import type { ServerDeps } from '../app.js';
import { EXTENSION_FIELDS, type ServedModel } from '../model-registry.js';
import { openApiDocument } from '../openapi.js';

const STARTED = Math.floor(Date.now() / 1000);

function modelObject(s: ServedModel, deps: ServerDeps) {
  return {
    id: s.id,
    object: 'model',
    created: STARTED,
    owned_by: 'easel',
    // Easel's additions: which OpenAI rule set the name speaks, what it maps to, and accepted extension fields.
    family: s.family,
    served_by: s.local.name,
    aliases: s.isAlias ? [] : deps.models.aliasesOf(s.local.name),
    extensions: [...EXTENSION_FIELDS],
    capabilities: {
      native_sizes: s.local.pipeline.capabilities.nativeSizes.map(([w, h]) => `${w}x${h}`),
      transparent_background: s.local.pipeline.capabilities.supportsAlpha,
      image_to_image: s.local.pipeline.capabilities.supportsImageToImage,
    },
  };
}

export function registerMetaRoutes(app: FastifyInstance, deps: ServerDeps): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const ready = deps.models.ready;
    return reply.code(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'warming_up',
      models: [...deps.models.locals.values()].map((l) => ({ name: l.name, warmed: l.warmed })),
      queue: { waiting: deps.queue.waiting, running: deps.queue.running },
    });
  });

  app.get('/v1/models', async () => ({ object: 'list', data: deps.models.list().map((s) => modelObject(s, deps)) }));

  app.get<{ Params: { id: string } }>('/v1/models/:id', async (req) => {
    const s = deps.models.resolve(req.params.id);
    if (!s) throw notFound(`The model '${req.params.id}' does not exist`, 'model_not_found', 'model');
    return modelObject(s, deps);
  });

  app.get('/openapi.json', async () => openApiDocument(deps.models.list().map((s) => s.id)));
}
