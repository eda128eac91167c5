import { accessSync, constants, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import type { QoS } from '../codec/types.js';
import { compact } from './compact.js';
import { decodeIds, decodeProps, encodeIds, encodeProps } from './encode.js';
import { decodeChanges, encodeChanges, summarize, type SetSummary } from './journal.js';
import { migrate, openDatabase, storeError, type Database } from './sqlite-file.js';
import { CommitLog, logPath, readLogs, removeOlderLog } from './sqlite-log.js';
import { PendingSets } from './sqlite-pending.js';
import {
  applyChanges,
  inflightFromRow,
  messageFromRaw,
  metaOf,
  PAGE,
  prepare,
  queuedFromRow,
  sessionFromRow,
  willFromRow,
  type Meta,
  type RefRow,
  type SessionRow,
  type Statements,
  type WillRow,
} from './sqlite-rows.js';
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

export interface SqliteStoreOptions extends FoldOptions {
  file: string;
  /** synchronous=FULL instead of NORMAL (default false) */
  fsync?: boolean;
  /**
   * The caller appends commits to the log itself and hands them over with addJournaled (the thread
   * store: sqlite-thread.ts); the store folds what the log holds at open and does not keep it open.
   */
  appendsElsewhere?: boolean;
  /** the thread store: how long its log may grow, holding records a fold did not apply, before it is moved aside (default 16 MiB) */
  logRotateBytes?: number;
}

/** When the journal is folded into the tables (docs/persistence.md "How a commit is stored"). */
export interface FoldOptions {
  /**
   * once this many journaled changes are left to write, not cancelled by later ones (default
   * 250,000); and at the latest after 4 times as many journaled changes, cancelled or not
   */
  foldChanges?: number;
  /** after this many bytes of journaled message payloads (default 64 MiB) */
  foldBytes?: number;
  /**
   * this long after the first change not folded yet (ms, default 1000), if no more than a tenth of
   * foldChanges is left to write; else when one of the bounds above is reached, when no commit came
   * for this long, or 30 times this long
   */
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
    store.replayJournal(opts.appendsElsewhere === true ? 'fold' : 'commit');
    return store;
  } catch (err) {
    db.close();
    throw storeError(opts.file, err);
  }
}

// --- the store -------------------------------------------------------------------------------------

/**
 * How a commit is stored (docs/persistence.md): `commit` appends the change set as ONE record to
 * the commit log beside the database (src/store/sqlite-log.ts: one write, durable against a killed
 * process when it returns; with fsync, one fdatasync), and keeps the set in memory. Every
 * `foldChanges` changes (or `foldMs`) the sets journaled since the last fold are compacted together
 * (src/store/compact.ts: a message queued or sent in one commit and acknowledged a few commits later
 * cancels out) and applied to the tables in one transaction that also records the last seq folded;
 * then the log is emptied. A broker killed between folds leaves records in the log; opening the file
 * folds them (`replayJournal`), and the rows that schema version 2 journaled in its `journal` table.
 * Reads fold first, so that they see every commit.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  private closed = false;
  private readonly s: Statements;
  private readonly foldTx: (changes: readonly Change[], rowsUpTo: number, logUpTo: number, meta: Meta) => void;
  /** the commit log (opened by replayJournal unless it only reads) */
  private log: CommitLog | undefined;
  private readonly fsync: boolean;
  private readonly foldChanges: number;
  private readonly foldBytes: number;
  private readonly foldMs: number;
  /** the sets journaled and not folded yet, compacted as they come */
  private readonly pending = new PendingSets();
  private digestSoon = false;
  /** the seq of the last commit's log record, and of the last commit before the fold timer's last tick */
  private journaled = 0;
  private journaledAtTick = 0;
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
    opts: FoldOptions & { fsync?: boolean } = {},
  ) {
    this.s = prepare(db);
    this.fsync = opts.fsync ?? false;
    this.foldTx = db.transaction((changes: readonly Change[], rowsUpTo: number, logUpTo: number, meta: Meta) => {
      applyChanges(this.s, this.file, changes, meta, this.onDangling);
      if (rowsUpTo > 0) this.s.journalDrop.run(rowsUpTo);
      if (logUpTo > 0) this.s.metaUp.run(logUpTo, 'journal_folded', logUpTo);
    });
    this.directTx = db.transaction((changes: readonly Change[]) => applyChanges(this.s, this.file, compact(changes), metaOf(changes), this.onDangling));
    this.mode = opts.mode ?? 'auto';
    if (this.mode === 'direct') this.directLeft = Infinity;
    this.foldChanges = opts.foldChanges ?? 250_000;
    this.foldBytes = opts.foldBytes ?? 64 * 1024 * 1024;
    this.foldMs = opts.foldMs ?? 1000;
  }

  /** test-only: how many message bodies are stored */
  messageCount(): number {
    this.fold();
    return this.s.messageCount.get() as number;
  }

  /** test-only: commits journaled and not folded yet (records of the log; rows of a version 2 journal table) */
  journalRows(): number {
    return (this.db.prepare('SELECT count(*) FROM journal').pluck().get() as number) + (this.log?.records ?? 0);
  }

  /**
   * Folds what the journal holds into the tables (at open: the commits since the last fold of a
   * broker that stopped without folding: the rows of schema version 2's journal table, then the
   * commit log's records past the last seq folded). `then`: 'commit' (a store that takes commits)
   * empties the log and keeps it open for them; 'fold' (`midge db compact`) empties it; 'read'
   * (`midge db check` and `dump`, inside a transaction that they roll back) leaves the file as it
   * is. A set that cannot be decoded is a StoreError naming it. Returns how many commits it folded.
   */
  replayJournal(then: 'commit' | 'fold' | 'read' = 'commit'): number {
    const rows = this.s.journalAll.all() as Array<[number, Buffer]>;
    const meta = this.s.meta.all() as Array<{ key: string; value: number }>;
    const folded = meta.find((r) => r.key === 'journal_folded')?.value ?? 0;
    const path = logPath(this.file);
    const log = readLogs(this.file, folded);
    const all: Change[] = [];
    const read = (data: Buffer, what: string): void => {
      try {
        const set = decodeChanges(data, false);
        for (let i = 0; i < set.length; i++) all.push(set[i]!);
      } catch (err) {
        throw new StoreError(`database ${this.file}: ${what} is corrupt (${err instanceof Error ? err.message : String(err)}); see 'midge db check'`);
      }
    };
    for (const [seq, data] of rows) read(data, `journal entry ${seq}`);
    for (const r of log.records) read(r.set, `commit log record ${r.seq} (${path})`);
    const logUpTo = log.records.length > 0 ? log.records[log.records.length - 1]!.seq : 0;
    if (all.length > 0 || rows.length > 0 || logUpTo > 0) {
      const changes = compact(all);
      this.foldTx(changes, rows.length > 0 ? rows[rows.length - 1]![0] : 0, logUpTo, metaOf(all));
      this.folds.count++;
      this.folds.changes += all.length;
      this.folds.written += changes.length;
    }
    this.journaled = Math.max(folded, logUpTo);
    if (then !== 'read') {
      if (log.older) removeOlderLog(this.file);
      // emptied even when it holds only a torn record (bytes after a record written over it would be read as one)
      const out = CommitLog.open(path, this.fsync, log.end);
      out.clear();
      if (then === 'commit') this.log = out;
      else out.close();
    }
    return rows.length + log.records.length;
  }

  /** the seq of the last commit journaled (the thread store numbers its log's records after it) */
  get lastJournaled(): number {
    return this.journaled;
  }

  /**
   * On the store's thread, whose commits the broker's thread appends to the log itself
   * (sqlite-thread.ts): `blob`, summarized by `set`, is the log's record `seq`, durable already.
   * It is added to what the next fold applies, always (a fold that records a seq folds every record
   * up to it); a fold that fails here is reported by `foldFailing` and retried by foldNow().
   */
  addJournaled(seq: number, blob: Buffer, set: SetSummary): void {
    this.check();
    if (!(seq > this.journaled)) throw new StoreError(`database ${this.file}: commit log record ${seq} comes after ${this.journaled}`);
    this.journaled = seq;
    if (set.count === 0) return;
    this.pending.add(blob, set);
    if (this.directLeft > 0) {
      // little cancels out: fold at once rather than keep it (what 'direct' commits did)
      this.directLeft--;
      if (!this.foldSoon) {
        this.foldSoon = true;
        setImmediate(this.foldLater);
      }
      return;
    }
    this.schedule();
  }

  /** Refuses (StoreError) a reference to a message that no set journaled records and the tables do not hold. */
  checkRefs(ids: readonly number[]): void {
    this.check();
    this.refsStored({ count: 0, bytes: 0, messageIds: [], refIds: ids });
  }

  /** Folds now (the thread store's retry after a fold failed); throws what the fold threw. */
  foldNow(): void {
    this.check();
    this.fold();
  }

  /** the last fold failed (commits wait for one that succeeds) */
  get foldFailing(): boolean {
    return this.foldFailed;
  }

  /** called after each fold with the seq of the last log record it applied (the thread store drops what the log holds up to it) */
  onFolded: ((seq: number) => void) | undefined;

  /** Applies the journaled sets to the tables, in one transaction; throws what SQLite threw. */
  private fold(): void {
    if (this.foldTimer !== undefined) {
      clearTimeout(this.foldTimer);
      this.foldTimer = undefined;
    }
    if (this.pending.empty || this.closed) return;
    const { changes, added, maxId, maxSeq } = this.pending.left();
    try {
      this.foldTx(changes, 0, this.journaled, { maxId, maxSeq });
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
    this.log?.clear();
    this.onFolded?.(this.journaled);
    this.folds.count++;
    this.folds.changes += added;
    this.folds.written += changes.length;
    // Little cancelled out (a queue for an offline client, retained messages): writing the tables at
    // once costs less than journaling it and folding it later; the journal is tried again after a while.
    if (this.mode === 'auto' && added >= 1000 && changes.length > added * DIRECT_ABOVE) this.directLeft = DIRECT_SPELL;
    this.pending.reset();
  }

  private digestLater = (): void => {
    this.digestSoon = false;
    try {
      this.pending.digest();
    } catch {
      // the set stays undigested: the fold that needs it meets the error and reports it
      return;
    }
    if (this.pending.live >= this.foldChanges && !this.foldSoon) {
      this.foldSoon = true;
      setImmediate(this.foldLater);
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
      if (this.pending.records(id) || this.s.hasMessage.get(id) !== undefined) continue;
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

  /**
   * The timer: a fold that is cheap (most of what was journaled cancelled out) is done every foldMs,
   * so that the journal stays short; one that would write much (a queue for an offline client that
   * may yet reconnect and cancel it) waits for a bound (foldChanges, foldBytes), a tick with no
   * commit since the one before (idle), or 30 foldMs.
   */
  private foldDue = (): void => {
    this.foldTimer = undefined;
    try {
      this.pending.digest();
    } catch {
      this.foldLater(); // the fold meets the error and reports it
      return;
    }
    const waited = performance.now() - this.pending.since;
    // no commit since the last tick: the store is idle, the cheapest time for a fold that writes much
    // (and a crash then has less journal to replay)
    const idle = this.journaled === this.journaledAtTick;
    this.journaledAtTick = this.journaled;
    if (this.pending.live <= this.foldChanges / 10 || idle || waited >= 30 * this.foldMs) this.foldLater();
    else {
      this.foldTimer = setTimeout(this.foldDue, this.foldMs);
      this.foldTimer.unref();
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

  /** The rows of a page of loadRetained, as encodeRetainedRows takes them (the `retainedRows` statement). */
  retainedRows(after: string | undefined, max: number): unknown[][] {
    return this.read(() => this.s.retainedRows.all(after ?? '', max) as unknown[][]);
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
      const log = this.log;
      if (log === undefined) throw new StoreError(`database ${this.file}: its commit log is not open here: it takes no commits`);
      log.append(this.journaled + 1, blob);
      this.journaled++;
      this.pending.add(blob, set);
      this.schedule();
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

  /** After a set is added to the pending ones: when to digest it and when to fold. */
  private schedule(): void {
    {
      const p = this.pending;
      if (p.undigestedCount >= 64) {
        // commits come faster than the event loop turns (a caller committing in a loop): digest now
        try {
          p.digest();
        } catch {
          // the set stays undigested: the fold that needs it meets the error and reports it
        }
      } else if (!this.digestSoon) {
        // after this commit has answered (on the worker: after its reply is posted)
        this.digestSoon = true;
        setImmediate(this.digestLater);
      }
      // (what is left to write, p.live, counts the sets digested so far: see digestLater)
      const journalCap = 4 * this.foldChanges;
      const live = p.live;
      if (p.changes >= journalCap || p.bytes >= this.foldBytes || live >= this.foldChanges) {
        // after this commit has answered (on the worker: after its reply is posted); at once when
        // commits come faster than the event loop turns (a caller committing in a loop)
        if (p.changes >= 2 * journalCap || live >= 2 * this.foldChanges) {
          this.foldLater();
        } else if (!this.foldSoon) {
          this.foldSoon = true;
          setImmediate(this.foldLater);
        }
      } else if (this.foldTimer === undefined) {
        this.foldTimer = setTimeout(this.foldDue, this.foldMs);
        this.foldTimer.unref();
      }
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
        this.log?.close();
        this.db.close();
      } catch (err) {
        return Promise.reject(storeError(this.file, err, 'close'));
      }
    }
    return Promise.resolve();
  }

  /**
   * A reference to a message that is not stored. Commits are checked before they are journaled
   * (refsStored), so a fold meeting one means a set that got past that check (a message freed and
   * referenced again by commits of one fold without being recorded again): the reference is inert
   * (loads join it with its message), counted, and the fold goes on rather than blocking every
   * later commit.
   */
  private readonly onDangling = (): void => {
    this.folds.dangling++;
  };
}
