/**
 * What only a database file can do wrong: locking between processes, bad files and directories at
 * open, a full disk at commit, schema versions and migrations, kill -9, lazy loading of the module.
 * Read-only and full file systems need a private mount namespace (`unshare -m`, as root); those
 * tests are skipped where it is not available.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { StoreError } from '../../src/store/store.js';
import { APPLICATION_ID, MIGRATIONS, migrate, openDatabase, SCHEMA_V1, SCHEMA_VERSION, type Migration } from '../../src/store/sqlite-file.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { killAll, run, spawnLines } from '../helpers/proc.js';
import { collect, snapshot } from './contract.js';

const CHILD = fileURLToPath(new URL('./_child.js', import.meta.url));
const dir = await mkdtemp(join(tmpdir(), 'midge-sqlite-'));
let n = 0;
const file = (name = 'db'): string => join(dir, `${name}-${++n}.db`);

after(async () => {
  await killAll();
  await rm(dir, { recursive: true, force: true });
});

const CAN_UNSHARE = process.platform === 'linux' && spawnSync('unshare', ['-m', 'true'], { timeout: 5000 }).status === 0;

/** Runs the child script in a new mount namespace after `setup` (shell commands). */
async function childIn(setup: string, args: string[]): Promise<Array<Record<string, unknown>>> {
  const cmd = `${setup} && exec ${JSON.stringify(process.execPath)} ${[CHILD, ...args].map((a) => JSON.stringify(a)).join(' ')}`;
  const r = await run('unshare', ['-m', 'sh', '-c', cmd], { timeoutMs: 20_000 });
  assert.equal(r.code, 0, `child failed: ${r.stderr}`);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function child(args: string[]): Promise<Array<Record<string, unknown>>> {
  const r = await run(process.execPath, [CHILD, ...args], { timeoutMs: 20_000 });
  assert.equal(r.code, 0, `child failed: ${r.stderr}`);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Asserts that `p` rejects with a StoreError naming `path` and matching `re`. */
async function refuses(p: Promise<unknown>, path: string, re: RegExp): Promise<StoreError> {
  let caught: unknown;
  await p.then(
    () => assert.fail('expected a StoreError'),
    (err: unknown) => (caught = err),
  );
  assert.ok(caught instanceof StoreError, `not a StoreError: ${String(caught)}`);
  assert.ok(caught.message.includes(path), `the message does not name ${path}: ${caught.message}`);
  assert.match(caught.message, re);
  return caught;
}

describe('sqlite store: one process at a time', () => {
  test('a second process is refused while the first holds the file, and gets it after the first is killed', async () => {
    const f = file();
    const holder = spawnLines(process.execPath, [CHILD, 'hold', f]);
    await holder.waitForLine(/"open":true/, 10_000);
    // this process is the second
    const err = await refuses(openSqliteStore({ file: f }), f, /is locked by another process \(is another broker using it\?\)/);
    assert.equal(err.code, 'SQLITE_BUSY');
    holder.kill('SIGKILL');
    await holder.exited;
    const s = await openSqliteStore({ file: f });
    // and now the other way round: this process holds it, a child is refused
    const [r] = await child(['open', f]);
    assert.equal(r!.name, 'StoreError');
    assert.equal(r!.error, `database ${f} is locked by another process (is another broker using it?)`);
    await s.close();
    assert.deepEqual(await child(['open', f]), [{ ok: true }]);
  });

  test('what was committed survives kill -9 (synchronous=NORMAL and FULL)', async () => {
    for (const fsync of ['0', '1']) {
      const f = file();
      const p = spawnLines(process.execPath, [CHILD, 'commit', f], { env: { ...process.env, MIDGE_TEST_FSYNC: fsync } });
      await p.waitForLine(/"committed":true/, 10_000);
      p.kill('SIGKILL');
      await p.exited;
      const s = await openSqliteStore({ file: f });
      assert.deepEqual(await s.loadSession('survivor'), { clientId: 'survivor', protocolVersion: 5, expiryInterval: 60 });
      const w = await s.loadWindow('survivor');
      assert.deepEqual(w.queued.map((q) => q.message.payload.toString()), ['kill -9']);
      await s.close();
    }
  });

  test('the pragmas: WAL, exclusive locking, synchronous NORMAL by default and FULL with fsync', async () => {
    const a = await openSqliteStore({ file: file() });
    assert.equal(a.db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(a.db.pragma('locking_mode', { simple: true }), 'exclusive');
    assert.equal(a.db.pragma('synchronous', { simple: true }), 1);
    assert.equal(a.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    assert.equal(a.db.pragma('application_id', { simple: true }), APPLICATION_ID);
    const b = await openSqliteStore({ file: file(), fsync: true });
    assert.equal(b.db.pragma('synchronous', { simple: true }), 2);
    await a.close();
    await b.close();
  });
});

describe('sqlite store: bad files and places at open', () => {
  test('a corrupt file (garbage) is refused as not a database', async () => {
    const f = file('garbage');
    const junk = Buffer.alloc(8192);
    for (let i = 0; i < junk.length; i++) junk[i] = (i * 7919 + 13) & 0xff;
    await writeFile(f, junk);
    const err = await refuses(openSqliteStore({ file: f }), f, /is not a database, or it is corrupt/);
    assert.equal(err.code, 'SQLITE_NOTADB');
  });

  test('a file whose header is intact but whose pages are garbage is refused', async () => {
    const f = file('torn');
    const s = await openSqliteStore({ file: f });
    await s.close();
    const { readFile } = await import('node:fs/promises');
    const bytes = await readFile(f);
    assert.ok(bytes.length >= 4096, `file of ${bytes.length} bytes`);
    // keep the 100-byte header, overwrite the schema page behind it
    bytes.fill(0xa5, 100, Math.min(bytes.length, 4096));
    await writeFile(f, bytes);
    await refuses(openSqliteStore({ file: f }), f, /corrupt|not a database/);
  });

  test('a directory that does not exist', async () => {
    const f = join(dir, 'no-such-dir', 'x.db');
    await refuses(openSqliteStore({ file: f }), f, /its directory .*no-such-dir does not exist/);
  });

  test('a path under a regular file', async () => {
    const plain = file('plain');
    await writeFile(plain, 'not a directory');
    const f = join(plain, 'x.db');
    await refuses(openSqliteStore({ file: f }), f, /a part of its path is not a directory/);
  });

  test('a directory given as the file', async () => {
    const d = join(dir, `adir-${++n}`);
    await mkdir(d);
    await refuses(openSqliteStore({ file: d }), d, /it is a directory/);
  });

  test('a file that is not a Midge database (another application\'s tables)', async () => {
    const f = file('foreign');
    const raw = new Database(f);
    raw.exec('CREATE TABLE people (name TEXT)');
    raw.close();
    await refuses(openSqliteStore({ file: f }), f, /is not a Midge database/);
    const after = new Database(f);
    assert.equal(after.pragma('journal_mode', { simple: true }), 'delete', 'the file was left as it was');
    assert.equal(after.pragma('user_version', { simple: true }), 0);
    after.close();
  });

  test('read-only directory, read-only file (a read-only bind mount)', { skip: !CAN_UNSHARE && 'unshare -m is not available' }, async () => {
    const d = join(dir, `ro-${++n}`);
    await mkdir(d);
    const existing = join(d, 'existing.db');
    await (await openSqliteStore({ file: existing })).close();
    const ro = `mount --bind ${JSON.stringify(d)} ${JSON.stringify(d)} && mount -o remount,ro,bind ${JSON.stringify(d)}`;
    const [r1] = await childIn(ro, ['open', join(d, 'new.db')]);
    assert.equal(r1!.name, 'StoreError');
    assert.match(String(r1!.error), new RegExp(`^cannot open database ${join(d, 'new.db')}: its directory ${d} is not writable \\(EROFS`));
    const [r2] = await childIn(ro, ['open', existing]);
    assert.equal(r2!.name, 'StoreError');
    assert.match(String(r2!.error), new RegExp(`^cannot open database ${existing}: its directory ${d} is not writable \\(EROFS`));
    // only the file read-only, its directory writable
    const roFile = `mount --bind ${JSON.stringify(existing)} ${JSON.stringify(existing)} && mount -o remount,ro,bind ${JSON.stringify(existing)}`;
    const [r3] = await childIn(roFile, ['open', existing]);
    assert.equal(r3!.name, 'StoreError');
    assert.match(String(r3!.error), new RegExp(`^cannot open database ${existing}: the file is not writable \\(EROFS`));
  });
});

describe('sqlite store: a full disk', () => {
  test('max_page_count reached: the commit rejects with SQLITE_FULL, changes nothing, and a later commit works once there is room', async () => {
    const f = file('full');
    // commits straight to the tables (a commit that goes to the log meets a full disk as ENOSPC: the tmpfs test below)
    const s = await openSqliteStore({ file: f, mode: 'direct' });
    await s.commit([{ op: 'session', session: { clientId: 'a', protocolVersion: 5, expiryInterval: 0 } }]);
    const pages = s.db.pragma('page_count', { simple: true }) as number;
    s.db.pragma(`max_page_count = ${pages + 20}`);
    const payload = Buffer.alloc(32 * 1024, 1);
    let failed: StoreError | undefined;
    let id = 0;
    let committed = 0;
    for (let i = 0; i < 50 && failed === undefined; i++) {
      try {
        await s.commit([
          { op: 'message', msg: { id: ++id, topic: 'x', payload, qos: 1, retain: false } },
          { op: 'enqueue', clientId: 'a', ref: { seq: id, messageId: id, qos: 1, retain: false } },
        ]);
        committed++;
      } catch (err) {
        assert.ok(err instanceof StoreError, String(err));
        failed = err;
      }
    }
    assert.ok(failed !== undefined, 'the limit was never reached');
    assert.equal(failed.code, 'SQLITE_FULL');
    assert.match(failed.message, new RegExp(`^cannot write database ${f}: disk full`));
    s.db.pragma('max_page_count = 1000000');
    // every commit that resolved is there, in order; the refused ones left nothing
    const queued = (await s.loadWindow('a')).queued.map((q) => q.messageId);
    assert.deepEqual(queued, Array.from({ length: committed }, (_, i) => i + 1));
    await s.commit([
      { op: 'message', msg: { id, topic: 'x', payload, qos: 1, retain: false } },
      { op: 'enqueue', clientId: 'a', ref: { seq: id, messageId: id, qos: 1, retain: false } },
    ]);
    assert.equal((await s.loadWindow('a')).queued.length, committed + 1);
    await s.close();
    const again = await openSqliteStore({ file: f });
    assert.equal((await again.loadWindow('a')).queued.length, committed + 1);
    await again.close();
  });

  test('a real full file system (a 1 MiB tmpfs), then room after it grows', { skip: !CAN_UNSHARE && 'unshare -m is not available' }, async () => {
    const d = join(dir, `tmpfs-${++n}`);
    await mkdir(d);
    const lines = await childIn(`mount -t tmpfs -o size=1m tmpfs ${JSON.stringify(d)}`, ['fill', join(d, 'f.db'), d]);
    const failure = lines[0]!.failure as { code: string; error: string; name: string; at: number };
    assert.equal(failure.name, 'StoreError');
    // the commit log's append (ENOSPC), or SQLite's if a fold came first (SQLITE_FULL)
    assert.ok(failure.code === 'ENOSPC' || failure.code === 'SQLITE_FULL', failure.code);
    assert.match(failure.error, new RegExp(`^cannot write database .*f\\.db: disk full`));
    assert.ok(failure.at > 1 && failure.at < 200, `failed at ${failure.at}`);
    // after the remount: the commits before the failure and the one after it, not the failed one
    assert.deepEqual(lines[1], { after: 'ok', queued: failure.at });
  });
});

describe('sqlite store: schema versions', () => {
  test('a file made with the v1 DDL by hand opens, reads and writes', async () => {
    const f = file('v1');
    const raw = new Database(f);
    raw.exec(SCHEMA_V1);
    raw.exec("INSERT INTO sessions (client_id, protocol_version, expiry_interval) VALUES ('old', 4, 10)");
    raw.exec("INSERT INTO messages (id, topic, payload, qos, retain, refs) VALUES (5, 'r', x'00ff', 0, 1, 1)");
    raw.exec("INSERT INTO retained (topic, message_id) VALUES ('r', 5)");
    raw.exec("UPDATE meta SET value = 5 WHERE key = 'last_message_id'");
    raw.pragma('user_version = 1');
    raw.close();
    const s = await openSqliteStore({ file: f });
    assert.deepEqual(await collect(s.loadSessions()), [{ clientId: 'old', protocolVersion: 4, expiryInterval: 10 }]);
    assert.deepEqual(await collect(s.loadRetained()), [
      { topic: 'r', message: { id: 5, topic: 'r', payload: Buffer.from([0, 0xff]), qos: 0, retain: true } },
    ]);
    assert.deepEqual(await s.loadMeta(), { lastMessageId: 5, lastSeq: 0 });
    await s.commit([{ op: 'unretain', topic: 'r' }]);
    assert.equal(s.messageCount(), 0);
    await s.close();
  });

  test('a newer schema version is refused, naming the file and both versions', async () => {
    const f = file('future');
    await (await openSqliteStore({ file: f })).close();
    const raw = new Database(f);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 41}`);
    raw.close();
    await refuses(
      openSqliteStore({ file: f }),
      f,
      new RegExp(`has schema version ${SCHEMA_VERSION + 41}, newer than this Midge supports \\(${SCHEMA_VERSION}\\)`),
    );
  });

  test('migrate: to the next version keeps the data; a failing migration leaves the file as it was', async () => {
    const f = file('migrate');
    const s = await openSqliteStore({ file: f });
    await s.commit([{ op: 'session', session: { clientId: 'keep', protocolVersion: 5, expiryInterval: 1 } }]);
    await s.close();
    const broken: Migration = (db) => {
      db.exec('ALTER TABLE sessions ADD COLUMN half_done INTEGER');
      throw new Error('migration bug');
    };
    let db = await openDatabase(f);
    assert.throws(() => migrate(db, f, [...MIGRATIONS, broken]), /migration bug/);
    assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    assert.equal((db.prepare('SELECT * FROM sessions').get() as Record<string, unknown>).half_done, undefined);
    db.close();
    const next: Migration = (d) => d.exec("ALTER TABLE sessions ADD COLUMN note TEXT NOT NULL DEFAULT 'next'");
    db = await openDatabase(f);
    assert.equal(migrate(db, f, [...MIGRATIONS, next]), SCHEMA_VERSION, 'it reports the version it found');
    assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION + 1);
    assert.deepEqual(db.prepare('SELECT client_id, note FROM sessions').all(), [{ client_id: 'keep', note: 'next' }]);
    assert.equal(migrate(db, f, [...MIGRATIONS, next]), SCHEMA_VERSION + 1, 'a second run does nothing');
    db.close();
    // and this Midge refuses the newer file
    await refuses(openSqliteStore({ file: f }), f, new RegExp(`schema version ${SCHEMA_VERSION + 1}, newer than this Midge supports \\(${SCHEMA_VERSION}\\)`));
  });
});

describe('sqlite store: the native module is loaded only when a store is opened', () => {
  test('importing the library and the store modules does not load better-sqlite3', async () => {
    const lib = new URL('../../src/index.js', import.meta.url).href;
    const sqlite = new URL('../../src/store/sqlite.js', import.meta.url).href;
    const script = `
      import { createRequire } from 'node:module';
      const require = createRequire(import.meta.url);
      const loaded = () => Object.keys(require('module')._cache).some((k) => k.includes('better-sqlite3'));
      await import(${JSON.stringify(lib)});
      const m = await import(${JSON.stringify(sqlite)});
      const before = loaded();
      const s = await m.openSqliteStore({ file: ${JSON.stringify(file('lazy'))} });
      await s.close();
      console.log(JSON.stringify({ before, after: loaded() }));`;
    const r = await run(process.execPath, ['--input-type=module', '-e', script], { timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { before: false, after: true });
  });
});
