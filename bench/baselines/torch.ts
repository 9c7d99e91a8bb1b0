/**
 * PyTorch eager baseline runner: runs torch_block.py (same 1-block transformer training step as
 * tfjs-block.ts) with the first python that can import torch and parses its JSON line.
 * Python candidates: opts.python, $TORCH_PYTHON, /usr/bin/python3, python3. Never throws: when no
 * candidate has torch (or the run fails) it returns {skipped: reason}.
 * Note: Debian's python3-torch 1.13 links the reference BLAS (BLAS_INFO=generic) and is ~15x slower
 * than an MKL/OpenBLAS build; `torch` and `python` in the result say which build was measured.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface TorchBlockOpts {
  warmup?: number;
  steps?: number;
  threads?: number;
  /** 'auto' = what nanoGPT does (SDPA when torch has it, else manual softmax attention). */
  attn?: 'auto' | 'manual' | 'sdpa';
  python?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

export interface TorchBlockResult {
  /** Median over the timed steps. */
  msPerStep: number;
  msMin: number;
  msMax: number;
  loss0: number;
  lossN: number;
  torch: string;
  threads: number;
  attn: string;
  python: string;
}

export type TorchBlockOutcome = TorchBlockResult | { skipped: string };

const SCRIPT = fileURLToPath(new URL('./torch_block.py', import.meta.url));

export function runPython(
  python: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ ok: boolean; stdout: string; stderr: string; error?: string }> {
  return new Promise((resolve) => {
    execFile(
      python,
      args,
      { env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        resolve({
          ok: !err,
          stdout: String(stdout),
          stderr: String(stderr),
          error: err ? err.message : undefined,
        });
      },
    );
  });
}

export function lastJsonLine(stdout: string): Record<string, unknown> | undefined {
  const lines = stdout.trim().split('\n').reverse();
  for (const line of lines) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    try {
      return JSON.parse(t) as Record<string, unknown>;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

export async function torchBlockStepMs(opts: TorchBlockOpts = {}): Promise<TorchBlockOutcome> {
  const candidates = [opts.python, process.env.TORCH_PYTHON, '/usr/bin/python3', 'python3'].filter(
    (p, i, all): p is string => !!p && all.indexOf(p) === i,
  );
  const args = [
    SCRIPT,
    '--warmup',
    String(opts.warmup ?? 2),
    '--steps',
    String(opts.steps ?? 10),
    '--threads',
    String(opts.threads ?? 2),
    '--attn',
    opts.attn ?? 'auto',
  ];
  const env = { ...process.env, ...opts.env };
  const reasons: string[] = [];
  for (const python of candidates) {
    try {
      const r = await runPython(python, args, env, opts.timeoutMs ?? 600_000);
      const json = lastJsonLine(r.stdout);
      if (json && typeof json.skipped === 'string') {
        reasons.push(`${python}: ${json.skipped}`);
        continue;
      }
      if (!r.ok || !json || typeof json.ms_per_step !== 'number') {
        const tail = r.stderr.trim().split('\n').slice(-3).join(' | ');
        reasons.push(`${python}: ${r.error ?? 'no JSON result'}${tail ? ` (${tail})` : ''}`);
        continue;
      }
      return {
        msPerStep: json.ms_per_step,
        msMin: Number(json.ms_min),
        msMax: Number(json.ms_max),
        loss0: Number(json.loss0),
        lossN: Number(json.lossN),
        torch: String(json.torch),
        threads: Number(json.threads),
        attn: String(json.attn),
        python,
      };
    } catch (e) {
      reasons.push(`${python}: ${(e as Error).message}`);
    }
  }
  return { skipped: reasons.join('; ') || 'no python candidate' };
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const args = process.argv.slice(2);
  const arg = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && i + 1 < args.length ? args[i + 1] : undefined;
  };
  const num = (name: string) => (arg(name) === undefined ? undefined : Number(arg(name)));
  const attn = arg('attn');
  const res = await torchBlockStepMs({
    warmup: num('warmup'),
    steps: num('steps'),
    threads: num('threads'),
    attn: attn === 'manual' || attn === 'sdpa' || attn === 'auto' ? attn : undefined,
    python: arg('python'),
  });
  console.log(JSON.stringify(res));
}
