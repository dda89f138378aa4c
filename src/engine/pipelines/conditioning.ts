// Prompt → text conditioning for the UNet: CLIP token ids through one (SD 1.x/2.x) or two (SDXL) text encoders.
// Mirrors diffusers' StableDiffusionPipeline.encode_prompt and StableDiffusionXLPipeline.encode_prompt.
import type { OnnxModel } from '../backends/onnx.js';
import { type Tensor, tensor } from '../tensor.js';
import type { ClipTokenizer } from '../tokenizers/clip.js';

export interface TextConditioning {
  /** [batch, seq, dim] */
  hiddenStates: Tensor;
  /** SDXL only: pooled embedding of the second encoder, [batch, pooledDim]. */
  pooled?: Tensor;
}

export interface TextEncoderPart {
  tokenizer: ClipTokenizer;
  model: OnnxModel;
}

/** Name of the hidden-state output to use: SDXL takes the penultimate layer (`hidden_states[-2]`). */
function penultimateOutput(model: OnnxModel): string {
  const layers = model.outputNames
    .map((n) => /^hidden_states\.(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]));
  if (layers.length < 2) return 'last_hidden_state';
  return `hidden_states.${Math.max(...layers) - 1}`;
}

async function runEncoder(part: TextEncoderPart, prompts: readonly string[], outputs: string[]): Promise<Record<string, Tensor>> {
  const len = part.tokenizer.maxLength;
  const ids = new Int32Array(prompts.length * len);
  for (const [i, p] of prompts.entries()) ids.set(part.tokenizer.encode(p).ids, i * len);
  return part.model.run({ input_ids: { ints: ids, dims: [prompts.length, len] } }, outputs);
}

/** SD 1.x / 2.x: last_hidden_state of the single CLIP text encoder. */
export async function encodeSd(part: TextEncoderPart, prompts: readonly string[]): Promise<TextConditioning> {
  const out = await runEncoder(part, prompts, ['last_hidden_state']);
  return { hiddenStates: out.last_hidden_state };
}

/** SDXL: penultimate hidden states of both encoders concatenated on the feature axis, pooled from the second. */
export async function encodeSdxl(first: TextEncoderPart, second: TextEncoderPart, prompts: readonly string[]): Promise<TextConditioning> {
  const h1Name = penultimateOutput(first.model);
  const h2Name = penultimateOutput(second.model);
  const pooledName = second.model.outputNames.includes('text_embeds') ? 'text_embeds' : 'pooler_output';
  const o1 = await runEncoder(first, prompts, [h1Name]);
  const o2 = await runEncoder(second, prompts, [h2Name, pooledName]);
  return { hiddenStates: concatLastAxis(o1[h1Name], o2[h2Name]), pooled: o2[pooledName] };
}

/** Concatenates two [B, S, D1] and [B, S, D2] tensors into [B, S, D1 + D2]. */
export function concatLastAxis(a: Tensor, b: Tensor): Tensor {
  const [batch, seq, d1] = a.dims;
  const d2 = b.dims[2];
  if (b.dims[0] !== batch || b.dims[1] !== seq) {
    throw new Error(`cannot concatenate hidden states ${a.dims.join('x')} and ${b.dims.join('x')}`);
  }
  const out = new Float32Array(batch * seq * (d1 + d2));
  for (let r = 0; r < batch * seq; r++) {
    out.set(a.data.subarray(r * d1, (r + 1) * d1), r * (d1 + d2));
    out.set(b.data.subarray(r * d2, (r + 1) * d2), r * (d1 + d2) + d1);
  }
  return tensor(out, [batch, seq, d1 + d2]);
}

/** Stacks tensors along axis 0 (all must share the trailing dims). */
export function concatBatch(parts: readonly Tensor[]): Tensor {
  const rest = parts[0].dims.slice(1);
  const total = parts.reduce((s, p) => s + p.dims[0], 0);
  const out = new Float32Array(parts.reduce((s, p) => s + p.data.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p.data, offset);
    offset += p.data.length;
  }
  return tensor(out, [total, ...rest]);
}

/** Rows [start, end) of a batch tensor, as a view-free copy-less subarray. */
export function sliceBatch(t: Tensor, start: number, end: number): Tensor {
  const per = t.data.length / t.dims[0];
  return tensor(t.data.subarray(start * per, end * per), [end - start, ...t.dims.slice(1)]);
}

/** Repeats each row of a [1, ...] or [B, ...] tensor so the batch becomes `count` (rows cycle). */
export function repeatBatch(t: Tensor, count: number): Tensor {
  const per = t.data.length / t.dims[0];
  const out = new Float32Array(per * count);
  for (let i = 0; i < count; i++) out.set(t.data.subarray((i % t.dims[0]) * per, ((i % t.dims[0]) + 1) * per), i * per);
  return tensor(out, [count, ...t.dims.slice(1)]);
}
