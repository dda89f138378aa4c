// The URL-signing secret, from config or kept in the data dir so signed URLs survive restarts. Several API nodes may
// share one data dir and start at once: the first to create the file wins and the others read its secret.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/config.js';

function readSecret(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export function sharedUrlSecret(config: Readonly<Config>): string {
  if (config.urlSecret) return config.urlSecret;
  const file = join(config.dataDir, 'url-secret');
  const existing = readSecret(file);
  if (existing) return existing;
  const secret = randomBytes(32).toString('base64url');
  try {
    writeFileSync(file, secret, { mode: 0o600, flag: 'wx' }); // exclusive: never replaces another node's secret
    return secret;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  // Another node created it a moment ago; its write may still be landing.
  for (let i = 0; i < 100; i++) {
    const theirs = readSecret(file);
    if (theirs) return theirs;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
  throw new Error(`${file} exists but stays empty; remove it or set urlSecret`);
}
