// The real embedded server on the tiny fixture (as a gpt-image model, one thread, warmed up) with its config file and
// data in a temp dir, for tests that drive it through app.inject; close() stops it and removes the dir.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config.js';
import { createEmbeddedServer, type EmbeddedServer } from '../../src/server/start.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');

export interface TinyServer {
  server: EmbeddedServer;
  close(): Promise<void>;
}

/** Model 'tiny' from the fixture, data in `<temp dir>/data`; `prefix` names the temp dir. */
export async function startTinyServer(prefix: string): Promise<TinyServer> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const file = join(dir, 'easel.json');
  writeFileSync(file, JSON.stringify({ models: [{ name: 'tiny', path: FIXTURE, family: 'gpt-image' }], dataDir: 'data' }));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  const server = await createEmbeddedServer(loadConfig({ config: file, port: 0 }, { EASEL_THREADS: '1' }), { waitForWarmUp: true }).catch(
    (err: unknown) => {
      remove();
      throw err;
    },
  );
  return {
    server,
    async close() {
      await server.close();
      remove();
    },
  };
}
