/** Shared test helpers: deterministic random data and finite-difference gradient checks. */
import assert from 'node:assert/strict';
import { grad } from '../../src/engine/autodiff.ts';
import type { FloatDType } from '../../src/engine/dtype.ts';
import { Graph } from '../../src/engine/graph.ts';
import { HostTensor } from '../../src/engine/host-tensor.ts';
import * as ops from '../../src/engine/ops/index.ts';
import { compile } from '../../src/engine/session.ts';
import { isStatic } from '../../src/engine/shape.ts';
import type { Tensor } from '../../src/engine/tensor.ts';

/** mulberry32: a small seeded uniform generator in [0, 1). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function uniform(shape: number[], seed: number, lo = -1, hi = 1): number[] {
  const r = rng(seed);
  return Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => lo + (hi - lo) * r());
}

export function f64(shape: number[], values: number[]): HostTensor<'float64'> {
  return new HostTensor('float64', shape, Float64Array.from(values));
}

export function f32(shape: number[], values: ArrayLike<number>): HostTensor<'float32'> {
  return new HostTensor('float32', shape, Float32Array.from(values));
}

export function i64(shape: number[], values: number[]): HostTensor<'int64'> {
  return new HostTensor('int64', shape, BigInt64Array.from(values, BigInt));
}

export interface GradCheckOptions {
  dtype?: FloatDType;
  eps?: number;
  rtol?: number;
  atol?: number;
  /**
   * Run-time inputs the build declares besides the checked parameters (held fixed, not
   * differentiated): a tensor whose shape names dynamic dims, say.
   */
  feeds?: Record<string, HostTensor>;
}

/**
 * Compare the engine's gradients of sum(f(x₀..xₙ) ⊙ R) (R a fixed random projection) with
 * central finite differences, element by element. Runs in float64 unless told otherwise.
 */
export async function gradCheck(
  build: (g: Graph, xs: Tensor[]) => Tensor,
  inputs: { shape: number[]; values: number[] }[],
  options: GradCheckOptions = {},
): Promise<void> {
  const dtype = options.dtype ?? 'float64';
  const eps = options.eps ?? (dtype === 'float64' ? 1e-6 : 1e-2);
  const rtol = options.rtol ?? (dtype === 'float64' ? 1e-6 : 2e-3);
  const atol = options.atol ?? (dtype === 'float64' ? 1e-8 : 2e-4);
  const g = new Graph(dtype);
  const xs = inputs.map((x, i) => g.param(`x${i}`, x.shape));
  const y = build(g, xs);
  if (!isStatic(y.shape)) throw new Error(`gradCheck: output shape must be static, got [${y.shape}]`);
  const yShape = [...y.shape];
  const proj = uniform(yShape, 99, 0.5, 1.5);
  const R = g.constant(dtype === 'float64' ? f64(yShape, proj) : f32(yShape, proj), 'projection');
  const loss = ops.sum(ops.mul(y, R));
  const grads = grad(loss, xs);
  const outputs: Record<string, Tensor> = { loss };
  grads.forEach((t, i) => {
    outputs[`g${i}`] = t;
  });
  const program = await compile(g, outputs);
  const make = (values: number[], shape: number[]) =>
    dtype === 'float64' ? f64(shape, values) : f32(shape, values);
  const feeds: Record<string, HostTensor> = { ...options.feeds };
  inputs.forEach((x, i) => {
    feeds[`x${i}`] = make(x.values, x.shape);
  });
  const analytic = await program.run(feeds);
  for (let i = 0; i < inputs.length; i++) {
    const base = feeds[`x${i}`];
    // A gradient of the right size but the wrong shape would pass the element-wise comparison.
    assert.deepEqual(analytic[`g${i}`].shape, inputs[i].shape, `input ${i}: shape of the engine gradient`);
    for (let j = 0; j < base.size; j++) {
      const orig = Number(base.data[j]);
      const at = async (v: number) => {
        (base.data as Float64Array)[j] = v;
        const r = await program.run(feeds, { outputs: ['loss'] });
        return Number(r.loss.data[0]);
      };
      const up = await at(orig + eps);
      const down = await at(orig - eps);
      (base.data as Float64Array)[j] = orig;
      const numeric = (up - down) / (2 * eps);
      const got = Number(analytic[`g${i}`].data[j]);
      const ok = Math.abs(got - numeric) <= atol + rtol * Math.abs(numeric);
      assert.ok(ok, `input ${i} element ${j}: engine gradient ${got}, finite difference ${numeric}`);
    }
  }
}

/** Run a forward-only graph once: build from host inputs, return named outputs. */
export async function evaluate(
  build: (g: Graph) => Record<string, Tensor>,
  feeds: Record<string, HostTensor> = {},
  dtype: FloatDType = 'float32',
): Promise<Record<string, HostTensor>> {
  const g = new Graph(dtype);
  const outs = build(g);
  const program = await compile(g, outs);
  return program.run(feeds);
}

export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol = 1e-5,
  what = 'value',
): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} vs ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    const a = Number(actual[i]);
    const e = Number(expected[i]);
    assert.ok(Math.abs(a - e) <= tol * (1 + Math.abs(e)), `${what}[${i}]: got ${a}, expected ${e}`);
  }
}
