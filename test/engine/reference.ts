/**
 * Plain TypeScript reference implementations on nested loops, independent of the engine, used
 * to check its forward results on tiny shapes. Row-major arrays, shapes passed explicitly.
 */

export function matmul(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  m: number,
  k: number,
  n: number,
): number[] {
  const out = new Array(m * n).fill(0);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
      out[i * n + j] = s;
    }
  return out;
}

/** x [rows, in] · Wᵀ (W [out, in]) + b */
export function linear(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  b: ArrayLike<number> | null,
  rows: number,
  inF: number,
  outF: number,
): number[] {
  const out = new Array(rows * outF).fill(0);
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < outF; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < inF; i++) s += x[r * inF + i] * w[o * inF + i];
      out[r * outF + o] = s;
    }
  return out;
}

export function softmaxRows(x: ArrayLike<number>, rows: number, n: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let mx = -Infinity;
    for (let j = 0; j < n; j++) mx = Math.max(mx, x[r * n + j]);
    let s = 0;
    for (let j = 0; j < n; j++) s += Math.exp(x[r * n + j] - mx);
    for (let j = 0; j < n; j++) out.push(Math.exp(x[r * n + j] - mx) / s);
  }
  return out;
}

export function layerNormRows(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  b: ArrayLike<number>,
  rows: number,
  n: number,
  eps: number,
): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let mu = 0;
    for (let j = 0; j < n; j++) mu += x[r * n + j] / n;
    let v = 0;
    for (let j = 0; j < n; j++) v += (x[r * n + j] - mu) ** 2 / n;
    for (let j = 0; j < n; j++) out.push(((x[r * n + j] - mu) / Math.sqrt(v + eps)) * w[j] + b[j]);
  }
  return out;
}

export function rmsNormRows(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  rows: number,
  n: number,
  eps: number,
): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let ms = 0;
    for (let j = 0; j < n; j++) ms += x[r * n + j] ** 2 / n;
    for (let j = 0; j < n; j++) out.push((x[r * n + j] / Math.sqrt(ms + eps)) * w[j]);
  }
  return out;
}

/** Causal single-head attention, q/k/v [T, d] → [T, d]. */
export function causalAttention(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  T: number,
  d: number,
): number[] {
  const out = new Array(T * d).fill(0);
  for (let i = 0; i < T; i++) {
    const scores: number[] = [];
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let p = 0; p < d; p++) s += q[i * d + p] * k[j * d + p];
      scores.push(s / Math.sqrt(d));
    }
    const p = softmaxRows(scores, 1, scores.length);
    for (let j = 0; j <= i; j++) for (let c = 0; c < d; c++) out[i * d + c] += p[j] * v[j * d + c];
  }
  return out;
}

export function crossEntropy(logits: ArrayLike<number>, targets: number[], n: number, ignore = -100): number {
  let total = 0;
  let count = 0;
  targets.forEach((t, r) => {
    if (t === ignore) return;
    const p = softmaxRows(
      Array.from({ length: n }, (_, j) => logits[r * n + j]),
      1,
      n,
    );
    total -= Math.log(p[t]);
    count++;
  });
  return total / Math.max(count, 1);
}

export function bceWithLogits(x: number[], y: number[]): number {
  return (
    x.reduce(
      (s, xi, i) =>
        s - (y[i] * Math.log(1 / (1 + Math.exp(-xi))) + (1 - y[i]) * Math.log(1 - 1 / (1 + Math.exp(-xi)))),
      0,
    ) / x.length
  );
}

/** erf by its Maclaurin series (plenty for |x| ≤ 3 in float64). */
export function erf(x: number): number {
  let sum = 0;
  let term = x;
  for (let n = 0; n < 80; n++) {
    sum += term / (2 * n + 1);
    term *= (-x * x) / (n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

export function gelu(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}
