// The cluster's config keys: queue.url from the file, EASEL_QUEUE or --queue (later wins), refused unless it is a
// redis:// URL, never showing a password (in messages or `config print`), and queue.lockSeconds' range.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { printedConfig } from '../../src/cli/config.js';
import { ConfigError, loadConfig } from '../../src/config/config.js';

const dir = mkdtempSync(join(tmpdir(), 'easel-cluster-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(content: unknown): string {
  const path = join(dir, `c${n++}.json`);
  writeFileSync(path, JSON.stringify(content));
  return path;
}

function problems(flags: Parameters<typeof loadConfig>[0], env: NodeJS.ProcessEnv = {}): readonly string[] {
  try {
    loadConfig(flags, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('queue.url', () => {
  it('is absent by default (the embedded queue), and comes from the file, EASEL_QUEUE, then --queue', () => {
    expect(loadConfig({}, {}).queue.url).toBeUndefined();
    const path = file({ queue: { url: 'redis://file:6379' } });
    expect(loadConfig({ config: path }, {}).queue).toMatchObject({ url: 'redis://file:6379', maxWaiting: 16 });
    expect(loadConfig({ config: path }, { EASEL_QUEUE: 'redis://env:6379/2' }).queue.url).toBe('redis://env:6379/2');
    expect(loadConfig({ config: path, queue: 'rediss://flag' }, { EASEL_QUEUE: 'redis://env' }).queue.url).toBe('rediss://flag');
  });

  it('refuses anything but a redis:// or rediss:// URL, naming where it came from', () => {
    const rule = 'expected a redis:// or rediss:// URL (redis://[user:password@]host[:port][/db])';
    expect(problems({}, { EASEL_QUEUE: 'localhost:6379' })).toEqual([`EASEL_QUEUE: ${rule}, got "localhost:6379"`]);
    expect(problems({ queue: 'http://redis:6379' })).toEqual([`--queue: ${rule}, got "http://redis:6379"`]);
    expect(problems({ queue: 'redis://host/notadb' })[0]).toContain(rule);
    const path = file({ queue: { url: 6379 } });
    expect(problems({ config: path })).toEqual([expect.stringContaining('queue.url: expected a string')]);
  });

  it('never shows a password: not in a refusal, not in `config print`', () => {
    const bad = problems({}, { EASEL_QUEUE: 'redis://u:hunter2@host/x' });
    expect(bad[0]).toContain('redis://u:***@host/x');
    expect(bad.join()).not.toContain('hunter2');
    const printed = printedConfig(loadConfig({ queue: 'redis://u:hunter2@host:6380/1' }, {}));
    expect(printed).toContain('redis://u:***@host:6380/1');
    expect(printed).not.toContain('hunter2');
  });
});

describe('queue.lockSeconds', () => {
  it('is fitted by the worker unless given, between 1 and 600 s', () => {
    expect(loadConfig({}, {}).queue.lockSeconds).toBeUndefined();
    expect(loadConfig({ config: file({ queue: { lockSeconds: 2.5 } }) }, {}).queue.lockSeconds).toBe(2.5);
    expect(problems({ config: file({ queue: { lockSeconds: 0 } }) })).toEqual([expect.stringContaining('queue.lockSeconds')]);
  });
});
