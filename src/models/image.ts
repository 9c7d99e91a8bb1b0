/**
 * RGB pixels in, ViT pixels out: resizing, cropping, padding and normalisation, plain TypeScript
 * over RGB bytes, so it runs in a browser. Decoding files and encoded bytes (sharp) is the Node
 * adapter's part: src/node/decode-image.ts.
 *
 * The geometry reproduces the pipelines the pretrained encoders were trained with, pixel for
 * pixel: transformers' CLIPImageProcessor ('clip'), LLaVA's expand-to-square ('pad') and SEED's
 * torchvision Resize((s, s)) ('stretch'). All three resample with Pillow, so resizing here is
 * Pillow's algorithm (separable convolution, antialiased when shrinking, 22-bit fixed-point
 * weights, uint8 rounding between the horizontal and vertical pass) rather than sharp's: libvips
 * places samples and antialiases differently, and a ViT is sensitive to that kind of shift. The
 * match is tested against a Pillow-generated fixture (scripts/fixtures/image_reference.py).
 */
import { HostTensor } from '../engine/index.ts';

export type Resample = 'bicubic' | 'bilinear' | 'nearest';

export interface ImagePreprocessConfig {
  /** Side of the square output, e.g. 336 for CLIP ViT-L/14-336, 224 for SEED's tokenizer. */
  size: number;
  /** Per-channel mean and std of the encoder's training data, for (x / 255 - mean) / std. */
  mean: [number, number, number];
  std: [number, number, number];
  /** Pillow filter used by the reference pipeline: CLIP and SEED both use bicubic. */
  resample: Resample;
  /**
   * 'clip': resize the shortest side to `size`, centre crop (CLIPImageProcessor; loses the edges
   * of non-square images). 'pad': LLaVA's expand-to-square on the mean colour, then as 'clip'
   * (keeps the whole image). 'stretch': resize to size × size ignoring the aspect ratio (SEED).
   */
  mode: 'clip' | 'pad' | 'stretch';
}

/** OpenAI CLIP statistics, shared by CLIP ViTs, EVA-CLIP and SEED's tokenizer. */
const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

/** transformers' CLIPImageProcessor for openai/clip-vit-large-patch14-336. */
export const CLIP_PREPROCESS: ImagePreprocessConfig = {
  size: 336,
  mean: CLIP_MEAN,
  std: CLIP_STD,
  resample: 'bicubic',
  mode: 'clip',
};

/** LLaVA-1.5 (image_aspect_ratio = 'pad'), which MaVEn's continuous branch follows. */
export const LLAVA_PREPROCESS: ImagePreprocessConfig = { ...CLIP_PREPROCESS, mode: 'pad' };

/** SEED's discrete tokenizer: Resize((224, 224), bicubic), CLIP normalisation. */
export const SEED_PREPROCESS: ImagePreprocessConfig = { ...CLIP_PREPROCESS, size: 224, mode: 'stretch' };

export interface DecodedImage {
  width: number;
  height: number;
  /** 8-bit RGB, row-major, channels interleaved: [height, width, 3]. */
  rgb: Uint8Array;
}

/** A file or buffer that cannot be turned into an image; names the input and the reason. */
export class ImageError extends Error {
  override readonly name = 'ImageError';
  constructor(
    readonly label: string,
    readonly reason: string,
  ) {
    super(`${label}: ${reason}`);
  }
}

/** Throws unless `image` is a well-formed DecodedImage. */
export function checkImage(image: DecodedImage, what = 'image'): void {
  const { width, height, rgb } = image ?? ({} as DecodedImage);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new ImageError(what, `width and height must be positive integers, got ${width}×${height}`);
  }
  if (!(rgb instanceof Uint8Array) || rgb.length !== width * height * 3) {
    throw new ImageError(
      what,
      `rgb must be a Uint8Array of ${width}×${height}×3 = ${width * height * 3} bytes, got ${rgb?.length ?? typeof rgb}`,
    );
  }
}

// --- Pillow-exact resampling -------------------------------------------------------------------

interface Filter {
  /** Half-width of the kernel in source pixels at scale 1. */
  support: number;
  weight(x: number): number;
}

const FILTERS: Record<Exclude<Resample, 'nearest'>, Filter> = {
  bilinear: {
    support: 1,
    weight: (x) => {
      const t = Math.abs(x);
      return t < 1 ? 1 - t : 0;
    },
  },
  bicubic: {
    // Keys' cubic with a = -0.5 (Catmull-Rom), as in Pillow.
    support: 2,
    weight: (x) => {
      const a = -0.5;
      const t = Math.abs(x);
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    },
  },
};

/** Pillow's weights are fixed point with 22 fractional bits (32 - 8 - 2: headroom for 8-bit sums). */
const PRECISION_BITS = 22;
const ONE = 2 ** PRECISION_BITS;

interface Coefficients {
  /** Per output pixel: first source index and number of taps. */
  first: Int32Array;
  count: Int32Array;
  /** [outSize, taps] fixed-point weights. */
  weights: Int32Array;
  taps: number;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc, for the full source range. */
function coefficients(inSize: number, outSize: number, filter: Filter): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1); // shrinking widens the kernel: antialiasing
  const support = filter.support * filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * taps);
  const w = new Float64Array(taps);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const inverse = 1 / filterScale; // Pillow multiplies by the reciprocal; dividing can differ in the last bit
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const hi = Math.min(Math.trunc(center + support + 0.5), inSize);
    const n = hi - lo;
    let total = 0;
    for (let i = 0; i < n; i++) {
      w[i] = filter.weight((i + lo - center + 0.5) * inverse);
      total += w[i];
    }
    for (let i = 0; i < n; i++) {
      const k = total !== 0 ? w[i] / total : w[i];
      weights[o * taps + i] = k < 0 ? Math.trunc(-0.5 + k * ONE) : Math.trunc(0.5 + k * ONE);
    }
    first[o] = lo;
    count[o] = n;
  }
  return { first, count, weights, taps };
}

function clip8(acc: number): number {
  const v = Math.floor(acc / ONE);
  return Math.min(Math.max(v, 0), 255);
}

/** Resamples along x: [h, inW, 3] → [h, outW, 3]. */
function resampleRows(src: Uint8Array, inW: number, h: number, outW: number, c: Coefficients): Uint8Array {
  const out = new Uint8Array(h * outW * 3);
  for (let y = 0; y < h; y++) {
    const row = y * inW * 3;
    for (let o = 0; o < outW; o++) {
      const k0 = o * c.taps;
      let r = ONE / 2;
      let g = ONE / 2;
      let b = ONE / 2;
      for (let i = 0, p = row + c.first[o] * 3; i < c.count[o]; i++, p += 3) {
        const k = c.weights[k0 + i];
        r += src[p] * k;
        g += src[p + 1] * k;
        b += src[p + 2] * k;
      }
      const q = (y * outW + o) * 3;
      out[q] = clip8(r);
      out[q + 1] = clip8(g);
      out[q + 2] = clip8(b);
    }
  }
  return out;
}

/** Resamples along y: [inH, w, 3] → [outH, w, 3]. */
function resampleColumns(src: Uint8Array, w: number, outH: number, c: Coefficients): Uint8Array {
  const stride = w * 3;
  const out = new Uint8Array(outH * stride);
  for (let o = 0; o < outH; o++) {
    const k0 = o * c.taps;
    const start = c.first[o] * stride;
    for (let x = 0; x < stride; x++) {
      let acc = ONE / 2;
      for (let i = 0, p = start + x; i < c.count[o]; i++, p += stride) acc += src[p] * c.weights[k0 + i];
      out[o * stride + x] = clip8(acc);
    }
  }
  return out;
}

/** Pillow's NEAREST resize (an affine scale): source index floor((o + 0.5) · in/out), accumulated as Pillow does. */
function nearestIndices(inSize: number, outSize: number): Int32Array {
  const step = inSize / outSize;
  const idx = new Int32Array(outSize);
  let pos = step * 0.5;
  for (let o = 0; o < outSize; o++) {
    idx[o] = Math.min(Math.trunc(pos), inSize - 1);
    pos += step;
  }
  return idx;
}

/** Resizes like Pillow's Image.resize((width, height), resample) with no reducing gap. */
export function resizeImage(
  image: DecodedImage,
  width: number,
  height: number,
  resample: Resample,
): DecodedImage {
  checkImage(image, 'resizeImage input');
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new ImageError('resizeImage', `target size must be positive integers, got ${width}×${height}`);
  }
  if (width === image.width && height === image.height) return { width, height, rgb: image.rgb.slice() };
  if (resample === 'nearest') {
    const xs = nearestIndices(image.width, width);
    const ys = nearestIndices(image.height, height);
    const rgb = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const p = (ys[y] * image.width + xs[x]) * 3;
        rgb.set(image.rgb.subarray(p, p + 3), (y * width + x) * 3);
      }
    }
    return { width, height, rgb };
  }
  const filter = FILTERS[resample];
  if (!filter)
    throw new ImageError('resizeImage', `unknown resample '${resample}' (bicubic, bilinear, nearest)`);
  // Horizontal pass first, rounded to uint8, then vertical: Pillow's order and rounding.
  let rgb = image.rgb;
  if (width !== image.width) {
    rgb = resampleRows(rgb, image.width, image.height, width, coefficients(image.width, width, filter));
  }
  if (height !== image.height) {
    rgb = resampleColumns(rgb, width, height, coefficients(image.height, height, filter));
  }
  return { width, height, rgb: rgb === image.rgb ? rgb.slice() : rgb };
}

/** LLaVA's expand2square: the image centred on a square of `fill` (offset rounded down). */
export function expandToSquare(image: DecodedImage, fill: readonly [number, number, number]): DecodedImage {
  checkImage(image, 'expandToSquare input');
  const { width, height } = image;
  if (width === height) return { width, height, rgb: image.rgb.slice() };
  const side = Math.max(width, height);
  const left = Math.floor((side - width) / 2);
  const top = Math.floor((side - height) / 2);
  const rgb = new Uint8Array(side * side * 3);
  for (let i = 0; i < side * side; i++) rgb.set(fill, i * 3);
  for (let y = 0; y < height; y++) {
    rgb.set(image.rgb.subarray(y * width * 3, (y + 1) * width * 3), ((top + y) * side + left) * 3);
  }
  return { width: side, height: side, rgb };
}

/** transformers' center_crop: top = ⌊(H - h) / 2⌋, left = ⌊(W - w) / 2⌋. */
export function centerCrop(image: DecodedImage, width: number, height: number): DecodedImage {
  checkImage(image, 'centerCrop input');
  if (width > image.width || height > image.height || width <= 0 || height <= 0) {
    throw new ImageError(
      'centerCrop',
      `cannot crop ${width}×${height} out of a ${image.width}×${image.height} image`,
    );
  }
  const top = Math.floor((image.height - height) / 2);
  const left = Math.floor((image.width - width) / 2);
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * image.width + left) * 3;
    rgb.set(image.rgb.subarray(from, from + width * 3), y * width * 3);
  }
  return { width, height, rgb };
}

/** The mean colour LLaVA pads with: int(mean · 255) per channel. */
export function padColour(mean: readonly [number, number, number]): [number, number, number] {
  return [Math.trunc(mean[0] * 255), Math.trunc(mean[1] * 255), Math.trunc(mean[2] * 255)];
}

/** The size × size RGB pixels the encoder sees, before normalisation. */
export function fitToSquare(image: DecodedImage, config: ImagePreprocessConfig): DecodedImage {
  checkConfig(config);
  const { size, resample, mode } = config;
  if (mode === 'stretch') return resizeImage(image, size, size, resample);
  const source = mode === 'pad' ? expandToSquare(image, padColour(config.mean)) : image;
  // get_resize_output_image_size(default_to_square=False): short side → size, long side truncated.
  const { width, height } = source;
  const short = Math.min(width, height);
  const long = Math.max(width, height);
  const scaledLong = Math.trunc((size * long) / short);
  const [w, h] = width <= height ? [size, scaledLong] : [scaledLong, size];
  return centerCrop(resizeImage(source, w, h, resample), size, size);
}

/**
 * float32 [3, H, W], (x / 255 - mean) / std, with transformers' float32 rounding: x · (1/255)
 * in float64 cast to float32, then subtract and divide in float32.
 */
export function normalizeImage(
  image: DecodedImage,
  mean: readonly [number, number, number],
  std: readonly [number, number, number],
): HostTensor<'float32'> {
  checkImage(image, 'normalizeImage input');
  const levels = [0, 1, 2].map((c) => {
    const m = Math.fround(mean[c]);
    const s = Math.fround(std[c]);
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) lut[v] = Math.fround(Math.fround(Math.fround(v * (1 / 255)) - m) / s);
    return lut;
  });
  const n = image.width * image.height;
  const out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    out[i] = levels[0][image.rgb[i * 3]]; // HWC → CHW
    out[n + i] = levels[1][image.rgb[i * 3 + 1]];
    out[2 * n + i] = levels[2][image.rgb[i * 3 + 2]];
  }
  return new HostTensor('float32', [3, image.height, image.width], out);
}

/** Fits a decoded image to the square and normalises it: float32 [3, size, size]. */
export function preprocessImage(
  image: DecodedImage,
  config: ImagePreprocessConfig,
  label = 'preprocessImage input',
): HostTensor<'float32'> {
  checkConfig(config);
  checkImage(image, label);
  return normalizeImage(fitToSquare(image, config), config.mean, config.std);
}

/** [3, S, S] tensors → one [N, 3, S, S] batch. */
export function stackImages(images: readonly HostTensor[]): HostTensor<'float32'> {
  if (images.length === 0) throw new Error('stackImages: no images to stack');
  const shape = images[0].shape;
  images.forEach((t, i) => {
    if (
      t.dtype !== 'float32' ||
      t.shape.length !== 3 ||
      t.shape[0] !== 3 ||
      t.shape.some((d, j) => d !== shape[j])
    ) {
      throw new Error(
        `stackImages: image ${i} is ${t.dtype} [${t.shape.join(', ')}], expected float32 [3, ${shape[1]}, ${shape[2]}] like image 0`,
      );
    }
  });
  const per = images[0].size;
  const out = new Float32Array(images.length * per);
  images.forEach((t, i) => {
    out.set(t.data as Float32Array, i * per);
  });
  return new HostTensor('float32', [images.length, ...shape], out); // [N, 3, S, S]
}

/** Undoes the normalisation of a [3, H, W] (or [1, 3, H, W]) tensor: the RGB it came from, for display. */
export function rgbFromTensor(
  tensor: HostTensor,
  mean: readonly [number, number, number],
  std: readonly [number, number, number],
): DecodedImage {
  const dims = tensor.shape.length === 4 && tensor.shape[0] === 1 ? tensor.shape.slice(1) : tensor.shape;
  if (dims.length !== 3 || dims[0] !== 3 || !(tensor.data instanceof Float32Array)) {
    throw new Error(
      `rgbFromTensor: expected float32 [3, H, W] or [1, 3, H, W], got ${tensor.dtype} [${tensor.shape.join(', ')}]`,
    );
  }
  const [, height, width] = dims;
  const n = width * height;
  const rgb = new Uint8Array(n * 3);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < n; i++) {
      const v = Math.round((tensor.data[c * n + i] * std[c] + mean[c]) * 255);
      rgb[i * 3 + c] = Math.min(Math.max(v, 0), 255);
    }
  }
  return { width, height, rgb };
}

function checkConfig(config: ImagePreprocessConfig): void {
  const { size, mean, std, resample, mode } = config ?? ({} as ImagePreprocessConfig);
  const bad = (reason: string) => new Error(`ImagePreprocessConfig: ${reason}`);
  if (!Number.isInteger(size) || size <= 0 || size > 8192)
    throw bad(`size must be an integer in 1..8192, got ${size}`);
  if (!Array.isArray(mean) || mean.length !== 3 || !mean.every(Number.isFinite)) {
    throw bad(`mean must be 3 finite numbers, got ${JSON.stringify(mean)}`);
  }
  if (!Array.isArray(std) || std.length !== 3 || !std.every((s) => Number.isFinite(s) && s > 0)) {
    throw bad(`std must be 3 positive numbers, got ${JSON.stringify(std)}`);
  }
  if (!['bicubic', 'bilinear', 'nearest'].includes(resample)) {
    throw bad(`resample must be 'bicubic', 'bilinear' or 'nearest', got '${resample}'`);
  }
  if (!['clip', 'pad', 'stretch'].includes(mode))
    throw bad(`mode must be 'clip', 'pad' or 'stretch', got '${mode}'`);
}
