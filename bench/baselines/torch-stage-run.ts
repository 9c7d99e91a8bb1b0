/**
 * Runs torch_stage_run.py (a multi-step stage-3/4 training run in PyTorch eager, one batch per
 * step) on weights and batches that scripts/engine-vs-torch.ts wrote, in its own process, with the
 * interpreter in $TORCH_PYTHON only (as torch-stage4.ts: no fallback to the system python3). Never
 * throws: returns {skipped} with the reason when TORCH_PYTHON is unset, has no torch, or the run
 * fails.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { LlamaConfig } from '../../src/models/llama.ts';
import { lastJsonLine, runPython } from './torch.ts';

const SCRIPT = fileURLToPath(new URL('./torch_stage_run.py', import.meta.url));

export interface TorchStageRunOptions {
  /** safetensors with every weight the stage's graph reads (trainable and frozen). */
  weights: string;
  /** Where the run's config.json is written. */
  config: string;
  /** One batch file (ids, targets, patch_index, is_patch, patch_features) per step, in order. */
  batches: readonly string[];
  /** Learning rate of each step (as long as `batches`). */
  lrs: readonly number[];
  /** Names of the parameters to train; every other weight is frozen. */
  trainable: readonly string[];
  llm: LlamaConfig;
  optimizer: { beta1: number; beta2: number; eps: number; weightDecay: number; clipNorm: number };
  threads: number;
  /** float64 runs the reference: the same run without float32 rounding (default float32). */
  dtype?: 'float32' | 'float64';
  /** Write the trained parameters here (safetensors) after the last step. */
  final?: string;
  timeoutMs?: number;
}

export type TorchStageRunOutcome =
  | {
      losses: number[];
      gradNorms: number[];
      stepMs: number[];
      torch: string;
      threads: number;
      attn: string;
      dtype: string;
      trainableParams: number;
      frozenParams: number;
      python: string;
    }
  | { skipped: string };

const numbers = (x: unknown): number[] => (Array.isArray(x) ? x.map(Number) : []);

export async function torchStageRun(o: TorchStageRunOptions): Promise<TorchStageRunOutcome> {
  const python = process.env.TORCH_PYTHON;
  if (!python) return { skipped: 'TORCH_PYTHON is not set' };
  if (o.lrs.length !== o.batches.length)
    return { skipped: `${o.lrs.length} learning rates for ${o.batches.length} batches` };
  writeFileSync(
    o.config,
    JSON.stringify({
      llm: o.llm,
      optimizer: o.optimizer,
      lrs: o.lrs,
      batches: o.batches,
      trainable: o.trainable,
      final: o.final ?? null,
    }),
  );
  const args = [SCRIPT, o.weights, o.config, '--threads', String(o.threads), '--dtype', o.dtype ?? 'float32'];
  const r = await runPython(python, args, process.env, o.timeoutMs ?? 3_600_000);
  const json = lastJsonLine(r.stdout);
  if (r.ok && json && Array.isArray(json.losses)) {
    return {
      losses: numbers(json.losses),
      gradNorms: numbers(json.grad_norms),
      stepMs: numbers(json.step_ms),
      torch: String(json.torch),
      threads: Number(json.threads),
      attn: String(json.attn),
      dtype: String(json.dtype),
      trainableParams: Number(json.trainable),
      frozenParams: Number(json.frozen),
      python,
    };
  }
  const tail = r.stderr.trim().split('\n').slice(-3).join(' | ');
  return {
    skipped: `${python}: ${json?.skipped ?? r.error ?? 'no result'}${tail && !json ? ` (${tail})` : ''}`,
  };
}
