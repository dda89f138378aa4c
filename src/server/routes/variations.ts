// POST /v1/images/variations (dall-e-2 family): variations of one square PNG through the engine's image-to-image.
// Each of the n images starts from the same picture with its own noise (the engine seeds image i with seed + i).
//
// Rules (documented in README "Edits and variations"): strength VARIATION_STRENGTH, an empty (unconditional)
// prompt, and guidance 1 (an empty prompt gives classifier-free guidance nothing to steer by) unless the request
// sets the guidance_scale extension.
import type { FastifyInstance } from 'fastify';
import { badRequest, unsupportedMediaType } from '../../contract/errors.js';
import { editImageLimits } from '../../contract/families.js';
import { parseVariationRequest } from '../../contract/variations.js';
import { VARIATION_STRENGTH } from '../../engine/plan.js';
import type { ServerDeps } from '../deps.js';
import { ImageIntake } from '../image-intake.js';
import { describeUpload, readMultipart, registerMultipart } from '../multipart.js';
import { planJob, withInitImage } from '../plan.js';
import { answerJob } from '../respond.js';
import { parseContext } from './generations.js';

const ENDPOINT = '/v1/images/variations';

export function registerVariationRoutes(app: FastifyInstance, deps: ServerDeps): void {
  const ctx = parseContext(deps);
  void app.register(async (scope) => {
    await registerMultipart(scope, deps.config);
    scope.post(ENDPOINT, async (req, reply) => {
      const started = performance.now();
      if (!req.isMultipart()) throw unsupportedMediaType(req.headers['content-type'], ['multipart/form-data']);
      const body = await readMultipart(req, deps.config);
      const images = body.files.filter((f) => f.field === 'image');
      const others = body.files.filter((f) => f.field !== 'image');
      if (images.length > 1) throw badRequest("Invalid 'image': variations take exactly one image.", 'image', 'invalid_value');
      const parsed = parseVariationRequest(
        body.fields,
        { image: images[0] ? await describeUpload(images[0]) : null, others: await Promise.all(others.map(describeUpload)) },
        ctx,
      );
      const served = deps.models.resolve(parsed.model)!;
      const caps = served.local.info.capabilities;
      if (!caps.supportsImageToImage) {
        throw badRequest(
          `The model '${parsed.requested_model}' cannot make variations on this server (its folder has no VAE encoder).`,
          'model',
          'model_not_supported',
        );
      }

      const limits = editImageLimits('dall-e-2');
      const intake = new ImageIntake(deps.config.limits);
      const [img] = await intake.readImages([
        { input: parsed.image, upload: images[0].data, mimetypes: limits.mimetypes, maxBytes: limits.maxImageBytes },
      ]);
      if (img.width !== img.height) {
        throw badRequest(`Invalid file 'image': the image must be square, but it is ${img.width}x${img.height}.`, 'image', 'invalid_image');
      }
      const plan = planJob(served, parsed);
      const initImage = await intake.decodeImage(img, plan.request.width, plan.request.height, !caps.supportsAlpha);
      // An empty prompt gives classifier-free guidance nothing to steer by: guidance 1 unless the request sets it.
      const overrides = { prompt: '', guidanceScale: parsed.extensions.guidance_scale ?? 1 };
      return answerJob(deps, req, reply, {
        endpoint: ENDPOINT,
        kind: 'edit',
        parsed,
        plan: withInitImage(plan, { image: initImage, strength: VARIATION_STRENGTH }, overrides),
        served,
        started,
      });
    });
  });
}
