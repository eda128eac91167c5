import { accessSync, constants, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { StoreError } from './store.js';

/**
 * The SQLite store's file (docs/persistence.md; the store itself is src/store/sqlite.ts): one database
 * in WAL mode, held with an exclusive lock for as long as the store is open; its schema versions and
 * migrations; errors that name the file. better-sqlite3 is loaded on first open only, so a broker
 * without persistence never loads the native module.
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

/**
 * Schema version 3 journals commits in a log file beside the database (src/store/sqlite-log.ts) and
 * records in `meta` the seq of the last one folded into the tables. A Midge of version 2 would not
 * read that file: the version keeps it from opening the database.
 */
export const SCHEMA_V3 = `
INSERT INTO meta (key, value) VALUES ('journal_folded', 0);
`;

/** MIGRATIONS[v] takes a database from schema version v to v + 1 (0 = empty file). */
export type Migration = (db: Database) => void;
export const MIGRATIONS: readonly Migration[] = [(db) => db.exec(SCHEMA_V1), (db) => db.exec(SCHEMA_V2), (db) => db.exec(SCHEMA_V3)];
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
  else if (base === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT') text = `cannot ${doing} database ${file}: disk full (${msg})`;
  else if (code === 'EIO') text = `cannot ${doing} database ${file}: I/O error (${msg})`;
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
