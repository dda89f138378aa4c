// The backend's fp16 conversion (for float16 ONNX models on runtimes without Float16Array): exact on representable
// values, round-to-nearest-even, and correct for subnormals, infinities and NaN.
import { describe, expect, it } from 'vitest';
import { float16ToFloat32, float32ToFloat16 } from '../../src/engine/backends/onnx.js';

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
