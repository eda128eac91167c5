/**
 * The SQLite store's commit log (src/store/sqlite-log.ts): records read back as appended; an append
 * that did not finish (a record cut short, or a last record whose checksum fails) is left out and
 * written over; a record that fails its checksum with more after it is corruption, named; records at
 * or below the seq a fold recorded (a broker killed between a fold's commit and the truncation of
 * the log) are not applied again. Bad inputs tried: a header cut short, a set cut short, a flipped
 * byte in the last record and in an earlier one, seqs out of order, stale records of a fold.
 */
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { encodeChanges } from '../../src/store/journal.js';
import { CommitLog, logPath, readLog } from '../../src/store/sqlite-log.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
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

async function collectIds(s: { loadSessions(): AsyncIterable<{ clientId: string }> }): Promise<string[]> {
  const out: string[] = [];
  for await (const x of s.loadSessions()) out.push(x.clientId);
  return out;
}
