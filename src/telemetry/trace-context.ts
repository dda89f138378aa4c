// W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` header an HTTP request brings (checked;
// anything invalid starts a new trace, as the spec says), the one Easel answers with, and the one a job carries.
import { randomBytes } from 'node:crypto';

export interface TraceContext {
  /** 32 lowercase hex digits, not all zero. */
  traceId: string;
  /** 16 lowercase hex digits, not all zero: the span this context names (the parent of what comes next). */
  spanId: string;
  /** Trace flags as 2 hex digits ('01': sampled). */
  flags: string;
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const HEX2 = /^[0-9a-f]{2}$/;
const ZERO32 = '0'.repeat(32);
const ZERO16 = '0'.repeat(16);

/**
 * Parses a `traceparent` value, or returns undefined when it is not valid: `version-traceid-parentid-flags`, lowercase
 * hex, ids not all zero, version not `ff`. Version 00 has exactly four fields; a later version may add fields after
 * the flags (the spec's forward compatibility rule), which are ignored.
 */
export function parseTraceparent(value: string | string[] | undefined): TraceContext | undefined {
  // Several headers: the spec says a receiver may not pick one.
  if (typeof value !== 'string' || value.length > 512) return undefined;
  const parts = value.trim().split('-');
  if (parts.length < 4) return undefined;
  const [version, traceId, spanId, flags] = parts;
  if (!HEX2.test(version) || version === 'ff') return undefined;
  if (version === '00' && parts.length !== 4) return undefined;
  if (!HEX32.test(traceId) || traceId === ZERO32 || !HEX16.test(spanId) || spanId === ZERO16 || !HEX2.test(flags)) return undefined;
  return { traceId, spanId, flags };
}

export function formatTraceparent(t: TraceContext): string {
  return `00-${t.traceId}-${t.spanId}-${t.flags}`;
}

export function newSpanId(): string {
  return randomHex(8, ZERO16);
}

export function newTraceId(): string {
  return randomHex(16, ZERO32);
}

function randomHex(bytes: number, zero: string): string {
  for (;;) {
    const hex = randomBytes(bytes).toString('hex');
    if (hex !== zero) return hex;
  }
}

/**
 * The context of a request's own span: a child of the caller's span (same trace, new span id) when it sent a valid
 * traceparent, else the root of a new trace (sampled).
 */
export function childOf(parent: TraceContext | undefined): TraceContext {
  return { traceId: parent?.traceId ?? newTraceId(), spanId: newSpanId(), flags: parent?.flags ?? '01' };
}
