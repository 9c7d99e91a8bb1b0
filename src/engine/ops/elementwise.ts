/** Broadcasting elementwise math, comparisons and activations, each with its vector-Jacobian product. */
import { type DType, isFloat } from '../dtype.ts';
import { broadcastShapes } from '../shape.ts';
import { Tensor, type TensorLike } from '../tensor.ts';
import { emit1, graphOf, lift, requireFloat, requireSameDtype, sumToShape } from './util.ts';

function binary(op: string, a: TensorLike, b: TensorLike): [Tensor, Tensor, Tensor] {
  graphOf(a, b);
  const ta = a instanceof Tensor ? a : lift(a, b as Tensor);
  const tb = lift(b, ta);
  requireSameDtype(op, ta, tb);
  const shape = broadcastShapes(ta.shape, tb.shape, op);
  return [ta, tb, emit1(ta.graph, op, [ta, tb], ta.dtype, shape)];
}

function differentiable(t: Tensor): boolean {
  return isFloat(t.dtype);
}

export function add(a: TensorLike, b: TensorLike): Tensor {
  const [x, y, out] = binary('Add', a, b);
  if (differentiable(out)) {
    out.graph.record('add', [x, y], [out], ([g]) => [sumToShape(g!, x.shape), sumToShape(g!, y.shape)]);
  }
  return out;
}

export function sub(a: TensorLike, b: TensorLike): Tensor {
  const [x, y, out] = binary('Sub', a, b);
  if (differentiable(out)) {
    out.graph.record('sub', [x, y], [out], ([g]) => [sumToShape(g!, x.shape), sumToShape(neg(g!), y.shape)]);
  }
  return out;
}

export function mul(a: TensorLike, b: TensorLike): Tensor {
  const [x, y, out] = binary('Mul', a, b);
  if (differentiable(out)) {
    out.graph.record('mul', [x, y], [out], ([g]) => [
      sumToShape(mul(g!, y), x.shape),
      sumToShape(mul(g!, x), y.shape),
    ]);
  }
  return out;
}

export function div(a: TensorLike, b: TensorLike): Tensor {
  const [x, y, out] = binary('Div', a, b);
  if (differentiable(out)) {
    out.graph.record('div', [x, y], [out], ([g]) => [
      sumToShape(div(g!, y), x.shape),
      sumToShape(neg(div(mul(g!, out), y)), y.shape),
    ]);
  }
  return out;
}

export function pow(a: TensorLike, b: TensorLike): Tensor {
  const [x, y, out] = binary('Pow', a, b);
  if (differentiable(out)) {
    out.graph.record('pow', [x, y], [out], ([g]) => [
      sumToShape(mul(g!, mul(y, pow(x, sub(y, 1)))), x.shape),
      sumToShape(mul(g!, mul(out, log(x))), y.shape),
    ]);
  }
  return out;
}

export function maximum(a: TensorLike, b: TensorLike): Tensor {
  const [x, y, out] = binary('Max', a, b);
  if (differentiable(out)) {
    out.graph.record('maximum', [x, y], [out], ([g]) => {
      const pickX = compare('GreaterOrEqual', x, y);
      return [sumToShape(where(pickX, g!, 0), x.shape), sumToShape(where(pickX, 0, g!), y.shape)];
    });
  }
  return out;
}

export function minimum(a: TensorLike, b: TensorLike): Tensor {
  const [x, y, out] = binary('Min', a, b);
  if (differentiable(out)) {
    out.graph.record('minimum', [x, y], [out], ([g]) => {
      const pickX = compare('LessOrEqual', x, y);
      return [sumToShape(where(pickX, g!, 0), x.shape), sumToShape(where(pickX, 0, g!), y.shape)];
    });
  }
  return out;
}

type CompareOp = 'Equal' | 'Greater' | 'Less' | 'GreaterOrEqual' | 'LessOrEqual';

/** Elementwise comparison; bool result, no gradient. */
export function compare(op: CompareOp, a: TensorLike, b: TensorLike): Tensor {
  const ta = a instanceof Tensor ? a : lift(a, b as Tensor);
  const tb = lift(b, ta);
  requireSameDtype(op, ta, tb);
  return emit1(ta.graph, op, [ta, tb], 'bool', broadcastShapes(ta.shape, tb.shape, op));
}

export const equal = (a: TensorLike, b: TensorLike) => compare('Equal', a, b);
export const greater = (a: TensorLike, b: TensorLike) => compare('Greater', a, b);
export const less = (a: TensorLike, b: TensorLike) => compare('Less', a, b);

export function logicalNot(x: Tensor): Tensor {
  return emit1(x.graph, 'Not', [x], 'bool', x.shape);
}

export function logicalAnd(a: Tensor, b: Tensor): Tensor {
  return emit1(a.graph, 'And', [a, b], 'bool', broadcastShapes(a.shape, b.shape, 'And'));
}

/** `cond ? a : b`, broadcasting all three. */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  if (cond.dtype !== 'bool') throw new Error(`where: condition ${cond.name} must be bool, got ${cond.dtype}`);
  const ta = a instanceof Tensor ? a : b instanceof Tensor ? lift(a, b) : cond.graph.scalar(a);
  const tb = lift(b, ta);
  requireSameDtype('where', ta, tb);
  const shape = broadcastShapes(cond.shape, broadcastShapes(ta.shape, tb.shape, 'where'), 'where');
  const out = emit1(cond.graph, 'Where', [cond, ta, tb], ta.dtype, shape);
  if (differentiable(out)) {
    out.graph.record('where', [ta, tb], [out], ([g]) => [
      sumToShape(where(cond, g!, 0), ta.shape),
      sumToShape(where(cond, 0, g!), tb.shape),
    ]);
  }
  return out;
}

function unary(op: string, x: Tensor, grad?: (g: Tensor, out: Tensor) => Tensor, name = op): Tensor {
  requireFloat(name, x);
  const out = emit1(x.graph, op, [x], x.dtype, x.shape);
  if (grad) out.graph.record(name, [x], [out], ([g]) => [grad(g!, out)]);
  return out;
}

export function neg(x: Tensor): Tensor {
  const out = emit1(x.graph, 'Neg', [x], x.dtype, x.shape);
  if (differentiable(x)) out.graph.record('neg', [x], [out], ([g]) => [neg(g!)]);
  return out;
}

export const exp = (x: Tensor): Tensor => unary('Exp', x, (g, out) => mul(g, out));
export const log = (x: Tensor): Tensor => unary('Log', x, (g) => div(g, x));
export const sqrt = (x: Tensor): Tensor => unary('Sqrt', x, (g, out) => div(mul(g, 0.5), out));
export const reciprocal = (x: Tensor): Tensor =>
  unary('Reciprocal', x, (g, out) => neg(mul(g, mul(out, out))));
export const tanh = (x: Tensor): Tensor => unary('Tanh', x, (g, out) => mul(g, sub(1, mul(out, out))));
export const sigmoid = (x: Tensor): Tensor => unary('Sigmoid', x, (g, out) => mul(g, mul(out, sub(1, out))));
export const relu = (x: Tensor): Tensor => unary('Relu', x, (g) => where(greater(x, 0), g, 0));
export const abs = (x: Tensor): Tensor => unary('Abs', x, (g) => mul(g, sign(x)));
/** erf; onnxruntime's CPU kernel is float32-only, so float64 graphs evaluate it in float32. */
export function erf(x: Tensor): Tensor {
  requireFloat('erf', x);
  const out =
    x.dtype === 'float32'
      ? emit1(x.graph, 'Erf', [x], x.dtype, x.shape)
      : x.graph.untaped(() => cast(emit1(x.graph, 'Erf', [cast(x, 'float32')], 'float32', x.shape), x.dtype));
  x.graph.record('erf', [x], [out], ([g]) => [mul(g!, mul(exp(neg(mul(x, x))), 2 / Math.sqrt(Math.PI)))]);
  return out;
}
export const square = (x: Tensor): Tensor => mul(x, x);
export const rsqrt = (x: Tensor): Tensor => reciprocal(sqrt(x));

export function sign(x: Tensor): Tensor {
  return emit1(x.graph, 'Sign', [x], x.dtype, x.shape);
}

/**
 * GELU, exact (erf) form as in BERT/ViT. Emitted as the erf expression, which onnxruntime fuses
 * into its Gelu kernel; the gradient is one fused expression instead of the tape of the parts.
 */
export function gelu(x: Tensor): Tensor {
  requireFloat('gelu', x);
  const out = x.graph.untaped(() => mul(mul(x, 0.5), add(erf(div(x, Math.SQRT2)), 1)));
  x.graph.record('gelu', [x], [out], ([g]) => {
    const cdf = mul(add(erf(mul(x, Math.SQRT1_2)), 1), 0.5);
    const pdf = mul(exp(mul(mul(x, x), -0.5)), 1 / Math.sqrt(2 * Math.PI));
    return [mul(g!, add(cdf, mul(x, pdf)))];
  });
  return out;
}

/** GELU, tanh approximation (GPT-2, "gelu_new"/"gelu_pytorch_tanh"). Differentiated through its parts. */
export function geluTanh(x: Tensor): Tensor {
  const inner = mul(add(x, mul(pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
  return mul(mul(x, 0.5), add(tanh(inner), 1));
}

/** x·σ(1.702x), the activation of OpenAI's CLIP. */
export function quickGelu(x: Tensor): Tensor {
  return mul(x, sigmoid(mul(x, 1.702)));
}

/** x·σ(x), LLaMA's MLP activation. */
export function silu(x: Tensor): Tensor {
  requireFloat('silu', x);
  const s = x.graph.untaped(() => sigmoid(x));
  const out = x.graph.untaped(() => mul(x, s));
  x.graph.record('silu', [x], [out], ([g]) => [mul(g!, mul(s, add(mul(x, sub(1, s)), 1)))]);
  return out;
}

export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  const to = { float32: 1, uint8: 2, int32: 6, int64: 7, bool: 9, float64: 11 }[dtype];
  const out = emit1(x.graph, 'Cast', [x], dtype, x.shape, { to: { kind: 'int', value: to } });
  if (isFloat(x.dtype) && isFloat(dtype)) out.graph.record('cast', [x], [out], ([g]) => [cast(g!, x.dtype)]);
  return out;
}

/** The identity whose gradient is zero: the building block of straight-through estimators. */
export function stopGradient(x: Tensor): Tensor {
  return emit1(x.graph, 'Identity', [x], x.dtype, x.shape);
}
