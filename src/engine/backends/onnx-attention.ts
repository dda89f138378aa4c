// Rewrites the attention that torch.onnx exports unfused (MatMul, scale, Softmax, MatMul between head split/merge
// reshapes) into ORT's com.microsoft MultiHeadAttention, whose CPU kernel is a flash attention: the [B*heads, S, S]
// score matrix (2 GB per attention at 512x512 with CFG) is never materialised. Unmatched graphs are left as they are.
import {
  ATTR,
  encodeNode,
  type Field,
  fieldString,
  GRAPH,
  intAttr,
  intsAttr,
  MessageWriter,
  MODEL,
  type NodeInfo,
  readFields,
  readNode,
  tensorValues,
} from './onnx-proto.js';

export interface FusionResult {
  /** The model bytes: rewritten when fused > 0, the input otherwise. */
  readonly bytes: Uint8Array;
  readonly fused: number;
}

const MS_DOMAIN = 'com.microsoft';

interface Match {
  q: string;
  k: string;
  v: string;
  heads: number;
  scale: number;
  /** The merged-heads [B, S, D] tensor the fused node produces in place of the final Reshape. */
  merged: string;
}

class GraphView {
  readonly producer = new Map<string, number>();
  constructor(readonly nodes: readonly NodeInfo[]) {
    nodes.forEach((n, i) => {
      for (const o of n.outputs) this.producer.set(o, i);
    });
  }

  prod(tensor: string, opType?: string): NodeInfo | undefined {
    const i = this.producer.get(tensor);
    const n = i === undefined ? undefined : this.nodes[i];
    return n && (opType === undefined || n.opType === opType) && n.domain === '' ? n : undefined;
  }

  /** The values of a tensor made by a Constant node (or a Concat/Unsqueeze of such); NaN where a part is not constant. */
  constValues(tensor: string): number[] | undefined {
    const n = this.prod(tensor);
    if (!n) return undefined;
    if (n.opType === 'Constant') {
      const t = n.attributes.get('value')?.find((x: Field) => x.num === ATTR.t);
      return t ? tensorValues(n.buf, t.start, t.end) : undefined;
    }
    if (n.opType === 'Concat') return n.inputs.flatMap((i) => this.constValues(i) ?? [Number.NaN]);
    if (n.opType === 'Unsqueeze' || n.opType === 'Identity' || n.opType === 'Cast') return this.constValues(n.inputs[0]);
    return undefined;
  }

  /** Skips Cast nodes upstream. */
  skipCastsBack(tensor: string): string {
    let t = tensor;
    for (let n = this.prod(t, 'Cast'); n; n = this.prod(t, 'Cast')) t = n.inputs[0];
    return t;
  }

  /** Reshape(Transpose[0,2,1,3](Reshape(x, [B, S, heads, d]))) → x and heads. */
  splitHeads(tensor: string): { src: string; heads: number } | undefined {
    const r1 = this.prod(tensor, 'Reshape');
    const t = r1 && this.prod(r1.inputs[0], 'Transpose');
    if (!t || intsAttr(t, 'perm')?.join() !== '0,2,1,3') return undefined;
    const r0 = this.prod(t.inputs[0], 'Reshape');
    if (!r0) return undefined;
    const shape = this.constValues(r0.inputs[1]);
    const heads = shape?.length === 4 ? shape[2] : Number.NaN;
    if (!Number.isInteger(heads) || heads < 1) return undefined;
    return { src: r0.inputs[0], heads };
  }

  /** The scores tensor and scale behind a Softmax input: Mul(MatMul, c), optionally + Mul(ConstantOfShape, 0). */
  scaledScores(tensor: string): { scores: string; scale: number } | undefined {
    let t = this.skipCastsBack(tensor);
    const add = this.prod(t, 'Add');
    if (add) {
      const zeroSide = add.inputs.findIndex((i) => this.isZeroTimesAnything(i));
      if (zeroSide < 0) return undefined;
      t = add.inputs[1 - zeroSide];
    }
    const mul = this.prod(t, 'Mul');
    if (!mul) return undefined;
    for (const side of [0, 1]) {
      const c = this.constValues(mul.inputs[1 - side]);
      if (c?.length === 1 && Number.isFinite(c[0]) && this.prod(mul.inputs[side], 'MatMul'))
        return { scores: mul.inputs[side], scale: c[0] };
    }
    return undefined;
  }

  /** baddbmm's beta * empty term with beta = 0, as torch exports it: Mul(ConstantOfShape(...), 0). */
  private isZeroTimesAnything(tensor: string): boolean {
    const mul = this.prod(tensor, 'Mul');
    if (!mul) return false;
    return mul.inputs.some((i) => {
      const c = this.constValues(i);
      return c?.length === 1 && c[0] === 0 && mul.inputs.some((j) => j !== i && this.prod(j, 'ConstantOfShape'));
    });
  }

  match(softmax: NodeInfo, consumers: Map<string, number[]>): Match | undefined {
    const axis = intAttr(softmax, 'axis');
    if (axis !== undefined && axis !== -1n && axis !== 2n) return undefined;
    const ss = this.scaledScores(softmax.inputs[0]);
    const m1 = ss && this.prod(ss.scores, 'MatMul');
    if (!ss || !m1) return undefined;
    const q = this.splitHeads(m1.inputs[0]);
    const kt = this.prod(m1.inputs[1], 'Transpose');
    if (!q || !kt || intsAttr(kt, 'perm')?.join() !== '0,2,1') return undefined;
    const k = this.splitHeads(kt.inputs[0]);
    // Forward from the Softmax: optional Casts, then MatMul(probs, V), then the merge: Reshape, Transpose, Reshape.
    let p = softmax.outputs[0];
    let next = this.single(consumers, p);
    while (next?.opType === 'Cast') {
      p = next.outputs[0];
      next = this.single(consumers, p);
    }
    if (next?.opType !== 'MatMul' || next.inputs[0] !== p) return undefined;
    const v = this.splitHeads(next.inputs[1]);
    const ra = this.single(consumers, next.outputs[0], 'Reshape');
    const tr = ra && this.single(consumers, ra.outputs[0], 'Transpose');
    if (!tr || intsAttr(tr, 'perm')?.join() !== '0,2,1,3') return undefined;
    const rb = this.single(consumers, tr.outputs[0], 'Reshape');
    if (!rb || !k || !v || q.heads !== k.heads || q.heads !== v.heads) return undefined;
    return { q: q.src, k: k.src, v: v.src, heads: q.heads, scale: ss.scale, merged: rb.outputs[0] };
  }

  /** The one consumer of `tensor` that is not a Shape node (shape reads die with the subgraph). */
  private single(consumers: Map<string, number[]>, tensor: string, opType?: string): NodeInfo | undefined {
    const cs = (consumers.get(tensor) ?? []).map((i) => this.nodes[i]).filter((n) => n.opType !== 'Shape');
    if (cs.length !== 1 || cs[0].domain !== '') return undefined;
    return opType === undefined || cs[0].opType === opType ? cs[0] : undefined;
  }
}

/** Fuses every recognised attention block of an ONNX model (bytes of model.onnx) into MultiHeadAttention. */
export function fuseAttention(model: Uint8Array): FusionResult {
  const modelFields = readFields(model);
  const graphField = modelFields.find((f) => f.num === MODEL.graph);
  if (!graphField) return { bytes: model, fused: 0 };
  const graphFields = readFields(model, graphField.start, graphField.end);
  const nodes = graphFields.filter((f) => f.num === GRAPH.node).map((f) => readNode(model, f));
  if (nodes.some((n) => n.hasSubgraph)) return { bytes: model, fused: 0 };
  const view = new GraphView(nodes);
  const consumers = new Map<string, number[]>();
  nodes.forEach((n, i) => {
    for (const x of n.inputs) consumers.set(x, [...(consumers.get(x) ?? []), i]);
  });

  const replaced = new Map<number, Uint8Array>();
  for (const n of nodes) {
    if (n.opType !== 'Softmax' || n.domain !== '') continue;
    const m = view.match(n, consumers);
    if (!m) continue;
    const at = view.producer.get(m.merged)!;
    replaced.set(
      at,
      encodeNode({
        opType: 'MultiHeadAttention',
        domain: MS_DOMAIN,
        name: `${nodes[at].name || m.merged}/fused_attention`,
        inputs: [m.q, m.k, m.v],
        outputs: [m.merged],
        ints: { num_heads: m.heads },
        floats: { scale: m.scale },
      }),
    );
  }
  if (replaced.size === 0) return { bytes: model, fused: 0 };

  const live = liveNodes(model, graphFields, nodes, view, replaced);
  const graph = new MessageWriter();
  for (const f of graphFields) if (f.num !== GRAPH.node) graph.raw(model.subarray(f.tagStart, f.end));
  nodes.forEach((n, i) => {
    if (live.has(i)) graph.raw(replaced.get(i) ?? n.raw);
  });
  const out = new MessageWriter();
  let hasMsOpset = false;
  for (const f of modelFields) {
    if (f.num === MODEL.graph) out.bytes(MODEL.graph, graph.finish());
    else {
      if (f.num === MODEL.opsetImport && opsetDomain(model, f) === MS_DOMAIN) hasMsOpset = true;
      out.raw(model.subarray(f.tagStart, f.end));
    }
  }
  if (!hasMsOpset) out.bytes(MODEL.opsetImport, new MessageWriter().string(1, MS_DOMAIN).varint(2, 1).finish());
  return { bytes: out.finish(), fused: replaced.size };
}

function opsetDomain(buf: Uint8Array, f: Field): string {
  const d = readFields(buf, f.start, f.end).find((x) => x.num === 1);
  return d ? fieldString(buf, d) : '';
}

/** Indices of the nodes the graph outputs still depend on once `replaced` nodes take their fused inputs. */
function liveNodes(
  buf: Uint8Array,
  graphFields: readonly Field[],
  nodes: readonly NodeInfo[],
  view: GraphView,
  replaced: ReadonlyMap<number, Uint8Array>,
): Set<number> {
  const fusedInputs = new Map<number, readonly string[]>();
  for (const [i, bytes] of replaced) {
    const f = readFields(bytes)[0];
    fusedInputs.set(i, readNode(bytes, f).inputs);
  }
  const stack: string[] = [];
  for (const f of graphFields) {
    if (f.num !== GRAPH.output) continue;
    const name = readFields(buf, f.start, f.end).find((x) => x.num === 1);
    if (name) stack.push(fieldString(buf, name));
  }
  const live = new Set<number>();
  const seen = new Set<string>();
  while (stack.length > 0) {
    const t = stack.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    const i = view.producer.get(t);
    if (i === undefined || live.has(i)) continue;
    live.add(i);
    for (const x of fusedInputs.get(i) ?? nodes[i].inputs) if (x) stack.push(x);
  }
  return live;
}
