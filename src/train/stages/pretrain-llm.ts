/**
 * Stage 0c: pretraining the tiny LLaMA as a plain language model on the generators' text —
 * box captions, NLVR-style statements, and task prompts with their answers (image placeholders
 * dropped) — with next-token cross-entropy on every token after BOS. MaVEn starts from a
 * pretrained LLM (Vicuna); this gives the tiny one its words and sentence shapes before it ever
 * sees an image. Text is planned, never rendered, so batches cost microseconds.
 *
 * Held-out text comes from held-out scenes only (the content split of `splits.ts`), so the
 * evaluation loss measures generalisation. The visual-code rows of the unified vocabulary are
 * in the table (and the tied LM head) but no text target uses them.
 */
import { collateTokens, IGNORE_INDEX } from '../../data/collate.ts';
import { captionBox } from '../../data/scene/captions.ts';
import { generateScene } from '../../data/scene/generator.ts';
import { Rng } from '../../data/scene/rng.ts';
import type { Scene } from '../../data/scene/scene.ts';
import { generateStatement } from '../../data/scene/statements.ts';
import { planExample, SCENE_TASK_NAMES } from '../../data/tasks/registry.ts';
import { contentKey, splitOfContent } from '../../data/tasks/splits.ts';
import { IMAGE_TOKEN, type Split } from '../../data/tasks/types.ts';
import { type Graph, HostTensor, ops } from '../../engine/index.ts';
import { buildComponents } from '../../maven/model.ts';
import type { TextTokenizer } from '../../models/tokenizer.ts';
import type { StageDefinition } from '../stage.ts';
import {
  checkSteps,
  declaredParams,
  EvalProgram,
  type PretrainOptions,
  pretrainOptimizer,
  resumableBatches,
  startingWeights,
} from './pretrain-common.ts';

export type TextKind = 'caption' | 'statement' | 'qa';

export interface PretrainText {
  kind: TextKind;
  text: string;
}

export interface TextStreamOptions {
  seed?: number;
  split?: Split;
  /** Relative weights of the kinds (default caption 2, statement 1, qa 1: captions are the most varied). */
  mix?: Partial<Record<TextKind, number>>;
}

export interface LlmPretrainOptions extends PretrainOptions {
  /** Text ids; must have exactly `config.textVocabSize` ids (the visual codes follow them). */
  tokenizer: TextTokenizer;
  /** Longest sequence in tokens, BOS and EOS included (default 160: the longest task prompt is about 120). */
  maxLength?: number;
  mix?: TextStreamOptions['mix'];
}

/** A scene whose content belongs to `split` (held-out scenes never reach training text). */
function sceneIn(rng: Rng, split: Split): Scene {
  for (let draw = 0; draw < 2000; draw++) {
    const scene = generateScene(rng);
    if (
      splitOfContent(contentKey(scene.boxes.map((objects) => ({ kind: 'box' as const, objects })))) === split
    ) {
      return scene;
    }
  }
  throw new Error(`pretrainText: no ${split} scene in 2000 draws`);
}

/** Text `index` of the stream: a pure function of (seed, split, index). */
export function pretrainText(index: number, options: TextStreamOptions = {}): PretrainText {
  const split = options.split ?? 'train';
  const seed = options.seed ?? 0;
  const mix = { caption: 2, statement: 1, qa: 1, ...options.mix };
  const rng = Rng.fromKey('maven-llm-text', seed, split, index);
  const kind = rng.weighted(Object.entries(mix).filter(([, w]) => w > 0) as [TextKind, number][]);
  if (kind === 'qa') {
    const task = rng.pick(SCENE_TASK_NAMES);
    const plan = planExample(task, split, index, { seed });
    const prompt = plan.prompt.replaceAll(IMAGE_TOKEN, ' ').replace(/\s+/g, ' ').trim();
    return { kind, text: `${prompt} ${plan.answer}` };
  }
  const scene = sceneIn(rng, split);
  if (kind === 'statement') return { kind, text: generateStatement(scene, rng).text };
  return { kind, text: captionBox(scene.boxes[rng.int(0, scene.boxes.length - 1)], scene.layout) };
}

export function* pretrainTexts(
  options: TextStreamOptions & { start?: number } = {},
): Generator<PretrainText> {
  for (let i = options.start ?? 0; ; i++) yield pretrainText(i, options);
}

/** BOS text EOS, cut to `maxLength` (a cut text keeps no EOS: it did not end there). */
export function tokenizeText(tokenizer: TextTokenizer, text: string, maxLength: number): number[] {
  return tokenizer.encode(text, { bos: true, eos: true }).slice(0, maxLength);
}

/** Feeds of one language-model batch: ids, mask, next-token targets (−100 off text), positions. */
export function collateTexts(
  texts: readonly PretrainText[],
  tokenizer: TextTokenizer,
  maxLength: number,
): Record<string, HostTensor> {
  const batch = collateTokens(
    texts.map((t) => ({ ids: tokenizeText(tokenizer, t.text, maxLength) })),
    tokenizer.padId,
  );
  const [B, T] = batch.ids.shape;
  const positions = new BigInt64Array(B * T);
  for (let i = 0; i < B * T; i++) positions[i] = BigInt(i % T);
  return {
    input_ids: batch.ids,
    attention_mask: batch.attentionMask,
    targets: batch.targets,
    position_ids: new HostTensor('int64', [B, T], positions),
  };
}

function targetCount(feeds: Record<string, HostTensor>): number {
  let n = 0;
  for (const t of feeds.targets.data as BigInt64Array) if (t !== BigInt(IGNORE_INDEX)) n++;
  return n;
}

export function llmPretrainStage(o: LlmPretrainOptions): StageDefinition {
  const stage = 'stage0-llm';
  checkSteps(stage, o);
  const config = o.config;
  if (o.tokenizer.vocabSize !== config.textVocabSize) {
    throw new Error(
      `${stage}: the tokenizer has ${o.tokenizer.vocabSize} ids, the config's text vocabulary ${config.textVocabSize}`,
    );
  }
  const maxLength = o.maxLength ?? 160;
  if (!Number.isInteger(maxLength) || maxLength < 2) {
    throw new Error(`${stage}: maxLength must be an integer ≥ 2, got ${maxLength}`);
  }
  const llm = buildComponents(config).llm;
  const seed = o.seed ?? 0;

  const forward = (g: Graph) => {
    const ids = g.input('input_ids', 'int64', ['B', 'T']);
    const mask = g.input('attention_mask', 'int64', ['B', 'T']);
    const targets = g.input('targets', 'int64', ['B', 'T']);
    const positions = g.input('position_ids', 'int64', ['B', 'T']);
    const { hidden } = llm.forward(g, llm.embedTokens(g, ids), positions, { attentionMask: mask }); // [B, T, D]
    const logits = llm.logits(g, hidden); // [B, T, V]
    const loss = ops.crossEntropy(logits, targets, { ignoreIndex: IGNORE_INDEX });
    const valid = ops.cast(ops.logicalNot(ops.equal(targets, IGNORE_INDEX)), g.floatType); // [B, T]
    const right = ops.cast(ops.equal(ops.argmax(logits, -1), targets), g.floatType); // [B, T]
    const tokens = ops.sum(valid);
    return { loss, accuracy: ops.div(ops.sum(ops.mul(right, valid)), ops.maximum(tokens, 1)), tokens };
  };
  const build = (g: Graph) => {
    const { loss, accuracy } = forward(g);
    return { loss, metrics: { accuracy } };
  };

  const params = startingWeights(stage, declaredParams(build), o.weights, () => llm.init(seed + 4));
  const data = { seed, split: 'train' as const, mix: o.mix };
  const collate = (texts: PretrainText[]) => collateTexts(texts, o.tokenizer, maxLength);

  let evalBatches: Record<string, HostTensor>[] | null = null;
  const evaluator = new EvalProgram(`${stage} eval`, forward, o.runtime);

  return {
    name: stage,
    description:
      'LLaMA language-model pretraining on generated text (captions, statements, task prompts and answers)',
    params,
    build,
    trainable: () => true,
    optimizer: pretrainOptimizer(o, { lr: 1e-3, weightDecay: 0.1 }),
    steps: o.steps,
    batches: (fromStep) =>
      resumableBatches(fromStep, o.batchSize, (start) => pretrainTexts({ ...data, start }), collate),
    batchSize: targetCount,
    batchUnit: 'tokens',
    evaluate: async (weights) => {
      if (!evalBatches) {
        const texts = Array.from({ length: o.evalCount ?? 64 }, (_, i) =>
          pretrainText(i, { ...data, split: 'heldout' }),
        );
        evalBatches = [];
        for (let i = 0; i < texts.length; i += o.batchSize)
          evalBatches.push(collate(texts.slice(i, i + o.batchSize)));
      }
      // Token-weighted means over the held-out set (each batch's loss is a mean over its tokens).
      let nll = 0;
      let right = 0;
      let tokens = 0;
      for (const feeds of evalBatches) {
        const r = await evaluator.run(weights, feeds);
        const n = Number(r.tokens.data[0]);
        nll += Number(r.loss.data[0]) * n;
        right += Number(r.accuracy.data[0]) * n;
        tokens += n;
      }
      return { loss: nll / tokens, perplexity: Math.exp(nll / tokens), accuracy: right / tokens };
    },
  };
}
