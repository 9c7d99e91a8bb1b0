/**
 * Linear probes: what a linear read-out of frozen features can tell — the ceiling the perception
 * benchmark sets beside the LLM's answers. A ridge-regression classifier in closed form,
 * one-vs-rest on standardised features:
 *
 *   X̃ = (X − μ) / σ (per column, statistics of the training rows; constant columns dropped),
 *   Y = one-hot labels, centred per class (the intercept is then the class share),
 *   W = (X̃ᵀX̃ + λI)⁻¹ X̃ᵀY  (primal, when there are no more columns than rows)
 *     = X̃ᵀ(X̃X̃ᵀ + λI)⁻¹ Y  (dual, the same W, cheaper when columns outnumber rows),
 *   prediction = argmax over classes of X̃W + intercept.
 *
 * λ is picked on a held-out tail of the training rows (validation accuracy; ties go to the larger
 * λ), then the classifier is refitted on all of them. λ is given as a multiple of the row count:
 * after standardisation every diagonal entry of X̃ᵀX̃ equals the row count, so the same factors
 * mean the same strength whatever the size of the training set.
 *
 * Also the two feature maps the benchmark probes: mean-pooled patch features and a position × code
 * one-hot of discrete ids.
 *
 * Pure math: no Node I/O.
 */

/** A dense row-major matrix. */
export interface Matrix {
  rows: number;
  cols: number;
  /** rows·cols values, row-major. */
  data: Float64Array;
}

export function matrix(rows: number, cols: number, data?: Float64Array): Matrix {
  if (!Number.isInteger(rows) || rows < 0 || !Number.isInteger(cols) || cols < 0)
    throw new Error(`matrix: bad shape ${rows}×${cols}`);
  const values = data ?? new Float64Array(rows * cols);
  if (values.length !== rows * cols)
    throw new Error(`matrix: ${values.length} values for a ${rows}×${cols} matrix`);
  return { rows, cols, data: values };
}

/** Rows `from`..`to` (exclusive) of `x`, sharing its storage. */
export function rowRange(x: Matrix, from: number, to: number): Matrix {
  return matrix(to - from, x.cols, x.data.subarray(from * x.cols, to * x.cols));
}

/** Per-column standardisation learnt from training rows. */
export interface Standardizer {
  /** Input columns kept (the others are constant on the training rows and carry nothing). */
  columns: Int32Array;
  /** Mean and 1 / standard deviation of each kept column. */
  mean: Float64Array;
  inverseStd: Float64Array;
}

/** Column means and standard deviations of `x`; columns with (numerically) zero variance are dropped. */
export function fitStandardizer(x: Matrix): Standardizer {
  if (x.rows === 0) throw new Error('fitStandardizer: no rows');
  const sum = new Float64Array(x.cols);
  for (let r = 0; r < x.rows; r++) {
    const row = x.data.subarray(r * x.cols, (r + 1) * x.cols);
    for (let c = 0; c < x.cols; c++) sum[c] += row[c];
  }
  const mean = sum.map((s) => s / x.rows);
  const squares = new Float64Array(x.cols);
  for (let r = 0; r < x.rows; r++) {
    const row = x.data.subarray(r * x.cols, (r + 1) * x.cols);
    for (let c = 0; c < x.cols; c++) {
      const d = row[c] - mean[c];
      squares[c] += d * d;
    }
  }
  const columns: number[] = [];
  for (let c = 0; c < x.cols; c++) {
    const variance = squares[c] / x.rows;
    // Relative threshold: a column equal on every row up to rounding is constant.
    if (variance > 1e-12 * Math.max(1, mean[c] * mean[c])) columns.push(c);
  }
  return {
    columns: Int32Array.from(columns),
    mean: Float64Array.from(columns, (c) => mean[c]),
    inverseStd: Float64Array.from(columns, (c) => 1 / Math.sqrt(squares[c] / x.rows)),
  };
}

/** The kept columns of `x`, standardised. */
export function standardize(x: Matrix, s: Standardizer): Matrix {
  const k = s.columns.length;
  const out = new Float64Array(x.rows * k);
  for (let r = 0; r < x.rows; r++) {
    for (let j = 0; j < k; j++)
      out[r * k + j] = (x.data[r * x.cols + s.columns[j]] - s.mean[j]) * s.inverseStd[j];
  }
  return matrix(x.rows, k, out);
}

/**
 * Solves A·X = B in place for symmetric positive definite A (m×m, row-major; overwritten by its
 * Cholesky factor) and B (m×k; overwritten by X).
 */
export function choleskySolve(a: Float64Array, m: number, b: Float64Array, k: number): void {
  if (a.length !== m * m || b.length !== m * k)
    throw new Error(`choleskySolve: A has ${a.length} values for ${m}×${m}, B ${b.length} for ${m}×${k}`);
  // A = L·Lᵀ, L in the lower triangle of a.
  for (let j = 0; j < m; j++) {
    let d = a[j * m + j];
    for (let p = 0; p < j; p++) d -= a[j * m + p] * a[j * m + p];
    if (!(d > 0)) throw new Error(`choleskySolve: matrix not positive definite (pivot ${j}: ${d})`);
    const l = Math.sqrt(d);
    a[j * m + j] = l;
    for (let i = j + 1; i < m; i++) {
      let s = a[i * m + j];
      for (let p = 0; p < j; p++) s -= a[i * m + p] * a[j * m + p];
      a[i * m + j] = s / l;
    }
  }
  // L·Y = B, then Lᵀ·X = Y, column block by column block.
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < i; p++) {
      const l = a[i * m + p];
      if (l !== 0) for (let c = 0; c < k; c++) b[i * k + c] -= l * b[p * k + c];
    }
    for (let c = 0; c < k; c++) b[i * k + c] /= a[i * m + i];
  }
  for (let i = m - 1; i >= 0; i--) {
    for (let p = i + 1; p < m; p++) {
      const l = a[p * m + i];
      if (l !== 0) for (let c = 0; c < k; c++) b[i * k + c] -= l * b[p * k + c];
    }
    for (let c = 0; c < k; c++) b[i * k + c] /= a[i * m + i];
  }
}

/** A fitted one-vs-rest ridge classifier. */
export interface RidgeClassifier {
  classes: number;
  /** The ridge penalty actually used (absolute, not a factor). */
  lambda: number;
  standardizer: Standardizer;
  /** kept columns × classes, row-major. */
  weights: Float64Array;
  /** Per class: its share of the training rows (the intercept on centred features). */
  intercept: Float64Array;
}

function checkLabels(labels: ArrayLike<number>, rows: number, classes: number): void {
  if (labels.length !== rows) throw new Error(`ridge: ${labels.length} labels for ${rows} rows`);
  if (!Number.isInteger(classes) || classes < 2) throw new Error(`ridge: need ≥ 2 classes, got ${classes}`);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= classes)
      throw new Error(`ridge: label ${i} is ${y}, outside 0..${classes - 1}`);
  }
}

/**
 * Closed-form ridge regression of the one-hot labels on the standardised features, with penalty
 * λ = lambdaFactor · rows. The products are formed from the raw kept columns and the
 * standardisation applied algebraically (ZᵀZ = S(XᵀX − n·μμᵀ)S), so sparse inputs such as the
 * one-hot ids cost only their nonzeros.
 */
export function fitRidgeClassifier(
  x: Matrix,
  labels: ArrayLike<number>,
  classes: number,
  lambdaFactor: number,
): RidgeClassifier {
  checkLabels(labels, x.rows, classes);
  if (!(lambdaFactor > 0)) throw new Error(`ridge: lambda factor must be > 0, got ${lambdaFactor}`);
  const n = x.rows;
  const lambda = lambdaFactor * n;
  const standardizer = fitStandardizer(x);
  const { columns, mean, inverseStd } = standardizer;
  const d = columns.length;
  const intercept = new Float64Array(classes);
  for (let i = 0; i < n; i++) intercept[labels[i]] += 1 / n;
  // Centred targets: y_ic = [label_i = c] − share_c (so 1ᵀY = 0).
  const y = new Float64Array(n * classes);
  for (let i = 0; i < n; i++)
    for (let c = 0; c < classes; c++) y[i * classes + c] = (labels[i] === c ? 1 : 0) - intercept[c];
  const weights = new Float64Array(d * classes);
  if (d === 0) return { classes, lambda, standardizer, weights, intercept };
  // Each row's nonzero kept columns (index into `columns`) and values.
  const nonzeros = Array.from({ length: n }, (_, r) => {
    const at: number[] = [];
    const values: number[] = [];
    for (let j = 0; j < d; j++) {
      const v = x.data[r * x.cols + columns[j]];
      if (v !== 0) {
        at.push(j);
        values.push(v);
      }
    }
    return { at: Int32Array.from(at), values: Float64Array.from(values) };
  });
  if (d <= n) {
    // Primal: (ZᵀZ + λI) W = ZᵀY, with ZᵀZ = S(XᵀX − n·μμᵀ)S and ZᵀY = S·XᵀY (as 1ᵀY = 0).
    const gram = new Float64Array(d * d);
    const rhs = new Float64Array(d * classes);
    for (let r = 0; r < n; r++) {
      const { at, values } = nonzeros[r];
      for (let p = 0; p < at.length; p++) {
        const i = at[p];
        const v = values[p];
        for (let q = 0; q <= p; q++) gram[i * d + at[q]] += v * values[q];
        for (let c = 0; c < classes; c++) rhs[i * classes + c] += v * y[r * classes + c];
      }
    }
    for (let i = 0; i < d; i++) {
      for (let j = 0; j <= i; j++) {
        const g = (gram[i * d + j] - n * mean[i] * mean[j]) * inverseStd[i] * inverseStd[j];
        gram[i * d + j] = g;
        gram[j * d + i] = g;
      }
      gram[i * d + i] += lambda;
      for (let c = 0; c < classes; c++) rhs[i * classes + c] *= inverseStd[i];
    }
    choleskySolve(gram, d, rhs, classes);
    weights.set(rhs);
  } else {
    // Dual: A = (ZZᵀ + λI)⁻¹ Y, W = ZᵀA = S(XᵀA − μ·1ᵀA). With s = σ⁻², u_a = Σ_j s_j μ_j x_aj
    // and m = Σ_j s_j μ_j²: (ZZᵀ)_ab = Σ_j s_j x_aj x_bj − u_a − u_b + m.
    const s2 = inverseStd.map((v) => v * v);
    const dense = new Float64Array(d);
    const u = new Float64Array(n);
    let m = 0;
    for (let j = 0; j < d; j++) m += s2[j] * mean[j] * mean[j];
    for (let r = 0; r < n; r++) {
      const { at, values } = nonzeros[r];
      for (let p = 0; p < at.length; p++) u[r] += s2[at[p]] * mean[at[p]] * values[p];
    }
    const kernel = new Float64Array(n * n);
    for (let a = 0; a < n; a++) {
      const ra = nonzeros[a];
      for (let p = 0; p < ra.at.length; p++) dense[ra.at[p]] = s2[ra.at[p]] * ra.values[p];
      for (let b = 0; b <= a; b++) {
        const rb = nonzeros[b];
        let dot = 0;
        for (let q = 0; q < rb.at.length; q++) dot += dense[rb.at[q]] * rb.values[q];
        const k = dot - u[a] - u[b] + m;
        kernel[a * n + b] = k;
        kernel[b * n + a] = k;
      }
      kernel[a * n + a] += lambda;
      for (let p = 0; p < ra.at.length; p++) dense[ra.at[p]] = 0;
    }
    choleskySolve(kernel, n, y, classes);
    const columnSums = new Float64Array(classes);
    for (let r = 0; r < n; r++) {
      const { at, values } = nonzeros[r];
      for (let c = 0; c < classes; c++) columnSums[c] += y[r * classes + c];
      for (let p = 0; p < at.length; p++)
        for (let c = 0; c < classes; c++) weights[at[p] * classes + c] += values[p] * y[r * classes + c];
    }
    for (let i = 0; i < d; i++)
      for (let c = 0; c < classes; c++)
        weights[i * classes + c] = (weights[i * classes + c] - mean[i] * columnSums[c]) * inverseStd[i];
  }
  return { classes, lambda, standardizer, weights, intercept };
}

/** Class scores [rows × classes] of `x` (raw features, standardised here). */
export function ridgeScores(model: RidgeClassifier, x: Matrix): Matrix {
  const z = standardize(x, model.standardizer);
  const k = model.classes;
  const out = new Float64Array(x.rows * k);
  for (let r = 0; r < x.rows; r++) {
    for (let c = 0; c < k; c++) out[r * k + c] = model.intercept[c];
    for (let i = 0; i < z.cols; i++) {
      const v = z.data[r * z.cols + i];
      if (v === 0) continue;
      for (let c = 0; c < k; c++) out[r * k + c] += v * model.weights[i * k + c];
    }
  }
  return matrix(x.rows, k, out);
}

/** The highest-scoring class of each row (ties: the lower class). */
export function predictRidge(model: RidgeClassifier, x: Matrix): number[] {
  const scores = ridgeScores(model, x);
  const k = model.classes;
  return Array.from({ length: x.rows }, (_, r) => {
    let best = 0;
    for (let c = 1; c < k; c++) if (scores.data[r * k + c] > scores.data[r * k + best]) best = c;
    return best;
  });
}

/** Share of predictions equal to the labels (0 for none). */
export function accuracyOf(predicted: readonly number[], labels: ArrayLike<number>): number {
  if (predicted.length !== labels.length)
    throw new Error(`accuracyOf: ${predicted.length} predictions for ${labels.length} labels`);
  let right = 0;
  for (let i = 0; i < predicted.length; i++) if (predicted[i] === labels[i]) right++;
  return predicted.length === 0 ? 0 : right / predicted.length;
}

/** λ / rows tried by `trainRidgeProbe`: from almost none to heavy shrinkage. */
export const LAMBDA_FACTORS: readonly number[] = [1e-4, 1e-3, 1e-2, 1e-1, 1, 10];

export interface ProbeOptions {
  /** λ / rows candidates (default LAMBDA_FACTORS). */
  lambdaFactors?: readonly number[];
  /** Share of the training rows (the last ones) held out to pick λ (default 0.2). */
  validationShare?: number;
}

export interface TrainedProbe {
  classifier: RidgeClassifier;
  /** The λ / rows chosen, and each candidate's validation accuracy. */
  lambdaFactor: number;
  validation: { lambdaFactor: number; accuracy: number }[];
}

/**
 * A ridge probe with λ picked on the last `validationShare` of the rows (validation accuracy, ties
 * to the larger λ), refitted on every row. With too few rows to hold any out, the middle
 * candidate is used unvalidated.
 */
export function trainRidgeProbe(
  x: Matrix,
  labels: ArrayLike<number>,
  classes: number,
  options: ProbeOptions = {},
): TrainedProbe {
  checkLabels(labels, x.rows, classes);
  const factors = [...(options.lambdaFactors ?? LAMBDA_FACTORS)].sort((a, b) => a - b);
  if (factors.length === 0) throw new Error('trainRidgeProbe: no lambda candidates');
  const share = options.validationShare ?? 0.2;
  if (!(share > 0 && share < 1))
    throw new Error(`trainRidgeProbe: validationShare must be in (0, 1), got ${share}`);
  const held = Math.floor(x.rows * share);
  const fit = x.rows - held;
  const validation: TrainedProbe['validation'] = [];
  let chosen = factors[Math.floor((factors.length - 1) / 2)];
  if (held >= 1 && fit >= 2) {
    const fitX = rowRange(x, 0, fit);
    const fitLabels = Array.from({ length: fit }, (_, i) => labels[i]);
    const heldX = rowRange(x, fit, x.rows);
    const heldLabels = Array.from({ length: held }, (_, i) => labels[fit + i]);
    let best = -1;
    for (const f of factors) {
      const accuracy = accuracyOf(
        predictRidge(fitRidgeClassifier(fitX, fitLabels, classes, f), heldX),
        heldLabels,
      );
      validation.push({ lambdaFactor: f, accuracy });
      if (accuracy >= best) {
        best = accuracy;
        chosen = f;
      }
    }
  }
  return { classifier: fitRidgeClassifier(x, labels, classes, chosen), lambdaFactor: chosen, validation };
}

/** Mean over tokens of features [count, tokens, dim] (row-major): one row per item. */
export function meanPool(features: ArrayLike<number>, count: number, tokens: number, dim: number): Matrix {
  if (features.length !== count * tokens * dim)
    throw new Error(`meanPool: ${features.length} values for ${count}×${tokens}×${dim}`);
  if (tokens === 0) throw new Error('meanPool: no tokens to pool');
  const out = new Float64Array(count * dim);
  for (let i = 0; i < count; i++) {
    for (let t = 0; t < tokens; t++) {
      const base = (i * tokens + t) * dim;
      for (let c = 0; c < dim; c++) out[i * dim + c] += features[base + c];
    }
    for (let c = 0; c < dim; c++) out[i * dim + c] /= tokens;
  }
  return matrix(count, dim, out);
}

/**
 * Discrete ids as a position × code one-hot: row i has a 1 at column p·codebookSize + ids[i][p]
 * for each position p (so the same code at two positions are two features).
 */
export function oneHotIds(ids: readonly (readonly number[])[], codebookSize: number): Matrix {
  const positions = ids[0]?.length ?? 0;
  const out = matrix(ids.length, positions * codebookSize);
  ids.forEach((row, i) => {
    if (row.length !== positions)
      throw new Error(`oneHotIds: row ${i} has ${row.length} ids, row 0 has ${positions}`);
    row.forEach((code, p) => {
      if (!Number.isInteger(code) || code < 0 || code >= codebookSize)
        throw new Error(`oneHotIds: id ${code} (row ${i}, position ${p}) outside 0..${codebookSize - 1}`);
      out.data[i * out.cols + p * codebookSize + code] = 1;
    });
  });
  return out;
}

/** The ids back from `oneHotIds`' matrix: the hot code of each position. */
export function idsFromOneHot(x: Matrix, codebookSize: number): number[][] {
  if (x.cols % codebookSize !== 0)
    throw new Error(`idsFromOneHot: ${x.cols} columns is not a multiple of ${codebookSize}`);
  const positions = x.cols / codebookSize;
  return Array.from({ length: x.rows }, (_, i) =>
    Array.from({ length: positions }, (_, p) => {
      const base = i * x.cols + p * codebookSize;
      const hot: number[] = [];
      for (let c = 0; c < codebookSize; c++) if (x.data[base + c] === 1) hot.push(c);
      if (hot.length !== 1)
        throw new Error(`idsFromOneHot: row ${i} position ${p} has ${hot.length} hot codes`);
      return hot[0];
    }),
  );
}
