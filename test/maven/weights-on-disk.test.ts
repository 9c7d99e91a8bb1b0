/**
 * `loadMaven(dir, runtime, { weightsOnDisk: true })`: the weights stay in the model's safetensors
 * files and onnxruntime reads them from there (FileTensor), so the process never holds a host copy.
 * The model must answer exactly as the same directory read into memory does (float32 and
 * 4-bit), refuse what needs host weights, and still refuse NaN in a weight it did not read.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { compile, FileTensor, Graph, HostTensor, ops, serialize } from '../../src/engine/index.ts';
import { NonFiniteWeightsError } from '../../src/maven/checkpoint.ts';
import type { MavenModel } from '../../src/maven/model.ts';
import { QUANTIZATION_METADATA_KEY, quantizationMetadata } from '../../src/maven/quantization.ts';
import { loadMaven, saveMaven } from '../../src/node/model-directory.ts';
import { openSafetensors } from '../../src/node/safetensors-file.ts';
import { PROMPTS, run, tinyPair } from './quantization-fixture.ts';
import { smallModel } from './small-model.ts';

/** Scores of candidate answers and a short greedy answer, with one sample image, for a model. */
async function answers(model: MavenModel) {
  const rgb = new Float32Array(3 * 32 * 32).map((_, i) => Math.sin(i) * 0.5);
  const image = new HostTensor('float32', [1, 3, 32, 32], rgb);
  const prompt = 'Image 1: <image>\nhow many yellow squares are there ?';
  const scores = await model.score(prompt, image, ['yes', 'no', 'there is a black circle .']);
  const { text } = await model.generate(prompt, image, { maxNewTokens: 6 });
  return { scores, text };
}

describe('weights left on disk', () => {
  let dir: string;
  let inMemory: MavenModel;
  let onDisk: MavenModel;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maven-on-disk-'));
    await saveMaven(dir, smallModel());
    inMemory = await loadMaven(dir);
    onDisk = await loadMaven(dir, {}, { weightsOnDisk: true });
  });

  it('leaves every weight in its file, the token table too (rows read as prompts need them)', () => {
    for (const [name, t] of onDisk.weights) {
      assert.ok(t instanceof FileTensor, `${name} was read`);
      assert.equal(t.file, 'model.safetensors');
    }
  });

  it('answers exactly as the model read into memory', async () => {
    assert.deepEqual(await answers(onDisk), await answers(inMemory));
  });

  it('leaves the weights of a sharded directory in their shards, and answers the same', async () => {
    const sharded = mkdtempSync(join(tmpdir(), 'maven-on-disk-shards-'));
    try {
      await saveMaven(sharded, smallModel(), { maxShardBytes: 64 * 1024 });
      const model = await loadMaven(sharded, {}, { weightsOnDisk: true });
      const files = new Set<string>();
      for (const [name, t] of model.weights) {
        assert.ok(t instanceof FileTensor, `${name} was read`);
        files.add(t.file);
      }
      assert.ok(files.size > 1, `one file: ${[...files]}`);
      assert.deepEqual(await answers(model), await answers(inMemory));
    } finally {
      rmSync(sharded, { recursive: true, force: true });
    }
  });

  it('gives h_EOS from the decoder equal to the training graph’s', async () => {
    const codes = [
      [1, 2, 3, 4],
      [5, 6, 7, 0],
    ];
    const a = await onDisk.hEos(codes);
    const b = await inMemory.hEos(codes);
    assert.deepEqual(a.shape, [2, onDisk.config.llm.hiddenSize]);
    assert.deepEqual(a.data, b.data);
  });

  it('refuses to hand out host weights or to be saved, naming a weight and its file', async () => {
    assert.throws(() => onDisk.hostWeights(), /was left in model\.safetensors/);
    await assert.rejects(saveMaven(join(dir, 'copy'), onDisk), /was left in model\.safetensors/);
  });

  it('says so when its files are gone while it runs', async () => {
    const copy = mkdtempSync(join(tmpdir(), 'maven-on-disk-gone-'));
    await saveMaven(copy, smallModel());
    const model = await loadMaven(copy, {}, { weightsOnDisk: true });
    await answers(model); // sessions made
    rmSync(join(copy, 'model.safetensors'));
    await assert.rejects(answers(model), /model\.safetensors can no longer be read \(ENOENT\)/);
  });

  it('still refuses NaN in a weight it never reads into memory, by name', async () => {
    const damaged = mkdtempSync(join(tmpdir(), 'maven-on-disk-nan-'));
    await saveMaven(damaged, smallModel());
    const path = join(damaged, 'model.safetensors');
    const bytes = readFileSync(path);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString()) as Record<
      string,
      { data_offsets: [number, number] }
    >;
    const name = 'model.norm.weight';
    const at = 8 + headerLength + header[name].data_offsets[0] + 4 * 3; // its fourth value
    bytes.fill(0xff, at, at + 4);
    writeFileSync(path, bytes);
    await assert.rejects(loadMaven(damaged, {}, { weightsOnDisk: true }), (e: unknown) => {
      assert.ok(e instanceof NonFiniteWeightsError);
      assert.match(
        e.message,
        /"model\.norm\.weight" \[\d+\]: 1 of \d+ values are NaN or infinite \(the first at index 3\)/,
      );
      return true;
    });
  });
});

describe('a 4-bit directory on disk', () => {
  it('answers as the same directory read into memory, on the embedded model', async () => {
    const options = { bits: 4, blockSize: 32 } as const;
    const { quantized } = await tinyPair(options);
    const dir = mkdtempSync(join(tmpdir(), 'maven-on-disk-q4-'));
    await saveMaven(dir, quantized, {
      metadata: { [QUANTIZATION_METADATA_KEY]: quantizationMetadata(quantized.config, options) },
    });
    const inMemory = await loadMaven(dir);
    const onDisk = await loadMaven(dir, {}, { weightsOnDisk: true });
    assert.ok(
      [...onDisk.weights.keys()].some(
        (n) => n.endsWith('.qweight') && onDisk.weights.get(n) instanceof FileTensor,
      ),
    );
    for (const p of PROMPTS.slice(0, 2)) {
      const a = await run(onDisk, p);
      const b = await run(inMemory, p);
      assert.equal(a.text, b.text, p.prompt);
      assert.deepEqual(a.logits, b.logits, p.prompt);
    }
  });
});

describe('FileTensor in a serialised graph', () => {
  const program = (folders: string[]) => {
    const g = new Graph();
    const x = g.input('x', 'float32', [1, 4]);
    let y = x;
    const embed = new Map<string, FileTensor>();
    folders.forEach((folder, i) => {
      y = ops.linear(y, g.param(`w${i}`, [4, 4]));
      embed.set(`w${i}`, new FileTensor('float32', [4, 4], folder, 'weights.bin', 64 * i));
    });
    return serialize(g, { y }, { embed });
  };

  it('names the file and offset and records the folder onnxruntime reads', () => {
    const model = program(['/models/a', '/models/a']);
    assert.equal(model.externalFolder, '/models/a');
    assert.equal(model.externalData.length, 0);
    assert.deepEqual(
      model.inputs.map((i) => i.name),
      ['x'],
    );
  });

  it('runs a weight read from its file beside a large one from memory, as from memory alone', async () => {
    const K = 128;
    const N = 256; // 128 KiB of float32: large enough to travel as in-memory external data alone
    const a = new HostTensor(
      'float32',
      [N, K],
      Float32Array.from({ length: N * K }, (_, i) => Math.sin(i)),
    );
    const b = new HostTensor(
      'float32',
      [K, N],
      Float32Array.from({ length: N * K }, (_, i) => Math.cos(i)),
    );
    const folder = mkdtempSync(join(tmpdir(), 'maven-file-tensor-'));
    const offset = 24; // not page-aligned, as in a safetensors file
    const file = new Uint8Array(offset + a.data.byteLength);
    file.set(new Uint8Array(a.data.buffer), offset);
    writeFileSync(join(folder, 'weights.bin'), file);
    const g = new Graph();
    const x = g.input('x', 'float32', [2, K]);
    const y = ops.linear(ops.linear(x, g.param('a', [N, K])), g.param('b', [K, N]));
    const feeds = { x: new HostTensor('float32', [2, K], new Float32Array(2 * K).fill(0.01)) };
    const fromMemory = await compile(
      g,
      { y },
      {
        embed: new Map([
          ['a', a],
          ['b', b],
        ]),
      },
    );
    const fromFile = await compile(
      g,
      { y },
      {
        embed: new Map<string, HostTensor | FileTensor>([
          ['a', new FileTensor('float32', [N, K], folder, 'weights.bin', offset)],
          ['b', b],
        ]),
      },
    );
    assert.deepEqual((await fromFile.run(feeds)).y.data, (await fromMemory.run(feeds)).y.data);
  });

  it('refuses weights from two folders, and paths for file names', () => {
    assert.throws(() => program(['/models/a', '/models/b']), /one folder per session/);
    assert.throws(() => new FileTensor('float32', [4], '/models', '../x.bin', 0), /must be a file name/);
  });
});

describe('openSafetensors', () => {
  it('leaves tensors onnxruntime takes in the file and decodes the others', async () => {
    // Two tensors by hand: float32 [2] and bfloat16 [2] (1.0 and -2.0).
    const header = JSON.stringify({
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'BF16', shape: [2], data_offsets: [8, 12] },
    });
    const headerBytes = Buffer.from(header);
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(headerBytes.length));
    const data = Buffer.alloc(12);
    data.writeFloatLE(0.5, 0);
    data.writeFloatLE(1.5, 4);
    data.writeUInt16LE(0x3f80, 8); // 1.0
    data.writeUInt16LE(0xc000, 10); // -2.0
    const folder = mkdtempSync(join(tmpdir(), 'maven-open-st-'));
    writeFileSync(join(folder, 'w.safetensors'), Buffer.concat([length, headerBytes, data]));
    const opened = await openSafetensors(join(folder, 'w.safetensors'));
    const a = opened.get('a');
    assert.ok(a instanceof FileTensor);
    assert.equal(a.folder, folder);
    assert.equal(a.offset, 8 + headerBytes.length);
    const b = opened.get('b');
    assert.ok(b instanceof HostTensor);
    assert.deepEqual([...(b.data as Float32Array)], [1, -2]);
  });
});
