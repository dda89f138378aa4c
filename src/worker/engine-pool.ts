// The worker's loaded models: one Pipeline (its ONNX sessions) per local model, each warmed by one small
// generation before it counts as ready. Only worker code holds this; API-side code sees ModelInfo only.
import type { Config, ModelEntry } from '../config/config.js';
import { loadPipeline, type Pipeline, type PipelineOptions } from '../engine/index.js';

interface Loaded {
  pipeline: Pipeline;
  warmed: boolean;
}

/** The engine settings of the config as pipeline options: one place for the embedded server and cluster workers. */
export function pipelineOptions(config: Pick<Config, 'engine'>): PipelineOptions {
  const e = config.engine;
  return {
    provider: e.provider,
    threads: e.threads,
    maxBatchSize: e.maxBatchSize,
    ...(e.vaeTileSize !== undefined ? { vaeTileSize: e.vaeTileSize } : {}),
  };
}

export class EnginePool {
  private constructor(private readonly loaded: ReadonlyMap<string, Loaded>) {}

  /** Loads every model's sessions; on failure releases what was loaded and rethrows. */
  static async load(models: readonly ModelEntry[], opts: PipelineOptions): Promise<EnginePool> {
    const loaded = new Map<string, Loaded>();
    try {
      for (const m of models)
        loaded.set(m.name, {
          pipeline: await loadPipeline(m.path, { ...opts, ...(m.variant ? { variant: m.variant } : {}) }),
          warmed: false,
        });
    } catch (err) {
      await Promise.all([...loaded.values()].map((l) => l.pipeline.dispose()));
      throw err;
    }
    return new EnginePool(loaded);
  }

  get names(): string[] {
    return [...this.loaded.keys()];
  }

  pipeline(name: string): Pipeline {
    const l = this.loaded.get(name);
    if (!l) throw new Error(`no local model '${name}'`);
    return l.pipeline;
  }

  /** Runs one 1-step generation per model so the first real request does not pay session warm-up. */
  async warmUp(): Promise<void> {
    for (const l of this.loaded.values()) {
      const [w, h] = l.pipeline.capabilities.nativeSizes[0];
      await l.pipeline.generate({ prompt: 'warm-up', width: w, height: h, numInferenceSteps: 1, guidanceScale: 1, seed: 0 });
      l.warmed = true;
    }
  }

  /** 1 per warmed model, 0 otherwise (QueueStats.workers). */
  readiness(): Record<string, number> {
    return Object.fromEntries([...this.loaded].map(([name, l]) => [name, l.warmed ? 1 : 0]));
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.loaded.values()].map((l) => l.pipeline.dispose()));
  }
}
