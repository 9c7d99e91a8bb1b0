/**
 * Runs torch_stage4.py (the stage-4 training step in PyTorch eager) on weights and a batch that
 * bench/train.ts wrote to `dir` (weights.safetensors, batch.safetensors), in its own process, with
 * the interpreter in $TORCH_PYTHON only: no fallback to the system python3, whose Debian torch
 * links the reference BLAS and would flatter us (docs/benchmarks.md). Never throws: returns
 * {skipped} with the reason when TORCH_PYTHON is unset, has no torch, or the run fails.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LlamaConfig } from '../../src/models/llama.ts';
import { lastJsonLine, runPython } from './torch.ts';

const SCRIPT = fileURLToPath(new URL('./torch_stage4.py', import.meta.url));

export interface TorchStage4Options {
  /** Holds weights.safetensors and batch.safetensors; config.json is written here. */
  dir: string;
  llm: LlamaConfig;
  /** Learning rate of every step, warm-up steps first. */
  lrs: readonly number[];
  warmup: number;
  optimizer: { beta1: number; beta2: number; eps: number; weightDecay: number; clipNorm: number };
  threads: number;
  timeoutMs?: number;
}

export type TorchStage4Outcome =
  | {
      msPerStep: number;
      stepMs: number[];
      losses: number[];
      torch: string;
      threads: number;
      attn: string;
      startRssKiB: number;
      maxRssKiB: number;
      python: string;
    }
  | { skipped: string };

const numbers = (x: unknown): number[] => (Array.isArray(x) ? x.map(Number) : []);

export async function torchStage4Step(o: TorchStage4Options): Promise<TorchStage4Outcome> {
  const python = process.env.TORCH_PYTHON;
  if (!python) return { skipped: 'TORCH_PYTHON is not set' };
  const config = join(o.dir, 'config.json');
  writeFileSync(config, JSON.stringify({ llm: o.llm, lrs: o.lrs, warmup: o.warmup, optimizer: o.optimizer }));
  const args = [
    SCRIPT,
    join(o.dir, 'weights.safetensors'),
    join(o.dir, 'batch.safetensors'),
    config,
    '--threads',
    String(o.threads),
  ];
  const r = await runPython(python, args, process.env, o.timeoutMs ?? 600_000);
  const json = lastJsonLine(r.stdout);
  if (r.ok && json && typeof json.ms_per_step === 'number') {
    return {
      msPerStep: json.ms_per_step,
      stepMs: numbers(json.step_ms),
      losses: numbers(json.losses),
      torch: String(json.torch),
      threads: Number(json.threads),
      attn: String(json.attn),
      startRssKiB: Number(json.start_rss_kib),
      maxRssKiB: Number(json.max_rss_kib),
      python,
    };
  }
  const tail = r.stderr.trim().split('\n').slice(-2).join(' | ');
  return {
    skipped: `${python}: ${json?.skipped ?? r.error ?? 'no result'}${tail && !json ? ` (${tail})` : ''}`,
  };
}
