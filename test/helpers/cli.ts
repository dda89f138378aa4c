// Runs the real `easel` CLI (src/cli/main.ts through tsx) in a child process, for tests of commands and exit codes.
import { execFile } from 'node:child_process';
import { join } from 'node:path';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `easel ARGS` without any EASEL_* variables from the test's environment (plus `env`), in `cwd`. */
export function easel(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<CliRun> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EASEL_')));
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', MAIN, ...args],
      { env: { ...clean, ...env }, timeout: 60_000, cwd },
      (err, stdout, stderr) => {
        done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}
