/**
 * A weight whose bytes stay in a file (a safetensors shard, say) until onnxruntime reads them
 * itself: a session that embeds it declares it as ONNX external data at its offset in the file,
 * and onnxruntime maps or reads it while creating the session, pre-packs it and lets the file
 * pages go. The bytes never pass through this process's heap, so a model larger than half the
 * machine's memory can still be made into sessions (a host copy plus onnxruntime's own peaked
 * at both together: docs/quantization.md).
 *
 * Only the description lives here; reading a file is the Node adapter's business
 * (src/node/safetensors-file.ts), so the engine still runs in a browser, where no FileTensor is
 * ever made. The adapter may hand over a way to read byte ranges (`read`), for the few rows of a
 * token table a prompt needs (storedRows): the table then exists once, in the session that runs
 * the LM head, instead of also in this process. All the FileTensors one session embeds must share
 * a folder: onnxruntime resolves external data against one folder per session and refuses paths
 * that leave it.
 */
import { BYTES_PER_ELEMENT, type DType } from './dtype.ts';
import type { HostTensor } from './host-tensor.ts';
import { sizeOf } from './host-tensor.ts';

export class FileTensor<D extends DType = DType> {
  constructor(
    readonly dtype: D,
    readonly shape: readonly number[],
    /** Absolute folder holding `file`. */
    readonly folder: string,
    /** File name inside `folder` (no separators: onnxruntime refuses paths that leave it). */
    readonly file: string,
    /** Byte offset of the tensor's first element in the file. */
    readonly offset: number,
    /** Fills `into` with the file's bytes from `position` (absolute), synchronously; absent: unreadable here. */
    readonly read?: (position: number, into: Uint8Array) => void,
  ) {
    if (file.includes('/') || file.includes('\\') || file === '..' || file === '.')
      throw new Error(`FileTensor: "${file}" must be a file name inside ${folder}, not a path`);
    if (!Number.isSafeInteger(offset) || offset < 0)
      throw new Error(`FileTensor: offset ${offset} in ${file} is not a byte offset`);
  }

  get byteLength(): number {
    return sizeOf(this.shape) * BYTES_PER_ELEMENT[this.dtype];
  }
}

/** A weight as a model may hold it: in host memory, or left in its file. */
export type StoredTensor = HostTensor | FileTensor;

export function storedByteLength(t: StoredTensor): number {
  return t instanceof FileTensor ? t.byteLength : t.data.byteLength;
}
