/** `maven train`: the tiny recipe end to end, or one MaVEn stage from a model directory. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MavenModel } from '../../maven/model.ts';
import { isQuantizedCheckpoint } from '../../maven/quantization.ts';
import { loadMaven, saveMaven } from '../../node/model-directory.ts';
import { fashionTrainingSource, RecipeInterrupted, runTinyRecipe } from '../../train/recipe.ts';
import { runStage } from '../../train/run.ts';
import type { StageDefinition } from '../../train/stage.ts';
import type { MavenStageOptions } from '../../train/stages/common.ts';
import { selectorStage } from '../../train/stages/stage1-selector.ts';
import { visualEmbeddingStage } from '../../train/stages/stage2-visual-embeddings.ts';
import { projectorStage } from '../../train/stages/stage3-projector.ts';
import { instructionStage } from '../../train/stages/stage4-instruction.ts';
import { ROUTING_PHASES, routingStage } from '../../train/stages/stage4a-routing.ts';
import { readBoxesStage } from '../../train/stages/stage4c-read-boxes.ts';
import { type Command, numberOption, UsageError } from '../command.ts';
import { DEFAULT_MODEL_DIR } from '../default-model.ts';

const usage = `usage: maven train --recipe tiny --out DIR [--scale F] [--seed S] [--data DIR]
       maven train --stage 1|2|3|4a|4b|4c|4 [--model DIR] --out DIR [--config FILE.json] [--steps N] [--batch-size B] [--lr X] [--seed S] [--data DIR]

--recipe tiny   pretrain a small ViT, tokenizer and LLM (stage 0), then run stages 1–4; the
                model lands in DIR/model. Each stage checkpoints under DIR/<stage>; run the same
                command again after an interruption to resume. --scale multiplies every stage's
                steps (e.g. 0.02 for a quick smoke run).
--stage N       one MaVEn stage, starting from the model in --model (default: the embedded
                models/maven-tiny): 1 patch selector, 2 visual embedding rows, 3 projector,
                4a finding image k and 4b comparing images (discrete-only, Fashion-MNIST photos
                needed), 4c questions about one box, 4 instruction tuning. Fashion-MNIST photos from the data folder join
                every stage's examples when present. Options may come from a JSON
                file ({"steps", "batchSize", "lr", "seed"}); flags override it. The trained model
                is written to DIR/model.

Ctrl-C stops after the current step and saves a checkpoint; a second Ctrl-C exits at once.`;

const STAGES: Record<string, (o: MavenStageOptions) => StageDefinition> = {
  '1': selectorStage,
  '2': visualEmbeddingStage,
  '3': projectorStage,
  '4a': (o) => routingStage(o, ROUTING_PHASES.find),
  '4b': (o) => routingStage(o, ROUTING_PHASES.compare),
  '4c': readBoxesStage,
  '4': instructionStage,
};

export const trainCommand: Command = {
  name: 'train',
  summary: 'train: the tiny recipe (--recipe tiny) or one stage (--stage N)',
  usage,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        recipe: { type: 'string' },
        stage: { type: 'string' },
        model: { type: 'string' },
        config: { type: 'string' },
        out: { type: 'string' },
        scale: { type: 'string' },
        steps: { type: 'string' },
        'batch-size': { type: 'string' },
        lr: { type: 'string' },
        seed: { type: 'string' },
        data: { type: 'string' },
      },
    });
    if (!values.out) throw new UsageError(`--out is required\n\n${usage}`);
    const seed = numberOption(values.seed, 'seed', Number.isInteger);
    if (values.recipe !== undefined) {
      if (values.recipe !== 'tiny') throw new UsageError(`unknown recipe '${values.recipe}' (only 'tiny')`);
      try {
        await runTinyRecipe({
          outDir: values.out,
          scale: numberOption(values.scale, 'scale', (n) => n > 0),
          seed,
          dataDir: values.data,
        });
      } catch (e) {
        if (e instanceof RecipeInterrupted) {
          console.error(e.message);
          return 130;
        }
        throw e;
      }
      return 0;
    }
    const make = values.stage ? STAGES[values.stage] : undefined;
    if (!make) throw new UsageError(`give --recipe tiny or --stage 1|2|3|4a|4b|4c|4\n\n${usage}`);
    const file = values.config
      ? (JSON.parse(await readFile(values.config, 'utf8')) as Record<string, number>)
      : {};
    const model = await loadMaven(values.model ?? DEFAULT_MODEL_DIR);
    if (isQuantizedCheckpoint(model.weights)) {
      throw new UsageError(
        `${values.model ?? DEFAULT_MODEL_DIR} holds block-quantized weights (maven quantize), which are for inference only; train from the float32 model it was quantized from`,
      );
    }
    const fashion = await fashionTrainingSource({ dataDir: values.data }, (line) => console.error(line));
    const positive = (n: number) => n > 0;
    const def = make({
      config: model.config,
      weights: model.hostWeights(),
      tokenizer: model.tokenizer,
      steps: numberOption(values.steps, 'steps', positive) ?? file.steps ?? 300,
      batchSize: numberOption(values['batch-size'], 'batch-size', positive) ?? file.batchSize ?? 16,
      lr: numberOption(values.lr, 'lr', positive) ?? file.lr ?? 1e-3,
      seed: seed ?? file.seed ?? 0,
      fashion,
    });
    const result = await runStage(def, { outDir: values.out });
    if (result.stoppedEarly) return 130;
    const weights = new Map(model.weights);
    for (const [k, v] of result.weights) weights.set(k, v);
    await saveMaven(join(values.out, 'model'), new MavenModel(model.config, weights, model.tokenizer));
    console.error(`model written to ${join(values.out, 'model')}`);
    return 0;
  },
};
