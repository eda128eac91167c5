/**
 * `midge db check|compact|dump FILE`: offline tools for a persistence file (docs/persistence.md).
 * Each takes the file's exclusive lock, so a file in use by a running broker is refused, and a
 * broker cannot start on it meanwhile.
 */
import { once } from 'node:events';
import { stat } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { StoreError } from '../store/store.js';
import { APPLICATION_ID, migrate, openDatabase, schemaInfo, SCHEMA_VERSION, type Database } from '../store/sqlite-file.js';
import { SqliteStore } from '../store/sqlite.js';

export interface DbIo {
  readonly stdout: Writable;
  readonly stderr: Writable;
}

const USAGE = `Usage: midge db check FILE     integrity check, schema version and counts (exit 0 ok, 1 not)
       midge db compact FILE   VACUUM the file and report its size before and after
       midge db dump FILE      print the stored state as JSON lines

FILE is a Midge persistence database (persistence_location + persistence_file). The commands
are offline: a file in use by a running broker is refused.
`;

class Fail extends Error {}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

async function open(file: string): Promise<Database> {
  try {
    if (!(await stat(file)).isFile()) throw new Fail(`${file} is not a file`);
  } catch (err) {
    if (err instanceof Fail) throw err;
    throw new Fail(`${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String(err)}`);
  }
  try {
    return await openDatabase(file, { mustExist: true });
  } catch (err) {
    throw new Fail(err instanceof StoreError ? err.message : `${file}: ${String(err)}`);
  }
}

/** Refuses files that are not Midge databases; returns the schema version. */
function midgeVersion(db: Database, file: string): number {
  const info = schemaInfo(db);
  if (info.version === 0 || info.applicationId !== APPLICATION_ID) {
    throw new Fail(`${file} is not a Midge database (schema version ${info.version}, application id ${info.applicationId}, ${info.tables} tables)`);
  }
  return info.version;
}

const count = (db: Database, sql: string): number => db.prepare(sql).pluck().get() as number;

/**
 * Runs `fn` on the state as a broker would load it: the schema brought up to date and the journal
 * (the commits since the last fold) folded into the tables, all inside a transaction that is rolled
 * back, so that the file is left as it was. `fn` gets the number of journal rows folded.
 */
async function asLoaded<T>(db: Database, file: string, fn: (journalRows: number) => Promise<T> | T): Promise<T> {
  db.exec('BEGIN');
  try {
    migrate(db, file);
    let rows: number;
    try {
      rows = new SqliteStore(db, file).replayJournal('read');
    } catch (err) {
      throw new Fail(err instanceof Error ? err.message : String(err));
    }
    return await fn(rows);
  } finally {
    if (db.inTransaction) db.exec('ROLLBACK');
  }
}

async function check(file: string, io: DbIo): Promise<number> {
  const say = (s: string): boolean => io.stdout.write(`${s}\n`);
  let db: Database;
  try {
    db = await open(file);
  } catch (err) {
    io.stderr.write(`midge db check: ${(err as Error).message}\nmidge db check: ${file} is NOT OK\n`);
    return 1;
  }
  const problems: string[] = [];
  try {
    const version = midgeVersion(db, file);
    if (version > SCHEMA_VERSION) problems.push(`schema version ${version} is newer than this Midge supports (${SCHEMA_VERSION})`);
    const integrity = db.pragma('integrity_check(50)', { simple: false }) as Array<{ integrity_check: string }>;
    const lines = integrity.flatMap((r) => r.integrity_check.split('\n')).filter((l) => !/^\*\*\* in database/.test(l));
    const ok = lines.length === 1 && lines[0] === 'ok';
    say(`${file}: schema version ${version}${version < SCHEMA_VERSION ? ` (a broker will migrate it to ${SCHEMA_VERSION})` : ''}, integrity ${ok ? 'ok' : 'FAILED'}`);
    if (!ok) {
      problems.push(...lines.slice(0, 20).map((l) => `integrity: ${l}`));
      if (lines.length > 20) problems.push(`integrity: ... and ${lines.length - 20} more`);
    }
    if (version <= SCHEMA_VERSION && ok) await asLoaded(db, file, (journalRows) => {
      if (journalRows > 0) say(`journal: ${journalRows} commits not folded into the tables yet (a broker folds them when it opens the file; counted below as folded, the file is not changed)`);
      const c = {
        sessions: count(db, 'SELECT count(*) FROM sessions'),
        subscriptions: count(db, 'SELECT count(*) FROM subscriptions'),
        queued: count(db, 'SELECT count(*) FROM queue'),
        inflight: count(db, 'SELECT count(*) FROM inflight'),
        incomingQos2: count(db, 'SELECT count(*) FROM incoming_qos2'),
        messages: count(db, 'SELECT count(*) FROM messages'),
        payloadBytes: count(db, 'SELECT coalesce(sum(length(payload)), 0) FROM messages'),
        retained: count(db, 'SELECT count(*) FROM retained'),
        wills: count(db, 'SELECT count(*) FROM wills'),
      };
      say(
        `sessions ${c.sessions}, subscriptions ${c.subscriptions}, queued ${c.queued}, in-flight ${c.inflight}, ` +
          `incoming QoS 2 ${c.incomingQos2}, messages ${c.messages} (${c.payloadBytes} payload bytes), retained ${c.retained}, wills ${c.wills}`,
      );
      // Midge's own invariants: every reference has its message, every count is right.
      const refs = `WITH r AS (SELECT message_id AS id, count(*) AS n FROM
        (SELECT message_id FROM queue UNION ALL SELECT message_id FROM inflight UNION ALL SELECT message_id FROM retained) GROUP BY message_id)`;
      const dangling = count(db, `${refs} SELECT coalesce(sum(n), 0) FROM r WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = r.id)`);
      if (dangling > 0) problems.push(`${dangling} queue, in-flight or retained entries refer to messages that are not stored`);
      const wrong = db
        .prepare(`${refs} SELECT m.id, m.refs, coalesce(r.n, 0) AS actual FROM messages m LEFT JOIN r ON r.id = m.id WHERE m.refs <> coalesce(r.n, 0) LIMIT 10`)
        .all() as Array<{ id: number; refs: number; actual: number }>;
      for (const w of wrong) problems.push(`message ${w.id} counts ${w.refs} references but has ${w.actual}`);
    });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const msg = err instanceof Error ? err.message : String(err);
    problems.push(err instanceof Fail ? msg : `${file}${code === 'SQLITE_CORRUPT' ? ' is corrupt' : ''}: ${msg}`);
  } finally {
    db.close();
  }
  if (problems.length > 0) {
    for (const p of problems) io.stderr.write(`midge db check: ${p}\n`);
    io.stderr.write(`midge db check: ${file} is NOT OK\n`);
    return 1;
  }
  say(`midge db check: ${file} is OK`);
  return 0;
}

async function compact(file: string, io: DbIo): Promise<number> {
  const db = await open(file);
  try {
    // the commits in the journal are folded into the tables first (as a broker does when it opens the file)
    if (midgeVersion(db, file) === SCHEMA_VERSION) new SqliteStore(db, file).replayJournal('fold');
    const before = (await sizeOf(file)) + (await sizeOf(`${file}-wal`));
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.exec('VACUUM');
    db.pragma('wal_checkpoint(TRUNCATE)');
    const after = (await sizeOf(file)) + (await sizeOf(`${file}-wal`));
    io.stdout.write(`${file}: ${before} bytes before, ${after} bytes after compacting\n`);
    return 0;
  } catch (err) {
    if (err instanceof Fail) throw err;
    throw new Fail(`cannot compact ${file}: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    db.close();
  }
}

async function dump(file: string, io: DbIo): Promise<number> {
  const db = await open(file);
  try {
    const version = midgeVersion(db, file);
    if (version > SCHEMA_VERSION) throw new Fail(`${file} has schema version ${version}, newer than this Midge supports (${SCHEMA_VERSION})`);
    await asLoaded(db, file, () => dumpRows(db, version, io));
    return 0;
  } finally {
    db.close();
  }
}

/** The rows of every table as JSON lines (the journal folded: see asLoaded). */
async function dumpRows(db: Database, version: number, io: DbIo): Promise<void> {
  {
    const out = async (o: Record<string, unknown>): Promise<void> => {
      const clean: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(o)) if (v !== null && v !== undefined) clean[k] = v;
      if (!io.stdout.write(`${JSON.stringify(clean)}\n`)) await once(io.stdout, 'drain');
    };
    const props = (t: string | null): unknown => (t === null ? null : JSON.parse(t));
    const ids = (t: string | null): unknown => (t === null ? null : t === '' ? [] : t.split(',').map(Number));
    const bool = (v: number): boolean => v !== 0;
    const meta = Object.fromEntries((db.prepare('SELECT key, value FROM meta').all() as Array<{ key: string; value: number }>).map((r) => [r.key, r.value]));
    await out({ type: 'meta', schemaVersion: version, lastMessageId: meta.last_message_id, lastSeq: meta.last_seq });
    for (const r of db.prepare('SELECT * FROM sessions ORDER BY client_id').iterate() as Iterable<Record<string, number | string | null>>) {
      await out({
        type: 'session', clientId: r.client_id, protocolVersion: r.protocol_version, username: r.username, listenerPort: r.listener_port,
        expiryInterval: r.expiry_interval, disconnectedAt: r.disconnected_at,
      });
    }
    for (const r of db.prepare('SELECT * FROM subscriptions ORDER BY client_id, filter').iterate() as Iterable<Record<string, number | string | null>>) {
      await out({
        type: 'subscription', clientId: r.client_id, filter: r.filter, qos: r.qos, noLocal: bool(r.no_local as number),
        retainAsPublished: bool(r.retain_as_published as number), retainHandling: r.retain_handling, subscriptionId: r.subscription_id,
      });
    }
    for (const r of db.prepare('SELECT * FROM messages ORDER BY id').iterate() as Iterable<Record<string, number | string | Buffer | null>>) {
      await out({
        type: 'message', id: r.id, topic: r.topic, payload: (r.payload as Buffer).toString('base64'), qos: r.qos, retain: bool(r.retain as number),
        properties: props(r.properties as string | null), expiresAt: r.expires_at, origin: r.origin, refs: r.refs,
      });
    }
    for (const r of db.prepare('SELECT * FROM queue ORDER BY client_id, seq').iterate() as Iterable<Record<string, number | string | null>>) {
      await out({ type: 'queued', clientId: r.client_id, seq: r.seq, messageId: r.message_id, qos: r.qos, retain: bool(r.retain as number), subIds: ids(r.sub_ids as string | null) });
    }
    for (const r of db.prepare('SELECT * FROM inflight ORDER BY client_id, ord').iterate() as Iterable<Record<string, number | string | null>>) {
      await out({
        type: 'inflight', clientId: r.client_id, packetId: r.packet_id, messageId: r.message_id, qos: r.qos, retain: bool(r.retain as number),
        subIds: ids(r.sub_ids as string | null), state: r.state,
      });
    }
    for (const r of db.prepare('SELECT * FROM incoming_qos2 ORDER BY client_id, packet_id').iterate() as Iterable<Record<string, number | string>>) {
      await out({ type: 'incomingQos2', clientId: r.client_id, packetId: r.packet_id });
    }
    for (const r of db.prepare('SELECT * FROM retained ORDER BY topic').iterate() as Iterable<Record<string, number | string>>) {
      await out({ type: 'retained', topic: r.topic, messageId: r.message_id });
    }
    for (const r of db.prepare('SELECT * FROM wills ORDER BY client_id').iterate() as Iterable<Record<string, number | string | Buffer | null>>) {
      await out({
        type: 'will', clientId: r.client_id, topic: r.topic, payload: (r.payload as Buffer).toString('base64'), qos: r.qos, retain: bool(r.retain as number),
        properties: props(r.properties as string | null), fireAt: r.fire_at, username: r.username, listenerPort: r.listener_port,
      });
    }
  }
}

export async function run(argv: string[], io: DbIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) {
    io.stdout.write(USAGE);
    return 0;
  }
  const [cmd, file, ...extra] = argv;
  const commands: Record<string, (file: string, io: DbIo) => Promise<number>> = { check, compact, dump };
  if (cmd === undefined || !Object.hasOwn(commands, cmd) || file === undefined || extra.length > 0) {
    io.stderr.write(`${cmd !== undefined && !Object.hasOwn(commands, cmd) ? `midge db: unknown command '${cmd}'\n` : ''}${USAGE}`);
    return 1;
  }
  try {
    return await commands[cmd]!(file, io);
  } catch (err) {
    io.stderr.write(`midge db ${cmd}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
