// JobSpec and JobEvent as JSON-safe data, so they travel through Redis (BullMQ job data, event streams) unchanged:
// the typed arrays in them (image bytes, RGBA inputs, mask weights) become tagged base64 strings and come back typed.
import { parseTraceparent } from '../telemetry/trace-context.js';
import type { JobEvent, JobSpec } from './types.js';

/** What JSON.stringify and JSON.parse carry unchanged. */
export type Wire = null | boolean | number | string | Wire[] | { [key: string]: Wire };

// Tags of the typed arrays a job holds. Float32 bytes are in the machine's order (little-endian on every platform
// Node and ONNX Runtime ship for), which both ends of a cluster share.
const U8 = '$u8';
const F32 = '$f32';

function base64(view: ArrayBufferView): string {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64');
}

/** Plain data → JSON-safe data; throws on anything a job should not hold (functions, class instances, other arrays). */
export function toWire(value: unknown, path = '$'): Wire {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`${path}: ${value} cannot cross the queue`);
    return value;
  }
  if (value instanceof Uint8Array) return { [U8]: base64(value) };
  if (value instanceof Float32Array) return { [F32]: base64(value) };
  if (Array.isArray(value)) return value.map((v, i) => toWire(v, `${path}[${i}]`));
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, Wire> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toWire(v, `${path}.${k}`);
    return out;
  }
  throw new TypeError(`${path}: a ${typeof value === 'object' ? value.constructor?.name : typeof value} cannot cross the queue`);
}

function tagged(o: { [key: string]: Wire }): Uint8Array | Float32Array | undefined {
  const keys = Object.keys(o);
  if (keys.length !== 1 || typeof o[keys[0]] !== 'string') return undefined;
  const text = o[keys[0]] as string;
  if (keys[0] === U8) {
    const b = Buffer.from(text, 'base64');
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }
  // A copy: Float32Array needs a 4-byte-aligned offset, which a pooled Buffer does not promise.
  if (keys[0] === F32) return new Float32Array(Uint8Array.from(Buffer.from(text, 'base64')).buffer);
  return undefined;
}

/** JSON-safe data → plain data with its typed arrays restored. */
export function fromWire(value: Wire): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(fromWire);
  const typed = tagged(value);
  if (typed) return typed;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromWire(v)]));
}

export const encodeJobSpec = (spec: JobSpec): Wire => toWire(spec);
/** A traceparent that does not parse is dropped (the worker then starts the job's trace afresh). */
export function decodeJobSpec(wire: Wire): JobSpec {
  const spec = fromWire(wire) as JobSpec;
  if (spec.traceparent !== undefined && !parseTraceparent(spec.traceparent)) delete spec.traceparent;
  return spec;
}

/** An event as one JSON string (a Redis stream field). */
export const encodeJobEvent = (event: JobEvent): string => JSON.stringify(toWire(event));
export const decodeJobEvent = (text: string): JobEvent => fromWire(JSON.parse(text) as Wire) as JobEvent;
