/** Classification metrics on host arrays (selector quality; shared with evaluation). */

/** Area under the ROC curve: the probability a random positive outscores a random negative (ties count ½). */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let positives = 0;
  let rankSum = 0;
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j < order.length && scores[order[j]] === scores[order[i]]) j++;
    const midRank = (i + j + 1) / 2; // 1-based average rank of the tie group
    for (let k = i; k < j; k++) {
      if (labels[order[k]] > 0.5) {
        positives++;
        rankSum += midRank;
      }
    }
    i = j;
  }
  const negatives = order.length - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** Precision and recall of `score > threshold` against 0/1 labels. */
export function precisionRecall(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  threshold = 0,
): { precision: number; recall: number } {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < scores.length; i++) {
    const predicted = scores[i] > threshold;
    const actual = labels[i] > 0.5;
    if (predicted && actual) tp++;
    else if (predicted) fp++;
    else if (actual) fn++;
  }
  return { precision: tp + fp ? tp / (tp + fp) : Number.NaN, recall: tp + fn ? tp / (tp + fn) : Number.NaN };
}
