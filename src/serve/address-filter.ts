/**
 * Which IP addresses a server-side image fetch may connect to: public unicast only. Loopback,
 * private (RFC 1918, unique-local), link-local, carrier-grade NAT, multicast, documentation,
 * benchmarking and reserved ranges are refused, as are IPv6 forms that embed an IPv4 address
 * (IPv4-mapped, NAT64, 6to4, Teredo) when the embedded one is refused — so `--allow-remote-images`
 * cannot be used to reach the server's own machine or its network.
 *
 * `checkedLookup` is the DNS step of every connection the fetcher opens (node:http's `lookup`
 * option): names are resolved once, every address is checked, and the socket connects to the
 * address that was checked (no second resolution an attacker's DNS could answer differently).
 */
import { lookup as dnsLookup } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to every address it has (default: the system resolver, dns.lookup). */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = (hostname) =>
  new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) => {
      if (err) reject(err);
      else resolve(addresses.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 })));
    });
  });

function parseIPv4(s: string): number[] | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  const bytes = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : Number.NaN));
  return bytes.every((b) => b >= 0 && b <= 255) ? bytes : null;
}

/** The 16 bytes of an IPv6 address (zone id ignored), or null when it is not one. */
export function parseIPv6(input: string): number[] | null {
  let s = input.split('%')[0].toLowerCase();
  const lastColon = s.lastIndexOf(':');
  if (lastColon < 0) return null;
  const last = s.slice(lastColon + 1);
  if (last.includes('.')) {
    const v4 = parseIPv4(last);
    if (!v4) return null;
    s = `${s.slice(0, lastColon + 1)}${((v4[0] << 8) | v4[1]).toString(16)}:${((v4[2] << 8) | v4[3]).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const fill = 8 - head.length - tail.length;
  if (halves.length === 1 ? fill !== 0 : fill < 0) return null;
  const groups = [...head, ...Array<string>(fill).fill('0'), ...tail];
  if (!groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return null;
  return groups.flatMap((g) => {
    const n = Number.parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}

const inV4 = (b: readonly number[], net: readonly number[], bits: number) => {
  for (let i = 0; i < 4; i++) {
    const take = Math.max(0, Math.min(8, bits - 8 * i));
    if (take === 0) break;
    const mask = (0xff << (8 - take)) & 0xff;
    if ((b[i] & mask) !== (net[i] & mask)) return false;
  }
  return true;
};

/** [network, prefix length, what it is] of every IPv4 range refused. */
const BLOCKED_V4: readonly [number[], number, string][] = [
  [[0, 0, 0, 0], 8, '"this network"'],
  [[10, 0, 0, 0], 8, 'private'],
  [[100, 64, 0, 0], 10, 'carrier-grade NAT'],
  [[127, 0, 0, 0], 8, 'loopback'],
  [[169, 254, 0, 0], 16, 'link-local'],
  [[172, 16, 0, 0], 12, 'private'],
  [[192, 0, 0, 0], 24, 'IETF protocol assignments'],
  [[192, 0, 2, 0], 24, 'documentation'],
  [[192, 88, 99, 0], 24, '6to4 relay'],
  [[192, 168, 0, 0], 16, 'private'],
  [[198, 18, 0, 0], 15, 'benchmarking'],
  [[198, 51, 100, 0], 24, 'documentation'],
  [[203, 0, 113, 0], 24, 'documentation'],
  [[224, 0, 0, 0], 4, 'multicast'],
  [[240, 0, 0, 0], 4, 'reserved'],
];

function v4Refusal(b: readonly number[]): string | null {
  for (const [net, bits, what] of BLOCKED_V4) if (inV4(b, net, bits)) return what;
  return null;
}

const hasPrefix = (b: readonly number[], prefix: readonly number[], bits: number) => {
  for (let i = 0; i * 8 < bits; i++) {
    const take = Math.min(8, bits - 8 * i);
    const mask = (0xff << (8 - take)) & 0xff;
    if ((b[i] & mask) !== ((prefix[i] ?? 0) & mask)) return false;
  }
  return true;
};

function v6Refusal(b: readonly number[]): string | null {
  if (b.every((x) => x === 0)) return 'unspecified';
  if (b.slice(0, 15).every((x) => x === 0) && b[15] === 1) return 'loopback';
  // IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible ::a.b.c.d: the IPv4 address decides.
  if (
    b.slice(0, 10).every((x) => x === 0) &&
    ((b[10] === 0xff && b[11] === 0xff) || (b[10] === 0 && b[11] === 0))
  )
    return v4Refusal(b.slice(12));
  if (hasPrefix(b, [0x00, 0x64, 0xff, 0x9b], 96)) return v4Refusal(b.slice(12)); // NAT64
  if (hasPrefix(b, [0x20, 0x02], 16)) return v4Refusal(b.slice(2, 6)); // 6to4
  if (hasPrefix(b, [0x20, 0x01, 0x00, 0x00], 32)) return 'Teredo';
  if (hasPrefix(b, [0x01, 0x00], 64)) return 'discard-only';
  if (hasPrefix(b, [0x20, 0x01, 0x0d, 0xb8], 32)) return 'documentation';
  if (hasPrefix(b, [0xfc], 7)) return 'unique-local (private)';
  if (hasPrefix(b, [0xfe, 0x80], 10)) return 'link-local';
  if (hasPrefix(b, [0xfe, 0xc0], 10)) return 'site-local';
  if (hasPrefix(b, [0xff], 8)) return 'multicast';
  return null;
}

/**
 * Why `address` may not be fetched from ('loopback', 'private', 'link-local', …), or null for a
 * public unicast address. Anything that is not an IP address is refused too.
 */
export function addressRefusal(address: string): string | null {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const family = isIP(bare.split('%')[0]);
  if (family === 4) return v4Refusal(parseIPv4(bare)!);
  if (family === 6) {
    const bytes = parseIPv6(bare);
    return bytes ? v6Refusal(bytes) : 'not an IP address';
  }
  return 'not an IP address';
}

export const isPublicAddress = (address: string): boolean => addressRefusal(address) === null;

/** Thrown (through the connection) when a host resolves to an address that is refused. */
export class AddressRefusedError extends Error {
  override readonly name = 'AddressRefusedError';
  constructor(
    readonly host: string,
    readonly address: string,
    readonly reason: string,
  ) {
    super(`${host} resolves to ${address} (${reason}), which this server does not fetch from`);
  }
}

/**
 * A node:net `lookup` that resolves with `resolver` and refuses the connection unless every
 * address passes `allowed` (default: public addresses only). Works for both of Node's calling
 * conventions (`all: true` for happy-eyeballs connections, and a single address).
 */
type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address?: string | ResolvedAddress[],
  family?: number,
) => void;

export function checkedLookup(
  resolver: Resolver = systemResolver,
  allowed: (address: string) => boolean = isPublicAddress,
): LookupFunction {
  const lookup = (
    hostname: string,
    options: { all?: boolean } | LookupCallback,
    callback?: LookupCallback,
  ) => {
    const cb = (typeof options === 'function' ? options : callback) as LookupCallback;
    const all = typeof options === 'object' && options?.all === true;
    resolver(hostname).then(
      (addresses) => {
        if (addresses.length === 0) {
          cb(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }));
          return;
        }
        for (const a of addresses) {
          if (!allowed(a.address)) {
            cb(new AddressRefusedError(hostname, a.address, addressRefusal(a.address) ?? 'not allowed'));
            return;
          }
        }
        if (all) cb(null, addresses);
        else cb(null, addresses[0].address, addresses[0].family);
      },
      (e: unknown) => cb(e instanceof Error ? e : new Error(String(e))),
    );
  };
  return lookup as unknown as LookupFunction;
}
