import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connected, startTestBroker, subscribed } from './_harness.js';

const tb = startTestBroker();
after(() => tb.broker.close());

const retained = (topic: string, payload: string, qos: 0 | 1 = 0) =>
  ({ type: 'publish' as const, topic, payload: Buffer.from(payload), qos, retain: true, dup: false, packetId: qos ? 1 : undefined });

test('a new subscriber gets the retained message at once, with the retain flag set [MQTT-3.3.1-8]', async () => {
  const pub = await connected(tb, { clientId: 'r-pub' });
  pub.send(retained('r/a', 'retain', 1));
  await pub.next('puback');
  const sub = await connected(tb, { clientId: 'r-sub' });
  await subscribed(sub, 'r/#', 1);
  const m = await sub.next('publish');
  assert.equal(m.payload.toString(), 'retain');
  assert.equal(m.retain, true);
  assert.equal(m.qos, 1);
  sub.end(); pub.end();
});

test('an existing subscriber gets a retained publish with retain 0 [MQTT-3.3.1-9]', async () => {
  const sub = await connected(tb, { clientId: 'r-existing' });
  await subscribed(sub, 'r/live');
  const pub = await connected(tb, { clientId: 'r-pub2' });
  pub.send(retained('r/live', 'now'));
  const m = await sub.next('publish');
  assert.equal(m.payload.toString(), 'now');
  assert.equal(m.retain, false);
  sub.end(); pub.end();
});

test('a retained message is replaced by the next one and cleared by an empty payload [MQTT-3.3.1-10]', async () => {
  const pub = await connected(tb, { clientId: 'r-pub3' });
  pub.send(retained('r/x', 'one'));
  pub.send(retained('r/x', 'two'));
  pub.send({ type: 'pingreq' });
  await pub.next('pingresp');
  const s1 = await connected(tb, { clientId: 'r-s1' });
  await subscribed(s1, 'r/x');
  assert.equal((await s1.next('publish')).payload.toString(), 'two');
  await s1.nothing(100);
  pub.send(retained('r/x', ''));
  assert.equal((await s1.next('publish')).payload.length, 0, 'the clearing message is delivered to current subscribers');
  const s2 = await connected(tb, { clientId: 'r-s2' });
  await subscribed(s2, 'r/x');
  await s2.nothing(150);
  assert.equal(tb.broker.retained.get('r/x'), undefined);
  s1.end(); s2.end(); pub.end();
});

test('every matching retained message is sent on subscribe, at min(message QoS, granted QoS)', async () => {
  const pub = await connected(tb, { clientId: 'r-pub4' });
  pub.send(retained('m/1', 'a', 1)); await pub.next('puback');
  pub.send(retained('m/2', 'b', 0));
  pub.send(retained('n/1', 'c', 0));
  pub.send({ type: 'pingreq' }); await pub.next('pingresp');
  const sub = await connected(tb, { clientId: 'r-s4' });
  await subscribed(sub, 'm/+', 0);
  const got = [await sub.next('publish'), await sub.next('publish')];
  assert.deepEqual(got.map((m) => m.topic).sort(), ['m/1', 'm/2']);
  assert.ok(got.every((m) => m.qos === 0 && m.retain));
  await sub.nothing(100);
  sub.end(); pub.end();
});

test('a burst of 5,000 retained QoS 1 messages reaches a # subscriber whole, past max_queued_messages 100', async () => {
  const small = startTestBroker({ maxQueuedMessages: 100, maxSocketBuffer: 16 * 1024 });
  try {
    const pub = await connected(small, { clientId: 'burst-pub' });
    for (let i = 0; i < 5000; i++) pub.send({ ...retained(`burst/${i}`, 'x'.repeat(50), 1), packetId: (i % 60000) + 1 });
    for (let i = 0; i < 5000; i++) await pub.next('puback', 10_000);
    assert.equal(small.broker.retained.size, 5000);
    const sub = await connected(small, { clientId: 'burst-sub' });
    // QoS 1: 20 in flight (the default window), the rest waits in a queue limited to 100
    sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'burst/#', qos: 1 }] });
    await sub.next('suback');
    const topics = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const m = await sub.next('publish', 5000);
      topics.add(m.topic);
      sub.send({ type: 'puback', packetId: m.packetId! });
    }
    assert.equal(topics.size, 5000);
    assert.equal(small.broker.stats.dropped, 0);
    sub.end(); pub.end();
  } finally { await small.broker.close(); }
});
