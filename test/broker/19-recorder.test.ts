/**
 * The turn's change set (src/broker/recorder.ts): changes of one turn are one commit; output held
 * behind an acknowledgement is released only when that commit is durable, in order; a failing commit
 * is retried and releases nothing meanwhile.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Recorder, type Holder } from '../../src/broker/recorder.js';
import { compact } from '../../src/store/compact.js';
import { Logger } from '../../src/broker/log.js';
import type { Change, Store } from '../../src/store/store.js';
import type { Message } from '../../src/broker/types.js';

/** A store whose commits wait until the test lets them go (or fail). */
class GatedStore {
  readonly kind = 'memory' as const;
  readonly commits: Change[][] = [];
  private gates: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  failNext = 0;
  commit(changes: readonly Change[]): Promise<void> {
    if (this.failNext > 0) { this.failNext--; return Promise.reject(new Error('disk full')); }
    return new Promise((resolve, reject) => this.gates.push({ resolve: () => { this.commits.push([...changes]); resolve(); }, reject }));
  }
  open(): void { for (const g of this.gates.splice(0)) g.resolve(); }
  get waiting(): number { return this.gates.length; }
}

class FakeConn implements Holder {
  held: Buffer[] | undefined;
  readonly sent: string[] = [];
  release(n?: number): void {
    const h = this.held!;
    const out = n === undefined ? h.splice(0) : h.splice(0, n);
    if (h.length === 0 || n === undefined) this.held = undefined;
    for (const b of out) this.sent.push(b.toString());
  }
  write(r: Recorder, s: string, ack = false): void {
    if (ack) r.hold(this);
    if (this.held !== undefined) this.held.push(Buffer.from(s));
    else this.sent.push(s);
  }
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
/** wait (bounded: 2 s) until `ok()` holds; false if it never did */
async function until(ok: () => boolean): Promise<boolean> {
  const end = Date.now() + 2000;
  while (!ok() && Date.now() < end) await new Promise((r) => setTimeout(r, 2));
  return ok();
}
const logs: string[] = [];
const logger = new Logger(true, false, (l) => logs.push(l), false);

test('an acknowledgement and what follows it wait for the commit of their turn', async () => {
  const store = new GatedStore();
  const r = new Recorder(store as unknown as Store, logger, 0);
  const c = new FakeConn();
  c.write(r, 'before');
  r.add({ op: 'qos2', clientId: 'a', packetId: 1 });
  c.write(r, 'PUBREC 1', true);
  c.write(r, 'PUBLISH x');
  assert.deepEqual(c.sent, ['before']);
  await turn();
  assert.equal(store.waiting, 1, 'one commit for the turn');
  assert.deepEqual(c.sent, ['before'], 'nothing released before the commit is durable');
  store.open();
  await turn();
  assert.deepEqual(c.sent, ['before', 'PUBREC 1', 'PUBLISH x']);
  assert.equal(c.held, undefined);
  assert.deepEqual(store.commits[0], [{ op: 'qos2', clientId: 'a', packetId: 1 }]);
});

test('a turn with nothing recorded releases its acknowledgements without a store write', async () => {
  const store = new GatedStore();
  const r = new Recorder(store as unknown as Store, logger, 0);
  const c = new FakeConn();
  c.write(r, 'PUBACK 1', true);
  await turn(); await turn();
  assert.deepEqual(c.sent, ['PUBACK 1']);
  assert.equal(store.waiting, 0);
});

test('acknowledgements of a later turn wait for their own commit, in order', async () => {
  const store = new GatedStore();
  const r = new Recorder(store as unknown as Store, logger, 0);
  const c = new FakeConn();
  r.add({ op: 'qos2', clientId: 'a', packetId: 1 });
  c.write(r, 'ack1', true);
  await turn(); // commit 1 starts and waits
  r.add({ op: 'qos2', clientId: 'a', packetId: 2 });
  c.write(r, 'ack2', true);
  await turn(); // commit 2 is queued behind commit 1
  store.open(); // commit 1 done
  await turn(); await turn();
  assert.deepEqual(c.sent, ['ack1'], 'ack2 still waits for its own commit');
  store.open();
  await turn(); await turn();
  assert.deepEqual(c.sent, ['ack1', 'ack2']);
  assert.equal(store.commits.length, 2);
});

test('a failing commit is retried, nothing is acknowledged meanwhile, and it is logged once', async () => {
  const store = new GatedStore();
  store.failNext = 3;
  const r = new Recorder(store as unknown as Store, logger, 0);
  const c = new FakeConn();
  logs.length = 0;
  r.add({ op: 'unretain', topic: 't' });
  c.write(r, 'ack', true);
  const deadline = Math.round(performance.now()) + 3000;
  while (store.waiting === 0 && Math.round(performance.now()) < deadline) { assert.deepEqual(c.sent, []); await new Promise((x) => setTimeout(x, 20)); }
  assert.equal(store.failNext, 0, 'retried three times');
  assert.equal(logs.filter((l) => l.includes('commit failed')).length, 1);
  assert.equal(r.isFailing, true);
  store.open();
  await turn(); await turn();
  assert.deepEqual(c.sent, ['ack']);
  assert.equal(r.isFailing, false);
  assert.ok(logs.some((l) => l.includes('writes succeed again')));
});

test('a message is recorded once per commit however many references it gets', async () => {
  const store = new GatedStore();
  const r = new Recorder(store as unknown as Store, logger, 0);
  const m: Message = { topic: 't', payload: Buffer.from('p'), qos: 1, retain: false };
  const id = r.message(m);
  assert.equal(r.message(m), id);
  r.add({ op: 'enqueue', clientId: 'a', ref: { seq: 1, messageId: id, qos: 1, retain: false } });
  await turn();
  store.open();
  await turn();
  assert.equal(store.commits[0]!.filter((c) => c.op === 'message').length, 1);
  // a later commit that refers to it again records it again (the store keeps one copy)
  assert.equal(r.message(m), id);
  await turn();
  store.open();
  await turn();
  assert.equal(store.commits[1]!.filter((c) => c.op === 'message').length, 1);
});

test('what a change set undoes itself is never written', () => {
  const msg = (id: number) => ({ op: 'message' as const, msg: { id, topic: 't', payload: Buffer.from('x'), qos: 1 as const, retain: false } });
  const out = compact([
    msg(1),
    { op: 'inflight', clientId: 'a', ref: { packetId: 1, messageId: 1, qos: 2, retain: false, state: 'publish' } },
    { op: 'inflight', clientId: 'a', ref: { packetId: 1, messageId: 1, qos: 2, retain: false, state: 'pubrel' } },
    { op: 'inflightDone', clientId: 'a', packetId: 1 },
    msg(2),
    { op: 'enqueue', clientId: 'b', ref: { seq: 7, messageId: 2, qos: 1, retain: false } },
    { op: 'enqueue', clientId: 'c', ref: { seq: 8, messageId: 2, qos: 1, retain: false } },
    { op: 'dequeue', clientId: 'b', seq: 7 },
    { op: 'qos2', clientId: 'a', packetId: 9 },
    { op: 'qos2Done', clientId: 'a', packetId: 9 },
    // finishing what an earlier commit opened is written
    { op: 'inflightDone', clientId: 'a', packetId: 3 },
    { op: 'qos2Done', clientId: 'a', packetId: 4 },
  ]);
  assert.deepEqual(out.map((c) => c.op), ['message', 'enqueue', 'inflightDone', 'qos2Done']);
  assert.equal((out[0] as { msg: { id: number } }).msg.id, 2, 'message 1 is referenced by nothing left');
  assert.equal((out[1] as { clientId: string }).clientId, 'c');
});

test('a pair opened and closed in one commit is left out, also across turns that joined one commit; a closer of a restored entry is written', async () => {
  const store = new GatedStore();
  const r = new Recorder(store as unknown as Store, logger, 0);
  const enq = (seq: number): Change => ({ op: 'enqueue', clientId: 'a', ref: { seq, messageId: 1, qos: 1, retain: false } });
  const deq = (seq: number): Change => ({ op: 'dequeue', clientId: 'a', seq });
  const ops = (cs: Change[]): string[] => cs.map((c) => `${c.op}${c.op === 'enqueue' ? c.ref.seq : c.op === 'dequeue' ? c.seq : ''}`);
  // one turn: queued and taken off again (Session stamps the entry with the turn that opened it)
  let t = r.turn;
  r.add(enq(1));
  r.add(deq(1), t);
  r.add(enq(2));
  await turn();
  assert.equal(store.waiting, 1);
  // the next turns wait behind that commit and join one: seq 3 opened in one, closed in the next
  t = r.turn;
  r.add(enq(3));
  await turn();
  r.add(deq(3), t);
  r.add(deq(2), t - 1); // opened by the commit in flight: written
  r.add(deq(50), 0); // an entry restored from the store: written
  await turn();
  assert.equal(store.waiting, 1, 'the later turns wait as one commit');
  store.open();
  await turn();
  store.open();
  await r.drain();
  assert.deepEqual(store.commits.map(ops), [['enqueue2'], ['dequeue2', 'dequeue50']]);
  // a closer without the turn of its entry: compacted as if the entry could be of this turn
  r.add(enq(4));
  r.add(deq(4));
  r.add(deq(51), 0);
  await turn();
  store.open();
  await r.drain();
  assert.deepEqual(ops(store.commits[2]!), ['dequeue51']);
});

test('turns that nothing waits for share one commit; a turn that holds an acknowledgement issues it at once; drain() does not wait', async () => {
  const store = new GatedStore();
  // a delay longer than the test: whatever is issued here is issued by a held acknowledgement or drain()
  const r = new Recorder(store as unknown as Store, logger, 60_000);
  const c = new FakeConn();
  const infl = (packetId: number): Change => ({ op: 'inflight', clientId: 'a', ref: { packetId, messageId: 1, qos: 1, retain: false, state: 'publish' } });
  const done = (packetId: number): Change => ({ op: 'inflightDone', clientId: 'a', packetId });
  const ops = (cs: Change[]): string[] => cs.map((x) => `${x.op}${x.op === 'inflight' ? x.ref.packetId : x.op === 'inflightDone' ? x.packetId : x.op === 'qos2' ? x.packetId : ''}`);
  // three turns of a subscriber's window (sent, then acknowledged): nothing is acknowledged to anyone
  const t1 = r.turn;
  r.add(infl(1));
  r.add(infl(2));
  await turn();
  r.add(done(1), t1);
  await turn();
  r.add(done(2), t1);
  r.add(infl(3));
  await turn();
  await turn();
  assert.equal(store.waiting, 0, 'no commit issued: nothing waits for these turns');
  // a turn with an acknowledgement joins them and issues them at once
  r.add({ op: 'qos2', clientId: 'b', packetId: 7 });
  c.write(r, 'PUBREC 7', true);
  await turn();
  assert.equal(store.waiting, 1, 'the held acknowledgement issues one commit for all four turns');
  assert.deepEqual(c.sent, []);
  store.open();
  await turn();
  assert.deepEqual(c.sent, ['PUBREC 7']);
  assert.deepEqual(store.commits.map(ops), [['inflight3', 'qos27']], 'the pairs opened and closed within it are never written');
  // drain() issues a lazy commit at once
  r.add(done(3), 0);
  await turn();
  assert.equal(store.waiting, 0);
  const drained = r.drain();
  assert.ok(await until(() => store.waiting === 1), 'drain issues the lazy commit');
  store.open();
  await drained;
  assert.deepEqual(store.commits.map(ops)[1], ['inflightDone3']);
});

test('a commit that nothing waits for is issued when its delay has passed, without another turn', async () => {
  const store = new GatedStore();
  const r = new Recorder(store as unknown as Store, logger, 20);
  const t0 = performance.now();
  r.add({ op: 'unretain', topic: 'x' });
  assert.ok(await until(() => store.waiting === 1), 'issued by its timer');
  assert.ok(performance.now() - t0 >= 15, `not before its delay (${(performance.now() - t0).toFixed(1)} ms)`);
  store.open();
  await r.drain();
  assert.equal(store.commits.length, 1);
});

/**
 * A store that lets 4 commits be in flight and keeps the Store.pipeline rule like the SQLite
 * thread store: answers in order (a few ms later), and after a failure refuses everything until the
 * first commit issued after the caller saw it.
 */
class PipeStore {
  readonly kind = 'memory' as const;
  readonly pipeline = 4;
  readonly applied: string[] = [];
  readonly refused: string[] = [];
  readonly failOnce = new Set<string>();
  maxInFlight = 0;
  private inFlight = 0;
  private blocked = false;
  private resume = false;
  private tail: Promise<void> = Promise.resolve();
  commit(changes: readonly Change[]): Promise<void> {
    const label = changes.map((c) => (c.op === 'unretain' ? c.topic : c.op)).join('+');
    const resume = this.resume;
    this.resume = false;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const run = this.tail.then(() => new Promise<void>((resolve, reject) => setTimeout(() => {
      this.inFlight--;
      if (this.blocked && !resume) { this.refused.push(label); reject(new Error('refused')); return; }
      if (this.failOnce.delete(label)) { this.blocked = true; this.resume = true; reject(new Error('disk full')); return; }
      this.blocked = false;
      this.applied.push(label);
      resolve();
    }, 3)));
    this.tail = run.catch(() => undefined);
    return run;
  }
}

test('a commit that waits takes the later turns: a holder in two of its turns gets all its output once, in order; thousands of holders in one turn all get theirs', async () => {
  const store = new GatedStore();
  const r = new Recorder(store as unknown as Store, logger, 0);
  const a = new FakeConn();
  const b = new FakeConn();
  const c = new FakeConn();
  r.add({ op: 'qos2', clientId: 'a', packetId: 1 });
  a.write(r, 'a1', true);
  await turn(); // commit 1 is issued and waits
  r.add({ op: 'qos2', clientId: 'a', packetId: 2 });
  a.write(r, 'a2', true);
  a.write(r, 'a2+');
  b.write(r, 'b2', true);
  await turn(); // commit 2 waits for commit 1
  r.add({ op: 'qos2', clientId: 'a', packetId: 3 });
  a.write(r, 'a3', true);
  c.write(r, 'c3', true);
  const many = Array.from({ length: 5000 }, () => new FakeConn());
  many.forEach((m, i) => {
    r.add({ op: 'qos2', clientId: `m${i}`, packetId: 1 });
    m.write(r, `m${i}`, true);
  });
  await turn(); // this turn joins commit 2
  assert.equal(store.waiting, 1, 'one commit issued, the other waiting');
  store.open();
  await turn(); await turn();
  assert.deepEqual(a.sent, ['a1']);
  assert.deepEqual(b.sent, []);
  assert.ok(many.every((m) => m.sent.length === 0), 'nothing of the joined turn before its commit');
  store.open();
  await turn(); await turn();
  assert.equal(store.commits.length, 2);
  assert.equal(store.commits[1]!.length, 2 + 5000, 'the second commit holds both turns');
  assert.deepEqual(a.sent, ['a1', 'a2', 'a2+', 'a3']);
  assert.equal(a.held, undefined);
  assert.deepEqual(b.sent, ['b2']);
  assert.deepEqual(c.sent, ['c3']);
  assert.ok(many.every((m, i) => m.sent.length === 1 && m.sent[0] === `m${i}` && m.held === undefined), 'each of the 5,000 got its own output');
});

test('with a pipelining store, later turns commit while earlier ones are in flight; output is released in turn order', async () => {
  const store = new PipeStore();
  const r = new Recorder(store as unknown as Store, logger, 0);
  const c = new FakeConn();
  for (let i = 1; i <= 3; i++) {
    r.add({ op: 'unretain', topic: `t${i}` });
    c.write(r, `ack${i}`, true);
    c.write(r, `after${i}`);
    await turn();
  }
  assert.ok(store.maxInFlight >= 2, `commits overlapped (max in flight ${store.maxInFlight})`);
  await r.drain();
  assert.deepEqual(store.applied, ['t1', 't2', 't3']);
  assert.deepEqual(c.sent, ['ack1', 'after1', 'ack2', 'after2', 'ack3', 'after3']);
  assert.equal(c.held, undefined);
});

test('with a pipelining store, a failed commit is retried first and those behind it follow in order; nothing is released early', async () => {
  const store = new PipeStore();
  store.failOnce.add('t1');
  const r = new Recorder(store as unknown as Store, logger, 0);
  const c = new FakeConn();
  logs.length = 0;
  for (let i = 1; i <= 3; i++) {
    r.add({ op: 'unretain', topic: `t${i}` });
    c.write(r, `ack${i}`, true);
    await turn();
  }
  // bounded: the backoff after one failure is 50 ms
  const deadline = Math.round(performance.now()) + 3000;
  while (store.applied.length < 3 && Math.round(performance.now()) < deadline) {
    // ack2 and ack3 may never go before t1 is durable
    if (!store.applied.includes('t1')) assert.deepEqual(c.sent, []);
    await new Promise((x) => setTimeout(x, 5));
  }
  await r.drain();
  assert.ok(store.refused.includes('t2'), `t2 was issued behind t1 and refused (refused: ${store.refused.join(',')})`);
  assert.deepEqual(store.applied, ['t1', 't2', 't3'], 'applied once each, in order');
  assert.deepEqual(c.sent, ['ack1', 'ack2', 'ack3']);
  assert.equal(r.counters.failures, 1, 'only the real failure counts (refusals behind it are stale answers)');
  assert.equal(logs.filter((l) => l.includes('commit failed')).length, 1);
  assert.equal(r.isFailing, false);
});
