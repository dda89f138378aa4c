// The engine's one tensor type: a float32 buffer with a shape (NCHW for images and latents).
// Kept deliberately small; onnxruntime tensors are made from it only inside backends/onnx.ts.

export interface Tensor {
  readonly data: Float32Array;
  readonly dims: readonly number[];
}

export function tensor(data: Float32Array, dims: readonly number[]): Tensor {
  const size = dims.reduce((a, b) => a * b, 1);
  if (size !== data.length) throw new Error(`tensor data has ${data.length} values, dims ${dims.join('x')} need ${size}`);
  return { data, dims: [...dims] };
}

export function zeros(dims: readonly number[]): Tensor {
  return tensor(new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
}

export function sizeOf(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}
