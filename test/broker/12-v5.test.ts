import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connected, startTestBroker, RawClient, sleep } from './_harness.js';
import { FakeClock, eventually } from '../helpers/fake-clock.js';
import type { Properties, QoS, Subscription } from '../../src/codec/types.js';
import { CHALLENGE_METHOD, challengeAuth, challengeResponse } from '../../src/auth/challenge.js';

// time (keepalive, session and message expiry, will delay) moves only with clock.advance()
const clock = new FakeClock();
const tb = startTestBroker({ maxInflightMessages: 10, clock });
after(() => tb.broker.close());

const v5 = (id: string, extra: Record<string, unknown> = {}) => connected(tb, { clientId: id, ...extra }, 5);
const pub = (topic: string, payload: string, qos: QoS = 0, properties?: Properties, packetId?: number) =>
  ({ type: 'publish' as const, topic, payload: Buffer.from(payload), qos, retain: false, dup: false, packetId: qos ? packetId ?? 1 : undefined, properties });

/** whether the broker has `id` connected (its own view, no waiting) */
const online = (id: string): boolean => [...tb.broker.connections].some((c) => c.id === id && c.state === 'connected');
const detached = (id: string) => () => tb.broker.sessions.get(id)?.outlet === null;

async function sub(c: RawClient, subs: Subscription[], properties?: Properties, packetId = 1): Promise<number[]> {
  c.send({ type: 'subscribe', packetId, subscriptions: subs, properties });
  return (await c.next('suback')).reasonCodes;
}

test('session expiry interval 0: the session ends with the connection', async () => {
  const c = await v5('se0', { clean: false, properties: { sessionExpiryInterval: 0 } });
  await sub(c, [{ topic: 'se0', qos: 1 }]);
  c.destroy();
  await sleep(30);
  assert.equal(tb.broker.sessions.has('se0'), false);
});

test('session expiry interval 1: the session is kept for 1 s, then removed', async () => {
  const c = await v5('se1', { clean: false, properties: { sessionExpiryInterval: 1 } });
  await sub(c, [{ topic: 'se1', qos: 1 }]);
  c.destroy();
  await eventually('se1 detached', detached('se1'));
  clock.advance(999);
  const back = RawClient.connectTo(tb, 5);
  assert.equal((await back.connect({ clientId: 'se1', clean: false, properties: { sessionExpiryInterval: 1 } })).sessionPresent, true);
  back.destroy();
  await eventually('se1 detached again', detached('se1'));
  clock.advance(999);
  assert.equal(tb.broker.sessions.has('se1'), true, 'kept for 1 s');
  clock.advance(501); // the next sweep (every 500 ms) after 1 s
  assert.equal(tb.broker.sessions.has('se1'), false);
});

test('session expiry set at DISCONNECT from 0 is a protocol error [MQTT-3.14.2-2]', async () => {
  const c = await v5('se-bad');
  c.send({ type: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 60 } });
  const d = await c.next('disconnect');
  assert.equal(d.reasonCode, 0x82);
});

test('a queued message whose expiry passed is not delivered; a fresh one carries the remaining time', async () => {
  const s = await v5('mx', { clean: false, properties: { sessionExpiryInterval: 60 } });
  await sub(s, [{ topic: 'mx', qos: 1 }]);
  s.destroy();
  await eventually('mx detached', detached('mx'));
  const p = await v5('mx-pub');
  p.send(pub('mx', 'short', 1, { messageExpiryInterval: 1 }, 1)); await p.next('puback');
  p.send(pub('mx', 'long', 1, { messageExpiryInterval: 100 }, 2)); await p.next('puback');
  clock.advance(2000);
  const back = RawClient.connectTo(tb, 5);
  await back.connect({ clientId: 'mx', clean: false, properties: { sessionExpiryInterval: 60 } });
  const m = await back.next('publish');
  assert.equal(m.payload.toString(), 'long');
  assert.equal(m.properties?.messageExpiryInterval, 98, 'the time left (100 s - 2 s)');
  back.send({ type: 'puback', packetId: m.packetId! });
  await back.nothing(100);
  back.end(); p.end();
});

test('a will with delay 2 s is not sent when the client reconnects after 0.5 s', async () => {
  const w = await v5('wd-watch');
  await sub(w, [{ topic: 'wd/#', qos: 0 }]);
  const c = await v5('wd', { clean: false, properties: { sessionExpiryInterval: 60 }, will: { topic: 'wd/will', payload: Buffer.from('late'), qos: 0, retain: false, properties: { willDelayInterval: 2 } } });
  c.destroy();
  await eventually('wd gone', () => !online('wd'));
  clock.advance(500);
  const back = await v5('wd', { clean: false, properties: { sessionExpiryInterval: 60 } });
  clock.advance(5000);
  await w.nothing(50);
  back.end(); w.end();
});

test('a will with delay 1 s is sent 1 s after the connection drops, not before', async () => {
  const w = await v5('wd2-watch');
  await sub(w, [{ topic: 'wd2/#', qos: 0 }]);
  const c = await v5('wd2', { clean: false, properties: { sessionExpiryInterval: 60 }, will: { topic: 'wd2/will', payload: Buffer.from('delayed'), qos: 0, retain: false, properties: { willDelayInterval: 1 } } });
  c.destroy();
  await eventually('wd2 gone', () => !online('wd2'));
  clock.advance(999);
  await w.nothing(50);
  clock.advance(1);
  const m = await w.next('publish');
  assert.equal(m.payload.toString(), 'delayed');
  w.end();
});

test('no local: a client does not get its own messages back', async () => {
  const c = await v5('nl');
  await sub(c, [{ topic: 'nl', qos: 0, noLocal: true }]);
  const other = await v5('nl-other');
  c.send(pub('nl', 'mine'));
  await c.nothing(150);
  other.send(pub('nl', 'theirs'));
  assert.equal((await c.next('publish')).payload.toString(), 'theirs');
  c.end(); other.end();
});

test('retain as published keeps the retain flag on live delivery; without it the flag is 0', async () => {
  const a = await v5('rap1');
  await sub(a, [{ topic: 'rap', qos: 0, retainAsPublished: true }]);
  const b = await v5('rap0');
  await sub(b, [{ topic: 'rap', qos: 0 }]);
  const p = await v5('rap-pub');
  p.send({ ...pub('rap', 'r'), retain: true });
  assert.equal((await a.next('publish')).retain, true);
  assert.equal((await b.next('publish')).retain, false);
  p.send({ ...pub('rap', ''), retain: true });
  a.end(); b.end(); p.end();
});

test('retain handling 0 sends retained on every subscribe, 1 only on a new subscription, 2 never', async () => {
  const p = await v5('rh-pub');
  p.send({ ...pub('rh', 'kept'), retain: true });
  p.send({ type: 'pingreq' }); await p.next('pingresp');
  for (const [rh, expect] of [[0, [true, true]], [1, [true, false]], [2, [false, false]]] as const) {
    const c = await v5(`rh${rh}`);
    for (const want of expect) {
      await sub(c, [{ topic: 'rh', qos: 0, retainHandling: rh }]);
      if (want) assert.equal((await c.next('publish')).payload.toString(), 'kept', `rh ${rh}`);
      else await c.nothing(100);
    }
    c.end();
  }
  p.send({ ...pub('rh', ''), retain: true });
  p.end();
});

test('subscription identifiers: a message matching two subscriptions carries both ids', async () => {
  const c = await v5('sid');
  await sub(c, [{ topic: 'sid/+', qos: 0 }], { subscriptionIdentifiers: [7] }, 1);
  await sub(c, [{ topic: 'sid/#', qos: 0 }], { subscriptionIdentifiers: [9] }, 2);
  const p = await v5('sid-pub');
  p.send(pub('sid/x', 'both'));
  const m = await c.next('publish');
  assert.deepEqual([...(m.properties?.subscriptionIdentifiers ?? [])].sort(), [7, 9]);
  await c.nothing(100);
  c.end(); p.end();
});

test('user properties, content type, response topic and correlation data pass through unchanged and in order', async () => {
  const c = await v5('up');
  await sub(c, [{ topic: 'up', qos: 1 }]);
  const p = await v5('up-pub');
  const props: Properties = {
    userProperties: [['b', '2'], ['a', '1'], ['b', '3']], contentType: 'text/plain',
    responseTopic: 'up/reply', correlationData: Buffer.from([1, 2, 3]), payloadFormatIndicator: 1,
  };
  p.send(pub('up', 'hello', 1, props, 3)); await p.next('puback');
  const m = await c.next('publish');
  assert.deepEqual(m.properties?.userProperties, props.userProperties);
  assert.equal(m.properties?.contentType, 'text/plain');
  assert.equal(m.properties?.responseTopic, 'up/reply');
  assert.deepEqual(m.properties?.correlationData, Buffer.from([1, 2, 3]));
  assert.equal(m.properties?.payloadFormatIndicator, 1);
  c.end(); p.end();
});

test('a payload marked UTF-8 that is not gets PUBACK 0x99 and is not delivered', async () => {
  const c = await v5('pfi');
  await sub(c, [{ topic: 'pfi', qos: 1 }]);
  const p = await v5('pfi-pub');
  p.send({ ...pub('pfi', '', 1, { payloadFormatIndicator: 1 }, 4), payload: Buffer.from([0xff, 0xfe]) });
  assert.equal((await p.next('puback')).reasonCode, 0x99);
  await c.nothing(100);
  c.end(); p.end();
});

test('request response information is answered with response information in CONNACK', async () => {
  const c = RawClient.connectTo(tb, 5);
  const ack = await c.connect({ clientId: 'rri', properties: { requestResponseInformation: 1 } });
  assert.equal(ack.properties?.responseInformation, 'response/rri');
  c.end();
});

test('topic aliases from the client: set, reuse with an empty topic, and alias 0 is 0x94', async () => {
  const c = await v5('ta-sub');
  await sub(c, [{ topic: 'ta/#', qos: 0 }]);
  const p = await v5('ta-pub');
  p.send(pub('ta/long/topic', 'first', 0, { topicAlias: 1 }));
  p.send(pub('', 'second', 0, { topicAlias: 1 }));
  assert.equal((await c.next('publish')).topic, 'ta/long/topic');
  const m2 = await c.next('publish');
  assert.equal(m2.topic, 'ta/long/topic');
  assert.equal(m2.payload.toString(), 'second');
  p.send(pub('ta/x', 'bad', 0, { topicAlias: 0 }));
  assert.equal((await p.next('disconnect')).reasonCode, 0x94);
  await p.closedByBroker();
  c.end();
});

test('an alias above the maximum is 0x94; an unknown alias with an empty topic is a protocol error', async () => {
  const p = await v5('ta-high');
  p.send(pub('x', 'bad', 0, { topicAlias: 11 }));
  assert.equal((await p.next('disconnect')).reasonCode, 0x94);
  const q = await v5('ta-unknown');
  q.send(pub('', 'bad', 0, { topicAlias: 3 }));
  assert.equal((await q.next('disconnect')).reasonCode, 0x82);
});

test('topic aliases to the client: the second message on a topic comes with an empty topic and the alias', async () => {
  const c = await v5('tao', { properties: { topicAliasMaximum: 5 } });
  await sub(c, [{ topic: 'tao/#', qos: 0 }]);
  const p = await v5('tao-pub');
  p.send(pub('tao/a', '1'));
  p.send(pub('tao/a', '2'));
  const m1 = await c.next('publish');
  const m2 = await c.next('publish');
  assert.equal(m1.topic, 'tao/a');
  assert.ok(m1.properties?.topicAlias !== undefined);
  assert.equal(m2.topic, '');
  assert.equal(m2.properties?.topicAlias, m1.properties?.topicAlias);
  c.end(); p.end();
});

test('the client receive maximum caps the messages in flight to it', async () => {
  const c = await v5('rm', { properties: { receiveMaximum: 2 } });
  await sub(c, [{ topic: 'rm', qos: 1 }]);
  const p = await v5('rm-pub');
  for (let i = 1; i <= 4; i++) { p.send(pub('rm', `m${i}`, 1, undefined, i)); await p.next('puback'); }
  const a = await c.next('publish');
  const b = await c.next('publish');
  await c.nothing(100);
  c.send({ type: 'puback', packetId: a.packetId! });
  assert.equal((await c.next('publish')).payload.toString(), 'm3');
  c.send({ type: 'puback', packetId: b.packetId! });
  c.end(); p.end();
});

test('more unacknowledged QoS 2 PUBLISHes than the receive maximum is 0x93', async () => {
  const p = await v5('rm-over');
  for (let i = 1; i <= 11; i++) p.send(pub('rm-over', 'x', 2, undefined, i));
  for (let i = 1; i <= 10; i++) await p.next('pubrec');
  assert.equal((await p.next('disconnect')).reasonCode, 0x93);
});

test('a message larger than the client maximum packet size is dropped for that client only', async () => {
  const small = await v5('mps-small', { properties: { maximumPacketSize: 64 } });
  await sub(small, [{ topic: 'mps', qos: 0 }]);
  const big = await v5('mps-big');
  await sub(big, [{ topic: 'mps', qos: 0 }]);
  const p = await v5('mps-pub');
  p.send(pub('mps', 'x'.repeat(200)));
  p.send(pub('mps', 'tiny'));
  assert.equal((await big.next('publish')).payload.length, 200);
  assert.equal((await small.next('publish')).payload.toString(), 'tiny');
  small.end(); big.end(); p.end();
});

test('takeover sends DISCONNECT 0x8E to the old v5 connection', async () => {
  const a = await v5('tk5');
  await v5('tk5');
  assert.equal((await a.next('disconnect')).reasonCode, 0x8e);
});

test('keepalive timeout sends DISCONNECT 0x8D to a v5 client', async () => {
  const a = await v5('ka5', { keepalive: 1 });
  clock.advance(2000);
  assert.equal((await a.next('disconnect')).reasonCode, 0x8d);
});

test('a shared group of 3 receives each of 300 messages exactly once in total', async () => {
  const members = [await v5('sh1'), await v5('sh2'), await connected(tb, { clientId: 'sh3' }, 4)];
  for (const m of members) {
    m.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: '$share/g/sh/+', qos: 1 }] });
    assert.deepEqual((await m.next('suback')).reasonCodes, [1]);
  }
  const p = await v5('sh-pub');
  for (let i = 0; i < 300; i++) p.send(pub('sh/t', String(i), 1, undefined, (i % 60000) + 1));
  const seen: string[] = [];
  const perMember = [0, 0, 0];
  const deadline = Math.round(performance.now()) + 5000;
  while (seen.length < 300 && Math.round(performance.now()) < deadline) {
    for (let k = 0; k < 3; k++) {
      const c = members[k]!;
      while (c.packets.length > 0) {
        const m = c.packets.shift()!;
        if (m.type !== 'publish') continue;
        seen.push(m.payload.toString());
        perMember[k]!++;
        c.send({ type: 'puback', packetId: m.packetId! });
      }
    }
    await sleep(10);
  }
  assert.equal(seen.length, 300);
  assert.equal(new Set(seen).size, 300, 'no message twice');
  assert.ok(perMember.every((n) => n === 100), `round robin: ${perMember}`);
  for (const m of members) m.end();
  p.end();
});

test('a QoS 1 message in flight to a shared member that disconnects is re-sent to another member', async () => {
  const a = await v5('shr-a');
  const b = await v5('shr-b');
  for (const m of [a, b]) await sub(m, [{ topic: '$share/r/shr', qos: 1 }]);
  const p = await v5('shr-pub');
  p.send(pub('shr', 'only', 1, undefined, 1)); await p.next('puback');
  await sleep(50);
  const [holder, other] = a.packets.length > 0 ? [a, b] : [b, a];
  assert.equal((await holder.next('publish')).payload.toString(), 'only');
  holder.destroy(); // never acknowledged
  const again = await other.next('publish');
  assert.equal(again.payload.toString(), 'only');
  other.end(); p.end();
});

test('retained messages are not sent on a shared subscription', async () => {
  const p = await v5('shret-pub');
  p.send({ ...pub('shret', 'kept'), retain: true });
  p.send({ type: 'pingreq' }); await p.next('pingresp');
  const c = await v5('shret');
  await sub(c, [{ topic: '$share/g/shret', qos: 0 }]);
  await c.nothing(150);
  p.send({ ...pub('shret', ''), retain: true });
  c.end(); p.end();
});

test('an invalid shared subscription gets 0x8F, and no local on a shared subscription is a protocol error', async () => {
  const c = await v5('shbad');
  assert.deepEqual(await sub(c, [{ topic: '$share/g+/x', qos: 0 }, { topic: '$share/g', qos: 0 }]), [0x8f, 0x8f]);
  c.send({ type: 'subscribe', packetId: 2, subscriptions: [{ topic: '$share/g/x', qos: 0, noLocal: true }] });
  assert.equal((await c.next('disconnect')).reasonCode, 0x82);
});

test('enhanced authentication: the MIDGE-CHALLENGE exchange accepts the right secret and refuses a wrong one', async () => {
  const secrets: Record<string, string> = { alice: 's3cret' };
  const eb = startTestBroker({ hooks: { authMethods: { [CHALLENGE_METHOD]: challengeAuth((u) => secrets[u]) } } });
  try {
    for (const [secret, ok] of [['s3cret', true], ['wrong', false]] as const) {
      const c = RawClient.connectTo(eb, 5);
      c.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 5, clean: true, keepalive: 60, clientId: `ea-${ok}`,
        properties: { authenticationMethod: CHALLENGE_METHOD, authenticationData: Buffer.from('alice') } });
      const challenge = await c.next('auth');
      assert.equal(challenge.reasonCode, 0x18);
      c.send({ type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: CHALLENGE_METHOD,
        authenticationData: challengeResponse(secret, challenge.properties!.authenticationData!) } });
      const ack = await c.next('connack');
      assert.equal(ack.reasonCode, ok ? 0 : 0x86);
      if (ok) assert.equal(ack.properties?.authenticationMethod, CHALLENGE_METHOD);
      c.destroy();
    }
    const unknown = RawClient.connectTo(eb, 5);
    const ack = await unknown.connect({ clientId: 'ea-unknown', properties: { authenticationMethod: 'SCRAM-SHA-1' } });
    assert.equal(ack.reasonCode, 0x8c);
  } finally { await eb.broker.close(); }
});

test('server redirection: v5 clients get CONNACK 0x9D with the server reference, 3.1.1 clients 3', async () => {
  const rb = startTestBroker({ serverReference: 'other.example:1883', serverMoved: true });
  try {
    const c5 = RawClient.connectTo(rb, 5);
    const ack = await c5.connect({ clientId: 'rd5' });
    assert.equal(ack.reasonCode, 0x9d);
    assert.equal(ack.properties?.serverReference, 'other.example:1883');
    const c4 = RawClient.connectTo(rb, 4);
    assert.equal((await c4.connect({ clientId: 'rd4' })).reasonCode, 3);
  } finally { await rb.broker.close(); }
});
