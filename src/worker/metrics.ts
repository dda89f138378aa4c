// A cluster worker's own /metrics (`easel worker --metrics-port`): the default process and Node metrics, and the
// metrics of the jobs it runs (duration, queue wait, step and stage times, batch size, images), by local model.
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { JobExecutor } from '../jobs/types.js';
import { JobMetrics } from '../telemetry/job-metrics.js';

export class WorkerMetrics {
  readonly registry = new Registry();
  readonly contentType = this.registry.contentType;
  private readonly jobs: JobMetrics;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    this.jobs = new JobMetrics(this.registry, false);
  }

  /** `execute` with each job's end observed: a result by its timings, anything else by its time since submit. */
  observing(execute: JobExecutor): JobExecutor {
    return async (job, ctx) => {
      let steps = 0;
      const end = await execute(job, {
        ...ctx,
        emit: (event) => {
          if (event.type === 'progress') steps = Math.max(steps, event.step + 1);
          ctx.emit(event);
        },
      });
      if (end.type === 'result') {
        const size = `${job.output.width}x${job.output.height}`;
        this.jobs.observeResult({ model: job.model, size, steps }, end.images.length, end.timings);
      } else {
        this.jobs.observeEnd(job.model, end.kind === 'cancelled' ? 'cancelled' : 'failed', (Date.now() - ctx.submittedAt) / 1000);
      }
      return end;
    };
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
