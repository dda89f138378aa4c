// Child processes of the real CLI for cluster tests: `easel serve --queue` API nodes and `easel worker`s (through tsx,
// EASEL_* and OTEL_* of the test's environment unset), their output kept, waited for by the lines they print, killed after.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
const MAIN = join(ROOT, 'src', 'cli', 'main.ts');

/** What `easel serve` prints once it listens (src/cli/main.ts). */
const LISTENING = /easel listening on (http:\/\/\S+)/;

export interface EaselProcess {
  name: string;
  child: ChildProcess;
  /** Its stdout and stderr so far, interleaved as they came. */
  output: string;
  /** Settles with the exit code (null when a signal ended it). */
  exited: Promise<number | null>;
}

export interface Cluster {
  /** Every process started, in order (for messages and logs). */
  readonly procs: EaselProcess[];
  /** Runs `easel ARGS` with `env` over the test's environment less EASEL_* and OTEL_*. */
  easel(name: string, args: string[], env?: NodeJS.ProcessEnv): EaselProcess;
  /** `easel serve ARGS`, resolved with its URL once it listens. */
  serve(name: string, args: string[], env?: NodeJS.ProcessEnv): Promise<{ proc: EaselProcess; url: string }>;
  /** `easel worker ARGS` on one thread (`env` may say otherwise); not waited for. */
  worker(name: string, args: string[], env?: NodeJS.ProcessEnv): EaselProcess;
  /** The first group of `pattern` in what `proc` printed, once it has. */
  line(proc: EaselProcess, pattern: RegExp, what: string): Promise<string>;
  /** Polls `check` every 100 ms until it gives neither undefined nor false; past the timeout, throws with every output. */
  waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs?: number): Promise<T>;
  /** SIGKILLs each process still running and waits for all to exit (teardown). */
  stop(): Promise<void>;
}

function cleanEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const kept = Object.entries(process.env).filter(([k]) => !k.startsWith('EASEL_') && !k.startsWith('OTEL_'));
  return { ...Object.fromEntries(kept), ...env };
}

/** A set of easel processes; `waitMs` is how long waitFor waits when not told. */
export function cluster(opts: { waitMs?: number } = {}): Cluster {
  const procs: EaselProcess[] = [];
  const waitMs = opts.waitMs ?? 30_000;

  const easel = (name: string, args: string[], env: NodeJS.ProcessEnv = {}): EaselProcess => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { env: cleanEnv(env), cwd: ROOT });
    const p: EaselProcess = { name, child, output: '', exited: once(child, 'exit').then(([code]) => code as number | null) };
    const keep = (d: Buffer) => {
      p.output += d;
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    procs.push(p);
    return p;
  };

  const waitFor = async <T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = waitMs): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await Promise.resolve(check()).catch(() => undefined);
      if (v !== undefined && v !== false) return v;
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}\n${procs.map((p) => `--- ${p.name}\n${p.output.slice(-3000)}`).join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const line = (proc: EaselProcess, pattern: RegExp, what: string) => waitFor(what, () => pattern.exec(proc.output)?.[1]);

  return {
    procs,
    easel,
    waitFor,
    line,
    async serve(name, args, env) {
      const proc = easel(name, ['serve', ...args], env);
      return { proc, url: await line(proc, LISTENING, `${name} to listen`) };
    },
    worker: (name, args, env) => easel(name, ['worker', ...args], { EASEL_THREADS: '1', ...env }),
    async stop() {
      for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      await Promise.all(procs.map((p) => p.exited));
    },
  };
}
