// The engine's public surface: load a diffusers-layout ONNX folder as a Pipeline and generate images.
// Callers (CLI, server, jobs) import from here only.
import { type PipelineOptions, StableDiffusionPipeline } from './pipelines/stable-diffusion.js';
import type { Pipeline } from './types.js';

export { availableProviders, BackendError, type ExecutionProvider } from './backends/onnx.js';
export { type ModelFolder, ModelFolderError, type QualityPreset, readModelFolder } from './models/folder.js';
export type { PipelineOptions } from './pipelines/stable-diffusion.js';
export { GenerateRequestError, StableDiffusionPipeline } from './pipelines/stable-diffusion.js';
export { MAX_SEED, randomSeed } from './rng.js';
export { SCHEDULER_NAMES } from './schedulers/index.js';
export type { SchedulerName } from './schedulers/types.js';
export * from './types.js';

/** Loads the model folder at `dir` (sessions are created once here and reused by every generate call). */
export async function loadPipeline(dir: string, opts: PipelineOptions = {}): Promise<Pipeline & StableDiffusionPipeline> {
  return StableDiffusionPipeline.load(dir, opts);
}
