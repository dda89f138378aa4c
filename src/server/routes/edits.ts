// POST /v1/images/edits: OpenAI's edit endpoint in both forms (multipart uploads, JSON with image URLs), answered
// as JSON or, with stream: true, as SSE — through the engine's image-to-image (no mask) and inpainting (mask).
//
// Rules (documented in README "Edits and variations"):
// - The first image is the init image, resized to the planned generation size. Further images (GPT families take
//   up to 16) are checked, decoded and billed as input image tokens. A text-to-image UNet has no way to take
//   reference images, so without a mask they are blended into the init image (the first keeps half the weight,
//   imaging/blend.ts); with a mask they change nothing (the masked area starts from noise).
// - Mask: fully transparent mask pixels (alpha 0) are repainted, the rest is kept; inpainting runs at strength 1
//   (the masked area starts from noise). A 9-channel inpainting UNet gets the mask and masked image; other models
//   use the engine's latent blending. Without a mask: image-to-image at EDIT_STRENGTH, or
//   HIGH_FIDELITY_EDIT_STRENGTH with input_fidelity "high".
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { resolveOutput } from '../../contract/common.js';
import { type ParsedEditRequest, parseJsonEditRequest, parseMultipartEditRequest } from '../../contract/edits.js';
import { badRequest, unsupportedMediaType } from '../../contract/errors.js';
import { editImageLimits, familyRules } from '../../contract/families.js';
import { buildUsage } from '../../contract/usage.js';
import { EDIT_STRENGTH, HIGH_FIDELITY_EDIT_STRENGTH, INPAINT_STRENGTH } from '../../engine/plan.js';
import type { RgbaImage } from '../../engine/types.js';
import { blendEditInputs } from '../../imaging/blend.js';
import type { ServerDeps } from '../deps.js';
import { checkMask, ImageIntake, type ImageSource, type InspectedImage } from '../image-intake.js';
import { checkModeration } from '../moderation.js';
import { describeUpload, readMultipart, registerMultipart } from '../multipart.js';
import { type JobPlan, planJob, withInitImage } from '../plan.js';
import { answerJob } from '../respond.js';
import { parseContext } from './generations.js';

const ENDPOINT = '/v1/images/edits';

interface EditJob {
  parsed: ParsedEditRequest;
  plan: JobPlan;
  /** Pixel sizes of every input image (usage). */
  inputs: Array<{ width: number; height: number }>;
}

export function registerEditRoutes(app: FastifyInstance, deps: ServerDeps): void {
  const ctx = parseContext(deps);
  void app.register(async (scope) => {
    await registerMultipart(scope, deps.config);
    scope.post(ENDPOINT, { bodyLimit: deps.config.limits.uploadBytes }, async (req, reply) => {
      const started = performance.now();
      const job = await prepareEdit(deps, req, ctx);
      const { parsed, plan } = job;
      const served = deps.models.resolve(parsed.model)!;
      return answerJob(deps, req, reply, {
        endpoint: ENDPOINT,
        kind: 'edit',
        parsed,
        plan,
        served,
        started,
        usage: (partials, outputDetails) => editUsage(job, partials, outputDetails),
      });
    });
  });
}

function editUsage(job: EditJob, partials: number, outputDetails: boolean) {
  const { parsed } = job;
  return buildUsage({
    prompt: parsed.prompt,
    inputImages: job.inputs,
    inputFidelity: parsed.input_fidelity,
    quality: parsed.resolved.quality,
    size: parsed.resolved.size,
    n: parsed.n,
    partialImages: partials,
    outputDetails,
  });
}

/** Parses either form, runs moderation, fetches and checks every image, and plans the engine request. */
async function prepareEdit(deps: ServerDeps, req: FastifyRequest, ctx: ReturnType<typeof parseContext>): Promise<EditJob> {
  let parsed: ParsedEditRequest;
  let uploads: Buffer[] = [];
  let maskUpload: Buffer | undefined;
  const contentType = String(req.headers['content-type'] ?? '').toLowerCase();
  if (req.isMultipart()) {
    const body = await readMultipart(req, deps.config);
    const imageFiles = body.files.filter((f) => f.field !== 'mask');
    const maskFiles = body.files.filter((f) => f.field === 'mask');
    if (maskFiles.length > 1) throw badRequest("Invalid 'mask': send at most one mask file.", 'mask', 'invalid_value');
    const described = await Promise.all(imageFiles.map(describeUpload));
    const mask = maskFiles[0] ? await describeUpload(maskFiles[0]) : null;
    parsed = parseMultipartEditRequest(body.fields, { images: described, mask }, ctx);
    uploads = imageFiles.map((f) => f.data);
    maskUpload = maskFiles[0]?.data;
  } else if (contentType.startsWith('application/json') || contentType === '') {
    parsed = parseJsonEditRequest(req.body, ctx);
  } else {
    throw unsupportedMediaType(req.headers['content-type'], ['multipart/form-data', 'application/json']);
  }

  await checkModeration(deps.moderation, parsed.prompt, parsed.moderation, req.id);
  const served = deps.models.resolve(parsed.model)!;
  const caps = served.local.info.capabilities;
  if (!caps.supportsImageToImage) {
    throw badRequest(
      `The model '${parsed.requested_model}' cannot edit images on this server (its folder has no VAE encoder).`,
      'model',
      'model_not_supported',
    );
  }

  // Bytes, then headers (format, size, pixel limit) of every input, before decoding anything; URLs fetched together.
  const limits = editImageLimits(parsed.family);
  const intake = new ImageIntake(deps.config.limits);
  const sources: ImageSource[] = parsed.images.map((input, i) => ({
    input,
    upload: uploads[i],
    mimetypes: limits.mimetypes,
    maxBytes: limits.maxImageBytes,
  }));
  if (parsed.mask) sources.push({ input: parsed.mask, upload: maskUpload, mimetypes: ['image/png'], maxBytes: limits.maskMaxBytes });
  const inspected: InspectedImage[] = await intake.readImages(sources);
  const mask = parsed.mask ? inspected.pop() : undefined;
  const first = inspected[0];
  if (limits.requireSquare && first.width !== first.height) {
    throw badRequest(
      `Invalid file '${first.param}': the image must be square, but it is ${first.width}x${first.height}.`,
      first.param,
      'invalid_image',
    );
  }
  if (mask) checkMask(mask, first);

  // size: auto follows the first image's aspect (the JSON form only learns it here).
  if (parsed.size === 'auto') {
    const rules = familyRules(parsed.family, parsed.requested_model, parsed.model);
    parsed = {
      ...parsed,
      resolved: resolveOutput(rules, 'auto', parsed.quality, parsed.background, { width: first.width, height: first.height }),
    };
  }
  const plan = planJob(served, parsed);
  const { width, height } = plan.request;
  const flatten = !caps.supportsAlpha;
  // One decode at a time, each straight to the generation size (bounded memory, see ImageIntake).
  const engineMask = mask ? await intake.decodeMask(mask, width, height) : undefined;
  const firstPixels = await intake.decodeImage(first, width, height, flatten);
  let initImage = firstPixels;
  if (engineMask) {
    // Inpainting repaints the masked area from noise: extra images have nothing to act on (said in /v1/models).
    for (const other of inspected.slice(1)) await intake.verifyDecodes(other);
  } else {
    const others: RgbaImage[] = [];
    for (const other of inspected.slice(1)) others.push(await intake.decodeImage(other, width, height, flatten));
    initImage = blendEditInputs(firstPixels, others);
  }

  const strength = engineMask ? INPAINT_STRENGTH : parsed.input_fidelity === 'high' ? HIGH_FIDELITY_EDIT_STRENGTH : EDIT_STRENGTH;
  return {
    parsed,
    plan: withInitImage(plan, { image: initImage, strength, ...(engineMask ? { mask: engineMask } : {}) }),
    inputs: inspected.map((img) => ({ width: img.width, height: img.height })),
  };
}
