import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from './fake-clock.js';
import { realClock } from '../../src/util/clock.js';

test('FakeClock: time stands still until advanced; due timers fire in order, each at its due time', () => {
  const clock = new FakeClock(1000);
  const seen: string[] = [];
  clock.setTimeout(() => seen.push(`b@${clock.now()}`), 30);
  clock.setTimeout(() => seen.push(`a@${clock.now()}`), 10);
  clock.setTimeout(() => seen.push(`c@${clock.now()}`), 30); // same moment as b: after it
  const never = clock.setTimeout(() => seen.push('cancelled'), 20);
  clock.clearTimeout(never);
  assert.equal(clock.now(), 1000);
  clock.advance(9);
  assert.deepEqual(seen, []);
  clock.advance(100);
  assert.deepEqual(seen, ['a@1010', 'b@1030', 'c@1030']);
  assert.equal(clock.now(), 1109);
  assert.equal(clock.pending, 0);
});

test('FakeClock: an interval fires once per period until cleared; a timer set by a timer fires in the same advance', () => {
  const clock = new FakeClock(0);
  const ticks: number[] = [];
  const iv = clock.setInterval(() => ticks.push(clock.now()), 500);
  const nested: number[] = [];
  clock.setTimeout(() => clock.setTimeout(() => nested.push(clock.now()), 100), 700);
  clock.advance(1600);
  assert.deepEqual(ticks, [500, 1000, 1500]);
  assert.deepEqual(nested, [800]);
  clock.clearInterval(iv);
  clock.advance(5000);
  assert.deepEqual(ticks, [500, 1000, 1500]);
  assert.throws(() => clock.advance(-1));
});

test('realClock: Date.now() and unref\'d node timers', async () => {
  const before = Date.now();
  const now = realClock.now();
  assert.ok(now >= before && now <= Date.now());
  const t = realClock.setTimeout(() => undefined, 60_000) as NodeJS.Timeout;
  assert.equal(t.hasRef(), false, 'a broker timer does not keep the process alive');
  realClock.clearTimeout(t);
  let fired = 0;
  const iv = realClock.setInterval(() => fired++, 5) as NodeJS.Timeout;
  assert.equal(iv.hasRef(), false);
  await new Promise((r) => setTimeout(r, 40));
  realClock.clearInterval(iv);
  assert.ok(fired >= 1, `fired ${fired} times`);
});
