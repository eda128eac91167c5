import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connected, startTestBroker, subscribed, sleep } from './_harness.js';

const tb = startTestBroker();
after(() => tb.broker.close());

test('a silent client is disconnected after 1.5 × keepalive and its will is published [MQTT-3.1.2-24]', async () => {
  const w = await connected(tb, { clientId: 'ka-watch' });
  await subscribed(w, 'ka/will', 0);
  const c = await connected(tb, { clientId: 'ka-silent', keepalive: 1, will: { topic: 'ka/will', payload: Buffer.from('timeout'), qos: 0, retain: false } });
  const t0 = Date.now();
  await sleep(1000);
  assert.equal(c.closed, false, 'still connected after 1 × keepalive');
  await c.closedByBroker(2500);
  const elapsed = Date.now() - t0;
  assert.ok(elapsed >= 1400 && elapsed < 2600, `closed after ${elapsed} ms`);
  assert.equal((await w.next('publish')).payload.toString(), 'timeout');
  assert.ok(tb.logs.some((l) => /^Client ka-silent \[127\.0\.0\.1:\d+\] has exceeded timeout, disconnecting\.$/.test(l)));
  w.end();
});

test('a client that sends PINGREQ within the keepalive stays connected', async () => {
  const c = await connected(tb, { clientId: 'ka-alive', keepalive: 1 });
  for (let i = 0; i < 5; i++) {
    await sleep(600);
    c.send({ type: 'pingreq' });
    await c.next('pingresp');
  }
  assert.equal(c.closed, false);
  c.end();
});

test('keepalive 0 turns the timeout off', async () => {
  const c = await connected(tb, { clientId: 'ka-zero', keepalive: 0 });
  await sleep(1200);
  c.send({ type: 'pingreq' });
  await c.next('pingresp');
  c.end();
});
