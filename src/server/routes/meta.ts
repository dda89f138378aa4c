// Health, readiness, model listing and the OpenAPI document: everything that is not image work.
import type { FastifyInstance } from 'fastify';
import { notFound } from '../../contract/errors.js';
import { EXTENSION_FIELDS, familyRules } from '../../contract/families.js';
import type { StylePreset } from '../../engine/models/folder.js';
import { EDIT_STRENGTH, HIGH_FIDELITY_EDIT_STRENGTH, stylePreset } from '../../engine/plan.js';
import type { ServedModel } from '../catalog.js';
import type { ServerDeps } from '../deps.js';
import { openApiDocument } from '../openapi.js';

const STARTED = Math.floor(Date.now() / 1000);

function describeStyle(p: StylePreset): string {
  const parts = [
    p.guidance_factor !== undefined && p.guidance_factor !== 1
      ? `guidance above 1 scaled by ${p.guidance_factor}`
      : 'the quality preset as tuned',
  ];
  if (p.prompt_suffix) parts.push(`prompt + ${JSON.stringify(p.prompt_suffix)}`);
  return parts.join('; ');
}

function modelObject(s: ServedModel, deps: ServerDeps) {
  const { capabilities: caps, extras } = s.local.info;
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
      native_sizes: caps.nativeSizes.map(([w, h]) => `${w}x${h}`),
      transparent_background: caps.supportsAlpha,
      image_to_image: caps.supportsImageToImage,
      // What the parameters a diffusion model cannot take literally do here (README "Edits and variations").
      style: Object.fromEntries((['vivid', 'natural'] as const).map((st) => [st, describeStyle(stylePreset(st, extras.style_presets))])),
      extra_edit_images: caps.supportsImageToImage
        ? 'blended into the init image (the first keeps half the weight) without a mask; ignored with a mask'
        : 'not supported',
      input_fidelity: !caps.supportsImageToImage
        ? 'not supported'
        : familyRules(s.family, s.id).supportsInputFidelity
          ? `high keeps more of the input: strength ${HIGH_FIDELITY_EDIT_STRENGTH} instead of ${EDIT_STRENGTH} without a mask`
          : 'not accepted by this model name',
      ...(extras.prompt_vocabulary ? { prompt_vocabulary: extras.prompt_vocabulary } : {}),
    },
  };
}

export function registerMetaRoutes(app: FastifyInstance, deps: ServerDeps): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  // Ready when every local model has a warm worker, everything else a request needs is built, and the disk has room.
  app.get('/readyz', async (_req, reply) => {
    const [stats, disk] = await Promise.all([deps.queue.stats(), deps.disk.state()]);
    // Every served model, described or not yet (an API node learns models from its workers), with its ready workers.
    const names = new Set([...deps.models.locals.keys(), ...Object.keys(stats.workers)]);
    const models = [...names].map((name) => {
      const workers = stats.workers[name] ?? 0;
      return { name, warmed: workers > 0 && deps.models.locals.has(name), workers };
    });
    const warm = models.every((m) => m.warmed) && (deps.warm?.() ?? true);
    const status = disk.low ? 'disk_low' : warm ? 'ready' : 'warming_up';
    return reply.code(status === 'ready' ? 200 : 503).send({
      status,
      models,
      queue: { waiting: stats.waiting, running: stats.running },
      disk: { free_bytes: disk.freeBytes, reserve_bytes: disk.reserveBytes },
      usage_records_dropped: deps.usage.dropped,
    });
  });

  app.get('/v1/models', async () => ({ object: 'list', data: deps.models.list().map((s) => modelObject(s, deps)) }));

  app.get<{ Params: { id: string } }>('/v1/models/:id', async (req) => {
    const s = deps.models.resolve(req.params.id);
    if (!s) throw notFound(`The model '${req.params.id}' does not exist`, 'model_not_found', 'model');
    return modelObject(s, deps);
  });

  app.get('/openapi.json', async () => openApiDocument(deps.models.list()));
}
