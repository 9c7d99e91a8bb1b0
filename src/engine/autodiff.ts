/**
 * Reverse-mode autodiff over the tape that ops record while tracing. The backward pass is
 * emitted into the same graph as ordinary ONNX nodes, so forward, backward and the optimizer
 * update run as one onnxruntime session call.
 */
import { attr } from './graph.ts';
import { add } from './ops/elementwise.ts';
import { zeroScalar } from './ops/reduce.ts';
import { emit1, shapeOf } from './ops/util.ts';
import { formatShape, isStatic } from './shape.ts';
import type { Tensor } from './tensor.ts';

/** Gradients of scalar `loss` with respect to each tensor of `wrt` (zeros where it does not depend on one). */
export function grad(loss: Tensor, wrt: readonly Tensor[]): Tensor[] {
  const g = loss.graph;
  if (loss.shape.some((d) => d !== 1)) {
    throw new Error(`grad: loss ${loss.name} must be a scalar, got shape ${formatShape(loss.shape)}`);
  }
  for (const w of wrt) if (w.graph !== g) throw new Error(`grad: ${w.name} belongs to another graph`);

  // Forward sweep: which values depend on any of `wrt`.
  const dependent = new Set(wrt.map((w) => w.name));
  const tape = g.tape.slice();
  const active = tape.map((entry) => {
    const on = entry.inputs.some((t) => dependent.has(t.name));
    if (on) for (const o of entry.outputs) dependent.add(o.name);
    return on;
  });
  return g.untaped(() => {
    const grads = new Map<string, Tensor>();
    grads.set(loss.name, g.scalar(1, loss.dtype));
    for (let i = tape.length - 1; i >= 0; i--) {
      if (!active[i]) continue;
      const entry = tape[i];
      const outGrads = entry.outputs.map((o) => grads.get(o.name) ?? null);
      if (outGrads.every((x) => x === null)) continue;
      const inGrads = entry.vjp(outGrads);
      entry.inputs.forEach((input, j) => {
        const gi = inGrads[j];
        if (!gi || !dependent.has(input.name)) return;
        if (gi.rank !== input.rank) {
          throw new Error(
            `grad: op ${entry.op} gave a gradient of shape ${formatShape(gi.shape)} for ${input.name}${formatShape(input.shape)}`,
          );
        }
        const prev = grads.get(input.name);
        grads.set(input.name, prev ? add(prev, gi) : gi);
      });
    }
    return wrt.map((w) => grads.get(w.name) ?? zerosLike(w));
  });
}

function zerosLike(x: Tensor): Tensor {
  const g = x.graph;
  const shape = isStatic(x.shape) ? g.ints(x.shape) : shapeOf(x);
  return emit1(g, 'ConstantOfShape', [shape], x.dtype, x.shape, { value: attr.tensor(zeroScalar(x)) });
}
