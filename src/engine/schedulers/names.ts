// The names of the scheduler algorithms Easel runs: the one list every layer checks against (engine, model
// folders, CLI, the API's `scheduler` field, GET /openapi.json). Pure data, so importing it pulls in no algorithm.

/** Every scheduler name Easel accepts, in the order they are documented. */
export const SCHEDULER_NAMES = Object.freeze(['euler', 'euler-ancestral', 'ddim', 'dpm-solver-multistep', 'lcm'] as const);

export type SchedulerName = (typeof SCHEDULER_NAMES)[number];

export function isSchedulerName(value: unknown): value is SchedulerName {
  return typeof value === 'string' && (SCHEDULER_NAMES as readonly string[]).includes(value);
}
