// A throwaway redis-server for tests: Debian's binary on a free port, no persistence (as the cluster docs assume
// nothing survives a restart), killed afterwards. restart() stops and starts it on the same port, data gone.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { Socket } from 'node:net';
import { freePort } from './net.js';

export interface TestRedis {
  url: string;
  port: number;
  /** Kills the server (SIGKILL: what a crash looks like to clients) and starts a fresh, empty one on the same port. */
  restart(downMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Resolves once the port answers PING with PONG. */
async function waitForPong(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
    const pong = await new Promise<boolean>((resolve) => {
      const s = new Socket();
      s.setTimeout(500);
      s.once('error', () => resolve(false));
      s.once('timeout', () => {
        s.destroy();
        resolve(false);
      });
      s.connect(port, '127.0.0.1', () => s.write('PING\r\n'));
      s.once('data', (d) => {
        s.destroy();
        resolve(d.toString().startsWith('+PONG'));
      });
    });
    if (pong) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server did not answer on port ${port}`);
}

function spawnRedis(port: number): ChildProcess {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  child.on('error', () => {}); // surfaced by waitForPong (exit code) or the spawn error below
  return child;
}

async function kill(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

export async function startRedis(): Promise<TestRedis> {
  const port = await freePort();
  let child = spawnRedis(port);
  await waitForPong(port, child);
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async restart(downMs = 0) {
      await kill(child, 'SIGKILL');
      if (downMs) await new Promise((r) => setTimeout(r, downMs));
      child = spawnRedis(port);
      await waitForPong(port, child);
    },
    async stop() {
      await kill(child, 'SIGTERM');
    },
  };
}
