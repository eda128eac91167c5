import { accessSync, constants, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import type { QoS } from '../codec/types.js';
import { compact, Compactor } from './compact.js';
import { decodeIds, decodeProps, encodeIds, encodeProps } from './encode.js';
import { decodeChanges, encodeChanges, summarize, type SetSummary } from './journal.js';
import {
  StoreError,
  type Change,
  type InflightRef,
  type QueuedRef,
  type Store,
  type StoredMessage,
  type StoredSession,
  type StoredSubscription,
  type StoredWill,
  type Window,
} from './store.js';

/**
 * The SQLite store (docs/persistence.md): one database file in WAL mode, held with an exclusive
 * lock for as long as the store is open, one transaction per commit. better-sqlite3 is loaded on
 * first open only, so a broker without persistence never loads the native module.
 */

export type Database = BetterSqlite3.Database;

/** 'MIDG': PRAGMA application_id of a Midge database. */
export const APPLICATION_ID = 0x4d494447;

/** Schema version 1. Booleans are 0/1; properties are JSON (Buffers as {"$b64": ...}). */
export const SCHEMA_V1 = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('last_message_id', 0), ('last_seq', 0);
CREATE TABLE messages (
  id INTEGER PRIMARY KEY,
  topic TEXT NOT NULL,
  payload BLOB NOT NULL,
  qos INTEGER NOT NULL,
  retain INTEGER NOT NULL,
  properties TEXT,
  expires_at INTEGER,
  origin TEXT,
  refs INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE sessions (
  client_id TEXT PRIMARY KEY,
  protocol_version INTEGER NOT NULL,
  username TEXT,
  listener_port INTEGER,
  expiry_interval INTEGER NOT NULL,
  disconnected_at INTEGER
) WITHOUT ROWID;
CREATE TABLE subscriptions (
  client_id TEXT NOT NULL,
  filter TEXT NOT NULL,
  qos INTEGER NOT NULL,
  no_local INTEGER NOT NULL,
  retain_as_published INTEGER NOT NULL,
  retain_handling INTEGER NOT NULL,
  subscription_id INTEGER,
  PRIMARY KEY (client_id, filter)
) WITHOUT ROWID;
CREATE TABLE queue (
  client_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  message_id INTEGER NOT NULL,
  qos INTEGER NOT NULL,
  retain INTEGER NOT NULL,
  sub_ids TEXT,
  PRIMARY KEY (client_id, seq)
) WITHOUT ROWID;
CREATE TABLE inflight (
  ord INTEGER PRIMARY KEY,
  client_id TEXT NOT NULL,
  packet_id INTEGER NOT NULL,
  message_id INTEGER NOT NULL,
  qos INTEGER NOT NULL,
  retain INTEGER NOT NULL,
  sub_ids TEXT,
  state TEXT NOT NULL,
  UNIQUE (client_id, packet_id)
);
CREATE TABLE incoming_qos2 (
  client_id TEXT NOT NULL,
  packet_id INTEGER NOT NULL,
  PRIMARY KEY (client_id, packet_id)
) WITHOUT ROWID;
CREATE TABLE retained (topic TEXT PRIMARY KEY, message_id INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE wills (
  client_id TEXT PRIMARY KEY,
  topic TEXT NOT NULL,
  payload BLOB NOT NULL,
  qos INTEGER NOT NULL,
  retain INTEGER NOT NULL,
  properties TEXT,
  fire_at INTEGER NOT NULL,
  username TEXT,
  listener_port INTEGER
) WITHOUT ROWID;
PRAGMA application_id = ${APPLICATION_ID};
`;

/**
 * Schema version 2 adds the journal: one row per commit, the change set in the binary form of
 * src/store/journal.ts, folded into the tables above (and deleted) many commits at a time.
 */
export const SCHEMA_V2 = `
CREATE TABLE journal (seq INTEGER PRIMARY KEY, data BLOB NOT NULL);
`;

/** MIGRATIONS[v] takes a database from schema version v to v + 1 (0 = empty file). */
export type Migration = (db: Database) => void;
export const MIGRATIONS: readonly Migration[] = [(db) => db.exec(SCHEMA_V1), (db) => db.exec(SCHEMA_V2)];
export const SCHEMA_VERSION = MIGRATIONS.length;

// --- errors ----------------------------------------------------------------------------------

function sqliteCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Turns whatever opening or using `file` threw into a StoreError that names the file. */
export function storeError(file: string, err: unknown, doing = 'open'): StoreError {
  if (err instanceof StoreError) return err;
  const code = sqliteCode(err);
  const msg = err instanceof Error ? err.message : String(err);
  const base = code?.replace(/_.*$/, '') === 'SQLITE' ? code.split('_').slice(0, 2).join('_') : code;
  let text: string;
  if (/directory does not exist/.test(msg)) text = `cannot open database ${file}: its directory does not exist`;
  else if (base === 'SQLITE_BUSY' || base === 'SQLITE_LOCKED') text = `database ${file} is locked by another process (is another broker using it?)`;
  else if (base === 'SQLITE_NOTADB') text = `${file} is not a database, or it is corrupt (${msg})`;
  else if (base === 'SQLITE_CORRUPT') text = `database ${file} is corrupt (${msg}); see 'midge db check'`;
  else if (base === 'SQLITE_CANTOPEN') text = `cannot open database ${file} (${msg}): is it a directory, or is its directory missing or not writable?`;
  else if (base === 'SQLITE_READONLY') text = `database ${file} is read-only (${msg}): the file and its directory must be writable`;
  else if (base === 'SQLITE_FULL') text = `cannot ${doing} database ${file}: disk full (${msg})`;
  else if (base === 'SQLITE_IOERR') text = `cannot ${doing} database ${file}: I/O error (${msg})`;
  else text = `cannot ${doing} database ${file}: ${msg}`;
  return new StoreError(text, code, { cause: err });
}

/** Why `file` cannot be opened for writing, as far as the file system tells; undefined if it can. */
function diagnose(file: string): string | undefined {
  const fsCode = (err: unknown): string => String((err as NodeJS.ErrnoException).code);
  let exists = false;
  try {
    if (statSync(file).isDirectory()) return 'it is a directory';
    exists = true;
  } catch (err) {
    if (fsCode(err) === 'ENOTDIR') return 'a part of its path is not a directory';
    if (fsCode(err) !== 'ENOENT') return `cannot stat it (${fsCode(err)})`;
  }
  const dir = dirname(file);
  try {
    if (!statSync(dir).isDirectory()) return `${dir} is not a directory`;
  } catch (err) {
    return fsCode(err) === 'ENOENT' ? `its directory ${dir} does not exist` : `cannot stat its directory ${dir} (${fsCode(err)})`;
  }
  try {
    accessSync(dir, constants.W_OK);
  } catch (err) {
    return `its directory ${dir} is not writable (${fsCode(err)}${fsCode(err) === 'EROFS' ? ': read-only file system' : ''})`;
  }
  if (exists) {
    try {
      accessSync(file, constants.R_OK | constants.W_OK);
    } catch (err) {
      return `the file is not writable (${fsCode(err)}${fsCode(err) === 'EROFS' ? ': read-only file system' : ''})`;
    }
  }
  return undefined;
}

/** storeError for a failed open: file-system causes are named before SQLite's generic ones. */
function openError(file: string, err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  const code = sqliteCode(err) ?? '';
  const msg = err instanceof Error ? err.message : String(err);
  if (/^SQLITE_(CANTOPEN|READONLY|IOERR|PERM|AUTH)/.test(code) || /directory does not exist/.test(msg)) {
    const why = diagnose(file);
    if (why !== undefined) return new StoreError(`cannot open database ${file}: ${why} (${msg})`, code || undefined, { cause: err });
  }
  return storeError(file, err);
}

// --- opening -----------------------------------------------------------------------------------

export interface OpenDatabaseOptions {
  /** synchronous=FULL (fsync at every commit: survives power loss) instead of NORMAL (survives kill -9) */
  fsync?: boolean;
  /** refuse a file that does not exist instead of creating it */
  mustExist?: boolean;
}

/**
 * Opens `file` with an exclusive lock held until close (a second process gets a StoreError
 * "locked by another process"), in WAL mode. Reads the schema only to refuse a file that is not a
 * Midge database before writing to it; does not write the schema.
 */
export async function openDatabase(file: string, opts: OpenDatabaseOptions = {}): Promise<Database> {
  let Sqlite: typeof BetterSqlite3;
  try {
    Sqlite = (await import('better-sqlite3')).default;
  } catch (err) {
    throw new StoreError(`cannot open database ${file}: the better-sqlite3 module is not available (${String(err)})`, undefined, { cause: err });
  }
  let db: Database;
  try {
    // timeout 0: a locked file is refused at once (the lock is held for the broker's lifetime).
    db = new Sqlite(file, { fileMustExist: opts.mustExist ?? false, timeout: 0 });
  } catch (err) {
    throw openError(file, err);
  }
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    // A file that is not Midge's is refused before anything is written to it: journal_mode = WAL
    // rewrites the file header, which would change another application's database.
    checkIdentity(db, file);
    const mode = db.pragma('journal_mode = WAL', { simple: true }) as string;
    if (mode !== 'wal') throw new StoreError(`cannot open database ${file}: it cannot be put in WAL mode (journal mode is ${mode})`);
    db.pragma(`synchronous = ${opts.fsync === true ? 'FULL' : 'NORMAL'}`);
    // A checkpoint copies the WAL's pages into the file (and syncs it): every 10,000 pages instead of
    // SQLite's 1,000, so that the journal pages that each fold frees and later commits reuse are
    // copied once per checkpoint rather than once per version (measured here: 206 -> 143 us per
    // 12 KB commit). The WAL file is cut back to 64 MiB after a checkpoint.
    db.pragma('wal_autocheckpoint = 10000');
    db.pragma(`journal_size_limit = ${64 * 1024 * 1024}`);
    // Take the lock now: in exclusive locking mode it is kept until the connection closes.
    db.exec('BEGIN IMMEDIATE; COMMIT');
  } catch (err) {
    db.close();
    throw openError(file, err);
  }
  return db;
}

/** The schema version of an open database, and whether it is a Midge database at all. */
export function schemaInfo(db: Database): { version: number; applicationId: number; tables: number } {
  return {
    version: db.pragma('user_version', { simple: true }) as number,
    applicationId: db.pragma('application_id', { simple: true }) as number,
    tables: (db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }).n,
  };
}

/** Refuses (StoreError) a database that has tables but is not a Midge database; only reads. */
function checkIdentity(db: Database, file: string): { version: number } {
  const { version, applicationId, tables } = schemaInfo(db);
  if (version === 0 && tables > 0) {
    throw new StoreError(`${file} is not a Midge database (it has tables but no Midge schema version)`);
  }
  if (version > 0 && applicationId !== APPLICATION_ID) {
    throw new StoreError(`${file} is not a Midge database (application id ${applicationId}, schema version ${version})`);
  }
  return { version };
}

/**
 * Brings the schema to the newest version (one transaction), refusing files that are newer than
 * `migrations` knows or that are not Midge databases. Returns the version it found.
 */
export function migrate(db: Database, file: string, migrations: readonly Migration[] = MIGRATIONS): number {
  const target = migrations.length;
  const { version } = checkIdentity(db, file);
  if (version > target) {
    throw new StoreError(
      `database ${file} has schema version ${version}, newer than this Midge supports (${target}): it was written by a newer Midge`,
    );
  }
  if (version < target) {
    db.transaction(() => {
      for (let v = version; v < target; v++) migrations[v]!(db);
      db.pragma(`user_version = ${target}`);
    })();
  }
  return version;
}

export interface SqliteStoreOptions extends FoldOptions {
  file: string;
  /** synchronous=FULL instead of NORMAL (default false) */
  fsync?: boolean;
}

/** When the journal is folded into the tables (docs/persistence.md "How a commit is stored"). */
export interface FoldOptions {
  /** after this many journaled changes (default 50,000) */
  foldChanges?: number;
  /** after this many bytes of journaled message payloads (default 16 MiB) */
  foldBytes?: number;
  /** at the latest this long after the first change not folded yet, in ms (default 1000) */
  foldMs?: number;
  /**
   * 'journal': every commit goes to the journal; 'direct': every commit is applied to the tables
   * at once; 'auto' (default): the journal while folds cancel most of what they fold, direct while
   * they do not (see SqliteStore)
   */
  mode?: 'auto' | 'journal' | 'direct';
}

/** auto mode: a fold that writes more than this share of its changes switches to direct commits */
const DIRECT_ABOVE = 0.5;
/** auto mode: direct commits before the journal is tried again */
const DIRECT_SPELL = 2000;

/**
 * Opens (creating if needed) and migrates the database file, folds what its journal holds (the
 * commits since the last fold of a broker that was killed), and returns the store on it.
 */
export async function openSqliteStore(opts: SqliteStoreOptions): Promise<SqliteStore> {
  const db = await openDatabase(opts.file, { fsync: opts.fsync ?? false });
  try {
    migrate(db, opts.file);
    const store = new SqliteStore(db, opts.file, opts);
    store.replayJournal();
    return store;
  } catch (err) {
    db.close();
    throw storeError(opts.file, err);
  }
}

// --- rows ----------------------------------------------------------------------------------------

const MSG_COLS = 'm.id, m.topic, m.payload, m.qos, m.retain, m.properties, m.expires_at, m.origin';

/** A message from a raw row (an array; the message's 8 columns, MSG_COLS, start at `o`): half the cost of row objects. */
function messageFromRaw(r: unknown[], o: number): StoredMessage {
  const m: StoredMessage = { id: r[o] as number, topic: r[o + 1] as string, payload: r[o + 2] as Buffer, qos: r[o + 3] as QoS, retain: r[o + 4] !== 0 };
  const props = decodeProps(r[o + 5] as string | null);
  if (props !== undefined) m.properties = props;
  if (r[o + 6] !== null) m.expiresAt = r[o + 6] as number;
  if (r[o + 7] !== null) m.origin = r[o + 7] as string;
  return m;
}

interface SessionRow {
  client_id: string;
  protocol_version: number;
  username: string | null;
  listener_port: number | null;
  expiry_interval: number;
  disconnected_at: number | null;
}

export function sessionFromRow(r: SessionRow): StoredSession {
  const s: StoredSession = { clientId: r.client_id, protocolVersion: r.protocol_version as StoredSession['protocolVersion'], expiryInterval: r.expiry_interval };
  if (r.username !== null) s.username = r.username;
  if (r.listener_port !== null) s.listenerPort = r.listener_port;
  if (r.disconnected_at !== null) s.disconnectedAt = r.disconnected_at;
  return s;
}

interface RefRow {
  message_id: number;
  qos: number;
  retain: number;
  sub_ids: string | null;
}

export function queuedFromRow(r: RefRow & { seq: number }): QueuedRef {
  const q: QueuedRef = { seq: r.seq, messageId: r.message_id, qos: r.qos as QoS, retain: r.retain !== 0 };
  const ids = decodeIds(r.sub_ids);
  if (ids !== undefined) q.subIds = ids;
  return q;
}

export function inflightFromRow(r: RefRow & { packet_id: number; state: string }): InflightRef {
  const f: InflightRef = {
    packetId: r.packet_id,
    messageId: r.message_id,
    qos: r.qos as QoS,
    retain: r.retain !== 0,
    state: r.state === 'pubrel' ? 'pubrel' : 'publish',
  };
  const ids = decodeIds(r.sub_ids);
  if (ids !== undefined) f.subIds = ids;
  return f;
}

interface WillRow {
  client_id: string;
  topic: string;
  payload: Buffer;
  qos: number;
  retain: number;
  properties: string | null;
  fire_at: number;
  username: string | null;
  listener_port: number | null;
}

export function willFromRow(r: WillRow): StoredWill {
  const w: StoredWill = {
    clientId: r.client_id,
    will: { topic: r.topic, payload: r.payload, qos: r.qos as QoS, retain: r.retain !== 0 },
    fireAt: r.fire_at,
  };
  const props = decodeProps(r.properties);
  if (props !== undefined) w.will.properties = props;
  if (r.username !== null) w.username = r.username;
  if (r.listener_port !== null) w.listenerPort = r.listener_port;
  return w;
}

const b = (v: boolean): number => (v ? 1 : 0);
const n = <T>(v: T | undefined): T | null => (v === undefined ? null : v);

/** Rows per query of the load iterators (no statement stays open across an await). */
const PAGE = 1000;

function prepare(db: Database) {
  const p = (sql: string): BetterSqlite3.Statement => db.prepare(sql);
  return {
    insMessage: p('INSERT OR IGNORE INTO messages (id, topic, payload, qos, retain, properties, expires_at, origin, refs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
    refs: p('UPDATE messages SET refs = refs + ? WHERE id = ? RETURNING refs'),
    delMessage: p('DELETE FROM messages WHERE id = ?'),
    // ? = JSON [[id, delta], ...] with distinct ids
    refsBatch: p('UPDATE messages SET refs = refs + (j.value ->> 1) FROM json_each(?) AS j WHERE messages.id = (j.value ->> 0)'),
    refsMissing: p('SELECT j.value ->> 0 FROM json_each(?) AS j WHERE (j.value ->> 1) > 0 AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = (j.value ->> 0)) LIMIT 1').pluck(),
    delUnreferenced: p('DELETE FROM messages WHERE id IN (SELECT j.value ->> 0 FROM json_each(?) AS j WHERE (j.value ->> 1) < 0) AND refs <= 0'),
    metaUp: p('UPDATE meta SET value = ? WHERE key = ? AND value < ?'),
    meta: p('SELECT key, value FROM meta'),
    session: p('INSERT OR REPLACE INTO sessions (client_id, protocol_version, username, listener_port, expiry_interval, disconnected_at) VALUES (?, ?, ?, ?, ?, ?)'),
    delSession: p('DELETE FROM sessions WHERE client_id = ?'),
    delSubs: p('DELETE FROM subscriptions WHERE client_id = ?'),
    delQueue: p('DELETE FROM queue WHERE client_id = ? RETURNING message_id').pluck(),
    delInflights: p('DELETE FROM inflight WHERE client_id = ? RETURNING message_id').pluck(),
    delQos2s: p('DELETE FROM incoming_qos2 WHERE client_id = ?'),
    sub: p('INSERT OR REPLACE INTO subscriptions (client_id, filter, qos, no_local, retain_as_published, retain_handling, subscription_id) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    unsub: p('DELETE FROM subscriptions WHERE client_id = ? AND filter = ?'),
    enqueue: p('INSERT INTO queue (client_id, seq, message_id, qos, retain, sub_ids) VALUES (?, ?, ?, ?, ?, ?)'),
    dequeue: p('DELETE FROM queue WHERE client_id = ? AND seq = ? RETURNING message_id').pluck(),
    inflightOld: p('SELECT message_id FROM inflight WHERE client_id = ? AND packet_id = ?').pluck(),
    inflightIns: p('INSERT OR IGNORE INTO inflight (client_id, packet_id, message_id, qos, retain, sub_ids, state) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    inflightUpd: p('UPDATE inflight SET message_id = ?, qos = ?, retain = ?, sub_ids = ?, state = ? WHERE client_id = ? AND packet_id = ?'),
    inflightDone: p('DELETE FROM inflight WHERE client_id = ? AND packet_id = ? RETURNING message_id').pluck(),
    qos2: p('INSERT OR IGNORE INTO incoming_qos2 (client_id, packet_id) VALUES (?, ?)'),
    qos2Done: p('DELETE FROM incoming_qos2 WHERE client_id = ? AND packet_id = ?'),
    unretain: p('DELETE FROM retained WHERE topic = ? RETURNING message_id').pluck(),
    retain: p('INSERT INTO retained (topic, message_id) VALUES (?, ?)'),
    will: p('INSERT OR REPLACE INTO wills (client_id, topic, payload, qos, retain, properties, fire_at, username, listener_port) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
    willDone: p('DELETE FROM wills WHERE client_id = ?'),
    // loads
    sessionsFirst: p('SELECT * FROM sessions ORDER BY client_id LIMIT ?'),
    sessionsPage: p('SELECT * FROM sessions WHERE client_id > ? ORDER BY client_id LIMIT ?'),
    sessionOne: p('SELECT * FROM sessions WHERE client_id = ?'),
    // raw rows (arrays): half the cost of row objects
    subsPage: p(`SELECT client_id, filter, qos, no_local, retain_as_published, retain_handling, subscription_id FROM subscriptions
      WHERE (client_id, filter) > (?, ?) ORDER BY client_id, filter LIMIT ?`).raw(),
    // windows of several sessions at once (? = JSON array of client ids), the client id first:
    // [client_id, packet_id, message_id, qos, retain, sub_ids, state, ...message], [client_id, seq, message_id, qos, retain, sub_ids, ...message]
    windowsInflight: p(`SELECT i.client_id, i.packet_id, i.message_id, i.qos, i.retain, i.sub_ids, i.state, ${MSG_COLS}
      FROM inflight i JOIN messages m ON m.id = i.message_id WHERE i.client_id IN (SELECT value FROM json_each(?)) ORDER BY i.client_id, i.ord`).raw(),
    windowsQueue: p(`SELECT q.client_id, q.seq, q.message_id, q.qos, q.retain, q.sub_ids, ${MSG_COLS}
      FROM queue q JOIN messages m ON m.id = q.message_id WHERE q.client_id IN (SELECT value FROM json_each(?)) ORDER BY q.client_id, q.seq`).raw(),
    windowsQos2: p('SELECT client_id, packet_id FROM incoming_qos2 WHERE client_id IN (SELECT value FROM json_each(?)) ORDER BY client_id, packet_id').raw(),
    retainedPage: p(`SELECT r.topic, ${MSG_COLS} FROM retained r JOIN messages m ON m.id = r.message_id
      WHERE r.topic > ? ORDER BY r.topic LIMIT ?`).raw(),
    wills: p('SELECT * FROM wills ORDER BY client_id'),
    messageCount: p('SELECT count(*) FROM messages').pluck(),
    hasMessage: p('SELECT 1 FROM messages WHERE id = ?').pluck(),
    // the journal
    journalAdd: p('INSERT INTO journal (data) VALUES (?)'),
    journalAll: p('SELECT seq, data FROM journal ORDER BY seq').raw(),
    journalDrop: p('DELETE FROM journal WHERE seq <= ?'),
  };
}
type Statements = ReturnType<typeof prepare>;

// --- the store -------------------------------------------------------------------------------------

/**
 * How a commit is stored (docs/persistence.md): `commit` writes the change set as ONE row of the
 * journal table (one INSERT, one SQLite transaction: durable when it returns), and keeps the set in
 * memory. Every `foldChanges` changes (or `foldMs`) the sets journaled since the last fold are
 * compacted together (src/store/compact.ts: a message queued or sent in one commit and acknowledged
 * a few commits later cancels out) and applied to the tables in one transaction that also deletes
 * their journal rows. A broker killed between folds leaves journal rows; opening the file folds them
 * (`replayJournal`). Reads fold first, so that they see every commit.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  private closed = false;
  private readonly s: Statements;
  private readonly foldTx: (changes: readonly Change[], upTo: number, meta: Meta) => void;
  private readonly foldChanges: number;
  private readonly foldBytes: number;
  private readonly foldMs: number;
  /**
   * Change sets journaled and not folded yet (their journal rows) go through `compactor` in commit
   * order: each is decoded and added soon after its commit has answered (`digest`), so that a fold
   * writes what is left without first decoding and compacting everything while commits wait.
   */
  private readonly compactor = new Compactor();
  /** journaled sets not added to the compactor yet, in commit order */
  private undigested: Buffer[] = [];
  private digestSoon = false;
  /** ids of the messages recorded by the pending sets (see refsStored) */
  private pendingIds = new Set<number>();
  private pendingChanges = 0;
  private pendingBytes = 0;
  /** the journal row of the last commit */
  private journaled = 0;
  private foldTimer: NodeJS.Timeout | undefined;
  /** the last fold failed: commits wait until one succeeds (memory stays bounded) */
  private foldFailed = false;
  /** folds done, changes folded, changes written to the tables after compaction, failed folds, references found dangling, direct commits */
  readonly folds = { count: 0, changes: 0, written: 0, failures: 0, dangling: 0, direct: 0 };
  private readonly mode: 'auto' | 'journal' | 'direct';
  /** commits are applied to the tables at once (no journal) for this many more commits */
  private directLeft = 0;
  private readonly directTx: (changes: readonly Change[]) => void;

  /** Use openSqliteStore(). `db` is open, locked and migrated. */
  constructor(
    /** the open database: for `midge db` and tests; the broker never touches it */
    readonly db: Database,
    readonly file: string,
    opts: FoldOptions = {},
  ) {
    this.s = prepare(db);
    this.foldTx = db.transaction((changes: readonly Change[], upTo: number, meta: Meta) => {
      this.apply(changes, meta);
      this.s.journalDrop.run(upTo);
    });
    this.directTx = db.transaction((changes: readonly Change[]) => this.apply(compact(changes), metaOf(changes)));
    this.mode = opts.mode ?? 'auto';
    if (this.mode === 'direct') this.directLeft = Infinity;
    this.foldChanges = opts.foldChanges ?? 50_000;
    this.foldBytes = opts.foldBytes ?? 16 * 1024 * 1024;
    this.foldMs = opts.foldMs ?? 1000;
  }

  /** test-only: how many message bodies are stored */
  messageCount(): number {
    this.fold();
    return this.s.messageCount.get() as number;
  }

  /** test-only: journal rows not folded yet */
  journalRows(): number {
    return (this.db.prepare('SELECT count(*) FROM journal').pluck().get() as number);
  }

  /**
   * Folds what the journal holds into the tables (at open: the commits since the last fold of a
   * broker that stopped without folding). A row that cannot be decoded is a StoreError naming it.
   */
  replayJournal(): void {
    const rows = this.s.journalAll.all() as Array<[number, Buffer]>;
    if (rows.length === 0) return;
    const all: Change[] = [];
    for (const [seq, data] of rows) {
      try {
        for (const c of decodeChanges(data, false)) all.push(c);
      } catch (err) {
        throw new StoreError(`database ${this.file}: journal entry ${seq} is corrupt (${err instanceof Error ? err.message : String(err)}); see 'midge db check'`);
      }
    }
    const changes = compact(all);
    this.foldTx(changes, rows[rows.length - 1]![0], metaOf(all));
    this.folds.count++;
    this.folds.changes += all.length;
    this.folds.written += changes.length;
  }

  /** Applies the journaled sets to the tables, in one transaction; throws what SQLite threw. */
  private fold(): void {
    if (this.foldTimer !== undefined) {
      clearTimeout(this.foldTimer);
      this.foldTimer = undefined;
    }
    if ((this.compactor.added === 0 && this.undigested.length === 0) || this.closed) return;
    this.digest();
    const k = this.compactor;
    const changes = k.survivors();
    const added = k.added;
    try {
      this.foldTx(changes, this.journaled, { maxId: k.maxId, maxSeq: k.maxSeq });
    } catch (err) {
      this.foldFailed = true;
      this.folds.failures++;
      if (this.db.inTransaction) {
        try {
          this.db.exec('ROLLBACK');
        } catch {
          // nothing more to undo
        }
      }
      throw err;
    }
    this.foldFailed = false;
    this.folds.count++;
    this.folds.changes += added;
    this.folds.written += changes.length;
    // Little cancelled out (a queue for an offline client, retained messages): writing the tables at
    // once costs less than journaling it and folding it later; the journal is tried again after a while.
    if (this.mode === 'auto' && added >= 1000 && changes.length > added * DIRECT_ABOVE) this.directLeft = DIRECT_SPELL;
    k.reset();
    this.pendingIds.clear();
    this.pendingChanges = 0;
    this.pendingBytes = 0;
  }

  /** Adds the journaled sets not added yet to the compactor; a set that cannot be decoded throws and stays. */
  private digest(): void {
    const blobs = this.undigested;
    let i = 0;
    try {
      for (; i < blobs.length; i++) {
        const changes = decodeChanges(blobs[i]!, false);
        for (let j = 0; j < changes.length; j++) this.compactor.add(changes[j]!);
      }
    } finally {
      this.undigested = i === blobs.length ? [] : blobs.slice(i);
    }
  }

  private digestLater = (): void => {
    this.digestSoon = false;
    try {
      this.digest();
    } catch {
      // the set stays undigested: the fold that needs it meets the error and reports it
    }
  };

  /**
   * Refuses (StoreError) a set that refers to a message that is neither in it, nor recorded by a
   * commit not folded yet, nor stored: the check that applying the set used to make, made before it
   * is journaled. The broker records a message in every set that refers to it, so this costs a set
   * lookup per reference.
   */
  private refsStored(set: SetSummary): void {
    const refs = set.refIds;
    if (refs.length === 0) return;
    const recorded = set.messageIds;
    let inSet: Set<number> | undefined;
    for (let i = 0; i < refs.length; i++) {
      const id = refs[i]!;
      if (recorded.length <= 8) {
        let found = false;
        for (let j = 0; j < recorded.length; j++) if (recorded[j] === id) { found = true; break; }
        if (found) continue;
      } else {
        if (inSet === undefined) {
          inSet = new Set();
          for (let j = 0; j < recorded.length; j++) inSet.add(recorded[j]!);
        }
        if (inSet.has(id)) continue;
      }
      if (this.pendingIds.has(id) || this.s.hasMessage.get(id) !== undefined) continue;
      throw new StoreError(`database ${this.file}: message ${id} is referenced but not stored`);
    }
  }

  /** fold() for the timer: a failure is retried by the next commit, which reports it */
  private foldSoon = false;
  private foldLater = (): void => {
    this.foldTimer = undefined;
    this.foldSoon = false;
    try {
      this.fold();
    } catch {
      // foldFailed is set: the next commit folds first and rejects while that fails
    }
  };

  /** Reads see every commit: fold first. */
  private readable(): void {
    this.check();
    this.fold();
  }

  private check(): void {
    if (this.closed) throw new StoreError(`database ${this.file} is closed`);
  }

  loadMeta(): Promise<{ lastMessageId: number; lastSeq: number }> {
    try {
      this.readable();
      const rows = this.s.meta.all() as Array<{ key: string; value: number }>;
      const get = (k: string): number => rows.find((r) => r.key === k)?.value ?? 0;
      return Promise.resolve({ lastMessageId: get('last_message_id'), lastSeq: get('last_seq') });
    } catch (err) {
      return Promise.reject(storeError(this.file, err, 'read'));
    }
  }

  /** Pages through a query by its key so that no statement is open while the consumer runs. */
  private async *pages<T, K>(page: (after: K | undefined, max: number) => T[], key: (x: T) => K): AsyncIterable<T> {
    let last: K | undefined;
    for (;;) {
      const items = page(last, PAGE);
      for (const x of items) yield x;
      if (items.length < PAGE) return;
      const next = key(items[items.length - 1]!);
      if (last !== undefined && String(next) === String(last)) throw new StoreError(`database ${this.file}: paging did not advance at ${String(next)}`);
      last = next;
    }
  }

  /** A read that sees every commit (it folds first); what it throws is a StoreError naming the file. */
  private read<T>(fn: () => T): T {
    try {
      this.readable();
      return fn();
    } catch (err) {
      throw storeError(this.file, err, 'read');
    }
  }

  /**
   * The sessions after client id `after` (all from the first when undefined), at most `max`, in
   * client id order: a page of loadSessions (the store's thread asks for pages, not items).
   */
  sessionsPage(after: string | undefined, max: number): StoredSession[] {
    return this.read(() => (after === undefined ? this.s.sessionsFirst.all(max) : this.s.sessionsPage.all(after, max)) as SessionRow[]).map(sessionFromRow);
  }

  /** A page of loadSubscriptions: after the key [clientId, filter], in that order. */
  subscriptionsPage(after: readonly [string, string] | undefined, max: number): Array<{ clientId: string; sub: StoredSubscription }> {
    const rows = this.read(() => this.s.subsPage.all(after?.[0] ?? '', after?.[1] ?? '', max) as unknown[][]);
    return rows.map((r) => {
      const sub: StoredSubscription = {
        filter: r[1] as string,
        qos: r[2] as QoS,
        noLocal: r[3] !== 0,
        retainAsPublished: r[4] !== 0,
        retainHandling: r[5] as 0 | 1 | 2,
      };
      if (r[6] !== null) sub.subscriptionId = r[6] as number;
      return { clientId: r[0] as string, sub };
    });
  }

  /** A page of loadRetained: the topics after `after`, in topic order. */
  retainedPage(after: string | undefined, max: number): Array<{ topic: string; message: StoredMessage }> {
    const rows = this.read(() => this.s.retainedPage.all(after ?? '', max) as unknown[][]);
    return rows.map((r) => ({ topic: r[0] as string, message: messageFromRaw(r, 1) }));
  }

  loadSessions(): AsyncIterable<StoredSession> {
    return this.pages((after: string | undefined, max) => this.sessionsPage(after, max), (x) => x.clientId);
  }

  loadSubscriptions(): AsyncIterable<{ clientId: string; sub: StoredSubscription }> {
    return this.pages(
      (after: readonly [string, string] | undefined, max) => this.subscriptionsPage(after, max),
      (x) => [x.clientId, x.sub.filter] as const,
    );
  }

  loadSession(clientId: string): Promise<StoredSession | undefined> {
    try {
      this.readable();
      const r = this.s.sessionOne.get(clientId) as SessionRow | undefined;
      return Promise.resolve(r === undefined ? undefined : sessionFromRow(r));
    } catch (err) {
      return Promise.reject(storeError(this.file, err, 'read'));
    }
  }

  loadWindow(clientId: string): Promise<Window> {
    try {
      return Promise.resolve(this.loadWindows([clientId])[0]!);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * The windows of several sessions at once (loadWindow of each, in the order given): three queries
   * for all of them rather than three per session (a restoring broker asks for every session's).
   */
  loadWindows(clientIds: readonly string[]): Window[] {
    const out = new Map<string, Window>();
    for (const c of clientIds) if (!out.has(c)) out.set(c, { inflight: [], queued: [], incomingQos2: [] });
    this.read(() => {
      const ids = JSON.stringify([...out.keys()]);
      const ref = (r: unknown[], o: number): RefRow => ({ message_id: r[o + 1] as number, qos: r[o + 2] as number, retain: r[o + 3] as number, sub_ids: r[o + 4] as string | null });
      // [client_id, packet_id, message_id, qos, retain, sub_ids, state, ...message]
      for (const r of this.s.windowsInflight.all(ids) as unknown[][]) {
        out.get(r[0] as string)!.inflight.push({ ...inflightFromRow({ ...ref(r, 1), packet_id: r[1] as number, state: r[6] as string }), message: messageFromRaw(r, 7) });
      }
      // [client_id, seq, message_id, qos, retain, sub_ids, ...message]
      for (const r of this.s.windowsQueue.all(ids) as unknown[][]) {
        out.get(r[0] as string)!.queued.push({ ...queuedFromRow({ ...ref(r, 1), seq: r[1] as number }), message: messageFromRaw(r, 6) });
      }
      for (const r of this.s.windowsQos2.all(ids) as unknown[][]) out.get(r[0] as string)!.incomingQos2.push(r[1] as number);
    });
    return clientIds.map((c) => out.get(c)!);
  }

  loadRetained(): AsyncIterable<{ topic: string; message: StoredMessage }> {
    return this.pages((after: string | undefined, max) => this.retainedPage(after, max), (x) => x.topic);
  }

  loadWills(): Promise<StoredWill[]> {
    try {
      this.readable();
      return Promise.resolve((this.s.wills.all() as WillRow[]).map(willFromRow));
    } catch (err) {
      return Promise.reject(storeError(this.file, err, 'read'));
    }
  }

  commit(changes: readonly Change[]): Promise<void> {
    try {
      if (changes.length > 0) this.commitSync(encodeChanges(changes), summarize(changes), changes);
      else this.check();
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * commit() of a set that is already encoded (`blob` = encodeChanges(changes), not empty), with
   * its summary (`set`), synchronously; throws a StoreError. The store keeps `blob` (until the next
   * fold). `changes` (the decoded set) is only needed when the commit goes straight to the tables:
   * without it the blob is decoded then (the store's thread sends the blob and its summary only).
   */
  commitSync(blob: Buffer, set: SetSummary, changes?: readonly Change[]): void {
    try {
      this.check();
      if (set.count === 0) return;
      if (this.foldFailed) this.fold();
      this.refsStored(set);
      if (this.directLeft > 0) {
        this.fold(); // what is journaled goes first
        this.directLeft--;
        this.directTx(changes ?? decodeChanges(blob, false));
        this.folds.direct++;
        return;
      }
      this.journaled = Number(this.s.journalAdd.run(blob).lastInsertRowid);
      this.undigested.push(blob);
      if (!this.digestSoon) {
        // after this commit has answered (on the worker: after its reply is posted)
        this.digestSoon = true;
        setImmediate(this.digestLater);
      }
      this.pendingChanges += set.count;
      this.pendingBytes += set.bytes;
      const ids = set.messageIds;
      for (let i = 0; i < ids.length; i++) this.pendingIds.add(ids[i]!);
      if (this.pendingChanges >= this.foldChanges || this.pendingBytes >= this.foldBytes) {
        // after this commit has answered (on the worker: after its reply is posted); at once when
        // commits come faster than the event loop turns (a caller committing in a loop)
        if (this.pendingChanges >= 2 * this.foldChanges) {
          this.foldLater();
        } else if (!this.foldSoon) {
          this.foldSoon = true;
          setImmediate(this.foldLater);
        }
      } else if (this.foldTimer === undefined) {
        this.foldTimer = setTimeout(this.foldLater, this.foldMs);
        this.foldTimer.unref();
      }
    } catch (err) {
      // better-sqlite3 rolls back a failed transaction; if SQLite could not, make sure a retry starts clean
      if (!this.closed && this.db.inTransaction) {
        try {
          this.db.exec('ROLLBACK');
        } catch {
          // nothing more to undo
        }
      }
      throw storeError(this.file, err, 'write');
    }
  }

  close(): Promise<void> {
    if (!this.closed) {
      try {
        // what is not folded stays in the journal: the next open folds it
        this.fold();
      } catch {
        // the journal has it
      }
      this.closed = true;
      try {
        this.db.close();
      } catch (err) {
        return Promise.reject(storeError(this.file, err, 'close'));
      }
    }
    return Promise.resolve();
  }

  /**
   * Runs inside the transaction. Reference counts are summed per message and applied at the end;
   * a message new in this commit is inserted there with its count; a `message` change for a message
   * already stored leaves the stored copy as it is.
   */
  private apply(changes: readonly Change[], meta: Meta): void {
    const s = this.s;
    const deltas = new Map<number, number>();
    const fresh = new Map<number, StoredMessage>();
    const add = (id: number | undefined, d: number): void => {
      if (id !== undefined) deltas.set(id, (deltas.get(id) ?? 0) + d);
    };
    let maxId = meta.maxId;
    let maxSeq = meta.maxSeq;
    for (const c of changes) {
      switch (c.op) {
        case 'message': {
          // Written at the end with its final reference count (or not at all when it has none). A
          // message is recorded again by each commit that adds a reference to it: the first copy stays.
          if (fresh.has(c.msg.id)) break;
          fresh.set(c.msg.id, c.msg);
          deltas.set(c.msg.id, deltas.get(c.msg.id) ?? 0);
          if (c.msg.id > maxId) maxId = c.msg.id;
          break;
        }
        case 'session': {
          const x = c.session;
          s.session.run(x.clientId, x.protocolVersion, n(x.username), n(x.listenerPort), x.expiryInterval, n(x.disconnectedAt));
          break;
        }
        case 'dropSession':
          s.delSession.run(c.clientId);
          s.delSubs.run(c.clientId);
          for (const id of s.delQueue.all(c.clientId) as number[]) add(id, -1);
          for (const id of s.delInflights.all(c.clientId) as number[]) add(id, -1);
          s.delQos2s.run(c.clientId);
          break;
        case 'sub': {
          const x = c.sub;
          s.sub.run(c.clientId, x.filter, x.qos, b(x.noLocal), b(x.retainAsPublished), x.retainHandling, n(x.subscriptionId));
          break;
        }
        case 'unsub':
          s.unsub.run(c.clientId, c.filter);
          break;
        case 'enqueue': {
          const r = c.ref;
          s.enqueue.run(c.clientId, r.seq, r.messageId, r.qos, b(r.retain), encodeIds(r.subIds));
          add(r.messageId, +1);
          if (r.seq > maxSeq) maxSeq = r.seq;
          break;
        }
        case 'dequeue':
          add(s.dequeue.get(c.clientId, c.seq) as number | undefined, -1);
          break;
        case 'inflight': {
          const r = c.ref;
          const ids = encodeIds(r.subIds);
          // New packet id (the common case): one INSERT. Else an update in place keeps the send order.
          if (s.inflightIns.run(c.clientId, r.packetId, r.messageId, r.qos, b(r.retain), ids, r.state).changes === 0) {
            const old = s.inflightOld.get(c.clientId, r.packetId) as number | undefined;
            s.inflightUpd.run(r.messageId, r.qos, b(r.retain), ids, r.state, c.clientId, r.packetId);
            if (old === r.messageId) break;
            add(old, -1);
          }
          add(r.messageId, +1);
          break;
        }
        case 'inflightDone':
          add(s.inflightDone.get(c.clientId, c.packetId) as number | undefined, -1);
          break;
        case 'qos2':
          s.qos2.run(c.clientId, c.packetId);
          break;
        case 'qos2Done':
          s.qos2Done.run(c.clientId, c.packetId);
          break;
        case 'retain':
          add(s.unretain.get(c.topic) as number | undefined, -1);
          s.retain.run(c.topic, c.messageId);
          add(c.messageId, +1);
          break;
        case 'unretain':
          add(s.unretain.get(c.topic) as number | undefined, -1);
          break;
        case 'will': {
          const w = c.will;
          s.will.run(w.clientId, w.will.topic, w.will.payload, w.will.qos, b(w.will.retain), encodeProps(w.will.properties), w.fireAt, n(w.username), n(w.listenerPort));
          break;
        }
        case 'willDone':
          s.willDone.run(c.clientId);
          break;
        default:
          throw new StoreError(`database ${this.file}: unknown change ${JSON.stringify((c as { op?: unknown }).op)}`);
      }
    }
    // Reference counts of messages stored before: a few one by one, many in one statement.
    const old: Array<[number, number]> = [];
    for (const [id, d] of deltas) {
      const m = fresh.get(id);
      if (m === undefined) {
        if (d !== 0) old.push([id, d]);
      } else if (d > 0) {
        // already stored (by an earlier commit): then its count changes like any other's
        if (s.insMessage.run(m.id, m.topic, m.payload, m.qos, b(m.retain), encodeProps(m.properties), n(m.expiresAt), n(m.origin), d).changes === 0) {
          old.push([id, d]);
        }
      } else if (d < 0) {
        old.push([id, d]); // a reference to it went in this commit, so it was stored before
      }
    }
    if (old.length <= 4) {
      for (const [id, d] of old) {
        const r = s.refs.get(d, id) as { refs: number } | undefined;
        if (r === undefined) {
          if (d > 0) this.dangling();
        } else if (r.refs <= 0) {
          s.delMessage.run(id);
        }
      }
    } else {
      const json = JSON.stringify(old);
      if (s.refsBatch.run(json).changes !== old.length) {
        const missing = s.refsMissing.get(json) as number | undefined;
        if (missing !== undefined) this.dangling();
      }
      s.delUnreferenced.run(json);
    }
    if (maxId > 0) s.metaUp.run(maxId, 'last_message_id', maxId);
    if (maxSeq > 0) s.metaUp.run(maxSeq, 'last_seq', maxSeq);
  }

  /**
   * A reference to a message that is not stored. Commits are checked before they are journaled
   * (refsStored), so a fold meeting one means a set that got past that check (a message freed and
   * referenced again by commits of one fold without being recorded again): the reference is inert
   * (loads join it with its message), counted, and the fold goes on rather than blocking every
   * later commit.
   */
  private dangling(): void {
    this.folds.dangling++;
  }
}

interface Meta {
  maxId: number;
  maxSeq: number;
}

/** The highest message id and queue seq of a set before compaction (the meta counts them even when compaction leaves them out). */
function metaOf(changes: readonly Change[]): Meta {
  let maxId = 0;
  let maxSeq = 0;
  for (const c of changes) {
    if (c.op === 'message') {
      if (c.msg.id > maxId) maxId = c.msg.id;
    } else if (c.op === 'enqueue' && c.ref.seq > maxSeq) {
      maxSeq = c.ref.seq;
    }
  }
  return { maxId, maxSeq };
}
