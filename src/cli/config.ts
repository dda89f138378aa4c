// `easel config check [FILE]` and `easel config print`: see whether a config would start the server, and what it
// amounts to after defaults, file, environment and flags. A bad config throws ConfigError, which main prints (exit 1).
import type { Command } from 'commander';
import { type Config, ENV_VARS, loadConfig, redactConfig } from '../config/config.js';

/** The one line `config check` prints for a config that loads. */
export function describeConfig(cfg: Readonly<Config>, file: string | undefined): string {
  const models = cfg.models.map((m) => m.name).join(', ');
  const source = file ?? 'embedded defaults';
  return `ok: ${source}: models ${models} (default ${cfg.defaultModel}); auth ${cfg.auth.mode}; listens on ${cfg.host}:${cfg.port}; data ${cfg.dataDir}`;
}

/** What `config print` writes: the effective config as JSON, secrets redacted. */
export function printedConfig(cfg: Readonly<Config>): string {
  return `${JSON.stringify(redactConfig(cfg), null, 2)}\n`;
}

const envHelp = `\nEnvironment (overrides the file; flags override both):\n${ENV_VARS.map((v) => `  ${v.name.padEnd(18)} ${v.doc}`).join('\n')}\n`;

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('check or print the effective configuration (defaults < file < EASEL_* < flags)');
  config
    .command('check')
    .description('validate a config file (with the environment) as `easel serve` would; list every problem')
    .argument('[file]', 'JSON config file (default: --config, then EASEL_CONFIG)')
    .option('--config <file>', 'JSON config file')
    .addHelpText('after', envHelp)
    .action((file: string | undefined, opts: { config?: string }) => {
      const path = file ?? opts.config;
      const cfg = loadConfig({ config: path });
      process.stdout.write(`${describeConfig(cfg, path ?? (process.env.EASEL_CONFIG || undefined))}\n`);
    });
  config
    .command('print')
    .description('print the effective config as JSON (urlSecret redacted)')
    .option('--config <file>', 'JSON config file (default: EASEL_CONFIG)')
    .addHelpText('after', envHelp)
    .action((opts: { config?: string }) => {
      process.stdout.write(printedConfig(loadConfig({ config: opts.config })));
    });
}
