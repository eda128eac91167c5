import { closeSync, constants, fdatasync, fdatasyncSync, fstatSync, ftruncateSync, openSync, readSync, renameSync, rmSync, writeSync, writevSync } from 'node:fs';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import { StoreError } from './store.js';

/**
 * The SQLite store's commit log (docs/persistence.md "How a commit is stored"): the file beside the
 * database (`midge.db-log`) where each commit's change set is appended as one record, one write
 * (and, with fsync, one fdatasync) per commit. An SQLite transaction of one journal row cost about
 * ten writes to the WAL and 60-70 µs here; an append costs one write and about 6 µs. A fold applies
 * the records to the tables in one SQLite transaction that also records the last record's seq
 * (meta `journal_folded`), then empties the file; opening the database folds what the file holds
 * past that seq (a broker killed between the fold's commit and the truncation leaves records that
 * are skipped).
 *
 * A record: length of the set (u32 LE), CRC-32 of the seq's 8 bytes and the set (u32 LE), the seq
 * (f64 LE), the set in the journal's binary form (src/store/journal.ts).
 */
export class CommitLog {
  /** the end of the last whole record: the next one is written there */
  private end: number;
  /** records appended since the file was last emptied */
  records = 0;
  /** the seq of the last record appended (0: none since the file was opened) */
  lastSeq = 0;
  private readonly head = Buffer.alloc(HEADER);
  /** descriptors with fdatasyncs of sync() running, and how many: one moved aside is closed after them */
  private readonly syncs = new Map<number, number>();

  private constructor(
    private fd: number,
    readonly path: string,
    private readonly fsync: boolean,
    end: number,
    private readonly syncEach: boolean,
  ) {
    this.end = end;
  }

  /**
   * Opens (creating it if needed) the log for appending after `end` (what readLog found whole; a
   * torn record after it is overwritten), or after what the file holds. With `fsync`, a new file's
   * directory entry is synced, and each append is synced before it returns, unless `group` is set:
   * then the caller syncs the appends of a turn together with sync().
   */
  static open(path: string, fsync: boolean, end?: number, group = false): CommitLog {
    let created = false;
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o644);
      created = true;
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'EEXIST') throw err;
      fd = openSync(path, constants.O_RDWR);
    }
    if (created && fsync) syncDir(dirname(path));
    let at = end;
    if (at === undefined) {
      try {
        at = fstatSync(fd).size;
      } catch (err) {
        closeSync(fd);
        throw err;
      }
    }
    return new CommitLog(fd, path, fsync, at, fsync && !group);
  }

  /** Appends one record; durable against a killed process when it returns (and power loss with fsync). */
  append(seq: number, set: Buffer): void {
    const head = this.head; // (written before the next append: writevSync copies it)
    head.writeUInt32LE(set.length, 0);
    head.writeDoubleLE(seq, 8);
    head.writeUInt32LE(crc32(set, crc32(head.subarray(8, 16))), 4);
    const total = HEADER + set.length;
    try {
      let n = writevSync(this.fd, [head, set], this.end);
      // a short write (rare: a full disk part way): the rest, or the error that stopped it
      while (n < total) {
        const rest = n < HEADER ? Buffer.concat([Buffer.from(head.subarray(n)), set]) : set.subarray(n - HEADER);
        const m = writeSync(this.fd, rest, 0, rest.length, this.end + n);
        if (m === 0) throw Object.assign(new Error('no space left on device (short write)'), { code: 'ENOSPC' });
        n += m;
      }
      if (this.syncEach) fdatasyncSync(this.fd);
    } catch (err) {
      // what part of the record was written is cut off again, so that the retry writes it whole
      try {
        ftruncateSync(this.fd, this.end);
      } catch {
        // readLog drops a record that is not whole at the end of the file
      }
      throw err;
    }
    this.end += total;
    this.records++;
    this.lastSeq = seq;
  }

  /**
   * fdatasync of what was appended, off the event loop's thread (libuv's pool): `done` is called when
   * every record appended before this call is durable against power loss, or with what failed.
   */
  sync(done: (err: Error | null) => void): void {
    const fd = this.fd;
    this.syncs.set(fd, (this.syncs.get(fd) ?? 0) + 1);
    fdatasync(fd, (err) => {
      const left = this.syncs.get(fd)! - 1;
      if (left > 0) this.syncs.set(fd, left);
      else {
        this.syncs.delete(fd);
        if (fd !== this.fd) closeQuietly(fd); // the log was moved aside meanwhile (rotate)
      }
      done(err);
    });
  }

  /** an fdatasync of sync() runs (close waits for it) */
  get syncing(): boolean {
    return this.syncs.size > 0;
  }

  /** the bytes of the file's whole records */
  get bytes(): number {
    return this.end;
  }

  /**
   * The file becomes the older log (`FILE-log.1`, which must not exist) and appends go to a new,
   * empty one: what a fold applied can then be dropped as a whole file while later records stay.
   * With fsync, the older file's records and both directory changes are synced first.
   */
  rotate(): void {
    if (this.fsync) fdatasyncSync(this.fd);
    renameSync(this.path, `${this.path}.1`);
    // (one that an fdatasync of sync() still uses is closed when it ends)
    if (!this.syncs.has(this.fd)) closeSync(this.fd);
    this.fd = openSync(this.path, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC, 0o644);
    if (this.fsync) syncDir(dirname(this.path));
    this.end = 0;
    this.records = 0;
  }

  /** Empties the file (after a fold committed what it held). A failure leaves the records, which later opens skip by seq. */
  clear(): void {
    try {
      ftruncateSync(this.fd, 0);
      this.end = 0;
      this.records = 0;
    } catch {
      // the records stay: their seqs are folded (meta journal_folded), so the next open skips them
    }
  }

  /** Closes the file (after the fdatasyncs of sync() ended). */
  close(): void {
    closeSync(this.fd);
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // nothing is lost: its records were synced by rotate before it was moved aside
  }
}

/** A record of the log: its seq and its change set. */
export interface LogRecord {
  seq: number;
  set: Buffer;
}

/**
 * The records of the log at `path` (none when there is no file) whose seq is above `after`, and the
 * end of the last whole record. A record cut short at the end of the file, or whose checksum fails
 * as the last record, is one whose append did not finish (never acknowledged): left out. A record
 * that fails its checksum with more after it, or seqs that do not increase, are corruption: a
 * StoreError naming the file and the offset.
 */
export function readLog(path: string, after: number): { records: LogRecord[]; end: number; skipped: number } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY);
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') return { records: [], end: 0, skipped: 0 };
    throw err;
  }
  let buf: Buffer;
  try {
    const size = fstatSync(fd).size;
    buf = Buffer.allocUnsafe(size);
    let n = 0;
    while (n < size) {
      const m = readSync(fd, buf, n, size - n, n);
      if (m === 0) break;
      n += m;
    }
    buf = buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
  const records: LogRecord[] = [];
  let at = 0;
  let last = -Infinity;
  let skipped = 0;
  while (at < buf.length) {
    if (at + HEADER > buf.length) break; // a header cut short: an append that did not finish
    const len = buf.readUInt32LE(at);
    const end = at + HEADER + len;
    if (end > buf.length) break; // a set cut short: the same
    const seq = buf.readDoubleLE(at + 8);
    const set = buf.subarray(at + HEADER, end);
    if (crc32(set, crc32(buf.subarray(at + 8, at + 16))) !== buf.readUInt32LE(at + 4)) {
      if (end === buf.length) break; // the last record, torn: the same
      throw new StoreError(`commit log ${path} is corrupt: the record at byte ${at} fails its checksum; see 'midge db check'`);
    }
    if (!(seq > last)) throw new StoreError(`commit log ${path} is corrupt: the record at byte ${at} has seq ${seq} after ${last}`);
    last = seq;
    if (seq > after) records.push({ seq, set });
    else skipped++;
    at = end;
  }
  return { records, end: at, skipped };
}

/** the log of database `file` */
export function logPath(file: string): string {
  return `${file}-log`;
}

/** the older log of database `file` (CommitLog.rotate), whose records come before the log's */
export function olderLogPath(file: string): string {
  return `${logPath(file)}.1`;
}

/**
 * The records of both logs of database `file` whose seq is above `after`, the older log's first
 * (readLog; seqs must increase across the two), and the end of the newer log's whole records.
 */
export function readLogs(file: string, after: number): { records: LogRecord[]; end: number; older: boolean } {
  const older = readLog(olderLogPath(file), after);
  const newer = readLog(logPath(file), after);
  const a = older.records;
  const b = newer.records;
  if (a.length > 0 && b.length > 0 && !(b[0]!.seq > a[a.length - 1]!.seq)) {
    throw new StoreError(`commit log ${logPath(file)} is corrupt: its first record (seq ${b[0]!.seq}) is not after the last of ${olderLogPath(file)} (seq ${a[a.length - 1]!.seq})`);
  }
  return { records: a.length === 0 ? b : a.concat(b), end: newer.end, older: older.end > 0 || older.skipped > 0 || exists(olderLogPath(file)) };
}

/** Removes the older log (its records are folded). */
export function removeOlderLog(file: string): void {
  rmSync(olderLogPath(file), { force: true });
}

function exists(path: string): boolean {
  try {
    closeSync(openSync(path, constants.O_RDONLY));
    return true;
  } catch {
    return false;
  }
}

const HEADER = 16;

function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, constants.O_RDONLY);
    fdatasyncSync(fd);
  } catch {
    // a file system that cannot sync a directory: the file's own syncs still hold for its data
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
