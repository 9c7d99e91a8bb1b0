/**
 * AdamW (decoupled weight decay, Loshchilov & Hutter) with clipping by global gradient norm,
 * emitted as graph nodes so the update runs inside the same onnxruntime call as forward and
 * backward. Step-dependent scalars (learning rate, bias corrections) are fed per step, so the
 * schedule never forces a new graph.
 */
import type { Graph } from './graph.ts';
import { add, div, minimum, mul, sqrt, sub } from './ops/elementwise.ts';
import { sumSquares } from './ops/reduce.ts';
import type { Tensor } from './tensor.ts';

export type Schedule = (step: number) => number;

export interface AdamWConfig {
  /** Learning rate, or a schedule of the 1-based step number. */
  lr: number | Schedule;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay, applied to parameters the trainer's `decay` rule selects. */
  weightDecay?: number;
  /** Clip the global gradient norm to this (default 1.0; 0 turns clipping off). */
  clipNorm?: number;
}

export interface ResolvedAdamW {
  lr: Schedule;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  clipNorm: number;
}

export function resolveAdamW(cfg: AdamWConfig): ResolvedAdamW {
  const lr = cfg.lr;
  const resolved = {
    lr: typeof lr === 'number' ? () => lr : lr,
    beta1: cfg.beta1 ?? 0.9,
    beta2: cfg.beta2 ?? 0.999,
    eps: cfg.eps ?? 1e-8,
    weightDecay: cfg.weightDecay ?? 0.01,
    clipNorm: cfg.clipNorm ?? 1.0,
  };
  for (const [k, v] of Object.entries({ beta1: resolved.beta1, beta2: resolved.beta2 })) {
    if (!(v >= 0 && v < 1)) throw new Error(`AdamW: ${k} must be in [0, 1), got ${v}`);
  }
  if (!(resolved.eps > 0)) throw new Error(`AdamW: eps must be > 0, got ${resolved.eps}`);
  if (!(resolved.weightDecay >= 0))
    throw new Error(`AdamW: weightDecay must be >= 0, got ${resolved.weightDecay}`);
  if (!(resolved.clipNorm >= 0)) throw new Error(`AdamW: clipNorm must be >= 0, got ${resolved.clipNorm}`);
  return resolved;
}

/** Linear warm-up to `peak` over `warmupSteps`, then cosine decay to `min` at `totalSteps`. */
export function warmupCosine(options: {
  peak: number;
  warmupSteps: number;
  totalSteps: number;
  min?: number;
}): Schedule {
  const { peak, warmupSteps, totalSteps } = options;
  const min = options.min ?? 0;
  if (!(totalSteps > 0) || warmupSteps < 0)
    throw new Error('warmupCosine: totalSteps must be > 0 and warmupSteps >= 0');
  return (step: number) => {
    if (step <= warmupSteps && warmupSteps > 0) return (peak * step) / warmupSteps;
    const progress = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
    return min + 0.5 * (peak - min) * (1 + Math.cos(Math.PI * progress));
  };
}

/**
 * Host-side scalars for 1-based step `t`, folded PyTorch-style so each parameter costs few
 * elementwise passes: p ← p·(1 − lr·wd) − stepSize · m / (√v · invSqrtBc2 + eps).
 */
export function adamwScalars(cfg: ResolvedAdamW, t: number): AdamWScalars {
  const lr = cfg.lr(t);
  const bc1 = 1 - cfg.beta1 ** t;
  const bc2 = 1 - cfg.beta2 ** t;
  return { lr, stepSize: lr / bc1, invSqrtBc2: 1 / Math.sqrt(bc2), decayFactor: 1 - lr * cfg.weightDecay };
}

export interface AdamWScalars {
  lr: number;
  stepSize: number;
  invSqrtBc2: number;
  decayFactor: number;
}

export interface AdamWSlot {
  param: Tensor;
  grad: Tensor;
  m: Tensor;
  v: Tensor;
  decay: boolean;
}

export interface AdamWOutputs {
  params: Tensor[];
  m: Tensor[];
  v: Tensor[];
  gradNorm: Tensor;
}

/** Emit the AdamW update; `scalars` are graph inputs fed each step from `adamwScalars`. */
export function emitAdamW(
  g: Graph,
  slots: readonly AdamWSlot[],
  scalars: { stepSize: Tensor; invSqrtBc2: Tensor; decayFactor: Tensor },
  cfg: ResolvedAdamW,
): AdamWOutputs {
  return g.untaped(() => {
    let total: Tensor | null = null;
    for (const s of slots) {
      const sq = sumSquares(s.grad);
      total = total ? add(total, sq) : sq;
    }
    const gradNorm = total ? sqrt(total) : g.scalar(0);
    // Clipping folds into the moment coefficients (scalars), not into a pass over each gradient.
    const clip = cfg.clipNorm > 0 ? minimum(div(cfg.clipNorm, add(gradNorm, 1e-6)), 1) : null;
    const c1 = clip ? mul(clip, 1 - cfg.beta1) : g.scalar(1 - cfg.beta1);
    const c2 = clip ? mul(mul(clip, clip), 1 - cfg.beta2) : g.scalar(1 - cfg.beta2);
    const out: AdamWOutputs = { params: [], m: [], v: [], gradNorm };
    for (const s of slots) {
      const m = add(mul(s.m, cfg.beta1), mul(s.grad, c1));
      const v = add(mul(s.v, cfg.beta2), mul(mul(s.grad, s.grad), c2));
      const denom = add(mul(sqrt(v), scalars.invSqrtBc2), cfg.eps);
      const step = div(mul(m, scalars.stepSize), denom);
      const kept = s.decay && cfg.weightDecay > 0 ? mul(s.param, scalars.decayFactor) : s.param;
      out.params.push(sub(kept, step));
      out.m.push(m);
      out.v.push(v);
    }
    return out;
  });
}
