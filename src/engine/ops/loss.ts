/** Losses with fused gradients: cross-entropy, binary cross-entropy on logits, InfoNCE. */
import { attr } from '../graph.ts';
import { HostTensor } from '../host-tensor.ts';
import { dimEquals, formatShape } from '../shape.ts';
import type { Tensor } from '../tensor.ts';
import {
  abs,
  add,
  cast,
  div,
  equal,
  exp,
  log,
  logicalNot,
  maximum,
  mul,
  neg,
  relu,
  sigmoid,
  sub,
  where,
} from './elementwise.ts';
import { linear } from './matmul.ts';
import { logSoftmax } from './nn.ts';
import { mean, sum } from './reduce.ts';
import { arange, dimOf, gatherElements, squeeze, transpose, unsqueeze } from './shape-ops.ts';
import { emit1, shapeOf } from './util.ts';

export interface CrossEntropyOptions {
  /** Targets equal to this are skipped (padding, prompt tokens). Default -100, as in PyTorch. */
  ignoreIndex?: number;
}

/**
 * Mean cross-entropy of `logits` [..., V] against integer `targets` [...], over the targets that
 * are not `ignoreIndex`. The gradient is (softmax − onehot) / count, one fused expression.
 */
export function crossEntropy(logits: Tensor, targets: Tensor, options: CrossEntropyOptions = {}): Tensor {
  const ignore = options.ignoreIndex ?? -100;
  const g = logits.graph;
  const lead = logits.shape.slice(0, -1);
  if (
    targets.rank !== lead.length ||
    targets.shape.some(
      (d, i) => !dimEquals(d, lead[i]) && typeof d === 'number' && typeof lead[i] === 'number',
    )
  ) {
    throw new Error(
      `crossEntropy: targets ${targets.name}${formatShape(targets.shape)} must have the leading shape of logits ${logits.name}${formatShape(logits.shape)}`,
    );
  }
  if (targets.dtype !== 'int64')
    throw new Error(`crossEntropy: targets ${targets.name} must be int64, got ${targets.dtype}`);
  const parts = g.untaped(() => {
    const lsm = logSoftmax(logits, -1);
    const valid = logicalNot(equal(targets, ignore));
    const idx = unsqueeze(where(valid, targets, g.scalar(0, 'int64')), -1);
    const picked = squeeze(gatherElements(lsm, idx, -1), -1);
    const weight = cast(valid, logits.dtype);
    const count = maximum(sum(weight), 1);
    const loss = neg(div(sum(mul(picked, weight)), count));
    return { lsm, idx, weight, count, loss };
  });
  g.record('crossEntropy', [logits], [parts.loss], ([grad]) => {
    const ones = emit1(g, 'ConstantOfShape', [shapeOf(parts.idx)], logits.dtype, parts.idx.shape, {
      value: attr.tensor(
        logits.dtype === 'float64'
          ? new HostTensor('float64', [1], Float64Array.of(1))
          : new HostTensor('float32', [1], Float32Array.of(1)),
      ),
    });
    const probs = exp(parts.lsm);
    const minusOnehot = emit1(
      g,
      'ScatterElements',
      [probs, parts.idx, neg(ones)],
      logits.dtype,
      logits.shape,
      {
        axis: attr.int(-1),
        reduction: attr.string('add'),
      },
    );
    const scale = unsqueeze(mul(parts.weight, div(grad!, parts.count)), -1);
    return [mul(minusOnehot, scale)];
  });
  return parts.loss;
}

/**
 * Mean binary cross-entropy of `logits` against 0/1 (or soft) `labels` (data: no gradient flows
 * to them), computed stably as
 * max(x,0) − x·y + log(1 + e^−|x|). Optional `weights` (same shape, e.g. a validity mask)
 * make it a weighted mean.
 */
export function binaryCrossEntropyWithLogits(logits: Tensor, labels: Tensor, weights?: Tensor): Tensor {
  const g = logits.graph;
  const parts = g.untaped(() => {
    const perElement = add(sub(relu(logits), mul(logits, labels)), log(add(exp(neg(abs(logits))), 1)));
    if (!weights) return { loss: mean(perElement), denom: null as Tensor | null };
    const denom = maximum(sum(weights), 1e-12);
    return { loss: div(sum(mul(perElement, weights)), denom), denom };
  });
  g.record('binaryCrossEntropyWithLogits', [logits], [parts.loss], ([grad]) => {
    const diff = sub(sigmoid(logits), labels);
    if (weights && parts.denom) return [mul(mul(diff, weights), div(grad!, parts.denom))];
    const n = cast(emit1(g, 'Size', [logits], 'int64', []), logits.dtype);
    return [mul(diff, div(grad!, n))];
  });
  return parts.loss;
}

/**
 * Symmetric InfoNCE (CLIP's loss): row i of `a` [N, D] should match row i of `b` [N, D] among all
 * rows. `logitScale` multiplies the similarities (a number, or a learnable scalar tensor).
 */
export function infoNCE(a: Tensor, b: Tensor, logitScale: Tensor | number): Tensor {
  if (a.rank !== 2 || b.rank !== 2) {
    throw new Error(
      `infoNCE: a ${a.name}${formatShape(a.shape)} and b ${b.name}${formatShape(b.shape)} must be [N, D]`,
    );
  }
  const logits = mul(linear(a, b), logitScale); // [N, N]
  const targets = arange(a.graph, dimOf(a, 0), a.shape[0]);
  const lossA = crossEntropy(logits, targets);
  const lossB = crossEntropy(transpose(logits, [1, 0]), targets);
  return mul(add(lossA, lossB), 0.5);
}
