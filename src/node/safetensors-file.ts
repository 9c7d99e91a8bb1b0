/**
 * Reading and writing safetensors files on disk (Node). Reads only the header up front and then one
 * tensor's byte range at a time, so multi-gigabyte shards are never loaded whole; writes go through a
 * temp file and a rename so a crash never leaves a half-written checkpoint. The format itself (header
 * parsing, decoding, layout) is src/engine/safetensors.ts, which runs anywhere; this file only adds
 * the file handles, so the engine stays free of `node:` imports.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { type FileHandle, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { allocate } from '../engine/dtype.ts';
import { FileTensor, type StoredTensor } from '../engine/file-tensor.ts';
import { HostTensor, sizeOf } from '../engine/host-tensor.ts';
import {
  decodedDType,
  decodeTensor,
  encodeTensorData,
  isNativeLayout,
  parseSafetensorsHeader,
  planSafetensors,
  readHeaderLength,
  type SafetensorsEntry,
  type SerializeOptions,
} from '../engine/safetensors.ts';

/** Node's single read/write call limit is 2 GiB - 1; larger ranges go in chunks. */
const IO_CHUNK = 1 << 30;

async function readFully(fh: FileHandle, into: Uint8Array, position: number, label: string): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const len = Math.min(IO_CHUNK, into.length - done);
    const { bytesRead } = await fh.read(into, done, len, position + done);
    if (bytesRead === 0) {
      throw new Error(
        `${label}: unexpected end of file at byte ${position + done} (wanted ${into.length - done} more)`,
      );
    }
    done += bytesRead;
  }
}

async function writeFully(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length; ) {
    const len = Math.min(IO_CHUNK, bytes.length - done);
    const { bytesWritten } = await fh.write(bytes, done, len);
    done += bytesWritten;
  }
}

/**
 * Reads bytes `at`… of `path` into `into`, synchronously, with a descriptor of its own: a few rows of
 * a token table per prompt or generated token (storedRows), from a file no handle is kept open on.
 */
function readRange(path: string, at: number, into: Uint8Array): void {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new Error(
      `${path} can no longer be read (${(e as NodeJS.ErrnoException).code ?? String(e)}): a model loaded with weightsOnDisk reads token rows from its files while it runs`,
    );
  }
  try {
    for (let done = 0; done < into.length; ) {
      const n = readSync(fd, into, done, into.length - done, at + done);
      if (n === 0) throw new Error(`${path}: unexpected end of file at byte ${at + done}`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
}

export class SafetensorsFile {
  private handle: FileHandle | undefined;

  private constructor(
    readonly path: string,
    handle: FileHandle,
    readonly entries: Map<string, SafetensorsEntry>,
    readonly metadata: Record<string, string>,
  ) {
    this.handle = handle;
  }

  /** Opens a file and validates its header against the file size (truncation is reported here). */
  static async open(path: string): Promise<SafetensorsFile> {
    const fh = await open(path, 'r');
    try {
      const { size } = await fh.stat();
      const prefix = new Uint8Array(Math.min(8, size));
      await readFully(fh, prefix, 0, path);
      const n = readHeaderLength(prefix, path, size);
      const buf = new Uint8Array(8 + n);
      buf.set(prefix);
      await readFully(fh, buf.subarray(8), 8, path);
      const { entries, metadata } = parseSafetensorsHeader(buf, path, size);
      return new SafetensorsFile(path, fh, entries, metadata);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /**
   * Tensor `name` left where it is, for onnxruntime to read (FileTensor), when the file stores it
   * in the layout onnxruntime takes; null when it must be decoded first (bf16, f16 → float32).
   */
  fileTensor(name: string): FileTensor | null {
    const entry = this.entry(name);
    const dtype = decodedDType(entry.dtype);
    if (dtype === undefined || !isNativeLayout(entry.dtype)) return null;
    const path = resolve(this.path);
    return new FileTensor(
      dtype,
      [...entry.shape],
      dirname(path),
      basename(path),
      entry.byteOffset,
      (at, into) => readRange(path, at, into),
    );
  }

  /**
   * Streams float tensor `name` through `visit` in pieces of at most `chunkBytes` (a whole
   * multiple of the element size), never holding more than one piece: for checks of tensors that
   * stay in the file. `at` is the index of the piece's first value.
   */
  async scan(
    name: string,
    visit: (values: Float32Array | Float64Array, at: number) => void,
    chunkBytes = 16 * 2 ** 20,
  ): Promise<void> {
    const entry = this.entry(name);
    const dtype = decodedDType(entry.dtype);
    if ((dtype !== 'float32' && dtype !== 'float64') || !isNativeLayout(entry.dtype))
      throw new Error(
        `${this.path}: tensor ${JSON.stringify(name)} is ${entry.dtype}, not stored as float32 or float64`,
      );
    const fh = this.handle;
    if (!fh) throw new Error(`${this.path}: read of tensor ${JSON.stringify(name)} after close()`);
    const size = dtype === 'float32' ? 4 : 8;
    const piece = new Uint8Array(Math.max(size, chunkBytes - (chunkBytes % size)));
    for (let done = 0; done < entry.byteLength; done += piece.length) {
      const bytes = piece.subarray(0, Math.min(piece.length, entry.byteLength - done));
      await readFully(fh, bytes, entry.byteOffset + done, `${this.path}: tensor ${JSON.stringify(name)}`);
      // Starts at offset 0 of its own buffer, so a typed array over it is aligned.
      const n = bytes.byteLength / size;
      visit(
        dtype === 'float32' ? new Float32Array(piece.buffer, 0, n) : new Float64Array(piece.buffer, 0, n),
        done / size,
      );
    }
  }

  private entry(name: string) {
    const entry = this.entries.get(name);
    if (!entry)
      throw new Error(
        `${this.path}: no tensor ${JSON.stringify(name)} (file has ${this.entries.size} tensors)`,
      );
    return entry;
  }

  /** Reads and decodes one tensor, touching only its byte range. */
  async get(name: string): Promise<HostTensor> {
    const entry = this.entry(name);
    const fh = this.handle;
    if (!fh) throw new Error(`${this.path}: read of tensor ${JSON.stringify(name)} after close()`);
    const label = `${this.path}: tensor ${JSON.stringify(name)}`;
    const dtype = decodedDType(entry.dtype);
    if (dtype !== undefined && isNativeLayout(entry.dtype)) {
      // Read straight into the result's buffer: no second copy of a possibly huge tensor.
      const data = allocate(dtype, sizeOf(entry.shape));
      await readFully(
        fh,
        new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
        entry.byteOffset,
        label,
      );
      return new HostTensor(dtype, [...entry.shape], data);
    }
    const bytes = new Uint8Array(entry.byteLength);
    await readFully(fh, bytes, entry.byteOffset, label);
    try {
      return decodeTensor(entry, bytes);
    } catch (e) {
      throw new Error(`${this.path}: ${(e as Error).message}`);
    }
  }

  async close(): Promise<void> {
    const fh = this.handle;
    this.handle = undefined;
    await fh?.close();
  }
}

/**
 * Every tensor of a file as onnxruntime can read it there (FileTensor), reading into memory only
 * those stored in another layout (bf16, f16 → float32). Nothing is checked for NaN: loadMaven's
 * `weightsOnDisk` does that for model directories.
 */
export async function openSafetensors(path: string): Promise<Map<string, StoredTensor>> {
  const file = await SafetensorsFile.open(path);
  try {
    const out = new Map<string, StoredTensor>();
    for (const name of file.entries.keys()) out.set(name, file.fileTensor(name) ?? (await file.get(name)));
    return out;
  } finally {
    await file.close();
  }
}

/** Reads every tensor of a file. */
export async function loadSafetensors(path: string): Promise<Map<string, HostTensor>> {
  const file = await SafetensorsFile.open(path);
  try {
    const out = new Map<string, HostTensor>();
    for (const name of file.entries.keys()) out.set(name, await file.get(name));
    return out;
  } finally {
    await file.close();
  }
}

/**
 * Writes a file to `path + '.tmp'`, flushes it, then renames it over `path`. Tensor data is streamed
 * from the tensors' own memory, not gathered into one buffer first.
 */
export async function saveSafetensors(
  path: string,
  tensors: Map<string, HostTensor> | Record<string, HostTensor>,
  metadata?: Record<string, string>,
  options?: SerializeOptions,
): Promise<void> {
  const plan = planSafetensors(tensors, metadata, options);
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await writeFully(fh, plan.header);
    for (const p of plan.tensors) await writeFully(fh, encodeTensorData(p));
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fh.close();
  await rename(tmp, path);
}

/** The tensors of a Hugging Face sharded checkpoint, read lazily from their shard files. */
export class ShardedSafetensors {
  /** Every tensor of the weight map, with byteOffset relative to its own shard file. */
  readonly entries = new Map<string, SafetensorsEntry>();
  private readonly shardOf = new Map<string, SafetensorsFile>();

  constructor(
    readonly indexPath: string,
    readonly shards: Map<string, SafetensorsFile>,
    weightMap: Record<string, string>,
    /** The index's "metadata" object (e.g. total_size), as found. */
    readonly metadata: Record<string, unknown>,
  ) {
    for (const [name, shardName] of Object.entries(weightMap)) {
      const shard = shards.get(shardName)!;
      const entry = shard.entries.get(name);
      if (!entry) {
        throw new Error(
          `${indexPath}: weight_map puts tensor ${JSON.stringify(name)} in ${shardName}, which has no such tensor`,
        );
      }
      this.entries.set(name, entry);
      this.shardOf.set(name, shard);
    }
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The shard file path holding `name`. */
  fileOf(name: string): string | undefined {
    return this.shardOf.get(name)?.path;
  }

  async get(name: string): Promise<HostTensor> {
    return this.shard(name).get(name);
  }

  /** As SafetensorsFile.fileTensor, in the shard that holds `name`. */
  fileTensor(name: string): FileTensor | null {
    return this.shard(name).fileTensor(name);
  }

  /** As SafetensorsFile.scan, in the shard that holds `name`. */
  async scan(
    name: string,
    visit: (values: Float32Array | Float64Array, at: number) => void,
    chunkBytes?: number,
  ): Promise<void> {
    return this.shard(name).scan(name, visit, chunkBytes);
  }

  private shard(name: string): SafetensorsFile {
    const shard = this.shardOf.get(name);
    if (!shard) throw new Error(`${this.indexPath}: no tensor ${JSON.stringify(name)} in weight_map`);
    return shard;
  }

  async close(): Promise<void> {
    await Promise.all([...this.shards.values()].map((s) => s.close()));
  }
}

/** Opens a `model.safetensors.index.json` and every shard it names (headers only). */
export async function loadShardedSafetensors(indexPath: string): Promise<ShardedSafetensors> {
  let index: unknown;
  try {
    index = JSON.parse(await readFile(indexPath, 'utf8'));
  } catch (e) {
    throw new Error(`${indexPath}: cannot read sharded index: ${(e as Error).message}`);
  }
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new Error(`${indexPath}: sharded index has no "weight_map" object`);
  }
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string') {
      throw new Error(`${indexPath}: weight_map entry for ${JSON.stringify(name)} is not a file name`);
    }
    byShard.set(shard, [...(byShard.get(shard) ?? []), name]);
  }
  const dir = dirname(indexPath);
  const missing: string[] = [];
  for (const [shard, names] of byShard) {
    const exists = await stat(resolve(dir, shard)).then(
      (s) => s.isFile(),
      () => false,
    );
    if (!exists) missing.push(`${shard} (holds ${names.length} tensors, e.g. ${JSON.stringify(names[0])})`);
  }
  if (missing.length > 0) {
    throw new Error(`${indexPath}: missing shard file(s) in ${dir}: ${missing.join(', ')}`);
  }
  const shards = new Map<string, SafetensorsFile>();
  try {
    for (const shard of byShard.keys()) shards.set(shard, await SafetensorsFile.open(resolve(dir, shard)));
    const rawMeta = (index as { metadata?: unknown }).metadata;
    const metadata =
      typeof rawMeta === 'object' && rawMeta !== null ? (rawMeta as Record<string, unknown>) : {};
    return new ShardedSafetensors(indexPath, shards, weightMap as Record<string, string>, metadata);
  } catch (e) {
    await Promise.all([...shards.values()].map((s) => s.close()));
    throw e;
  }
}
