// The `easel` command: serve | generate | models list/pull | keys create/list/revoke | usage.
// Each subcommand builds what it needs from the Config; nothing here knows HTTP or tensors beyond the calls it makes.
import { readFileSync, writeFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { defaultModelPath, loadConfig } from '../config/config.js';
import { openDb } from '../db/index.js';
import type { RgbaImage } from '../engine/index.js';
import { type ModelInfo, readModelInfo } from '../engine/models/info.js';
import { EDIT_STRENGTH, INPAINT_STRENGTH, planSize, presetFor, stepsForStrength } from '../engine/plan.js';
import { isSchedulerName, SCHEDULER_NAMES, type SchedulerName } from '../engine/schedulers/names.js';
import { checkMask, decodeMaskWeights, decodeRgba, inspectImage } from '../imaging/decode.js';
import { encodeImage } from '../imaging/encode.js';
import { formatOfFilename } from '../imaging/formats.js';
import { startTracing, tracingSettings } from '../telemetry/otel.js';
import { EASEL_VERSION } from '../version.js';
import { registerConfigCommands } from './config.js';
import { cliModel, hubModelArg } from './hub-model.js';
import { registerModelsCommands } from './models.js';
import { registerUsageCommand } from './usage.js';
import { registerWorkerCommand } from './worker.js';

function int(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n)) throw new InvalidArgumentError(`${name} must be an integer`);
    return n;
  };
}

function float(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number`);
    return n;
  };
}

function parseSizeArg(v: string): { width: number; height: number } {
  const m = /^(\d+)x(\d+)$/.exec(v);
  if (!m) throw new InvalidArgumentError('size must look like 512x512');
  return { width: Number(m[1]), height: Number(m[2]) };
}

/** One-line step progress on a terminal; nothing when stderr is not a TTY. */
function stepBar(label: string) {
  const tty = process.stderr.isTTY === true;
  return {
    update(step: number, total: number) {
      if (!tty) return;
      const width = 30;
      const full = Math.round((step / total) * width);
      process.stderr.write(`\r\x1b[K${label} [${'#'.repeat(full)}${'-'.repeat(width - full)}] ${step}/${total}`);
    },
    done() {
      if (tty) process.stderr.write('\n');
    },
  };
}

/** Writes images to `output` (format from its extension); with several, -1, -2, ... go before the extension. */
async function writeImages(images: RgbaImage[], output: string, size: { width?: number; height?: number } = {}): Promise<void> {
  const format = formatOfFilename(output) ?? 'png';
  for (const [i, img] of images.entries()) {
    const file = images.length > 1 ? output.replace(/(\.[^.]*)?$/, `-${i + 1}$1`) : output;
    writeFileSync(file, await encodeImage(img, { format, keepAlpha: true, ...size }));
    process.stdout.write(`${file}\n`);
  }
}

const program = new Command();
program.name('easel').description("Self-hosted image generation speaking OpenAI's Images API").version(EASEL_VERSION);

program
  .command('serve')
  .description('start the HTTP server on the embedded defaults (or a config file)')
  .option('--host <host>', 'address to listen on (default 127.0.0.1)')
  .option('--port <port>', 'port (default 8080; 0 picks a free one)', int('port'))
  .option('--data-dir <dir>', 'images, database and URL secret (default ./data)')
  .option('--config <file>', 'JSON config file')
  .option(
    '--model <path|org/name>',
    'serve this model folder, or this hub model (org/name[@revision], pulled if not cached), as the default',
  )
  .option('--variant <variant>', 'with a hub --model: weights variant, e.g. fp16')
  .option('--subfolder <dir>', 'with a hub --model: folder of the repository holding the ONNX pipeline (default: the root or onnx/)')
  .option('--public-url <url>', 'absolute base URL for `url` responses')
  .option('--queue <url>', 'run as a cluster API node on this Redis: redis://host:port[/db] (README "Run a cluster")')
  .option('--db <url>', 'keys and usage in this Postgres: postgres://user:password@host[:port]/database (default: SQLite in the data dir)')
  .option(
    '--store <url>',
    'images for url responses in this S3 bucket: s3://bucket[/prefix] (default: the data dir; README "Images in S3")',
  )
  .option('--metrics-port <port>', 'serve GET /metrics on this port of its own, without a key (metrics.port)', int('metrics-port'))
  .action(async (opts) => {
    const config = loadConfig({
      config: opts.config,
      host: opts.host,
      port: opts.port,
      dataDir: opts.dataDir,
      model: await hubModelArg(opts.model ?? process.env.EASEL_MODEL, opts),
      variant: opts.variant,
      publicBaseUrl: opts.publicUrl,
      queue: opts.queue,
      db: opts.db,
      store: opts.store,
      metricsPort: opts.metricsPort,
    });
    // OTEL_* (docs/observability.md): spans are exported only when an exporter is configured.
    const tracing = await startTracing(tracingSettings(process.env, config.queue.url ? 'easel-api' : 'easel'));
    // With queue.url this process is a cluster API node: no engine here (not even ONNX Runtime, so the engine is
    // imported only by the commands that run it), jobs go to the workers through Redis.
    const server = config.queue.url
      ? await (await import('../server/start-api.js')).startApiNode(config, { logger: true })
      : await (await import('../server/start.js')).startServer(config, { logger: true });
    const names = server.models
      .list()
      .map((m) => m.id)
      .join(', ');
    process.stderr.write(`easel listening on ${server.url} (models: ${names}; data: ${config.dataDir})\n`);
    if (server.metricsUrl) process.stderr.write(`easel metrics on ${server.metricsUrl}/metrics\n`);
    onShutdownSignal(
      (signal) => {
        process.stderr.write(`easel: ${signal}: draining (up to ${config.server.drainSeconds} s); a second signal stops at once\n`);
        return server.shutdown().finally(() => tracing.shutdown());
      },
      (signal) => process.stderr.write(`easel: second ${signal}: stopping now\n`),
    );
  });

/**
 * SIGTERM or SIGINT starts `drain` and exits 0 when it ends (1 if it fails); a second signal exits 130 at once,
 * whatever is still running (README "Limits, timeouts and shutdown").
 */
function onShutdownSignal(drain: (signal: string) => Promise<void>, abandon: (signal: string) => void): void {
  let draining = false;
  const handle = (signal: NodeJS.Signals) => {
    if (draining) {
      abandon(signal);
      process.exit(130);
    }
    draining = true;
    drain(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`easel: shutdown failed: ${(err as Error)?.stack ?? String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handle);
  process.on('SIGTERM', handle);
}

/** Steps, guidance and scheduler from the model's quality preset (its easel.json), unless given on the command line. */
function sampling(info: ModelInfo, opts: { quality: string; steps?: number; guidance?: number; scheduler?: string }) {
  const preset = presetFor(opts.quality, info.presets);
  const scheduler = opts.scheduler ?? preset.scheduler;
  if (scheduler !== undefined && !isSchedulerName(scheduler)) throw new InvalidArgumentError(`unknown scheduler '${scheduler}'`);
  return {
    numInferenceSteps: opts.steps ?? preset.steps,
    guidanceScale: opts.guidance ?? preset.guidance_scale,
    ...(preset.guidance_interval && opts.guidance === undefined ? { guidanceInterval: preset.guidance_interval } : {}),
    scheduler: scheduler as SchedulerName | undefined,
  };
}

const QUALITY_HELP = "quality preset from the model's easel.json: low | medium | high (sets steps and guidance)";

program
  .command('generate')
  .description('generate images from a prompt and write them to files')
  .argument('<prompt>', 'what to draw')
  .option('-m, --model <name|path>', 'model folder, shipped model name or hub model org/name[@revision]', defaultModelPath())
  .option('--variant <variant>', 'weights variant of the model, e.g. fp16')
  .option(
    '--size <WxH>',
    "output size (default: the model's native size); generated at the closest native size, then resized",
    parseSizeArg,
  )
  .option('--quality <q>', QUALITY_HELP, 'medium')
  .option('--steps <n>', 'denoising steps (overrides the preset)', int('steps'))
  .option('--guidance <g>', 'classifier-free guidance scale (overrides the preset)', float('guidance'))
  .option('--seed <n>', 'seed (random when absent)', int('seed'))
  .option('--negative <text>', 'negative prompt')
  .option('--scheduler <name>', `one of ${SCHEDULER_NAMES.join(', ')}`)
  .option('-n, --n <n>', 'number of images', int('n'), 1)
  .option('--threads <n>', 'CPU threads', int('threads'))
  .option('--provider <p>', 'cpu | cuda | webgpu', 'cpu')
  .option('-o, --output <file>', 'output file (.png/.jpg/.webp); with -n > 1, -1, -2... are added', 'out.png')
  .action(async (prompt: string, opts) => {
    const dir = await cliModel(opts.model, opts.variant);
    const info = readModelInfo(dir, { variant: opts.variant });
    const caps = info.capabilities;
    const size = opts.size ?? { width: caps.nativeWidth, height: caps.nativeHeight };
    const plan = planSize(size.width, size.height, caps);
    const { loadPipeline } = await import('../engine/index.js');
    const pipe = await loadPipeline(dir, { threads: opts.threads, provider: opts.provider });
    try {
      const bar = stepBar('denoising');
      const result = await pipe.generate(
        {
          prompt,
          negativePrompt: opts.negative ?? info.extras.default_negative_prompt,
          width: plan.genWidth,
          height: plan.genHeight,
          numImages: opts.n,
          seed: opts.seed,
          ...sampling(info, opts),
        },
        { onStep: (p) => bar.update(p.step + 1, p.totalSteps) },
      );
      bar.done();
      await writeImages(result.images, opts.output, { width: plan.outWidth, height: plan.outHeight });
      process.stderr.write(
        `seed ${result.seed}; ${result.timings.totalMs.toFixed(0)} ms (session.run ${result.timings.sessionRunMs.toFixed(0)} ms)\n`,
      );
    } finally {
      await pipe.dispose();
    }
  });

/** Reads and checks an input image, naming the file when it is refused. */
async function readInput(path: string, formats?: Parameters<typeof inspectImage>[1]) {
  try {
    return await inspectImage(readFileSync(path), formats);
  } catch (err) {
    throw new Error(`${path}: ${(err as Error).message}`);
  }
}

program
  .command('edit')
  .description('edit an image: image-to-image, or inpainting where --mask is fully transparent')
  .argument('<image>', 'input image (png, jpeg or webp)')
  .argument('<prompt>', 'what the edited image should show')
  .option('--mask <file>', 'PNG with alpha, same size as the image; transparent pixels are repainted')
  .option('-m, --model <name|path>', 'model folder, shipped model name or hub model org/name[@revision]', defaultModelPath())
  .option('--variant <variant>', 'weights variant of the model, e.g. fp16')
  .option('--size <WxH>', "generation size (default: planned from the model's native sizes at the image's aspect)", parseSizeArg)
  .option('--quality <q>', QUALITY_HELP, 'medium')
  .option('--steps <n>', 'denoising steps before strength (overrides the preset)', int('steps'))
  .option('--guidance <g>', 'classifier-free guidance scale (overrides the preset)', float('guidance'))
  .option('--strength <s>', `how much to change, (0, 1] (default ${EDIT_STRENGTH}; ${INPAINT_STRENGTH} with --mask)`, float('strength'))
  .option('--seed <n>', 'seed (random when absent)', int('seed'))
  .option('--negative <text>', 'negative prompt')
  .option('--scheduler <name>', `one of ${SCHEDULER_NAMES.join(', ')}`)
  .option('-n, --n <n>', 'number of images', int('n'), 1)
  .option('--threads <n>', 'CPU threads', int('threads'))
  .option('--provider <p>', 'cpu | cuda | webgpu', 'cpu')
  .option('-o, --output <file>', "output file (.png/.jpg/.webp), written at the input image's size", 'out.png')
  .action(async (imagePath: string, prompt: string, opts) => {
    const strength: number = opts.strength ?? (opts.mask ? INPAINT_STRENGTH : EDIT_STRENGTH);
    if (!(strength > 0 && strength <= 1)) throw new InvalidArgumentError('strength must be in (0, 1]');
    const image = await readInput(imagePath);
    const mask = opts.mask ? await readInput(opts.mask, ['png']) : undefined;
    if (mask) checkMask(mask, image);
    const dir = await cliModel(opts.model, opts.variant);
    const info = readModelInfo(dir, { variant: opts.variant });
    const caps = info.capabilities;
    if (!caps.supportsImageToImage) throw new Error(`the model at ${dir} has no VAE encoder and cannot edit images`);
    const planned = planSize(image.width, image.height, caps);
    const size = opts.size ?? { width: planned.genWidth, height: planned.genHeight };
    const base = sampling(info, opts);
    const steps = stepsForStrength(base.numInferenceSteps, strength);
    const { loadPipeline } = await import('../engine/index.js');
    const pipe = await loadPipeline(dir, { threads: opts.threads, provider: opts.provider });
    try {
      const bar = stepBar('editing');
      const result = await pipe.generate(
        {
          prompt,
          negativePrompt: opts.negative ?? info.extras.default_negative_prompt,
          width: size.width,
          height: size.height,
          numImages: opts.n,
          seed: opts.seed,
          ...base,
          numInferenceSteps: steps.steps,
          initImage: await decodeRgba(image, size.width, size.height, { flatten: !caps.supportsAlpha }),
          strength,
          ...(mask ? { mask: await decodeMaskWeights(mask, size.width, size.height) } : {}),
        },
        { onStep: (p) => bar.update(p.step + 1, p.totalSteps) },
      );
      bar.done();
      await writeImages(result.images, opts.output, { width: image.width, height: image.height });
      process.stderr.write(`seed ${result.seed}; strength ${strength}; ${result.timings.totalMs.toFixed(0)} ms\n`);
    } finally {
      await pipe.dispose();
    }
  });

registerWorkerCommand(program);
registerModelsCommands(program);
registerConfigCommands(program);
registerUsageCommand(program);

const keys = program.command('keys').description('API keys (used when auth.mode is "keys")');
keys.option('--data-dir <dir>', 'data directory of the server (default ./data)');
keys.option('--config <file>', 'JSON config file of the server');
keys.option('--db <url>', "the server's Postgres (db.url), if it uses one");
function keysDb(cmd: Command) {
  const o = cmd.parent?.opts() ?? {};
  const config = loadConfig({ config: o.config, dataDir: o.dataDir, db: o.db });
  return openDb({ url: config.db.url, dataDir: config.dataDir });
}
function positiveInt(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
    return n;
  };
}
keys
  .command('create')
  .argument('<name>', 'a label for the key')
  .option('--admin', 'an admin key: may also read the Usage API (GET /v1/organization/usage/images)')
  .option('--rpm <n>', "this key's own limit in requests per minute", positiveInt('--rpm'))
  .option('--tpm <n>', "this key's own limit in tokens per minute", positiveInt('--tpm'))
  .action(async function (this: Command, name: string, o: { admin?: boolean; rpm?: number; tpm?: number }) {
    const db = await keysDb(this);
    const k = await db.createApiKey(name, { admin: o.admin === true, ...(o.rpm ? { rpm: o.rpm } : {}), ...(o.tpm ? { tpm: o.tpm } : {}) });
    await db.close();
    process.stdout.write(`${k.key}\n`);
    process.stderr.write(`created ${k.admin ? 'admin ' : ''}key ${k.id} (${name}); it is shown only once\n`);
  });
keys
  .command('list')
  .description('one line per key: id, name, active|revoked, admin|standard, rpm, tpm (- when the key has no limit of its own)')
  .action(async function (this: Command) {
    const db = await keysDb(this);
    for (const k of await db.listApiKeys()) {
      const cols = [k.id, k.name, k.revokedAt ? 'revoked' : 'active', k.admin ? 'admin' : 'standard', k.rpm ?? '-', k.tpm ?? '-'];
      process.stdout.write(`${cols.join('\t')}\n`);
    }
    await db.close();
  });
keys
  .command('revoke')
  .argument('<id>', 'key id (from keys list)')
  .action(async function (this: Command, id: string) {
    const db = await keysDb(this);
    const ok = await db.revokeApiKey(id);
    await db.close();
    if (!ok) this.error(`no active key with id ${id}`);
  });

program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`easel: ${err.message}\n`);
  process.exit(1);
});
