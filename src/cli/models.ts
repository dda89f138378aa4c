// `easel models pull <org/name>[@revision]` and `easel models list`: the CLI face of src/hub/.
// main.ts imports registerModelsCommands and adds these to its program.
import type { Command } from 'commander';
import { HubError, pullModel } from '../hub/hf.js';
import { createProgressReporter, formatBytes } from '../hub/progress.js';
import { listModels, type ModelEntry } from '../hub/registry.js';

export interface ModelsCliIo {
  /** Normal output (the list table, the pulled path). */
  out(text: string): void;
  /** Where the progress bar draws; it is a bar only when this is a TTY. */
  progress: { write(s: string): unknown; isTTY?: boolean; columns?: number };
}

const defaultIo: ModelsCliIo = {
  out: (text) => void process.stdout.write(text),
  progress: process.stderr,
};

export function formatModelTable(models: ModelEntry[]): string {
  if (models.length === 0) return 'no models found (shipped models live in models/; pull one with: easel models pull org/name)\n';
  const rows = [['NAME', 'SOURCE', 'PATH', 'SIZE'], ...models.map((m) => [m.name, m.source, m.path, formatBytes(m.sizeBytes)])];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ')).join('\n') + '\n';
}

export function registerModelsCommands(program: Command, io: ModelsCliIo = defaultIo): Command {
  const models = program.command('models').description('list local models and pull diffusers ONNX models from the Hugging Face hub');

  models
    .command('pull')
    .description('download a diffusers ONNX pipeline (HF_ENDPOINT, HF_TOKEN honoured) into the model cache')
    .argument('<repo>', 'hub repository, org/name or org/name@revision')
    .option('--revision <revision>', 'branch, tag or commit sha (default: main)')
    .option('--cache-dir <dir>', 'model cache (default: EASEL_MODELS_DIR or $HF_HOME/easel)')
    .action(async (repo: string, opts: { revision?: string; cacheDir?: string }, cmd: Command) => {
      const progress = createProgressReporter(io.progress);
      try {
        const result = await pullModel(repo, { revision: opts.revision, cacheDir: opts.cacheDir, onProgress: (e) => progress.update(e) });
        progress.done();
        const fetched = result.files.filter((f) => f.downloaded);
        const bytes = fetched.reduce((a, f) => a + f.size, 0);
        io.out(
          `pulled ${result.repo}@${result.revision} (${result.sha.slice(0, 12)}): ` +
            `${fetched.length} of ${result.files.length} files downloaded (${formatBytes(bytes)}), ` +
            `${result.skipped.length} not needed for ONNX skipped\n${result.path}\n`,
        );
      } catch (err) {
        progress.done();
        if (err instanceof HubError) cmd.error(`error: ${err.message}`, { exitCode: 1, code: `easel.hub.${err.code}` });
        throw err;
      }
    });

  models
    .command('list')
    .description('show shipped and cached models')
    .option('--cache-dir <dir>', 'model cache (default: EASEL_MODELS_DIR or $HF_HOME/easel)')
    .option('--json', 'print JSON instead of a table')
    .action(async (opts: { cacheDir?: string; json?: boolean }) => {
      const found = await listModels({ cacheDir: opts.cacheDir });
      io.out(opts.json ? `${JSON.stringify(found, null, 2)}\n` : formatModelTable(found));
    });

  return models;
}
