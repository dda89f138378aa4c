// The in-process queue (embedded mode) against the JobQueue contract suite.
import { InProcessQueue } from '../../src/jobs/in-process.js';
import { jobQueueContract } from '../contract/job-queue.js';

jobQueueContract(
  'in-process',
  async ({ maxWaiting, models, execute }) =>
    new InProcessQueue({ maxWaiting, models, execute, workers: () => Object.fromEntries(models.map((m) => [m, 1])) }),
);
