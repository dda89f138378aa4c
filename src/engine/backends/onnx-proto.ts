// The few pieces of ONNX's protobuf encoding the backend rewrites graphs with: fields read lazily off the bytes, and
// nodes, attributes and opset imports written back. Everything not touched (initializers, value_info) is kept byte for byte.

/** One protobuf field: its number, wire type and the byte range of its value (length-delimited: the payload). */
export interface Field {
  readonly num: number;
  readonly wire: number;
  /** Varint value (wire type 0). */
  readonly value?: bigint;
  /** Start and end of the payload (wire 2) or of the fixed-size value (wires 1 and 5). */
  readonly start: number;
  readonly end: number;
  /** Start of the whole field, tag included, so it can be copied unchanged. */
  readonly tagStart: number;
}

export function readFields(buf: Uint8Array, start = 0, end = buf.length): Field[] {
  const out: Field[] = [];
  let p = start;
  const varint = (): bigint => {
    let r = 0n;
    let shift = 0n;
    for (;;) {
      if (p >= end) throw new Error('truncated protobuf varint');
      const b = buf[p++];
      r |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if (!(b & 0x80)) return r;
    }
  };
  while (p < end) {
    const tagStart = p;
    const key = Number(varint());
    const num = key >>> 3;
    const wire = key & 7;
    if (wire === 0) {
      const s = p;
      const value = varint();
      out.push({ num, wire, value, start: s, end: p, tagStart });
    } else if (wire === 1 || wire === 5) {
      const s = p;
      p += wire === 1 ? 8 : 4;
      out.push({ num, wire, start: s, end: p, tagStart });
    } else if (wire === 2) {
      const len = Number(varint());
      const s = p;
      p += len;
      if (p > end) throw new Error('truncated protobuf field');
      out.push({ num, wire, start: s, end: p, tagStart });
    } else {
      throw new Error(`unsupported protobuf wire type ${wire}`);
    }
  }
  return out;
}

const utf8 = new TextDecoder();
const utf8Enc = new TextEncoder();

export function fieldString(buf: Uint8Array, f: Field): string {
  return utf8.decode(buf.subarray(f.start, f.end));
}

export function fieldFloat(buf: Uint8Array, f: Field): number {
  return new DataView(buf.buffer, buf.byteOffset + f.start, 4).getFloat32(0, true);
}

function varintBytes(v: number | bigint): number[] {
  let x = BigInt(v);
  if (x < 0n) x = BigInt.asUintN(64, x);
  const out: number[] = [];
  do {
    let b = Number(x & 0x7fn);
    x >>= 7n;
    if (x > 0n) b |= 0x80;
    out.push(b);
  } while (x > 0n);
  return out;
}

/** Builds a message out of encoded fields. */
export class MessageWriter {
  private readonly parts: Uint8Array[] = [];

  raw(bytes: Uint8Array): this {
    this.parts.push(bytes);
    return this;
  }

  bytes(num: number, payload: Uint8Array): this {
    this.parts.push(Uint8Array.from([...varintBytes((num << 3) | 2), ...varintBytes(payload.length)]), payload);
    return this;
  }

  string(num: number, s: string): this {
    return this.bytes(num, utf8Enc.encode(s));
  }

  varint(num: number, v: number | bigint): this {
    this.parts.push(Uint8Array.from([...varintBytes(num << 3), ...varintBytes(v)]));
    return this;
  }

  float(num: number, v: number): this {
    const b = new Uint8Array(5 + 4);
    const tag = varintBytes((num << 3) | 5);
    b.set(tag);
    new DataView(b.buffer).setFloat32(tag.length, v, true);
    this.parts.push(b.subarray(0, tag.length + 4));
    return this;
  }

  finish(): Uint8Array {
    const total = this.parts.reduce((s, p) => s + p.length, 0);
    const out = new Uint8Array(total);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

// Field numbers from onnx/onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto).
export const MODEL = { graph: 7, opsetImport: 8 } as const;
export const GRAPH = { node: 1, initializer: 5, input: 11, output: 12 } as const;
export const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5, domain: 7 } as const;
export const ATTR = { name: 1, f: 2, i: 3, t: 5, g: 6, ints: 8, graphs: 11, type: 20 } as const;
export const TENSOR = { dims: 1, dataType: 2, floatData: 4, int64Data: 7, rawData: 9 } as const;
export const ATTR_TYPE = { float: 1, int: 2 } as const;

/** A graph node as the rewriter sees it; `raw` is its encoding, reused when the node is kept. */
export interface NodeInfo {
  readonly opType: string;
  readonly domain: string;
  readonly name: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes: ReadonlyMap<string, Field[]>;
  readonly hasSubgraph: boolean;
  readonly raw: Uint8Array;
  /** The bytes the attribute fields index into. */
  readonly buf: Uint8Array;
}

export function readNode(buf: Uint8Array, f: Field): NodeInfo {
  const inputs: string[] = [];
  const outputs: string[] = [];
  const attributes = new Map<string, Field[]>();
  let opType = '';
  let domain = '';
  let name = '';
  let hasSubgraph = false;
  for (const x of readFields(buf, f.start, f.end)) {
    if (x.num === NODE.input) inputs.push(fieldString(buf, x));
    else if (x.num === NODE.output) outputs.push(fieldString(buf, x));
    else if (x.num === NODE.opType) opType = fieldString(buf, x);
    else if (x.num === NODE.domain) domain = fieldString(buf, x);
    else if (x.num === NODE.name) name = fieldString(buf, x);
    else if (x.num === NODE.attribute) {
      const afs = readFields(buf, x.start, x.end);
      const an = afs.find((a) => a.num === ATTR.name);
      if (afs.some((a) => a.num === ATTR.g || a.num === ATTR.graphs)) hasSubgraph = true;
      if (an) attributes.set(fieldString(buf, an), afs);
    }
  }
  return { opType, domain, name, inputs, outputs, attributes, hasSubgraph, raw: buf.subarray(f.tagStart, f.end), buf };
}

/** An int attribute's value, or undefined. */
export function intAttr(node: NodeInfo, name: string): bigint | undefined {
  const a = node.attributes.get(name)?.find((x) => x.num === ATTR.i);
  return a ? BigInt.asIntN(64, a.value ?? 0n) : undefined;
}

/** An ints attribute's values (packed or not). */
export function intsAttr(node: NodeInfo, name: string): number[] | undefined {
  const fs = node.attributes.get(name);
  if (!fs) return undefined;
  const out: number[] = [];
  for (const x of fs) {
    if (x.num !== ATTR.ints) continue;
    if (x.wire === 0) out.push(Number(BigInt.asIntN(64, x.value ?? 0n)));
    else for (const y of readPackedVarints(node.buf, x)) out.push(Number(BigInt.asIntN(64, y)));
  }
  return out;
}

function readPackedVarints(buf: Uint8Array, f: Field): bigint[] {
  const out: bigint[] = [];
  let p = f.start;
  while (p < f.end) {
    let r = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[p++];
      r |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if (!(b & 0x80)) break;
    }
    out.push(r);
  }
  return out;
}

/** The numbers in a small TensorProto (a Constant's `value`): float32 or int64, raw or typed fields. */
export function tensorValues(buf: Uint8Array, start: number, end: number): number[] | undefined {
  const fs = readFields(buf, start, end);
  const type = Number(fs.find((x) => x.num === TENSOR.dataType)?.value ?? 0n);
  const raw = fs.find((x) => x.num === TENSOR.rawData);
  const view = (f: Field) => new DataView(buf.buffer, buf.byteOffset + f.start, f.end - f.start);
  if (type === 1) {
    if (raw) {
      const v = view(raw);
      return Array.from({ length: v.byteLength / 4 }, (_, i) => v.getFloat32(i * 4, true));
    }
    const out: number[] = [];
    for (const x of fs.filter((y) => y.num === TENSOR.floatData)) {
      if (x.wire === 5) out.push(fieldFloat(buf, x));
      else {
        const v = view(x);
        for (let i = 0; i < v.byteLength; i += 4) out.push(v.getFloat32(i, true));
      }
    }
    return out;
  }
  if (type === 7) {
    if (raw) {
      const v = view(raw);
      return Array.from({ length: v.byteLength / 8 }, (_, i) => Number(v.getBigInt64(i * 8, true)));
    }
    const out: number[] = [];
    for (const x of fs.filter((y) => y.num === TENSOR.int64Data)) {
      if (x.wire === 0) out.push(Number(BigInt.asIntN(64, x.value ?? 0n)));
      else for (const y of readPackedVarints(buf, x)) out.push(Number(BigInt.asIntN(64, y)));
    }
    return out;
  }
  return undefined;
}

export interface NewNode {
  opType: string;
  domain?: string;
  name: string;
  inputs: readonly string[];
  outputs: readonly string[];
  ints?: Record<string, number>;
  floats?: Record<string, number>;
}

export function encodeNode(n: NewNode): Uint8Array {
  const w = new MessageWriter();
  for (const i of n.inputs) w.string(NODE.input, i);
  for (const o of n.outputs) w.string(NODE.output, o);
  w.string(NODE.name, n.name).string(NODE.opType, n.opType);
  for (const [k, v] of Object.entries(n.ints ?? {})) {
    w.bytes(NODE.attribute, new MessageWriter().string(ATTR.name, k).varint(ATTR.i, v).varint(ATTR.type, ATTR_TYPE.int).finish());
  }
  for (const [k, v] of Object.entries(n.floats ?? {})) {
    w.bytes(NODE.attribute, new MessageWriter().string(ATTR.name, k).float(ATTR.f, v).varint(ATTR.type, ATTR_TYPE.float).finish());
  }
  if (n.domain) w.string(NODE.domain, n.domain);
  return new MessageWriter().bytes(GRAPH.node, w.finish()).finish();
}
