// The only file that imports onnxruntime-node: sessions, execution providers, threads, dtype conversion.
// Everything else in the engine speaks `Tensor` (float32 + dims) and never sees an ORT type.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Tensor } from '../tensor.js';
import { fuseAttention } from './onnx-attention.js';

export type ExecutionProvider = 'cpu' | 'cuda' | 'webgpu';

export interface BackendOptions {
  /** Execution provider; 'cpu' by default. */
  provider?: ExecutionProvider;
  /** Intra-op threads for the CPU provider; defaults to the machine's available parallelism. */
  threads?: number;
  /** CUDA device id when provider is 'cuda'. */
  deviceId?: number;
  /**
   * ORT graph optimisation level; 'extended' by default. 'all' adds the CPU NCHWc layout, which copies every conv
   * weight out of the memory-mapped weights file and takes seconds per model to load, for no measured gain once
   * attention is fused (bench/sd-size.ts).
   */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** ORT's CPU memory arena; off by default: it keeps a request's peak allocation after the request (bench/sd-size.ts). */
  cpuMemArena?: boolean;
  /** Rewrite unfused attention into MultiHeadAttention (flash attention on CPU); on by default. */
  fuseAttention?: boolean;
}

/** Graphs larger than this carry their weights inline: they are loaded by path, never read into a JS buffer. */
const MAX_REWRITE_BYTES = 64 * 1024 * 1024;

/** An input value: float tensors come as `Tensor`; integer tensors as typed arrays with dims. */
export type FeedValue = Tensor | { readonly ints: ArrayLike<number>; readonly dims: readonly number[] };

export interface InputInfo {
  readonly name: string;
  /** ONNX element type as ORT names it: 'float32', 'float16', 'int32', 'int64', ... */
  readonly type: string;
  /** Declared shape: numbers for fixed axes, strings for symbolic ones; empty for scalars. */
  readonly shape: ReadonlyArray<number | string>;
}

export class BackendError extends Error {
  override readonly name = 'BackendError';
}

/** Sums the time spent inside session.run, so benchmarks can compare it with the pipeline's wall time. */
export class RunTimer {
  totalMs = 0;
  calls = 0;
  reset(): void {
    this.totalMs = 0;
    this.calls = 0;
  }
}

function supportedProviders(): Set<string> {
  const backends = ort.listSupportedBackends?.() ?? [{ name: 'cpu', bundled: true }];
  // `bundled: false` means the provider's libraries are not shipped in the npm package; the CUDA one
  // is installed by onnxruntime-node's postinstall when ONNXRUNTIME_NODE_INSTALL_CUDA is set.
  return new Set(backends.map((b) => b.name));
}

function providerList(opts: BackendOptions): ort.InferenceSession.ExecutionProviderConfig[] {
  const provider = opts.provider ?? 'cpu';
  if (provider === 'cpu') return ['cpu'];
  const supported = supportedProviders();
  if (!supported.has(provider)) {
    throw new BackendError(
      `execution provider '${provider}' is not available in this onnxruntime-node build ` + `(available: ${[...supported].join(', ')})`,
    );
  }
  if (provider === 'cuda') return [{ name: 'cuda', deviceId: opts.deviceId ?? 0 }, 'cpu'];
  return [provider, 'cpu'];
}

/** One ONNX model file with its session, created once and reused until release(). */
export class OnnxModel {
  private constructor(
    readonly path: string,
    private session: ort.InferenceSession | undefined,
    readonly inputs: ReadonlyMap<string, InputInfo>,
    readonly outputNames: readonly string[],
    private readonly timer: RunTimer | undefined,
  ) {}

  static async load(path: string, opts: BackendOptions = {}, timer?: RunTimer): Promise<OnnxModel> {
    if (!existsSync(path)) throw new BackendError(`model file not found: ${path}`);
    const threads = opts.threads ?? Math.max(1, availableParallelism());
    let session: ort.InferenceSession;
    try {
      const source = opts.fuseAttention === false ? undefined : fusedGraph(path);
      const sessionOptions: ort.InferenceSession.SessionOptions = {
        executionProviders: providerList(opts),
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: opts.graphOptimizationLevel ?? 'extended',
        executionMode: 'sequential',
        enableCpuMemArena: opts.cpuMemArena ?? false,
        logSeverityLevel: 3,
        // A graph loaded from bytes finds its external weights (weights.pb) beside the file; ORT maps them, no JS copy.
      };
      if (source) sessionOptions.extra = { session: { model_external_initializers_file_folder_path: dirname(path) } };
      session = source
        ? await ort.InferenceSession.create(source, sessionOptions)
        : await ort.InferenceSession.create(path, sessionOptions);
    } catch (err) {
      if (err instanceof BackendError) throw err;
      const provider = opts.provider ?? 'cpu';
      const hint =
        provider === 'cuda'
          ? ' (the CUDA provider was not available: reinstall onnxruntime-node with ONNXRUNTIME_NODE_INSTALL_CUDA=v12, see README)'
          : provider === 'cpu'
            ? ''
            : ` (execution provider '${provider}' failed to initialise)`;
      throw new BackendError(`cannot load ${path}: ${(err as Error).message}${hint}`);
    }
    const inputs = new Map<string, InputInfo>();
    for (const meta of session.inputMetadata) {
      if (!meta.isTensor) continue;
      inputs.set(meta.name, { name: meta.name, type: meta.type, shape: meta.shape });
    }
    return new OnnxModel(path, session, inputs, [...session.outputNames], timer);
  }

  hasInput(name: string): boolean {
    return this.inputs.has(name);
  }

  input(name: string): InputInfo {
    const info = this.inputs.get(name);
    if (!info) {
      throw new BackendError(`${this.path} has no input '${name}' (inputs: ${[...this.inputs.keys()].join(', ')})`);
    }
    return info;
  }

  /** Runs the model; float outputs come back as float32 `Tensor`s whatever the model's dtype. */
  async run(feeds: Record<string, FeedValue>, outputs?: readonly string[]): Promise<Record<string, Tensor>> {
    const session = this.session;
    if (!session) throw new BackendError(`${this.path}: session already released`);
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, value] of Object.entries(feeds)) {
      ortFeeds[name] = toOrt(this.input(name), value);
    }
    const start = performance.now();
    // All outputs are computed anyway; fetch-lists were seen to return the wrong output in onnxruntime-node 1.23.
    const result = await session.run(ortFeeds);
    if (this.timer) {
      this.timer.totalMs += performance.now() - start;
      this.timer.calls++;
    }
    const out: Record<string, Tensor> = {};
    for (const [name, value] of Object.entries(result)) {
      if (!outputs || outputs.includes(name)) out[name] = fromOrt(name, value as ort.Tensor);
      (value as ort.Tensor).dispose?.();
    }
    for (const t of Object.values(ortFeeds)) t.dispose?.();
    return out;
  }

  async release(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    await s?.release();
  }
}

/** The graph with its attention fused, or undefined when nothing was fused (or the file holds its weights inline). */
function fusedGraph(path: string): Uint8Array | undefined {
  if (statSync(path).size > MAX_REWRITE_BYTES) return undefined;
  const fused = fuseAttention(readFileSync(path));
  return fused.fused > 0 ? fused.bytes : undefined;
}

function toOrt(info: InputInfo, value: FeedValue): ort.Tensor {
  const dims = [...value.dims];
  if ('data' in value) {
    switch (info.type) {
      case 'float32':
        return new ort.Tensor('float32', value.data, dims);
      case 'float16':
        return new ort.Tensor('float16', float32ToFloat16(value.data), dims);
      case 'int64':
        return new ort.Tensor(
          'int64',
          BigInt64Array.from(value.data, (v) => BigInt(Math.round(v))),
          dims,
        );
      case 'int32':
        return new ort.Tensor(
          'int32',
          Int32Array.from(value.data, (v) => Math.round(v)),
          dims,
        );
      default:
        throw new BackendError(`input '${info.name}' has unsupported type ${info.type}`);
    }
  }
  switch (info.type) {
    case 'int32':
      return new ort.Tensor('int32', Int32Array.from(value.ints), dims);
    case 'int64':
      return new ort.Tensor('int64', BigInt64Array.from(Array.from(value.ints, (v) => BigInt(v))), dims);
    case 'float32':
      return new ort.Tensor('float32', Float32Array.from(value.ints), dims);
    case 'float16':
      return new ort.Tensor('float16', float32ToFloat16(Float32Array.from(value.ints)), dims);
    default:
      throw new BackendError(`input '${info.name}' has unsupported type ${info.type}`);
  }
}

function fromOrt(name: string, value: ort.Tensor): Tensor {
  const dims = [...value.dims];
  switch (value.type) {
    case 'float32':
      return { data: new Float32Array(value.data as Float32Array), dims };
    case 'float16': {
      const raw = value.data as unknown;
      // onnxruntime-node hands float16 back as Uint16Array bits (or Float16Array where the runtime has it).
      if (raw instanceof Uint16Array) return { data: float16ToFloat32(raw), dims };
      return { data: Float32Array.from(raw as ArrayLike<number>), dims };
    }
    default:
      throw new BackendError(`output '${name}' has unsupported type ${value.type}`);
  }
}

// IEEE 754 half-precision conversion (round-to-nearest-even), for fp16 models on runtimes without Float16Array.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function float32ToFloat16(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    f32[0] = src[i];
    const x = u32[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    const e = exp - 127 + 15;
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (e <= 0) {
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      let half = mant >>> shift;
      const rem = mant & ((1 << shift) - 1);
      const halfway = 1 << (shift - 1);
      if (rem > halfway || (rem === halfway && half & 1)) half++;
      out[i] = sign | half;
      continue;
    }
    let half = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
    out[i] = sign | half;
  }
  return out;
}

export function float16ToFloat32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const h = src[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) out[i] = sign * mant * 2 ** -24;
    else if (exp === 0x1f) out[i] = mant ? NaN : sign * Infinity;
    else out[i] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return out;
}

export function availableProviders(): string[] {
  return [...supportedProviders()];
}
