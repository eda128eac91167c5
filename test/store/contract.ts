/**
 * The Store contract: one suite, run against every implementation (memory.test.ts, sqlite.test.ts).
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { Properties } from '../../src/codec/types.js';
import {
  StoreError,
  type Change,
  type Store,
  type StoredMessage,
  type StoredSession,
  type StoredSubscription,
  type StoredWill,
  type Window,
} from '../../src/store/store.js';

export type TestStore = Store & { messageCount(): number | Promise<number> };

export interface StoreFactory {
  name: string;
  /** a fresh, empty store */
  open(): Promise<TestStore>;
  /** closes `store` and opens the same durable state again (persistent stores only) */
  reopen?(store: TestStore): Promise<TestStore>;
  /** called once after the suite */
  cleanup?(): Promise<void>;
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

let nextId = 0;
export function msg(over: Partial<StoredMessage> = {}): StoredMessage {
  return { id: ++nextId, topic: `t/${nextId}`, payload: Buffer.from(`p${nextId}`), qos: 1, retain: false, ...over };
}

export function sub(filter: string, over: Partial<StoredSubscription> = {}): StoredSubscription {
  return { filter, qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, ...over };
}

export function session(clientId: string, over: Partial<StoredSession> = {}): StoredSession {
  return { clientId, protocolVersion: 5, expiryInterval: 3600, ...over };
}

/** Everything a store holds, in load order, for the given clients' windows. */
export async function snapshot(s: Store, clients: string[]): Promise<unknown> {
  const windows: Record<string, Window> = {};
  for (const c of clients) windows[c] = await s.loadWindow(c);
  const sortBy = <T>(xs: T[], key: (x: T) => string): T[] => [...xs].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  return {
    meta: await s.loadMeta(),
    sessions: sortBy(await collect(s.loadSessions()), (x) => x.clientId),
    subs: sortBy(await collect(s.loadSubscriptions()), (x) => `${x.clientId}\0${x.sub.filter}`),
    retained: sortBy(await collect(s.loadRetained()), (x) => x.topic),
    wills: sortBy(await s.loadWills(), (x) => x.clientId),
    windows,
  };
}

const richProps: Properties = {
  payloadFormatIndicator: 1,
  messageExpiryInterval: 120,
  contentType: 'application/json; charset=utf-8',
  responseTopic: 'reply/ü',
  correlationData: Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80]),
  userProperties: [
    ['k', 'v1'],
    ['k', 'v2'],
    ['ключ', '值 ✓'],
    ['', ''],
  ],
  subscriptionIdentifiers: [1, 268435455],
};

export function storeContract(f: StoreFactory): void {
  describe(`Store contract: ${f.name}`, () => {
    const open: TestStore[] = [];
    const fresh = async (): Promise<TestStore> => {
      const s = await f.open();
      open.push(s);
      return s;
    };
    const reopen = async (s: TestStore): Promise<TestStore> => {
      const r = await f.reopen!(s);
      open.push(r);
      return r;
    };
    after(async () => {
      for (const s of open) await s.close();
      await f.cleanup?.();
    });

    test('a new store is empty', async () => {
      const s = await fresh();
      assert.deepEqual(await s.loadMeta(), { lastMessageId: 0, lastSeq: 0 });
      assert.deepEqual(await collect(s.loadSessions()), []);
      assert.deepEqual(await collect(s.loadSubscriptions()), []);
      assert.deepEqual(await collect(s.loadRetained()), []);
      assert.deepEqual(await s.loadWills(), []);
      assert.equal(await s.loadSession('nobody'), undefined);
      assert.deepEqual(await s.loadWindow('nobody'), { inflight: [], queued: [], incomingQos2: [] });
      assert.equal((await s.messageCount()), 0);
      await s.commit([]);
    });

    test('sessions: upsert replaces every field, loadSession and loadSessions', async () => {
      const s = await fresh();
      const a = session('a', { username: 'alice', listenerPort: 1883, disconnectedAt: 1_700_000_000_123, protocolVersion: 4 });
      await s.commit([{ op: 'session', session: a }, { op: 'session', session: session('b', { expiryInterval: 0xffffffff }) }]);
      assert.deepEqual(await s.loadSession('a'), a);
      assert.deepEqual(await s.loadSession('b'), session('b', { expiryInterval: 0xffffffff }));
      // upsert without the optional fields: they are gone
      await s.commit([{ op: 'session', session: session('a', { protocolVersion: 3 }) }]);
      assert.deepEqual(await s.loadSession('a'), session('a', { protocolVersion: 3 }));
      const all = (await collect(s.loadSessions())).sort((x, y) => x.clientId.localeCompare(y.clientId));
      assert.deepEqual(all, [session('a', { protocolVersion: 3 }), session('b', { expiryInterval: 0xffffffff })]);
    });

    test('an empty client id is a session like any other', async () => {
      const s = await fresh();
      await s.commit([{ op: 'session', session: session('') }, { op: 'sub', clientId: '', sub: sub('x/#') }]);
      assert.deepEqual(await collect(s.loadSessions()), [session('')]);
      assert.deepEqual(await collect(s.loadSubscriptions()), [{ clientId: '', sub: sub('x/#') }]);
    });

    test('subscriptions: upsert by (client, filter), unsub removes one', async () => {
      const s = await fresh();
      await s.commit([
        { op: 'session', session: session('a') },
        { op: 'sub', clientId: 'a', sub: sub('x/+') },
        { op: 'sub', clientId: 'a', sub: sub('y/#', { qos: 2, subscriptionId: 7 }) },
        { op: 'sub', clientId: 'b', sub: sub('x/+', { qos: 0 }) },
      ]);
      const full = sub('x/+', { qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 2, subscriptionId: 268435455 });
      await s.commit([{ op: 'sub', clientId: 'a', sub: full }]);
      const key = (x: { clientId: string; sub: StoredSubscription }): string => `${x.clientId} ${x.sub.filter}`;
      let subs = (await collect(s.loadSubscriptions())).sort((x, y) => key(x).localeCompare(key(y)));
      assert.deepEqual(subs, [
        { clientId: 'a', sub: full },
        { clientId: 'a', sub: sub('y/#', { qos: 2, subscriptionId: 7 }) },
        { clientId: 'b', sub: sub('x/+', { qos: 0 }) },
      ]);
      // upsert back to no subscription id: the id is gone
      await s.commit([{ op: 'sub', clientId: 'a', sub: sub('y/#') }, { op: 'unsub', clientId: 'a', filter: 'x/+' }, { op: 'unsub', clientId: 'a', filter: 'never' }]);
      subs = (await collect(s.loadSubscriptions())).sort((x, y) => key(x).localeCompare(key(y)));
      assert.deepEqual(subs, [
        { clientId: 'a', sub: sub('y/#') },
        { clientId: 'b', sub: sub('x/+', { qos: 0 }) },
      ]);
    });

    test('the queue loads in seq order, whatever the commit order; dequeue removes one entry', async () => {
      const s = await fresh();
      const ms = [msg(), msg(), msg(), msg()];
      await s.commit([
        { op: 'message', msg: ms[0]! },
        { op: 'message', msg: ms[1]! },
        { op: 'enqueue', clientId: 'c', ref: { seq: 20, messageId: ms[0]!.id, qos: 1, retain: false } },
        { op: 'enqueue', clientId: 'c', ref: { seq: 3, messageId: ms[1]!.id, qos: 2, retain: true, subIds: [4, 5] } },
      ]);
      await s.commit([
        { op: 'message', msg: ms[2]! },
        { op: 'message', msg: ms[3]! },
        { op: 'enqueue', clientId: 'c', ref: { seq: 11, messageId: ms[2]!.id, qos: 0, retain: false, subIds: [] } },
        { op: 'enqueue', clientId: 'c', ref: { seq: 30, messageId: ms[3]!.id, qos: 1, retain: false } },
        { op: 'enqueue', clientId: 'other', ref: { seq: 31, messageId: ms[3]!.id, qos: 1, retain: false } },
      ]);
      let w = await s.loadWindow('c');
      assert.deepEqual(w.queued.map((q) => q.seq), [3, 11, 20, 30]);
      assert.deepEqual(w.queued[0], { seq: 3, messageId: ms[1]!.id, qos: 2, retain: true, subIds: [4, 5], message: ms[1] });
      assert.deepEqual(w.queued[1], { seq: 11, messageId: ms[2]!.id, qos: 0, retain: false, subIds: [], message: ms[2] });
      assert.deepEqual(w.queued[2], { seq: 20, messageId: ms[0]!.id, qos: 1, retain: false, message: ms[0] });
      await s.commit([{ op: 'dequeue', clientId: 'c', seq: 11 }, { op: 'dequeue', clientId: 'c', seq: 999 }]);
      w = await s.loadWindow('c');
      assert.deepEqual(w.queued.map((q) => q.seq), [3, 20, 30]);
      assert.deepEqual((await s.loadWindow('other')).queued.map((q) => q.seq), [31]);
      assert.equal((await s.messageCount()), 3, 'the dequeued message had no other reference');
    });

    test('in-flight loads in send order; an upsert keeps its place, a re-insert goes last', async () => {
      const s = await fresh();
      const ms = [msg({ qos: 2 }), msg({ qos: 1 }), msg({ qos: 2 }), msg({ qos: 1 })];
      const ch: Change[] = ms.map((m) => ({ op: 'message', msg: m }));
      await s.commit([
        ...ch,
        { op: 'inflight', clientId: 'c', ref: { packetId: 10, messageId: ms[0]!.id, qos: 2, retain: false, state: 'publish' } },
        { op: 'inflight', clientId: 'c', ref: { packetId: 3, messageId: ms[1]!.id, qos: 1, retain: true, subIds: [9], state: 'publish' } },
        { op: 'inflight', clientId: 'c', ref: { packetId: 7, messageId: ms[2]!.id, qos: 2, retain: false, state: 'publish' } },
        { op: 'enqueue', clientId: 'c', ref: { seq: 1, messageId: ms[3]!.id, qos: 1, retain: false } },
      ]);
      assert.deepEqual((await s.loadWindow('c')).inflight.map((i) => i.packetId), [10, 3, 7]);
      // PUBREC for 7: state pubrel, same place
      await s.commit([{ op: 'inflight', clientId: 'c', ref: { packetId: 7, messageId: ms[2]!.id, qos: 2, retain: false, state: 'pubrel' } }]);
      let w = await s.loadWindow('c');
      assert.deepEqual(w.inflight.map((i) => [i.packetId, i.state]), [[10, 'publish'], [3, 'publish'], [7, 'pubrel']]);
      assert.deepEqual(w.inflight[1], { packetId: 3, messageId: ms[1]!.id, qos: 1, retain: true, subIds: [9], state: 'publish', message: ms[1] });
      await s.commit([{ op: 'inflight', clientId: 'c', ref: { packetId: 10, messageId: ms[0]!.id, qos: 2, retain: false, state: 'pubrel' } }]);
      // PUBACK for 3, then 3 reused for the queued message (moved from the queue in the same turn)
      await s.commit([
        { op: 'inflightDone', clientId: 'c', packetId: 3 },
        { op: 'dequeue', clientId: 'c', seq: 1 },
        { op: 'inflight', clientId: 'c', ref: { packetId: 3, messageId: ms[3]!.id, qos: 1, retain: false, state: 'publish' } },
      ]);
      w = await s.loadWindow('c');
      assert.deepEqual(w.inflight.map((i) => [i.packetId, i.state, i.messageId]), [
        [10, 'pubrel', ms[0]!.id],
        [7, 'pubrel', ms[2]!.id],
        [3, 'publish', ms[3]!.id],
      ]);
      assert.deepEqual(w.queued, []);
      assert.equal((await s.messageCount()), 3, 'the PUBACKed message is freed, the moved one is kept');
      // an upsert that changes the message moves the reference
      await s.commit([{ op: 'inflight', clientId: 'c', ref: { packetId: 7, messageId: ms[3]!.id, qos: 1, retain: false, state: 'publish' } }]);
      w = await s.loadWindow('c');
      assert.deepEqual(w.inflight.map((i) => [i.packetId, i.messageId]), [[10, ms[0]!.id], [7, ms[3]!.id], [3, ms[3]!.id]]);
      assert.equal((await s.messageCount()), 2);
      await s.commit([{ op: 'inflightDone', clientId: 'c', packetId: 7 }, { op: 'inflightDone', clientId: 'c', packetId: 999 }]);
      assert.equal((await s.messageCount()), 2, 'still referenced by packet 3');
      await s.commit([{ op: 'inflightDone', clientId: 'c', packetId: 3 }, { op: 'inflightDone', clientId: 'c', packetId: 10 }]);
      assert.equal((await s.messageCount()), 0);
      assert.deepEqual(await s.loadWindow('c'), { inflight: [], queued: [], incomingQos2: [] });
    });

    test('incoming QoS 2 ids: add (idempotent), done, ascending', async () => {
      const s = await fresh();
      await s.commit([
        { op: 'qos2', clientId: 'c', packetId: 500 },
        { op: 'qos2', clientId: 'c', packetId: 2 },
        { op: 'qos2', clientId: 'c', packetId: 2 },
        { op: 'qos2', clientId: 'd', packetId: 9 },
      ]);
      assert.deepEqual((await s.loadWindow('c')).incomingQos2, [2, 500]);
      await s.commit([{ op: 'qos2Done', clientId: 'c', packetId: 2 }, { op: 'qos2Done', clientId: 'c', packetId: 77 }]);
      assert.deepEqual((await s.loadWindow('c')).incomingQos2, [500]);
      assert.deepEqual((await s.loadWindow('d')).incomingQos2, [9]);
    });

    test('a message queued for three clients is stored once and freed with its last reference', async () => {
      const s = await fresh();
      const m = msg({ payload: Buffer.alloc(1000, 1) });
      await s.commit([
        { op: 'message', msg: m },
        { op: 'enqueue', clientId: 'a', ref: { seq: 1, messageId: m.id, qos: 1, retain: false } },
        { op: 'enqueue', clientId: 'b', ref: { seq: 2, messageId: m.id, qos: 1, retain: false } },
        { op: 'enqueue', clientId: 'c', ref: { seq: 3, messageId: m.id, qos: 2, retain: false } },
      ]);
      assert.equal((await s.messageCount()), 1);
      for (const c of ['a', 'b', 'c']) assert.deepEqual((await s.loadWindow(c)).queued[0]?.message, m);
      await s.commit([{ op: 'dequeue', clientId: 'a', seq: 1 }]);
      assert.equal((await s.messageCount()), 1);
      // b's delivery moves to in-flight
      await s.commit([
        { op: 'dequeue', clientId: 'b', seq: 2 },
        { op: 'inflight', clientId: 'b', ref: { packetId: 1, messageId: m.id, qos: 1, retain: false, state: 'publish' } },
      ]);
      await s.commit([{ op: 'dequeue', clientId: 'c', seq: 3 }]);
      assert.equal((await s.messageCount()), 1, 'b still holds it in flight');
      assert.deepEqual((await s.loadWindow('b')).inflight[0]?.message, m);
      await s.commit([{ op: 'inflightDone', clientId: 'b', packetId: 1 }]);
      assert.equal((await s.messageCount()), 0);
    });

    test('reference counts of many stored messages change in one commit', async () => {
      const s = await fresh();
      const ms = Array.from({ length: 20 }, () => msg());
      const first: Change[] = [];
      for (const [i, m] of ms.entries()) {
        first.push({ op: 'message', msg: m });
        first.push({ op: 'enqueue', clientId: 'a', ref: { seq: 100 + i, messageId: m.id, qos: 1, retain: false } });
        first.push({ op: 'enqueue', clientId: 'b', ref: { seq: 200 + i, messageId: m.id, qos: 1, retain: false } });
      }
      await s.commit(first);
      // a's queue moves to in-flight (nets to zero), b's first ten are dequeued (each still held by a)
      const second: Change[] = [];
      for (const [i, m] of ms.entries()) {
        second.push({ op: 'dequeue', clientId: 'a', seq: 100 + i });
        second.push({ op: 'inflight', clientId: 'a', ref: { packetId: i + 1, messageId: m.id, qos: 1, retain: false, state: 'publish' } });
        if (i < 10) second.push({ op: 'dequeue', clientId: 'b', seq: 200 + i });
      }
      await s.commit(second);
      assert.equal((await s.messageCount()), 20);
      // ten more references and one to a message that is not stored: nothing happens
      const bad: Change[] = ms.slice(0, 10).map((m, i) => ({ op: 'enqueue', clientId: 'c', ref: { seq: 300 + i, messageId: m.id, qos: 1, retain: false } }));
      bad.push({ op: 'enqueue', clientId: 'c', ref: { seq: 400, messageId: 888_888, qos: 1, retain: false } });
      const before = await snapshot(s, ['a', 'b', 'c']);
      await assert.rejects(s.commit(bad), (err: unknown) => err instanceof StoreError && /888888/.test(err.message));
      assert.deepEqual(await snapshot(s, ['a', 'b', 'c']), before);
      // a's in-flight all acknowledged: the first ten are freed, the last ten are still queued for b
      await s.commit(ms.map((_, i) => ({ op: 'inflightDone', clientId: 'a', packetId: i + 1 })));
      assert.equal((await s.messageCount()), 10);
      assert.deepEqual((await s.loadWindow('b')).queued.map((q) => q.messageId), ms.slice(10).map((m) => m.id));
      await s.commit([{ op: 'dropSession', clientId: 'b' }]);
      assert.equal((await s.messageCount()), 0);
    });

    test('a message recorded again (later commits, or twice in one) keeps its first stored copy and its count', async () => {
      const s = await fresh();
      const m = msg({ payload: Buffer.from('original') });
      const again = { ...m, payload: Buffer.from('a later copy'), topic: 'other' };
      await s.commit([
        { op: 'message', msg: m },
        { op: 'enqueue', clientId: 'a', ref: { seq: 1, messageId: m.id, qos: 1, retain: false } },
        { op: 'message', msg: again },
        { op: 'enqueue', clientId: 'b', ref: { seq: 2, messageId: m.id, qos: 1, retain: false } },
      ]);
      await s.commit([{ op: 'message', msg: again }, { op: 'enqueue', clientId: 'c', ref: { seq: 3, messageId: m.id, qos: 1, retain: false } }]);
      assert.equal((await s.messageCount()), 1);
      for (const c of ['a', 'b', 'c']) assert.deepEqual((await s.loadWindow(c)).queued[0]?.message, m, c);
      // recorded again with a move (net zero) and with a removal (net -1): still counted right
      await s.commit([
        { op: 'message', msg: again },
        { op: 'dequeue', clientId: 'a', seq: 1 },
        { op: 'inflight', clientId: 'a', ref: { packetId: 1, messageId: m.id, qos: 1, retain: false, state: 'publish' } },
      ]);
      await s.commit([{ op: 'message', msg: again }, { op: 'dequeue', clientId: 'b', seq: 2 }]);
      assert.deepEqual((await s.loadWindow('a')).inflight[0]?.message, m);
      await s.commit([{ op: 'dequeue', clientId: 'c', seq: 3 }]);
      assert.equal((await s.messageCount()), 1, 'still in flight for a');
      await s.commit([{ op: 'message', msg: again }, { op: 'inflightDone', clientId: 'a', packetId: 1 }]);
      assert.equal((await s.messageCount()), 0);
    });

    test('a message left without any reference at the end of its commit is not kept', async () => {
      const s = await fresh();
      const m = msg();
      await s.commit([{ op: 'message', msg: m }]);
      assert.equal((await s.messageCount()), 0);
      const m2 = msg();
      await s.commit([
        { op: 'message', msg: m2 },
        { op: 'enqueue', clientId: 'a', ref: { seq: 1, messageId: m2.id, qos: 1, retain: false } },
        { op: 'dequeue', clientId: 'a', seq: 1 },
      ]);
      assert.equal((await s.messageCount()), 0);
      assert.deepEqual(await s.loadMeta(), { lastMessageId: m2.id, lastSeq: 1 }, 'the meta still counts them');
    });

    test('retained: set, replace frees the old message, unretain frees, a queued reference keeps it', async () => {
      const s = await fresh();
      const m1 = msg({ topic: 'r/1', retain: true });
      const m2 = msg({ topic: 'r/1', retain: true, payload: Buffer.from('second') });
      const m3 = msg({ topic: 'r/2', retain: true });
      await s.commit([
        { op: 'message', msg: m1 },
        { op: 'retain', topic: 'r/1', messageId: m1.id },
        { op: 'message', msg: m3 },
        { op: 'retain', topic: 'r/2', messageId: m3.id },
        { op: 'enqueue', clientId: 'q', ref: { seq: 1, messageId: m3.id, qos: 1, retain: true } },
      ]);
      assert.equal((await s.messageCount()), 2);
      await s.commit([{ op: 'message', msg: m2 }, { op: 'retain', topic: 'r/1', messageId: m2.id }]);
      assert.equal((await s.messageCount()), 2, 'm1 freed, m2 stored');
      const byTopic = async (): Promise<Array<[string, StoredMessage]>> =>
        (await collect(s.loadRetained())).map((r): [string, StoredMessage] => [r.topic, r.message]).sort((a, b) => a[0].localeCompare(b[0]));
      assert.deepEqual(await byTopic(), [['r/1', m2], ['r/2', m3]]);
      await s.commit([{ op: 'unretain', topic: 'r/2' }, { op: 'unretain', topic: 'never' }]);
      assert.deepEqual(await byTopic(), [['r/1', m2]]);
      assert.equal((await s.messageCount()), 2, 'm3 is still queued');
      await s.commit([{ op: 'dequeue', clientId: 'q', seq: 1 }]);
      assert.equal((await s.messageCount()), 1);
      // setting the same message again does not free it
      await s.commit([{ op: 'retain', topic: 'r/1', messageId: m2.id }]);
      assert.equal((await s.messageCount()), 1);
      await s.commit([{ op: 'unretain', topic: 'r/1' }]);
      assert.equal((await s.messageCount()), 0);
      assert.deepEqual(await byTopic(), []);
    });

    test('dropSession removes the session, its subscriptions, queue, in-flight and QoS 2 ids, not its will', async () => {
      const s = await fresh();
      const shared = msg();
      const own = msg();
      const will: StoredWill = { clientId: 'a', will: { topic: 'w', payload: Buffer.from('bye'), qos: 1, retain: false }, fireAt: 5000 };
      await s.commit([
        { op: 'session', session: session('a') },
        { op: 'session', session: session('b') },
        { op: 'sub', clientId: 'a', sub: sub('x') },
        { op: 'sub', clientId: 'b', sub: sub('x') },
        { op: 'message', msg: shared },
        { op: 'message', msg: own },
        { op: 'enqueue', clientId: 'a', ref: { seq: 1, messageId: shared.id, qos: 1, retain: false } },
        { op: 'enqueue', clientId: 'b', ref: { seq: 2, messageId: shared.id, qos: 1, retain: false } },
        { op: 'inflight', clientId: 'a', ref: { packetId: 1, messageId: own.id, qos: 1, retain: false, state: 'publish' } },
        { op: 'qos2', clientId: 'a', packetId: 4 },
        { op: 'qos2', clientId: 'b', packetId: 4 },
        { op: 'will', will },
      ]);
      await s.commit([{ op: 'dropSession', clientId: 'a' }, { op: 'dropSession', clientId: 'nobody' }]);
      assert.equal(await s.loadSession('a'), undefined);
      assert.deepEqual(await s.loadWindow('a'), { inflight: [], queued: [], incomingQos2: [] });
      assert.deepEqual(await collect(s.loadSubscriptions()), [{ clientId: 'b', sub: sub('x') }]);
      assert.deepEqual(await collect(s.loadSessions()), [session('b')]);
      assert.deepEqual(await s.loadWills(), [will]);
      const wb = await s.loadWindow('b');
      assert.deepEqual(wb.queued.map((q) => q.message), [shared]);
      assert.deepEqual(wb.incomingQos2, [4]);
      assert.equal((await s.messageCount()), 1, 'own freed, shared kept for b');
      // the same client can start again
      await s.commit([{ op: 'session', session: session('a', { protocolVersion: 4 }) }]);
      assert.deepEqual(await s.loadSession('a'), session('a', { protocolVersion: 4 }));
    });

    test('wills: upsert by client, willDone', async () => {
      const s = await fresh();
      const w1: StoredWill = {
        clientId: 'a',
        will: { topic: 'w/a', payload: Buffer.from([0, 255]), qos: 2, retain: true, properties: { ...richProps, willDelayInterval: 30 } },
        fireAt: 1_700_000_030_000,
        username: 'alice',
        listenerPort: 8883,
      };
      const w2: StoredWill = { clientId: 'b', will: { topic: 'w/b', payload: Buffer.alloc(0), qos: 0, retain: false }, fireAt: 1 };
      await s.commit([{ op: 'will', will: w1 }, { op: 'will', will: w2 }]);
      const sorted = async (): Promise<StoredWill[]> => (await s.loadWills()).sort((x, y) => x.clientId.localeCompare(y.clientId));
      assert.deepEqual(await sorted(), [w1, w2]);
      const w1b: StoredWill = { clientId: 'a', will: { topic: 'w/a2', payload: Buffer.from('x'), qos: 1, retain: false }, fireAt: 7 };
      await s.commit([{ op: 'will', will: w1b }, { op: 'willDone', clientId: 'b' }, { op: 'willDone', clientId: 'nobody' }]);
      assert.deepEqual(await sorted(), [w1b]);
      assert.equal((await s.messageCount()), 0, 'wills are not messages');
    });

    test('loadMeta: the highest message id and seq ever stored, even after they are freed', async () => {
      const s = await fresh();
      const a = msg({ id: 1000 });
      const b = msg({ id: 50 });
      await s.commit([
        { op: 'message', msg: a },
        { op: 'message', msg: b },
        { op: 'enqueue', clientId: 'c', ref: { seq: 77, messageId: a.id, qos: 1, retain: false } },
        { op: 'enqueue', clientId: 'c', ref: { seq: 9, messageId: b.id, qos: 1, retain: false } },
      ]);
      assert.deepEqual(await s.loadMeta(), { lastMessageId: 1000, lastSeq: 77 });
      await s.commit([{ op: 'dropSession', clientId: 'c' }]);
      assert.equal((await s.messageCount()), 0);
      assert.deepEqual(await s.loadMeta(), { lastMessageId: 1000, lastSeq: 77 });
      const c = msg({ id: 1001 });
      await s.commit([{ op: 'message', msg: c }, { op: 'retain', topic: 'x', messageId: c.id }]);
      assert.deepEqual(await s.loadMeta(), { lastMessageId: 1001, lastSeq: 77 });
    });

    test('payloads, properties, expiresAt and origin round-trip exactly', async () => {
      const s = await fresh();
      const all = Buffer.alloc(256);
      for (let i = 0; i < 256; i++) all[i] = i;
      const m1 = msg({ payload: all, properties: richProps, expiresAt: 1_700_000_000_999, origin: 'node-2', qos: 2, retain: true });
      const m2 = msg({ payload: Buffer.alloc(0), properties: { userProperties: [] } });
      const m3 = msg({ payload: Buffer.alloc(300_000, 0xab), properties: { contentType: '' } });
      await s.commit([
        { op: 'message', msg: m1 },
        { op: 'message', msg: m2 },
        { op: 'message', msg: m3 },
        { op: 'retain', topic: 'rich', messageId: m1.id },
        { op: 'enqueue', clientId: 'c', ref: { seq: 1, messageId: m2.id, qos: 1, retain: false } },
        { op: 'inflight', clientId: 'c', ref: { packetId: 1, messageId: m3.id, qos: 1, retain: false, state: 'publish' } },
      ]);
      const [r] = await collect(s.loadRetained());
      assert.deepEqual(r, { topic: 'rich', message: m1 });
      assert.ok(Buffer.isBuffer(r!.message.payload) && Buffer.isBuffer(r!.message.properties?.correlationData));
      assert.deepEqual(r!.message.properties?.correlationData, Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80]));
      const w = await s.loadWindow('c');
      assert.deepEqual(w.queued[0]?.message, m2);
      assert.deepEqual(w.inflight[0]?.message, m3);
    });

    test('what is committed and what is loaded are copies', async () => {
      const s = await fresh();
      const m = msg({ properties: { userProperties: [['a', 'b']], correlationData: Buffer.from('cd') } });
      const before = structuredCloneMessage(m);
      const will: StoredWill = { clientId: 'w', will: { topic: 'w', payload: Buffer.from('will'), qos: 0, retain: false }, fireAt: 1 };
      const ref = { seq: 1, messageId: m.id, qos: 1 as const, retain: false, subIds: [1] };
      await s.commit([{ op: 'message', msg: m }, { op: 'retain', topic: 't', messageId: m.id }, { op: 'will', will }, { op: 'enqueue', clientId: 'c', ref }]);
      m.payload[0] = 0x58;
      m.properties!.userProperties![0]![1] = 'changed';
      m.properties!.correlationData![0] = 0;
      will.will.payload[0] = 0;
      ref.subIds.push(2);
      const [r] = await collect(s.loadRetained());
      assert.deepEqual(r!.message, before);
      r!.message.payload[0] = 0;
      r!.message.properties!.userProperties!.push(['x', 'y']);
      const [r2] = await collect(s.loadRetained());
      assert.deepEqual(r2!.message, before);
      assert.deepEqual((await s.loadWills())[0]!.will.payload, Buffer.from('will'));
      assert.deepEqual((await s.loadWindow('c')).queued[0]!.subIds, [1]);
    });

    test('a commit is all or nothing: a reference to a message that is not stored rejects with StoreError', async () => {
      const s = await fresh();
      const m = msg();
      await s.commit([{ op: 'session', session: session('a') }, { op: 'message', msg: m }, { op: 'retain', topic: 'keep', messageId: m.id }]);
      const before = await snapshot(s, ['a']);
      const m2 = msg();
      await assert.rejects(
        s.commit([
          { op: 'session', session: session('a', { username: 'changed' }) },
          { op: 'message', msg: m2 },
          { op: 'enqueue', clientId: 'a', ref: { seq: 5, messageId: m2.id, qos: 1, retain: false } },
          { op: 'unretain', topic: 'keep' },
          { op: 'will', will: { clientId: 'a', will: { topic: 'w', payload: Buffer.alloc(0), qos: 0, retain: false }, fireAt: 0 } },
          { op: 'enqueue', clientId: 'a', ref: { seq: 6, messageId: 999_999, qos: 1, retain: false } },
        ]),
        (err: unknown) => err instanceof StoreError && /999999/.test(err.message),
      );
      assert.deepEqual(await snapshot(s, ['a']), before);
      assert.equal((await s.messageCount()), 1);
      // and the store still works
      await s.commit([{ op: 'message', msg: m2 }, { op: 'enqueue', clientId: 'a', ref: { seq: 5, messageId: m2.id, qos: 1, retain: false } }]);
      assert.equal((await s.loadWindow('a')).queued.length, 1);
    });

    test('loads page through large tables (2500 sessions, subscriptions, retained)', async () => {
      const s = await fresh();
      const ch: Change[] = [];
      for (let i = 0; i < 2500; i++) {
        const id = `c${String(i).padStart(5, '0')}`;
        ch.push({ op: 'session', session: session(id) }, { op: 'sub', clientId: id, sub: sub(`f/${i}`) });
        const m = msg({ topic: `r/${i}`, retain: true });
        ch.push({ op: 'message', msg: m }, { op: 'retain', topic: m.topic, messageId: m.id });
      }
      await s.commit(ch);
      const sessions = await collect(s.loadSessions());
      assert.equal(sessions.length, 2500);
      assert.equal(new Set(sessions.map((x) => x.clientId)).size, 2500);
      const subs = await collect(s.loadSubscriptions());
      assert.equal(new Set(subs.map((x) => `${x.clientId} ${x.sub.filter}`)).size, 2500);
      const ret = await collect(s.loadRetained());
      assert.equal(new Set(ret.map((x) => x.topic)).size, 2500);
      assert.ok(ret.every((x) => x.message.topic === x.topic));
    });

    test('a closed store refuses commits', async () => {
      const s = await fresh();
      await s.close();
      await assert.rejects(s.commit([{ op: 'session', session: session('a') }]), StoreError);
    });

    if (f.reopen !== undefined) {
      test('everything survives close and reopen', async () => {
        let s = await fresh();
        const m1 = msg({ properties: richProps, expiresAt: 123_456, origin: 'o' });
        const m2 = msg({ qos: 2 });
        const m3 = msg({ retain: true });
        await s.commit([
          { op: 'session', session: session('a', { username: 'u', listenerPort: 1, disconnectedAt: 99 }) },
          { op: 'session', session: session('b', { protocolVersion: 4 }) },
          { op: 'sub', clientId: 'a', sub: sub('x/#', { subscriptionId: 3, noLocal: true }) },
          { op: 'sub', clientId: 'b', sub: sub('y') },
          { op: 'message', msg: m1 },
          { op: 'message', msg: m2 },
          { op: 'message', msg: m3 },
          { op: 'enqueue', clientId: 'a', ref: { seq: 2, messageId: m1.id, qos: 1, retain: false, subIds: [3] } },
          { op: 'enqueue', clientId: 'a', ref: { seq: 1, messageId: m2.id, qos: 2, retain: false } },
          { op: 'inflight', clientId: 'b', ref: { packetId: 9, messageId: m2.id, qos: 2, retain: false, state: 'publish' } },
          { op: 'inflight', clientId: 'b', ref: { packetId: 2, messageId: m1.id, qos: 1, retain: false, state: 'publish' } },
          { op: 'qos2', clientId: 'a', packetId: 17 },
          { op: 'retain', topic: 'r', messageId: m3.id },
          { op: 'will', will: { clientId: 'a', will: { topic: 'w', payload: Buffer.from('w'), qos: 1, retain: true, properties: richProps }, fireAt: 42, username: 'u' } },
        ]);
        await s.commit([{ op: 'inflight', clientId: 'b', ref: { packetId: 9, messageId: m2.id, qos: 2, retain: false, state: 'pubrel' } }]);
        const before = await snapshot(s, ['a', 'b']);
        s = await reopen(s);
        assert.deepEqual(await snapshot(s, ['a', 'b']), before);
        assert.equal((await s.messageCount()), 3);
        // and it goes on working: order and reference counts continue
        const m4 = msg();
        await s.commit([
          { op: 'message', msg: m4 },
          { op: 'inflight', clientId: 'b', ref: { packetId: 1, messageId: m4.id, qos: 1, retain: false, state: 'publish' } },
          { op: 'inflightDone', clientId: 'b', packetId: 2 },
          { op: 'dequeue', clientId: 'a', seq: 2 },
        ]);
        assert.equal((await s.messageCount()), 3, 'm1 freed after reopen, m4 stored');
        assert.deepEqual((await s.loadWindow('b')).inflight.map((i) => i.packetId), [9, 1]);
        s = await reopen(s);
        assert.deepEqual((await s.loadWindow('b')).inflight.map((i) => i.packetId), [9, 1]);
        assert.deepEqual(await s.loadMeta(), { lastMessageId: m4.id, lastSeq: 2 });
      });
    }
  });
}

function structuredCloneMessage(m: StoredMessage): StoredMessage {
  return {
    ...m,
    payload: Buffer.from(m.payload),
    properties: {
      ...m.properties,
      userProperties: m.properties?.userProperties?.map(([k, v]): [string, string] => [k, v]),
      correlationData: Buffer.from(m.properties!.correlationData!),
    },
  };
}
