// SIGTERM's path, shared by the embedded server and a cluster API node: refuse new work, let the queue drain
// until the deadline, give the last answers a moment to be written, close every connection, then the rest.
import type { FastifyInstance } from 'fastify';
import type { JobQueue } from '../jobs/types.js';

/** After the drain deadline, how long the last answers (the 503s of jobs cut off, a result being written) may take. */
const ANSWER_GRACE_MS = 1000;

export async function drainThenClose(
  app: FastifyInstance,
  queue: Pick<JobQueue, 'drain'>,
  drainMs: number,
  close: () => Promise<void>,
): Promise<void> {
  const deadline = Date.now() + drainMs;
  app.drain.begin();
  await queue.drain(drainMs);
  const settled = await app.drain.settled(Math.max(0, deadline - Date.now()) + ANSWER_GRACE_MS);
  if (!settled) app.log.warn('shutdown: some answers were still being written when the drain ended');
  app.drain.closeAll();
  await close();
}
