/**
 * The global limits over the in-memory harness: max_queued_bytes, max_inflight_bytes, memory_limit,
 * global_max_connections and the retained store limits (midge_max_retained_messages / _bytes).
 * Each broker here has only the limit under test, so that a failure names one limit.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connected, startTestBroker, subscribed, sleep, RawClient, type TestBroker } from './_harness.js';
import type { BrokerOptions } from '../../src/broker/options.js';
import type { ProtocolVersion, QoS } from '../../src/codec/types.js';
import { FakeClock } from '../helpers/fake-clock.js';

const brokers: TestBroker[] = [];
after(() => Promise.all(brokers.map((b) => b.broker.close())));
function broker(opts: Partial<BrokerOptions>): TestBroker {
  const tb = startTestBroker(opts);
  brokers.push(tb);
  return tb;
}

const pkt = (topic: string, payload: string | Buffer, qos: QoS, packetId?: number, retain = false) =>
  ({ type: 'publish' as const, topic, payload: Buffer.from(payload), qos, retain, dup: false, packetId: qos > 0 ? packetId ?? 1 : undefined });

const count = (tb: TestBroker, re: RegExp): number => tb.logs.filter((l) => re.test(l)).length;
/** a v5 QoS 1 PUBLISH accepted but matching no subscription is acknowledged 0x10, as mosquitto 2.0.11 does */
const NO_SUBSCRIBERS = 0x10;

// ---- max_queued_bytes ----

test('max_queued_bytes: an offline session queues while it holds fewer bytes, then drops (counted, logged once)', async () => {
  const tb = broker({ maxQueuedBytes: 250, maxQueuedMessages: 0 });
  const sub = await connected(tb, { clientId: 'qb-sub', clean: false });
  await subscribed(sub, 'qb', 1);
  sub.destroy();
  await sleep(20);
  const pub = await connected(tb, { clientId: 'qb-pub' });
  const before = tb.broker.stats.dropped;
  // 100-byte payloads: 0, 100 and 200 bytes queued are under 250, so three are queued; the rest dropped
  for (let i = 0; i < 6; i++) { pub.send(pkt('qb', Buffer.alloc(100, 48 + i), 1, i + 1)); await pub.next('puback'); }
  assert.equal(tb.broker.sessions.get('qb-sub')!.queue.length, 3);
  assert.equal(tb.broker.stats.dropped - before, 3);
  assert.equal(count(tb, /Outgoing messages are being dropped for client qb-sub\./), 1, 'one log line per episode');
  const back = RawClient.connectTo(tb);
  assert.equal((await back.connect({ clientId: 'qb-sub', clean: false })).sessionPresent, true);
  const got: string[] = [];
  for (let i = 0; i < 3; i++) {
    const m = await back.next('publish');
    got.push(m.payload.toString()[0]!);
    back.send({ type: 'puback', packetId: m.packetId! });
  }
  assert.deepEqual(got, ['0', '1', '2'], 'the first three, in order');
  await back.nothing(100);
  // the queue is empty again: a new episode may queue (and would log again)
  pub.send(pkt('qb', 'again', 1, 9)); await pub.next('puback');
  assert.equal((await back.next('publish')).payload.toString(), 'again');
  back.end(); pub.end();
});

test('max_queued_bytes 0 and max_queued_messages 2: the message count alone limits', async () => {
  const tb = broker({ maxQueuedBytes: 0, maxQueuedMessages: 2 });
  const sub = await connected(tb, { clientId: 'qc-sub', clean: false });
  await subscribed(sub, 'qc', 1);
  sub.destroy();
  await sleep(20);
  const pub = await connected(tb, { clientId: 'qc-pub' });
  for (let i = 0; i < 4; i++) { pub.send(pkt('qc', Buffer.alloc(10_000), 1, i + 1)); await pub.next('puback'); }
  assert.equal(tb.broker.sessions.get('qc-sub')!.queue.length, 2);
  pub.end();
});

// ---- max_inflight_bytes ----

test('max_inflight_bytes: messages go while fewer bytes are in flight; the rest wait and follow as acks free bytes', async () => {
  const tb = broker({ maxInflightBytes: 250, maxInflightMessages: 0 });
  const sub = await connected(tb, { clientId: 'ib-sub' });
  await subscribed(sub, 'ib', 1);
  const pub = await connected(tb, { clientId: 'ib-pub' });
  for (let i = 0; i < 5; i++) { pub.send(pkt('ib', Buffer.alloc(100, 48 + i), 1, i + 1)); await pub.next('puback'); }
  // in flight before each send: 0, 100, 200 (< 250) → three sent; 300 → the others wait
  const first = [await sub.next('publish'), await sub.next('publish'), await sub.next('publish')];
  assert.deepEqual(first.map((m) => m.payload.toString()[0]), ['0', '1', '2']);
  await sub.nothing(100);
  assert.equal(tb.broker.sessions.get('ib-sub')!.queue.length, 2);
  sub.send({ type: 'puback', packetId: first[0]!.packetId! });
  // 200 bytes in flight: one more goes, then 300 again
  assert.equal((await sub.next('publish')).payload.toString()[0], '3');
  await sub.nothing(100);
  sub.send({ type: 'puback', packetId: first[1]!.packetId! });
  assert.equal((await sub.next('publish')).payload.toString()[0], '4');
  assert.equal(tb.broker.stats.dropped, 0, 'nothing dropped: the window only delays');
  sub.end(); pub.end();
});

test('max_inflight_bytes: a message larger than the limit still goes when nothing else is in flight, alone', async () => {
  const tb = broker({ maxInflightBytes: 100 });
  const sub = await connected(tb, { clientId: 'big-sub' });
  await subscribed(sub, 'big', 2);
  const pub = await connected(tb, { clientId: 'big-pub' });
  pub.send(pkt('big', Buffer.alloc(1000, 65), 1, 1)); await pub.next('puback');
  pub.send(pkt('big', Buffer.alloc(10, 66), 1, 2)); await pub.next('puback');
  const m = await sub.next('publish');
  assert.equal(m.payload.length, 1000);
  await sub.nothing(100); // the small one waits: 1000 bytes are in flight
  sub.send({ type: 'puback', packetId: m.packetId! });
  const m2 = await sub.next('publish');
  assert.equal(m2.payload.length, 10);
  // QoS 2 holds its bytes until PUBCOMP, not PUBREC
  sub.send({ type: 'puback', packetId: m2.packetId! });
  pub.send({ ...pkt('big', Buffer.alloc(500, 67), 2, 3) }); await pub.next('pubrec');
  pub.send({ type: 'pubrel', packetId: 3 }); await pub.next('pubcomp');
  pub.send(pkt('big', Buffer.alloc(5, 68), 1, 4)); await pub.next('puback');
  const q2 = await sub.next('publish');
  assert.equal(q2.qos, 2);
  sub.send({ type: 'pubrec', packetId: q2.packetId! });
  await sub.next('pubrel');
  await sub.nothing(100);
  sub.send({ type: 'pubcomp', packetId: q2.packetId! });
  assert.equal((await sub.next('publish')).payload.length, 5);
  sub.end(); pub.end();
});

test('max_inflight_bytes: after a reconnect the in-flight messages are re-sent and their bytes count until acknowledged', async () => {
  const tb = broker({ maxInflightBytes: 150 });
  const sub = await connected(tb, { clientId: 'ibr-sub', clean: false });
  await subscribed(sub, 'ibr', 1);
  const pub = await connected(tb, { clientId: 'ibr-pub' });
  for (let i = 0; i < 3; i++) { pub.send(pkt('ibr', Buffer.alloc(100, 48 + i), 1, i + 1)); await pub.next('puback'); }
  const a = await sub.next('publish');
  const b = await sub.next('publish');
  await sub.nothing(50);
  sub.destroy();
  await sleep(20);
  const back = RawClient.connectTo(tb);
  await back.connect({ clientId: 'ibr-sub', clean: false });
  // the two in flight are re-sent with DUP; the third still waits for bytes
  const r = [await back.next('publish'), await back.next('publish')];
  assert.deepEqual(r.map((m) => [m.dup, m.packetId]), [[true, a.packetId], [true, b.packetId]]);
  await back.nothing(100);
  back.send({ type: 'puback', packetId: a.packetId! });
  back.send({ type: 'puback', packetId: b.packetId! });
  assert.equal((await back.next('publish')).payload.toString()[0], '2');
  back.end(); pub.end();
});

// ---- memory_limit ----

/** A broker whose measured memory is whatever the test says, sampled on demand. */
function memoryBroker(): { tb: TestBroker; use: (bytes: number) => void } {
  const tb = broker({ memoryLimit: 1000 });
  let used = 0;
  tb.broker.memoryUsed = () => used;
  return { tb, use: (bytes) => { used = bytes; tb.broker.sampleMemory(); } };
}

test('memory_limit, MQTT 5: QoS 1/2 PUBLISHes get 0x97, QoS 0 is dropped, the client stays; it recovers when memory falls', async () => {
  const { tb, use } = memoryBroker();
  const sub = await connected(tb, { clientId: 'm5-sub' }, 5);
  sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'm5', qos: 2 }] });
  await sub.next('suback');
  const pub = await connected(tb, { clientId: 'm5-pub' }, 5);
  use(1001);
  assert.equal(tb.broker.memoryFull, true);
  const before = tb.broker.stats.dropped;
  pub.send(pkt('m5', 'q1', 1, 1));
  assert.deepEqual([(await pub.next('puback')).reasonCode], [0x97]);
  pub.send(pkt('m5', 'q2', 2, 2));
  assert.equal((await pub.next('pubrec')).reasonCode, 0x97);
  pub.send(pkt('m5', 'q0', 0));
  pub.send(pkt('m5', 'retained', 1, 3, true));
  assert.equal((await pub.next('puback')).reasonCode, 0x97);
  await sub.nothing(100);
  assert.equal(tb.broker.stats.dropped - before, 4);
  assert.equal(tb.broker.retained.size, 0);
  assert.equal(count(tb, /memory_limit \(1000 bytes\) exceeded \(1001 bytes in use\): new PUBLISHes are refused\./), 1);
  use(1002); // still over: no second line
  assert.equal(count(tb, /memory_limit .* exceeded/), 1);
  use(1000); // at the limit is not over it
  assert.equal(tb.broker.memoryFull, false);
  assert.ok(tb.logs.some((l) => /Memory use back under memory_limit \(1000 of 1000 bytes\): PUBLISHes are accepted again\./.test(l)));
  pub.send(pkt('m5', 'after', 1, 4));
  assert.equal((await pub.next('puback')).reasonCode, 0);
  assert.equal((await sub.next('publish')).payload.toString(), 'after');
  // the packet id of the refused QoS 2 was not kept: it can be used again at once
  pub.send(pkt('m5', 'q2-again', 2, 2));
  assert.equal((await pub.next('pubrec')).reasonCode, 0);
  use(5000); // a new episode is logged again
  assert.equal(count(tb, /memory_limit .* exceeded/), 2);
  sub.end(); pub.end();
});

for (const version of [4, 3] as ProtocolVersion[]) {
  test(`memory_limit, MQTT ${version === 4 ? '3.1.1' : '3.1'}: the PUBLISH is dropped and the publisher disconnected (as mosquitto), its will goes`, async () => {
    const { tb, use } = memoryBroker();
    const id = `m${version}`;
    const sub = await connected(tb, { clientId: `${id}-sub` }, version);
    await subscribed(sub, `${id}/#`, 1);
    const pub = await connected(tb, { clientId: `${id}-pub`, will: { topic: `${id}/will`, payload: Buffer.from('gone'), qos: 0, retain: false } }, version);
    use(2000);
    pub.send(pkt(`${id}/x`, 'refused', 1, 1));
    await pub.closedByBroker();
    assert.equal(pub.packets.length, 0, 'no PUBACK: the message was not accepted');
    const w = await sub.next('publish');
    assert.deepEqual([w.topic, w.payload.toString()], [`${id}/will`, 'gone']);
    assert.ok(tb.logs.some((l) => l.includes(`Client ${id}-pub [127.0.0.1:`) && l.endsWith('disconnected due to out of memory.')));
    // QoS 0 too
    const pub0 = await connected(tb, { clientId: `${id}-pub0` }, version);
    pub0.send(pkt(`${id}/x`, 'refused', 0));
    await pub0.closedByBroker();
    use(10);
    const ok = await connected(tb, { clientId: `${id}-pub` }, version);
    ok.send(pkt(`${id}/x`, 'fine', 1, 1));
    await ok.next('puback');
    assert.equal((await sub.next('publish')).payload.toString(), 'fine');
    await sub.nothing(50);
    sub.end(); ok.end();
  });
}

test('memory_limit: the broker samples every 250 ms on its own timer; a failing measure is logged, never thrown', async () => {
  const clock = new FakeClock();
  const tb = broker({ memoryLimit: 1000, clock });
  let used = 5000;
  tb.broker.memoryUsed = () => used;
  void tb.broker.start(); // the timers run from start() (called by listen() and the first handle())
  clock.advance(249);
  assert.equal(tb.broker.memoryFull, false, 'no sample before 250 ms');
  clock.advance(1);
  assert.equal(tb.broker.memoryFull, true);
  clock.advance(750); // three more samples, still over: one line
  assert.equal(count(tb, /memory_limit \(1000 bytes\) exceeded \(5000 bytes in use\)/), 1);
  used = 10;
  clock.advance(250);
  assert.equal(tb.broker.memoryFull, false);
  tb.broker.memoryUsed = () => { throw new Error('no /proc'); };
  clock.advance(250); // the timer's sample throws inside: logged, and nothing escapes advance()
  assert.ok(tb.logs.some((l) => l.includes('Error: memory_limit: measuring memory failed: no /proc')));
  assert.equal(tb.broker.memoryFull, false, 'the last state stays');
});

// ---- global_max_connections ----

test('global_max_connections: a connection beyond it is closed at once and logged; one closing makes room', async () => {
  const tb = broker({ globalMaxConnections: 2 });
  const a = await connected(tb, { clientId: 'g1' });
  const pending = RawClient.connectTo(tb); // counts before its CONNECT, like a socket in mosquitto
  const over = RawClient.connectTo(tb);
  await over.closedByBroker(500);
  await assert.rejects(over.connect({ clientId: 'g3' }));
  assert.ok(tb.logs.some((l) => /Client connection from 127\.0\.0\.1 denied: global_max_connections exceeded\./.test(l)));
  assert.equal(tb.broker.connections.size, 2);
  assert.equal((await pending.connect({ clientId: 'g2' })).reasonCode, 0);
  a.end();
  await a.closedByBroker();
  await sleep(20);
  const c = await connected(tb, { clientId: 'g4' });
  assert.equal(tb.broker.connections.size, 2);
  pending.end(); c.end();
});

test('global_max_connections -1 and 0 are no limit', async () => {
  for (const globalMaxConnections of [-1, 0]) {
    const tb = broker({ globalMaxConnections });
    const cs = await Promise.all([1, 2, 3, 4, 5].map((i) => connected(tb, { clientId: `u${i}` })));
    assert.equal(tb.broker.connections.size, 5);
    for (const c of cs) c.end();
  }
});

// ---- midge_max_retained_messages / midge_max_retained_bytes ----

test('midge_max_retained_messages: a new retained topic beyond it is refused (v5 QoS 1: 0x97), replacing and clearing are allowed', async () => {
  const tb = broker({ maxRetainedMessages: 2 });
  const p = await connected(tb, { clientId: 'rm-pub' }, 5);
  p.send(pkt('r/1', 'one', 1, 1, true)); assert.equal((await p.next('puback')).reasonCode, NO_SUBSCRIBERS);
  p.send(pkt('r/2', 'two', 1, 2, true)); assert.equal((await p.next('puback')).reasonCode, NO_SUBSCRIBERS);
  const before = tb.broker.stats.dropped;
  p.send(pkt('r/3', 'three', 1, 3, true)); assert.equal((await p.next('puback')).reasonCode, 0x97);
  p.send(pkt('r/4', 'four', 2, 4, true)); assert.equal((await p.next('pubrec')).reasonCode, 0x97);
  p.send(pkt('r/5', 'five', 0, undefined, true));
  await sleep(30);
  assert.equal(tb.broker.stats.dropped - before, 3);
  assert.deepEqual([tb.broker.retained.size, tb.broker.retained.has('r/3'), tb.broker.retained.has('r/5')], [2, false, false]);
  assert.equal(count(tb, /Retained messages are being refused: midge_max_retained_messages \(2\) reached\./), 1, 'logged once per episode');
  // a non-retained PUBLISH to a new topic is not concerned
  p.send(pkt('r/6', 'plain', 1, 5)); assert.equal((await p.next('puback')).reasonCode, NO_SUBSCRIBERS);
  // replacing an existing one is allowed at the count limit
  p.send(pkt('r/1', 'ONE', 1, 6, true)); assert.equal((await p.next('puback')).reasonCode, NO_SUBSCRIBERS);
  assert.equal(tb.broker.retained.get('r/1')!.payload.toString(), 'ONE');
  // clearing makes room; the next refusal is a new episode
  p.send(pkt('r/2', '', 1, 7, true)); assert.equal((await p.next('puback')).reasonCode, NO_SUBSCRIBERS);
  p.send(pkt('r/3', 'three', 1, 8, true)); assert.equal((await p.next('puback')).reasonCode, NO_SUBSCRIBERS);
  p.send(pkt('r/7', 'seven', 1, 9, true)); assert.equal((await p.next('puback')).reasonCode, 0x97);
  assert.equal(count(tb, /Retained messages are being refused/), 2);
  // a refused message is not delivered either (the publisher was told it was not accepted)
  const s = await connected(tb, { clientId: 'rm-sub' }, 5);
  s.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'r/#', qos: 1 }] });
  await s.next('suback');
  const got = new Set<string>();
  for (let i = 0; i < 2; i++) { const m = await s.next('publish'); got.add(m.topic); s.send({ type: 'puback', packetId: m.packetId! }); }
  assert.deepEqual([...got].sort(), ['r/1', 'r/3']);
  p.send(pkt('r/8', 'live', 1, 10, true)); assert.equal((await p.next('puback')).reasonCode, 0x97);
  await s.nothing(100);
  p.end(); s.end();
});

test('midge_max_retained_messages, MQTT 3.1.1: the refused message is acknowledged as usual (no reason codes), not retained', async () => {
  const tb = broker({ maxRetainedMessages: 1 });
  const p = await connected(tb, { clientId: 'rm3' });
  p.send(pkt('a', 'x', 1, 1, true)); await p.next('puback');
  p.send(pkt('b', 'y', 1, 2, true));
  const ack = await p.next('puback');
  assert.equal(ack.packetId, 2);
  assert.deepEqual([tb.broker.retained.has('a'), tb.broker.retained.has('b')], [true, false]);
  p.end();
});

test('midge_max_retained_bytes: growth beyond it is refused; same-size or smaller replacements always pass', async () => {
  const tb = broker({ maxRetainedBytes: 100 });
  const p = await connected(tb, { clientId: 'rb' }, 5);
  const put = async (topic: string, size: number, id: number): Promise<number> => {
    p.send(pkt(topic, Buffer.alloc(size, 120), 1, id, true));
    return (await p.next('puback')).reasonCode ?? 0;
  };
  assert.equal(await put('b/1', 60, 1), NO_SUBSCRIBERS);
  assert.equal(await put('b/2', 40, 2), NO_SUBSCRIBERS); // exactly 100
  assert.equal(await put('b/3', 1, 3), 0x97);
  assert.equal(count(tb, /Retained messages are being refused: midge_max_retained_bytes \(100 bytes\) reached\./), 1);
  assert.equal(await put('b/1', 61, 4), 0x97, 'growing an existing one past the limit');
  assert.equal(await put('b/1', 60, 5), NO_SUBSCRIBERS, 'same size');
  assert.equal(await put('b/1', 10, 6), NO_SUBSCRIBERS, 'smaller: 50 bytes now');
  assert.equal(await put('b/3', 50, 7), NO_SUBSCRIBERS, 'fits again exactly');
  assert.equal(await put('b/3', 51, 8), 0x97);
  assert.equal(await put('b/2', 0, 9), NO_SUBSCRIBERS, 'clearing is always allowed'); // 60 bytes now
  assert.equal(await put('b/4', 40, 10), NO_SUBSCRIBERS);
  assert.equal(tb.broker.retained.size, 3);
  assert.equal(await put('nothing', 0, 11), NO_SUBSCRIBERS, 'clearing a topic that holds nothing');
  // a message that is bigger than the whole limit is refused even on an empty topic
  assert.equal(await put('b/5', 101, 12), 0x97);
  p.end();
});

test('retained limits: $SYS is always retained, and a will over a limit is delivered but not retained', async () => {
  const tb = broker({ maxRetainedMessages: 1 });
  // what the $SYS publisher does: broker messages have no origin
  for (const t of ['$SYS/broker/a', '$SYS/broker/b']) tb.broker.publish({ topic: t, payload: Buffer.from('1'), qos: 0, retain: true });
  assert.equal(tb.broker.retained.size, 2, '$SYS topics are retained beyond the limit');
  const s = await connected(tb, { clientId: 'rw-sub' });
  await subscribed(s, 'w/#', 0);
  const p = await connected(tb, { clientId: 'rw-pub', will: { topic: 'w/will', payload: Buffer.from('bye'), qos: 0, retain: true } });
  p.destroy();
  const w = await s.next('publish');
  assert.deepEqual([w.topic, w.payload.toString()], ['w/will', 'bye']);
  assert.equal(tb.broker.retained.has('w/will'), false);
  assert.ok(tb.logs.some((l) => l.includes('Retained messages are being refused: midge_max_retained_messages (1) reached.')));
  s.end();
});

// ---- global_max_clients ----

test('global_max_clients: a new client beyond it gets CONNACK 0x89 (v5) / 3 (3.1.1); offline durable sessions count', async () => {
  const tb = broker({ globalMaxClients: 2 });
  const a = await connected(tb, { clientId: 'gc-a', clean: false, properties: { sessionExpiryInterval: 60 } }, 5);
  const b = await connected(tb, { clientId: 'gc-b' });
  const v5 = RawClient.connectTo(tb, 5);
  const ack5 = await v5.connect({ clientId: 'gc-c' });
  assert.equal(ack5.reasonCode, 0x89);
  await v5.closedByBroker();
  const v4 = RawClient.connectTo(tb);
  assert.equal((await v4.connect({ clientId: 'gc-d' })).reasonCode, 3);
  await v4.closedByBroker();
  assert.ok(tb.logs.some((l) => /Client gc-c from 127\.0\.0\.1:\d+ refused: global_max_clients exceeded\./.test(l)));
  // the durable session of gc-a stays when it goes offline: still two clients
  a.destroy();
  await sleep(30);
  const again = RawClient.connectTo(tb, 5);
  assert.equal((await again.connect({ clientId: 'gc-e' })).reasonCode, 0x89);
  // its own client id resumes it
  const back = RawClient.connectTo(tb, 5);
  const ack = await back.connect({ clientId: 'gc-a', clean: false, properties: { sessionExpiryInterval: 60 } });
  assert.deepEqual([ack.reasonCode, ack.sessionPresent], [0, true]);
  // a clean 3.1.1 session ends with its connection, which makes room
  b.end();
  await b.closedByBroker();
  await sleep(20);
  const c = await connected(tb, { clientId: 'gc-f' });
  back.end(); c.end();
});

test('global_max_clients: taking over a connected client id is not a new client', async () => {
  const tb = broker({ globalMaxClients: 1 });
  const first = await connected(tb, { clientId: 'gt' });
  const second = await connected(tb, { clientId: 'gt' });
  await first.closedByBroker();
  assert.equal(tb.broker.sessions.size, 1);
  second.end();
});

test('max_inflight_bytes also paces the retained messages sent on SUBSCRIBE', async () => {
  const tb = broker({ maxInflightBytes: 150 });
  const p = await connected(tb, { clientId: 'ibs-pub' });
  for (let i = 0; i < 3; i++) { p.send(pkt(`ibs/${i}`, Buffer.alloc(100, 48 + i), 1, i + 1, true)); await p.next('puback'); }
  const s = await connected(tb, { clientId: 'ibs-sub' });
  s.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'ibs/#', qos: 1 }] });
  await s.next('suback');
  // 0 then 100 bytes in flight (< 150): two go, the third waits for an ack
  const a = await s.next('publish');
  const b = await s.next('publish');
  await s.nothing(100);
  s.send({ type: 'puback', packetId: a.packetId! });
  const c = await s.next('publish');
  assert.deepEqual(new Set([a.topic, b.topic, c.topic]), new Set(['ibs/0', 'ibs/1', 'ibs/2']));
  assert.equal(tb.broker.stats.dropped, 0);
  p.end(); s.end();
});

test('midge_max_retained_bytes: a retained message removed by its message expiry gives its bytes back', async () => {
  const clock = new FakeClock();
  const tb = broker({ maxRetainedBytes: 100, clock });
  const p = await connected(tb, { clientId: 'rbe' }, 5);
  p.send({ ...pkt('e/1', Buffer.alloc(100, 120), 1, 1, true), properties: { messageExpiryInterval: 1 } });
  assert.equal((await p.next('puback')).reasonCode, NO_SUBSCRIBERS);
  p.send(pkt('e/2', 'x', 1, 2, true));
  assert.equal((await p.next('puback')).reasonCode, 0x97);
  // the sweep (every 500 ms) removes it once expired
  clock.advance(1000);
  assert.equal(tb.broker.retained.has('e/1'), false);
  p.send(pkt('e/2', Buffer.alloc(100, 121), 1, 3, true));
  assert.equal((await p.next('puback')).reasonCode, NO_SUBSCRIBERS, 'the whole 100 bytes are free again');
  p.end();
});
