/**
 * Where an image part's bytes come from, under the operator's rules:
 *  - `data:` URLs (base64) always;
 *  - local paths (or `file:` URLs) only inside the folder given with `--image-root`, checked
 *    after resolving `..` and symlinks, so `../../etc/passwd` or a link out of the folder fails;
 *  - `http(s):` URLs only when the operator enables remote images (`--allow-remote-images`),
 *    and then only from public addresses: loopback, private and link-local ranges are refused
 *    after DNS resolution and on every redirect (address-filter.ts), the body is capped while
 *    it streams, and every failure gives the same message (no probing of the local network).
 * Every refusal is a 400 naming the image part; decoding the bytes happens later.
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  addressRefusal,
  checkedLookup,
  isPublicAddress,
  type Resolver,
  systemResolver,
} from './address-filter.ts';
import type { ImageRef } from './chat-request.ts';
import { type ApiError, badRequest } from './errors.ts';

export interface ImageSourcePolicy {
  /** Folder local paths must resolve into (realpath), or null to refuse local paths. */
  imageRoot: string | null;
  allowRemote: boolean;
  /** Largest image accepted, in bytes, from any source. */
  maxImageBytes: number;
  /** Remote fetches give up after this long (redirects and body included). */
  fetchTimeoutMs: number;
  /**
   * Which addresses a remote fetch may connect to (after DNS, on every redirect); default public
   * unicast only (address-filter.ts). For tests and special deployments.
   */
  allowAddress?: (address: string, port: number) => boolean;
  /** How host names are resolved; default the system resolver. For tests. */
  resolver?: Resolver;
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

/** Redirects followed per remote image, each one checked like the first URL. */
const MAX_REDIRECTS = 5;

export const isRemote = (ref: ImageRef): boolean => /^https?:/i.test(ref.url);

/**
 * The one answer for every failure of a remote image — refused address, DNS failure, closed
 * port, timeout, HTTP status, too many bytes, not an image — so the server cannot be used to
 * tell them apart (to map the network it sits in). The reason goes to the server's log only.
 */
export function remoteImageFailed(ref: ImageRef, detail?: string): ApiError {
  const err = badRequest(
    `${ref.param}: could not get an image from this URL (the server fetches only public http(s) addresses that answer 200 with an image of at most its size limit)`,
    ref.param,
    'image_fetch_failed',
  );
  if (detail) err.detail = `${ref.url}: ${detail}`;
  return err;
}

class FetchFailure extends Error {}

interface Hop {
  status: number;
  location: string | undefined;
  declared: number;
  body: IncomingMessage;
}

/** One GET, connecting only to an allowed address (checked after DNS, before connecting). */
function getOnce(url: URL, policy: ImageSourcePolicy, signal: AbortSignal): Promise<Hop> {
  const secure = url.protocol === 'https:';
  const port = url.port ? Number(url.port) : secure ? 443 : 80;
  const allow = (address: string) =>
    policy.allowAddress ? policy.allowAddress(address, port) : isPublicAddress(address);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (isIP(host)) {
    // Literal addresses never reach a lookup: check them here.
    if (!allow(host)) {
      throw new FetchFailure(`${host} is ${addressRefusal(host) ?? 'not allowed'}; not fetched`);
    }
  }
  const lookup = checkedLookup(policy.resolver ?? systemResolver, allow);
  return new Promise<Hop>((resolveHop, reject) => {
    const req = (secure ? httpsRequest : httpRequest)(
      url,
      {
        method: 'GET',
        lookup,
        signal,
        agent: false,
        headers: { accept: 'image/*', 'user-agent': 'maven-ts' },
      },
      (res) =>
        resolveHop({
          status: res.statusCode ?? 0,
          location: res.headers.location,
          declared: Number(res.headers['content-length'] ?? Number.NaN),
          body: res,
        }),
    );
    req.on('error', reject);
    req.end();
  });
}

async function fetchRemote(
  ref: ImageRef,
  policy: ImageSourcePolicy,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  const { url, param } = ref;
  if (!policy.allowRemote) {
    throw badRequest(
      `${param}: remote image URLs are disabled on this server (its operator can enable them with --allow-remote-images); send the image as a data: URL`,
      param,
      'remote_images_disabled',
    );
  }
  // One timer for the whole fetch (every redirect and the body), owned here; the request's
  // deadline (signal) ends it too.
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new FetchFailure(`no image within ${policy.fetchTimeoutMs} ms`)),
    policy.fetchTimeoutMs,
  );
  const onAbort = () => controller.abort(signal!.reason);
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  try {
    let current: URL;
    try {
      current = new URL(url);
    } catch {
      throw new FetchFailure('not a valid URL');
    }
    for (let hops = 0; ; hops++) {
      if (current.protocol !== 'http:' && current.protocol !== 'https:')
        throw new FetchFailure(`redirected to a ${current.protocol} URL`);
      if (current.username || current.password) throw new FetchFailure('URL with credentials');
      const hop = await getOnce(current, policy, controller.signal);
      if (hop.status >= 300 && hop.status < 400 && hop.location !== undefined) {
        hop.body.destroy();
        if (hops >= MAX_REDIRECTS) throw new FetchFailure(`more than ${MAX_REDIRECTS} redirects`);
        try {
          current = new URL(hop.location, current);
        } catch {
          throw new FetchFailure(`redirect to an invalid URL ${JSON.stringify(hop.location)}`);
        }
        continue;
      }
      if (hop.status < 200 || hop.status >= 300) {
        hop.body.destroy();
        throw new FetchFailure(`HTTP ${hop.status}`);
      }
      if (hop.declared > policy.maxImageBytes) {
        hop.body.destroy();
        throw new FetchFailure(`Content-Length ${hop.declared} is over ${policy.maxImageBytes} bytes`);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of hop.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > policy.maxImageBytes) {
          hop.body.destroy();
          throw new FetchFailure(`more than ${policy.maxImageBytes} bytes`);
        }
        chunks.push(chunk);
      }
      if (size === 0) throw new FetchFailure('empty body');
      return new Uint8Array(Buffer.concat(chunks));
    }
  } catch (e) {
    // The request's own deadline or the client leaving is not the URL's fault: pass it on.
    if (signal?.aborted && e === signal.reason) throw e;
    if (signal?.aborted) throw signal.reason;
    const reason = controller.signal.aborted ? controller.signal.reason : e;
    throw remoteImageFailed(ref, reason instanceof Error ? reason.message : String(reason));
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
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
  if (scheme === 'http' || scheme === 'https') return fetchRemote(ref, policy, signal);
  if (scheme === undefined || scheme === 'file') return readLocal(url, param, policy);
  throw badRequest(
    `${param}: unsupported URL scheme "${scheme}:" (use data:, a local path, or http(s): where enabled)`,
    param,
    'invalid_image_url',
  );
}
