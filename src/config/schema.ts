// The one schema for Easel's config: every key, its type, its allowed values and its default. The Config type is
// inferred from it, so the file format, the defaults and the type the server reads cannot drift apart.
import { isAbsolute, resolve } from 'node:path';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { type Family, OPENAI_MODEL_FAMILIES } from '../contract/families.js';
import type { ExecutionProvider } from '../engine/backends/onnx.js';
import { resolveCachedModel } from '../hub/cache.js';
import { DEFAULT_ENCODE_SETTINGS as ENCODING, JPEG_CHROMA_SUBSAMPLING, RESIZE_KERNELS } from '../imaging/encode.js';
import { parseS3StoreUrl, S3_STORE_RULE } from '../storage/s3-url.js';
import { show } from './errors.js';

export type FamilyName = Family;

/** Returns the tuple unchanged; it compiles only if the tuple lists every member of U. */
const listingEvery =
  <U extends string>() =>
  <const T extends readonly U[]>(tuple: T & ([Exclude<U, T[number]>] extends [never] ? unknown : never)): T =>
    tuple;

const FAMILY_NAMES = listingEvery<Family>()(['dall-e-2', 'dall-e-3', 'gpt-image']);
const PROVIDERS = listingEvery<ExecutionProvider>()(['cpu', 'cuda', 'webgpu']);

const nonEmpty = z.string().min(1);
const SECRET_RULE = 'expected a string of at least 16 characters (the value given is not shown)';
const positiveInt = z.int().positive();

const REDIS_RULE = 'expected a redis:// or rediss:// URL (redis://[user:password@]host[:port][/db])';

const POSTGRES_RULE = 'expected a postgres:// or postgresql:// URL (postgres://user:password@host[:port]/database)';

function isPostgresUrl(text: string): boolean {
  if (!URL.canParse(text)) return false;
  const u = new URL(text);
  return (u.protocol === 'postgres:' || u.protocol === 'postgresql:') && u.hostname !== '';
}

function isRedisUrl(text: string): boolean {
  if (!URL.canParse(text)) return false;
  const u = new URL(text);
  const redis = u.protocol === 'redis:' || u.protocol === 'rediss:';
  // The path, if any, is the database number.
  return redis && u.hostname !== '' && /^(\/\d*)?$/.test(u.pathname) && !u.search && !u.hash;
}

/** A URL as messages may show it: any password replaced by "***". */
export function withoutPassword(text: unknown): unknown {
  if (typeof text !== 'string' || !URL.canParse(text)) return text;
  const u = new URL(text);
  if (!u.password) return text;
  u.password = '***';
  return u.toString();
}

/** Schemas of the settings that environment variables and flags can set too (same rules wherever a value comes from). */
export const SETTINGS = {
  config: nonEmpty,
  host: nonEmpty,
  port: z.int().min(0).max(65535),
  /** Relative to the working directory when it comes from the environment or a flag. */
  dataDir: nonEmpty.transform((p) => resolve(p)),
  publicBaseUrl: z.url({ protocol: /^https?$/ }),
  model: nonEmpty,
  /** With `model` a folder or hub model: its weights variant, e.g. "fp16". */
  variant: nonEmpty,
  'auth.mode': z.enum(['none', 'keys']),
  'engine.provider': z.enum(PROVIDERS),
  'engine.threads': positiveInt,
  /** A secret: its value never appears in a message. */
  urlSecret: z.string({ error: SECRET_RULE }).min(16, { error: SECRET_RULE }),
  /** The cluster's Redis (BullMQ): set, `serve` runs an API node; `worker` needs it. */
  'queue.url': z.string().refine(isRedisUrl, { error: (iss) => `${REDIS_RULE}, got ${show(withoutPassword(iss.input))}` }),
  /** Shared Postgres for keys and usage; absent: the embedded SQLite file under dataDir. */
  'db.url': z.string().refine(isPostgresUrl, { error: (iss) => `${POSTGRES_RULE}, got ${show(withoutPassword(iss.input))}` }),
  /** Images for `url` responses in an S3-compatible bucket (s3://BUCKET[/PREFIX]); absent: <dataDir>/images. */
  'images.store': z
    .string()
    .refine((t) => parseS3StoreUrl(t) !== undefined, { error: (iss) => `${S3_STORE_RULE}, got ${show(iss.input)}` }),
  /** GET /metrics on a listener of its own (no key there), on the server's host; 0 picks a free port. */
  'metrics.port': z.int().min(0).max(65535),
} as const;
export type Setting = keyof typeof SETTINGS;
export type SettingValues = { [K in Setting]: z.output<(typeof SETTINGS)[K]> };

const DEFAULT_CATEGORIES: Record<string, string[]> = {
  // A deliberately simple word filter (documented in README): whole-word, case-insensitive matches.
  'sexual/minors': ['child porn', 'cp porn', 'underage sex', 'loli porn'],
  sexual: ['porn', 'pornographic', 'nude', 'naked', 'nsfw', 'explicit sex'],
  violence: ['gore', 'beheading', 'dismembered', 'mutilated'],
  'self-harm': ['suicide', 'self-harm', 'self harm'],
  hate: ['nazi propaganda', 'white power', 'ethnic cleansing'],
};

export interface SchemaContext {
  /** Folder that relative paths in the file resolve against (the file's own folder). */
  base: string;
  /** Folder served as `easel-default` when the file lists no models. */
  defaultModelPath: string;
}

/** A path in the file: relative ones resolve against the file's folder. */
const pathIn = (base: string) => nonEmpty.transform((p) => (isAbsolute(p) ? p : resolve(base, p)));

function modelEntrySchema(base: string) {
  return z
    .object({
      /** Name clients use in `model`. */
      name: nonEmpty,
      /** Diffusers-layout ONNX folder (this or `repo`). */
      path: pathIn(base).optional(),
      /** A Hugging Face repository, "org/name[@revision]", found in the hub cache at start (this or `path`). */
      repo: nonEmpty.optional(),
      /** Folder of the repository holding the ONNX pipeline (e.g. "onnx"); found when absent. */
      subfolder: nonEmpty.optional(),
      /** Weights variant, e.g. "fp16": each part's model.fp16.onnx, or an fp16/ folder. */
      variant: nonEmpty.optional(),
      /** Which OpenAI family's request rules this name speaks. */
      family: z.enum(FAMILY_NAMES).default('gpt-image'),
    })
    .strict()
    .transform((m, ctx) => {
      if (m.path === undefined && m.repo === undefined) {
        ctx.issues.push({
          code: 'custom',
          input: m,
          path: ['path'],
          message: 'expected a string, got nothing (or "repo": "org/name[@revision]")',
        });
        return z.NEVER;
      }
      if (m.path !== undefined && m.repo !== undefined) {
        ctx.issues.push({ code: 'custom', input: m, message: 'give exactly one of "path" (a folder) or "repo" (org/name[@revision])' });
        return z.NEVER;
      }
      try {
        if (m.path !== undefined) return { ...m, path: m.path };
        return { ...m, path: resolveCachedModel(m.repo!, { subfolder: m.subfolder, variant: m.variant }).path };
      } catch (err) {
        ctx.issues.push({
          code: 'custom',
          input: m.repo ?? m.variant,
          path: [m.repo ? 'repo' : 'variant'],
          message: (err as Error).message,
        });
        return z.NEVER;
      }
    });
}

// --- server: browser safety (Host and Origin checks) and trusted proxies; read by src/server/security.ts.
const HOSTNAME = /^(?:[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?|\[[0-9a-f:.]+\])$/i;
const HOST_RULE = 'expected a hostname without port or scheme (e.g. "images.example.com"), or "*"';
const ORIGIN_RULE = 'expected an origin: http(s)://host[:port] with no path, or "*"';
const PROXY_RULE = 'expected an IP address, a CIDR range, or one of "loopback" | "linklocal" | "uniquelocal"';

/** An exact hostname, lowercased; "*" turns the Host check off. */
const allowedHost = z
  .string()
  .refine((h) => h === '*' || HOSTNAME.test(h), { error: (iss) => `${HOST_RULE}, got ${show(iss.input)}` })
  .transform((h) => h.toLowerCase().replace(/\.$/, ''));

/** "https://app.example.com:8443", normalised the way browsers send Origin; "*" turns the Origin check off. */
const allowedOrigin = z
  .string()
  .refine((o) => o === '*' || isBareOrigin(o), { error: (iss) => `${ORIGIN_RULE}, got ${show(iss.input)}` })
  .transform((o) => (o === '*' ? o : new URL(o).origin));

function isBareOrigin(text: string): boolean {
  if (!URL.canParse(text)) return false;
  const u = new URL(text);
  const bare = u.pathname === '/' && !u.search && !u.hash && !u.username && !u.password;
  return (u.protocol === 'http:' || u.protocol === 'https:') && bare;
}

/** A proxy address as Fastify's trustProxy (proxy-addr) takes it: an IP, a CIDR range, or a named range. */
const proxyAddress = z
  .string()
  .refine((a) => ['loopback', 'linklocal', 'uniquelocal'].includes(a) || ipaddr.isValid(a) || ipaddr.isValidCIDR(a), {
    error: (iss) => `${PROXY_RULE}, got ${show(iss.input)}`,
  });

const serverSchema = z
  .object({
    /** Host names served besides localhost, IP addresses, `host` and publicBaseUrl's host; ["*"] accepts any. */
    allowedHosts: z.array(allowedHost).default([]),
    /** Web page origins allowed to POST from a browser besides the server's own; ["*"] allows any. */
    allowedOrigins: z.array(allowedOrigin).default([]),
    /** Honour X-Forwarded-Host/-Proto/-For: true (from any peer) or only from these proxy addresses. */
    trustProxy: z
      .union([z.boolean(), z.array(proxyAddress).min(1)], {
        error: (iss) => `expected true, false or a list of proxy addresses, got ${show(iss.input)}`,
      })
      .default(false),
    // Connection deadlines and the shutdown drain (docs/limits.md); read by src/server/connections.ts and start.ts.
    /** Seconds for a request's headers to arrive (Node's headersTimeout); then 408 and closed. */
    headersTimeoutSeconds: positiveInt.default(15),
    /** Seconds a request body may make no progress before it is answered 408 and closed. */
    bodyStallSeconds: positiveInt.default(20),
    /** Seconds to receive one whole request, headers and body (Node's requestTimeout). */
    requestTimeoutSeconds: positiveInt.default(120),
    /** Seconds an idle keep-alive connection stays open. */
    keepAliveTimeoutSeconds: positiveInt.default(5),
    /** Open connections at most; new sockets beyond it are closed at once. */
    maxConnections: positiveInt.default(1024),
    /** Seconds a response write may make no progress before its socket is ended. */
    writeStallSeconds: positiveInt.default(30),
    /** Seconds running and queued jobs may still finish after SIGTERM/SIGINT. */
    drainSeconds: positiveInt.default(25),
  })
  .strict()
  .refine((s) => s.headersTimeoutSeconds <= s.requestTimeoutSeconds, {
    error: 'headersTimeoutSeconds must not exceed requestTimeoutSeconds',
    path: ['headersTimeoutSeconds'],
  })
  .prefault({});

const webpEffort = z.int().min(0).max(6);
/** images.encoding: how the worker encodes images; the defaults are imaging/encode.ts's table (bench/encode.ts). */
const encodingSchema = z
  .object({
    resizeKernel: z.enum(RESIZE_KERNELS).default(ENCODING.resizeKernel),
    png: z
      .object({
        compressionLevel: z.int().min(0).max(9).default(ENCODING.png.compressionLevel),
        adaptiveFiltering: z.boolean().default(ENCODING.png.adaptiveFiltering),
      })
      .strict()
      .prefault({}),
    jpeg: z
      .object({
        mozjpeg: z.boolean().default(ENCODING.jpeg.mozjpeg),
        chromaSubsampling: z.enum(JPEG_CHROMA_SUBSAMPLING).default(ENCODING.jpeg.chromaSubsampling),
      })
      .strict()
      .prefault({}),
    webp: z
      .object({
        lossyEffort: webpEffort.default(ENCODING.webp.lossyEffort),
        losslessEffort: webpEffort.default(ENCODING.webp.losslessEffort),
        losslessQuality: z.int().min(1).max(100).default(ENCODING.webp.losslessQuality),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({});

/** Every section is strict (unknown keys are refused) and prefaulted, so a partial section keeps its other defaults. */
function fileSchema(ctx: SchemaContext) {
  return z
    .object({
      host: SETTINGS.host.default('127.0.0.1'),
      port: SETTINGS.port.default(8080),
      /** Default ./data under the working directory; a relative value in the file resolves against the file's folder. */
      dataDir: pathIn(ctx.base).default(() => resolve('data')),
      /** Absolute base for `url` responses, e.g. https://images.example.com; defaults to the request's own origin. */
      publicBaseUrl: SETTINGS.publicBaseUrl.optional(),
      models: z
        .array(modelEntrySchema(ctx.base))
        .min(1)
        .default(() => [{ name: 'easel-default', path: ctx.defaultModelPath, family: 'gpt-image' as const }]),
      /** Defaults to the first model. */
      defaultModel: nonEmpty.optional(),
      /** OpenAI model name → served model name; every OpenAI name not listed points at the default model. */
      aliases: z.record(nonEmpty, nonEmpty).default({}),
      auth: z
        .object({
          /** 'none': any or no bearer token is accepted; 'keys': a key made by `easel keys create` is required. */
          mode: SETTINGS['auth.mode'].default('none'),
        })
        .strict()
        .prefault({}),
      queue: z
        .object({
          maxWaiting: z.int().min(0).default(16),
          /** Redis for a cluster (README "Run a cluster"); absent: the embedded in-process queue. */
          url: SETTINGS['queue.url'].optional(),
          /** A worker's BullMQ job lock; absent: fitted to its models' step times (src/worker/main.ts). */
          lockSeconds: z.number().min(1).max(600).optional(),
        })
        .strict()
        .prefault({}),
      db: z
        .object({
          /** Postgres shared by every API node (README "Configuration"); absent: <dataDir>/easel.sqlite. */
          url: SETTINGS['db.url'].optional(),
        })
        .strict()
        .prefault({}),
      engine: z
        .object({
          provider: SETTINGS['engine.provider'].default('cpu'),
          threads: SETTINGS['engine.threads'].optional(),
          maxBatchSize: positiveInt.default(8),
          /** Most queued jobs one batch takes across requests (README "Batching across requests"); 1: no batching. */
          maxBatchJobs: positiveInt.default(4),
          /** Milliseconds a busy lane waits for more compatible jobs before the next batch; 0: none. */
          batchWindowMs: z.int().min(0).max(1000).default(15),
          /** Decodes with a side above this many pixels run in overlapping VAE tiles of this size (README "Performance"); absent or 0: never. */
          vaeTileSize: z.int().min(0).optional(),
        })
        .strict()
        .prefault({}),
      images: z
        .object({
          urlTtlSeconds: positiveInt.default(3600),
          /** Seconds between sweeps of expired images; 0: no sweeper (a bucket lifecycle rule deletes them instead). */
          sweepIntervalSeconds: z.int().min(0).default(300),
          encoding: encodingSchema,
          /** README "Images in S3": s3://BUCKET[/PREFIX] (every API node serves every image); absent: <dataDir>/images. */
          store: SETTINGS['images.store'].optional(),
          /** 'signed': Easel's own expiring URLs, served by any API node; 'presigned': the bucket's presigned GET URL. */
          urlMode: z.enum(['signed', 'presigned']).default('signed'),
          /** The S3 client; credentials come from the AWS SDK's usual chain (AWS_ACCESS_KEY_ID..., AWS_PROFILE, roles). */
          s3: z
            .object({
              /** An S3-compatible server (MinIO, Ceph, R2...); absent: AWS S3. */
              endpoint: z.url({ protocol: /^https?$/ }).optional(),
              /** Absent: AWS_REGION, else us-east-1. */
              region: nonEmpty.optional(),
              /** Bucket in the URL path rather than the host name (most S3-compatible servers want it). */
              forcePathStyle: z.boolean().default(false),
              /** Seconds to connect and per request attempt (2 attempts); an outage past it is a 503. */
              timeoutSeconds: positiveInt.max(60).default(5),
            })
            .strict()
            .prefault({}),
        })
        .strict()
        .prefault({}),
      /** HMAC secret for signed image URLs; generated and kept in the data dir when not given. */
      urlSecret: SETTINGS.urlSecret.optional(),
      moderation: z
        .object({
          /** Category → words/phrases refused under moderation 'auto'. */
          categories: z.record(nonEmpty, z.array(nonEmpty)).default(() => structuredClone(DEFAULT_CATEGORIES)),
          /** Categories still enforced under moderation 'low'. */
          lowCategories: z.array(nonEmpty).default(() => ['sexual/minors']),
        })
        .strict()
        .prefault({}),
      records: z
        .object({ storePrompts: z.boolean().default(false) })
        .strict()
        .prefault({}),
      /**
       * GET /metrics (Prometheus): with auth on it needs an admin key unless `public` is true; with `port` it moves to a
       * listener of its own (no key), and `easel worker` serves its own there.
       */
      metrics: z
        .object({ public: z.boolean().default(false), port: SETTINGS['metrics.port'].optional() })
        .strict()
        .prefault({}),
      /** The data dir's disk (read by src/server/disk.ts and the image sweeper). */
      storage: z
        .object({
          /** Free bytes to keep on the data dir's filesystem: below it new jobs get a retryable 503. 0 turns it off. */
          reserveBytes: z
            .int()
            .min(0)
            .default(64 * 1024 * 1024),
          /** Age after which a `.tmp-` file or an image without its sidecar is a crash leftover, swept at start. */
          leftoverGraceSeconds: positiveInt.default(300),
        })
        .strict()
        .prefault({}),
      limits: z
        .object({
          bodyBytes: positiveInt.default(2 * 1024 * 1024),
          uploadBytes: positiveInt.default(64 * 1024 * 1024),
          /** Let edit image URLs reach loopback/private/link-local addresses and plain http (development only). */
          allowPrivateImageUrls: z.boolean().default(false),
          // Input images (docs/limits.md); read by src/server/image-intake.ts and image-fetch.ts.
          /** Largest width x height an input image's header may declare; larger ones get a 400 naming the image. */
          maxInputPixels: positiveInt.default(25_000_000),
          /** Bytes all decodes in flight may hold together, across requests (imaging/decode.ts decodeCost). */
          decodeBudgetBytes: positiveInt.default(256 * 1024 * 1024),
          /** Image URLs of one request fetched at once. */
          imageUrlConcurrency: z.int().min(1).max(16).default(4),
          /** Seconds to fetch one image URL, redirects included. */
          imageUrlTimeoutSeconds: positiveInt.default(10),
          /** Seconds to fetch all of a request's image URLs; then a 400 naming the URL still downloading. */
          imageUrlDeadlineSeconds: positiveInt.default(20),
          // Cost caps and the job deadline (docs/limits.md); read by src/server/plan.ts and src/server/dispatch.ts.
          /** Denoising steps one request may ask for (num_inference_steps, or its quality preset's steps). */
          maxSteps: positiveInt.default(100),
          /** n x steps x generation megapixels one request may ask for (jobs/cost.ts imageStepMegapixels). */
          maxImageStepMegapixels: z.number().positive().default(60),
          /** Partial images one streaming request may ask for (OpenAI allows up to 3). */
          maxPartialImages: z.int().min(0).max(3).default(3),
          /** Seconds a job may take from being queued to its result; then it is cancelled and answered 504. */
          // At most what one Node timer can wait (2^31-1 ms): a longer delay would fire at once and cancel every job.
          requestDeadlineSeconds: positiveInt.max(2_147_483).default(300),
        })
        .strict()
        .prefault({}),
      /** Per API key (per client IP when auth is off) per minute, replenished continuously; 0 turns a limit off. */
      rateLimits: z
        .object({
          /** Image requests a key may send per minute; a key's own `rpm` (easel keys create --rpm) wins. */
          requestsPerMinute: z.int().min(0).default(600),
          /** Image output tokens (contract/usage.ts) a key may ask for per minute; a key's own `tpm` wins. */
          tokensPerMinute: z.int().min(0).default(1_000_000),
        })
        .strict()
        .prefault({}),
      server: serverSchema,
    })
    .strict();
}

type FileConfig = z.output<ReturnType<typeof fileSchema>>;

/** Checks across keys of the file as written (derived aliases are not reported); each problem carries its path. */
function crossCheck(c: FileConfig, ctx: z.core.$RefinementCtx<FileConfig>): void {
  const names = c.models.map((m) => m.name);
  const known = `models are ${names.map((n) => JSON.stringify(n)).join(', ')}`;
  names.forEach((name, i) => {
    if (names.indexOf(name) !== i) ctx.addIssue({ code: 'custom', path: ['models', i, 'name'], message: `duplicate model name "${name}"` });
  });
  if (c.defaultModel !== undefined && !names.includes(c.defaultModel)) {
    ctx.addIssue({ code: 'custom', path: ['defaultModel'], message: `"${c.defaultModel}" is not among the models (${known})` });
  }
  for (const [alias, target] of Object.entries(c.aliases)) {
    if (!names.includes(target))
      ctx.addIssue({ code: 'custom', path: ['aliases', alias], message: `points at unknown model "${target}" (${known})` });
  }
  const categories = Object.keys(c.moderation.categories);
  c.moderation.lowCategories.forEach((cat, i) => {
    if (!categories.includes(cat)) {
      const allowed = categories.map((k) => JSON.stringify(k)).join(' | ');
      ctx.addIssue({ code: 'custom', path: ['moderation', 'lowCategories', i], message: `expected one of ${allowed}, got "${cat}"` });
    }
  });
}

/** Fills what depends on other keys: the default model (the first one) and every OpenAI name's alias. */
function resolveDefaults(c: FileConfig) {
  const defaultModel = c.defaultModel ?? c.models[0].name;
  const openai = Object.fromEntries(Object.keys(OPENAI_MODEL_FAMILIES).map((name) => [name, defaultModel]));
  return { ...c, defaultModel, aliases: { ...openai, ...c.aliases } };
}

/** The whole config file: strict keys and values with deep defaults, the cross-key checks, then derived defaults. */
export function configSchema(ctx: SchemaContext) {
  return fileSchema(ctx).superRefine(crossCheck).transform(resolveDefaults);
}

export type Config = z.output<ReturnType<typeof configSchema>>;
export type ModelEntry = Config['models'][number];
