// The forwarded-message envelope and the router's shared-group selection: the pure parts of the cluster.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeEnvelope, encodeEnvelope, joinBatch, splitBatch } from '../../src/cluster/envelope.js';
import { Router } from '../../src/broker/router.js';
import { Session, type SessionEnv, type SubEntry } from '../../src/broker/session.js';
import { silentLogger } from '../../src/broker/log.js';
import { realClock } from '../../src/util/clock.js';
import type { Message } from '../../src/broker/types.js';

test('an envelope carries topic, payload bytes, QoS, retain, properties, expiry, origin, id, groups and the target client', () => {
  const payload = Buffer.from([0, 1, 2, 255, 0x7b, 0x22]);
  const msg: Message = {
    topic: 'a/b', payload, qos: 2, retain: true, origin: 'pub-1', expiresAt: 1_800_000_000_000, storeId: 2 ** 40 + 7,
    properties: { contentType: 'x/y', userProperties: [['k', 'v']], correlationData: Buffer.from('c') },
  };
  const e = decodeEnvelope(encodeEnvelope(msg, ['$share/g/a/+'], false, 'client-9'))!;
  assert.equal(e.msg.topic, 'a/b');
  assert.deepEqual(e.msg.payload, payload);
  assert.equal(e.msg.qos, 2);
  assert.equal(e.msg.retain, true);
  assert.equal(e.msg.origin, 'pub-1');
  assert.equal(e.msg.expiresAt, 1_800_000_000_000);
  assert.equal(e.msg.storeId, 2 ** 40 + 7);
  assert.equal(e.msg.properties?.contentType, 'x/y');
  assert.deepEqual(e.msg.properties?.userProperties, [['k', 'v']]);
  assert.deepEqual(e.groups, ['$share/g/a/+']);
  assert.equal(e.retainOnly, false);
  assert.equal(e.client, 'client-9');
  const r = decodeEnvelope(encodeEnvelope({ topic: 't', payload: Buffer.alloc(0), qos: 0, retain: true }, undefined, true))!;
  assert.equal(r.retainOnly, true);
  assert.equal(r.groups, undefined);
  assert.equal(r.client, undefined);
  assert.equal(r.msg.payload.length, 0);
});

test('an envelope of an unknown version or too short is refused (undefined), not misread', () => {
  const good = encodeEnvelope({ topic: 't', payload: Buffer.from('x'), qos: 1, retain: false }, undefined, false);
  const newer = Buffer.from(good);
  newer[0] = 9;
  assert.equal(decodeEnvelope(newer), undefined);
  assert.equal(decodeEnvelope(Buffer.alloc(0)), undefined);
  assert.equal(decodeEnvelope(Buffer.from([1, 0])), undefined);
  // cut short: the payload length points past the end
  assert.equal(decodeEnvelope(good.subarray(0, good.length - 1)), undefined);
  // a topic length past the end, QoS 3
  const bad = Buffer.from(good);
  bad.writeUInt16LE(60000, 3);
  assert.equal(decodeEnvelope(bad), undefined);
  const q3 = Buffer.from(good);
  q3[2] = 3;
  assert.equal(decodeEnvelope(q3), undefined);
});

test('a batch (one stream entry per node and turn) gives back its envelopes in order; a truncated tail is left out', () => {
  const envs = [0, 1, 2].map((i) => encodeEnvelope({ topic: `t/${i}`, payload: Buffer.alloc(i * 10, i), qos: 1, retain: false }, undefined, false));
  const batch = joinBatch(envs);
  assert.deepEqual([...splitBatch(batch)].map((b) => decodeEnvelope(b)!.msg.topic), ['t/0', 't/1', 't/2']);
  assert.deepEqual([...splitBatch(batch.subarray(0, batch.length - 3))].map((b) => decodeEnvelope(b)!.msg.topic), ['t/0', 't/1']);
  assert.deepEqual([...splitBatch(Buffer.alloc(0))], []);
});

function env(): SessionEnv {
  return {
    maxInflight: 20, maxQueued: 100, maxQueuedBytes: 0, maxInflightBytes: 0, queueQos0: false,
    counters: { messagesSent: 0, publishBytesSent: 0, dropped: 0 }, onDrop: () => undefined,
  };
}

function member(router: Router, id: string, filter: string): Session {
  const s = new Session(id, env());
  s.disconnectedAt = 0;
  const e: SubEntry = { session: s, filter, qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 };
  s.subscriptions.set(filter, e);
  router.add(s, e);
  return s;
}

test('the router reports a filter to the bus on its first subscription and its last removal only', () => {
  const router = new Router({ hooks: {}, log: silentLogger(), strategy: 'round_robin', clock: realClock, toMessage: () => { throw new Error('unused'); } });
  const seen: string[] = [];
  router.onFilter = (f, added) => seen.push(`${added ? '+' : '-'}${f}`);
  const a = member(router, 'a', 'x/#');
  const b = member(router, 'b', 'x/#');
  const c = member(router, 'c', '$share/g/x/#');
  router.remove(a, a.subscriptions.get('x/#')!);
  router.remove(b, b.subscriptions.get('x/#')!);
  router.remove(c, c.subscriptions.get('$share/g/x/#')!);
  // the bus counts per session entry: one + and one - per entry, the counting is the bus's
  assert.deepEqual(seen, ['+x/#', '+x/#', '+$share/g/x/#', '-x/#', '-x/#', '-$share/g/x/#']);
});

test('route() skips the shared groups another node delivers, delivers only the chosen ones, and limits sessions when asked', () => {
  const router = new Router({ hooks: {}, log: silentLogger(), strategy: 'round_robin', clock: realClock, toMessage: () => { throw new Error('unused'); } });
  const plain = member(router, 'plain', 's/t');
  const g1 = member(router, 'g1', '$share/one/s/t');
  const g2 = member(router, 'g2', '$share/two/s/t');
  const msg = (): Message => ({ topic: 's/t', payload: Buffer.from('m'), qos: 1, retain: false });
  router.route(msg(), { skip: new Set(['$share/one/s/t']) });
  assert.deepEqual([plain.queue.length, g1.queue.length, g2.queue.length], [1, 0, 1]);
  router.route(msg(), { only: new Set(['$share/one/s/t']) });
  assert.deepEqual([plain.queue.length, g1.queue.length, g2.queue.length], [2, 1, 1]);
  router.route(msg(), { only: new Set() }, new Set([g2]));
  assert.deepEqual([plain.queue.length, g1.queue.length, g2.queue.length], [2, 1, 1]);
  router.route(msg(), undefined, new Set([plain]));
  assert.deepEqual([plain.queue.length, g1.queue.length, g2.queue.length], [3, 2, 2]);
});

test('a session that just moved delivers a message id once (recentIds), and every message when none is set', () => {
  const s = new Session('m', env());
  s.disconnectedAt = 0;
  const m = (id: number): Message => ({ topic: 't', payload: Buffer.from('x'), qos: 1, retain: false, storeId: id });
  s.recentIds = new Set([1]);
  s.deliver(m(1), 1, false, undefined, 0);
  s.deliver(m(2), 1, false, undefined, 0);
  s.deliver(m(2), 1, false, undefined, 0);
  assert.equal(s.queue.length, 1);
  s.recentIds = undefined;
  s.deliver(m(2), 1, false, undefined, 0);
  assert.equal(s.queue.length, 2);
});
