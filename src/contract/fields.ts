// Typed readers for request fields that behave the same for JSON bodies and multipart forms:
// JSON values must already have the right type (explicit null = "use the default" where nullable),
// multipart text fields arrive as strings and are converted exactly where the field's type allows.
//
// The type/limit messages follow OpenAI's observed wording (see errors.ts header for sources).

import {
  decimalAboveMax,
  decimalBelowMin,
  emptyString,
  expectedOneOf,
  integerAboveMax,
  integerBelowMin,
  invalidType,
  invalidTypeUnconvertible,
  invalidValue,
  stringTooLong,
} from './errors.js';

export type Wire = 'json' | 'multipart';

/** A flat view of the request's scalar fields. */
export interface FieldReader {
  readonly wire: Wire;
  /** Field names in the order the client sent them. */
  keys(): string[];
  has(name: string): boolean;
  get(name: string): unknown;
}

export function jsonReader(body: Record<string, unknown>): FieldReader {
  return {
    wire: 'json',
    keys: () => Object.keys(body),
    has: (name) => Object.hasOwn(body, name),
    get: (name) => body[name],
  };
}

/** Multipart text fields; a repeated field arrives as an array and is refused for scalar fields. */
export function multipartReader(fields: Record<string, string | readonly string[]>): FieldReader {
  return {
    wire: 'multipart',
    keys: () => Object.keys(fields),
    has: (name) => Object.hasOwn(fields, name),
    get: (name) => fields[name],
  };
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Counts characters the way OpenAI's (Python) validator does: Unicode code points. */
export function codePointLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

interface ReadOptions {
  /** Explicit JSON null means "not given" (the spec's nullable fields). Otherwise null is a type error. */
  nullable?: boolean;
}

/** The raw value, or undefined when absent (or null on a nullable field). */
function raw(r: FieldReader, name: string, opts: ReadOptions): unknown {
  if (!r.has(name)) return undefined;
  const v = r.get(name);
  if (v === undefined) return undefined;
  if (v === null && opts.nullable) return undefined;
  return v;
}

export function readString(
  r: FieldReader,
  name: string,
  opts: ReadOptions & { minLength?: number; maxLength?: number } = {},
): string | undefined {
  const v = raw(r, name, opts);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalidType(name, 'a string', v);
  if (opts.minLength !== undefined && opts.minLength > 0 && v.length === 0) throw emptyString(name);
  if (opts.maxLength !== undefined) {
    const len = codePointLength(v);
    if (len > opts.maxLength) throw stringTooLong(name, opts.maxLength, len);
  }
  return v;
}

export function readInteger(r: FieldReader, name: string, opts: ReadOptions & { min?: number; max?: number } = {}): number | undefined {
  const v = raw(r, name, opts);
  if (v === undefined) return undefined;
  let n: number;
  if (r.wire === 'multipart' && typeof v === 'string') {
    const t = v.trim();
    if (!/^[+-]?\d+$/.test(t)) throw invalidTypeUnconvertible(name, 'integer');
    n = Number(t);
  } else {
    if (typeof v !== 'number' || !Number.isInteger(v)) throw invalidType(name, 'an integer', v);
    n = v;
  }
  if (opts.min !== undefined && n < opts.min) throw integerBelowMin(name, opts.min, n);
  if (opts.max !== undefined && n > opts.max) throw integerAboveMax(name, opts.max, n);
  return n;
}

export function readDecimal(r: FieldReader, name: string, opts: ReadOptions & { min?: number; max?: number } = {}): number | undefined {
  const v = raw(r, name, opts);
  if (v === undefined) return undefined;
  let n: number;
  if (r.wire === 'multipart' && typeof v === 'string') {
    const t = v.trim();
    if (!/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(t)) throw invalidTypeUnconvertible(name, 'decimal');
    n = Number(t);
  } else {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw invalidType(name, 'a decimal', v);
    n = v;
  }
  if (opts.min !== undefined && n < opts.min) throw decimalBelowMin(name, opts.min, n);
  if (opts.max !== undefined && n > opts.max) throw decimalAboveMax(name, opts.max, n);
  return n;
}

const TRUE_STRINGS = new Set(['true', '1']);
const FALSE_STRINGS = new Set(['false', '0']);

export function readBoolean(r: FieldReader, name: string, opts: ReadOptions = {}): boolean | undefined {
  const v = raw(r, name, opts);
  if (v === undefined) return undefined;
  if (r.wire === 'multipart' && typeof v === 'string') {
    const t = v.trim().toLowerCase();
    if (TRUE_STRINGS.has(t)) return true;
    if (FALSE_STRINGS.has(t)) return false;
    throw invalidTypeUnconvertible(name, 'boolean');
  }
  if (typeof v !== 'boolean') throw invalidType(name, 'a boolean', v);
  return v;
}

/** A string enum: wrong JSON type -> invalid_type naming the choices; unknown string -> invalid_value. */
export function readEnum<T extends string>(r: FieldReader, name: string, allowed: readonly T[], opts: ReadOptions = {}): T | undefined {
  const v = raw(r, name, opts);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalidType(name, expectedOneOf(allowed), v);
  if (!(allowed as readonly string[]).includes(v)) throw invalidValue(name, v, allowed);
  return v as T;
}
