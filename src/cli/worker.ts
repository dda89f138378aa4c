// `easel worker --queue redis://... [--model PATH | --config FILE] [--metrics-port N]`: runs an engine worker for a
// cluster. The same config as `serve` names the models (and engine settings); SIGTERM finishes the jobs it holds, exits 0.
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { loadConfig } from '../config/config.js';
import { startTracing, tracingSettings } from '../telemetry/otel.js';
import { hubModelArg } from './hub-model.js';

function portNumber(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('--metrics-port must be an integer');
  return n;
}

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description('run an engine worker: take the cluster\'s jobs for its models from Redis (README "Run a cluster")')
    .option('--queue <url>', 'redis://host:port[/db] of the cluster (or queue.url / EASEL_QUEUE)')
    .option('--config <file>', 'JSON config file: its models and engine settings')
    .option(
      '--model <path|name>',
      'run only this model: a folder or hub model org/name[@revision] (as easel-default), or a configured model name',
    )
    .option('--metrics-port <port>', "serve this worker's GET /metrics on this port (metrics.port)", portNumber)
    .action(async (opts: { queue?: string; config?: string; model?: string; metricsPort?: number }) => {
      const model = await hubModelArg(opts.model);
      const config = loadConfig({ config: opts.config, model, queue: opts.queue, metricsPort: opts.metricsPort });
      // OTEL_* (docs/observability.md): the job's spans continue its request's trace when an exporter is configured.
      const tracing = await startTracing(tracingSettings(process.env, 'easel-worker'));
      const url = config.queue.url;
      if (!url) throw new Error("easel worker needs the cluster's Redis: --queue redis://HOST:PORT (or queue.url, EASEL_QUEUE)");
      // Loaded here, not at start: only this command needs the engine.
      const { startWorker } = await import('../worker/main.js');
      // --model made its model the default one (config.ts); the worker then runs that one alone.
      const models = opts.model ? config.models.filter((m) => m.name === config.defaultModel) : config.models;
      const running = await startWorker({ ...config, models }, { url });
      const where = url.replace(/\/\/[^@]*@/, '//***@');
      process.stderr.write(`easel worker ${running.worker.id} serving ${models.map((m) => m.name).join(', ')} from ${where}\n`);
      if (running.metricsUrl) process.stderr.write(`easel worker metrics on ${running.metricsUrl}/metrics\n`);
      let stopping = false;
      const stop = (signal: NodeJS.Signals) => {
        if (stopping) process.exit(130);
        stopping = true;
        process.stderr.write(`easel worker: ${signal}: finishing the jobs it holds; a second signal stops at once\n`);
        running
          .close()
          .finally(() => tracing.shutdown())
          .then(
            () => process.exit(0),
            (err: unknown) => {
              process.stderr.write(`easel worker: shutdown failed: ${(err as Error)?.stack ?? String(err)}\n`);
              process.exit(1);
            },
          );
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
}
