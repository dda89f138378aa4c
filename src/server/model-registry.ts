// The models a server answers for: local model folders (each one loaded Pipeline) and the names clients use,
// each name speaking one OpenAI family's request rules (dall-e-2, dall-e-3, gpt-image).
import { basename } from 'node:path';
import type { Config, FamilyName } from '../config/config.js';
import { OPENAI_MODEL_FAMILIES } from '../config/config.js';
import { loadPipeline, type PipelineOptions, type QualityPreset, type StableDiffusionPipeline } from '../engine/index.js';

/** Easel's request-body extensions, accepted for every local model and listed in GET /v1/models. */
export const EXTENSION_FIELDS = ['seed', 'negative_prompt', 'num_inference_steps', 'guidance_scale', 'scheduler'] as const;

export interface LocalModel {
  name: string;
  path: string;
  pipeline: StableDiffusionPipeline;
  presets: Record<string, QualityPreset> | undefined;
  /** Set once a warm-up generation has run (GET /readyz). */
  warmed: boolean;
}

export interface ServedModel {
  /** The name clients send in `model`. */
  id: string;
  family: FamilyName;
  local: LocalModel;
  /** True when this name is an OpenAI model name mapped onto a local model. */
  isAlias: boolean;
}

export class ModelRegistry {
  private constructor(
    readonly locals: ReadonlyMap<string, LocalModel>,
    private readonly served: ReadonlyMap<string, ServedModel>,
    readonly defaultName: string,
  ) {}

  static async load(config: Readonly<Config>): Promise<ModelRegistry> {
    const opts: PipelineOptions = {
      provider: config.engine.provider,
      threads: config.engine.threads,
      maxBatchSize: config.engine.maxBatchSize,
    };
    const locals = new Map<string, LocalModel>();
    const served = new Map<string, ServedModel>();
    try {
      for (const m of config.models) {
        const pipeline = await loadPipeline(m.path, opts);
        const local: LocalModel = {
          name: m.name,
          path: m.path,
          pipeline,
          presets: pipeline.folder.extras.quality_presets,
          warmed: false,
        };
        locals.set(m.name, local);
        served.set(m.name, { id: m.name, family: m.family ?? 'gpt-image', local, isAlias: false });
      }
    } catch (err) {
      await Promise.all([...locals.values()].map((l) => l.pipeline.dispose()));
      throw err;
    }
    for (const [alias, target] of Object.entries(config.aliases)) {
      const local = locals.get(target)!;
      const family = OPENAI_MODEL_FAMILIES[alias] ?? served.get(target)!.family;
      served.set(alias, { id: alias, family, local, isAlias: true });
    }
    return new ModelRegistry(locals, served, config.defaultModel);
  }

  resolve(name: string): ServedModel | undefined {
    return this.served.get(name);
  }

  list(): ServedModel[] {
    return [...this.served.values()];
  }

  aliasesOf(local: string): string[] {
    return this.list()
      .filter((s) => s.isAlias && s.local.name === local)
      .map((s) => s.id);
  }

  /** Runs one small generation per model so the first real request does not pay session warm-up. */
  async warmUp(): Promise<void> {
    for (const local of this.locals.values()) {
      const caps = local.pipeline.capabilities;
      const [w, h] = caps.nativeSizes[0];
      await local.pipeline.generate({ prompt: 'warm-up', width: w, height: h, numInferenceSteps: 1, guidanceScale: 1, seed: 0 });
      local.warmed = true;
    }
  }

  get ready(): boolean {
    return [...this.locals.values()].every((l) => l.warmed);
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.locals.values()].map((l) => l.pipeline.dispose()));
  }

  describe(local: LocalModel): { folder: string; pipeline: string } {
    return { folder: basename(local.path), pipeline: local.pipeline.folder.pipelineClass };
  }
}
