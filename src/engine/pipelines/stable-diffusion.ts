// The diffusion pipeline for SD 1.x / 2.x / SDXL-layout ONNX folders: text-to-image, image-to-image and inpainting.
// Stages are numbered like diffusers' StableDiffusion(XL)(Img2Img|Inpaint)Pipeline.__call__, which it follows.
import { join } from 'node:path';
import { type BackendOptions, OnnxModel, RunTimer } from '../backends/onnx.js';
import { checkSchedulerConfig, type ModelFolder, readModelFolder } from '../models/folder.js';
import { capabilitiesOf } from '../models/info.js';
import { createRng, type Rng, randomSeed } from '../rng.js';
import { createScheduler, registeredConfig, type SdPipelineKind, sdPipelineFixups } from '../schedulers/index.js';
import type { Scheduler, SchedulerConfig } from '../schedulers/types.js';
import { denoisingSteps } from '../strength.js';
import { sizeOf, type Tensor, tensor } from '../tensor.js';
import { ClipTokenizer } from '../tokenizers/clip.js';
import {
  AbortError,
  type BatchItem,
  batchKeyOf,
  type GenerateOptions,
  type GenerateRequest,
  type GenerateResult,
  type ModelCapabilities,
  type Pipeline,
  type RgbaImage,
} from '../types.js';
import { concatBatch, encodeSd, encodeSdxl, repeatBatch, sliceBatch, type TextConditioning, type TextEncoderPart } from './conditioning.js';
import { imageToTensor, maskedImageTensor, maskToLatent, tensorToImage } from './pixels.js';
import { needsTiling, type TileGeometry, tiledDecode, tileGeometry } from './vae-tiling.js';

export interface PipelineOptions extends BackendOptions {
  /** Weights variant, e.g. "fp16": each part's model.fp16.onnx (or the folder's only variant file). */
  variant?: string;
  /** Most samples per UNet call (classifier-free guidance counts double); larger batches are split. Default 8. */
  maxBatchSize?: number;
  /**
   * Decodes with a side above this many pixels run in overlapping tiles of this size (diffusers' tiled VAE decode),
   * so memory stays that of one tile; rounded down to a multiple of 4 latent cells. 0 or absent: never tiled.
   */
  vaeTileSize?: number;
  /** Most output pixels one VAE decoder call decodes (images of a batch share a call up to it). Default 1024 x 1024. */
  vaeBatchPixels?: number;
}

export class GenerateRequestError extends Error {
  override readonly name = 'GenerateRequestError';
}

/** Draws independent noise per image: row i of the batch comes from the generator seeded with seed + i. */
class BatchRng implements Rng {
  constructor(private readonly rngs: Rng[]) {}
  get seed(): number {
    return this.rngs[0].seed;
  }
  uniform(): number {
    return this.rngs[0].uniform();
  }
  normal(): number {
    return this.rngs[0].normal();
  }
  fillNormal(out: Float32Array): Float32Array {
    const per = out.length / this.rngs.length;
    if (!Number.isInteger(per)) return this.rngs[0].fillNormal(out);
    for (const [i, r] of this.rngs.entries()) r.fillNormal(out.subarray(i * per, (i + 1) * per));
    return out;
  }
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError();
}

/** Generations on one set of sessions run one at a time; pipelines sharing sessions share the lane. */
interface Lane {
  tail: Promise<unknown>;
}

/** What a request asks for, named after the diffusers pipeline class that does it. */
function kindOf(req: GenerateRequest): SdPipelineKind {
  return req.mask ? 'inpaint' : req.initImage ? 'image-to-image' : 'text-to-image';
}

export class StableDiffusionPipeline implements Pipeline {
  readonly capabilities: ModelCapabilities;
  private readonly maxBatchSize: number;
  private readonly vaeTiles: TileGeometry | undefined;
  /** The scheduler config each kind of request starts from (diffusers' `pipe.scheduler.config` for that pipeline). */
  private readonly schedulerConfigs: Readonly<Record<SdPipelineKind, SchedulerConfig>>;

  private constructor(
    readonly folder: ModelFolder,
    private readonly text: TextEncoderPart,
    private readonly text2: TextEncoderPart | undefined,
    private readonly unet: OnnxModel,
    private readonly vaeDecoder: OnnxModel,
    private readonly vaeEncoder: OnnxModel | undefined,
    readonly timer: RunTimer,
    private readonly opts: PipelineOptions,
    private readonly lane: Lane = { tail: Promise.resolve() },
    private readonly ownsSessions = true,
  ) {
    this.maxBatchSize = Math.max(1, opts.maxBatchSize ?? 8);
    this.vaeTiles = opts.vaeTileSize ? tileGeometry(opts.vaeTileSize, folder.vaeScaleFactor) : undefined;
    this.capabilities = capabilitiesOf(folder, text.tokenizer.maxLength);
    const registered = registeredConfig(folder.schedulerConfig);
    // SD 1.x/2.x pipelines rewrite outdated scheduler configs when they are built; SDXL pipelines use the file as is.
    const forKind = (kind: SdPipelineKind) => (folder.isSdxl ? registered : sdPipelineFixups(registered, kind));
    this.schedulerConfigs = {
      'text-to-image': forKind('text-to-image'),
      'image-to-image': forKind('image-to-image'),
      inpaint: forKind('inpaint'),
    };
  }

  /** Loads a model folder and creates its ONNX sessions once; they are reused until dispose(). */
  static async load(dir: string, opts: PipelineOptions = {}): Promise<StableDiffusionPipeline> {
    const folder = readModelFolder(dir, opts.variant ? { variant: opts.variant } : {});
    const timer = new RunTimer();
    const load = (p: string) => OnnxModel.load(p, opts, timer);
    const loaded: OnnxModel[] = [];
    try {
      const tok = await ClipTokenizer.fromFolder(folder.paths.tokenizer);
      const te = await load(folder.paths.textEncoder);
      loaded.push(te);
      let text2: TextEncoderPart | undefined;
      if (folder.paths.textEncoder2 && folder.paths.tokenizer2) {
        const te2 = await load(folder.paths.textEncoder2);
        loaded.push(te2);
        text2 = { tokenizer: await ClipTokenizer.fromFolder(folder.paths.tokenizer2), model: te2 };
      }
      const unet = await load(folder.paths.unet);
      loaded.push(unet);
      const dec = await load(folder.paths.vaeDecoder);
      loaded.push(dec);
      const enc = folder.paths.vaeEncoder ? await load(folder.paths.vaeEncoder) : undefined;
      if (enc) loaded.push(enc);
      checkInputs(folder, unet, dec, enc, te);
      return new StableDiffusionPipeline(folder, { tokenizer: tok, model: te }, text2, unet, dec, enc, timer, opts);
    } catch (err) {
      await Promise.all(loaded.map((m) => m.release()));
      throw err;
    }
  }

  /**
   * The same model with another scheduler/scheduler_config.json, as if the folder shipped it (checked the same way),
   * sharing this pipeline's sessions and its one-at-a-time lane. Disposing the view releases nothing; disposing this
   * pipeline releases the sessions of both.
   */
  withSchedulerConfig(config: SchedulerConfig): StableDiffusionPipeline {
    checkSchedulerConfig(join(this.folder.dir, 'scheduler', 'scheduler_config.json'), config);
    const folder: ModelFolder = { ...this.folder, schedulerConfig: config };
    return new StableDiffusionPipeline(
      folder,
      this.text,
      this.text2,
      this.unet,
      this.vaeDecoder,
      this.vaeEncoder,
      this.timer,
      this.opts,
      this.lane,
      false,
    );
  }

  /** Generations run one at a time on a pipeline (its sessions already use every core). */
  generate(req: GenerateRequest, opts: GenerateOptions = {}): Promise<GenerateResult> {
    const run = this.lane.tail.then(
      () => this.run(req, opts),
      () => this.run(req, opts),
    );
    this.lane.tail = run.catch(() => undefined);
    return run;
  }

  /**
   * Requests run together on this pipeline's lane (Pipeline.generateBatch): those with the same batchKeyOf() share each
   * UNet call, row by row (each keeps its prompt embeddings, guidance scale and interval, seeds and scheduler); the
   * others run alone, one after another. Each item's scheduler is its own instance, so a cancelled item's rows simply
   * stop being fed: nothing of the others' state is touched. Timings are those of the whole batch.
   */
  generateBatch(items: readonly BatchItem[]): Array<Promise<GenerateResult>> {
    if (items.length === 1) return [this.generate(items[0].req, items[0].opts)];
    const slots = items.map((item) => new BatchSlot(item.req, item.opts ?? {}));
    const run = this.lane.tail.then(
      () => this.runGroups(slots),
      () => this.runGroups(slots),
    );
    this.lane.tail = run.catch(() => undefined);
    return slots.map((s) => s.promise);
  }

  /** Splits the items by batch key; groups of one run the ordinary way. */
  private async runGroups(slots: readonly BatchSlot[]): Promise<void> {
    const groups = new Map<string, BatchSlot[]>();
    for (const [i, s] of slots.entries()) {
      const key = batchKeyOf(s.req) ?? `alone:${i}`;
      groups.set(key, [...(groups.get(key) ?? []), s]);
    }
    for (const group of groups.values()) {
      if (group.length === 1) await group[0].settleWith(() => this.run(group[0].req, group[0].opts));
      else await this.runBatch(group);
    }
  }

  private async runBatch(slots: readonly BatchSlot[]): Promise<void> {
    const t0 = performance.now();
    const runMs0 = this.timer.totalMs;
    for (const s of slots) s.settleIf(() => this.validate(s.req, s.n));
    try {
      const tText = performance.now();
      const live = slots.filter((slot) => slot.live);
      const conds = await this.encodeBatchPrompts(live.map((slot) => slot.req));
      const members = live.filter((slot) => slot.live).map((slot) => this.batchMember(slot, conds[live.indexOf(slot)]));
      const textEncoderMs = performance.now() - tText;
      if (members.length === 0) return;
      const batchImages = members.reduce((sum, m) => sum + m.slot.n, 0);
      const timeIdRow = this.sdxlTimeIds(members[0].slot.req);

      const tLoop = performance.now();
      let vaeMs = 0;
      const total = members[0].scheduler.timesteps.length;
      for (let i = 0; i < total; i++) {
        const active = members.filter((m) => m.slot.live);
        if (active.length === 0) return;
        const t = members[0].scheduler.timesteps[i];
        const preds = await this.predictBatchNoise(active, i, t, timeIdRow);
        for (const [a, m] of active.entries()) {
          if (!m.slot.live) continue;
          const out = m.scheduler.step(concatBatch(preds[a]), i, m.latents, m.rng);
          m.latents = out.prevSample;
          m.slot.opts.onStep?.({ step: i, totalSteps: total, timestep: t, predOriginalSample: out.predOriginalSample });
          if (m.previewSteps.has(i) && m.slot.opts.onPreview) {
            const tp = performance.now();
            // A preview that fails (or is cancelled) ends its own item only.
            await this.batchPreview(m, i, out.predOriginalSample ?? m.latents).catch((err: unknown) => m.slot.fail(err));
            vaeMs += performance.now() - tp;
          }
        }
      }
      const denoiseMs = performance.now() - tLoop;

      // One decode for every image still wanted, then each item takes its own rows.
      const done = members.filter((m) => m.slot.live);
      if (done.length === 0) return;
      const tDec = performance.now();
      const images = await this.decodeLatents(concatBatch(done.map((m) => m.latents)), allAborted(done.map((m) => m.slot.opts.signal)));
      vaeMs += performance.now() - tDec;
      const timings = {
        totalMs: performance.now() - t0,
        textEncoderMs,
        denoiseMs,
        vaeMs,
        sessionRunMs: this.timer.totalMs - runMs0,
        batchImages,
      };
      let offset = 0;
      for (const m of done) {
        m.slot.succeed({ images: images.slice(offset, offset + m.slot.n), seed: m.seed, timings });
        offset += m.slot.n;
      }
    } catch (err) {
      for (const s of slots) s.fail(err);
    }
  }

  /** Decodes one item's rows and hands them to its onPreview. */
  private async batchPreview(m: BatchMember, step: number, x0: Tensor): Promise<void> {
    const previews = await this.decodeLatents(x0, m.slot.opts.signal);
    if (m.slot.live) await m.slot.opts.onPreview?.(step, previews);
  }

  /**
   * encodePrompts for several requests with one text encoder call over their distinct prompts: each gets its own
   * [negative, prompt] (or [prompt]) rows, copied, with SDXL's zeroed negative where encodePrompts would zero it.
   */
  private async encodeBatchPrompts(reqs: readonly GenerateRequest[]): Promise<TextConditioning[]> {
    const rowsOf = (req: GenerateRequest) => (req.guidanceScale > 1 ? [req.negativePrompt ?? '', req.prompt] : [req.prompt]);
    const distinct = [...new Set(reqs.flatMap(rowsOf))];
    const enc = this.text2 ? await encodeSdxl(this.text, this.text2, distinct) : await encodeSd(this.text, distinct);
    const pick = (t: Tensor, texts: string[]) => concatBatch(texts.map((p) => sliceBatch(t, distinct.indexOf(p), distinct.indexOf(p) + 1)));
    return reqs.map((req) => {
      const texts = rowsOf(req);
      const cond: TextConditioning = { hiddenStates: pick(enc.hiddenStates, texts), pooled: enc.pooled && pick(enc.pooled, texts) };
      if (this.text2 && texts.length === 2 && req.negativePrompt === undefined && this.folder.forceZerosForEmptyPrompt) {
        cond.hiddenStates.data.fill(0, 0, cond.hiddenStates.data.length / 2);
        cond.pooled?.data.fill(0, 0, cond.pooled.data.length / 2);
      }
      return cond;
    });
  }

  /** An item's own seeds, scheduler, initial noise and per-row text conditioning. */
  private batchMember(slot: BatchSlot, cond: TextConditioning): BatchMember {
    const { req } = slot;
    const seed = req.seed ?? randomSeed();
    const rng = new BatchRng(Array.from({ length: slot.n }, (_, i) => createRng((seed + i) >>> 0)));
    const scheduler = createScheduler(req.scheduler, this.schedulerConfigs['text-to-image']);
    scheduler.setTimesteps(req.numInferenceSteps);
    const f = this.folder;
    const dims = [slot.n, f.latentChannels, req.height / f.vaeScaleFactor, req.width / f.vaeScaleFactor];
    const noise = rng.fillNormal(new Float32Array(sizeOf(dims)));
    const latents = tensor(
      noise.map((v) => v * scheduler.initNoiseSigma),
      dims,
    );
    const doCfg = req.guidanceScale > 1;
    const extras = this.sdxlExtras(cond, req, doCfg);
    const row = (r: number): RowText => ({
      hidden: sliceBatch(cond.hiddenStates, r, r + 1),
      pooled: extras && sliceBatch(extras.pooled, r, r + 1),
    });
    const [lo, hi] = req.guidanceInterval ?? [-Infinity, Infinity];
    return {
      slot,
      seed,
      rng,
      scheduler,
      latents,
      uncond: doCfg ? row(0) : undefined,
      cond: row(doCfg ? 1 : 0),
      guided: (t) => doCfg && t >= lo && t <= hi,
      previewSteps: new Set(slot.opts.previewSteps ?? []),
    };
  }

  /** SDXL's one time_ids row for the batch's common size, or undefined when the UNet takes no text_embeds. */
  private sdxlTimeIds(req: GenerateRequest): Tensor | undefined {
    if (!this.text2 || !this.unet.hasInput('text_embeds')) return undefined;
    return tensor(Float32Array.from([req.height, req.width, 0, 0, req.height, req.width]), [1, 6]);
  }

  /**
   * One step's noise prediction for every live member, as per-image rows (preds[a][j]: member a, image j). Images are
   * packed into UNet calls of at most maxBatchSize rows (a guided image takes two), each call laid out as diffusers
   * does: the unconditional rows of its guided images, then the conditional rows of all of them. Before each call,
   * members cancelled meanwhile leave; their rows are not run.
   */
  private async predictBatchNoise(
    active: readonly BatchMember[],
    i: number,
    t: number,
    timeIdRow: Tensor | undefined,
  ): Promise<Tensor[][]> {
    const inputs = active.map((m) => m.scheduler.scaleModelInput(m.latents, i));
    const preds: Tensor[][] = active.map(() => []);
    const units = active.flatMap((m, a) => Array.from({ length: m.slot.n }, (_, j) => ({ a, j, guided: m.guided(t) })));
    for (const call of packRows(units, this.maxBatchSize)) {
      const live = call.filter((u) => active[u.a].slot.live);
      if (live.length === 0) continue;
      const guided = live.filter((u) => u.guided);
      const order = [...guided.map((u) => ({ u, text: active[u.a].uncond! })), ...live.map((u) => ({ u, text: active[u.a].cond }))];
      const sample = concatBatch(order.map(({ u }) => sliceBatch(inputs[u.a], u.j, u.j + 1)));
      const feeds: Record<string, Tensor> = { encoder_hidden_states: concatBatch(order.map((o) => o.text.hidden)) };
      if (timeIdRow) {
        feeds.text_embeds = concatBatch(order.map((o) => o.text.pooled!));
        feeds.time_ids = repeatBatch(timeIdRow, order.length);
      }
      const out = await this.unet.run({ ...feeds, sample, timestep: this.timestepFeed(t, sample.dims[0]) });
      const pred = out.out_sample ?? Object.values(out)[0];
      for (const [k, u] of live.entries()) {
        const c = sliceBatch(pred, guided.length + k, guided.length + k + 1);
        const g = guided.indexOf(u);
        preds[u.a][u.j] = g < 0 ? c : applyGuidance(concatBatch([sliceBatch(pred, g, g + 1), c]), active[u.a].slot.req.guidanceScale);
      }
    }
    return preds;
  }

  private async run(req: GenerateRequest, opts: GenerateOptions): Promise<GenerateResult> {
    const t0 = performance.now();
    const runMs0 = this.timer.totalMs;
    const { signal } = opts;
    checkAborted(signal);
    const f = this.folder;
    const n = req.numImages ?? 1;
    this.validate(req, n);

    // 0. Seeds: image i uses seed + i, so any one image can be remade alone.
    const seed = req.seed ?? randomSeed();
    const rngs = Array.from({ length: n }, (_, i) => createRng((seed + i) >>> 0));
    const rng = new BatchRng(rngs);
    const h = req.height / f.vaeScaleFactor;
    const w = req.width / f.vaeScaleFactor;
    const C = f.latentChannels;

    // 1. Encode the prompt (and the negative prompt when guidance is on: both go through the UNet as one batch).
    const doCfg = req.guidanceScale > 1;
    const tText = performance.now();
    const cond = await this.encodePrompts(req.prompt, req.negativePrompt, doCfg);
    const textEncoderMs = performance.now() - tText;
    checkAborted(signal);

    // 2. Timesteps; image-to-image starts part-way (diffusers get_timesteps: strength picks the start, in steps).
    const scheduler: Scheduler = createScheduler(req.scheduler, this.schedulerConfigs[kindOf(req)]);
    scheduler.setTimesteps(req.numInferenceSteps);
    const total = scheduler.timesteps.length;
    const hasInit = req.initImage !== undefined;
    const strength = hasInit ? (req.strength ?? (req.mask ? 1 : 0.8)) : 1;
    const initSteps = denoisingSteps(req.numInferenceSteps, strength);
    const tStart = hasInit ? Math.max(req.numInferenceSteps - initSteps, 0) * scheduler.order : 0;
    if (tStart >= total) throw new GenerateRequestError('strength too low: no denoising steps would run');

    // 3. Initial latents: pure noise, or the encoded init image noised to the start timestep.
    const tVae = performance.now();
    const latentDims = [n, C, h, w];
    const noise = tensor(rng.fillNormal(new Float32Array(sizeOf(latentDims))), latentDims);
    let imageLatents: Tensor | undefined;
    if (hasInit) imageLatents = repeatBatch(await this.encodeImage(req.initImage!), n);
    let latents: Tensor;
    if (imageLatents && !(strength >= 1 && req.mask)) {
      latents = scheduler.addNoise(imageLatents, noise, tStart);
    } else {
      latents = tensor(
        noise.data.map((v) => v * scheduler.initNoiseSigma),
        latentDims,
      );
    }

    // 4. Inpainting inputs: the mask at latent resolution and, for 9-channel UNets, the masked-image latents.
    let maskLatent: Tensor | undefined;
    let maskedImageLatents: Tensor | undefined;
    if (req.mask) {
      maskLatent = maskToLatent(req.mask, req.width, req.height, f.vaeScaleFactor);
      if (this.capabilities.isInpaintModel) {
        const masked = maskedImageTensor(req.initImage!, req.mask, this.encoderChannels());
        maskedImageLatents = repeatBatch(await this.encodeTensor(masked), n);
      }
    }
    let vaeMs = performance.now() - tVae;
    checkAborted(signal);

    // 5. Denoising loop.
    const tLoop = performance.now();
    const extras = this.sdxlExtras(cond, req, doCfg);
    const chunks = this.planChunks(cond.hiddenStates, extras, n, doCfg);
    // Steps outside the guidance interval run the conditional rows alone (row 1 of [negative, prompt]).
    const [gLo, gHi] = req.guidanceInterval ?? [-Infinity, Infinity];
    const condChunks =
      doCfg && req.guidanceInterval
        ? this.planChunks(
            sliceBatch(cond.hiddenStates, 1, 2),
            extras && { pooled: sliceBatch(extras.pooled, 1, 2), timeIds: sliceBatch(extras.timeIds, 1, 2) },
            n,
            false,
          )
        : chunks;
    const previewSet = new Set(opts.previewSteps ?? []);
    for (let i = tStart; i < total; i++) {
      checkAborted(signal);
      const t = scheduler.timesteps[i];
      let modelInput = scheduler.scaleModelInput(latents, i);
      if (maskedImageLatents && maskLatent) {
        modelInput = concatChannels([modelInput, repeatBatch(maskLatent, n), maskedImageLatents]);
      }
      const guided = doCfg && t >= gLo && t <= gHi;
      const noisePred = await this.predictNoise(modelInput, t, guided ? chunks : condChunks, guided, req.guidanceScale, signal);
      const out = scheduler.step(noisePred, i, latents, rng);
      latents = out.prevSample;

      // 4-channel inpainting: keep the known region on the init image's noise trajectory (diffusers' latent blend).
      if (req.mask && !maskedImageLatents && imageLatents && maskLatent) {
        const keep = i + 1 < total ? scheduler.addNoise(imageLatents, noise, i + 1) : imageLatents;
        latents = blendLatents(latents, keep, maskLatent);
      }

      const stepIndex = i - tStart;
      opts.onStep?.({ step: stepIndex, totalSteps: total - tStart, timestep: t, predOriginalSample: out.predOriginalSample });
      if (previewSet.has(stepIndex) && opts.onPreview) {
        const x0 = out.predOriginalSample ?? latents;
        const tp = performance.now();
        const previews = await this.decodeLatents(x0, signal);
        vaeMs += performance.now() - tp;
        await opts.onPreview(stepIndex, previews);
      }
    }
    const denoiseMs = performance.now() - tLoop;

    // 6. Decode the final latents.
    const tDec = performance.now();
    const images = await this.decodeLatents(latents, signal);
    vaeMs += performance.now() - tDec;
    return {
      images,
      seed,
      timings: {
        totalMs: performance.now() - t0,
        textEncoderMs,
        denoiseMs,
        vaeMs,
        sessionRunMs: this.timer.totalMs - runMs0,
      },
    };
  }

  private validate(req: GenerateRequest, n: number): void {
    const m = this.capabilities.sizeMultiple;
    if (!Number.isInteger(n) || n < 1) throw new GenerateRequestError(`numImages must be a positive integer, got ${n}`);
    for (const [k, v] of [
      ['width', req.width],
      ['height', req.height],
    ] as const) {
      if (!Number.isInteger(v) || v <= 0 || v % m !== 0) {
        const why = `VAE scale factor ${this.folder.vaeScaleFactor} x UNet downsampling ${m / this.folder.vaeScaleFactor}`;
        throw new GenerateRequestError(`${k} must be a positive multiple of ${m} for this model (${why}), got ${v}`);
      }
    }
    if (!Number.isInteger(req.numInferenceSteps) || req.numInferenceSteps < 1) {
      throw new GenerateRequestError(`numInferenceSteps must be a positive integer, got ${req.numInferenceSteps}`);
    }
    const gi = req.guidanceInterval;
    if (gi !== undefined && !(gi.length === 2 && gi.every(Number.isFinite) && gi[0] <= gi[1])) {
      throw new GenerateRequestError(`guidanceInterval must be [lo, hi] with lo <= hi, got ${JSON.stringify(gi)}`);
    }
    if (req.strength !== undefined && !(req.strength > 0 && req.strength <= 1)) {
      throw new GenerateRequestError(`strength must be in (0, 1], got ${req.strength}`);
    }
    if ((req.initImage || req.mask) && !this.vaeEncoder) {
      throw new GenerateRequestError('this model has no VAE encoder (vae_encoder/model.onnx): image inputs are not supported');
    }
    if (req.mask && !req.initImage) throw new GenerateRequestError('a mask needs an init image');
    if (req.initImage && (req.initImage.width !== req.width || req.initImage.height !== req.height)) {
      throw new GenerateRequestError(`init image is ${req.initImage.width}x${req.initImage.height}, expected ${req.width}x${req.height}`);
    }
    if (req.mask && req.mask.length !== req.width * req.height) {
      throw new GenerateRequestError(`mask has ${req.mask.length} values, expected ${req.width * req.height}`);
    }
  }

  /**
   * Conditioning for [negative..., positive...] (CFG) or [positive] alone, one row per prompt (not per image). An absent
   * negative prompt is encoded as "", except on SDXL with force_zeros_for_empty_prompt, where its embeddings are zeros
   * (diffusers: `negative_prompt is None and force_zeros_for_empty_prompt`); an explicit "" is always encoded.
   */
  private async encodePrompts(prompt: string, negative: string | undefined, doCfg: boolean): Promise<TextConditioning> {
    if (this.text2) {
      const prompts = doCfg ? [negative ?? '', prompt] : [prompt];
      const enc = await encodeSdxl(this.text, this.text2, prompts);
      if (doCfg && negative === undefined && this.folder.forceZerosForEmptyPrompt) {
        const hs = enc.hiddenStates.data;
        hs.fill(0, 0, hs.length / 2);
        if (enc.pooled) enc.pooled.data.fill(0, 0, enc.pooled.data.length / 2);
      }
      return enc;
    }
    return encodeSd(this.text, doCfg ? [negative ?? '', prompt] : [prompt]);
  }

  private sdxlExtras(cond: TextConditioning, req: GenerateRequest, doCfg: boolean): SdxlExtras | undefined {
    if (!cond.pooled || !this.unet.hasInput('text_embeds')) return undefined;
    // time_ids = original size + crop top-left + target size (diffusers _get_add_time_ids).
    const ids = [req.height, req.width, 0, 0, req.height, req.width];
    const rows = doCfg ? 2 : 1;
    const timeIds = tensor(
      new Float32Array(rows * 6).map((_, i) => ids[i % 6]),
      [rows, 6],
    );
    return { pooled: cond.pooled, timeIds };
  }

  /**
   * Splits the n images into UNet calls of at most maxBatchSize samples and builds each call's text inputs once
   * per generation (they do not change between steps). Row order follows diffusers: unconditional half first.
   */
  private planChunks(hidden: Tensor, extra: SdxlExtras | undefined, n: number, doCfg: boolean): UnetChunk[] {
    const perImage = doCfg ? 2 : 1;
    const imagesPerCall = Math.max(1, Math.floor(this.maxBatchSize / perImage));
    const pair = (t: Tensor, k: number) =>
      doCfg ? concatBatch([repeatBatch(sliceBatch(t, 0, 1), k), repeatBatch(sliceBatch(t, 1, 2), k)]) : repeatBatch(t, k);
    const chunks: UnetChunk[] = [];
    for (let s = 0; s < n; s += imagesPerCall) {
      const e = Math.min(n, s + imagesPerCall);
      const k = e - s;
      const feeds: Record<string, Tensor> = { encoder_hidden_states: pair(hidden, k) };
      if (extra) {
        feeds.text_embeds = pair(extra.pooled, k);
        feeds.time_ids = repeatBatch(sliceBatch(extra.timeIds, 0, 1), k * perImage);
      }
      chunks.push({ start: s, end: e, feeds });
    }
    return chunks;
  }

  /** One UNet evaluation for all images, chunk by chunk, with classifier-free guidance applied. */
  private async predictNoise(
    latentInput: Tensor,
    t: number,
    chunks: readonly UnetChunk[],
    doCfg: boolean,
    guidance: number,
    signal: AbortSignal | undefined,
  ): Promise<Tensor> {
    const outChunks: Tensor[] = [];
    for (const chunk of chunks) {
      checkAborted(signal);
      const x = chunks.length === 1 ? latentInput : sliceBatch(latentInput, chunk.start, chunk.end);
      const sample = doCfg ? concatBatch([x, x]) : x;
      const out = await this.unet.run({ ...chunk.feeds, sample, timestep: this.timestepFeed(t, sample.dims[0]) });
      const pred = out.out_sample ?? Object.values(out)[0];
      outChunks.push(doCfg ? applyGuidance(pred, guidance) : pred);
    }
    return outChunks.length === 1 ? outChunks[0] : concatBatch(outChunks);
  }

  /** The timestep as the UNet declares it: a scalar, a single value, or one per batch row. */
  private timestepFeed(t: number, batch: number): Tensor {
    const shape = this.unet.input('timestep').shape;
    if (shape.length === 0) return tensor(Float32Array.of(t), []);
    if (shape.length === 1 && shape[0] === 1) return tensor(Float32Array.of(t), [1]);
    return tensor(new Float32Array(batch).fill(t), [batch]);
  }

  private encoderChannels(): number {
    const shape = this.vaeEncoder?.input('sample').shape;
    const c = shape?.[1];
    return typeof c === 'number' ? c : this.folder.decoderOutChannels;
  }

  private async encodeImage(img: RgbaImage): Promise<Tensor> {
    return this.encodeTensor(imageToTensor(img, this.encoderChannels()));
  }

  /** VAE-encodes a [1, C, H, W] image tensor to scaled latents (the distribution's mean when it returns both). */
  private async encodeTensor(img: Tensor): Promise<Tensor> {
    const enc = this.vaeEncoder!;
    const out = await enc.run({ sample: img });
    let lat = out.latent_sample ?? out.latent_parameters ?? Object.values(out)[0];
    const C = this.folder.latentChannels;
    if (lat.dims[1] === 2 * C) lat = sliceChannels(lat, 0, C);
    const { scalingFactor: s, shiftFactor: sh } = this.folder;
    return tensor(
      lat.data.map((v) => (v - sh) * s),
      lat.dims,
    );
  }

  /**
   * Unscales latents and decodes them, several images per VAE call up to vaeBatchPixels (one at a time when tiled or
   * when the decoder's batch axis is fixed), so memory stays bounded at large sizes.
   */
  private async decodeLatents(latents: Tensor, signal: AbortSignal | undefined): Promise<RgbaImage[]> {
    const { scalingFactor: s, shiftFactor: sh } = this.folder;
    const images: RgbaImage[] = [];
    const count = latents.dims[0];
    const per = this.decodeBatchSize(latents);
    for (let i = 0; i < count; i += per) {
      checkAborted(signal);
      const part = sliceBatch(latents, i, Math.min(count, i + per));
      const scaled = tensor(
        part.data.map((v) => v / s + sh),
        part.dims,
      );
      const tiles = this.vaeTiles;
      const decoded =
        tiles && needsTiling(scaled, tiles)
          ? await tiledDecode(
              scaled,
              tiles,
              (t) => this.decodeOne(t),
              () => checkAborted(signal),
            )
          : await this.decodeOne(scaled);
      for (let r = 0; r < part.dims[0]; r++) images.push(tensorToImage(decoded, r));
    }
    return images;
  }

  /** Images per VAE decoder call for latents of this size. */
  private decodeBatchSize(latents: Tensor): number {
    const tiles = this.vaeTiles;
    if (tiles && needsTiling(sliceBatch(latents, 0, 1), tiles)) return 1;
    if (typeof this.vaeDecoder.input('latent_sample').shape[0] === 'number') return 1;
    const f = this.folder.vaeScaleFactor;
    const pixels = latents.dims[2] * latents.dims[3] * f * f;
    return Math.max(1, Math.floor((this.opts.vaeBatchPixels ?? 1024 * 1024) / pixels));
  }

  private async decodeOne(latent: Tensor): Promise<Tensor> {
    const out = await this.vaeDecoder.run({ latent_sample: latent });
    return out.sample ?? Object.values(out)[0];
  }

  async dispose(): Promise<void> {
    await this.lane.tail.catch(() => undefined);
    if (!this.ownsSessions) return;
    const models = [this.text.model, this.text2?.model, this.unet, this.vaeDecoder, this.vaeEncoder];
    await Promise.all(models.map((m) => m?.release()));
  }
}

/** One image of a batch step: member a's image j, with its unconditional row too when guided at this step. */
interface RowUnit {
  a: number;
  j: number;
  guided: boolean;
}

/** Packs images into UNet calls of at most maxRows rows, in order (an image's rows never straddle two calls). */
function packRows(units: readonly RowUnit[], maxRows: number): RowUnit[][] {
  const calls: RowUnit[][] = [];
  let rows = maxRows;
  for (const u of units) {
    const need = u.guided ? 2 : 1;
    if (rows + need > maxRows) {
      calls.push([]);
      rows = 0;
    }
    calls[calls.length - 1].push(u);
    rows += need;
  }
  return calls;
}

/** The text conditioning of one UNet row: encoder hidden states and, on SDXL, the pooled embedding. */
interface RowText {
  hidden: Tensor;
  pooled?: Tensor;
}

/** A batch item's own generation state; only the UNet calls are shared. */
interface BatchMember {
  slot: BatchSlot;
  seed: number;
  rng: Rng;
  scheduler: Scheduler;
  latents: Tensor;
  uncond: RowText | undefined;
  cond: RowText;
  /** Whether guidance applies at timestep t (guidance on and t inside the item's guidance interval). */
  guided(t: number): boolean;
  previewSteps: ReadonlySet<number>;
}

/** An item's promise: settled once, and rejected with AbortError the moment its signal fires. */
class BatchSlot {
  readonly promise: Promise<GenerateResult>;
  readonly n: number;
  private settled = false;
  private resolve!: (r: GenerateResult) => void;
  private reject!: (err: unknown) => void;
  private readonly onAbort = () => this.fail(new AbortError());

  constructor(
    readonly req: GenerateRequest,
    readonly opts: GenerateOptions,
  ) {
    this.n = req.numImages ?? 1;
    this.promise = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    if (opts.signal?.aborted) this.fail(new AbortError());
    else opts.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  get live(): boolean {
    return !this.settled;
  }

  succeed(result: GenerateResult): void {
    if (this.finish()) this.resolve(result);
  }

  fail(err: unknown): void {
    if (this.finish()) this.reject(err);
  }

  /** Fails the item when `check` throws (validation). */
  settleIf(check: () => void): void {
    try {
      check();
    } catch (err) {
      this.fail(err);
    }
  }

  async settleWith(run: () => Promise<GenerateResult>): Promise<void> {
    if (!this.live) return;
    await run().then(
      (r) => this.succeed(r),
      (err) => this.fail(err),
    );
  }

  private finish(): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.opts.signal?.removeEventListener('abort', this.onAbort);
    return true;
  }
}

/** A signal that fires once every one of `signals` has (undefined when one of them can never fire). */
function allAborted(signals: ReadonlyArray<AbortSignal | undefined>): AbortSignal | undefined {
  if (signals.some((s) => s === undefined)) return undefined;
  const all = new AbortController();
  const check = () => {
    if (signals.every((s) => s!.aborted)) all.abort();
  };
  for (const s of signals) s!.addEventListener('abort', check, { once: true });
  check();
  return all.signal;
}

interface UnetChunk {
  start: number;
  end: number;
  /** encoder_hidden_states (and SDXL's text_embeds, time_ids) for this chunk's rows. */
  feeds: Record<string, Tensor>;
}

interface SdxlExtras {
  pooled: Tensor;
  timeIds: Tensor;
}

/** Fails early, naming the missing tensor input, when a folder's ONNX files do not match the layout. */
function checkInputs(f: ModelFolder, unet: OnnxModel, dec: OnnxModel, enc: OnnxModel | undefined, te: OnnxModel): void {
  te.input('input_ids');
  unet.input('sample');
  unet.input('timestep');
  unet.input('encoder_hidden_states');
  if (f.isSdxl) {
    unet.input('text_embeds');
    unet.input('time_ids');
  }
  dec.input('latent_sample');
  enc?.input('sample');
}

/** noise_uncond + g * (noise_text - noise_uncond) over a [2k, ...] batch ordered [uncond..., text...]. */
function applyGuidance(pred: Tensor, g: number): Tensor {
  const k = pred.dims[0] / 2;
  const half = pred.data.length / 2;
  const out = new Float32Array(half);
  const d = pred.data;
  for (let i = 0; i < half; i++) out[i] = d[i] + g * (d[half + i] - d[i]);
  return tensor(out, [k, ...pred.dims.slice(1)]);
}

/** latents * mask + keep * (1 - mask), with a [1, 1, h, w] mask broadcast over batch and channels. */
function blendLatents(latents: Tensor, keep: Tensor, mask: Tensor): Tensor {
  const [b, c, h, w] = latents.dims;
  const plane = h * w;
  const out = new Float32Array(latents.data.length);
  for (let bc = 0; bc < b * c; bc++) {
    const o = bc * plane;
    for (let p = 0; p < plane; p++) {
      const m = mask.data[p];
      out[o + p] = latents.data[o + p] * m + keep.data[o + p] * (1 - m);
    }
  }
  return tensor(out, latents.dims);
}

/** Concatenates [B, Ci, h, w] tensors along the channel axis. */
function concatChannels(parts: readonly Tensor[]): Tensor {
  const [b, , h, w] = parts[0].dims;
  const plane = h * w;
  const cTotal = parts.reduce((s, p) => s + p.dims[1], 0);
  const out = new Float32Array(b * cTotal * plane);
  for (let i = 0; i < b; i++) {
    let c0 = 0;
    for (const p of parts) {
      const ci = p.dims[1];
      out.set(p.data.subarray(i * ci * plane, (i + 1) * ci * plane), (i * cTotal + c0) * plane);
      c0 += ci;
    }
  }
  return tensor(out, [b, cTotal, h, w]);
}

function sliceChannels(t: Tensor, from: number, to: number): Tensor {
  const [b, c, h, w] = t.dims;
  const plane = h * w;
  const out = new Float32Array(b * (to - from) * plane);
  for (let i = 0; i < b; i++) {
    out.set(t.data.subarray((i * c + from) * plane, (i * c + to) * plane), i * (to - from) * plane);
  }
  return tensor(out, [b, to - from, h, w]);
}
