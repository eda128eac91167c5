import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connected, startTestBroker, subscribed, RawClient } from './_harness.js';

const tb = startTestBroker();
after(() => tb.broker.close());

const will = (payload: string, retain = false) => ({ topic: 'will/t', payload: Buffer.from(payload), qos: 1 as const, retain });

async function watcher(id: string): Promise<RawClient> {
  const w = await connected(tb, { clientId: id });
  await subscribed(w, 'will/#', 1);
  return w;
}

test('the will is published when the socket closes without DISCONNECT', async () => {
  const w = await watcher('w1');
  const c = await connected(tb, { clientId: 'dies', will: will('gone') });
  c.destroy();
  const m = await w.next('publish');
  assert.equal(m.payload.toString(), 'gone');
  w.end();
});

test('no will is published after DISCONNECT [MQTT-3.14.4-3]', async () => {
  const w = await watcher('w2');
  const c = await connected(tb, { clientId: 'polite', will: will('never') });
  c.send({ type: 'disconnect' });
  await c.closedByBroker();
  await w.nothing(200);
  w.end();
});

test('the will is published after a protocol error', async () => {
  const w = await watcher('w3');
  const c = await connected(tb, { clientId: 'rude', will: will('proto') });
  c.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId: 'rude' });
  assert.equal((await w.next('publish')).payload.toString(), 'proto');
  w.end();
});

test('the will of a connection taken over is published', async () => {
  const w = await watcher('w4');
  await connected(tb, { clientId: 'twin', will: will('taken') });
  const second = await connected(tb, { clientId: 'twin' });
  assert.equal((await w.next('publish')).payload.toString(), 'taken');
  second.end();
  w.end();
});

test('a retained will is stored as the retained message of its topic', async () => {
  const c = await connected(tb, { clientId: 'rw', will: { ...will('last words', true), topic: 'will/retained' } });
  c.destroy();
  await new Promise((r) => setTimeout(r, 50));
  const late = await connected(tb, { clientId: 'late' });
  await subscribed(late, 'will/retained', 1);
  const m = await late.next('publish');
  assert.equal(m.payload.toString(), 'last words');
  assert.equal(m.retain, true);
  late.end();
});

test('a will topic with wildcards (or empty) makes the CONNECT malformed: closed without CONNACK', async () => {
  // mosquitto 2.0.11 (checked, 3.1.1 and 5.0, will topic 'ok/+'): no CONNACK, the connection is closed
  for (const topic of ['will/#', 'will/+/x', '']) {
    const c = RawClient.connectTo(tb);
    c.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId: 'badwill', will: { ...will('x'), topic } });
    await c.closedByBroker();
    assert.deepEqual(c.packets, [], `will topic '${topic}'`);
  }
});
