// The fair order of waiting jobs (src/jobs/fair.ts): FIFO within a client, a newly active client served next, heavy
// work charged by its cost, cancels not charged.
import { describe, expect, it } from 'vitest';
import { FairQueue } from '../../src/jobs/fair.js';

function drain<T>(q: FairQueue<T>): T[] {
  const out: T[] = [];
  for (let next = q.shift(); next !== undefined; next = q.shift()) out.push(next);
  return out;
}

describe('FairQueue (start-time fair queueing)', () => {
  it('is first in, first out for one client', () => {
    const q = new FairQueue<string>();
    for (const id of ['a1', 'a2', 'a3']) q.push('a', id, 5);
    expect(q.length).toBe(3);
    expect(drain(q)).toEqual(['a1', 'a2', 'a3']);
    expect(q.shift()).toBeUndefined();
  });

  it('serves a light job from a second client next, however much the first has queued', () => {
    const q = new FairQueue<string>();
    for (let i = 0; i < 20; i++) q.push('flood', `heavy${i}`, 1000);
    expect(q.shift()).toBe('heavy0'); // running
    q.push('light', 'light0', 1);
    expect(q.shift()).toBe('light0');
  });

  it('puts a light job that arrives before anything ran right after the first job', () => {
    const q = new FairQueue<string>();
    for (let i = 0; i < 5; i++) q.push('flood', `heavy${i}`, 1000);
    q.push('light', 'light0', 1);
    expect(q.ordered().slice(0, 2)).toEqual(['heavy0', 'light0']);
  });

  it('shares by cost: a client with jobs ten times heavier gets one per ten of the other', () => {
    const q = new FairQueue<string>();
    for (let i = 0; i < 30; i++) q.push('small', `s${i}`, 1);
    for (let i = 0; i < 3; i++) q.push('big', `b${i}`, 10);
    const order = drain(q);
    const bigAt = order.flatMap((id, i) => (id.startsWith('b') ? [i] : []));
    // b0 starts at 0, b1 at 10, b2 at 20 in virtual time: about every eleventh slot.
    expect(bigAt).toEqual([1, 12, 23]);
  });

  it('alternates two equally loaded clients', () => {
    const q = new FairQueue<string>();
    for (let i = 0; i < 3; i++) q.push('a', `a${i}`, 4);
    for (let i = 0; i < 3; i++) q.push('b', `b${i}`, 4);
    expect(drain(q)).toEqual(['a0', 'b0', 'a1', 'b1', 'a2', 'b2']);
  });

  it('does not charge a client for a job it withdrew', () => {
    const q = new FairQueue<string>();
    q.push('a', 'a0', 1);
    q.push('b', 'b0', 100);
    expect(q.remove('b0')).toBe(true);
    expect(q.remove('b0')).toBe(false);
    q.push('b', 'b1', 1);
    q.push('a', 'a1', 1);
    expect(drain(q)).toEqual(['a0', 'b1', 'a1']);
  });

  it('treats a non-positive or non-finite cost as one unit', () => {
    const q = new FairQueue<string>();
    q.push('a', 'a0', 0);
    q.push('a', 'a1', Number.NaN);
    q.push('b', 'b0', 1);
    expect(drain(q)).toEqual(['a0', 'b0', 'a1']);
  });

  it('lists waiting items in arrival order and in the order they will run', () => {
    const q = new FairQueue<string>();
    q.push('a', 'a0', 10);
    q.push('a', 'a1', 10);
    q.push('b', 'b0', 10);
    expect(q.items()).toEqual(['a0', 'a1', 'b0']);
    expect(q.ordered()).toEqual(['a0', 'b0', 'a1']);
  });
});

describe('FairQueue.take (a job joining a batch out of turn)', () => {
  it('charges the client as if the job had run in turn', () => {
    const q = new FairQueue<string>();
    q.push('a', 'a0', 1);
    q.push('b', 'b0', 10);
    expect(q.shift()).toBe('a0');
    expect(q.take('b0')).toBe(true); // batched with a0
    expect(q.take('b0')).toBe(false);
    q.push('b', 'b1', 1);
    q.push('a', 'a1', 1);
    // b already had 10 units: a's next job goes first.
    expect(drain(q)).toEqual(['a1', 'b1']);
  });
});

describe('FairQueue: a batch is one turn', () => {
  it('does not move virtual time to the tags of the jobs that joined the head', () => {
    const q = new FairQueue<string>();
    for (let i = 1; i <= 4; i++) q.push('a', `a${i}`, 10);
    for (let i = 1; i <= 4; i++) q.push('b', `b${i}`, 10);
    expect(q.shift()).toBe('a1');
    for (const id of ['a2', 'a3', 'a4']) q.take(id); // batched with a1
    q.push('c', 'c1', 1); // arrives now: starts at a1's tag, before b's backlog
    expect(q.ordered().slice(0, 2)).toEqual(['b1', 'c1']);
  });
});
