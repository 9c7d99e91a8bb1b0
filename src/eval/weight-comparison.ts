/**
 * How far two sets of weights of one model are apart: a reproduced training run either gives the
 * same bits (the engine is deterministic on one machine and thread count) or it does not, and a
 * report must say which rather than assume.
 */
import type { HostTensor } from '../engine/index.ts';

export interface WeightComparison {
  /** Names in both sets. */
  shared: number;
  /** Names in one set only. */
  unmatched: string[];
  /** Shared tensors whose shape, type or any element differs. */
  differing: string[];
  /** Largest |a − b| over the shared float tensors of equal shape (0 when every bit agrees). */
  maxAbsDifference: number;
  /** Every name in both, every tensor bit-identical. */
  identical: boolean;
}

function sameBits(a: HostTensor, b: HostTensor): boolean {
  const x = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const y = new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

export function compareWeights(
  a: ReadonlyMap<string, HostTensor>,
  b: ReadonlyMap<string, HostTensor>,
): WeightComparison {
  const unmatched = [...[...a.keys()].filter((k) => !b.has(k)), ...[...b.keys()].filter((k) => !a.has(k))];
  const differing: string[] = [];
  let shared = 0;
  let maxAbsDifference = 0;
  for (const [name, x] of a) {
    const y = b.get(name);
    if (!y) continue;
    shared++;
    const sameShape = x.dtype === y.dtype && x.shape.join() === y.shape.join();
    if (sameShape && sameBits(x, y)) continue;
    differing.push(name);
    if (sameShape && x.data instanceof Float32Array && y.data instanceof Float32Array)
      for (let i = 0; i < x.data.length; i++)
        maxAbsDifference = Math.max(maxAbsDifference, Math.abs(x.data[i] - y.data[i]));
    else maxAbsDifference = Number.POSITIVE_INFINITY;
  }
  return {
    shared,
    unmatched,
    differing,
    maxAbsDifference,
    identical: unmatched.length === 0 && differing.length === 0,
  };
}
