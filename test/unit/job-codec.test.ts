// The job codec: every JobSpec and JobEvent shape survives JSON (as Redis carries it) with its typed arrays typed,
// and what cannot cross a process is refused rather than silently mangled.
import { describe, expect, it } from 'vitest';
import { decodeJobEvent, decodeJobSpec, encodeJobEvent, encodeJobSpec, fromWire, toWire } from '../../src/jobs/codec.js';
import type { JobEvent, JobSpec } from '../../src/jobs/types.js';

const editSpec: JobSpec = {
  model: 'tiny',
  request: {
    prompt: 'a red circle',
    negativePrompt: 'blur',
    width: 16,
    height: 8,
    numImages: 2,
    numInferenceSteps: 4,
    guidanceScale: 3.5,
    guidanceInterval: [100, 900],
    seed: 4_294_967_295,
    scheduler: 'euler-ancestral',
    initImage: { width: 16, height: 8, data: Uint8Array.from({ length: 16 * 8 * 4 }, (_, i) => (i * 37) % 256) },
    strength: 0.6,
    mask: Float32Array.from({ length: 16 * 8 }, (_, i) => (i % 3) / 3),
  },
  output: { width: 20, height: 10, format: 'webp', compression: 80, alpha: 'auto' },
  previewSteps: [1, 3],
  keyId: null,
  requestId: 'req_1',
};

const image = { bytes: new Uint8Array([137, 80, 78, 71, 0, 255]), format: 'png' as const, transparent: true };
const events: JobEvent[] = [
  { type: 'started', worker: 'w1' },
  { type: 'progress', step: 2, totalSteps: 4 },
  { type: 'partial', index: 0, step: 1, image },
  {
    type: 'result',
    images: [image, { ...image, bytes: new Uint8Array(0), transparent: false }],
    seed: 7,
    timings: { totalMs: 1.5, textEncoderMs: 0.1, denoiseMs: 1, vaeMs: 0.2, sessionRunMs: 1.2, queueMs: 3, encodeMs: 0.4 },
  },
  { type: 'error', kind: 'invalid_request', message: 'refused: "quotes" and \u2028 line separators' },
];

describe('job codec', () => {
  it('round-trips an edit spec through JSON with its RGBA bytes and mask weights typed', () => {
    const back = decodeJobSpec(JSON.parse(JSON.stringify(encodeJobSpec(editSpec))));
    expect(back).toEqual(editSpec);
    expect(back.request.initImage?.data).toBeInstanceOf(Uint8Array);
    expect(back.request.mask).toBeInstanceOf(Float32Array);
    expect(Array.from(back.request.mask!)).toEqual(Array.from(editSpec.request.mask!));
  });

  it('round-trips every event type, image bytes included', () => {
    for (const e of events) {
      const back = decodeJobEvent(encodeJobEvent(e));
      expect(back).toEqual(e);
      if (back.type === 'partial') expect(back.image.bytes).toBeInstanceOf(Uint8Array);
    }
  });

  it('carries views at an offset and odd alignments, and drops undefined optional fields', () => {
    const big = new Uint8Array(64).map((_, i) => i);
    const view = big.subarray(3, 11);
    expect(fromWire(toWire({ v: view }))).toEqual({ v: new Uint8Array([3, 4, 5, 6, 7, 8, 9, 10]) });
    const weights = new Float32Array(new ArrayBuffer(40), 4, 5).fill(0.25);
    expect(fromWire(JSON.parse(JSON.stringify(toWire(weights))))).toEqual(new Float32Array(5).fill(0.25));
    expect(toWire({ a: 1, b: undefined })).toEqual({ a: 1 });
  });

  it('refuses what cannot cross a process, naming where it is', () => {
    expect(() => toWire({ request: { seed: Number.NaN } })).toThrow('$.request.seed');
    expect(() => toWire({ signal: new AbortController().signal })).toThrow('$.signal: a AbortSignal');
    expect(() => toWire({ f: () => 1 })).toThrow('$.f');
    expect(() => toWire({ pixels: new Uint16Array(2) })).toThrow('$.pixels');
  });
});
