/**
 * The address check behind --allow-remote-images, tested on its own: which addresses are refused,
 * and the DNS hook with an injected resolver. No test here opens a connection.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AddressRefusedError,
  addressRefusal,
  checkedLookup,
  isPublicAddress,
  parseIPv6,
  type ResolvedAddress,
} from '../../src/serve/address-filter.ts';

describe('address filter', () => {
  it('refuses loopback, private, link-local and other non-public ranges', () => {
    const refused: [string, RegExp][] = [
      ['127.0.0.1', /loopback/],
      ['127.255.3.4', /loopback/],
      ['0.0.0.0', /this network/],
      ['10.0.0.1', /private/],
      ['10.255.255.255', /private/],
      ['172.16.0.1', /private/],
      ['172.31.255.254', /private/],
      ['192.168.1.1', /private/],
      ['169.254.169.254', /link-local/], // cloud metadata services
      ['100.64.0.1', /carrier-grade NAT/],
      ['192.0.2.10', /documentation/],
      ['198.18.0.1', /benchmarking/],
      ['224.0.0.1', /multicast/],
      ['255.255.255.255', /reserved/],
      ['::1', /loopback/],
      ['::', /unspecified/],
      ['::ffff:127.0.0.1', /loopback/],
      ['::ffff:7f00:1', /loopback/],
      ['::ffff:10.0.0.1', /private/],
      ['::ffff:169.254.169.254', /link-local/],
      ['64:ff9b::a00:1', /private/], // NAT64 of 10.0.0.1
      ['2002:7f00:1::', /loopback/], // 6to4 of 127.0.0.1
      ['2002:c0a8:101::1', /private/], // 6to4 of 192.168.1.1
      ['fc00::1', /unique-local/],
      ['fd12:3456::1', /unique-local/],
      ['fe80::1', /link-local/],
      ['fe80::1%eth0', /link-local/],
      ['[fe80::1]', /link-local/],
      ['febf::1', /link-local/],
      ['ff02::1', /multicast/],
      ['2001:db8::1', /documentation/],
      ['2001:0:4136:e378::1', /Teredo/],
      ['localhost', /not an IP address/],
      ['example.com', /not an IP address/],
    ];
    for (const [address, why] of refused) {
      const r = addressRefusal(address);
      assert.ok(r !== null, `${address} must be refused`);
      assert.match(r, why, address);
      assert.equal(isPublicAddress(address), false);
    }
  });

  it('allows public unicast addresses, just outside the refused ranges', () => {
    for (const address of [
      '1.1.1.1',
      '8.8.8.8',
      '93.184.216.34',
      '9.255.255.255',
      '11.0.0.0',
      '172.15.255.255',
      '172.32.0.0',
      '192.167.255.255',
      '169.253.0.1',
      '100.63.255.255',
      '100.128.0.0',
      '2606:4700:4700::1111',
      '2a00:1450:4001:80b::200e',
      '::ffff:8.8.8.8',
      '2002:808:808::1', // 6to4 of 8.8.8.8
      '2400:cb00::1',
    ]) {
      assert.equal(addressRefusal(address), null, address);
    }
  });

  it('parses IPv6 in all its spellings', () => {
    assert.deepEqual(parseIPv6('::1'), [...Array(15).fill(0), 1]);
    assert.deepEqual(parseIPv6('::ffff:1.2.3.4')?.slice(10), [0xff, 0xff, 1, 2, 3, 4]);
    assert.deepEqual(parseIPv6('1:2:3:4:5:6:7:8')?.slice(14), [0, 8]);
    assert.equal(parseIPv6('1:2:3'), null);
    assert.equal(parseIPv6('1::2::3'), null);
    assert.equal(parseIPv6('1.2.3.4'), null);
  });

  describe('checkedLookup with an injected resolver (nothing is connected)', () => {
    const lookupWith = (addresses: ResolvedAddress[], all: boolean) =>
      new Promise<{ err: Error | null; result: unknown }>((resolve) => {
        const lookup = checkedLookup(async () => addresses) as unknown as (
          host: string,
          options: { all?: boolean },
          cb: (err: Error | null, address?: unknown, family?: number) => void,
        ) => void;
        lookup('images.example', { all }, (err, address) => resolve({ err, result: address }));
      });

    it('refuses names that resolve to private, link-local or loopback addresses', async () => {
      for (const address of [
        '10.0.0.7',
        '192.168.0.2',
        '169.254.169.254',
        '127.0.0.1',
        'fe80::2',
        'fd00::5',
      ]) {
        for (const all of [true, false]) {
          const { err } = await lookupWith([{ address, family: address.includes(':') ? 6 : 4 }], all);
          assert.ok(err instanceof AddressRefusedError, `${address} (all: ${all}) must be refused`);
          assert.match(
            err.message,
            new RegExp(`images\\.example resolves to ${address.replace(/\./g, '\\.')}`),
          );
        }
      }
    });

    it('refuses a name when any of its addresses is refused (no mixed answers)', async () => {
      const { err } = await lookupWith(
        [
          { address: '93.184.216.34', family: 4 },
          { address: '10.0.0.1', family: 4 },
        ],
        true,
      );
      assert.ok(err instanceof AddressRefusedError);
    });

    it('hands the checked public addresses to the connection', async () => {
      const addresses: ResolvedAddress[] = [
        { address: '93.184.216.34', family: 4 },
        { address: '2606:2800:220:1::248', family: 6 },
      ];
      assert.deepEqual(await lookupWith(addresses, true), { err: null, result: addresses });
      assert.deepEqual(await lookupWith(addresses, false), { err: null, result: '93.184.216.34' });
      const none = await lookupWith([], true);
      assert.match(String(none.err), /no address/);
    });
  });
});
