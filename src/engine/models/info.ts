// What a model folder can do, read from its JSON files alone: no ONNX Runtime, no sessions. An API process plans
// and validates requests from this; the pipeline that later runs the model derives its capabilities the same way.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { effectiveMaxLength } from '../tokenizers/clip.js';
import type { ModelCapabilities } from '../types.js';
import { type EaselModelExtras, type ModelFolder, type QualityPreset, type ReadFolderOptions, readModelFolder } from './folder.js';

/** Plain data about one model folder; it crosses process boundaries unchanged. */
export interface ModelInfo {
  dir: string;
  /** diffusers' pipeline class from model_index.json, e.g. StableDiffusionPipeline. */
  pipelineClass: string;
  capabilities: ModelCapabilities;
  /** easel.json quality presets, when the folder has them. */
  presets?: Record<string, QualityPreset>;
  extras: EaselModelExtras;
}

/** The capabilities a folder implies; `maxPromptTokens` comes from its first tokenizer. */
export function capabilitiesOf(folder: ModelFolder, maxPromptTokens: number): ModelCapabilities {
  const [sw, sh] = folder.sampleSize;
  const nativeWidth = sw * folder.vaeScaleFactor;
  const nativeHeight = sh * folder.vaeScaleFactor;
  const nativeSizes = folder.extras.native_sizes?.length
    ? folder.extras.native_sizes.map(([w, h]) => [w, h] as const)
    : [[nativeWidth, nativeHeight] as const];
  return {
    nativeWidth,
    nativeHeight,
    nativeSizes,
    sizeMultiple: folder.sizeMultiple,
    supportsAlpha: folder.extras.supports_alpha ?? folder.decoderOutChannels === 4,
    supportsImageToImage: folder.paths.vaeEncoder !== undefined,
    isInpaintModel: folder.unetInChannels === 2 * folder.latentChannels + 1,
    isSdxl: folder.isSdxl,
    maxPromptTokens,
  };
}

function tokenizerMaxLength(tokenizerDir: string): number {
  const file = join(tokenizerDir, 'tokenizer_config.json');
  if (!existsSync(file)) return effectiveMaxLength(undefined);
  const config = JSON.parse(readFileSync(file, 'utf8')) as { model_max_length?: unknown };
  return effectiveMaxLength(config.model_max_length);
}

/** Reads a diffusers-layout ONNX folder's description (throws ModelFolderError naming what is missing). */
export function readModelInfo(dir: string, opts: ReadFolderOptions = {}): ModelInfo {
  const folder = readModelFolder(dir, opts);
  return {
    dir,
    pipelineClass: folder.pipelineClass,
    capabilities: capabilitiesOf(folder, tokenizerMaxLength(folder.paths.tokenizer)),
    ...(folder.extras.quality_presets ? { presets: folder.extras.quality_presets } : {}),
    extras: folder.extras,
  };
}
