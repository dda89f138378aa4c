// The fair order of jobs/fair.ts across a cluster: start-time fair queueing with its state in Redis, so every API node
// tags jobs against the same virtual time. A job's start tag becomes its BullMQ priority (lower runs first, FIFO on
// ties), and a worker taking a job moves the model's virtual time up to that job's tag.
import type { Redis } from 'ioredis';

/** BullMQ's largest priority; tags beyond it share it (oldest first), which stays correct, only less fair. */
export const MAX_PRIORITY = 2_097_151;

/**
 * KEYS[1] the model's fair hash; ARGV: flow, cost. start = max(vt, finish[flow]); finish[flow] = start + cost.
 * Returns the start tag as a string (Lua numbers would be truncated to integers on the way back).
 */
const TAG = `
local vt = tonumber(redis.call('HGET', KEYS[1], 'vt')) or 0
local field = 'f:' .. ARGV[1]
local f = tonumber(redis.call('HGET', KEYS[1], field)) or 0
local start = math.max(vt, f)
redis.call('HSET', KEYS[1], field, tostring(start + tonumber(ARGV[2])))
redis.call('PEXPIRE', KEYS[1], 86400000)
return tostring(start)
`;

/**
 * KEYS[1] the fair hash, KEYS[2] BullMQ's prioritized set, KEYS[3] its wait list; ARGV[1] the taken job's tag,
 * ARGV[2] the rebase threshold. vt = max(vt, tag). When nothing else waits, flows whose finish tag is behind vt are
 * forgotten (they would start at vt anyway), and past the threshold every tag is shifted down by vt, so tags stay inside
 * BullMQ's priority range without changing any flow's standing.
 */
const ADVANCE = `
local vt = math.max(tonumber(redis.call('HGET', KEYS[1], 'vt')) or 0, tonumber(ARGV[1]))
if redis.call('ZCARD', KEYS[2]) == 0 and redis.call('LLEN', KEYS[3]) == 0 then
  local rebase = vt > tonumber(ARGV[2])
  local fields = redis.call('HGETALL', KEYS[1])
  for i = 1, #fields, 2 do
    local name, tag = fields[i], tonumber(fields[i + 1])
    if name ~= 'vt' then
      if tag <= vt then redis.call('HDEL', KEYS[1], name)
      elseif rebase then redis.call('HSET', KEYS[1], name, tostring(tag - vt)) end
    end
  end
  if rebase then vt = 0 end
end
redis.call('HSET', KEYS[1], 'vt', tostring(vt))
redis.call('PEXPIRE', KEYS[1], 86400000)
return 1
`;

/** Virtual time past which an idle queue's tags are shifted back towards 0 (half BullMQ's priority range). */
const REBASE_AT = MAX_PRIORITY / 2;

/** The start tag of a job of `cost` units for `flow` (jobs/in-process.ts fairnessFlow), and the flow charged. */
export async function fairTag(redis: Redis, key: string, flow: string, cost: number): Promise<number> {
  const units = Number.isFinite(cost) && cost > 0 ? cost : 1;
  return Number(await redis.eval(TAG, 1, key, flow, String(units)));
}

/** The BullMQ priority for a start tag: 1 + its whole part, capped. */
export function priorityOfTag(tag: number): number {
  return Math.min(MAX_PRIORITY, 1 + Math.floor(tag));
}

/** A worker took a job of priority `priority`: the model's virtual time reaches its tag (see ADVANCE). */
export async function advanceFairTime(
  redis: Redis,
  keys: { fair: string; prioritized: string; wait: string },
  priority: number,
): Promise<void> {
  if (!(priority > 0)) return; // a job without a fair tag (added by an older node)
  await redis.eval(ADVANCE, 3, keys.fair, keys.prioritized, keys.wait, String(priority - 1), String(REBASE_AT));
}
