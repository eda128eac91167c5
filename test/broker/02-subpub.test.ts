import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connected, startTestBroker, subscribed } from './_harness.js';

const tb = startTestBroker();
after(() => tb.broker.close());

test('a subscriber receives what a publisher sends to its topic', async () => {
  const sub = await connected(tb, { clientId: 's1' });
  await subscribed(sub, 'test');
  const pub = await connected(tb, { clientId: 'p1' });
  pub.send({ type: 'publish', topic: 'test', payload: Buffer.from('abc'), qos: 0, retain: false, dup: false });
  const m = await sub.next('publish');
  assert.equal(m.topic, 'test');
  assert.equal(m.payload.toString(), 'abc');
  sub.end(); pub.end();
});

test('the effective QoS is the lower of the publish and the subscription QoS', async () => {
  for (const subQos of [0, 1, 2] as const) {
    const sub = await connected(tb, { clientId: `sq${subQos}` });
    assert.deepEqual(await subscribed(sub, `qos/${subQos}`, subQos), [subQos]);
    const pub = await connected(tb, { clientId: `pq${subQos}` });
    for (const pubQos of [0, 1, 2] as const) {
      pub.send({ type: 'publish', topic: `qos/${subQos}`, payload: Buffer.from(`m${pubQos}`), qos: pubQos, retain: false, dup: false, packetId: pubQos ? 10 + pubQos : undefined });
      if (pubQos === 1) await pub.next('puback');
      if (pubQos === 2) { await pub.next('pubrec'); pub.send({ type: 'pubrel', packetId: 12 }); await pub.next('pubcomp'); }
      const m = await sub.next('publish');
      assert.equal(m.qos, Math.min(pubQos, subQos), `pub ${pubQos} sub ${subQos}`);
      if (m.qos === 1) sub.send({ type: 'puback', packetId: m.packetId! });
      if (m.qos === 2) { sub.send({ type: 'pubrec', packetId: m.packetId! }); await sub.next('pubrel'); sub.send({ type: 'pubcomp', packetId: m.packetId! }); }
    }
    sub.end(); pub.end();
  }
});

test('overlapping subscriptions of one client deliver once, at the highest granted QoS', async () => {
  const sub = await connected(tb, { clientId: 'overlap' });
  sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'o/#', qos: 0 }, { topic: 'o/+', qos: 2 }, { topic: 'o/x', qos: 1 }] });
  assert.deepEqual((await sub.next('suback')).reasonCodes, [0, 2, 1]);
  const pub = await connected(tb, { clientId: 'overlap-pub' });
  pub.send({ type: 'publish', topic: 'o/x', payload: Buffer.from('once'), qos: 2, retain: false, dup: false, packetId: 5 });
  const m = await sub.next('publish');
  assert.equal(m.qos, 2);
  await sub.nothing(150);
  sub.end(); pub.end();
});

test('wildcards: + matches one level, # matches the rest, $SYS is not matched by # [MQTT-4.7.2-1]', async () => {
  const sub = await connected(tb, { clientId: 'wild' });
  sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'a/+/c', qos: 0 }, { topic: '#', qos: 0 }] });
  await sub.next('suback');
  const pub = await connected(tb, { clientId: 'wild-pub' });
  for (const topic of ['$SYS/fake', 'a/b/c', 'x/y']) {
    pub.send({ type: 'publish', topic, payload: Buffer.from(topic), qos: 0, retain: false, dup: false });
  }
  assert.equal((await sub.next('publish')).topic, 'a/b/c');
  assert.equal((await sub.next('publish')).topic, 'x/y');
  await sub.nothing(100);
  sub.end(); pub.end();
});

test('an invalid filter gets SUBACK 0x80 while the valid ones in the same packet are granted', async () => {
  const sub = await connected(tb, { clientId: 'badfilter' });
  sub.send({ type: 'subscribe', packetId: 3, subscriptions: [{ topic: 'a/#/b', qos: 1 }, { topic: 'ok', qos: 1 }, { topic: 'a+', qos: 0 }] });
  assert.deepEqual((await sub.next('suback')).reasonCodes, [0x80, 1, 0x80]);
  sub.end();
});

test('a PUBLISH to a topic with wildcards closes the connection [MQTT-3.3.2-2]', async () => {
  const pub = await connected(tb, { clientId: 'wildpub' });
  pub.send({ type: 'publish', topic: 'a/+', payload: Buffer.from('x'), qos: 0, retain: false, dup: false });
  await pub.closedByBroker();
});

test('UNSUBSCRIBE stops delivery and is acknowledged', async () => {
  const sub = await connected(tb, { clientId: 'unsub' });
  await subscribed(sub, 'u');
  sub.send({ type: 'unsubscribe', packetId: 9, topics: ['u'] });
  assert.equal((await sub.next('unsuback')).packetId, 9);
  const pub = await connected(tb, { clientId: 'unsub-pub' });
  pub.send({ type: 'publish', topic: 'u', payload: Buffer.from('x'), qos: 0, retain: false, dup: false });
  await sub.nothing(150);
  sub.end(); pub.end();
});

test('PINGREQ is answered with PINGRESP', async () => {
  const c = await connected(tb, { clientId: 'pinger' });
  c.send({ type: 'pingreq' });
  await c.next('pingresp');
  c.end();
});

test('the verbose log has one line per packet in mosquitto style', async () => {
  const sub = await connected(tb, { clientId: 'vsub' });
  await subscribed(sub, 'vlog', 1);
  const pub = await connected(tb, { clientId: 'vpub' });
  pub.send({ type: 'publish', topic: 'vlog', payload: Buffer.from('abc'), qos: 1, retain: false, dup: false, packetId: 1 });
  await pub.next('puback');
  await sub.next('publish');
  assert.ok(tb.logs.includes("Received PUBLISH from vpub (d0, q1, r0, m1, 'vlog', ... (3 bytes))"));
  assert.ok(tb.logs.includes("Sending PUBLISH to vsub (d0, q1, r0, m1, 'vlog', ... (3 bytes))"));
  assert.ok(tb.logs.includes('Sending PUBACK to vpub (m1, rc0)'));
  assert.ok(tb.logs.includes('Sending CONNACK to vsub (0, 0)'));
  sub.end(); pub.end();
});

test('a client PUBLISH to $SYS is acknowledged but never delivered (mosquitto denies it too)', async () => {
  const sub = await connected(tb, { clientId: 'sys-watch' });
  sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: '$SYS/#', qos: 1 }, { topic: 'control', qos: 1 }] });
  await sub.next('suback');
  const pub = await connected(tb, { clientId: 'sys-forger' });
  pub.send({ type: 'publish', topic: '$SYS/broker/version', payload: Buffer.from('forged'), qos: 1, retain: false, dup: false, packetId: 1 });
  await pub.next('puback');
  pub.send({ type: 'publish', topic: 'control', payload: Buffer.from('real'), qos: 1, retain: false, dup: false, packetId: 2 });
  await pub.next('puback');
  const m = await sub.next('publish');
  assert.equal(m.topic, 'control');
  sub.end(); pub.end();
});
