/**
 * The SQLite store: the contract suite (including reopen), then what only a file can do wrong.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite.js';
import { openSqliteThreadStore, type SqliteThreadStore } from '../../src/store/sqlite-thread.js';
import { storeContract } from './contract.js';
import { decodeChanges, decodeRetained, digestChanges, encodeChanges, encodeCommit, encodeRetainedRows, JournalError, readCommit } from '../../src/store/journal.js';
import { PendingSets } from '../../src/store/sqlite-pending.js';
import { compact, Compactor, IdTable } from '../../src/store/compact.js';
import { HEX_PAYLOAD_MAX } from '../../src/store/sqlite-rows.js';
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { Change, Store, StoredMessage } from '../../src/store/store.js';

const dir = await mkdtemp(join(tmpdir(), 'midge-store-'));
let n = 0;
after(() => rm(dir, { recursive: true, force: true }));

storeContract({
  name: 'sqlite',
  open: () => openSqliteStore({ file: join(dir, `contract-${++n}.db`) }),
  reopen: async (s) => {
    const file = (s as SqliteStore).file;
    await s.close();
    return openSqliteStore({ file });
  },
});

// every commit applied to the tables at once (what 'auto' does while folds cancel little out)
storeContract({
  name: 'sqlite, direct commits',
  open: () => openSqliteStore({ file: join(dir, `direct-${++n}.db`), mode: 'direct' }),
  reopen: async (s) => {
    const file = (s as SqliteStore).file;
    await s.close();
    return openSqliteStore({ file, mode: 'direct' });
  },
});

// the same store on its worker thread, as the broker runs it
storeContract({
  name: 'sqlite on a worker thread',
  open: () => openSqliteThreadStore({ file: join(dir, `thread-${++n}.db`) }),
  reopen: async (s) => {
    const file = (s as SqliteThreadStore).file;
    await s.close();
    return openSqliteThreadStore({ file });
  },
});

describe('sqlite store: dequeues of consecutive seqs folded as one range', () => {
  for (const mode of ['direct', 'journal'] as const) {
    test(`${mode}: runs, single dequeues, another queue between, a seq that is not there; what is left, which messages go, the counts of those that stay`, async () => {
      const f = join(dir, `ranges-${++n}.db`);
      let s = await openSqliteStore({ file: f, mode });
      const msg = (id: number): Change => ({ op: 'message', msg: { id, topic: `t/${id}`, payload: Buffer.from([id]), qos: 1, retain: false } });
      const enq = (clientId: string, seq: number, messageId: number): Change => ({ op: 'enqueue', clientId, ref: { seq, messageId, qos: 1, retain: false, subIds: undefined } });
      const deq = (clientId: string, seq: number): Change => ({ op: 'dequeue', clientId, seq });
      const setup: Change[] = [
        { op: 'session', session: { clientId: 'c', protocolVersion: 4, expiryInterval: 600 } },
        { op: 'session', session: { clientId: 'd', protocolVersion: 4, expiryInterval: 600 } },
      ];
      for (let i = 1; i <= 20; i++) setup.push(msg(i), enq('c', i, i));
      setup.push(msg(21), enq('d', 1, 21), msg(22), enq('d', 2, 22));
      // 5 and 9 are retained too: two references each
      setup.push({ op: 'retain', topic: 't/5', messageId: 5 }, { op: 'retain', topic: 't/9', messageId: 9 });
      await s.commit(setup);
      // (the journal's fold applies the queue first: folded with them, the dequeues would cancel it)
      await s.close();
      s = await openSqliteStore({ file: f, mode });
      // c 1-12 (one statement, and messages 1-12 losing a reference by range), d 1, c 14, c 16-17
      // (a short run), c 13, c 20-21 (a run whose second seq is not queued)
      const deqs: Change[] = [];
      for (let i = 1; i <= 12; i++) deqs.push(deq('c', i));
      deqs.push(deq('d', 1), deq('c', 14), deq('c', 16), deq('c', 17), deq('c', 13), deq('c', 20), deq('c', 21));
      await s.commit(deqs);
      await s.close();
      const again = await openSqliteStore({ file: f });
      try {
        assert.deepEqual((await again.loadWindow('c')).queued.map((q) => [q.seq, q.messageId]), [[15, 15], [18, 18], [19, 19]]);
        assert.deepEqual((await again.loadWindow('d')).queued.map((q) => [q.seq, q.messageId]), [[2, 22]]);
        // 15, 18, 19 and 22 queued, 5 and 9 retained: the others went with their last reference
        assert.equal(again.messageCount(), 6);
        const retained: Array<[string, number]> = [];
        for await (const r of again.loadRetained()) retained.push([r.topic, r.message.payload[0]!]);
        assert.deepEqual(retained.sort(), [['t/5', 5], ['t/9', 9]]);
        // each kept one reference: cleared, they go
        await again.commit([{ op: 'unretain', topic: 't/5' }, { op: 'unretain', topic: 't/9' }]);
        assert.equal(again.messageCount(), 4);
      } finally {
        await again.close();
      }
    });
  }
});

describe('sqlite store: auto mode', () => {
  test('commits go to the journal while folds cancel most of them, straight to the tables while they do not', async () => {
    const s = await openSqliteStore({ file: join(dir, `auto-${++n}.db`), foldChanges: 2000 });
    const payload = Buffer.alloc(16, 1);
    let id = 0;
    // a persistent subscriber that keeps up: each message sent and acknowledged a commit later
    let open: number[] = [];
    // (enough for the journal's bound, 4 × foldChanges changes, cancelled or not, to fold it)
    for (let c = 0; c < 120; c++) {
      const set: Change[] = open.map((p) => ({ op: 'inflightDone', clientId: 'on', packetId: p }));
      open = [];
      for (let i = 0; i < 50; i++) {
        id++;
        set.push({ op: 'message', msg: { id, topic: 't', payload, qos: 1, retain: false } });
        set.push({ op: 'inflight', clientId: 'on', ref: { packetId: id, messageId: id, qos: 1, retain: false, state: 'publish' } });
        open.push(id);
      }
      await s.commit(set);
    }
    assert.ok(s.folds.count >= 1, 'folded');
    assert.equal(s.folds.direct, 0, 'folds cancelled most: still the journal');
    assert.ok(s.folds.written < s.folds.changes / 4, `written ${s.folds.written} of ${s.folds.changes}`);
    // an offline queue: nothing cancels
    for (let c = 0; c < 60; c++) {
      const set: Change[] = [];
      for (let i = 0; i < 50; i++) {
        id++;
        set.push({ op: 'message', msg: { id, topic: 't', payload, qos: 1, retain: false } });
        set.push({ op: 'enqueue', clientId: 'off', ref: { seq: id, messageId: id, qos: 1, retain: false } });
      }
      await s.commit(set);
    }
    assert.ok(s.folds.direct > 0, 'switched to direct commits');
    assert.equal(s.journalRows(), 0, 'direct commits leave nothing in the journal');
    assert.equal((await s.loadWindow('off')).queued.length, 3000);
    await s.close();
  });

  /** `n` messages queued for 'off' (ids from `first`), one commit of 50 at a time */
  async function queue(s: SqliteStore, first: number, n: number): Promise<void> {
    const payload = Buffer.alloc(16, 2);
    for (let c = 0; c < n; c += 50) {
      const set: Change[] = [];
      for (let id = first + c; id < first + Math.min(n, c + 50); id++) {
        set.push({ op: 'message', msg: { id, topic: 't', payload, qos: 1, retain: false } });
        set.push({ op: 'enqueue', clientId: 'off', ref: { seq: id, messageId: id, qos: 1, retain: false } });
      }
      await s.commit(set);
      await new Promise((r) => setImmediate(r)); // a turn between commits, as the store's thread has
    }
  }

  test('a queue that drains before the fold is never written to the tables; one that grows past foldChanges is', async () => {
    const s = await openSqliteStore({ file: join(dir, `auto-${++n}.db`), foldChanges: 2000, foldMs: 60_000 });
    await queue(s, 1, 900); // 1,800 changes left to write: under the bound
    assert.equal(s.folds.count, 0, 'not folded yet');
    assert.equal(s.journalRows(), 18);
    // the client comes back: each message dequeued, sent and acknowledged
    for (let c = 1; c <= 900; c += 50) {
      const set: Change[] = [];
      for (let id = c; id < c + 50; id++) {
        set.push({ op: 'dequeue', clientId: 'off', seq: id });
        set.push({ op: 'inflight', clientId: 'off', ref: { packetId: id, messageId: id, qos: 1, retain: false, state: 'publish' } });
      }
      await s.commit(set);
      await s.commit(Array.from({ length: 50 }, (_, i): Change => ({ op: 'inflightDone', clientId: 'off', packetId: c + i })));
    }
    assert.equal(s.messageCount(), 0, 'a read folds first: nothing is left');
    assert.equal(s.folds.count, 1);
    assert.equal(s.folds.changes, 4500);
    assert.equal(s.folds.written, 0, 'nothing reached the tables');
    assert.equal(s.folds.direct, 0);
    // a queue that grows past the bound is folded (and then written straight to the tables)
    await queue(s, 1001, 1500);
    assert.ok(s.folds.count >= 2, `folded at the bound (${s.folds.count} folds)`);
    assert.ok(s.folds.written >= 2000, `written ${s.folds.written}`);
    assert.equal((await s.loadWindow('off')).queued.length, 1500);
    await s.close();
  });

  /** one commit that cancels itself (an incoming QoS 2 id received and released): the store is not idle */
  const busy = (s: SqliteStore, n: number): Promise<void> =>
    s.commit([{ op: 'qos2', clientId: 'busy', packetId: 1 + (n % 60000) }, { op: 'qos2Done', clientId: 'busy', packetId: 1 + (n % 60000) }]);

  test('the timer folds what is cheap to fold every foldMs, and what would write much only after 30 × foldMs while commits come', async () => {
    const s = await openSqliteStore({ file: join(dir, `auto-${++n}.db`), foldChanges: 2000, foldMs: 40 });
    const waitFor = async (what: string, cond: () => boolean, ms: number, tick?: () => Promise<void>): Promise<number> => {
      const t0 = performance.now();
      while (!cond()) {
        if (performance.now() - t0 > ms) assert.fail(`${what}: not within ${ms} ms`);
        await new Promise((r) => setTimeout(r, 5));
        await tick?.();
      }
      return Math.round(performance.now() - t0);
    };
    // 100 changes left to write (under a tenth of foldChanges): folded at the first timer
    await queue(s, 1, 50);
    await waitFor('a cheap fold', () => s.journalRows() === 0, 1000);
    assert.equal(s.folds.count, 1);
    // 600 left to write, and commits keep coming: not at the first timers, but within 30 × 40 ms = 1.2 s
    await queue(s, 101, 300);
    const t0 = performance.now();
    let k = 0;
    while (performance.now() - t0 < 200) {
      await busy(s, k++);
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(s.folds.count, 1, 'still journaled after 5 timers');
    assert.ok(s.journalRows() >= 6, `${s.journalRows()} journal rows`);
    await waitFor('the late fold', () => s.folds.count === 2, 5000, () => busy(s, k++));
    const waited = Math.round(performance.now() - t0);
    assert.ok(waited >= 1000, `folded after ${waited} ms`);
    assert.equal((await s.loadWindow('off')).queued.length, 350);
    await s.close();
  });

  test('the timer folds what would write much once no commit came for a whole foldMs (idle)', async () => {
    const s = await openSqliteStore({ file: join(dir, `auto-${++n}.db`), foldChanges: 2000, foldMs: 100 });
    await queue(s, 1, 300); // 600 left to write: more than a tenth of foldChanges
    const t0 = performance.now();
    while (s.journalRows() > 0) {
      if (performance.now() - t0 > 2500) assert.fail('not folded within 2.5 s (30 × foldMs is 3 s)');
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(s.folds.count, 1);
    assert.equal(s.folds.written, 600);
    assert.equal((await s.loadWindow('off')).queued.length, 300);
    await s.close();
  });
});

describe('sqlite store on its worker thread: commits in flight at once', () => {
  const msg = (id: number) => ({ op: 'message' as const, msg: { id, topic: 't', payload: Buffer.from('x'), qos: 1 as const, retain: false } });
  const enqueue = (clientId: string, seq: number, messageId: number): Change => ({ op: 'enqueue', clientId, ref: { seq, messageId, qos: 1, retain: false } });
  const session = (clientId: string): Change => ({ op: 'session', session: { clientId, protocolVersion: 4, expiryInterval: 100 } });

  test('a commit issued behind one that fails is refused, not applied, until the failed one is retried; then both apply in order', async () => {
    const s = await openSqliteThreadStore({ file: join(dir, `pipe-${++n}.db`) });
    try {
      assert.ok((s.pipeline ?? 1) > 1, 'the store lets several commits be in flight');
      // bad inputs: a reference to message 7, which is not stored; then sets issued behind it
      const bad = s.commit([session('a'), enqueue('a', 1, 7)]);
      const behind1 = s.commit([session('b')]);
      const behind2 = s.commit([msg(8), enqueue('b', 2, 8)]);
      const results = await Promise.allSettled([bad, behind1, behind2]);
      assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected', 'rejected']);
      assert.match(String((results[0] as PromiseRejectedResult).reason), /message 7 is referenced but not stored/);
      assert.match(String((results[1] as PromiseRejectedResult).reason), /an earlier commit failed/);
      assert.equal(await s.loadSession('a'), undefined, 'the failed set left nothing');
      assert.equal(await s.loadSession('b'), undefined, 'a set behind the failed one was not applied');
      // the caller's retry (the first commit after it saw the failure) is applied; here it is fixed
      await s.commit([msg(7), session('a'), enqueue('a', 1, 7)]);
      await s.commit([session('b')]);
      await s.commit([msg(8), enqueue('b', 2, 8)]);
      assert.deepEqual((await s.loadWindow('a')).queued.map((q) => q.messageId), [7]);
      assert.deepEqual((await s.loadWindow('b')).queued.map((q) => q.messageId), [8]);
      assert.equal((await s.loadMeta()).lastSeq, 2);
    } finally {
      await s.close();
    }
  });

  test('a retry that fails again keeps refusing what is behind it', async () => {
    const s = await openSqliteThreadStore({ file: join(dir, `pipe-${++n}.db`) });
    try {
      const r1 = await Promise.allSettled([s.commit([enqueue('a', 1, 9)]), s.commit([session('c')])]);
      assert.deepEqual(r1.map((r) => r.status), ['rejected', 'rejected']);
      // the retry fails again (same bad set) and a set issued with it is refused
      const r2 = await Promise.allSettled([s.commit([enqueue('a', 1, 9)]), s.commit([session('c')])]);
      assert.deepEqual(r2.map((r) => r.status), ['rejected', 'rejected']);
      assert.match(String((r2[1] as PromiseRejectedResult).reason), /an earlier commit failed/);
      assert.equal(await s.loadSession('c'), undefined);
      // many good sets in flight at once all apply, in order
      const sets: Array<Promise<void>> = [];
      for (let i = 1; i <= 20; i++) sets.push(s.commit([msg(100 + i), session(`s${i}`), enqueue(`s${i}`, i, 100 + i)]));
      await Promise.all(sets);
      for (let i = 1; i <= 20; i++) assert.deepEqual((await s.loadWindow(`s${i}`)).queued.map((q) => q.seq), [i]);
    } finally {
      await s.close();
    }
  });
});

describe('sqlite store on its worker thread: sets handed to the worker through shared buffers', () => {
  const payload = (i: number, size: number) => Buffer.alloc(size, i % 251);
  const msg = (id: number, size: number): Change => ({ op: 'message', msg: { id, topic: `t/${id}`, payload: payload(id, size), qos: 1, retain: false } });
  const enqueue = (clientId: string, seq: number, messageId: number): Change => ({ op: 'enqueue', clientId, ref: { seq, messageId, qos: 1, retain: false } });
  const session = (clientId: string): Change => ({ op: 'session', session: { clientId, protocolVersion: 4, expiryInterval: 0xffffffff } });

  test('3 MB of small sets reuse a few buffers, a 3 MiB set goes alone, a set that waits for the worker keeps its own bytes; all of it comes back', { timeout: 60_000 }, async () => {
    const file = join(dir, `handoff-${++n}.db`);
    let s = await openSqliteThreadStore({ file });
    let seq = 0;
    try {
      await s.commit([session('a'), session('big')]);
      // 1,500 sets of one 2 KiB message each (about 3 MB: three hand-offs by size), the worker given
      // time to answer now and then, so that the buffers it answered for are filled again
      for (let i = 1; i <= 1500; i++) {
        await s.commit([msg(i, 2048), enqueue('a', ++seq, i)]);
        if (i === 750) await s.commit([msg(100_000, 3 << 20), enqueue('big', ++seq, 100_000)]);
        if (i % 300 === 0) await new Promise((r) => setTimeout(r, 30));
      }
      assert.equal(s.handOffs.alone, 1, 'the 3 MiB set went alone');
      assert.ok(s.handOffs.buffers <= 3, `shared buffers are reused (${s.handOffs.buffers} made)`);
      await s.close();
      // reopened, nothing it appended is in this run's ids: a set that refers to message 1 waits for
      // the worker's check; the set behind it is encoded into the same buffer meanwhile
      s = await openSqliteThreadStore({ file });
      const waiting = s.commit([session('b'), enqueue('b', ++seq, 1)]);
      const behind = s.commit([session('c'), msg(200_000, 100), enqueue('c', ++seq, 200_000)]);
      await Promise.all([waiting, behind]);
      await s.close();
      s = await openSqliteThreadStore({ file });
      const a = await s.loadWindow('a');
      assert.equal(a.queued.length, 1500);
      a.queued.forEach((q, i) => {
        assert.equal(q.messageId, i + 1);
        assert.ok(q.message.payload.equals(payload(i + 1, 2048)), `message ${i + 1} came back as it was written`);
      });
      const big = await s.loadWindow('big');
      assert.equal(big.queued.length, 1);
      assert.ok(big.queued[0]!.message.payload.equals(payload(100_000, 3 << 20)));
      assert.deepEqual((await s.loadWindow('b')).queued.map((q) => q.messageId), [1]);
      const c = await s.loadWindow('c');
      assert.deepEqual(c.queued.map((q) => q.messageId), [200_000]);
      assert.ok(c.queued[0]!.message.payload.equals(payload(200_000, 100)));
    } finally {
      await s.close();
    }
  });
});

describe('sqlite store on its worker thread: loads in pages', () => {
  test('12,001 retained messages, 2,100 sessions with windows: the thread store loads what the store on this thread loads', { timeout: 120_000 }, async () => {
    const file = join(dir, `pages-${++n}.db`);
    const t = await openSqliteThreadStore({ file });
    let id = 0;
    let set: Change[] = [];
    const flush = async (): Promise<void> => { if (set.length > 0) await t.commit(set); set = []; };
    for (let i = 0; i < 12_001; i++) {
      id++;
      // every kind of field, a multi-byte topic, a Buffer property
      const m: StoredMessage = { id, topic: `ret/${i % 7 === 0 ? 'é' : 'a'}/${i}`, payload: Buffer.from([i & 0xff, 0, 0xff]), qos: (i % 3) as 0 | 1 | 2, retain: true };
      if (i % 5 === 0) m.properties = { contentType: 'x', correlationData: Buffer.from([1, 2, i & 0xff]), userProperties: [['k', String(i)]] };
      if (i % 11 === 0) m.expiresAt = 4_000_000_000_000 + i;
      if (i % 13 === 0) m.origin = 'peer';
      set.push({ op: 'message', msg: m }, { op: 'retain', topic: m.topic, messageId: id });
      if (set.length >= 2000) await flush();
    }
    for (let i = 0; i < 2_100; i++) {
      const c = `s${String(i).padStart(5, '0')}`;
      set.push({ op: 'session', session: { clientId: c, protocolVersion: 5, expiryInterval: 3600 } });
      set.push({ op: 'sub', clientId: c, sub: { filter: `f/${i}/#`, qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 } });
      if (i % 3 === 0) {
        id++;
        set.push({ op: 'message', msg: { id, topic: `q/${i}`, payload: Buffer.from(`p${i}`), qos: 1, retain: false } });
        set.push({ op: 'enqueue', clientId: c, ref: { seq: id, messageId: id, qos: 1, retain: false, subIds: [i] } });
        // in-flight sent in the order 9, 2 (send order, not packet id order)
        set.push({ op: 'inflight', clientId: c, ref: { packetId: 9, messageId: id, qos: 1, retain: false, state: 'publish' } });
        set.push({ op: 'inflight', clientId: c, ref: { packetId: 2, messageId: id, qos: 2, retain: false, state: 'pubrel' } });
        set.push({ op: 'qos2', clientId: c, packetId: 40 }, { op: 'qos2', clientId: c, packetId: 4 });
      }
      if (set.length >= 2000) await flush();
    }
    await flush();
    const loadAll = async (s: Store) => {
      const sessions = [];
      for await (const x of s.loadSessions()) sessions.push(x);
      const subs = [];
      for await (const x of s.loadSubscriptions()) subs.push(x);
      const retained = [];
      for await (const x of s.loadRetained()) retained.push(x);
      const windows = [];
      for (const x of sessions) windows.push(await s.loadWindow(x.clientId));
      return { sessions, subs, retained, windows };
    };
    const fromThread = await loadAll(t);
    await t.close();
    const direct = await openSqliteStore({ file });
    try {
      const fromHere = await loadAll(direct);
      assert.equal(fromThread.retained.length, 12_001);
      assert.equal(fromThread.sessions.length, 2_100);
      assert.equal(fromThread.windows.filter((w) => w.queued.length === 1).length, 700);
      assert.deepEqual(fromThread.windows[0]!.inflight.map((e) => e.packetId), [9, 2], 'send order');
      assert.deepEqual(fromThread.windows[0]!.incomingQos2, [4, 40]);
      assert.ok(Buffer.isBuffer(fromThread.retained[0]!.message.payload), 'payloads are Buffers');
      const withProps = fromThread.retained.find((x) => x.topic === 'ret/é/35')!;
      assert.ok(Buffer.isBuffer(withProps.message.properties?.correlationData), 'Buffer properties are Buffers');
      assert.equal(withProps.message.origin, undefined);
      assert.equal(fromThread.retained.find((x) => x.topic === 'ret/a/65')!.message.origin, 'peer');
      assert.deepEqual(fromThread, fromHere);
    } finally {
      await direct.close();
    }
  });
});

describe('a page of retained messages in the journal form (decodeRetained)', () => {
  const m = (id: number, topic: string): StoredMessage => ({ id, topic, payload: Buffer.from([id]), qos: 1, retain: true });
  test('pairs decode to { topic, message }; anything else is refused', () => {
    const ok = encodeChanges([{ op: 'message', msg: m(1, 'a') }, { op: 'retain', topic: 'a', messageId: 1 }, { op: 'message', msg: m(2, 'b/é') }, { op: 'retain', topic: 'b/é', messageId: 2 }]);
    assert.deepEqual(decodeRetained(ok), [{ topic: 'a', message: m(1, 'a') }, { topic: 'b/é', message: m(2, 'b/é') }]);
    assert.deepEqual(decodeRetained(encodeChanges([])), []);
    // bad inputs: a retain that refers to another message, another op, a lone message, a truncated page
    assert.throws(() => decodeRetained(encodeChanges([{ op: 'message', msg: m(1, 'a') }, { op: 'retain', topic: 'a', messageId: 9 }])), JournalError);
    assert.throws(() => decodeRetained(encodeChanges([{ op: 'unretain', topic: 'a' }])), JournalError);
    assert.throws(() => decodeRetained(encodeChanges([{ op: 'message', msg: m(1, 'a') }])), JournalError);
    assert.throws(() => decodeRetained(ok.subarray(0, ok.length - 3)), JournalError);
  });

  test('a page written from the rows of the retained join (encodeRetainedRows) is the same bytes as its changes encoded, with and without properties, expiry and origin', async () => {
    const f = join(dir, `retained-rows-${++n}.db`);
    const s = await openSqliteStore({ file: f, mode: 'direct' });
    try {
      const msgs: StoredMessage[] = [
        m(1, 'a'),
        { id: 2, topic: 'b/é', payload: Buffer.alloc(0), qos: 0, retain: true, properties: { contentType: 'text/plain', userProperties: [['k', 'v']], correlationData: Buffer.from([1, 2, 3]) } },
        { id: 3, topic: 'c', payload: Buffer.from('x'.repeat(300)), qos: 2, retain: true, expiresAt: 1_900_000_000_000, origin: 'node-b' },
        { id: 4, topic: 'd', payload: Buffer.from([0, 255]), qos: 1, retain: false, properties: { messageExpiryInterval: 60 }, expiresAt: 1_800_000_000_000 },
        // the largest payload read as hex text, and the smallest read as a blob (the `retainedRows` statement)
        { id: 5, topic: 'e', payload: Buffer.alloc(HEX_PAYLOAD_MAX, 0xa5), qos: 1, retain: true },
        { id: 6, topic: 'f', payload: Buffer.alloc(HEX_PAYLOAD_MAX + 1, 0x5a), qos: 1, retain: true },
      ];
      const set: Change[] = [];
      for (const x of msgs) set.push({ op: 'message', msg: x }, { op: 'retain', topic: x.topic, messageId: x.id });
      await s.commit(set);
      const rows = s.retainedRows(undefined, 10);
      assert.equal(rows.length, 6);
      assert.deepEqual(rows.map((r) => [typeof r[3], Buffer.isBuffer(r[4])]), [...Array(5).fill(['string', false]), ['object', true]]);
      const changes: Change[] = [];
      for (const x of s.retainedPage(undefined, 10)) changes.push({ op: 'message', msg: x.message }, { op: 'retain', topic: x.topic, messageId: x.message.id });
      const fromRows = encodeRetainedRows(rows);
      assert.deepEqual(fromRows, encodeChanges(changes));
      assert.deepEqual(decodeRetained(fromRows), msgs.map((x) => ({ topic: x.topic, message: x })));
      assert.deepEqual(decodeRetained(encodeRetainedRows([])), []);
    } finally {
      await s.close();
    }
  });
});

describe('retained pages read from a payload that is not a blob', () => {
  test('a payload stored as text (not what the broker writes: a file edited by hand) comes back as its bytes, small or large', async () => {
    const f = join(dir, `retained-text-${++n}.db`);
    const small = 'é'.repeat(HEX_PAYLOAD_MAX / 2); // HEX_PAYLOAD_MAX bytes, half as many characters
    const large = 'x'.repeat(HEX_PAYLOAD_MAX + 1);
    const first = await openSqliteStore({ file: f, mode: 'direct' });
    const set: Change[] = [];
    for (const [id, topic, text] of [[1, 'a', small], [2, 'b', large]] as const) {
      set.push({ op: 'message', msg: { id, topic, payload: Buffer.from(text), qos: 0, retain: true } }, { op: 'retain', topic, messageId: id });
    }
    await first.commit(set);
    await first.close();
    // the store holds its file locked while open: edited between two opens
    const raw = new Database(f);
    try {
      raw.prepare('UPDATE messages SET payload = CAST(payload AS TEXT)').run();
      assert.deepEqual(raw.prepare('SELECT typeof(payload) FROM messages ORDER BY id').pluck().all(), ['text', 'text']);
    } finally {
      raw.close();
    }
    const s = await openSqliteStore({ file: f, mode: 'direct' });
    try {
      const page = decodeRetained(encodeRetainedRows(s.retainedRows(undefined, 10)));
      assert.deepEqual(page.map((x) => [x.topic, x.message.payload.toString()]), [['a', small], ['b', large]]);
    } finally {
      await s.close();
    }
  });
});

describe('a commit as it crosses to the store\'s thread (encodeCommit / readCommit)', () => {
  const m = (id: number, topic: string): StoredMessage => ({ id, topic, payload: Buffer.from([id, 0, 255]), qos: 1, retain: false });
  test('the set and its summary come back; a short or inconsistent buffer is refused', () => {
    const set: Change[] = [
      { op: 'message', msg: m(5, 'a/b') },
      { op: 'enqueue', clientId: 'c1', ref: { seq: 3, messageId: 5, qos: 1, retain: false } },
      { op: 'message', msg: m(6, 'x') },
      { op: 'inflight', clientId: 'c2', ref: { packetId: 9, messageId: 6, qos: 1, retain: false, state: 'publish' } },
      { op: 'retain', topic: 'x', messageId: 2 },
      { op: 'dequeue', clientId: 'c1', seq: 1 },
    ];
    const buf = encodeCommit(set);
    assert.equal(buf.byteOffset, 0, 'its ArrayBuffer is its own (it is transferred)');
    const { blob, set: summary } = readCommit(buf);
    assert.deepEqual(blob, encodeChanges(set), 'the blob is the journal form of the set');
    assert.deepEqual(summary, { count: 6, bytes: 6, messageIds: [5, 6], refIds: [5, 6, 2] });
    assert.deepEqual(readCommit(encodeCommit([])).set, { count: 0, bytes: 0, messageIds: [], refIds: [] });
    // bad inputs: shorter than the trailer, one byte cut off the front, one byte too many
    assert.throws(() => readCommit(buf.subarray(0, 10)), JournalError);
    assert.throws(() => readCommit(buf.subarray(1)), JournalError);
    assert.throws(() => readCommit(Buffer.concat([Buffer.from([0]), buf])), JournalError);
  });

  test('strings read back as written when one repeats the last one read, or has its length and not its bytes', () => {
    // the reader gives the last short string again for the same bytes: 'ab' and 'é' are both 2 bytes,
    // 'ab' and 'cd' differ in their bytes only, 'ab'.repeat(40) is past the short strings
    const ids = ['ab', 'ab', 'cd', 'ab', 'é', 'é', 'ab', 'ab'.repeat(40), 'ab'.repeat(40), 'a', '', '', 'ab'];
    const set: Change[] = ids.map((clientId, i) => ({ op: 'dequeue', clientId, seq: i }));
    set.splice(3, 0, { op: 'message', msg: m(7, 'ab') }, { op: 'message', msg: m(8, 'cd') });
    assert.deepEqual(decodeChanges(encodeChanges(set)), set);
    assert.deepEqual(decodeChanges(encodeChanges(set), false).map((c) => (c.op === 'dequeue' ? c.clientId : c.op)),
      ['ab', 'ab', 'cd', 'message', 'message', 'ab', 'é', 'é', 'ab', 'ab'.repeat(40), 'ab'.repeat(40), 'a', '', '', 'ab']);
  });
});

describe('compacting the journal as it comes (Compactor)', () => {
  /** a random stream of sets, as a broker records them: messages queued, sent, acknowledged, sessions dropped */
  function randomSets(seed: number, sets: number): Change[][] {
    let x = seed;
    const rnd = (n: number): number => ((x = (x * 1103515245 + 12345) % 2 ** 31), x % n);
    let id = 0;
    let seq = 0;
    const open: Array<{ client: string; kind: 'q' | 'f' | '2'; key: number; msg: number }> = [];
    const out: Change[][] = [];
    /** a packet id that no open entry of `client` has (the broker never reuses one that is in use) */
    const freePid = (client: string, kind: 'f' | '2'): number => {
      for (;;) {
        const pid = 1 + rnd(500);
        if (!open.some((e) => e.client === client && e.kind === kind && e.key === pid)) return pid;
      }
    };
    for (let s = 0; s < sets; s++) {
      const set: Change[] = [];
      for (let i = 0, n = 1 + rnd(12); i < n; i++) {
        const client = `c${rnd(3)}`;
        const r = rnd(10);
        if (r < 4 || open.length === 0) {
          const msg = ++id;
          set.push({ op: 'message', msg: { id: msg, topic: `t/${msg}`, payload: Buffer.from([msg & 255]), qos: 1, retain: false } });
          if (r % 2 === 0) {
            set.push({ op: 'enqueue', clientId: client, ref: { seq: ++seq, messageId: msg, qos: 1, retain: false } });
            open.push({ client, kind: 'q', key: seq, msg });
          } else {
            const pid = freePid(client, 'f');
            set.push({ op: 'inflight', clientId: client, ref: { packetId: pid, messageId: msg, qos: 2, retain: false, state: 'publish' } });
            open.push({ client, kind: 'f', key: pid, msg });
          }
        } else if (r < 8) {
          const e = open.splice(rnd(open.length), 1)[0]!;
          if (e.kind === 'q') {
            set.push({ op: 'dequeue', clientId: e.client, seq: e.key });
            if (rnd(2) === 0) {
              // sent from the queue in the same set: the in-flight entry refers to the message
              // without recording it again (Session.sendNew from a stored queue entry)
              const pid = freePid(e.client, 'f');
              set.push({ op: 'inflight', clientId: e.client, ref: { packetId: pid, messageId: e.msg, qos: 2, retain: false, state: 'publish' } });
              open.push({ client: e.client, kind: 'f', key: pid, msg: e.msg });
            }
          }
          else if (e.kind === 'f') {
            if (rnd(2) === 0) {
              // the state change refers to the message and records it again, as Session does
              set.push({ op: 'message', msg: { id: e.msg, topic: `t/${e.msg}`, payload: Buffer.from([e.msg & 255]), qos: 1, retain: false } });
              set.push({ op: 'inflight', clientId: e.client, ref: { packetId: e.key, messageId: e.msg, qos: 2, retain: false, state: 'pubrel' } });
            }
            set.push({ op: 'inflightDone', clientId: e.client, packetId: e.key });
          } else set.push({ op: 'qos2Done', clientId: e.client, packetId: e.key });
        } else if (r === 8) {
          const pid = freePid(client, '2');
          set.push({ op: 'qos2', clientId: client, packetId: pid });
          open.push({ client, kind: '2', key: pid, msg: 0 });
        } else {
          set.push({ op: 'dropSession', clientId: client });
          for (let k = open.length - 1; k >= 0; k--) if (open[k]!.client === client) open.splice(k, 1);
        }
      }
      out.push(set);
    }
    return out;
  }

  test('its id tables (IdTable) answer as a Map does: ids in order, below the first, far past the end, deleted, after a clear', () => {
    for (const seed of [5, 77, 31337]) {
      let x = seed;
      const rnd = (n: number): number => ((x = (x * 1103515245 + 12345) % 2 ** 31), x % n);
      const t = new IdTable();
      const model = new Map<number, number>();
      let next = 1_000 + rnd(1_000);
      const touched: number[] = [];
      for (let step = 0; step < 30_000; step++) {
        const r = rnd(100);
        let id: number;
        if (r < 55) id = next++; // the next id, as the Recorder gives them
        else if (r < 65) id = rnd(1_000); // a message stored before: below the first id
        else if (r < 70) id = next + 3_000 + rnd(20_000); // far past the end (a Map, until the array grows over it)
        else if (r < 72) id = 2 ** 40 + rnd(1000); // a cluster's block far away
        else id = touched.length > 0 ? touched[rnd(touched.length)]! : next;
        const op = rnd(10);
        if (op < 6) {
          const v = rnd(2 ** 31);
          t.set(id, v);
          model.set(id, v);
          touched.push(id);
        } else if (op < 8) {
          t.delete(id);
          model.delete(id);
        }
        assert.equal(t.get(id), model.get(id) ?? -1, `seed ${seed} step ${step}: id ${id}`);
        if (rnd(20_000) === 0) {
          t.clear();
          model.clear();
          touched.length = 0;
        }
      }
      for (const id of new Set(touched)) assert.equal(t.get(id), model.get(id) ?? -1, `seed ${seed}: id ${id} at the end`);
      for (let id = 0; id < next + 10; id++) assert.equal(t.get(id), model.get(id) ?? -1, `seed ${seed}: id ${id} in the range`);
    }
    // an id set in the Map while far past the array's end, which the array then grows over
    const t = new IdTable();
    t.set(100, 1);
    t.set(5_100, 7); // 5,000 past a 16-long array: the Map
    for (let id = 101; id <= 3_000; id++) t.set(id, 2); // the array grows to 4,096, short of 5,100
    t.set(5_200, 3); // and again, over 5,100
    assert.ok((t as unknown as { dense: Int32Array }).dense.length > 5_100 - 100, 'the array grew over 5,100');
    assert.equal(t.get(5_100), 7);
    assert.equal(t.get(5_000), -1);
    t.set(5_100, 8); // now in the array; the Map's copy goes
    t.delete(5_100);
    assert.equal(t.get(5_100), -1);
    assert.equal(t.get(3_000), 2);
    t.clear();
    assert.equal(t.get(3_000), -1);
    assert.equal(t.get(100), -1);
    // ids spread far apart (each about twice as far as the last) stay in the Map: the array does not double for each
    const spread = new IdTable();
    for (let i = 0, id = 0; i < 40; i++, id = 2 * id + 1_000) spread.set(id, i);
    for (let i = 0, id = 0; i < 40; i++, id = 2 * id + 1_000) assert.equal(spread.get(id), i);
    assert.ok((spread as unknown as { dense: Int32Array }).dense.length <= 8_192, 'the array stays small');
    // a table per client (the Compactor's open entries): one entry, or a few far apart, take a short array
    const one = new IdTable();
    one.set(1_234_567, 0);
    assert.equal((one as unknown as { dense: Int32Array }).dense.length, 16);
    const apart = new IdTable();
    for (let i = 0; i < 100; i++) apart.set(1_000 * i, i); // a client's seqs among 1,000 clients' queues
    for (let i = 0; i < 100; i++) assert.equal(apart.get(1_000 * i), i);
    assert.equal(apart.get(1_500), -1);
    assert.ok((apart as unknown as { dense: Int32Array }).dense.length <= 64, 'the array stays short');
    // ids that come densely after a jump past the end of a short array (the thread store's recorded ids
    // after commits that cancelled their first messages) move into the array; before, every id after
    // the jump stayed in the Map
    const jump = new IdTable();
    for (let id = 1; id <= 64; id++) jump.set(id, 1);
    for (let id = 2_000; id < 12_000; id++) if (id % 10 !== 0) jump.set(id, id); // 90% of the ids
    const inner = jump as unknown as { dense: Int32Array; sparse: Map<number, number> | undefined };
    assert.ok((inner.sparse?.size ?? 0) < 512, `the Map keeps ${inner.sparse?.size} ids`);
    assert.ok(inner.dense.length >= 12_000 - 1, 'the array covers them');
    for (let id = 0; id < 12_010; id++) assert.equal(jump.get(id), id >= 1 && id <= 64 ? 1 : id >= 2_000 && id < 12_000 && id % 10 !== 0 ? id : -1, `id ${id}`);
    // ids below the array's start stay in the Map, and a sparse spread past its end too
    const below = new IdTable();
    below.set(1_000_000, 1);
    for (let i = 0; i < 1_000; i++) below.set(i * 7, i); // below the start
    for (let i = 0; i < 1_000; i++) below.set(2_000_000 + i * 1_000, i); // one id in 1,000 past the end
    assert.ok((below as unknown as { dense: Int32Array }).dense.length <= 64, 'the array stays short');
    for (let i = 0; i < 1_000; i++) {
      assert.equal(below.get(i * 7), i);
      assert.equal(below.get(2_000_000 + i * 1_000), i);
    }
    assert.equal(below.get(1_000_000), 1);
  });

  test('adding sets one by one leaves what compacting them all at once leaves, and the highest ids', () => {
    for (const seed of [1, 7, 42, 1234, 99999]) {
      const sets = randomSets(seed, 200);
      const all = sets.flat();
      const k = new Compactor();
      for (const set of sets) {
        for (const c of set) k.add(c);
        k.endSet();
        // what is still to be written is what a fold would write now, messages left out included
        const now = k.survivors();
        assert.equal(k.live, now.length, `seed ${seed}: live count`);
      }
      const survivors = k.survivors();
      assert.deepEqual(survivors, [...compact(all)], `seed ${seed}`);
      assert.equal(k.live, survivors.length);
      // the SQLite store's way: the changes are not kept, only which are left (their indexes in the
      // order added), and it finds them again in its sets
      const lean = new Compactor(true, false);
      for (const set of sets) {
        for (const c of set) lean.add(c);
        lean.endSet();
      }
      assert.deepEqual(lean.liveIndexes().map((i) => all[i]), survivors, `seed ${seed}: by index`);
      assert.equal(lean.live, survivors.length);
      assert.throws(() => lean.survivors(), /does not keep the changes/);
      assert.ok(survivors.length < all.length, `seed ${seed}: something cancelled (${survivors.length} of ${all.length})`);
      assert.equal(k.added, all.length);
      assert.equal(k.maxId, Math.max(0, ...all.flatMap((c) => (c.op === 'message' ? [c.msg.id] : []))));
      assert.equal(k.maxSeq, Math.max(0, ...all.flatMap((c) => (c.op === 'enqueue' ? [c.ref.seq] : []))));
    }
  });

  test('digesting a set from its bytes (digestChanges) leaves what adding its decoded changes leaves', () => {
    for (const seed of [3, 11, 2024]) {
      const sets = randomSets(seed, 200);
      const byObject = new Compactor(true, false);
      const byBytes = new Compactor(true, false);
      for (const set of sets) {
        for (const c of set) byObject.add(c);
        byObject.endSet();
        digestChanges(encodeChanges(set), byBytes);
        byBytes.endSet();
        assert.equal(byBytes.live, byObject.live, `seed ${seed}: live count`);
      }
      assert.deepEqual(byBytes.liveIndexes(), byObject.liveIndexes(), `seed ${seed}`);
      assert.equal(byBytes.added, byObject.added);
      assert.equal(byBytes.maxId, byObject.maxId);
      assert.equal(byBytes.maxSeq, byObject.maxSeq);
      assert.equal(byBytes.anyCancelled, true);
    }
    // every kind of change, with every optional field: each is read to its end (the next one follows)
    const msg: StoredMessage = { id: 9, topic: 't', payload: Buffer.from('p'), qos: 1, retain: true, properties: { contentType: 'x' }, expiresAt: 5, origin: 'n1' };
    const every: Change[] = [
      { op: 'session', session: { clientId: 'a', protocolVersion: 5, expiryInterval: 60, username: 'u', listenerPort: 1883, disconnectedAt: 1 } },
      { op: 'sub', clientId: 'a', sub: { filter: 'f/#', qos: 1, noLocal: true, retainAsPublished: false, retainHandling: 2, subscriptionId: 7 } },
      { op: 'unsub', clientId: 'a', filter: 'f/#' },
      { op: 'message', msg },
      { op: 'enqueue', clientId: 'a', ref: { seq: 4, messageId: 9, qos: 1, retain: true, subIds: [7, 8] } },
      { op: 'inflight', clientId: 'a', ref: { packetId: 3, messageId: 9, qos: 2, retain: false, subIds: [7], state: 'pubrel' } },
      { op: 'retain', topic: 't', messageId: 9 },
      { op: 'unretain', topic: 't' },
      { op: 'will', will: { clientId: 'a', will: { topic: 'w', payload: Buffer.from('bye'), qos: 1, retain: true, properties: { contentType: 'y' } }, fireAt: 10, username: 'u', listenerPort: 1 } },
      { op: 'willDone', clientId: 'a' },
      { op: 'qos2', clientId: 'a', packetId: 1 },
      { op: 'qos2Done', clientId: 'a', packetId: 1 },
      { op: 'dequeue', clientId: 'a', seq: 4 },
      { op: 'inflightDone', clientId: 'a', packetId: 3 },
      { op: 'dropSession', clientId: 'a' },
    ];
    const byObject = new Compactor(true, false);
    for (const c of every) byObject.add(c);
    byObject.endSet();
    const bytes = encodeChanges(every);
    const byBytes = new Compactor(true, false);
    digestChanges(bytes, byBytes);
    byBytes.endSet();
    assert.equal(byBytes.added, every.length);
    assert.deepEqual(byBytes.liveIndexes(), byObject.liveIndexes());
    assert.equal(byBytes.maxSeq, 4);
    // bad inputs: cut short (in a change, and one byte off the end), an unknown version, an unknown change code
    assert.throws(() => digestChanges(bytes.subarray(0, bytes.length - 1), new Compactor(true, false)), JournalError);
    assert.throws(() => digestChanges(bytes.subarray(0, 20), new Compactor(true, false)), JournalError);
    assert.throws(() => digestChanges(Buffer.from([9]), new Compactor(true, false)), JournalError);
    assert.throws(() => digestChanges(Buffer.from([1, 200]), new Compactor(true, false)), JournalError);
  });

  test('a journaled set that cannot be read stops every later digest and fold with its error', () => {
    const p = new PendingSets();
    const good = encodeCommit([{ op: 'qos2', clientId: 'a', packetId: 1 }]);
    const { blob, set } = readCommit(good);
    p.add(blob, set);
    p.digest();
    assert.equal(p.live, 1);
    p.add(Buffer.from([1, 9, 0, 0]), { count: 1, bytes: 0, messageIds: [], refIds: [] }); // a qos2 change cut short
    assert.throws(() => p.digest(), JournalError);
    assert.throws(() => p.digest(), JournalError, 'and again: part of it may have been counted');
    assert.throws(() => p.left(), JournalError);
  });

  test('compact(): a queue drained from the store (no message recorded) keeps its dequeues and the in-flight entries still open, in order; a set with messages leaves out the unreferenced one', () => {
    const ref = (packetId: number, messageId: number) => ({ packetId, messageId, qos: 1 as const, retain: false, state: 'publish' as const });
    const drained: Change[] = [];
    for (let i = 1; i <= 6; i++) {
      drained.push({ op: 'dequeue', clientId: 'c', seq: i }, { op: 'inflight', clientId: 'c', ref: ref(i, 100 + i) });
      if (i % 2 === 1) drained.push({ op: 'inflightDone', clientId: 'c', packetId: i });
    }
    const left = compact(drained);
    assert.deepEqual(left, drained.filter((c) => c.op === 'dequeue' || (c.op === 'inflight' && c.ref.packetId % 2 === 0)));
    // with a message recorded: the one whose only reference cancelled is left out, the other stays
    const msg = (id: number) => ({ op: 'message' as const, msg: { id, topic: 't', payload: Buffer.from('x'), qos: 1 as const, retain: false } });
    const mixed: Change[] = [msg(1), { op: 'inflight', clientId: 'c', ref: ref(1, 1) }, msg(2), { op: 'inflight', clientId: 'c', ref: ref(2, 2) }, { op: 'inflightDone', clientId: 'c', packetId: 1 }];
    assert.deepEqual(compact(mixed), [mixed[2], mixed[3]]);
  });

  test('survivors() leaves the state as it was (a fold that fails takes them again); reset() starts again', () => {
    const [first, second] = randomSets(5, 2);
    const k = new Compactor();
    for (const c of first!) k.add(c);
    const once = k.survivors();
    assert.deepEqual(k.survivors(), once);
    for (const c of second!) k.add(c);
    assert.deepEqual(k.survivors(), [...compact([...first!, ...second!])]);
    k.reset();
    assert.deepEqual(k.survivors(), []);
    assert.equal(k.added, 0);
    // after a reset, finishing an entry opened before it is written (the tables hold the entry)
    k.add({ op: 'dequeue', clientId: 'c0', seq: 1 });
    assert.deepEqual(k.survivors(), [{ op: 'dequeue', clientId: 'c0', seq: 1 }]);
  });
});
