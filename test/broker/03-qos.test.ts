import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connected, startTestBroker, subscribed } from './_harness.js';

const tb = startTestBroker({ maxInflightMessages: 3 });
after(() => tb.broker.close());

const pkt = (topic: string, payload: string, qos: 0 | 1 | 2, packetId?: number, dup = false) =>
  ({ type: 'publish' as const, topic, payload: Buffer.from(payload), qos, retain: false, dup, packetId });

test('QoS 1 from a publisher is acknowledged with PUBACK of the same packet id', async () => {
  const pub = await connected(tb, { clientId: 'q1pub' });
  pub.send(pkt('q1', 'x', 1, 77));
  assert.equal((await pub.next('puback')).packetId, 77);
  pub.end();
});

test('QoS 2 from a publisher: PUBREC, then PUBREL is answered by PUBCOMP', async () => {
  const pub = await connected(tb, { clientId: 'q2pub' });
  pub.send(pkt('q2', 'x', 2, 5));
  assert.equal((await pub.next('pubrec')).packetId, 5);
  pub.send({ type: 'pubrel', packetId: 5 });
  assert.equal((await pub.next('pubcomp')).packetId, 5);
  pub.end();
});

test('a QoS 2 PUBLISH re-sent with DUP before PUBREL is not delivered twice [MQTT-4.3.3-2]', async () => {
  const sub = await connected(tb, { clientId: 'eo-sub' });
  await subscribed(sub, 'eo', 2);
  const pub = await connected(tb, { clientId: 'eo-pub' });
  pub.send(pkt('eo', 'once', 2, 9));
  await pub.next('pubrec');
  pub.send(pkt('eo', 'once', 2, 9, true));
  await pub.next('pubrec');
  pub.send({ type: 'pubrel', packetId: 9 });
  await pub.next('pubcomp');
  const m = await sub.next('publish');
  assert.equal(m.payload.toString(), 'once');
  await sub.nothing(150);
  // after PUBREL the id is free again: a new message with id 9 is delivered
  pub.send(pkt('eo', 'again', 2, 9));
  await pub.next('pubrec');
  const m2 = await sub.next('publish');
  assert.equal(m2.payload.toString(), 'again');
  sub.end(); pub.end();
});

test('QoS 2 to a subscriber: PUBLISH, PUBREC answered by PUBREL, PUBCOMP completes', async () => {
  const sub = await connected(tb, { clientId: 'q2sub' });
  await subscribed(sub, 'q2s', 2);
  const pub = await connected(tb, { clientId: 'q2spub' });
  pub.send(pkt('q2s', 'x', 2, 1));
  const m = await sub.next('publish');
  assert.equal(m.qos, 2);
  sub.send({ type: 'pubrec', packetId: m.packetId! });
  assert.equal((await sub.next('pubrel')).packetId, m.packetId);
  sub.send({ type: 'pubcomp', packetId: m.packetId! });
  assert.equal(tb.broker.sessions.get('q2sub')!.inflight.size, 0);
  sub.end(); pub.end();
});

test('the in-flight window holds max_inflight_messages; the rest is queued and sent in order as acks arrive', async () => {
  const sub = await connected(tb, { clientId: 'win-sub' });
  await subscribed(sub, 'win', 1);
  const pub = await connected(tb, { clientId: 'win-pub' });
  for (let i = 0; i < 6; i++) { pub.send(pkt('win', `m${i}`, 1, i + 1)); await pub.next('puback'); }
  const first = [await sub.next('publish'), await sub.next('publish'), await sub.next('publish')];
  assert.deepEqual(first.map((m) => m.payload.toString()), ['m0', 'm1', 'm2']);
  await sub.nothing(100);
  const ids = new Set(first.map((m) => m.packetId));
  assert.equal(ids.size, 3, 'packet ids in flight are distinct');
  sub.send({ type: 'puback', packetId: first[0]!.packetId! });
  const m3 = await sub.next('publish');
  assert.equal(m3.payload.toString(), 'm3');
  assert.ok(!ids.has(m3.packetId) || m3.packetId === first[0]!.packetId, 'an id still in flight is never reused');
  assert.notEqual(m3.packetId, first[1]!.packetId);
  assert.notEqual(m3.packetId, first[2]!.packetId);
  sub.end(); pub.end();
});

test('a PUBACK for an unknown packet id is ignored and the connection stays up', async () => {
  const c = await connected(tb, { clientId: 'stray' });
  c.send({ type: 'puback', packetId: 4242 });
  c.send({ type: 'pubcomp', packetId: 4243 });
  c.send({ type: 'pingreq' });
  await c.next('pingresp');
  c.end();
});
