/**
 * `midge db check|compact|dump FILE`, run through the real CLI (node dist/src/cli/main.js db ...).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { SCHEMA_VERSION } from '../../src/store/sqlite-file.js';
import { logPath, readLog } from '../../src/store/sqlite-log.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Change } from '../../src/store/store.js';
import { killAll, run, spawnLines, type RunResult } from '../helpers/proc.js';

const MIDGE = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const CHILD = fileURLToPath(new URL('../store/_child.js', import.meta.url));
const dir = await mkdtemp(join(tmpdir(), 'midge-db-cli-'));
let n = 0;
const file = (name = 'db'): string => join(dir, `${name}-${++n}.db`);

after(async () => {
  await killAll();
  await rm(dir, { recursive: true, force: true });
});

const midgeDb = (...args: string[]): Promise<RunResult> => run(process.execPath, [MIDGE, 'db', ...args], { timeoutMs: 30_000 });

/** A file with two sessions, a subscription, a queued and an in-flight message, a QoS 2 id, a retained message and a will. */
async function populated(): Promise<string> {
  const f = file();
  const s = await openSqliteStore({ file: f });
  const changes: Change[] = [
    { op: 'session', session: { clientId: 'a', protocolVersion: 5, expiryInterval: 60, username: 'alice', disconnectedAt: 1000 } },
    { op: 'session', session: { clientId: 'b', protocolVersion: 4, expiryInterval: 0xffffffff } },
    { op: 'sub', clientId: 'a', sub: { filter: 'x/#', qos: 2, noLocal: true, retainAsPublished: false, retainHandling: 1, subscriptionId: 4 } },
    {
      op: 'message',
      msg: { id: 7, topic: 'x/y', payload: Buffer.from([0, 1, 255]), qos: 2, retain: true, properties: { correlationData: Buffer.from('cd'), userProperties: [['k', 'v']] }, expiresAt: 99 },
    },
    { op: 'message', msg: { id: 8, topic: 'x/z', payload: Buffer.from('hello'), qos: 1, retain: false } },
    { op: 'retain', topic: 'x/y', messageId: 7 },
    { op: 'enqueue', clientId: 'a', ref: { seq: 3, messageId: 7, qos: 2, retain: false, subIds: [4] } },
    { op: 'inflight', clientId: 'b', ref: { packetId: 12, messageId: 8, qos: 1, retain: false, state: 'publish' } },
    { op: 'qos2', clientId: 'b', packetId: 5 },
    { op: 'will', will: { clientId: 'a', will: { topic: 'w', payload: Buffer.from('bye'), qos: 1, retain: false }, fireAt: 5000, listenerPort: 1883 } },
  ];
  await s.commit(changes);
  await s.close();
  return f;
}

describe('midge db', () => {
  test('midge --help lists db; midge db --help prints the usage', async () => {
    const top = await run(process.execPath, [MIDGE, '--help'], { timeoutMs: 10_000 });
    assert.equal(top.code, 0);
    assert.match(top.stdout, /^ {2}db {7}check, compact or dump a persistence database/m);
    const r = await midgeDb('--help');
    assert.equal(r.code, 0);
    assert.match(r.stdout, /midge db check FILE/);
    assert.match(r.stdout, /midge db compact FILE/);
    assert.match(r.stdout, /midge db dump FILE/);
  });

  test('usage errors exit 1', async () => {
    for (const args of [[], ['check'], ['frob', 'x.db'], ['check', 'a.db', 'b.db']]) {
      const r = await midgeDb(...args);
      assert.equal(r.code, 1, `args ${JSON.stringify(args)}`);
      assert.match(r.stderr, /Usage: midge db/);
    }
    assert.match((await midgeDb('frob', 'x.db')).stderr, /unknown command 'frob'/);
  });

  test('check: a good file, with its schema version and counts', async () => {
    const f = await populated();
    const r = await midgeDb('check', f);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      `${f}: schema version ${SCHEMA_VERSION}, integrity ok\n` +
        'sessions 2, subscriptions 1, queued 1, in-flight 1, incoming QoS 2 1, messages 2 (8 payload bytes), retained 1, wills 1\n' +
        `midge db check: ${f} is OK\n`,
    );
  });

  test('check: missing, garbage, empty and foreign files are not OK', async () => {
    const missing = join(dir, 'missing.db');
    let r = await midgeDb('check', missing);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`${missing}: no such file\\n.*${missing} is NOT OK`));

    const garbage = file('garbage');
    await writeFile(garbage, Buffer.alloc(4096, 0x5a));
    r = await midgeDb('check', garbage);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`${garbage} is not a database, or it is corrupt`));

    const empty = file('empty');
    await writeFile(empty, '');
    r = await midgeDb('check', empty);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`${empty} is not a Midge database`));

    const foreign = file('foreign');
    const raw = new Database(foreign);
    raw.exec('CREATE TABLE t (x)');
    raw.close();
    r = await midgeDb('check', foreign);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`${foreign} is not a Midge database`));
    assert.equal((await midgeDb('dump', foreign)).code, 1);
    assert.equal((await midgeDb('compact', foreign)).code, 1);
  });

  test('check: a damaged page fails the integrity check', async () => {
    const f = file('damaged');
    const s = await openSqliteStore({ file: f });
    const ch: Change[] = [];
    for (let i = 1; i <= 50; i++) {
      ch.push({ op: 'message', msg: { id: i, topic: `t/${i}`, payload: Buffer.alloc(2000, i), qos: 1, retain: true } });
      ch.push({ op: 'retain', topic: `t/${i}`, messageId: i });
    }
    await s.commit(ch);
    const root = s.db.prepare("SELECT rootpage FROM sqlite_master WHERE name = 'retained'").pluck().get() as number;
    const pageSize = s.db.pragma('page_size', { simple: true }) as number;
    await s.close();
    assert.equal((await midgeDb('check', f)).code, 0, 'fine before the damage');
    const bytes = await readFile(f);
    // the b-tree page header's first-freeblock offset, pointing nowhere sensible
    bytes.writeUInt16BE(0x0ff0, (root - 1) * pageSize + 1);
    await writeFile(f, bytes);
    const r = await midgeDb('check', f);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /integrity FAILED/);
    assert.match(r.stderr, /midge db check: integrity: .*corrupt/i);
    assert.match(r.stderr, new RegExp(`${f} is NOT OK`));
  });

  test('check: wrong reference counts and dangling references are reported', async () => {
    const f = await populated();
    const raw = new Database(f);
    raw.exec('UPDATE messages SET refs = 5 WHERE id = 8');
    raw.exec("INSERT INTO queue (client_id, seq, message_id, qos, retain) VALUES ('a', 4, 999, 1, 0)");
    raw.close();
    const r = await midgeDb('check', f);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /message 8 counts 5 references but has 1/);
    assert.match(r.stderr, /1 queue, in-flight or retained entries refer to messages that are not stored/);
  });

  test('a file in use by a running broker is refused by every command', async () => {
    const f = await populated();
    const holder = spawnLines(process.execPath, [CHILD, 'hold', f]);
    await holder.waitForLine(/"open":true/, 10_000);
    for (const cmd of ['check', 'compact', 'dump']) {
      const r = await midgeDb(cmd, f);
      assert.equal(r.code, 1, cmd);
      assert.match(r.stderr, new RegExp(`database ${f} is locked by another process \\(is another broker using it\\?\\)`), cmd);
      assert.equal(r.stdout, '', cmd);
    }
    holder.kill('SIGKILL');
    await holder.exited;
    assert.equal((await midgeDb('check', f)).code, 0);
  });

  test('dump: one JSON object per line for every stored thing', async () => {
    const f = await populated();
    const r = await midgeDb('dump', f);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines, [
      { type: 'meta', schemaVersion: SCHEMA_VERSION, lastMessageId: 8, lastSeq: 3 },
      { type: 'session', clientId: 'a', protocolVersion: 5, username: 'alice', expiryInterval: 60, disconnectedAt: 1000 },
      { type: 'session', clientId: 'b', protocolVersion: 4, expiryInterval: 0xffffffff },
      { type: 'subscription', clientId: 'a', filter: 'x/#', qos: 2, noLocal: true, retainAsPublished: false, retainHandling: 1, subscriptionId: 4 },
      {
        type: 'message', id: 7, topic: 'x/y', payload: Buffer.from([0, 1, 255]).toString('base64'), qos: 2, retain: true,
        properties: { correlationData: { $b64: Buffer.from('cd').toString('base64') }, userProperties: [['k', 'v']] }, expiresAt: 99, refs: 2,
      },
      { type: 'message', id: 8, topic: 'x/z', payload: Buffer.from('hello').toString('base64'), qos: 1, retain: false, refs: 1 },
      { type: 'queued', clientId: 'a', seq: 3, messageId: 7, qos: 2, retain: false, subIds: [4] },
      { type: 'inflight', clientId: 'b', packetId: 12, messageId: 8, qos: 1, retain: false, state: 'publish' },
      { type: 'incomingQos2', clientId: 'b', packetId: 5 },
      { type: 'retained', topic: 'x/y', messageId: 7 },
      { type: 'will', clientId: 'a', topic: 'w', payload: Buffer.from('bye').toString('base64'), qos: 1, retain: false, fireAt: 5000, listenerPort: 1883 },
    ]);
  });

  test('a file left by a killed broker: check, dump and compact fold its journal; check and dump leave the file as it was', async () => {
    const f = file('killed');
    const p = spawnLines(process.execPath, [CHILD, 'commit', f]);
    await p.waitForLine(/"committed":true/, 10_000);
    p.kill('SIGKILL');
    await p.exited;
    // the commit log's records not folded yet (readLog skips those at or below the seq folded)
    const rows = (): number => {
      const raw = new Database(f, { readonly: true });
      try {
        const folded = raw.prepare("SELECT value FROM meta WHERE key = 'journal_folded'").pluck().get() as number;
        return readLog(logPath(f), folded).records.length + (raw.prepare('SELECT count(*) FROM journal').pluck().get() as number);
      } finally {
        raw.close();
      }
    };
    assert.equal(rows(), 1, 'the commit is in the journal, not folded');
    const c = await midgeDb('check', f);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /journal: 1 commits not folded into the tables yet/);
    assert.match(c.stdout, /sessions 1, subscriptions 0, queued 1, in-flight 0, incoming QoS 2 0, messages 1 \(7 payload bytes\)/);
    const d = await midgeDb('dump', f);
    assert.equal(d.code, 0, d.stderr);
    const lines = d.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines.find((l) => l.type === 'queued'), { type: 'queued', clientId: 'survivor', seq: 1, messageId: 1, qos: 1, retain: false });
    assert.equal(rows(), 1, 'check and dump did not change the file');
    assert.equal((await midgeDb('compact', f)).code, 0);
    assert.equal(rows(), 0, 'compact folded it');
    const after = await midgeDb('check', f);
    assert.doesNotMatch(after.stdout, /journal:/);
    assert.match(after.stdout, /queued 1,/);
  });

  test('a journal row that is not a change set (corrupt): check and a broker opening the file name it', async () => {
    const f = file('bad-journal');
    await (await openSqliteStore({ file: f })).close();
    const raw = new Database(f);
    raw.prepare('INSERT INTO journal (seq, data) VALUES (7, ?)').run(Buffer.from([1, 0, 0xff]));
    raw.close();
    const c = await midgeDb('check', f);
    assert.equal(c.code, 1);
    assert.match(c.stderr, /journal entry 7 is corrupt \(truncated at byte 2 of 3\)/);
    await assert.rejects(openSqliteStore({ file: f }), (err: unknown) => err instanceof Error && new RegExp(`database ${f}: journal entry 7 is corrupt`).test(err.message));
  });

  test('compact: reports the size before and after, and the state is kept', async () => {
    const f = file('compact');
    const s = await openSqliteStore({ file: f });
    const big: Change[] = [{ op: 'session', session: { clientId: 'keep', protocolVersion: 5, expiryInterval: 1 } }];
    for (let i = 1; i <= 200; i++) {
      big.push({ op: 'message', msg: { id: i, topic: `t/${i}`, payload: Buffer.alloc(4000, i), qos: 1, retain: true } });
      big.push({ op: 'retain', topic: `t/${i}`, messageId: i });
    }
    await s.commit(big);
    s.messageCount(); // a read folds the commit log: the 200 messages are in the tables
    const free: Change[] = [];
    for (let i = 2; i <= 200; i++) free.push({ op: 'unretain', topic: `t/${i}` });
    await s.commit(free);
    await s.close();
    const before = (await stat(f)).size;
    const r = await midgeDb('compact', f);
    assert.equal(r.code, 0, r.stderr);
    const m = /^(\S+): (\d+) bytes before, (\d+) bytes after compacting\n$/.exec(r.stdout);
    assert.ok(m, r.stdout);
    assert.equal(m[1], f);
    assert.ok(Number(m[2]) >= before, `${m[2]} < ${before}`);
    assert.ok(Number(m[3]) < Number(m[2]) / 10, `not smaller: ${r.stdout}`);
    assert.equal((await stat(f)).size, Number(m[3]));
    const again = await openSqliteStore({ file: f });
    assert.equal((await again.loadSession('keep'))?.clientId, 'keep');
    assert.equal(again.messageCount(), 1);
    await again.close();
    assert.equal((await midgeDb('check', f)).code, 0);
  });
});
