/**
 * Training checkpoints on disk: `<outDir>/checkpoint/` holds `weights.safetensors` (the trainer's
 * raw parameters), `optimizer.safetensors` (the AdamW moments) and `state.json` (stage, step,
 * metrics, a hash of the stage's parameters). A checkpoint is written whole into a temp directory,
 * flushed, and swapped in by renames, so a process killed at any moment leaves either the old or
 * the new checkpoint complete (never a mix), and a leftover temp directory is simply ignored.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { HostTensor } from '../engine/index.ts';
import { loadSafetensors, saveSafetensors } from '../node/safetensors-file.ts';

/** One logged training step: the line written to `metrics.jsonl`. */
export interface StepMetrics {
  step: number;
  loss: number;
  gradNorm: number;
  lr: number;
  /** Seconds since the stage first started (summed over resumed runs). */
  elapsed: number;
  /** Throughput, when the stage gives `batchSize`; which of the two follows `batchUnit`. */
  tokensPerSecond?: number;
  examplesPerSecond?: number;
  /** Scalar metrics the loss graph returns (e.g. accuracy). */
  train?: Record<string, number>;
  /** Held-out metrics, on steps where `evaluate` ran. */
  eval?: Record<string, number>;
}

export interface CheckpointState {
  /** Format version, so a future layout change can be detected instead of misread. */
  version: 1;
  stage: string;
  /** Optimizer steps completed. */
  step: number;
  totalSteps: number;
  /** ISO time the checkpoint was written. */
  time: string;
  /** `paramsHash` of the stage: resuming a different stage's checkpoint is refused. */
  paramsHash: string;
  metrics: StepMetrics[];
}

export interface Checkpoint {
  dir: string;
  state: CheckpointState;
  weights: Map<string, HostTensor>;
  optimizer: Map<string, HostTensor>;
}

export const CHECKPOINT_DIR = 'checkpoint';
/** The previous checkpoint, alive only between the two renames of a save. */
const PREVIOUS_DIR = 'checkpoint.prev';
const TEMP_PREFIX = '.checkpoint-tmp-';
export const WEIGHTS_FILE = 'weights.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const STATE_FILE = 'state.json';

export function checkpointPath(outDir: string): string {
  return join(outDir, CHECKPOINT_DIR);
}

/**
 * Identifies a stage by its parameters: sorted names with shapes and whether each trains.
 * Two stages over the same model but with different trainable sets hash differently, since their
 * optimizer states do not fit each other.
 */
export function paramsHash(
  params: ReadonlyMap<string, HostTensor>,
  trainable: (name: string) => boolean,
): string {
  const lines = [...params]
    .map(([name, t]) => `${name}\t[${t.shape.join(',')}]\t${trainable(name) ? 'train' : 'frozen'}`)
    .sort();
  return createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 16);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Writes a small file and flushes it to disk before returning. */
export async function writeFileSynced(path: string, data: string | Uint8Array): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes next to `path` and renames over it: readers see the old file or the new one. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFileSynced(tmp, data);
  await rename(tmp, path);
}

/** Flushes a directory entry change (the renames) where the platform allows it. */
async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // Not supported everywhere (e.g. Windows); the renames are still atomic.
  }
}

/**
 * Saves a complete checkpoint and swaps it in as `<outDir>/checkpoint`; returns that path.
 * `state.json` is written last, so even the temp directory is never mistaken for a checkpoint.
 */
export async function saveCheckpoint(
  outDir: string,
  checkpoint: {
    weights: ReadonlyMap<string, HostTensor>;
    optimizer: ReadonlyMap<string, HostTensor>;
    state: CheckpointState;
  },
): Promise<string> {
  await mkdir(outDir, { recursive: true });
  const tmp = join(outDir, `${TEMP_PREFIX}${process.pid}-${Date.now()}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp);
  try {
    const meta = { stage: checkpoint.state.stage, step: String(checkpoint.state.step) };
    await saveSafetensors(join(tmp, WEIGHTS_FILE), new Map(checkpoint.weights), meta);
    await saveSafetensors(join(tmp, OPTIMIZER_FILE), new Map(checkpoint.optimizer), meta);
    await writeFileSynced(join(tmp, STATE_FILE), `${JSON.stringify(checkpoint.state)}\n`);
    await syncDir(tmp);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw new Error(`cannot write checkpoint in ${outDir}: ${(e as Error).message}`);
  }
  const current = join(outDir, CHECKPOINT_DIR);
  const previous = join(outDir, PREVIOUS_DIR);
  if (await exists(join(current, STATE_FILE))) {
    // `current` is complete, so a stale `previous` (from a save killed after its swap) can go.
    await rm(previous, { recursive: true, force: true });
    await rename(current, previous);
  } else {
    // Not a checkpoint (never made by this code; maybe a hand-edited copy): `previous`, if any,
    // is the last complete one and stays until the new one is in place.
    await rm(current, { recursive: true, force: true });
  }
  await rename(tmp, current);
  await syncDir(outDir);
  await rm(previous, { recursive: true, force: true });
  return current;
}

/** Removes temp directories left by saves that were killed half-way; returns their names. */
export async function removeStaleTemps(outDir: string): Promise<string[]> {
  const names = await readdir(outDir).catch(() => [] as string[]);
  const stale = names.filter((n) => n.startsWith(TEMP_PREFIX));
  for (const n of stale) await rm(join(outDir, n), { recursive: true, force: true });
  return stale;
}

/**
 * The directory of the latest complete checkpoint, or null: `checkpoint/`, or `checkpoint.prev/`
 * when a save was killed between its two renames. Temp directories never count.
 */
export async function findCheckpoint(outDir: string): Promise<string | null> {
  for (const name of [CHECKPOINT_DIR, PREVIOUS_DIR]) {
    const dir = join(outDir, name);
    if (await exists(join(dir, STATE_FILE))) return dir;
  }
  return null;
}

function parseState(text: string, path: string): CheckpointState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
  const s = raw as Partial<CheckpointState> | null;
  const problems: string[] = [];
  if (typeof s !== 'object' || s === null) throw new Error(`${path}: expected a JSON object`);
  if (s.version !== 1) problems.push(`version is ${JSON.stringify(s.version)}, expected 1`);
  if (typeof s.stage !== 'string') problems.push('"stage" is not a string');
  if (!Number.isInteger(s.step) || (s.step as number) < 0)
    problems.push(`"step" is ${JSON.stringify(s.step)}`);
  if (typeof s.paramsHash !== 'string') problems.push('"paramsHash" is not a string');
  if (!Array.isArray(s.metrics)) problems.push('"metrics" is not an array');
  if (problems.length) throw new Error(`${path}: not a training checkpoint state: ${problems.join('; ')}`);
  return s as CheckpointState;
}

/** Loads the latest complete checkpoint under `outDir`, or null when there is none. */
export async function loadCheckpoint(outDir: string): Promise<Checkpoint | null> {
  const dir = await findCheckpoint(outDir);
  if (!dir) return null;
  const statePath = join(dir, STATE_FILE);
  const state = parseState(await readFile(statePath, 'utf8'), statePath);
  const weights = await loadSafetensors(join(dir, WEIGHTS_FILE));
  const optimizer = await loadSafetensors(join(dir, OPTIMIZER_FILE));
  return { dir, state, weights, optimizer };
}
