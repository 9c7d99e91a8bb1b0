/**
 * Runs torch_llama_decode.py on the same LLM weights as ours (written to a temporary safetensors
 * file) with the first Python that has torch. Never throws: returns {skipped} when none does.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HostTensor } from '../../src/engine/index.ts';
import type { LlamaConfig } from '../../src/models/llama.ts';
import { saveSafetensors } from '../../src/node/safetensors-file.ts';
import { lastJsonLine, runPython } from './torch.ts';

const SCRIPT = fileURLToPath(new URL('./torch_llama_decode.py', import.meta.url));

export type TorchDecodeOutcome =
  | { tokensPerSecond: number; torch: string; python: string }
  | { skipped: string };

export async function torchLlamaDecode(
  config: LlamaConfig,
  weights: ReadonlyMap<string, HostTensor>,
  options: { promptLength: number; steps: number; threads?: number },
): Promise<TorchDecodeOutcome> {
  const dir = mkdtempSync(join(tmpdir(), 'maven-torch-'));
  try {
    const llm = new Map(
      [...weights].filter(
        ([k]) => (k.startsWith('model.') && !k.startsWith('model.mm_projector')) || k === 'lm_head.weight',
      ),
    );
    await saveSafetensors(join(dir, 'llm.safetensors'), llm);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    const args = [
      SCRIPT,
      join(dir, 'llm.safetensors'),
      join(dir, 'config.json'),
      '--prompt',
      String(options.promptLength),
      '--steps',
      String(options.steps),
      '--threads',
      String(options.threads ?? 2),
    ];
    const reasons: string[] = [];
    for (const python of [process.env.TORCH_PYTHON, '/usr/bin/python3', 'python3'].filter(
      (p, i, a): p is string => !!p && a.indexOf(p) === i,
    )) {
      const r = await runPython(python, args, process.env, 600_000);
      const json = lastJsonLine(r.stdout);
      if (json && typeof json.tokens_per_second === 'number')
        return { tokensPerSecond: json.tokens_per_second, torch: String(json.torch), python };
      reasons.push(`${python}: ${json?.skipped ?? r.error ?? 'no result'}`);
    }
    return { skipped: reasons.join('; ') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
