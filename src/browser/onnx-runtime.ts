/**
 * onnxruntime-web for the page: picks the execution provider (WebGPU when the browser offers an
 * adapter, else wasm), sets the wasm thread count (several only when the page is cross-origin
 * isolated, the condition for SharedArrayBuffer), points the runtime at the .wasm files the build
 * copies next to the bundle, and hands the module to the engine (provideOnnxRuntime), which would
 * otherwise import onnxruntime-node or onnxruntime-web by name — a bare import a page cannot resolve.
 *
 * Each provider loads its own build of the runtime on demand (the bundle splits them): the
 * WebGPU one carries a 28 MB .wasm, the wasm-only one 14 MB, so a browser without WebGPU never
 * downloads the larger one.
 */
import type * as OrtWeb from 'onnxruntime-web';
import {
  type ExecutionProvider,
  type OnnxRuntimeModule,
  provideOnnxRuntime,
  type RuntimeOptions,
} from '../engine/index.ts';

export type ProviderPreference = 'auto' | 'wasm' | 'webgpu';

export interface BrowserRuntime {
  /** What the model's sessions get: the provider and the thread count. */
  options: Required<RuntimeOptions>;
  /** wasm threads; 1 unless the page is cross-origin isolated. */
  threads: number;
  crossOriginIsolated: boolean;
  /** One line for the page: provider, threads, and why not more. */
  description: string;
}

/** Folder of the runtime's .mjs and .wasm files, relative to the bundle (the build puts them there). */
export const RUNTIME_FILES_FOLDER = 'ort/';

async function hasWebGpuAdapter(): Promise<boolean> {
  const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  if (!gpu) return false;
  try {
    return (await gpu.requestAdapter()) != null;
  } catch {
    return false;
  }
}

/**
 * Loads and configures onnxruntime-web. `preference` 'auto' takes WebGPU when the browser has an
 * adapter; 'webgpu' without one is an error that says so.
 */
export async function loadBrowserRuntime(preference: ProviderPreference = 'auto'): Promise<BrowserRuntime> {
  const webgpu = preference !== 'wasm' && (await hasWebGpuAdapter());
  if (preference === 'webgpu' && !webgpu) {
    throw new Error('WebGPU was asked for, but this browser offers no WebGPU adapter; use wasm');
  }
  const ep: ExecutionProvider = webgpu ? 'webgpu' : 'wasm';
  // The WebGPU build also runs wasm kernels (for ops WebGPU lacks); the wasm build is half the size.
  const ort: typeof OrtWeb = webgpu ? await import('onnxruntime-web') : await import('onnxruntime-web/wasm');
  const isolated = globalThis.crossOriginIsolated === true;
  const cores = navigator.hardwareConcurrency || 1;
  // Without cross-origin isolation there is no SharedArrayBuffer, so wasm cannot share memory
  // between threads; onnxruntime would fall back to one thread anyway, with a warning.
  const threads = isolated ? Math.max(1, Math.min(cores, 8)) : 1;
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.wasmPaths = new URL(RUNTIME_FILES_FOLDER, import.meta.url).href;
  provideOnnxRuntime(ep, ort as unknown as OnnxRuntimeModule);
  const why = isolated ? '' : ' (one thread: the page is not cross-origin isolated)';
  return {
    options: { ep, threads },
    threads,
    crossOriginIsolated: isolated,
    description: `onnxruntime-web ${ort.env.versions.web ?? ''} on ${ep}, wasm SIMD, ${threads} thread${threads === 1 ? '' : 's'}${why}`,
  };
}
