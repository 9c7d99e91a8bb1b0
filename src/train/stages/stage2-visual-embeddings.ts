/**
 * Stage 2: only the embedding rows of the visual vocabulary (and their LM-head rows when the head
 * is untied), on image–caption pairs as discrete tokens, both directions: image ids → caption
 * and caption → image ids. The tables are split into frozen text rows and trainable visual rows
 * (derived parameters), so text rows stay bit-identical; `finalize` stitches them back.
 */

import { captionPair } from '../../data/tasks/stage-datasets.ts';
import { type Graph, HostTensor, ops, warmupCosine } from '../../engine/index.ts';
import { buildComponents } from '../../maven/model.ts';
import { collateMultimodal, type MultimodalExample, traceMultimodalLoss } from '../multimodal.ts';
import type { StageDefinition } from '../stage.ts';
import {
  batchedFrom,
  frozenEncoder,
  type MavenStageOptions,
  pixelsOf,
  schedule,
  sequenceLayout,
} from './common.ts';

const TEXT = '@text';
const VISUAL = '@visual';

function splitRows(t: HostTensor, at: number): [HostTensor, HostTensor] {
  const [rows, width] = t.shape;
  const data = t.data as Float32Array;
  return [
    new HostTensor('float32', [at, width], data.slice(0, at * width)),
    new HostTensor('float32', [rows - at, width], data.slice(at * width)),
  ];
}

export function visualEmbeddingStage(o: MavenStageOptions): StageDefinition {
  const c = buildComponents(o.config);
  const encoder = frozenEncoder(o);
  const vt = o.config.textVocabSize;
  const vv = o.config.seed.codebookSize;
  const D = o.config.llm.hiddenSize;
  const tables = ['model.embed_tokens.weight', ...(o.config.llm.tieWordEmbeddings ? [] : ['lm_head.weight'])];
  const params = new Map(o.weights);
  for (const name of tables) {
    const [text, visual] = splitRows(o.weights.get(name)!, vt);
    params.delete(name);
    params.set(name + TEXT, text);
    params.set(name + VISUAL, visual);
  }
  const layout = sequenceLayout(encoder, o);
  const collate = async (pairs: ReturnType<typeof captionPair>[]) => {
    const codes = await encoder.encodeImages(
      pixelsOf(
        encoder,
        pairs.map((p) => p.image),
      ),
      { mode: 'discrete-only' },
    );
    const examples: MultimodalExample[] = pairs.map((pair, i) => {
      const image = {
        discreteIds: codes[i].discreteIds!,
        keptPatches: [],
        totalPatches: codes[i].totalPatches,
      };
      const caption = o.tokenizer.encode(` ${pair.caption}`);
      // Alternate directions by example: even → describe the image; odd → produce the image's ids.
      return i % 2 === 0
        ? { pieces: [[o.tokenizer.bosId], []], images: [image], answer: [...caption, o.tokenizer.eosId] }
        : {
            pieces: [[o.tokenizer.bosId, ...caption], []],
            images: [image],
            answer: [],
            lossOn: 'images' as const,
          };
    });
    const feeds = collateMultimodal(examples, layout);
    return { ids: feeds.ids, targets: feeds.targets };
  };
  return {
    name: 'stage2-visual-embeddings',
    description: `visual vocabulary rows only (${vv} codes × ${D}), discrete tokens ↔ captions, both directions`,
    params,
    build: (g: Graph) => {
      for (const name of tables) {
        g.deriveParam(name, ops.concat([g.param(name + TEXT, [vt, D]), g.param(name + VISUAL, [vv, D])], 0));
      }
      return { loss: traceMultimodalLoss(g, c, false).loss };
    },
    trainable: (name) => name.endsWith(VISUAL),
    optimizer: { lr: warmupCosine(schedule(o)), weightDecay: 0 },
    steps: o.steps,
    batches: (from) =>
      batchedFrom(
        from,
        o.batchSize,
        (i) => captionPair(i, { seed: o.seed, split: 'train', fashion: o.fashion }),
        collate,
      ),
    batchSize: (feeds) => feeds.ids.shape[0] * feeds.ids.shape[1],
    finalize: (trained) => {
      const out = new Map(trained);
      for (const name of tables) {
        const text = trained.get(name + TEXT)!;
        const visual = trained.get(name + VISUAL)!;
        const data = new Float32Array((vt + vv) * D);
        data.set(text.data as Float32Array);
        data.set(visual.data as Float32Array, vt * D);
        out.delete(name + TEXT);
        out.delete(name + VISUAL);
        out.set(name, new HostTensor('float32', [vt + vv, D], data));
      }
      return out;
    },
  };
}
