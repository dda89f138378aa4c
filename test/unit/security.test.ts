// Browser safety on the embedded server through app.inject: unknown Hosts (DNS rebinding) and cross-site POSTs
// (CSRF) refused in OpenAI's envelope, the config that widens them, trusted proxies, nosniff, owner-only data files.
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { openSqliteDb } from '../../src/db/index.js';
import { createEmbeddedServer, type EmbeddedServer } from '../../src/server/start.js';
import { validateSchema } from '../helpers/openapi.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');
const root = mkdtempSync(join(tmpdir(), 'easel-security-'));
const servers: EmbeddedServer[] = [];

/** An embedded server on the tiny fixture with `file` as its config file (the server section under test). */
async function serve(name: string, file: Record<string, unknown> = {}): Promise<EmbeddedServer> {
  const config = join(root, `${name}.json`);
  writeFileSync(config, JSON.stringify(file));
  const dataDir = join(root, name);
  const server = await createEmbeddedServer(loadConfig({ config, model: FIXTURE, port: 0, dataDir }, { EASEL_THREADS: '1' }));
  servers.push(server);
  return server;
}

let plain: EmbeddedServer;
let widened: EmbeddedServer;
let proxied: EmbeddedServer;

beforeAll(async () => {
  plain = await serve('plain');
  widened = await serve('widened', {
    publicBaseUrl: 'https://images.example.com',
    server: { allowedHosts: ['Easel.LAN'], allowedOrigins: ['https://playground.example.com'] },
  });
  proxied = await serve('proxied', { server: { trustProxy: ['loopback'], allowedHosts: ['images.example.com'] } });
});

afterAll(async () => {
  for (const s of servers) await s.close();
  rmSync(root, { recursive: true, force: true });
});

/** POST /v1/images/generations with an empty object: 400 missing prompt once past the checks, 403 when refused. */
function generate(server: EmbeddedServer, headers: Record<string, string>) {
  return server.app.inject({
    method: 'POST',
    url: '/v1/images/generations',
    payload: {},
    headers: { 'content-type': 'application/json', ...headers },
  });
}

function expectRefusal(res: Awaited<ReturnType<typeof generate>>, code: string) {
  expect(res.statusCode).toBe(403);
  expect(res.headers['x-request-id']).toMatch(/^req_/);
  expect(res.headers['x-should-retry']).toBe('false');
  const body = res.json();
  expect(validateSchema('ErrorResponse', body)).toEqual([]);
  expect(body.error).toMatchObject({ type: 'invalid_request_error', code, param: null });
}

describe('Host check (DNS rebinding)', () => {
  it('accepts localhost, loopback and any IP address, with any port', async () => {
    for (const host of [
      'localhost',
      'localhost:8080',
      'LOCALHOST:1',
      'app.localhost:3000',
      '127.0.0.1:9',
      '[::1]:8080',
      '192.168.1.20:8080',
      '10.0.0.5',
    ]) {
      const res = await plain.app.inject({ method: 'GET', url: '/v1/models', headers: { host } });
      expect([host, res.statusCode]).toEqual([host, 200]);
    }
  });

  it('refuses any other name on every route, before auth or routing', async () => {
    for (const url of ['/v1/models', '/v1/nothing', '/openapi.json']) {
      const res = await plain.app.inject({ method: 'GET', url, headers: { host: 'attacker.example:8080' } });
      expectRefusal(res, 'host_not_allowed');
      expect(res.json().error.message).toContain('server.allowedHosts');
    }
    expectRefusal(await generate(plain, { host: 'rebind.attacker.example' }), 'host_not_allowed');
  });

  it('refuses Host values that are not host[:port] (paths, userinfo, two ports)', async () => {
    for (const host of ['localhost/evil', 'user@localhost', 'localhost:80:80', 'localhost:http', 'local host']) {
      expectRefusal(await plain.app.inject({ method: 'GET', url: '/v1/models', headers: { host } }), 'host_not_allowed');
    }
  });

  it('lets probes answer whatever Host an orchestrator sends', async () => {
    expect((await plain.app.inject({ method: 'GET', url: '/healthz', headers: { host: 'easel-svc.default' } })).statusCode).toBe(200);
  });

  it('adds server.allowedHosts (case-insensitive) and publicBaseUrl’s host', async () => {
    for (const host of ['easel.lan:8080', 'EASEL.LAN', 'images.example.com']) {
      expect((await widened.app.inject({ method: 'GET', url: '/v1/models', headers: { host } })).statusCode).toBe(200);
    }
    expectRefusal(await widened.app.inject({ method: 'GET', url: '/v1/models', headers: { host: 'other.lan' } }), 'host_not_allowed');
  });

  it('"*" turns the check off', async () => {
    const open = await serve('any-host', { server: { allowedHosts: ['*'] } });
    expect((await open.app.inject({ method: 'GET', url: '/v1/models', headers: { host: 'anything.example' } })).statusCode).toBe(200);
  });
});

describe('cross-site browser requests (CSRF)', () => {
  const edit = (server: EmbeddedServer, headers: Record<string, string>) => {
    const body = '--B\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nx\r\n--B--\r\n';
    return server.app.inject({
      method: 'POST',
      url: '/v1/images/edits',
      payload: body,
      headers: { 'content-type': 'multipart/form-data; boundary=B', ...headers },
    });
  };

  it('refuses a cross-site POST, JSON or a multipart form a page could submit', async () => {
    const page = { origin: 'https://attacker.example', 'sec-fetch-site': 'cross-site' };
    expectRefusal(await generate(plain, page), 'cross_site_request');
    expectRefusal(await edit(plain, page), 'cross_site_request');
    expectRefusal(
      await plain.app.inject({ method: 'POST', url: '/v1/images/variations', payload: 'x', headers: page }),
      'cross_site_request',
    );
  });

  it('without Sec-Fetch-Site, refuses an Origin that is not the server’s own (or "null")', async () => {
    expectRefusal(await generate(plain, { origin: 'http://attacker.example' }), 'cross_site_request');
    expectRefusal(await generate(plain, { origin: 'null' }), 'cross_site_request');
    expectRefusal(await generate(plain, { host: 'localhost:8080', origin: 'http://localhost:3000' }), 'cross_site_request');
    expect((await generate(plain, { host: 'localhost:8080', origin: 'http://localhost:8080' })).statusCode).toBe(400);
  });

  it('lets same-origin pages, navigations and server-side clients (no Origin) through', async () => {
    const cases: Array<Record<string, string>> = [
      { 'sec-fetch-site': 'same-origin', origin: 'http://localhost' },
      { 'sec-fetch-site': 'none' },
      {},
    ];
    for (const headers of cases) {
      const res = await generate(plain, headers);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.param).toBe('prompt');
    }
  });

  it('lets cross-site GETs through: they change nothing and the page cannot read the answer', async () => {
    const res = await plain.app.inject({
      method: 'GET',
      url: '/v1/models',
      headers: { origin: 'https://attacker.example', 'sec-fetch-site': 'cross-site' },
    });
    expect(res.statusCode).toBe(200);
  });

  it('admits server.allowedOrigins and publicBaseUrl’s origin, whatever Sec-Fetch-Site says', async () => {
    for (const origin of ['https://playground.example.com', 'https://images.example.com']) {
      expect((await generate(widened, { origin, 'sec-fetch-site': 'cross-site' })).statusCode).toBe(400);
    }
    expectRefusal(
      await generate(widened, { origin: 'https://playground.example.com:8443', 'sec-fetch-site': 'cross-site' }),
      'cross_site_request',
    );
  });

  it('keeps the check with a valid API key (auth keys): one rule', async () => {
    const keyed = await serve('keyed', { auth: { mode: 'keys' } });
    const db = openSqliteDb({ path: join(root, 'keyed', 'easel.sqlite') });
    const { key } = await db.createApiKey('test');
    await db.close();
    const page = { origin: 'https://attacker.example', 'sec-fetch-site': 'cross-site', authorization: `Bearer ${key}` };
    expectRefusal(await generate(keyed, page), 'cross_site_request');
    expect((await generate(keyed, { authorization: `Bearer ${key}` })).statusCode).toBe(400);
  });
});

describe('url responses and trusted proxies', () => {
  const urlOf = async (server: EmbeddedServer, headers: Record<string, string>) => {
    const res = await server.app.inject({
      method: 'POST',
      url: '/v1/images/generations',
      payload: { model: 'dall-e-2', prompt: 'a red circle', size: '256x256' },
      headers: { 'content-type': 'application/json', ...headers },
    });
    expect(res.statusCode).toBe(200);
    return new URL(res.json().data[0].url);
  };

  it('builds url responses from the checked Host; X-Forwarded-* is ignored unless a proxy is trusted', async () => {
    const url = await urlOf(plain, { host: 'localhost:9090', 'x-forwarded-host': 'attacker.example', 'x-forwarded-proto': 'https' });
    expect(url.origin).toBe('http://localhost:9090');
  });

  it('uses publicBaseUrl when set', async () => {
    expect((await urlOf(widened, { host: 'easel.lan:8080' })).origin).toBe('https://images.example.com');
  });

  it('honours X-Forwarded-Host/-Proto from a trusted proxy, and checks the forwarded host', async () => {
    const url = await urlOf(proxied, { host: '127.0.0.1:8080', 'x-forwarded-host': 'images.example.com', 'x-forwarded-proto': 'https' });
    expect(url.origin).toBe('https://images.example.com');
    const res = await proxied.app.inject({ method: 'GET', url: '/v1/models', headers: { 'x-forwarded-host': 'attacker.example' } });
    expectRefusal(res, 'host_not_allowed');
  });
});

describe('response headers and data files', () => {
  it('sends x-content-type-options: nosniff on answers, refusals and image files alike', async () => {
    const responses = [
      await plain.app.inject({ method: 'GET', url: '/healthz' }),
      await plain.app.inject({ method: 'GET', url: '/v1/nothing' }),
      await generate(plain, { host: 'attacker.example' }),
      await plain.app.inject({ method: 'GET', url: '/v1/images/files/abc.png?expires=1&sig=x' }),
    ];
    for (const res of responses) expect(res.headers['x-content-type-options']).toBe('nosniff');
  });

  it('keeps easel.sqlite and its -wal/-shm files owner-only (0600) while the server runs', async () => {
    const base = join(root, 'plain', 'easel.sqlite');
    for (const file of [base, `${base}-wal`, `${base}-shm`, join(root, 'plain', 'url-secret')]) {
      expect([file, statSync(file).mode & 0o777]).toEqual([file, 0o600]);
    }
  });

  it('tightens a database an older version left world-readable', async () => {
    const path = join(root, 'old.sqlite');
    await openSqliteDb({ path }).close();
    chmodSync(path, 0o644);
    const db = openSqliteDb({ path });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    await db.close();
  });
});
