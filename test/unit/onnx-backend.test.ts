// The backend's fp16 conversion (exact on representable values, round-to-nearest-even, subnormals, infinities, NaN)
// and its attention rewrite into ORT's MultiHeadAttention, checked against the unfused graph in real ORT sessions.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { float16ToFloat32, float32ToFloat16, OnnxModel } from '../../src/engine/backends/onnx.js';
import { fuseAttention } from '../../src/engine/backends/onnx-attention.js';
import { MessageWriter, readFields, readNode } from '../../src/engine/backends/onnx-proto.js';

describe('float16 conversion', () => {
  it('round-trips values representable in half precision exactly', () => {
    const xs = Float32Array.from([0, -0, 1, -1, 0.5, 2, 65504, -65504, 6.103515625e-5, 2 ** -24, 0.333251953125, 1025]);
    const back = float16ToFloat32(float32ToFloat16(xs));
    expect(Array.from(back)).toEqual(Array.from(xs));
  });

  it('knows the bit patterns of well-known values', () => {
    const bits = float32ToFloat16(Float32Array.from([1, -2, 65504, Infinity, -Infinity, 2 ** -24]));
    expect(Array.from(bits)).toEqual([0x3c00, 0xc000, 0x7bff, 0x7c00, 0xfc00, 0x0001]);
    expect(Number.isNaN(float16ToFloat32(float32ToFloat16(Float32Array.of(NaN)))[0])).toBe(true);
  });

  it('rounds to nearest even and overflows to infinity', () => {
    // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: ties go to the even mantissa (1).
    const [tie, up, big] = float16ToFloat32(float32ToFloat16(Float32Array.from([1 + 2 ** -11, 1 + 3 * 2 ** -12, 1e6])));
    expect(tie).toBe(1);
    expect(up).toBe(1 + 2 ** -10);
    expect(big).toBe(Infinity);
  });

  it('keeps relative error under 2^-11 over a wide range', () => {
    let worst = 0;
    for (let e = -14; e < 15; e++) {
      for (let m = 0; m < 50; m++) {
        const x = (1 + m / 50) * 2 ** e;
        const y = float16ToFloat32(float32ToFloat16(Float32Array.of(x)))[0];
        worst = Math.max(worst, Math.abs(y - x) / x);
      }
    }
    expect(worst).toBeLessThanOrEqual(2 ** -11);
  });
});

// The attention rewrite on a graph built here in torch.onnx's export pattern (head split and merge reshapes,
// baddbmm's beta * empty term, a Cast before the second MatMul), with its projection weights in an external
// weights.pb as the diffusers ONNX layout has them: fused and unfused sessions must agree.
describe('attention fusion', () => {
  const S = 16;
  const L = 6;
  const D = 8;
  const HEADS = 2;

  const dim = (v: number | string) =>
    new MessageWriter()
      .bytes(1, typeof v === 'number' ? new MessageWriter().varint(1, v).finish() : new MessageWriter().string(2, v).finish())
      .finish();
  const valueInfo = (name: string, dims: Array<number | string>) => {
    const shape = new MessageWriter();
    for (const d of dims) shape.raw(dim(d));
    const tensorType = new MessageWriter().varint(1, 1).bytes(2, shape.finish()).finish();
    return new MessageWriter().string(1, name).bytes(2, new MessageWriter().bytes(1, tensorType).finish()).finish();
  };
  const tensorProto = (dims: number[], type: 1 | 7, raw: Uint8Array) => {
    const w = new MessageWriter();
    for (const d of dims) w.varint(1, d);
    return w.varint(2, type).bytes(9, raw).finish();
  };
  const constant = (out: string, values: number[], type: 1 | 7) => {
    const raw =
      type === 7 ? new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer) : new Uint8Array(Float32Array.from(values).buffer);
    const dims = values.length === 1 && type === 1 ? [] : [values.length];
    const attr = new MessageWriter()
      .string(1, 'value')
      .bytes(5, tensorProto(dims, type, raw))
      .varint(20, 4)
      .finish();
    return new MessageWriter().string(2, out).string(3, out).string(4, 'Constant').bytes(5, attr).finish();
  };
  const node = (op: string, inputs: string[], out: string, perm?: number[]) => {
    const w = new MessageWriter();
    for (const i of inputs) w.string(1, i);
    w.string(2, out).string(3, out).string(4, op);
    if (perm) {
      const a = new MessageWriter().string(1, 'perm');
      for (const p of perm) a.varint(8, p);
      w.bytes(5, a.varint(20, 7).finish());
    }
    return w.finish();
  };
  const externalInit = (name: string, offset: number) => {
    const entry = (k: string, v: string) => new MessageWriter().string(1, k).string(2, v).finish();
    return new MessageWriter()
      .varint(1, D)
      .varint(1, D)
      .varint(2, 1)
      .string(8, name)
      .bytes(13, entry('location', 'weights.pb'))
      .bytes(13, entry('offset', String(offset)))
      .bytes(13, entry('length', String(D * D * 4)))
      .varint(14, 1)
      .finish();
  };

  /** x [1, S, D] attends to ctx [1, L, D] with HEADS heads; the three projections are external initializers. */
  function buildModel(dir: string): string {
    const split = (src: string, p: string) => [
      node('Reshape', [src, `${p}_shape4`], `${p}_r0`),
      node('Transpose', [`${p}_r0`], `${p}_t`, [0, 2, 1, 3]),
      node('Reshape', [`${p}_t`, `${p}_shape3`], `${p}_h`),
    ];
    const nodes = [
      node('MatMul', ['x', 'wq'], 'q'),
      node('MatMul', ['ctx', 'wk'], 'k'),
      node('MatMul', ['ctx', 'wv'], 'v'),
      ...['q', 'k', 'v'].flatMap((p) => [
        constant(`${p}_shape4`, [0, 0, HEADS, D / HEADS], 7),
        constant(`${p}_shape3`, [-1, p === 'q' ? S : L, D / HEADS], 7),
      ]),
      ...split('q', 'q'),
      ...split('k', 'k'),
      ...split('v', 'v'),
      node('Transpose', ['k_h'], 'kt', [0, 2, 1]),
      node('MatMul', ['q_h', 'kt'], 'scores'),
      constant('scale', [0.35], 1),
      node('Mul', ['scores', 'scale'], 'scaled'),
      constant('empty_shape', [HEADS, S, L], 7),
      node('ConstantOfShape', ['empty_shape'], 'empty'),
      constant('beta', [0], 1),
      node('Mul', ['empty', 'beta'], 'beta_term'),
      node('Add', ['scaled', 'beta_term'], 'logits'),
      node('Softmax', ['logits'], 'probs'),
      node('Cast', ['probs'], 'probs32'),
      node('MatMul', ['probs32', 'v_h'], 'heads_out'),
      constant('merge4', [-1, HEADS, S, D / HEADS], 7),
      node('Reshape', ['heads_out', 'merge4'], 'm0'),
      node('Transpose', ['m0'], 'm1', [0, 2, 1, 3]),
      constant('merge3', [0, 0, D], 7),
      node('Reshape', ['m1', 'merge3'], 'y'),
    ];
    // Cast's `to` attribute: float.
    const castAt = nodes.findIndex((n) => new TextDecoder().decode(n).includes('probs32'));
    nodes[castAt] = new MessageWriter()
      .raw(nodes[castAt])
      .bytes(5, new MessageWriter().string(1, 'to').varint(3, 1).varint(20, 2).finish())
      .finish();
    const graph = new MessageWriter();
    for (const n of nodes) graph.bytes(1, n);
    graph.string(2, 'attention');
    ['wq', 'wk', 'wv'].forEach((w, i) => {
      graph.bytes(5, externalInit(w, i * D * D * 4));
    });
    graph
      .bytes(11, valueInfo('x', [1, S, D]))
      .bytes(11, valueInfo('ctx', [1, L, D]))
      .bytes(12, valueInfo('y', [1, S, D]));
    const model = new MessageWriter()
      .varint(1, 8)
      .bytes(8, new MessageWriter().string(1, '').varint(2, 14).finish())
      .bytes(7, graph.finish())
      .finish();
    const weights = new Float32Array(3 * D * D).map((_, i) => Math.sin(i * 0.7) * 0.5);
    writeFileSync(join(dir, 'weights.pb'), new Uint8Array(weights.buffer));
    const path = join(dir, 'model.onnx');
    writeFileSync(path, model);
    return path;
  }

  const opsOf = (bytes: Uint8Array) => {
    const graph = readFields(bytes).find((f) => f.num === 7)!;
    return readFields(bytes, graph.start, graph.end)
      .filter((f) => f.num === 1)
      .map((f) => readNode(bytes, f).opType);
  };

  it('replaces the exported pattern with one MultiHeadAttention and drops the dead shape nodes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'easel-attn-'));
    try {
      const bytes = readFileSync(buildModel(dir));
      const fused = fuseAttention(bytes);
      expect(fused.fused).toBe(1);
      const ops = opsOf(fused.bytes);
      expect(ops.filter((o) => o === 'MultiHeadAttention')).toHaveLength(1);
      expect(ops).not.toContain('Softmax');
      expect(ops).not.toContain('ConstantOfShape');
      expect(ops.filter((o) => o === 'MatMul')).toHaveLength(3);
      const opsets = readFields(fused.bytes)
        .filter((f) => f.num === 8)
        .map((f) => new TextDecoder().decode(fused.bytes.subarray(f.start, f.end)));
      expect(opsets.some((o) => o.includes('com.microsoft'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives the same outputs as the unfused graph, with the external weights found beside the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'easel-attn-'));
    try {
      const path = buildModel(dir);
      const fusedModel = await OnnxModel.load(path, { threads: 1 });
      const plainModel = await OnnxModel.load(path, { threads: 1, fuseAttention: false });
      const x = { data: new Float32Array(S * D).map((_, i) => Math.cos(i * 0.3)), dims: [1, S, D] };
      const ctx = { data: new Float32Array(L * D).map((_, i) => Math.sin(i * 1.1)), dims: [1, L, D] };
      const a = (await fusedModel.run({ x, ctx })).y;
      const b = (await plainModel.run({ x, ctx })).y;
      await Promise.all([fusedModel.release(), plainModel.release()]);
      expect(a.dims).toEqual([1, S, D]);
      let worst = 0;
      let spread = 0;
      for (let i = 0; i < a.data.length; i++) {
        worst = Math.max(worst, Math.abs(a.data[i] - b.data[i]));
        spread = Math.max(spread, Math.abs(b.data[i] - b.data[0]));
      }
      expect(spread).toBeGreaterThan(0.01);
      expect(worst).toBeLessThan(1e-5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('leaves a graph without the pattern untouched', () => {
    const bytes = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'tiny-sd', 'text_encoder', 'model.onnx'));
    const out = fuseAttention(bytes);
    expect(out.fused).toBe(0);
    expect(out.bytes).toBe(bytes);
  });
});
