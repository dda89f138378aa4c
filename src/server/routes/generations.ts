// POST /v1/images/generations: OpenAI's create-image endpoint, answered as JSON or, with stream: true, as SSE.
// Parsing and the wire contract live in src/contract; planning in ../plan.ts; answering in ../respond.ts.
import type { FastifyInstance } from 'fastify';
import { EXTENSION_FIELDS, type ParseContext } from '../../contract/families.js';
import { parseGenerationRequest } from '../../contract/generations.js';
import { buildUsage } from '../../contract/usage.js';
import type { ServerDeps } from '../deps.js';
import { checkModeration } from '../moderation.js';
import { planJob } from '../plan.js';
import { answerJob } from '../respond.js';

export function parseContext(deps: ServerDeps): ParseContext {
  return {
    resolveModel: (name) => {
      const s = deps.models.resolve(name);
      return s ? { name: s.id, family: s.family, extensions: [...EXTENSION_FIELDS] } : undefined;
    },
  };
}

export function registerGenerationRoutes(app: FastifyInstance, deps: ServerDeps): void {
  const ctx = parseContext(deps);
  app.post('/v1/images/generations', async (req, reply) => {
    const started = performance.now();
    const parsed = parseGenerationRequest(req.body, ctx);
    await checkModeration(deps.moderation, parsed.prompt, parsed.moderation, req.id);
    const served = deps.models.resolve(parsed.model)!;
    return answerJob(deps, req, reply, {
      endpoint: '/v1/images/generations',
      kind: 'generation',
      parsed,
      plan: planJob(served, parsed, parsed.style),
      served,
      started,
      usage: (partialImages, outputDetails) =>
        buildUsage({
          prompt: parsed.prompt,
          quality: parsed.resolved.quality,
          size: parsed.resolved.size,
          n: parsed.n,
          partialImages,
          outputDetails,
        }),
    });
  });
}
