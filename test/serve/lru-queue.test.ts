/** The byte-bounded LRU cache and the FIFO request queue. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '../../src/serve/errors.ts';
import { ByteLru } from '../../src/serve/lru.ts';
import { RequestQueue } from '../../src/serve/queue.ts';

describe('ByteLru', () => {
  it('evicts the least recently used entries to stay within its byte budget', () => {
    const lru = new ByteLru<string>(100);
    lru.set('a', 'A', 40);
    lru.set('b', 'B', 40);
    assert.equal(lru.get('a'), 'A'); // a is now the most recent
    lru.set('c', 'C', 40); // 120 > 100: b goes
    assert.equal(lru.peek('b'), undefined);
    assert.equal(lru.peek('a'), 'A');
    assert.equal(lru.peek('c'), 'C');
    assert.deepEqual(lru.stats(), { entries: 2, bytes: 80, maxBytes: 100, hits: 1, misses: 0, evictions: 1 });
    assert.equal(lru.get('b'), undefined);
    assert.equal(lru.stats().misses, 1);
  });

  it('replaces an entry in place, skips entries larger than the budget, and checks sizes', () => {
    const lru = new ByteLru<number>(50);
    lru.set('x', 1, 30);
    lru.set('x', 2, 10);
    assert.equal(lru.stats().bytes, 10);
    assert.equal(lru.peek('x'), 2);
    lru.set('big', 3, 51);
    assert.equal(lru.peek('big'), undefined);
    assert.equal(lru.stats().bytes, 10);
    assert.throws(
      () => lru.set('y', 4, -1),
      /ByteLru\.set\(y\): bytes must be a non-negative number, got -1/,
    );
    assert.throws(() => new ByteLru(Number.NaN), /maxBytes/);
  });
});

const tick = () => new Promise((r) => setImmediate(r));

describe('RequestQueue', () => {
  it('admits up to the concurrency limit and the rest in arrival order', async () => {
    const q = new RequestQueue(2, 10);
    const order: number[] = [];
    const releases = await Promise.all([q.acquire(), q.acquire()]);
    assert.equal(q.running, 2);
    const waiting = [3, 4, 5].map((n) =>
      q.acquire().then((release) => {
        order.push(n);
        return release;
      }),
    );
    await tick();
    assert.equal(q.waiting, 3);
    releases[0]();
    releases[0](); // idempotent: a second call frees nothing more
    await tick();
    assert.deepEqual(order, [3]);
    assert.equal(q.running, 2);
    releases[1]();
    await tick();
    assert.deepEqual(order, [3, 4]);
    for (const r of await Promise.all(waiting.slice(0, 2))) r();
    await tick();
    assert.deepEqual(order, [3, 4, 5]);
    (await waiting[2])();
    assert.equal(q.running, 0);
    assert.equal(q.waiting, 0);
  });

  it('refuses with a 429 when the waiting line is full', async () => {
    const q = new RequestQueue(1, 1);
    const release = await q.acquire();
    const second = q.acquire();
    await assert.rejects(
      q.acquire(),
      (e: unknown) => e instanceof ApiError && e.status === 429 && e.code === 'queue_full',
    );
    release();
    (await second)();
  });

  it('drops a waiter whose signal aborts, without giving it a slot', async () => {
    const q = new RequestQueue(1, 5);
    const release = await q.acquire();
    const controller = new AbortController();
    const waiting = q.acquire(controller.signal);
    await tick();
    controller.abort(new Error('client gone'));
    await assert.rejects(waiting, /client gone/);
    assert.equal(q.waiting, 0);
    release();
    assert.equal(q.running, 0);
    await assert.rejects(q.acquire(AbortSignal.abort(new Error('already'))), /already/);
    assert.throws(() => new RequestQueue(0), /concurrency must be a positive integer, got 0/);
  });
});
