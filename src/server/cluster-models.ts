// An API node's model catalog, fed by the model info its workers publish with their heartbeats (no model folder,
// no ONNX Runtime here). Info once seen is kept, so a model whose workers all restart still plans and answers 503s.
import type { Config } from '../config/config.js';
import type { ModelInfo } from '../engine/models/info.js';
import type { WorkerRecord } from '../jobs/redis-keys.js';
import { ModelCatalog } from './catalog.js';

export interface ClusterModelsOptions {
  /** Live worker records (BullMqQueue.workerRecords). */
  read(): Promise<WorkerRecord[]>;
  /** How often to read them. Default 1 s. */
  intervalMs?: number;
  onError?(err: unknown): void;
}

export class ClusterModels {
  private infos = new Map<string, ModelInfo>();
  private seen = '';
  private timer: NodeJS.Timeout | undefined;
  /** The catalog as of the last read; routes read it per request. */
  catalog: ModelCatalog;

  constructor(
    private readonly config: Readonly<Config>,
    private readonly opts: ClusterModelsOptions,
  ) {
    this.catalog = ModelCatalog.fromInfos(config, this.infos);
  }

  /** Reads once now, then every interval until stop(). */
  async start(): Promise<void> {
    await this.refresh().catch((err) => this.opts.onError?.(err));
    this.timer = setInterval(() => void this.refresh().catch((err) => this.opts.onError?.(err)), this.opts.intervalMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Whether every configured model's info has been published (else /readyz says so). */
  complete(): boolean {
    return this.config.models.every((m) => this.infos.has(m.name));
  }

  /** Takes each configured model's info from the newest live worker that runs it; rebuilds the catalog on a change. */
  async refresh(): Promise<void> {
    const records = [...(await this.opts.read())].sort((a, b) => a.startedAt - b.startedAt);
    const next = new Map(this.infos);
    for (const r of records) {
      for (const [name, m] of Object.entries(r.models))
        if (m.info && this.config.models.some((c) => c.name === name)) next.set(name, m.info);
    }
    const key = JSON.stringify([...next]);
    if (key === this.seen) return;
    this.seen = key;
    this.infos = next;
    this.catalog = ModelCatalog.fromInfos(this.config, next);
  }
}
