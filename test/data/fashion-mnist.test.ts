/**
 * Fashion-MNIST IDX reader. Error cases use IDX buffers built byte by byte here; the real-file
 * checks use the dataset's documented sizes and class balance, and checksums computed
 * independently with Python's gzip + struct (see the comment on REAL_CHECKS).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { dataSkipReason } from '../../src/data/data-dir.ts';
import {
  FASHION_CLASSES,
  idxImage,
  loadFashionMnist,
  pairFashionMnist,
  parseIdxImages,
  parseIdxLabels,
  readIdxImages,
  readIdxLabels,
} from '../../src/data/fashion-mnist.ts';

/** Big-endian uint32 bytes. */
const u32 = (n: number) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];

/** An IDX image file: magic 0x00000803, count, rows, cols, then the pixel bytes. */
function idxImagesBytes(
  count: number,
  rows: number,
  cols: number,
  pixels: number[],
  magic = 2051,
): Uint8Array {
  return Uint8Array.from([...u32(magic), ...u32(count), ...u32(rows), ...u32(cols), ...pixels]);
}

function idxLabelsBytes(labels: number[], count = labels.length, magic = 2049): Uint8Array {
  return Uint8Array.from([...u32(magic), ...u32(count), ...labels]);
}

describe('IDX parsing (hand-made buffers)', () => {
  it('has ten class names in label order', () => {
    assert.equal(FASHION_CLASSES.length, 10);
    assert.equal(FASHION_CLASSES[0], 'T-shirt/top');
    assert.equal(FASHION_CLASSES[9], 'Ankle boot');
  });

  it('reads images and labels, raw or gzipped', () => {
    const bytes = idxImagesBytes(2, 2, 3, [0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15]);
    for (const input of [bytes, new Uint8Array(gzipSync(bytes))]) {
      const images = parseIdxImages(input, 'x.idx');
      assert.deepEqual([images.count, images.rows, images.cols], [2, 2, 3]);
      assert.deepEqual(Array.from(idxImage(images, 1)), [10, 11, 12, 13, 14, 15]);
    }
    assert.deepEqual(
      Array.from(parseIdxLabels(new Uint8Array(gzipSync(idxLabelsBytes([3, 9, 0]))))),
      [3, 9, 0],
    );
  });

  it('rejects a bad magic number, naming the file and both numbers', () => {
    assert.throws(
      () => parseIdxImages(idxImagesBytes(1, 1, 1, [0], 2049), 'labels-by-mistake.gz'),
      /labels-by-mistake\.gz: bad IDX magic number 2049 \(0x00000801\), expected 2051 \(0x00000803\)/,
    );
    assert.throws(
      () => parseIdxLabels(idxLabelsBytes([1], 1, 7), 'l.gz'),
      /l\.gz: bad IDX magic number 7 .*expected 2049/,
    );
  });

  it('rejects truncated headers, truncated data and trailing bytes', () => {
    assert.throws(
      () => parseIdxImages(Uint8Array.from(u32(2051)), 'short'),
      /short: truncated IDX header \(4 bytes, need 16\)/,
    );
    assert.throws(
      () => parseIdxImages(idxImagesBytes(3, 2, 2, [1, 2, 3, 4, 5]), 'cut.idx'),
      /cut\.idx: truncated IDX data: header declares 3×2×2 = 12 bytes, file has 5/,
    );
    assert.throws(
      () => parseIdxLabels(idxLabelsBytes([1, 2], 5), 'lab'),
      /lab: truncated IDX data: header declares 5 = 5 bytes, file has 2/,
    );
    assert.throws(
      () => parseIdxLabels(idxLabelsBytes([1, 2, 3], 2), 'lab'),
      /lab: IDX data has 1 trailing bytes/,
    );
    const gz = gzipSync(idxLabelsBytes([1, 2, 3]));
    assert.throws(
      () => parseIdxLabels(new Uint8Array(gz.subarray(0, gz.length - 6)), 'half.gz'),
      /half\.gz: gzip data is corrupt/,
    );
  });

  it('rejects images and labels that do not pair up', () => {
    const images = parseIdxImages(idxImagesBytes(2, 1, 1, [0, 0]));
    assert.throws(
      () => pairFashionMnist(images, Uint8Array.of(1, 2, 3), 'imgs.gz', 'labs.gz'),
      /imgs\.gz has 2 images but labs\.gz has 3 labels/,
    );
    assert.throws(
      () => pairFashionMnist(images, Uint8Array.of(1, 10), 'i', 'labs.gz'),
      /labs\.gz label 1 is 10, outside 0\.\.9/,
    );
    assert.throws(() => idxImage(images, 2), /index 2 outside 0\.\.1/);
  });

  describe('files', () => {
    let dir = '';
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'idx-'));
    });
    after(async () => {
      await rm(dir, { recursive: true });
    });
    it('names the file path in errors', async () => {
      const path = join(dir, 'broken-images.gz');
      await writeFile(path, gzipSync(idxImagesBytes(4, 28, 28, [1, 2, 3])));
      await assert.rejects(readIdxImages(path), (err: Error) =>
        err.message.startsWith(`${path}: truncated IDX data`),
      );
      const labels = join(dir, 'labels.gz');
      await writeFile(labels, gzipSync(idxLabelsBytes([4, 2])));
      assert.deepEqual(Array.from(await readIdxLabels(labels)), [4, 2]);
    });
  });
});

/**
 * Independent reference values, from:
 *   python -c "import gzip; d = gzip.open('train-images-idx3-ubyte.gz').read();
 *              print(sum(d[16:16+784]), sum(d[-784:]))"   (and likewise for labels / t10k)
 */
const REAL_CHECKS = {
  train: {
    count: 60000,
    firstImageSum: 76247,
    lastImageSum: 16684,
    firstLabels: [9, 0, 0, 3, 0, 2, 7, 2, 5, 5],
  },
  test: {
    count: 10000,
    firstImageSum: 33456,
    lastImageSum: 24390,
    firstLabels: [9, 2, 1, 1, 6, 1, 4, 6, 5, 7],
  },
};

const skip = dataSkipReason([
  'fashion-mnist/train-images-idx3-ubyte.gz',
  'fashion-mnist/train-labels-idx1-ubyte.gz',
  'fashion-mnist/t10k-images-idx3-ubyte.gz',
  'fashion-mnist/t10k-labels-idx1-ubyte.gz',
]);

describe('Fashion-MNIST (real files)', { skip }, () => {
  for (const split of ['train', 'test'] as const) {
    it(`loads ${split}: ${REAL_CHECKS[split].count} 28×28 images, 10 balanced classes`, async () => {
      const { images, labels } = await loadFashionMnist(split);
      const ref = REAL_CHECKS[split];
      assert.deepEqual([images.count, images.rows, images.cols], [ref.count, 28, 28]);
      assert.equal(images.pixels.length, ref.count * 784);
      assert.equal(labels.length, ref.count);
      // Fashion-MNIST is exactly balanced: 6000 (train) / 1000 (test) per class.
      const perClass = new Array(10).fill(0);
      for (const l of labels) perClass[l]++;
      assert.deepEqual(perClass, new Array(10).fill(ref.count / 10));
      assert.deepEqual(Array.from(labels.subarray(0, 10)), ref.firstLabels);
      const sum = (a: Uint8Array) => a.reduce((s, v) => s + v, 0);
      assert.equal(sum(idxImage(images, 0)), ref.firstImageSum);
      assert.equal(sum(idxImage(images, ref.count - 1)), ref.lastImageSum);
    });
  }
});
