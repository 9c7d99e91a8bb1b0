/**
 * What a training stage is, independent of how it is run: the weights it starts from, the graph
 * of its loss, which parameters it trains, its optimizer, and a resumable stream of batches.
 * `run.ts` runs any stage with checkpoints, resume, progress, NaN handling and logs.
 */
import {
  type AdamWConfig,
  type Graph,
  type HostTensor,
  type StepResult,
  Trainer,
  type TrainerOptions,
  type TrainGraph,
} from '../engine/index.ts';

export interface StageDefinition {
  /** Short name used in logs and file names, e.g. 'stage1-selector'. */
  name: string;
  /** One line for people: what this stage trains and on what. */
  description: string;
  /** All weights the graph reads (trainable and frozen), by checkpoint name. */
  params: ReadonlyMap<string, HostTensor>;
  /** Trace the loss (and optional metrics) of one batch. */
  build: (g: Graph) => TrainGraph;
  /** Which parameters this stage updates; every other one stays bit-identical. */
  trainable: (name: string) => boolean;
  optimizer: AdamWConfig;
  /** Total optimizer steps. */
  steps: number;
  /**
   * Batches starting at step `fromStep` (0-based), deterministic: resuming at step k yields the
   * same batches the uninterrupted run would have seen from step k on. May be async (stages that
   * encode images with frozen models on the way); `await it.next()` handles both kinds.
   */
  batches: (
    fromStep: number,
  ) => Iterator<Record<string, HostTensor>> | AsyncIterator<Record<string, HostTensor>>;
  /** Tokens (or examples) in a batch, for the throughput figure; default: none shown. */
  batchSize?: (feeds: Record<string, HostTensor>) => number;
  /** What `batchSize` counts, for the throughput label (tokens/s or examples/s); default 'tokens'. */
  batchUnit?: 'tokens' | 'examples';
  /**
   * Host-side work after each successful step, before the next batch (e.g. restarting dead
   * codebook entries, `src/train/codebook.ts`). It may rewrite trainable parameters and their
   * AdamW moments in place through `trainer.parameters()` / `trainer.optimizerState()` (live
   * buffers, read by the next step). Returns extra scalar metrics to log with this step. Its own
   * state is not checkpointed: after a resume it starts afresh. Default: none.
   */
  afterStep?: (
    result: StepResult,
    trainer: Trainer,
  ) => Record<string, number> | undefined | Promise<Record<string, number> | undefined>;
  /** Periodic held-out evaluation on the current weights; returns named metrics. */
  evaluate?: (weights: ReadonlyMap<string, HostTensor>) => Promise<Record<string, number>>;
  /**
   * Turn the trained parameters back into checkpoint weights (e.g. stitch split tables back into
   * one `model.embed_tokens.weight`); default: identity.
   */
  finalize?: (params: ReadonlyMap<string, HostTensor>) => Map<string, HostTensor>;
}

/**
 * The Trainer a stage trains with: its weights, graph, optimizer and trainable set. `runStage`
 * uses it, and so do the benchmarks and tests that step a stage by hand, so all step the same one.
 */
export function stageTrainer(
  def: StageDefinition,
  options: Partial<Pick<TrainerOptions, 'params' | 'optimizer' | 'resume' | 'runtime'>> = {},
): Promise<Trainer> {
  return Trainer.create({
    params: options.params ?? def.params,
    build: def.build,
    optimizer: options.optimizer ?? def.optimizer,
    trainable: def.trainable,
    resume: options.resume,
    runtime: options.runtime,
  });
}
