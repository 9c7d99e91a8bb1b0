/**
 * The body of an image-decoding worker thread (started by image-decoder.ts): decode one image and
 * prepare its pixels for the model exactly as MavenModel.preprocessRgb does (fitToSquare, then
 * normalizeImage, per encoder resolution), plus the square the ViT sees, for overlays.
 *
 * Decoding and Pillow-exact resizing of a large photo take up to a second of CPU; in a worker
 * they neither block the server's event loop nor outlive a request's deadline: the server
 * terminates the worker when the deadline passes.
 */
import { parentPort } from 'node:worker_threads';
import {
  type DecodedImage,
  fitToSquare,
  ImageError,
  type ImagePreprocessConfig,
  normalizeImage,
} from '../models/image.ts';
import { decodeImage } from '../node/decode-image.ts';

export interface DecodeJob {
  bytes: Uint8Array;
  label: string;
  maxPixels: number;
  /** One per encoder resolution; the first is the vision tower's (its square is the view). */
  configs: ImagePreprocessConfig[];
}

export type DecodeReply =
  | { ok: true; pixels: Float32Array[]; view: DecodedImage }
  | { ok: false; imageError: boolean; label: string; reason: string; message: string };

export async function runDecodeJob(job: DecodeJob): Promise<DecodeReply> {
  try {
    const decoded = await decodeImage(job.bytes, job.label, { maxPixels: job.maxPixels });
    const squares = job.configs.map((config) => fitToSquare(decoded, config));
    const pixels = squares.map(
      (square, i) => normalizeImage(square, job.configs[i].mean, job.configs[i].std).data as Float32Array,
    );
    // Transferred to the main thread: an array that shares its buffer (a view into a pooled or
    // larger allocation) is copied first, so only memory this job owns is handed over.
    const owned = (a: Uint8Array) =>
      a.byteOffset === 0 && a.buffer.byteLength === a.byteLength ? a : a.slice();
    const v = squares[0];
    return { ok: true, pixels, view: { width: v.width, height: v.height, rgb: owned(v.rgb) } };
  } catch (e) {
    if (e instanceof ImageError) {
      return { ok: false, imageError: true, label: e.label, reason: e.reason, message: e.message };
    }
    const message = e instanceof Error ? e.message : String(e);
    return { ok: false, imageError: false, label: job.label, reason: message, message };
  }
}

if (parentPort) {
  const port = parentPort;
  port.on('message', async (job: DecodeJob) => {
    const reply = await runDecodeJob(job);
    const transfer = reply.ok ? [...reply.pixels.map((p) => p.buffer), reply.view.rgb.buffer] : [];
    port.postMessage(reply, transfer as ArrayBuffer[]);
  });
}
