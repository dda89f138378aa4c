// Fair order for waiting jobs across clients: start-time fair queueing (Goyal, Vin and Cheng, 1996) weighted by each
// job's estimated cost, so a client flooding heavy jobs cannot starve a light one from another client.
//
// Each client ("flow": an API key, or the `user` value when auth is off) has a finish tag: the virtual time at which
// its queued work ends. A job arriving gets start = max(virtual now, its flow's finish tag) and moves the flow's
// finish tag on by its cost. The queue always hands out the waiting job with the smallest start tag (FIFO on ties),
// and virtual now becomes that job's start tag. A client that was idle therefore starts at "now": its first job runs
// next, after the one running at most; a busy client's later jobs sit further out in proportion to what it already
// asked for. Work is conserved: the engine never idles while anything waits.

import type { JobSpec } from './types.js';

/** One waiting item with its tags; exposed read-only for stats and tests. */
interface Tagged<T> {
  item: T;
  flow: string;
  start: number;
  cost: number;
  /** Arrival order, for FIFO among equal start tags. */
  seq: number;
}

export class FairQueue<T> {
  private readonly waiting: Tagged<T>[] = [];
  /** Finish tag per flow; dropped once a flow has nothing waiting and virtual time has passed it. */
  private readonly finish = new Map<string, number>();
  private virtualNow = 0;
  private seq = 0;

  get length(): number {
    return this.waiting.length;
  }

  /** Queues `item` for `flow`; `cost` is any positive measure of work (jobs/cost.ts units). */
  push(flow: string, item: T, cost: number): void {
    const weight = Number.isFinite(cost) && cost > 0 ? cost : 1;
    const start = Math.max(this.virtualNow, this.finish.get(flow) ?? 0);
    this.finish.set(flow, start + weight);
    this.waiting.push({ item, flow, start, cost: weight, seq: this.seq++ });
  }

  /** The next item in fair order, or undefined when nothing waits. */
  shift(): T | undefined {
    if (this.waiting.length === 0) return undefined;
    let best = 0;
    for (let i = 1; i < this.waiting.length; i++) {
      const a = this.waiting[i];
      const b = this.waiting[best];
      if (a.start < b.start || (a.start === b.start && a.seq < b.seq)) best = i;
    }
    const [next] = this.waiting.splice(best, 1);
    this.virtualNow = Math.max(this.virtualNow, next.start);
    this.forgetIdleFlows();
    return next.item;
  }

  /**
   * Removes a waiting item (a cancel). Its flow's later jobs keep their tags; the flow's finish tag is pulled back by the
   * cost when the removed job was its last, so a client is not charged for work it withdrew.
   */
  remove(item: T): boolean {
    const i = this.waiting.findIndex((w) => w.item === item);
    if (i < 0) return false;
    const [gone] = this.waiting.splice(i, 1);
    const flowFinish = this.finish.get(gone.flow);
    if (flowFinish !== undefined && flowFinish === gone.start + gone.cost) this.finish.set(gone.flow, gone.start);
    this.forgetIdleFlows();
    return true;
  }

  /**
   * Hands out a waiting item out of turn (a job joining another's batch): unlike remove(), its client's finish tag keeps
   * the job's cost; unlike shift(), virtual time stays at the batch head's tag, so a client that arrives next still
   * starts before the backlog of others (the batch is one turn, not a jump to its last job's tag).
   */
  take(item: T): boolean {
    const i = this.waiting.findIndex((w) => w.item === item);
    if (i < 0) return false;
    this.waiting.splice(i, 1);
    this.forgetIdleFlows();
    return true;
  }

  /** Waiting items in the order they would be handed out (for positions and Retry-After). */
  ordered(): T[] {
    return [...this.waiting].sort((a, b) => a.start - b.start || a.seq - b.seq).map((w) => w.item);
  }

  /** Items currently waiting, in arrival order. */
  items(): T[] {
    return this.waiting.map((w) => w.item);
  }

  /** A flow with nothing waiting whose finish tag is behind virtual time would start at "now" anyway: drop it. */
  private forgetIdleFlows(): void {
    for (const [flow, tag] of this.finish) {
      if (tag <= this.virtualNow && !this.waiting.some((w) => w.flow === flow)) this.finish.delete(flow);
    }
  }
}

/** Whose share a job counts against: its API key, else (auth off) the `user` it sent, else one shared anonymous flow. */
export function fairnessFlow(job: Pick<JobSpec, 'keyId' | 'user'>): string {
  if (job.keyId) return `key:${job.keyId}`;
  if (job.user) return `user:${job.user}`;
  return 'anonymous';
}
