/**
 * Symbolic shapes. A dimension is a number when known at trace time, or a name (`'batch'`,
 * `'seq'`, or a product such as `'batch*seq'`) when it is only known at run time. Dynamic axes
 * are what let one compiled ONNX session serve every batch size and sequence length.
 *
 * Names are compared as normalised monomials (coefficient × sorted symbols), so flattening
 * `[batch, seq, 64]` to `[-1, 64]` gives `batch*seq`, and reshaping back needs no guess.
 */
export type Dim = number | string;
export type Shape = readonly Dim[];

interface Monomial {
  coef: number;
  syms: string[];
}

function toMonomial(d: Dim): Monomial {
  if (typeof d === 'number') return { coef: d, syms: [] };
  let coef = 1;
  const syms: string[] = [];
  for (const part of d.split('*')) {
    const p = part.trim();
    if (/^\d+$/.test(p)) coef *= Number(p);
    else syms.push(p);
  }
  return { coef, syms: syms.sort() };
}

function fromMonomial(m: Monomial): Dim {
  if (m.syms.length === 0) return m.coef;
  const body = m.syms.join('*');
  return m.coef === 1 ? body : `${m.coef}*${body}`;
}

export function normDim(d: Dim): Dim {
  return fromMonomial(toMonomial(d));
}

export function dimEquals(a: Dim, b: Dim): boolean {
  return normDim(a) === normDim(b);
}

export function isStatic(shape: Shape): shape is readonly number[] {
  return shape.every((d) => typeof d === 'number');
}

/** Product of dims, symbolic where needed. */
export function productDims(dims: Shape): Dim {
  const m: Monomial = { coef: 1, syms: [] };
  for (const d of dims) {
    const x = toMonomial(d);
    m.coef *= x.coef;
    m.syms.push(...x.syms);
  }
  m.syms.sort();
  return fromMonomial(m);
}

/** a / b as a dim, or undefined when it does not divide exactly. */
export function divideDims(a: Dim, b: Dim): Dim | undefined {
  const x = toMonomial(a);
  const y = toMonomial(b);
  if (y.coef === 0 || x.coef % y.coef !== 0) return undefined;
  const syms = [...x.syms];
  for (const s of y.syms) {
    const i = syms.indexOf(s);
    if (i < 0) return undefined;
    syms.splice(i, 1);
  }
  return fromMonomial({ coef: x.coef / y.coef, syms });
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** Numpy broadcasting over symbolic dims. Throws with both shapes named when they cannot broadcast. */
export function broadcastShapes(a: Shape, b: Shape, what = 'broadcast'): Dim[] {
  const rank = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da === 1) out.push(db);
    else if (db === 1) out.push(da);
    else if (dimEquals(da, db)) out.push(normDim(da));
    else if (typeof da === 'number' && typeof db === 'number') {
      throw new Error(`${what}: shapes ${formatShape(a)} and ${formatShape(b)} do not broadcast (axis ${i})`);
    } else if (typeof da === 'number') out.push(da);
    else if (typeof db === 'number') out.push(db);
    else {
      throw new Error(
        `${what}: shapes ${formatShape(a)} and ${formatShape(b)} have different symbolic dims '${da}' and '${db}' on axis ${i}`,
      );
    }
  }
  return out;
}

export function normAxis(axis: number, rank: number, what = 'axis'): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`${what} ${axis} is out of range for rank ${rank}`);
  return a;
}
