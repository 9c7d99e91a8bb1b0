/**
 * Stage 1: the patch selector alone. Binary cross-entropy of its per-patch logits against patch
 * pseudo-labels from exact object masks, text-guided (only the objects the statement is about),
 * with h_EOS computed by the frozen tokenizer and LLM inside the same graph. Everything but
 * `patch_selector.*` is frozen. Evaluation: held-out precision, recall and ROC AUC.
 */

import { collateSelector } from '../../data/collate.ts';
import { selectorExample } from '../../data/tasks/stage-datasets.ts';
import { compile, Graph, ops, type Tensor, warmupCosine } from '../../engine/index.ts';
import type { MavenConfig } from '../../maven/config.ts';
import {
  buildComponents,
  type MavenComponents,
  traceDiscrete,
  traceHEos,
  tracePatchFeatures,
} from '../../maven/model.ts';
import { precisionRecall, rocAuc } from '../metrics.ts';
import type { StageDefinition } from '../stage.ts';
import { batchedFrom, frozenEncoder, type MavenStageOptions, schedule } from './common.ts';

/** Selector logits [B, N] for pixels [B, 3, S, S], all frozen parts traced in. */
export function traceSelectorLogits(
  g: Graph,
  config: MavenConfig,
  c: MavenComponents,
  pixels: Tensor,
  eosId: number,
): Tensor {
  const features = tracePatchFeatures(g, config, c, pixels); // [B, N, Dv]
  const codes = traceDiscrete(g, config, c, pixels).ids; // [B, Q]
  const unified = ops.add(codes, config.textVocabSize); // visual ids in the unified vocabulary
  const eos = ops.add(ops.mul(ops.slice(unified, 1, 0, 1), 0), eosId); // [B, 1]
  const ids = ops.concat([unified, eos], 1); // [B, Q + 1]
  const positions = ops.add(
    ops.unsqueeze(ops.arange(g, ops.dimOf(ids, 1), config.seed.qformer.numQueryTokens + 1), 0),
    ops.mul(ids, 0),
  );
  const hEos = traceHEos(g, c, ids, positions); // [B, D]
  return c.selector.scores(g, features, hEos);
}

export function selectorStage(o: MavenStageOptions): StageDefinition {
  const c = buildComponents(o.config);
  const encoder = frozenEncoder(o);
  const S = o.config.vision.imageSize;
  const N = (S / o.config.vision.patchSize) ** 2;
  const collateOptions = { preprocess: encoder.preprocessConfig(), patchSize: o.config.vision.patchSize };
  const build = (g: Graph) => {
    const pixels = g.input('pixels', 'float32', ['B', 3, S, S]);
    const labels = g.input('labels', 'float32', ['B', N]);
    const logits = traceSelectorLogits(g, o.config, c, pixels, o.tokenizer.eosId);
    return { loss: ops.binaryCrossEntropyWithLogits(logits, labels), metrics: { logits } };
  };
  const feeds = (examples: ReturnType<typeof selectorExample>[]) => {
    const b = collateSelector(examples, collateOptions);
    return { pixels: b.pixels, labels: b.labels };
  };
  return {
    name: 'stage1-selector',
    description: 'patch selector only: BCE against text-guided patch labels from object masks',
    params: o.weights,
    build,
    trainable: (name) => name.startsWith('patch_selector.'),
    optimizer: { lr: warmupCosine(schedule(o)), weightDecay: 0.01 },
    steps: o.steps,
    batches: (from) =>
      batchedFrom(from, o.batchSize, (i) => selectorExample(i, { seed: o.seed, split: 'train' }), feeds),
    batchSize: () => o.batchSize,
    batchUnit: 'examples',
    evaluate: async (weights) => {
      const g = new Graph();
      const outputs = build(g);
      const program = await compile(
        g,
        { logits: outputs.metrics.logits },
        { embed: new Map([...g.params.keys()].map((n) => [n, weights.get(n)!])) },
      );
      const scores: number[] = [];
      const labels: number[] = [];
      for (let k = 0; k < 4; k++) {
        const batch = feeds(
          Array.from({ length: 16 }, (_, i) =>
            selectorExample(k * 16 + i, { seed: o.seed, split: 'heldout' }),
          ),
        );
        const r = await program.run({ pixels: batch.pixels });
        scores.push(...(r.logits.data as Float32Array));
        labels.push(...(batch.labels.data as Float32Array));
      }
      const pr = precisionRecall(scores, labels, 0);
      return {
        auc: rocAuc(scores, labels),
        precision: pr.precision,
        recall: pr.recall,
        positiveShare: labels.filter((l) => l > 0.5).length / labels.length,
      };
    },
  };
}
