/** The per-request deadline: a timer of its own, the client's signal, and slots held until work stops. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Deadline, holdUntilSettled } from '../../src/serve/deadline.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const isTimeout = (e: unknown) => e instanceof DOMException && e.name === 'TimeoutError';

describe('Deadline', () => {
  it('aborts at its time with a TimeoutError, even with garbage collections meanwhile', async () => {
    const client = new AbortController();
    const d = new Deadline(60, client.signal);
    const t0 = performance.now();
    const collector = setInterval(gc, 5);
    try {
      await assert.rejects(d.race(new Promise(() => {})), isTimeout);
    } finally {
      clearInterval(collector);
    }
    const waited = performance.now() - t0;
    assert.ok(waited >= 55 && waited < 1000, `${waited} ms`);
    assert.equal(d.timedOut, true);
    assert.throws(() => d.check(), isTimeout);
    d.clear();
  });

  it('passes results through, and follows the client signal', async () => {
    const client = new AbortController();
    const d = new Deadline(10_000, client.signal);
    assert.equal(await d.race(Promise.resolve(7)), 7);
    await assert.rejects(d.race(Promise.reject(new Error('boom'))), /boom/);
    client.abort(new Error('client left'));
    assert.equal(d.signal.aborted, true);
    assert.equal(d.timedOut, false);
    await assert.rejects(d.race(new Promise(() => {})), /client left/);
    d.clear();
    const late = new Deadline(10_000, AbortSignal.abort(new Error('gone already')));
    assert.throws(() => late.check(), /gone already/);
    late.clear();
  });

  it('clear() stops the timer', async () => {
    const d = new Deadline(20);
    d.clear();
    await sleep(60);
    assert.equal(d.signal.aborted, false);
  });

  it('holdUntilSettled: releases at once on success or failure, only after the work stops on a timeout', async () => {
    let released = 0;
    const release = () => released++;
    const ok = new Deadline(10_000);
    assert.equal(await holdUntilSettled(ok, Promise.resolve('v'), release), 'v');
    assert.equal(released, 0, 'on success the caller keeps the slot');
    await assert.rejects(holdUntilSettled(ok, Promise.reject(new Error('bad image')), release), /bad image/);
    assert.equal(released, 1);
    ok.clear();

    const d = new Deadline(30);
    let finish!: () => void;
    const work = new Promise<void>((r) => {
      finish = r;
    });
    await assert.rejects(holdUntilSettled(d, work, release), isTimeout);
    assert.equal(released, 1, 'the abandoned work still holds the slot');
    finish();
    await sleep(0);
    assert.equal(released, 2, 'released when the work stopped');
  });
});
