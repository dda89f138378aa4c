// The config fails closed: every rule of the schema (deep defaults, strict keys, types and enums, cross-checks), the
// EASEL_* table (case-insensitive, bad values named), precedence, path resolution, and `easel config check/print`.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { describeConfig, printedConfig, registerConfigCommands } from '../../src/cli/config.js';
import { ConfigError, defaultModelPath, ENV_VARS, loadConfig } from '../../src/config/config.js';
import { OPENAI_MODEL_FAMILIES } from '../../src/contract/families.js';
import { DEFAULT_ENCODE_SETTINGS } from '../../src/imaging/encode.js';

const dir = mkdtempSync(join(tmpdir(), 'easel-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
/** Writes `content` (JSON unless a string) to a fresh file under the temp dir and returns its path. */
function file(content: unknown): string {
  const path = join(dir, `c${++files}`, 'easel.json');
  mkdirSync(join(path, '..'));
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

/** The ConfigError's problems for loading `flags` with `env`. */
function problems(flags: Parameters<typeof loadConfig>[0], env: NodeJS.ProcessEnv = {}): readonly string[] {
  try {
    loadConfig(flags, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

const MODEL = { name: 'm', path: '/models/m' };

describe('defaults', () => {
  it('embedded defaults: loopback, no auth, the default model under every OpenAI name', () => {
    const cfg = loadConfig({}, {});
    expect(cfg.host).toBe('127.0.0.1');
    expect(cfg.port).toBe(8080);
    expect(cfg.dataDir).toBe(resolve('data'));
    expect(cfg.auth.mode).toBe('none');
    expect(cfg.models).toEqual([{ name: 'easel-default', path: defaultModelPath(), family: 'gpt-image' }]);
    expect(cfg.defaultModel).toBe('easel-default');
    expect(Object.keys(cfg.aliases).sort()).toEqual(Object.keys(OPENAI_MODEL_FAMILIES).sort());
    expect(new Set(Object.values(cfg.aliases))).toEqual(new Set(['easel-default']));
    expect(cfg.limits).toEqual({
      bodyBytes: 2 * 1024 * 1024,
      uploadBytes: 64 * 1024 * 1024,
      allowPrivateImageUrls: false,
      ...INPUT_IMAGE_LIMITS,
      ...COST_LIMITS,
    });
    expect(cfg.rateLimits).toEqual({ requestsPerMinute: 600, tokensPerMinute: 1_000_000 });
    expect(cfg.moderation.lowCategories).toEqual(['sexual/minors']);
    expect(Object.isFrozen(cfg.engine)).toBe(true);
  });

  it('a partial section keeps the rest of its defaults', () => {
    const cfg = loadConfig(
      { config: file({ limits: { allowPrivateImageUrls: true }, engine: { threads: 2 }, moderation: { lowCategories: [] } }) },
      {},
    );
    expect(cfg.limits).toEqual({
      bodyBytes: 2 * 1024 * 1024,
      uploadBytes: 64 * 1024 * 1024,
      allowPrivateImageUrls: true,
      ...INPUT_IMAGE_LIMITS,
      ...COST_LIMITS,
    });
    expect(cfg.engine).toEqual({ provider: 'cpu', threads: 2, maxBatchSize: 8, maxBatchJobs: 4, batchWindowMs: 15 });
    expect(cfg.moderation.lowCategories).toEqual([]);
    expect(Object.keys(cfg.moderation.categories)).toContain('sexual/minors');
    expect(cfg.images).toEqual({
      urlTtlSeconds: 3600,
      sweepIntervalSeconds: 300,
      encoding: DEFAULT_ENCODE_SETTINGS,
      urlMode: 'signed',
      s3: { forcePathStyle: false, timeoutSeconds: 5 },
    });
  });

  it('defaultModel is the first model; OpenAI names not aliased in the file point at it', () => {
    const cfg = loadConfig(
      { config: file({ models: [MODEL, { name: 'n', path: '/n', family: 'dall-e-3' }], aliases: { 'dall-e-3': 'n' } }) },
      {},
    );
    expect(cfg.defaultModel).toBe('m');
    expect(cfg.models[0].family).toBe('gpt-image');
    expect(cfg.aliases['dall-e-3']).toBe('n');
    expect(cfg.aliases['gpt-image-1']).toBe('m');
  });
});

describe('bad values fail closed, naming the file, the key and what is allowed', () => {
  const cases: Array<[string, unknown, string]> = [
    ['an unknown auth mode', { auth: { mode: 'key' } }, 'auth.mode: expected one of "none" | "keys", got "key"'],
    ['a size with units', { limits: { bodyBytes: '2MB' } }, 'limits.bodyBytes: expected an integer, got "2MB"'],
    ['a negative size', { limits: { uploadBytes: -1 } }, 'limits.uploadBytes: expected a value > 0, got -1'],
    ['a zero size', { limits: { bodyBytes: 0 } }, 'limits.bodyBytes: expected a value > 0, got 0'],
    ['a fractional count', { engine: { maxBatchSize: 1.5 } }, 'engine.maxBatchSize: expected an integer, got 1.5'],
    ['a negative queue', { queue: { maxWaiting: -1 } }, 'queue.maxWaiting: expected a value >= 0, got -1'],
    ['a port out of range', { port: 70000 }, 'port: expected a value <= 65535, got 70000'],
    [
      'a deadline no timer can wait',
      { limits: { requestDeadlineSeconds: 2_147_484 } },
      'limits.requestDeadlineSeconds: expected a value <= 2147483, got 2147484',
    ],
    ['an unknown provider', { engine: { provider: 'gpu' } }, 'engine.provider: expected one of "cpu" | "cuda" | "webgpu", got "gpu"'],
    [
      'an unknown family',
      { models: [{ ...MODEL, family: 'dalle' }] },
      'models[0].family: expected one of "dall-e-2" | "dall-e-3" | "gpt-image"',
    ],
    ['a model without a path', { models: [{ name: 'm' }] }, 'models[0].path: expected a string, got nothing'],
    ['no models', { models: [] }, 'models: expected at least 1 item(s), got 0'],
    ['a string for a boolean', { records: { storePrompts: 'yes' } }, 'records.storePrompts: expected true or false, got "yes"'],
    ['a string for metrics.public', { metrics: { public: 'yes' } }, 'metrics.public: expected true or false, got "yes"'],
    ['a section that is not an object', { limits: [] }, 'limits: expected an object, got []'],
    ['a non-http public URL', { publicBaseUrl: 'ftp://x' }, 'publicBaseUrl: expected an http(s) URL, got "ftp://x"'],
    ['a file that is not an object', [1], 'expected an object, got [1]'],
    ['an unknown top-level key', { prot: 80 }, 'prot: unknown key (allowed keys are host, port,'],
    [
      'an unknown section key',
      { limits: { bodyBytez: 1 } },
      'limits.bodyBytez: unknown key (allowed keys are bodyBytes, uploadBytes, allowPrivateImageUrls, maxInputPixels, decodeBudgetBytes, imageUrlConcurrency, imageUrlTimeoutSeconds, imageUrlDeadlineSeconds, maxSteps, maxImageStepMegapixels, maxPartialImages, requestDeadlineSeconds)',
    ],
    ['an unknown model key', { models: [{ ...MODEL, fam: 'x' }] }, 'models[0].fam: unknown key'],
    ['a defaultModel not served', { models: [MODEL], defaultModel: 'x' }, 'defaultModel: "x" is not among the models (models are "m")'],
    ['an alias to nothing', { models: [MODEL], aliases: { 'gpt-image-1': 'x' } }, 'aliases["gpt-image-1"]: points at unknown model "x"'],
    ['two models with one name', { models: [MODEL, MODEL] }, 'models[1].name: duplicate model name "m"'],
    [
      'a low category not defined',
      { moderation: { lowCategories: ['sexual/minor'] } },
      'moderation.lowCategories[0]: expected one of "sexual/minors" |',
    ],
  ];
  it.each(cases)('%s', (_, content, message) => {
    const path = file(content);
    expect(problems({ config: path })).toEqual([expect.stringContaining(`${path}: ${message}`)]);
  });

  it('keeps /metrics behind auth unless metrics.public is set', () => {
    expect(loadConfig({}, {}).metrics.public).toBe(false);
    expect(loadConfig({ config: file({ metrics: { public: true } }) }, {}).metrics.public).toBe(true);
  });

  it('lists every problem, not just the first', () => {
    const path = file({ auth: { mode: 'key' }, limits: { bodyBytes: '2MB', uploadBytes: 0, extra: 1 }, port: -1 });
    const found = problems({ config: path });
    expect(found).toHaveLength(5);
    for (const key of ['auth.mode', 'limits.bodyBytes', 'limits.uploadBytes', 'limits.extra', 'port']) {
      expect(found.some((p) => p.startsWith(`${path}: ${key}: `))).toBe(true);
    }
  });

  it('a missing file, a folder and bad JSON each name the file', () => {
    const missing = join(dir, 'nope.json');
    expect(problems({ config: missing })).toEqual([`${missing}: cannot read the config file (no such file)`]);
    expect(problems({ config: dir })[0]).toMatch(new RegExp(`^${dir}: cannot read the config file \\(EISDIR`));
    const bad = file('{"auth": {"mode": "keys",}}');
    expect(problems({ config: bad })).toEqual([expect.stringMatching(new RegExp(`^${bad}: not valid JSON \\(`))]);
  });

  it('the error message says it all: `easel serve` prints it as is', () => {
    const path = file({ auth: { mode: 'key' } });
    expect(() => loadConfig({ config: path }, {})).toThrow(
      `invalid config:\n  ${path}: auth.mode: expected one of "none" | "keys", got "key"`,
    );
  });

  it('never shows a secret in a message', () => {
    const found = problems({}, { EASEL_URL_SECRET: 'hunter2' });
    expect(found).toEqual(['EASEL_URL_SECRET: expected a string of at least 16 characters (the value given is not shown)']);
    expect(problems({ config: file({ urlSecret: 12345 }) })[0]).not.toContain('12345');
  });
});

describe('environment variables', () => {
  it('reads enum values case-insensitively', () => {
    const cfg = loadConfig({}, { EASEL_AUTH: 'KEYS', EASEL_PROVIDER: ' Cuda ' });
    expect(cfg.auth.mode).toBe('keys');
    expect(cfg.engine.provider).toBe('cuda');
  });

  it('names the variable and what is allowed on a bad value, and lists each one', () => {
    expect(problems({}, { EASEL_AUTH: 'key', EASEL_PORT: '80x', EASEL_THREADS: '0', EASEL_PUBLIC_URL: 'images.example.com' })).toEqual([
      'EASEL_PORT: expected an integer, got "80x"',
      'EASEL_PUBLIC_URL: expected an http(s) URL, got "images.example.com"',
      'EASEL_AUTH: expected one of "none" | "keys", got "key"',
      'EASEL_THREADS: expected a value > 0, got 0',
    ]);
  });

  it('an empty variable sets nothing', () => {
    expect(loadConfig({}, { EASEL_AUTH: '', EASEL_PORT: ' ' }).port).toBe(8080);
  });

  it('sets what the table says', () => {
    const env = {
      EASEL_HOST: '0.0.0.0',
      EASEL_PORT: '9000',
      EASEL_DATA_DIR: 'var/easel',
      EASEL_PUBLIC_URL: 'https://images.example.com',
      EASEL_THREADS: '3',
      EASEL_URL_SECRET: 'a-secret-of-twenty-chars',
    };
    const cfg = loadConfig({}, env);
    expect([cfg.host, cfg.port, cfg.dataDir, cfg.publicBaseUrl, cfg.engine.threads, cfg.urlSecret]).toEqual([
      '0.0.0.0',
      9000,
      resolve('var/easel'),
      'https://images.example.com',
      3,
      'a-secret-of-twenty-chars',
    ]);
    expect(ENV_VARS.map((v) => v.name)).toEqual(
      expect.arrayContaining([...Object.keys(env), 'EASEL_AUTH', 'EASEL_PROVIDER', 'EASEL_MODEL', 'EASEL_CONFIG']),
    );
  });

  it("the README's table lists exactly these variables, each with the key it sets", () => {
    const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('\n## ', readme.indexOf('## Configuration') + 1));
    const rows = section.split('\n').filter((line) => line.startsWith('| `EASEL_'));
    expect(rows.map((r) => /^\| `(EASEL_\w+)`/.exec(r)?.[1])).toEqual(ENV_VARS.map((v) => v.name));
    for (const [i, v] of ENV_VARS.entries()) {
      const key = v.setting === 'config' || v.setting === 'model' ? `--${v.setting}` : v.setting;
      expect(rows[i]).toContain(`\`${key}\``);
    }
  });

  it('EASEL_CONFIG names the file; a bad one fails like --config', () => {
    expect(loadConfig({}, { EASEL_CONFIG: file({ port: 1234 }) }).port).toBe(1234);
    const missing = join(dir, 'missing.json');
    expect(problems({}, { EASEL_CONFIG: missing })).toEqual([`${missing}: cannot read the config file (no such file)`]);
  });

  it('flags are checked like the rest', () => {
    expect(problems({ port: 65536, host: '' })).toEqual([
      '--host: expected at least 1 character(s), got ""',
      '--port: expected a value <= 65535, got 65536',
    ]);
  });

  it('a bad file, bad variables and bad flags are reported together', () => {
    const path = file({ auth: { mode: 'key' } });
    expect(problems({ config: path, port: -1 }, { EASEL_AUTH: 'open' })).toEqual([
      `${path}: auth.mode: expected one of "none" | "keys", got "key"`,
      'EASEL_AUTH: expected one of "none" | "keys", got "open"',
      '--port: expected a value >= 0, got -1',
    ]);
  });
});

describe('precedence and paths', () => {
  it('defaults < file < environment < flags', () => {
    const path = file({ host: 'file', port: 1, auth: { mode: 'none' }, engine: { threads: 1 } });
    expect(loadConfig({ config: path }, {}).host).toBe('file');
    const env = { EASEL_HOST: 'env', EASEL_PORT: '2', EASEL_AUTH: 'keys', EASEL_THREADS: '2' };
    const fromEnv = loadConfig({ config: path }, env);
    expect([fromEnv.host, fromEnv.port, fromEnv.auth.mode, fromEnv.engine.threads]).toEqual(['env', 2, 'keys', 2]);
    const fromFlags = loadConfig({ config: path, host: 'flag', port: 3 }, env);
    expect([fromFlags.host, fromFlags.port]).toEqual(['flag', 3]);
  });

  it('--config wins over EASEL_CONFIG', () => {
    expect(loadConfig({ config: file({ port: 7 }) }, { EASEL_CONFIG: file({ port: 8 }) }).port).toBe(7);
  });

  it('relative model paths and dataDir resolve against the file folder; env and flag paths against the working directory', () => {
    const path = file({
      models: [
        { name: 'm', path: 'models/m' },
        { name: 'abs', path: '/abs/m' },
      ],
      dataDir: 'state',
    });
    const cfg = loadConfig({ config: path }, {});
    expect(cfg.models.map((m) => m.path)).toEqual([join(path, '..', 'models', 'm'), '/abs/m']);
    expect(cfg.dataDir).toBe(join(path, '..', 'state'));
    expect(loadConfig({ config: path }, { EASEL_DATA_DIR: 'here' }).dataDir).toBe(resolve('here'));
    expect(loadConfig({ config: path, dataDir: 'there' }, {}).dataDir).toBe(resolve('there'));
  });

  it('--model PATH serves that folder as easel-default under every OpenAI name', () => {
    const cfg = loadConfig({ config: file({ models: [MODEL], aliases: { 'dall-e-2': 'm' } }), model: 'some/folder' }, {});
    expect(cfg.models).toEqual([
      { name: 'easel-default', path: resolve('some/folder'), family: 'gpt-image' },
      { ...MODEL, family: 'gpt-image' },
    ]);
    expect(cfg.defaultModel).toBe('easel-default');
    expect(new Set(Object.values(cfg.aliases))).toEqual(new Set(['easel-default']));
  });

  it('--model NAME (or EASEL_MODEL) makes a configured model the default', () => {
    const path = file({ models: [MODEL, { name: 'n', path: '/n' }] });
    const cfg = loadConfig({ config: path }, { EASEL_MODEL: 'n' });
    expect(cfg.defaultModel).toBe('n');
    expect(cfg.models).toHaveLength(2);
    expect(cfg.aliases['gpt-image-1']).toBe('n');
  });
});

describe('easel config check / print', () => {
  it('print shows the effective config as JSON with the URL secret redacted', () => {
    const cfg = loadConfig({ config: file({ urlSecret: 'sixteen-chars-or-more' }) }, { EASEL_AUTH: 'Keys' });
    const printed = JSON.parse(printedConfig(cfg));
    expect(printed.urlSecret).toBe('<redacted>');
    expect(printed.auth).toEqual({ mode: 'keys' });
    expect(printed.limits.bodyBytes).toBe(2 * 1024 * 1024);
    expect(printedConfig(cfg)).not.toContain('sixteen-chars-or-more');
    expect(cfg.urlSecret).toBe('sixteen-chars-or-more');
  });

  it('check describes a good config in one line', () => {
    const path = file({ models: [MODEL], auth: { mode: 'keys' } });
    expect(describeConfig(loadConfig({ config: path }, {}), path)).toMatch(
      new RegExp(`^ok: ${path}: models m \\(default m\\); auth keys; listens on 127\\.0\\.0\\.1:8080`),
    );
  });

  /** Runs `easel config ...args` in process; what it writes to stdout, or the error it throws. */
  async function run(...args: string[]): Promise<{ out: string; error?: unknown }> {
    const program = new Command().exitOverride();
    registerConfigCommands(program);
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      await program.parseAsync(['config', ...args], { from: 'user' });
      return { out: write.mock.calls.map((c) => String(c[0])).join('') };
    } catch (error) {
      return { out: '', error };
    } finally {
      write.mockRestore();
    }
  }

  it('check FILE prints ok for a good file and throws every problem of a bad one', async () => {
    const good = file({ models: [MODEL] });
    expect((await run('check', good)).out).toMatch(/^ok: .*models m/);
    const bad = file({ auth: { mode: 'key' }, queue: { maxWaiting: 'lots' } });
    const { error } = await run('check', bad);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toHaveLength(2);
  });

  it('print --config FILE writes the JSON', async () => {
    const { out } = await run('print', '--config', file({ models: [MODEL] }));
    expect(JSON.parse(out).defaultModel).toBe('m');
  });
});

describe('server: browser safety and proxies', () => {
  it('defaults to no extra hosts or origins and no trusted proxy; a partial section keeps the rest', () => {
    expect(loadConfig({}, {}).server).toMatchObject({ allowedHosts: [], allowedOrigins: [], trustProxy: false });
    expect(loadConfig({ config: file({ server: { trustProxy: true } }) }, {}).server).toMatchObject({
      allowedHosts: [],
      allowedOrigins: [],
      trustProxy: true,
    });
  });

  it('normalises hosts and origins the way they arrive in requests', () => {
    const cfg = loadConfig(
      {
        config: file({
          server: {
            allowedHosts: ['Easel.LAN.', 'images.example.com', '*'],
            allowedOrigins: ['HTTPS://Play.Example.com:443/', 'http://localhost:3000', '*'],
            trustProxy: ['10.0.0.2', '172.16.0.0/12', '::1', 'loopback'],
          },
        }),
      },
      {},
    );
    expect(cfg.server.allowedHosts).toEqual(['easel.lan', 'images.example.com', '*']);
    expect(cfg.server.allowedOrigins).toEqual(['https://play.example.com', 'http://localhost:3000', '*']);
    expect(cfg.server.trustProxy).toEqual(['10.0.0.2', '172.16.0.0/12', '::1', 'loopback']);
  });

  const cases: Array<[string, unknown, string]> = [
    ['a host with a port', { allowedHosts: ['a.example:8080'] }, 'server.allowedHosts[0]: expected a hostname without port or scheme'],
    ['a host with a scheme', { allowedHosts: ['https://a.example'] }, 'got "https://a.example"'],
    [
      'an origin with a path',
      { allowedOrigins: ['https://a.example/app'] },
      'server.allowedOrigins[0]: expected an origin: http(s)://host[:port]',
    ],
    ['a non-http origin', { allowedOrigins: ['ftp://a.example'] }, 'got "ftp://a.example"'],
    ['the "null" origin', { allowedOrigins: ['null'] }, 'server.allowedOrigins[0]: expected an origin'],
    ['a word for trustProxy', { trustProxy: 'yes' }, 'server.trustProxy: expected true, false or a list of proxy addresses, got "yes"'],
    [
      'a hop count (Fastify trusts no peer on it)',
      { trustProxy: 1 },
      'server.trustProxy: expected true, false or a list of proxy addresses, got 1',
    ],
    ['an empty proxy list', { trustProxy: [] }, 'server.trustProxy: expected at least 1 item(s), got 0'],
    ['a proxy that is no address', { trustProxy: ['proxy.lan'] }, 'server.trustProxy[0]: expected an IP address, a CIDR range, or one of'],
    [
      'an unknown key',
      { allowedHost: ['a'] },
      'server.allowedHost: unknown key (allowed keys are allowedHosts, allowedOrigins, trustProxy, ',
    ],
  ];
  it.each(cases)('refuses %s', (_, server, message) => {
    const path = file({ server });
    expect(problems({ config: path })).toEqual([expect.stringContaining(`${path}: `)]);
    expect(problems({ config: path })[0]).toContain(message);
  });
});

describe('storage: the data dir reserve and crash leftovers', () => {
  it('defaults: 64 MiB kept free, leftovers swept once 5 minutes old', () => {
    expect(loadConfig({}, {}).storage).toEqual({ reserveBytes: 64 * 1024 * 1024, leftoverGraceSeconds: 300 });
  });

  it('takes a reserve of 0 (the check off) and keeps the other default', () => {
    expect(loadConfig({ config: file({ storage: { reserveBytes: 0 } }) }, {}).storage).toEqual({
      reserveBytes: 0,
      leftoverGraceSeconds: 300,
    });
  });

  it.each([
    [{ reserveBytes: '64MiB' }, 'storage.reserveBytes: expected an integer, got "64MiB"'],
    [{ reserveBytes: -1 }, 'storage.reserveBytes: expected a value >= 0, got -1'],
    [{ leftoverGraceSeconds: 0 }, 'storage.leftoverGraceSeconds: expected a value > 0, got 0'],
    [{ reserve: 1 }, 'storage.reserve: unknown key (allowed keys are reserveBytes, leftoverGraceSeconds)'],
  ])('refuses %j', (storage, message) => {
    const path = file({ storage });
    expect(problems({ config: path })).toEqual([`${path}: ${message}`]);
  });
});

describe('images.encoding: how the worker encodes images', () => {
  it('defaults to the table in imaging/encode.ts', () => {
    expect(loadConfig({}, {}).images.encoding).toEqual(DEFAULT_ENCODE_SETTINGS);
  });

  it('a partial section keeps the rest of the table', () => {
    const encoding = { resizeKernel: 'lanczos3', webp: { losslessEffort: 6 } };
    expect(loadConfig({ config: file({ images: { encoding } }) }, {}).images.encoding).toEqual({
      ...DEFAULT_ENCODE_SETTINGS,
      resizeKernel: 'lanczos3',
      webp: { ...DEFAULT_ENCODE_SETTINGS.webp, losslessEffort: 6 },
    });
  });

  const KERNELS = '"lanczos3" | "lanczos2" | "mitchell" | "cubic" | "linear" | "nearest"';
  it.each([
    [{ resizeKernel: 'lanczos4' }, `resizeKernel: expected one of ${KERNELS}, got "lanczos4"`],
    [{ png: { compressionLevel: 10 } }, 'png.compressionLevel: expected a value <= 9, got 10'],
    [{ png: { adaptiveFiltering: 1 } }, 'png.adaptiveFiltering: expected true or false, got 1'],
    [{ jpeg: { mozjpeg: 'yes' } }, 'jpeg.mozjpeg: expected true or false, got "yes"'],
    [{ jpeg: { chromaSubsampling: '4:2:2' } }, 'jpeg.chromaSubsampling: expected one of "4:2:0" | "4:4:4", got "4:2:2"'],
    [{ webp: { losslessEffort: 7 } }, 'webp.losslessEffort: expected a value <= 6, got 7'],
    [{ webp: { lossyEffort: 1.5 } }, 'webp.lossyEffort: expected an integer, got 1.5'],
    [{ webp: { losslessQuality: 0 } }, 'webp.losslessQuality: expected a value >= 1, got 0'],
    [{ webp: { effort: 4 } }, 'webp.effort: unknown key (allowed keys are lossyEffort, losslessEffort, losslessQuality)'],
  ])('refuses %j', (encoding, message) => {
    const path = file({ images: { encoding } });
    expect(problems({ config: path })).toEqual([`${path}: images.encoding.${message}`]);
  });
});

/** The defaults of the cost caps and the job deadline in `limits` (docs/limits.md "Requests and the queue"). */
const COST_LIMITS = { maxSteps: 100, maxImageStepMegapixels: 60, maxPartialImages: 3, requestDeadlineSeconds: 300 };

/** The defaults of the input-image keys in `limits` (docs/limits.md "Input images"). */
const INPUT_IMAGE_LIMITS = {
  maxInputPixels: 25_000_000,
  decodeBudgetBytes: 256 * 1024 * 1024,
  imageUrlConcurrency: 4,
  imageUrlTimeoutSeconds: 10,
  imageUrlDeadlineSeconds: 20,
};

describe('limits: input images (pixel limit, decode budget, image URLs)', () => {
  it('defaults to 25 MP, a 256 MiB decode budget, 4 URLs at once, 10 s each and 20 s in all', () => {
    expect(loadConfig({}, {}).limits).toMatchObject(INPUT_IMAGE_LIMITS);
  });

  it('a partial section keeps the rest', () => {
    const limits = { maxInputPixels: 1_000_000, imageUrlConcurrency: 1 };
    expect(loadConfig({ config: file({ limits }) }, {}).limits).toMatchObject({ ...INPUT_IMAGE_LIMITS, ...limits });
  });

  it.each([
    [{ maxInputPixels: 0 }, 'maxInputPixels: expected a value > 0, got 0'],
    [{ maxInputPixels: '25MP' }, 'maxInputPixels: expected an integer, got "25MP"'],
    [{ decodeBudgetBytes: 1.5 }, 'decodeBudgetBytes: expected an integer, got 1.5'],
    [{ imageUrlConcurrency: 0 }, 'imageUrlConcurrency: expected a value >= 1, got 0'],
    [{ imageUrlConcurrency: 17 }, 'imageUrlConcurrency: expected a value <= 16, got 17'],
    [{ imageUrlTimeoutSeconds: -1 }, 'imageUrlTimeoutSeconds: expected a value > 0, got -1'],
    [{ imageUrlDeadlineSeconds: 0 }, 'imageUrlDeadlineSeconds: expected a value > 0, got 0'],
  ])('refuses %j', (limits, message) => {
    const path = file({ limits });
    expect(problems({ config: path })).toEqual([`${path}: limits.${message}`]);
  });
});

describe('server: connection deadlines, connection cap and drain', () => {
  const DEADLINES = {
    headersTimeoutSeconds: 15,
    bodyStallSeconds: 20,
    requestTimeoutSeconds: 120,
    keepAliveTimeoutSeconds: 5,
    maxConnections: 1024,
    writeStallSeconds: 30,
    drainSeconds: 25,
  };

  it('defaults to the documented values (docs/limits.md); a partial section keeps the rest', () => {
    expect(loadConfig({}, {}).server).toMatchObject(DEADLINES);
    const cfg = loadConfig({ config: file({ server: { drainSeconds: 5, maxConnections: 10 } }) }, {});
    expect(cfg.server).toMatchObject({ ...DEADLINES, drainSeconds: 5, maxConnections: 10 });
  });

  it('docs/limits.md names every one of these keys with its default', () => {
    const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'limits.md'), 'utf8');
    for (const [key, value] of Object.entries(DEADLINES)) expect(doc).toMatch(new RegExp(`\\| \`server\\.${key}\` \\| ${value} \\|`));
  });

  const cases: Array<[string, unknown, string]> = [
    ['a zero drain', { drainSeconds: 0 }, 'server.drainSeconds: expected a value > 0, got 0'],
    ['fractional seconds', { bodyStallSeconds: 1.5 }, 'server.bodyStallSeconds: expected an integer, got 1.5'],
    ['a connection cap as text', { maxConnections: '1k' }, 'server.maxConnections: expected an integer, got "1k"'],
    [
      'headers allowed longer than the whole request',
      { headersTimeoutSeconds: 30, requestTimeoutSeconds: 20 },
      'server.headersTimeoutSeconds: headersTimeoutSeconds must not exceed requestTimeoutSeconds',
    ],
  ];
  it.each(cases)('refuses %s', (_, server, message) => {
    const path = file({ server });
    expect(problems({ config: path })).toEqual([expect.stringContaining(`${path}: `)]);
    expect(problems({ config: path })[0]).toContain(message);
  });
});

describe('db.url (Postgres for keys and usage)', () => {
  const rule = 'expected a postgres:// or postgresql:// URL (postgres://user:password@host[:port]/database)';

  it('is absent by default (SQLite), and comes from the file, EASEL_DB, then --db', () => {
    expect(loadConfig({}, {}).db.url).toBeUndefined();
    const path = file({ db: { url: 'postgres://file/easel' } });
    expect(loadConfig({ config: path }, {}).db.url).toBe('postgres://file/easel');
    expect(loadConfig({ config: path }, { EASEL_DB: 'postgresql://env/easel' }).db.url).toBe('postgresql://env/easel');
    expect(loadConfig({ config: path, db: 'postgres://flag/easel' }, { EASEL_DB: 'postgres://env/easel' }).db.url).toBe(
      'postgres://flag/easel',
    );
  });

  it('refuses anything but a Postgres URL, never showing its password', () => {
    expect(problems({}, { EASEL_DB: 'mysql://u:hunter2@host/x' })).toEqual([`EASEL_DB: ${rule}, got "mysql://u:***@host/x"`]);
    expect(problems({ db: 'easel.sqlite' })).toEqual([`--db: ${rule}, got "easel.sqlite"`]);
    expect(problems({ config: file({ db: { url: 'postgres://h/x', pool: 3 } }) }).join('\n')).toMatch(/db/);
  });

  it('config print hides its password', () => {
    const cfg = loadConfig({ db: 'postgres://u:hunter2@h/x' }, {});
    expect(printedConfig(cfg)).not.toContain('hunter2');
    expect(printedConfig(cfg)).toContain('postgres://u:***@h/x');
  });
});

describe('images.store (S3 for url images), images.s3 and images.urlMode', () => {
  const rule =
    "expected s3://BUCKET[/PREFIX]: a bucket name of 3-63 lowercase letters, digits, dots and hyphens, and a prefix of letters, digits and ! - _ . * ' ( ) /";

  it('is absent by default (the data dir), and comes from the file, EASEL_STORE, then --store', () => {
    expect(loadConfig({}, {}).images.store).toBeUndefined();
    const path = file({ images: { store: 's3://file-bucket' } });
    expect(loadConfig({ config: path }, {}).images.store).toBe('s3://file-bucket');
    expect(loadConfig({ config: path }, { EASEL_STORE: 's3://env-bucket/a/b' }).images.store).toBe('s3://env-bucket/a/b');
    expect(loadConfig({ config: path, store: 's3://flag.bucket/p/' }, { EASEL_STORE: 's3://env-bucket' }).images.store).toBe(
      's3://flag.bucket/p/',
    );
    expect(ENV_VARS.find((v) => v.name === 'EASEL_STORE')?.setting).toBe('images.store');
  });

  it('refuses what is not an s3:// bucket URL, naming where it came from', () => {
    expect(problems({ store: '/var/easel/images' })).toEqual([`--store: ${rule}, got "/var/easel/images"`]);
    expect(problems({}, { EASEL_STORE: 's3://Upper_Case' })).toEqual([`EASEL_STORE: ${rule}, got "s3://Upper_Case"`]);
    for (const bad of [
      's3://ab',
      's3://a..b',
      's3://bucket/../up',
      's3://bucket/a b',
      'https://bucket.s3.amazonaws.com',
      's3://bucket?x=1',
    ]) {
      expect(problems({ store: bad })).toEqual([`--store: ${rule}, got ${JSON.stringify(bad)}`]);
    }
    const path = file({ images: { store: 'minio://x' } });
    expect(problems({ config: path })).toEqual([`${path}: images.store: ${rule}, got "minio://x"`]);
  });

  it('images.s3 and images.urlMode: defaults, values and strict keys', () => {
    const cfg = loadConfig(
      {
        config: file({
          images: {
            store: 's3://b-1/imgs',
            urlMode: 'presigned',
            s3: { endpoint: 'http://127.0.0.1:9000', region: 'eu-west-3', forcePathStyle: true, timeoutSeconds: 2 },
          },
        }),
      },
      {},
    );
    expect(cfg.images.urlMode).toBe('presigned');
    expect(cfg.images.s3).toEqual({ endpoint: 'http://127.0.0.1:9000', region: 'eu-west-3', forcePathStyle: true, timeoutSeconds: 2 });
    const bad = file({ images: { urlMode: 'public', s3: { endpoint: 'ftp://x', timeoutSeconds: 0, accessKeyId: 'AKIA' } } });
    const found = problems({ config: bad }).join('\n');
    for (const key of ['images.urlMode', 'images.s3.endpoint', 'images.s3.timeoutSeconds', 'images.s3']) expect(found).toContain(key);
    expect(found).toMatch(/accessKeyId/); // credentials never go in the file: the AWS SDK's chain provides them
  });

  it('sweepIntervalSeconds may be 0 (no sweeper), never negative', () => {
    expect(loadConfig({ config: file({ images: { sweepIntervalSeconds: 0 } }) }, {}).images.sweepIntervalSeconds).toBe(0);
    expect(problems({ config: file({ images: { sweepIntervalSeconds: -1 } }) }).join('\n')).toContain('images.sweepIntervalSeconds');
  });
});
