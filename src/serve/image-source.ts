/**
 * Where an image part's bytes come from, under the operator's rules:
 *  - `data:` URLs (base64) always;
 *  - local paths (or `file:` URLs) only inside the folder given with `--image-root`, checked
 *    after resolving `..` and symlinks, so `../../etc/passwd` or a link out of the folder fails;
 *  - `http(s):` URLs only when the operator enables remote images (`--allow-remote-images`),
 *    with a size cap and a timeout; never otherwise.
 * Every refusal is a 400 naming the image part; decoding the bytes happens later.
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ImageRef } from './chat-request.ts';
import { ApiError, badRequest } from './errors.ts';

export interface ImageSourcePolicy {
  /** Folder local paths must resolve into (realpath), or null to refuse local paths. */
  imageRoot: string | null;
  allowRemote: boolean;
  /** Largest image accepted, in bytes, from any source. */
  maxImageBytes: number;
  /** Remote fetches give up after this long. */
  fetchTimeoutMs: number;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64URL = /^[A-Za-z0-9_-]*={0,2}$/;

/** Bytes of a `data:` URL; only image media types (or none) are accepted. */
export function decodeDataUrl(url: string, param: string, maxBytes: number): Uint8Array {
  const comma = url.indexOf(',');
  if (comma < 0)
    throw badRequest(`${param}: a data URL needs a comma before its data`, param, 'invalid_image_url');
  const meta = url.slice(5, comma).split(';');
  const mediaType = meta[0].trim().toLowerCase();
  const isBase64 = meta.slice(1).some((m) => m.trim().toLowerCase() === 'base64');
  if (mediaType !== '' && !mediaType.startsWith('image/') && mediaType !== 'application/octet-stream') {
    throw badRequest(
      `${param}: the data URL's media type is ${mediaType}, not an image (image/png, image/jpeg, …)`,
      param,
      'invalid_image',
    );
  }
  const payload = url.slice(comma + 1);
  let bytes: Uint8Array;
  if (isBase64) {
    const clean = payload.replace(/\s+/g, '');
    if (clean.length * 0.75 > maxBytes + 3) throw tooLarge(param, Math.floor(clean.length * 0.75), maxBytes);
    if (!BASE64.test(clean) && !BASE64URL.test(clean))
      throw badRequest(`${param}: the data URL's base64 data is malformed`, param, 'invalid_image');
    bytes = new Uint8Array(
      Buffer.from(clean, clean.includes('-') || clean.includes('_') ? 'base64url' : 'base64'),
    );
  } else {
    try {
      bytes = new Uint8Array(Buffer.from(decodeURIComponent(payload), 'latin1'));
    } catch {
      throw badRequest(`${param}: the data URL's data is not valid percent-encoding`, param, 'invalid_image');
    }
  }
  if (bytes.length === 0) throw emptyImage(param);
  if (bytes.length > maxBytes) throw tooLarge(param, bytes.length, maxBytes);
  return bytes;
}

const emptyImage = (param: string) =>
  badRequest(`${param}: the image is empty (0 bytes)`, param, 'invalid_image');
const tooLarge = (param: string, bytes: number, max: number) =>
  badRequest(
    `${param}: the image has ${bytes} bytes, more than this server's limit of ${max}`,
    param,
    'image_too_large',
  );

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

async function readLocal(url: string, param: string, policy: ImageSourcePolicy): Promise<Uint8Array> {
  if (!policy.imageRoot) {
    throw badRequest(
      `${param}: local image paths are disabled on this server (its operator can allow a folder with --image-root); send the image as a data: URL`,
      param,
      'local_images_disabled',
    );
  }
  let path: string;
  try {
    path = url.startsWith('file:') ? fileURLToPath(url) : url;
  } catch {
    throw badRequest(`${param}: not a valid file: URL`, param, 'invalid_image_url');
  }
  const root = policy.imageRoot;
  const lexical = resolve(root, path);
  const refuse = () =>
    badRequest(
      `${param}: ${url} is outside the folder this server reads images from`,
      param,
      'path_not_allowed',
    );
  if (path.includes('\0') || !inside(root, lexical)) throw refuse();
  let real: string;
  try {
    real = await realpath(lexical);
  } catch {
    throw badRequest(`${param}: no image file ${url} in the image folder`, param, 'image_not_found');
  }
  if (!inside(root, real)) throw refuse(); // a symlink pointing out of the folder
  const info = await stat(real);
  if (!info.isFile()) throw badRequest(`${param}: ${url} is not a file`, param, 'image_not_found');
  if (info.size === 0) throw emptyImage(param);
  if (info.size > policy.maxImageBytes) throw tooLarge(param, info.size, policy.maxImageBytes);
  return new Uint8Array(await readFile(real));
}

async function fetchRemote(
  url: string,
  param: string,
  policy: ImageSourcePolicy,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  if (!policy.allowRemote) {
    throw badRequest(
      `${param}: remote image URLs are disabled on this server (its operator can enable them with --allow-remote-images); send the image as a data: URL`,
      param,
      'remote_images_disabled',
    );
  }
  const timeout = AbortSignal.timeout(policy.fetchTimeoutMs);
  let response: Response;
  try {
    response = await fetch(url, {
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      redirect: 'follow',
    });
  } catch (e) {
    throw badRequest(
      `${param}: could not fetch ${url} (${(e as Error).message})`,
      param,
      'image_fetch_failed',
    );
  }
  if (!response.ok || !response.body) {
    throw badRequest(`${param}: fetching ${url} gave HTTP ${response.status}`, param, 'image_fetch_failed');
  }
  const declared = Number(response.headers.get('content-length'));
  if (declared > policy.maxImageBytes) {
    await response.body.cancel();
    throw tooLarge(param, declared, policy.maxImageBytes);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body) {
      size += chunk.length;
      if (size > policy.maxImageBytes) throw tooLarge(param, size, policy.maxImageBytes);
      chunks.push(chunk);
    }
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw badRequest(
      `${param}: reading ${url} failed (${(e as Error).message})`,
      param,
      'image_fetch_failed',
    );
  }
  if (size === 0) throw emptyImage(param);
  return new Uint8Array(Buffer.concat(chunks));
}

/** The bytes of one image part, or a 400 saying why not. */
export async function loadImageBytes(
  ref: ImageRef,
  policy: ImageSourcePolicy,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  const { url, param } = ref;
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'data') return decodeDataUrl(url, param, policy.maxImageBytes);
  if (scheme === 'http' || scheme === 'https') return fetchRemote(url, param, policy, signal);
  if (scheme === undefined || scheme === 'file') return readLocal(url, param, policy);
  throw badRequest(
    `${param}: unsupported URL scheme "${scheme}:" (use data:, a local path, or http(s): where enabled)`,
    param,
    'invalid_image_url',
  );
}
