// Runs the real `easel serve` (src/cli/main.ts through tsx) in a child process on a free port, with a config file,
// and keeps its JSON log lines: for tests of signals, exit codes and what the server logs about hostile clients.
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
export const TINY_MODEL = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');

export interface LogLine {
  level: number;
  msg: string;
  reqId?: string;
  [key: string]: unknown;
}

export interface ServedCli {
  url: string;
  port: number;
  child: ChildProcess;
  logs: LogLine[];
  /** Everything written to stderr so far. */
  stderr(): string;
  /** The first log line from index `from` on (already written or still to come) that `match` accepts. */
  waitForLog(match: (l: LogLine) => boolean, from?: number): Promise<LogLine>;
  /** The first time stderr contains `text`. */
  waitForStderr(text: string): Promise<void>;
  /** Settles with the exit code (null when a signal ended it). */
  exited: Promise<number | null>;
  /** SIGKILL if it still runs (test teardown). */
  kill(): Promise<void>;
}

/** `easel serve --config <dir>/easel.json --port 0` with `config` (tiny model, data in `dir`), EASEL_* unset. */
export async function serveCli(dir: string, config: Record<string, unknown>): Promise<ServedCli> {
  const file = join(dir, 'easel.json');
  writeFileSync(file, JSON.stringify({ models: [{ name: 'tiny', path: TINY_MODEL }], dataDir: 'data', ...config }));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EASEL_')));
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--config', file, '--port', '0'], {
    env: { ...env, EASEL_THREADS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  let stderr = '';
  const watchers = new Set<() => void>();
  const notify = () => {
    for (const w of watchers) w();
  };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as LogLine);
    } catch {
      return; // not a log line
    }
    notify();
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    notify();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const until = <T>(probe: () => T | undefined): Promise<T> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const v = probe();
        if (v !== undefined) {
          watchers.delete(check);
          resolve(v);
        }
      };
      watchers.add(check);
      void exited.then(() => {
        check();
        if (watchers.delete(check)) reject(new Error(`easel serve exited first; stderr:\n${stderr}`));
      });
      check();
    });
  const url = await until(() => /easel listening on (http:\/\/\S+)/.exec(stderr)?.[1]);
  return {
    url,
    port: Number(new URL(url).port),
    child,
    logs,
    stderr: () => stderr,
    waitForLog: (match, from = 0) => until(() => logs.slice(from).find(match)),
    waitForStderr: (text) => until(() => (stderr.includes(text) ? true : undefined)).then(() => undefined),
    exited,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
