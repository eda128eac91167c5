/**
 * The broker over a durable store (in process; test/persistence kills real processes): what a
 * restart restores, and acknowledgements that wait for their commit.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { MemoryStore } from '../../src/store/memory.js';
import type { Change, Store } from '../../src/store/store.js';
import type { PublishPacket } from '../../src/codec/types.js';
import { encode } from '../../src/codec/index.js';
import { RawClient, connected, sleep, startTestBroker, type TestBroker } from './_harness.js';
import { FakeClock } from '../helpers/fake-clock.js';

const dir = mkdtempSync(join(tmpdir(), 'midge-persist-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

async function started(store: Store, clock?: FakeClock): Promise<TestBroker> {
  const tb = startTestBroker({ store, ...(clock !== undefined ? { clock } : {}) });
  await tb.broker.start();
  return tb;
}

const pub = (topic: string, payload: string, qos: 0 | 1 | 2, packetId?: number, extra: Partial<PublishPacket> = {}): PublishPacket =>
  ({ type: 'publish', topic, payload: Buffer.from(payload), qos, retain: false, dup: false, ...(qos ? { packetId } : {}), ...extra });

test('sessions, subscriptions, queued messages and retained messages come back after a restart', async () => {
  const file = join(dir, `s${++n}.db`);
  const a = await started(await openSqliteStore({ file }));
  const sub = await connected(a, { clientId: 'durable', clean: false });
  sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'q/#', qos: 1 }] });
  await sub.next('suback');
  sub.send({ type: 'disconnect' });
  await sub.closedByBroker();
  const p = await connected(a, { clientId: 'pub' });
  for (let i = 1; i <= 5; i++) { p.send(pub('q/x', `m${i}`, 1, i)); await p.next('puback'); }
  p.send(pub('keep/me', 'retained', 1, 6, { retain: true }));
  await p.next('puback');
  p.end();
  await a.broker.close();

  const b = await started(await openSqliteStore({ file }));
  assert.ok(b.logs.some((l) => /Store: restored 1 sessions, 1 subscriptions, 5 queued/.test(l)), b.logs.join('\n'));
  const back = RawClient.connectTo(b);
  const ack = await back.connect({ clientId: 'durable', clean: false });
  assert.equal(ack.sessionPresent, true);
  const got: string[] = [];
  for (let i = 0; i < 5; i++) { const m = await back.next('publish'); got.push(m.payload.toString()); back.send({ type: 'puback', packetId: m.packetId! }); }
  assert.deepEqual(got, ['m1', 'm2', 'm3', 'm4', 'm5'], 'in order, each once');
  // the subscription was restored too: a new message is routed without resubscribing
  const p2 = await connected(b, { clientId: 'pub2' });
  p2.send(pub('q/y', 'live', 1, 1));
  await p2.next('puback');
  assert.equal((await back.next('publish')).payload.toString(), 'live');
  const fresh = await connected(b, { clientId: 'fresh' });
  fresh.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'keep/#', qos: 0 }] });
  await fresh.next('suback');
  const r = await fresh.next('publish');
  assert.equal(r.payload.toString(), 'retained');
  assert.equal(r.retain, true);
  back.end(); p2.end(); fresh.end();
  await b.broker.close();
});

test('exactly once across a restart: the incoming QoS 2 id and a message in flight survive', async () => {
  const file = join(dir, `s${++n}.db`);
  const a = await started(await openSqliteStore({ file }));
  const sub = await connected(a, { clientId: 'q2-sub', clean: false });
  sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'e/#', qos: 2 }] });
  await sub.next('suback');
  const p = await connected(a, { clientId: 'q2-pub', clean: false });
  p.send(pub('e/1', 'once', 2, 7));
  assert.equal((await p.next('pubrec')).packetId, 7);
  const first = await sub.next('publish');
  assert.equal(first.payload.toString(), 'once');
  // neither the publisher's PUBREL nor the subscriber's PUBREC happen before the restart
  await a.broker.close();

  const b = await started(await openSqliteStore({ file }));
  const s2 = RawClient.connectTo(b);
  assert.equal((await s2.connect({ clientId: 'q2-sub', clean: false })).sessionPresent, true);
  const again = await s2.next('publish');
  assert.equal(again.dup, true, 'the in-flight message is re-sent with DUP');
  assert.equal(again.packetId, first.packetId);
  const p2 = RawClient.connectTo(b);
  await p2.connect({ clientId: 'q2-pub', clean: false });
  p2.send(pub('e/1', 'once', 2, 7, { dup: true }));
  assert.equal((await p2.next('pubrec')).packetId, 7, 'the re-sent PUBLISH is acknowledged');
  p2.send({ type: 'pubrel', packetId: 7 });
  const comp = await p2.next('pubcomp');
  assert.equal(comp.packetId, 7);
  await s2.nothing(200); // not delivered a second time
  s2.send({ type: 'pubrec', packetId: again.packetId! });
  await s2.next('pubrel');
  s2.send({ type: 'pubcomp', packetId: again.packetId! });
  s2.end(); p2.end();
  await b.broker.close();
  const check = await openSqliteStore({ file });
  assert.equal(check.messageCount(), 0, 'the message is freed with its last reference');
  await check.close();
});

test('a session that expired while the broker was down is gone after the restart', async () => {
  const file = join(dir, `s${++n}.db`);
  const clock = new FakeClock(Date.now());
  const a = await started(await openSqliteStore({ file }), clock);
  const c = await connected(a, { clientId: 'short', clean: false, properties: { sessionExpiryInterval: 3 } }, 5);
  c.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'x', qos: 1 }] });
  await c.next('suback');
  c.send({ type: 'disconnect', reasonCode: 0 });
  await c.closedByBroker();
  await a.broker.close();
  clock.advance(4000); // the broker is down 4 s
  const b = await started(await openSqliteStore({ file }), clock);
  assert.equal(b.broker.sessions.size, 1, 'restored, then expired by the sweep');
  clock.advance(600);
  assert.equal(b.broker.sessions.size, 0);
  const back = RawClient.connectTo(b, 5);
  assert.equal((await back.connect({ clientId: 'short', clean: false, properties: { sessionExpiryInterval: 3 } })).sessionPresent, false);
  back.end();
  await b.broker.close();
});

/** A memory store whose commits wait until the test lets them through. */
class GatedStore extends MemoryStore {
  gated = true;
  private waiting: Array<() => void> = [];
  override commit(changes: readonly Change[]): Promise<void> {
    if (!this.gated) return super.commit(changes);
    return new Promise((resolve, reject) => this.waiting.push(() => super.commit(changes).then(resolve, reject)));
  }
  open(): void { this.gated = false; for (const w of this.waiting.splice(0)) w(); }
}

test('PUBACK, SUBACK and the CONNACK of a durable session are sent only after their commit', async () => {
  const store = new GatedStore();
  const tb = await started(store);
  const c = RawClient.connectTo(tb);
  c.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: false, keepalive: 60, clientId: 'gated' });
  await sleep(100);
  assert.equal(c.packets.length, 0, 'no CONNACK before the session is committed');
  store.open();
  assert.equal((await c.next('connack')).reasonCode, 0);
  store.gated = true;
  c.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'g', qos: 1 }] });
  await sleep(100);
  assert.equal(c.packets.length, 0, 'no SUBACK before the subscription is committed');
  store.open();
  await c.next('suback');
  // a message routed to a durable session: its PUBACK waits for the queue's commit
  const p = await connected(tb, { clientId: 'gated-pub' });
  c.send({ type: 'disconnect' });
  await c.closedByBroker();
  store.gated = true;
  p.send(pub('g', 'x', 1, 3));
  await sleep(100);
  assert.equal(p.packets.length, 0, 'no PUBACK before the message is committed');
  store.open();
  assert.equal((await p.next('puback')).packetId, 3);
  p.end();
  await tb.broker.close();
});

test('the PUBREL of a QoS 2 message to a durable session is sent only after its new state is committed', async () => {
  const store = new GatedStore();
  store.gated = false;
  const tb = await started(store);
  const sub = await connected(tb, { clientId: 'q2-sub', clean: false });
  sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'q2', qos: 2 }] });
  await sub.next('suback');
  const p = await connected(tb, { clientId: 'q2-pub' });
  p.send(pub('q2', 'once', 2, 7));
  await p.next('pubrec');
  const m = await sub.next('publish');
  assert.equal(m.qos, 2);
  store.gated = true;
  sub.send({ type: 'pubrec', packetId: m.packetId! });
  await sleep(100);
  assert.equal(sub.packets.filter((x) => x.type === 'pubrel').length, 0, 'no PUBREL before the pubrel state is committed');
  store.open();
  assert.equal((await sub.next('pubrel')).packetId, m.packetId);
  sub.send({ type: 'pubcomp', packetId: m.packetId! });
  // a clean session's PUBREL does not wait (nothing of it is stored)
  const clean = await connected(tb, { clientId: 'q2-clean' });
  clean.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'q2c', qos: 2 }] });
  await clean.next('suback');
  p.send(pub('q2c', 'c', 2, 8));
  const mc = await clean.next('publish');
  store.gated = true;
  clean.send({ type: 'pubrec', packetId: mc.packetId! });
  assert.equal((await clean.next('pubrel')).packetId, mc.packetId);
  store.open();
  p.end();
  sub.end();
  clean.end();
  await tb.broker.close();
});

test('a QoS 2 PUBLISH to a durable session leaves only after its packet id is committed; QoS 1 does not wait', async () => {
  const store = new GatedStore();
  store.gated = false;
  const tb = await started(store);
  const sub = await connected(tb, { clientId: 'q2-online', clean: false });
  sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'q2o', qos: 2 }, { topic: 'q1o', qos: 1 }] });
  await sub.next('suback');
  // the subscriber is online: the message goes straight to its in-flight window (no queue)
  const p = await connected(tb, { clientId: 'q2-online-pub' });
  store.gated = true;
  p.send(pub('q2o', 'qos 2 out', 2, 5));
  await sleep(100);
  assert.equal(sub.packets.filter((x) => x.type === 'publish').length, 0, 'no QoS 2 PUBLISH before its in-flight state is committed');
  store.open();
  const m = await sub.next('publish');
  assert.equal(m.qos, 2);
  assert.equal(m.payload.toString(), 'qos 2 out');
  assert.equal((await p.next('pubrec')).packetId, 5);
  sub.send({ type: 'pubrec', packetId: m.packetId! });
  assert.equal((await sub.next('pubrel')).packetId, m.packetId);
  sub.send({ type: 'pubcomp', packetId: m.packetId! });
  await sleep(50);
  // QoS 1: a second copy after a crash is allowed, so it goes at once
  store.gated = true;
  p.send(pub('q1o', 'q1 out', 1, 6));
  const m1 = await sub.next('publish');
  assert.equal(m1.qos, 1);
  assert.equal(m1.payload.toString(), 'q1 out');
  store.open();
  sub.send({ type: 'puback', packetId: m1.packetId! });
  assert.equal((await p.next('puback')).packetId, 6);
  p.end();
  sub.end();
  await tb.broker.close();
});

/** A memory store that keeps every change set it is given (after the Recorder's compaction). */
class SpyStore extends MemoryStore {
  readonly sets: Change[][] = [];
  override commit(changes: readonly Change[]): Promise<void> {
    this.sets.push([...changes]);
    return super.commit(changes);
  }
}

test('a message queued and taken off the queue in one turn writes no queue entry', async () => {
  const store = new SpyStore();
  const tb = startTestBroker({ store, maxInflightMessages: 1 });
  await tb.broker.start();
  // the subscriber publishes to itself, so that one read holds its PUBLISH and its PUBACK
  const c = await connected(tb, { clientId: 'self', clean: false });
  c.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'w', qos: 1 }] });
  await c.next('suback');
  c.send(pub('w', 'one', 1, 10));
  const got: PublishPacket[] = [];
  const publishes = async (n: number): Promise<void> => {
    for (let i = 0; i < 40 && got.length < n; i++) {
      const p = await c.next();
      if (p.type === 'publish') got.push(p);
    }
  };
  await publishes(1);
  assert.equal(got[0]!.payload.toString(), 'one');
  await sleep(20);
  const before = store.sets.length;
  // its window (1) is full: 'two' is queued; the PUBACK after it frees the window, and 'two' moves
  // from the queue to the window in the same turn, so its queue entry cancels out before the commit
  c.sendRaw(Buffer.concat([encode(pub('w', 'two', 1, 11), 4), encode({ type: 'puback', packetId: got[0]!.packetId! }, 4)]));
  await publishes(2);
  assert.equal(got[1]!.payload.toString(), 'two');
  await sleep(20);
  const sets = store.sets.slice(before);
  assert.equal(sets.length, 1, 'one turn, one commit');
  assert.deepEqual(sets[0]!.map((x) => x.op), ['message', 'inflightDone', 'inflight']);
  c.send({ type: 'puback', packetId: got[1]!.packetId! });
  c.end();
  await tb.broker.close();
});

test('a broker with a store refuses connections until start() has restored it', async () => {
  const tb = startTestBroker({ store: new MemoryStore() });
  const c = RawClient.connectTo(tb);
  c.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId: 'early' });
  await c.closedByBroker();
  assert.ok(tb.logs.some((l) => l.includes('start() has not restored it')));
  await tb.broker.close();
});

test('a durable QoS 2 queue larger than the output bound drains in order when each PUBLISH waits for its commit', async () => {
  // with a store, a QoS 2 PUBLISH to a durable session is held until its commit, and held output counts
  // towards Outlet.outputFull (64 KiB): the pump stops there many times over and must always go on
  const N = 3000;
  const file = join(dir, `s${++n}.db`);
  const tb = startTestBroker({ store: await openSqliteStore({ file }), maxInflightMessages: 0, maxQueuedMessages: 0 });
  await tb.broker.start();
  const sub = await connected(tb, { clientId: 'q2-big', clean: false });
  sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'big/#', qos: 2 }] });
  await sub.next('suback');
  sub.send({ type: 'disconnect' });
  await sub.closedByBroker();
  const p = await connected(tb, { clientId: 'q2-big-pub' });
  const body = 'x'.repeat(200);
  const bufs: Buffer[] = [];
  for (let i = 0; i < N; i++) bufs.push(encode(pub('big/1', `${String(i).padStart(5, '0')}${body}`, 2, i + 1), 4));
  for (let i = 0; i < N; i++) bufs.push(encode({ type: 'pubrel', packetId: i + 1 }, 4));
  p.sendRaw(Buffer.concat(bufs));
  p.send({ type: 'pingreq' });
  for (;;) { const pk = await p.next(undefined, 20_000); if (pk.type === 'pingresp') break; }
  assert.equal(tb.broker.sessions.get('q2-big')!.stateCounts.queued, N, 'queued while offline (more than 64 KiB of PUBLISHes)');

  const back = RawClient.connectTo(tb);
  assert.equal((await back.connect({ clientId: 'q2-big', clean: false })).sessionPresent, true);
  let next = 0;
  let comps = 0;
  for (let k = 0; k < 3 * N && comps < N; k++) {
    const pk = await back.next(undefined, 5000);
    if (pk.type === 'publish') {
      assert.equal(pk.qos, 2);
      assert.equal(Number(pk.payload.subarray(0, 5).toString()), next, 'in order, each once');
      next++;
      back.send({ type: 'pubrec', packetId: pk.packetId! });
    } else if (pk.type === 'pubrel') {
      back.send({ type: 'pubcomp', packetId: pk.packetId });
      comps++;
    }
  }
  assert.equal(next, N, 'every queued message arrived');
  assert.equal(comps, N, 'and completed');
  await sleep(50);
  assert.deepEqual(tb.broker.sessions.get('q2-big')!.stateCounts, { queued: 0, queuedBytes: 0, inflight: 0, inflightBytes: 0 });
  back.end(); p.end();
  await tb.broker.close();
});
