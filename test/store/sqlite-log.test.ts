/**
 * The SQLite store's commit log (src/store/sqlite-log.ts): records read back as appended; an append
 * that did not finish (a record cut short, or a last record whose checksum fails) is left out and
 * written over; a record that fails its checksum with more after it is corruption, named; records at
 * or below the seq a fold recorded (a broker killed between a fold's commit and the truncation of
 * the log) are not applied again. Bad inputs tried: a header cut short, a set cut short, a flipped
 * byte in the last record and in an earlier one, seqs out of order, stale records of a fold.
 */
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { encodeChanges } from '../../src/store/journal.js';
import { CommitLog, logPath, olderLogPath, readLog } from '../../src/store/sqlite-log.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { openSqliteThreadStore } from '../../src/store/sqlite-thread.js';
import { StoreError, type Change } from '../../src/store/store.js';

const dir = await mkdtemp(join(tmpdir(), 'midge-sqlite-log-'));
let n = 0;
const file = (name = 'db'): string => join(dir, `${name}-${++n}.db`);

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const session = (clientId: string): Change => ({ op: 'session', session: { clientId, protocolVersion: 5, expiryInterval: 600 } });
const set = (clientId: string): Buffer => encodeChanges([session(clientId)]);

/** a log at `path` with the sets given, seqs 1, 2, ...; returns the offsets where each record starts */
function writeLog(path: string, sets: Buffer[]): number[] {
  const log = CommitLog.open(path, false, 0);
  const at: number[] = [];
  try {
    for (let i = 0; i < sets.length; i++) {
      at.push(statSync(path).size);
      log.append(i + 1, sets[i]!);
    }
  } finally {
    log.close();
  }
  return at;
}

describe('sqlite store: the commit log', () => {
  test('records read back in order, with their seqs; those at or below `after` are skipped', () => {
    const p = join(dir, 'plain.log');
    const sets = [set('a'), set('b'), set('c')];
    writeLog(p, sets);
    const all = readLog(p, 0);
    assert.deepEqual(all.records.map((r) => r.seq), [1, 2, 3]);
    assert.deepEqual(all.records.map((r) => r.set), sets);
    assert.equal(all.end, statSync(p).size);
    const later = readLog(p, 2);
    assert.deepEqual(later.records.map((r) => r.seq), [3]);
    assert.equal(later.skipped, 2);
    assert.deepEqual(readLog(join(dir, 'none.log'), 0), { records: [], end: 0, skipped: 0 });
  });

  test('an append that did not finish (header or set cut short, or a torn last record) is left out', () => {
    const p = join(dir, 'torn.log');
    const at = writeLog(p, [set('a'), set('b'), set('c')]);
    const whole = readFileSync(p);
    for (const cut of [at[2]! + 7, at[2]! + 16, whole.length - 1]) {
      writeFileSync(p, whole.subarray(0, cut));
      const r = readLog(p, 0);
      assert.deepEqual(r.records.map((x) => x.seq), [1, 2], `cut at ${cut}`);
      assert.equal(r.end, at[2], `cut at ${cut}: the next record goes where the torn one began`);
    }
    // the last record whole but with a byte of its set changed
    const torn = Buffer.from(whole);
    torn[torn.length - 1] ^= 0xff;
    writeFileSync(p, torn);
    assert.deepEqual(readLog(p, 0).records.map((x) => x.seq), [1, 2]);
  });

  test('a record that fails its checksum with more after it, or seqs out of order: an error naming the file and the offset', () => {
    const p = join(dir, 'bad.log');
    const at = writeLog(p, [set('a'), set('b'), set('c')]);
    const whole = readFileSync(p);
    const bad = Buffer.from(whole);
    bad[at[1]! + 20] ^= 0x01;
    writeFileSync(p, bad);
    assert.throws(() => readLog(p, 0), (err: unknown) => err instanceof StoreError && new RegExp(`^commit log ${p} is corrupt: the record at byte ${at[1]} fails its checksum`).test(err.message));
    // the same record twice (seq 1 after seq 1)
    writeFileSync(p, Buffer.concat([whole.subarray(0, at[1]!), whole.subarray(0, at[1]!)]));
    assert.throws(() => readLog(p, 0), /has seq 1 after 1/);
  });

  test('a store opened on a log with a torn end keeps what came before it and writes over the torn bytes', async () => {
    const f = file('torn');
    const s = await openSqliteStore({ file: f, foldMs: 60_000 });
    await s.commit([session('first')]);
    await s.commit([session('second')]);
    // killed part way through a third append (no close: nothing is folded)
    appendFileSync(logPath(f), Buffer.from([9, 0, 0, 0, 1, 2, 3]));
    (s as unknown as { log: CommitLog }).log.close();
    s.db.close();
    const again = await openSqliteStore({ file: f, foldMs: 60_000 });
    assert.equal((await again.loadSession('first'))?.clientId, 'first');
    assert.equal((await again.loadSession('second'))?.clientId, 'second');
    assert.equal(statSync(logPath(f)).size, 0, 'folded at open, the log is emptied');
    await again.commit([session('third')]);
    await again.close();
    // a log that holds only a torn record (its header says 5,000 bytes, 3,000 follow): emptied at open,
    // so that a shorter record written over it is not followed by the rest of the torn one
    const torn = Buffer.alloc(16 + 3_000, 0x5a);
    torn.writeUInt32LE(5_000, 0);
    writeFileSync(logPath(f), torn);
    const fourth = await openSqliteStore({ file: f });
    assert.equal(statSync(logPath(f)).size, 0, 'the torn bytes are gone');
    await fourth.close();
    const third = await openSqliteStore({ file: f });
    assert.deepEqual((await collectIds(third)).sort(), ['first', 'second', 'third']);
    await third.close();
  });

  test('records that a fold already applied (killed before the log was emptied) are not applied again; later ones are', async () => {
    const f = file('stale');
    const s = await openSqliteStore({ file: f, foldMs: 60_000 });
    await s.commit([
      session('a'),
      { op: 'message', msg: { id: 1, topic: 't', payload: Buffer.from('once'), qos: 1, retain: false } },
      { op: 'enqueue', clientId: 'a', ref: { seq: 1, messageId: 1, qos: 1, retain: false } },
    ]);
    const first = readFileSync(logPath(f)); // record seq 1
    s.messageCount(); // a read folds: seq 1 is in the tables, the log emptied
    assert.equal(statSync(logPath(f)).size, 0);
    await s.commit([{ op: 'dequeue', clientId: 'a', seq: 1 }]); // seq 2: delivered
    s.messageCount();
    (s as unknown as { log: CommitLog }).log.close();
    s.db.close();
    // the log as a broker killed between a fold's commit and the truncation would leave it (record 1,
    // folded), then a commit after the fold (record 3)
    const scratch = join(dir, 'scratch.log');
    const log = CommitLog.open(scratch, false, 0);
    log.append(3, encodeChanges([session('after-fold')]));
    log.close();
    writeFileSync(logPath(f), Buffer.concat([first, readFileSync(scratch)]));
    const again = await openSqliteStore({ file: f });
    assert.deepEqual((await again.loadWindow('a')).queued, [], 'the delivered message is not queued again');
    assert.equal(again.messageCount(), 0, 'nor stored again');
    assert.deepEqual((await collectIds(again)).sort(), ['a', 'after-fold']);
    await again.close();
  });
});

describe('sqlite store on its worker thread: the commit log written on the broker thread', () => {
  for (const fsync of [false, true]) test(`the log moved aside while folds run behind the commits; a store killed with both logs loses nothing${fsync ? ' (fsync: moved aside while an fdatasync of it runs, too)' : ''}`, { timeout: 60_000 }, async () => {
    const f = file('rotate');
    // every fold finds later records in a log of any length: it moves the log aside, the next fold drops it
    const s = await openSqliteThreadStore({ file: f, foldMs: 2, logRotateBytes: 1, fsync });
    const inner = s as unknown as { worker: { terminate(): Promise<number> }; log: CommitLog; logMoves: number };
    let n = 0;
    try {
      // until the log was moved aside a few times and the older one is there at the kill (bounded)
      for (let i = 0; i < 5_000 && !(inner.logMoves >= 3 && existsSync(olderLogPath(f))); i++) {
        await s.commit([
          session(`c${i}`),
          { op: 'message', msg: { id: i + 1, topic: 't', payload: Buffer.alloc(100, i), qos: 1, retain: false } },
          { op: 'enqueue', clientId: `c${i}`, ref: { seq: i + 1, messageId: i + 1, qos: 1, retain: false } },
        ]);
        n = i + 1;
        // a later set refers to a message an earlier one recorded (a queued message sent in a later turn)
        if (i > 0 && i % 3 === 0) {
          await s.commit([
            { op: 'dequeue', clientId: `c${i - 1}`, seq: i },
            { op: 'inflight', clientId: `c${i - 1}`, ref: { packetId: 1, messageId: i, qos: 1, retain: false, state: 'publish' } },
          ]);
        }
        if (i % 20 === 0) await new Promise((r) => setTimeout(r, 5)); // room for folds
      }
      assert.ok(inner.logMoves >= 3, `the log was moved aside ${inner.logMoves} times in ${n} commits`);
      assert.ok(existsSync(olderLogPath(f)), 'the older log is there at the kill');
    } finally {
      // killed: the worker stops without folding, the logs stay as they are
      await inner.worker.terminate();
      inner.log.close();
    }
    const again = await openSqliteStore({ file: f });
    try {
      assert.equal((await collectIds(again)).length, n);
      for (let i = 1; i < n; i++) {
        const w = await again.loadWindow(`c${i - 1}`);
        if (i % 3 === 0) {
          assert.deepEqual(w.queued, [], `c${i - 1}: dequeued`);
          assert.deepEqual(w.inflight.map((x) => x.messageId), [i], `c${i - 1}: in flight`);
        } else {
          assert.deepEqual(w.queued.map((x) => x.messageId), [i], `c${i - 1}: queued`);
        }
      }
      assert.equal(existsSync(olderLogPath(f)), false, 'opening folded both logs and removed the older one');
    } finally {
      await again.close();
    }
  });

  test('fsync: the commits of one turn share one fdatasync, run off the event loop; those of the next turn wait for the next', async () => {
    const f = file('group');
    const s = await openSqliteThreadStore({ file: f, fsync: true });
    const log = (s as unknown as { log: CommitLog }).log;
    const sync = log.sync.bind(log);
    let syncs = 0;
    log.sync = (done) => {
      syncs++;
      sync(done);
    };
    try {
      // the Recorder's pipeline issues at most a few per turn; 40 here, then 40 in a later turn
      const first = Array.from({ length: 40 }, (_, i) => s.commit([session(`a${i}`)]));
      assert.equal(syncs, 0, 'no fdatasync before the turn is over');
      await Promise.all(first);
      assert.equal(syncs, 1, 'one fdatasync for the turn');
      const second = Array.from({ length: 40 }, (_, i) => s.commit([session(`b${i}`)]));
      await Promise.all(second);
      assert.equal(syncs, 2);
    } finally {
      await s.close();
    }
    assert.equal((await storedSessions(f)).length, 80);
  });

  test('fsync: an fdatasync that fails (EIO) fails the commits that waited for it with a StoreError naming the file; the retry that follows is applied', async () => {
    const f = file('syncfail');
    const s = await openSqliteThreadStore({ file: f, fsync: true });
    const log = (s as unknown as { log: CommitLog }).log;
    const sync = log.sync.bind(log);
    let failNext = true;
    log.sync = (done) => {
      if (failNext) {
        failNext = false;
        sync(() => done(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })));
      } else sync(done);
    };
    try {
      const results = await Promise.allSettled([s.commit([session('x1')]), s.commit([session('x2')])]);
      for (const r of results) {
        assert.equal(r.status, 'rejected');
        const err = (r as PromiseRejectedResult).reason as Error;
        assert.ok(err instanceof StoreError, String(err));
        assert.ok(err.message.includes(f), err.message);
      }
      await s.commit([session('x1'), session('x2')]); // the caller's retry
      await s.commit([session('x3')]);
    } finally {
      await s.close();
    }
    assert.deepEqual((await storedSessions(f)).sort(), ['x1', 'x2', 'x3']);
  });

  test('after a restart, draining a loaded window refers to its stored messages without a check by the worker; an unknown one is still checked', async () => {
    const f = file('restored');
    const first = await openSqliteStore({ file: f });
    const fill: Change[] = [session('c')];
    for (let i = 1; i <= 5; i++) {
      fill.push({ op: 'message', msg: { id: i, topic: 't', payload: Buffer.from([i]), qos: 1, retain: false } });
      fill.push({ op: 'enqueue', clientId: 'c', ref: { seq: i, messageId: i, qos: 1, retain: false } });
    }
    await first.commit(fill);
    await first.close();
    const s = await openSqliteThreadStore({ file: f });
    const inner = s as unknown as { call(req: { op: string }): Promise<unknown> };
    const call = inner.call.bind(s);
    const ops: string[] = [];
    inner.call = (req) => {
      ops.push(req.op);
      return call(req);
    };
    try {
      for await (const _ of s.loadSessions()) { /* as a restoring broker does */ }
      const w = await s.loadWindow('c');
      assert.deepEqual(w.queued.map((q) => q.messageId), [1, 2, 3, 4, 5]);
      // the queue's first message goes in flight (Session.sendNew: it refers to the stored message)
      await s.commit([{ op: 'dequeue', clientId: 'c', seq: 1 }, { op: 'inflight', clientId: 'c', ref: { packetId: 1, messageId: 1, qos: 1, retain: false, state: 'publish' } }]);
      assert.equal(ops.includes('check'), false, `ops: ${ops.join(', ')}`);
      await assert.rejects(s.commit([{ op: 'enqueue', clientId: 'c', ref: { seq: 9, messageId: 4242, qos: 1, retain: false } }]), StoreError);
      assert.equal(ops.includes('check'), true);
    } finally {
      await s.close();
    }
  });

  test('a reference to a message that no set recorded and the tables do not hold is refused, and nothing of the set is written', async () => {
    const f = file('refs');
    const s = await openSqliteThreadStore({ file: f });
    await assert.rejects(
      s.commit([session('x'), { op: 'enqueue', clientId: 'x', ref: { seq: 1, messageId: 4242, qos: 1, retain: false } }]),
      (err: unknown) => err instanceof StoreError && /message 4242 is referenced but not stored/.test(err.message),
    );
    await s.commit([session('y')]); // the caller's next commit (its retry, here another set) goes
    assert.equal(await s.loadSession('x'), undefined);
    assert.equal((await s.loadSession('y'))?.clientId, 'y');
    await s.close();
    assert.equal(statSync(logPath(f)).size, 0, 'close folds the log and empties it');
  });

  test('two logs (one moved aside) are read in order; an older log whose last seq is not before the newer one is corruption', async () => {
    const f = file('two');
    const s = await openSqliteStore({ file: f });
    await s.close();
    const older = CommitLog.open(olderLogPath(f), false, 0);
    older.append(1, encodeChanges([session('a')]));
    older.append(2, encodeChanges([{ op: 'dropSession', clientId: 'a' }]));
    older.close();
    const newer = CommitLog.open(logPath(f), false, 0);
    newer.append(3, encodeChanges([session('a')]));
    newer.close();
    const again = await openSqliteStore({ file: f });
    assert.deepEqual(await collectIds(again), ['a'], 'seq 3 after seq 2: the session is there');
    assert.equal(existsSync(olderLogPath(f)), false);
    await again.close();
    const f2 = file('two-bad');
    await (await openSqliteStore({ file: f2 })).close();
    const o2 = CommitLog.open(olderLogPath(f2), false, 0);
    o2.append(5, encodeChanges([session('a')]));
    o2.close();
    const n2 = CommitLog.open(logPath(f2), false, 0);
    n2.append(4, encodeChanges([session('b')]));
    n2.close();
    await assert.rejects(openSqliteStore({ file: f2 }), /is not after the last of/);
  });
});

/** the client ids of the sessions stored in `f` (opened and closed again) */
async function storedSessions(f: string): Promise<string[]> {
  const s = await openSqliteStore({ file: f });
  try {
    return await collectIds(s);
  } finally {
    await s.close();
  }
}

async function collectIds(s: { loadSessions(): AsyncIterable<{ clientId: string }> }): Promise<string[]> {
  const out: string[] = [];
  for await (const x of s.loadSessions()) out.push(x.clientId);
  return out;
}
