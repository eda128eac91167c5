import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connected, startTestBroker, subscribed } from './_harness.js';
import { FakeClock } from '../helpers/fake-clock.js';

// the broker runs on a fake clock: time moves only with clock.advance(), and the keepalive sweep
// (every 500 ms of that time) runs exactly when it falls due
const clock = new FakeClock();
const tb = startTestBroker({ clock });
after(() => tb.broker.close());

/** whether the broker still holds `id` as a connected client (its own view, no waiting) */
const online = (id: string): boolean => [...tb.broker.connections].some((c) => c.id === id && c.state === 'connected');

test('a silent client is disconnected after 1.5 × keepalive and its will is published [MQTT-3.1.2-24]', async () => {
  const w = await connected(tb, { clientId: 'ka-watch' });
  await subscribed(w, 'ka/will', 0);
  const c = await connected(tb, { clientId: 'ka-silent', keepalive: 1, will: { topic: 'ka/will', payload: Buffer.from('timeout'), qos: 0, retain: false } });
  clock.advance(1000);
  assert.ok(online('ka-silent'), 'still connected after 1 × keepalive');
  clock.advance(500);
  assert.ok(online('ka-silent'), 'still connected at exactly 1.5 × keepalive');
  await w.nothing(20);
  assert.equal(c.closed, false);
  clock.advance(500); // the first sweep past 1.5 × keepalive
  assert.ok(!online('ka-silent'), 'disconnected by the first sweep after 1.5 × keepalive');
  await c.closedByBroker();
  assert.equal((await w.next('publish')).payload.toString(), 'timeout');
  assert.ok(tb.logs.some((l) => /^Client ka-silent \[127\.0\.0\.1:\d+\] has exceeded timeout, disconnecting\.$/.test(l)));
  assert.ok(online('ka-watch'), 'the watcher (keepalive 60) stays');
  w.end();
});

test('the wall clock set forward or back neither drops a client early nor keeps one late: keepalive runs on the monotonic clock', async () => {
  const c = await connected(tb, { clientId: 'ka-wall', keepalive: 1 });
  try {
    clock.stepWall(60_000); // an NTP step: the wall clock jumps a minute ahead
    clock.advance(500);
    assert.ok(online('ka-wall'), 'not dropped by the step forward');
    clock.stepWall(-120_000); // and back, to a minute behind
    clock.advance(500);
    assert.ok(online('ka-wall'), 'still connected after 1 s of monotonic time');
    clock.advance(1000); // 2 s since its last bytes: past 1.5 × keepalive
    assert.ok(!online('ka-wall'), 'dropped once 1.5 × keepalive has passed, whatever the wall clock says');
    await c.closedByBroker();
  } finally {
    clock.stepWall(60_000);
  }
});

test('a client that sends PINGREQ within the keepalive stays connected', async () => {
  const c = await connected(tb, { clientId: 'ka-alive', keepalive: 1 });
  const silent = await connected(tb, { clientId: 'ka-alive-control', keepalive: 1 });
  for (let i = 0; i < 5; i++) {
    clock.advance(600);
    c.send({ type: 'pingreq' });
    await c.next('pingresp');
  }
  // 3 s went by: the silent one was dropped, the pinging one was not
  await silent.closedByBroker();
  assert.ok(online('ka-alive'));
  assert.equal(c.closed, false);
  c.end();
});

test('keepalive 0 turns the timeout off', async () => {
  const c = await connected(tb, { clientId: 'ka-zero', keepalive: 0 });
  const control = await connected(tb, { clientId: 'ka-zero-control', keepalive: 60 });
  clock.advance(10 * 60_000);
  await control.closedByBroker();
  assert.ok(online('ka-zero'), 'still connected after 10 minutes of silence');
  c.send({ type: 'pingreq' });
  await c.next('pingresp');
  c.end();
});
