// What `--model` / `-m` may name on the command line besides a folder: a hub model org/name[@revision], found in the
// standard Hugging Face cache and pulled first when it is not cached (unless HF_HUB_OFFLINE). serve, worker, generate, edit.
import { existsSync } from 'node:fs';
import { HubError, looksLikeRepoRef } from '../hub/cache.js';
import { createProgressReporter } from '../hub/progress.js';
import { resolveModelPath } from '../hub/registry.js';

export interface HubModelSpec {
  variant?: string;
  subfolder?: string;
}

/**
 * `--model org/name[@revision]` (or EASEL_MODEL) as the pipeline folder in the Hugging Face cache, pulled first when it
 * is not cached and HF_HUB_OFFLINE is not set; a path or a configured model's name is passed on unchanged.
 */
export async function hubModelArg(model: string | undefined, spec: HubModelSpec = {}): Promise<string | undefined> {
  if (model === undefined || existsSync(model) || !looksLikeRepoRef(model)) return model;
  try {
    return await resolveWithProgress(model, spec);
  } catch (err) {
    if (err instanceof HubError) throw new Error(`--model ${model}: ${err.message}`);
    throw err;
  }
}

/** -m for generate and edit: a folder, a shipped name or a hub model (pulled when not cached, unless offline). */
export function cliModel(model: string, variant: string | undefined): Promise<string> {
  return resolveWithProgress(model, { variant });
}

async function resolveWithProgress(model: string, spec: HubModelSpec): Promise<string> {
  const progress = createProgressReporter(process.stderr);
  try {
    return await resolveModelPath(model, {
      ...spec,
      pull: true,
      onProgress: (e) => progress.update(e),
      warn: (l) => process.stderr.write(`${l}\n`),
    });
  } finally {
    progress.done();
  }
}
