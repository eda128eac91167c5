import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connected, startTestBroker, subscribed, RawClient } from './_harness.js';
import { FakeClock, eventually } from '../helpers/fake-clock.js';

const tb = startTestBroker({ maxQueuedMessages: 5, maxInflightMessages: 2 });
after(() => tb.broker.close());

const q1 = (topic: string, payload: string, packetId: number) =>
  ({ type: 'publish' as const, topic, payload: Buffer.from(payload), qos: 1 as const, retain: false, dup: false, packetId });

test('a persistent session keeps subscriptions and queues QoS 1 messages, delivered in order on reconnect', async () => {
  const sub = await connected(tb, { clientId: 'ps1', clean: false });
  await subscribed(sub, 'ps', 1);
  sub.destroy();
  await new Promise((r) => setTimeout(r, 20));
  const pub = await connected(tb, { clientId: 'ps1-pub' });
  for (let i = 1; i <= 4; i++) { pub.send(q1('ps', `abc${i}`, i)); await pub.next('puback'); }
  const back = RawClient.connectTo(tb);
  const ack = await back.connect({ clientId: 'ps1', clean: false });
  assert.equal(ack.sessionPresent, true, 'session present [MQTT-3.2.2-2]');
  const got: string[] = [];
  for (let i = 0; i < 4; i++) {
    const m = await back.next('publish');
    got.push(m.payload.toString());
    back.send({ type: 'puback', packetId: m.packetId! });
  }
  assert.deepEqual(got, ['abc1', 'abc2', 'abc3', 'abc4']);
  back.end(); pub.end();
});

test('the offline queue is bounded by max_queued_messages; drops are counted and logged', async () => {
  const sub = await connected(tb, { clientId: 'ps2', clean: false });
  await subscribed(sub, 'ps2', 1);
  sub.destroy();
  await new Promise((r) => setTimeout(r, 20));
  const before = tb.broker.stats.dropped;
  const pub = await connected(tb, { clientId: 'ps2-pub' });
  for (let i = 1; i <= 8; i++) { pub.send(q1('ps2', `m${i}`, i)); await pub.next('puback'); }
  assert.equal(tb.broker.stats.dropped - before, 3);
  assert.ok(tb.logs.some((l) => l.includes('Outgoing messages are being dropped for client ps2.')));
  const back = RawClient.connectTo(tb);
  await back.connect({ clientId: 'ps2', clean: false });
  const got: string[] = [];
  for (let i = 0; i < 5; i++) {
    const m = await back.next('publish');
    got.push(m.payload.toString());
    back.send({ type: 'puback', packetId: m.packetId! });
  }
  assert.deepEqual(got, ['m1', 'm2', 'm3', 'm4', 'm5'], 'the oldest are kept, in order');
  await back.nothing(100);
  back.end(); pub.end();
});

test('unacknowledged messages are re-sent with DUP and the same packet id on reconnect [MQTT-4.4.0-1]', async () => {
  const sub = await connected(tb, { clientId: 'ps3', clean: false });
  await subscribed(sub, 'ps3', 1);
  const pub = await connected(tb, { clientId: 'ps3-pub' });
  pub.send(q1('ps3', 'unacked', 1)); await pub.next('puback');
  const first = await sub.next('publish');
  assert.equal(first.dup, false);
  sub.destroy(); // never PUBACKed
  await new Promise((r) => setTimeout(r, 20));
  const back = RawClient.connectTo(tb);
  await back.connect({ clientId: 'ps3', clean: false });
  const again = await back.next('publish');
  assert.equal(again.dup, true);
  assert.equal(again.packetId, first.packetId);
  assert.equal(again.payload.toString(), 'unacked');
  back.send({ type: 'puback', packetId: again.packetId! });
  back.end(); pub.end();
});

test('a QoS 2 message whose PUBREC arrived gets PUBREL re-sent on reconnect, not the PUBLISH', async () => {
  const sub = await connected(tb, { clientId: 'ps4', clean: false });
  await subscribed(sub, 'ps4', 2);
  const pub = await connected(tb, { clientId: 'ps4-pub' });
  pub.send({ type: 'publish', topic: 'ps4', payload: Buffer.from('x'), qos: 2, retain: false, dup: false, packetId: 3 });
  await pub.next('pubrec');
  const m = await sub.next('publish');
  sub.send({ type: 'pubrec', packetId: m.packetId! });
  await sub.next('pubrel');
  sub.destroy();
  await new Promise((r) => setTimeout(r, 20));
  const back = RawClient.connectTo(tb);
  await back.connect({ clientId: 'ps4', clean: false });
  assert.equal((await back.next('pubrel')).packetId, m.packetId);
  back.send({ type: 'pubcomp', packetId: m.packetId! });
  await back.nothing(100);
  back.end(); pub.end();
});

test('a clean session discards the stored session and its subscriptions', async () => {
  const sub = await connected(tb, { clientId: 'ps5', clean: false });
  await subscribed(sub, 'ps5', 1);
  sub.end();
  await new Promise((r) => setTimeout(r, 20));
  const clean = RawClient.connectTo(tb);
  assert.equal((await clean.connect({ clientId: 'ps5', clean: true })).sessionPresent, false);
  const pub = await connected(tb, { clientId: 'ps5-pub' });
  pub.send(q1('ps5', 'x', 1)); await pub.next('puback');
  await clean.nothing(150);
  clean.end(); pub.end();
});

test('QoS 0 messages are not queued for an offline client', async () => {
  const sub = await connected(tb, { clientId: 'ps6', clean: false });
  await subscribed(sub, 'ps6', 1);
  sub.end();
  await new Promise((r) => setTimeout(r, 20));
  const pub = await connected(tb, { clientId: 'ps6-pub' });
  pub.send({ type: 'publish', topic: 'ps6', payload: Buffer.from('q0'), qos: 0, retain: false, dup: false });
  pub.send(q1('ps6', 'q1', 1)); await pub.next('puback');
  const back = RawClient.connectTo(tb);
  await back.connect({ clientId: 'ps6', clean: false });
  assert.equal((await back.next('publish')).payload.toString(), 'q1');
  await back.nothing(100);
  back.end(); pub.end();
});

test('persistent_client_expiration removes a session that stayed away too long', async () => {
  const clock = new FakeClock();
  const exp = startTestBroker({ persistentClientExpiration: 1, clock });
  try {
    const sub = await connected(exp, { clientId: 'expire-me', clean: false });
    await subscribed(sub, 'e', 1);
    sub.end();
    await eventually('the session to be detached', () => exp.broker.sessions.get('expire-me')?.outlet === null);
    clock.advance(999);
    assert.equal(exp.broker.sessions.has('expire-me'), true, 'kept for the 1 s of persistent_client_expiration');
    clock.advance(501); // the next sweep (every 500 ms) after 1 s
    assert.equal(exp.broker.sessions.has('expire-me'), false);
    const back = RawClient.connectTo(exp);
    assert.equal((await back.connect({ clientId: 'expire-me', clean: false })).sessionPresent, false);
    back.end();
  } finally { await exp.broker.close(); }
});
