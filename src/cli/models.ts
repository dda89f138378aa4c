// `easel models pull <org/name>[@revision]`, `easel models list` and `easel models rm`: the CLI face of src/hub/,
// over the standard Hugging Face cache. main.ts imports registerModelsCommands and adds these to its program.
import type { Command } from 'commander';
import { HubError, pullModel } from '../hub/hf.js';
import { createProgressReporter, formatBytes } from '../hub/progress.js';
import { listModels, type ModelEntry, removeModel } from '../hub/registry.js';

export interface ModelsCliIo {
  /** Normal output (the list table, the pulled path). */
  out(text: string): void;
  /** Where the progress bar draws; it is a bar only when this is a TTY. */
  progress: { write(s: string): unknown; isTTY?: boolean; columns?: number };
  /** Environment the hub settings come from (HF_HUB_CACHE, HF_TOKEN, ...). */
  env?: NodeJS.ProcessEnv;
}

const defaultIo: ModelsCliIo = {
  out: (text) => void process.stdout.write(text),
  progress: process.stderr,
};

const CACHE_HELP = 'hub cache (default: HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub)';

export function formatModelTable(models: ModelEntry[]): string {
  if (models.length === 0) return 'no models found (shipped models live in models/; pull one with: easel models pull org/name)\n';
  const rows = [
    ['NAME', 'SOURCE', 'REVISION', 'SIZE', 'VARIANTS', 'PATH'],
    ...models.map((m) => [
      m.name,
      m.source,
      m.sha ? `${m.revision === m.sha ? '' : `${m.revision} `}${m.sha.slice(0, 12)}` : '-',
      formatBytes(m.sizeBytes),
      m.variants?.length ? m.variants.join(',') : '-',
      m.path,
    ]),
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const table = rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ')).join('\n');
  const legacy = models.some((m) => m.source === 'legacy')
    ? '\n"legacy" models are in the old $HF_HOME/easel layout; `easel models pull <name>` moves one into the hub cache'
    : '';
  return `${table}${legacy}\n`;
}

function fail(cmd: Command, err: unknown): never {
  if (err instanceof HubError) cmd.error(`error: ${err.message}`, { exitCode: 1, code: `easel.hub.${err.code}` });
  throw err;
}

export function registerModelsCommands(program: Command, io: ModelsCliIo = defaultIo): Command {
  const models = program.command('models').description('list, pull and remove diffusers ONNX models in the Hugging Face cache');

  models
    .command('pull')
    .description('download a diffusers ONNX pipeline (HF_ENDPOINT, HF_TOKEN honoured) into the Hugging Face cache')
    .argument('<repo>', 'hub repository, org/name or org/name@revision')
    .option('--revision <revision>', 'branch, tag or commit sha (default: main)')
    .option('--variant <variant>', 'weights variant, e.g. fp16 (model.fp16.onnx files or an fp16/ folder)')
    .option('--subfolder <dir>', 'folder of the repository holding the ONNX pipeline (default: the root or onnx/)')
    .option('--cache-dir <dir>', CACHE_HELP)
    .action(async (repo: string, opts: { revision?: string; variant?: string; subfolder?: string; cacheDir?: string }, cmd: Command) => {
      const progress = createProgressReporter(io.progress);
      try {
        const result = await pullModel(repo, { ...opts, env: io.env, onProgress: (e) => progress.update(e) });
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
        fail(cmd, err);
      }
    });

  models
    .command('list')
    .description('show shipped models and the cached ones Easel can serve')
    .option('--cache-dir <dir>', CACHE_HELP)
    .option('--json', 'print JSON instead of a table')
    .action(async (opts: { cacheDir?: string; json?: boolean }) => {
      const found = await listModels({ cacheDir: opts.cacheDir, env: io.env });
      io.out(opts.json ? `${JSON.stringify(found, null, 2)}\n` : formatModelTable(found));
    });

  models
    .command('rm')
    .description('remove a cached model: org/name@revision removes that snapshot, org/name every snapshot (shared blobs stay)')
    .argument('<repo>', 'org/name or org/name@revision')
    .option('--cache-dir <dir>', CACHE_HELP)
    .action(async (repo: string, opts: { cacheDir?: string }, cmd: Command) => {
      try {
        const r = await removeModel(repo, { cacheDir: opts.cacheDir, env: io.env });
        const kept = r.keptBlobs ? `, ${r.keptBlobs} blobs kept for other snapshots` : '';
        io.out(`removed ${r.repo}: ${r.removed.length} snapshot(s), ${formatBytes(r.freedBytes)} freed${kept}\n`);
      } catch (err) {
        fail(cmd, err);
      }
    });

  return models;
}
