import { Worker } from 'node:worker_threads';
import type { Properties } from '../codec/types.js';
import { CommitWriter, decodeRetained, encodeCommitParts } from './journal.js';
import { storeError } from './sqlite-file.js';
import { CommitLog, logPath, removeOlderLog } from './sqlite-log.js';
import { IdTable } from './compact.js';
import type { SqliteStoreOptions } from './sqlite.js';
import type { PageReply, Request, WireError } from './sqlite-worker.js';
import {
  StoreError,
  type Change,
  type Store,
  type StoredMessage,
  type StoredSession,
  type StoredSubscription,
  type StoredWill,
  type Window,
} from './store.js';

/**
 * The SQLite store run on a worker thread (docs/persistence.md "The store's thread"): the broker's
 * event loop encodes each commit's change set (src/store/journal.ts) and appends it to the commit log
 * itself (src/store/sqlite-log.ts: one write, durable against a killed process when it returns), so
 * that the acknowledgements of a turn go out in that turn, with no round trip to another thread.
 * The sets go to the worker a few milliseconds later, several per message; it adds them to what its
 * next fold applies to the tables, folds and loads there, and says which records each fold applied,
 * so that this thread drops them from the log. A set that refers to a message that neither it nor
 * a set this store appended records (`recorded`) waits for the worker to check the reference. With
 * fsync, each turn's commits wait for one fdatasync of the log, run in libuv's pool (not by the
 * worker, which may be busy folding). Same contract
 * as SqliteStore (the contract suite runs against both).
 */
export class SqliteThreadStore implements Store {
  readonly kind = 'sqlite' as const;
  /**
   * Commits in flight at once: they are applied in the order issued and, after one fails, the others
   * are refused until the caller's next commit (its retry) succeeds (Store.pipeline).
   */
  readonly pipeline = PIPELINE;
  /** a commit failed and the caller can have seen it: the next one issued is its retry, which is applied */
  private resume = false;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private dead: StoreError | undefined;
  private closing: Promise<void> | undefined;
  /** the client ids of the last loadSessions, in order, and windows fetched ahead (see loadWindow) */
  private sessionOrder: string[] = [];
  private readonly sessionIndex = new Map<string, number>();
  private readonly windows = new Map<string, Window>();
  /** incremented by every commit: windows fetched across one are not kept */
  private epoch = 0;

  /** the commit log, appended to on this thread; the seq of its last record */
  private readonly log: CommitLog;
  private seq: number;
  /** the last seq of the older log (FILE-log.1, see CommitLog.rotate); 0: none */
  private older = 0;
  /** every commit is encoded into this one buffer (see CommitWriter) */
  private readonly writer = new CommitWriter();
  /**
   * Sets appended and not handed to the worker yet, one after the other in encodeCommit's form, in a
   * buffer shared with the worker (a SharedArrayBuffer: handed over without a copy or a transfer, the
   * worker copies out what a hand-off names); where each set ends, their seqs and the bytes.
   */
  private outbox = sharedBuffer(SHARED_BYTES);
  private outEnds: number[] = [];
  private outSeqs: number[] = [];
  private outBytes = 0;
  /** shared buffers whose hand-off the worker answered (filled again: at most SPARE kept) */
  private spare: Buffer[] = [];
  /** test-only: shared hand-off buffers made, and sets handed off alone in a buffer of their own */
  readonly handOffs = { buffers: 1, alone: 0 };
  private flushTimer: NodeJS.Timeout | undefined;
  /** bytes handed to the worker that it has not answered for (commits wait past MAX_LAG) */
  private lag = 0;
  /** the worker's folds fail: each commit first asks it to fold, and fails while that fails */
  private foldFailing = false;
  /** a commit failed: the ones issued before the caller saw it are refused (see commit) */
  private blocked = false;
  /** commits waiting behind one that waits for the worker, in order */
  private jobs: Job[] = [];
  private running = false;
  /**
   * ids of the messages that the sets appended by this store recorded, or that the windows it loaded
   * hold (value 1), the last RECORDED of them at most: a set may refer to them without recording them (a queued message sent in a
   * later turn: the drain of an offline client's queue refers to every message of it) without a
   * check by the worker. A reference to any other (a retained message restored from the file, or
   * one recorded more than RECORDED ids ago) is checked by the worker: it is in its tables, or a set records it.
   * As lenient as the worker's own check of the sets it has not folded: a message recorded and
   * freed since passes (a fold counts such a reference as dangling, see SqliteStore).
   */
  private readonly recorded = new IdTable();
  /** test-only: how many times the log was moved aside */
  logMoves = 0;
  /** fsync: commits appended and not covered by an fdatasync started yet (see synced) */
  private syncWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  /** fsync: an fdatasync of the log is started or about to be */
  private syncing = false;

  private constructor(
    private readonly worker: Worker,
    readonly file: string,
    seq: number,
    private readonly fsync: boolean,
    private readonly rotateBytes: number,
  ) {
    this.seq = seq;
    // (the worker emptied it when it folded it at open)
    this.log = CommitLog.open(logPath(file), fsync, undefined, true);
    worker.on('message', (m: number | { id: number; ok?: unknown; err?: WireError } | { folded: number }) => {
      if (typeof m === 'object' && 'folded' in m) {
        this.folded(m.folded);
        return;
      }
      if (typeof m === 'number') {
        // a request answered without a value (most are sets handed over): its id alone
        const w = this.waiting.get(m);
        if (w === undefined) return;
        this.waiting.delete(m);
        w.resolve(undefined);
        return;
      }
      const w = this.waiting.get(m.id);
      if (w === undefined) return;
      this.waiting.delete(m.id);
      if (m.err !== undefined) w.reject(fromWire(m.err));
      else w.resolve(m.ok);
    });
    const fail = (why: string): void => {
      this.dead ??= new StoreError(`database ${file}: the store's worker thread stopped (${why})`);
      for (const w of this.waiting.values()) w.reject(this.dead);
      this.waiting.clear();
    };
    worker.on('error', (err) => fail(err instanceof Error ? err.message : String(err)));
    worker.on('exit', (code) => fail(`exit code ${code}`));
  }

  /** Starts the worker, which opens (creating and migrating if needed) the file and folds its journal. */
  static async open(opts: SqliteStoreOptions): Promise<SqliteThreadStore> {
    const worker = new Worker(new URL('./sqlite-worker.js', import.meta.url), { workerData: { ...opts } });
    let onMessage!: (m: { ready: boolean; seq?: number; err?: WireError }) => void;
    let onError!: (err: Error) => void;
    let onExit!: (code: number) => void;
    const first = await new Promise<{ ready: boolean; seq?: number; err?: WireError }>((resolve, reject) => {
      onMessage = resolve;
      onError = reject;
      onExit = (code) => reject(new StoreError(`cannot open database ${opts.file}: the store's worker thread exited (${code})`));
      worker.once('message', onMessage);
      worker.once('error', onError);
      worker.once('exit', onExit);
    })
      .catch((err: unknown) => {
        throw err instanceof StoreError ? err : new StoreError(`cannot open database ${opts.file}: ${err instanceof Error ? err.message : String(err)}`);
      })
      .finally(() => {
        // only our own listeners: the Worker object has internal ones
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      });
    if (!first.ready) {
      await worker.terminate();
      throw fromWire(first.err!);
    }
    try {
      return new SqliteThreadStore(worker, opts.file, first.seq ?? 0, opts.fsync === true, opts.logRotateBytes ?? ROTATE_BYTES);
    } catch (err) {
      await worker.terminate();
      throw new StoreError(`cannot open the commit log ${logPath(opts.file)}: ${err instanceof Error ? err.message : String(err)}`, (err as { code?: string }).code, { cause: err });
    }
  }

  private call<T>(req: Body, transfer?: ArrayBuffer[]): Promise<T> {
    if (this.dead !== undefined) return Promise.reject(this.dead);
    // what was appended goes first: the worker then reads, checks and folds with every commit
    if (req.op !== 'journaled' && this.outEnds.length > 0) this.flush();
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...req, id }, transfer);
    });
  }

  /**
   * Appends the set to the log and resolves (with fsync: after this turn's fdatasync). Commits are
   * applied in the order they are issued; one that waits for the worker (a reference to check, folds
   * failing, the worker too far behind) holds those issued after it. When one fails, those issued
   * before the caller saw the failure are refused (StoreError) and the first one issued after it
   * (the caller's retry) is applied, as the Store contract asks of a store with commits in flight.
   */
  commit(changes: readonly Change[]): Promise<void> {
    if (this.windows.size > 0) this.windows.clear();
    this.epoch++;
    if (this.dead !== undefined) return Promise.reject(this.dead);
    const resume = this.resume;
    this.resume = false;
    const parts = changes.length === 0 ? undefined : encodeCommitParts(changes, this.writer);
    const job: Job = { parts, resume, contained: parts === undefined || contains(parts.messageIds, parts.refIds, this.recorded), resolve: noop, reject: noop };
    if (!this.running && this.jobs.length === 0 && !(this.blocked && !resume) && !this.foldFailing && job.contained && this.lag < MAX_LAG) {
      try {
        if (parts !== undefined) this.append(parts);
        this.blocked = false;
      } catch (err) {
        return Promise.reject(this.failed(err));
      }
      return parts !== undefined && this.fsync ? this.synced() : Promise.resolve();
    }
    // it waits: its own copy (the writer's buffer holds the next commit by then)
    if (parts !== undefined) job.parts = { ...parts, buf: Buffer.from(parts.buf) };
    return new Promise<void>((resolve, reject) => {
      job.resolve = resolve;
      job.reject = reject;
      this.jobs.push(job);
      if (!this.running) void this.runJobs();
    });
  }

  /** Commits that wait for the worker, one at a time, in order. */
  private async runJobs(): Promise<void> {
    this.running = true;
    try {
      for (let job = this.jobs.shift(); job !== undefined; job = this.jobs.shift()) {
        try {
          if (this.blocked && !job.resume) {
            throw new StoreError(`database ${this.file}: commit not applied: an earlier commit failed and has not been retried yet`);
          }
          if (this.dead !== undefined) throw this.dead;
          const parts = job.parts;
          if (parts !== undefined) {
            if (this.foldFailing) {
              await this.call({ op: 'fold' });
              this.foldFailing = false;
            }
            if (!job.contained) await this.call({ op: 'check', ids: notIn(parts.messageIds, parts.refIds, this.recorded) });
            if (this.lag >= MAX_LAG) await this.call({ op: 'barrier' }); // the worker caught up with what it was handed
            this.append(parts);
          }
          this.blocked = false;
          if (parts !== undefined && this.fsync) await this.synced();
          job.resolve();
        } catch (err) {
          const refused = this.blocked && !job.resume;
          job.reject(refused ? (err as Error) : this.failed(err));
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** A commit failed: the next commit issued after the caller sees it is the retry (see commit). */
  private failed(err: unknown): StoreError {
    this.blocked = true;
    // set once the caller can have seen the failure (the rejection's reactions run after this one)
    void Promise.resolve().then(() => {
      this.resume = true;
    });
    if (err instanceof StoreError) return err;
    return storeError(this.file, err, 'write');
  }

  /** Appends one set to the log (throws what the write threw) and queues it for the worker. */
  private append(parts: { buf: Buffer; blobLength: number; messageIds: number[] }): void {
    const seq = this.seq + 1;
    this.log.append(seq, parts.buf.subarray(0, parts.blobLength));
    this.seq = seq;
    const ids = parts.messageIds;
    if (this.recorded.extent > RECORDED) this.recorded.clear();
    for (let i = 0; i < ids.length; i++) this.recorded.set(ids[i]!, 1);
    const set = parts.buf;
    if (set.length > SHARED_BYTES - FLUSH_BYTES) {
      // a set of large messages: after those before it, alone, in a buffer of its own that moves
      this.flush();
      const own = Buffer.allocUnsafeSlow(set.length);
      set.copy(own);
      this.handOff(own, [set.length], [seq], [own.buffer as ArrayBuffer]);
      this.handOffs.alone++;
      return;
    }
    // (outBytes < FLUSH_BYTES here: it is flushed when it gets there)
    set.copy(this.outbox, this.outBytes);
    this.outBytes += set.length;
    this.outEnds.push(this.outBytes);
    this.outSeqs.push(seq);
    if (this.outBytes >= FLUSH_BYTES) this.flush();
    else if (this.flushTimer === undefined) this.flushTimer = setTimeout(this.flushLater, FLUSH_MS);
  }

  private readonly flushLater = (): void => {
    this.flushTimer = undefined;
    this.flush();
  };

  /**
   * Hands the sets appended since the last time to the worker in one message: the shared buffer
   * that holds them, which the worker copies them out of before it answers; until then the next
   * sets go into another one. (Before, each set had a buffer of its own that moved to the worker and
   * was freed there: the next one, new memory again, cost the event loop a page fault per 4 KiB it
   * wrote, about a sixth of its faults in the durable fan-in.)
   */
  private flush(): void {
    if (this.flushTimer !== undefined) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    const ends = this.outEnds;
    if (ends.length === 0) return;
    const buf = this.outbox;
    const bytes = this.outBytes;
    const seqs = this.outSeqs;
    let next = this.spare.pop();
    if (next === undefined) {
      next = sharedBuffer(SHARED_BYTES);
      this.handOffs.buffers++;
    }
    this.outbox = next;
    this.outEnds = [];
    this.outSeqs = [];
    this.outBytes = 0;
    this.handOff(buf.subarray(0, bytes), ends, seqs, undefined, buf);
  }

  /** `data`: sets ending at `ends` (records `seqs`); `shared`: the shared buffer it is in, kept for reuse once answered */
  private handOff(data: Buffer, ends: number[], seqs: number[], transfer: ArrayBuffer[] | undefined, shared?: Buffer): void {
    const bytes = data.length;
    this.lag += bytes;
    const answered = (): void => {
      this.lag -= bytes;
      if (shared !== undefined && this.spare.length < SPARE) this.spare.push(shared);
    };
    this.call<{ foldFailing?: boolean } | undefined>({ op: 'journaled', data, ends, seqs }, transfer).then(
      (r) => {
        answered();
        if (r?.foldFailing === true) this.foldFailing = true;
      },
      () => {
        // the worker failed on them (it stopped, or a set it could not read): every later commit asks it to fold first
        answered();
        this.foldFailing = true;
      },
    );
  }

  /**
   * fsync: resolves when an fdatasync of the log that started after this commit's append is done
   * (group commit: the commits of a turn share the one started when the turn's I/O is over; those
   * appended while it runs share the next, started when it ends).
   */
  private synced(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.syncWaiters.push({ resolve, reject });
      if (!this.syncing) {
        this.syncing = true;
        setImmediate(this.startSync);
      }
    });
  }

  private readonly startSync = (): void => {
    const waiters = this.syncWaiters;
    this.syncWaiters = [];
    this.log.sync((err) => {
      const failure = err === null ? undefined : this.failed(err);
      for (const w of waiters) {
        if (failure === undefined) w.resolve();
        else w.reject(failure);
      }
      if (this.syncWaiters.length > 0) this.startSync();
      else this.syncing = false;
    });
  };

  /**
   * A fold applied the log's records up to `seq`: a log whose records are all applied is emptied (or
   * removed, the older one); one that holds later records too is moved aside once it is large, so
   * that the next fold can drop it whole.
   */
  private folded(seq: number): void {
    try {
      if (this.older > 0 && this.older <= seq) {
        removeOlderLog(this.file);
        this.older = 0;
      }
      if (this.log.lastSeq <= seq) this.log.clear();
      else if (this.older === 0 && this.log.bytes >= this.rotateBytes) {
        const last = this.log.lastSeq;
        this.log.rotate();
        this.older = last;
        this.logMoves++;
      }
    } catch {
      // the records stay in the log: a later fold drops them, and opening the file skips them (meta journal_folded)
    }
  }

  loadMeta(): Promise<{ lastMessageId: number; lastSeq: number }> {
    return this.call({ op: 'loadMeta' });
  }

  async loadSession(clientId: string): Promise<StoredSession | undefined> {
    return (await this.call<StoredSession | null | undefined>({ op: 'loadSession', clientId })) ?? undefined;
  }

  /**
   * A broker restoring its sessions asks for the window of every session that loadSessions gave, in
   * that order: one round trip per window would cost more than the reads. So a window is fetched with
   * those of the next sessions (WINDOW_BATCH per round trip, read with three queries in all) and the
   * others are kept until asked for; every commit drops what is kept (it may change a window).
   */
  async loadWindow(clientId: string): Promise<Window> {
    const kept = this.windows.get(clientId);
    if (kept !== undefined) {
      this.windows.delete(clientId);
      return kept;
    }
    const at = this.sessionIndex.get(clientId);
    const ids = at === undefined ? [clientId] : this.sessionOrder.slice(at, at + WINDOW_BATCH);
    const epoch = this.epoch;
    const ws = await this.call<Window[]>({ op: 'loadWindows', clientIds: ids });
    // the messages of a window are stored: sets that refer to them (its queue drained after a
    // restart) need no check by the worker, which would hold every commit behind a round trip
    if (this.recorded.extent > RECORDED) this.recorded.clear();
    for (const w of ws) {
      for (const e of w.inflight) {
        e.message = fixMessage(e.message);
        this.recorded.set(e.messageId, 1);
      }
      for (const e of w.queued) {
        e.message = fixMessage(e.message);
        this.recorded.set(e.messageId, 1);
      }
    }
    if (epoch === this.epoch) for (let i = 1; i < ids.length; i++) this.windows.set(ids[i]!, ws[i]!);
    return ws[0]!;
  }

  async loadWills(): Promise<StoredWill[]> {
    const wills = await this.call<StoredWill[]>({ op: 'loadWills' });
    for (const w of wills) {
      w.will.payload = toBuffer(w.will.payload);
      if (w.will.properties !== undefined) w.will.properties = fixProps(w.will.properties);
    }
    return wills;
  }

  loadSessions(): AsyncIterable<StoredSession> {
    this.sessionOrder = [];
    this.sessionIndex.clear();
    const order = this.sessionOrder;
    const index = this.sessionIndex;
    return this.pages<StoredSession>('sessions', (page) => {
      for (const x of page as StoredSession[]) {
        index.set(x.clientId, order.length);
        order.push(x.clientId);
      }
      return page as StoredSession[];
    });
  }

  loadSubscriptions(): AsyncIterable<{ clientId: string; sub: StoredSubscription }> {
    return this.pages<{ clientId: string; sub: StoredSubscription }>('subscriptions', (page) => page as Array<{ clientId: string; sub: StoredSubscription }>);
  }

  loadRetained(): AsyncIterable<{ topic: string; message: StoredMessage }> {
    return this.pages<{ topic: string; message: StoredMessage }>('retained', (_items, blob) => {
      // pairs of changes: the message, then its topic (see PageReply)
      try {
        return decodeRetained(toBuffer(blob!));
      } catch (err) {
        throw new StoreError(`database ${this.file}: a page of retained messages could not be read (${err instanceof Error ? err.message : String(err)})`);
      }
    });
  }

  /**
   * A load, a page (PAGE items) per round trip; each page asks for the items after the last one's
   * key, so nothing stays open in the worker between pages. The next page is asked for as soon as
   * one arrives, so that the worker reads it while this thread takes in the one before.
   */
  private async *pages<T>(kind: 'sessions' | 'subscriptions' | 'retained', read: (items: unknown[], blob?: Uint8Array) => T[]): AsyncIterable<T> {
    const ask = (after: string | [string, string] | undefined): Promise<PageReply> =>
      this.call<PageReply>({ op: 'page', kind, max: PAGE, ...(after !== undefined ? { after } : {}) } as Body);
    let next: Promise<PageReply> | undefined = ask(undefined);
    try {
      while (next !== undefined) {
        const reply: PageReply = await next;
        next = reply.done || reply.last === undefined ? undefined : ask(reply.last);
        const items = 'blob' in reply ? read([], reply.blob) : read(reply.items);
        for (const x of items) yield x;
      }
    } finally {
      // a consumer that stops early: the page asked for ahead is not wanted (nor its failure)
      next?.catch(() => undefined);
    }
  }

  /** test-only: how many message bodies are stored */
  messageCount(): Promise<number> {
    return this.call({ op: 'messageCount' });
  }

  /** test-only: the worker store's fold counters */
  async stats(): Promise<{ folds: Record<string, number> }> {
    return this.call({ op: 'stats' });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      // commits waiting for the worker go first; then the worker folds everything (and says so: the log is emptied)
      while (this.running || this.jobs.length > 0 || this.syncing) await new Promise((r) => setImmediate(r));
      try {
        if (this.dead === undefined) await this.call({ op: 'close' });
      } finally {
        this.dead ??= new StoreError(`database ${this.file} is closed`);
        this.log.close();
        await this.worker.terminate();
      }
    })();
    return this.closing;
  }
}

/** A Buffer over a new SharedArrayBuffer of `n` bytes. */
function sharedBuffer(n: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(n));
}

/** commits in flight at once (the Recorder's pipeline: they resolve in order here) */
const PIPELINE = 2;

/**
 * sets go to the worker this long after the first one appended, or at once past FLUSH_BYTES: a
 * postMessage costs the event loop about as much as encoding a few hundred changes, and the worker
 * needs the sets only for its folds (durable fan-in w0: 2 ms → 8 ms, 129–171k → 159–178k msgs/s in
 * 4 alternating pairs; the offline publish and drain unchanged)
 */
const FLUSH_MS = 8;
const FLUSH_BYTES = 1 << 20;
/** a shared hand-off buffer: a set up to SHARED_BYTES - FLUSH_BYTES goes into one, a larger one alone */
const SHARED_BYTES = 2 << 20;
/** shared hand-off buffers kept for reuse (more are made while the worker has not answered for them) */
const SPARE = 2;
/** bytes handed to the worker and not taken in yet, past which commits wait for it */
const MAX_LAG = 64 << 20;
/** how many recorded message ids the thread store keeps (4 bytes each while they are dense) */
const RECORDED = 1 << 21;
/** a log this long whose records are not all folded is moved aside at the next fold */
const ROTATE_BYTES = 16 << 20;

/** A commit that waits for the worker (see SqliteThreadStore.commit). */
interface Job {
  parts: { buf: Buffer; blobLength: number; messageIds: number[]; refIds: number[] } | undefined;
  resume: boolean;
  /** every message it refers to, it records */
  contained: boolean;
  resolve: () => void;
  reject: (err: Error) => void;
}

const noop = (): void => undefined;

/**
 * whether every id of `refs` is in `ids` (the ids a set records, nearly always in increasing order)
 * or in `earlier` (recorded by sets appended before)
 */
function contains(ids: readonly number[], refs: readonly number[], earlier: IdTable): boolean {
  if (refs.length === 0) return true;
  let sorted = true;
  for (let i = 1; i < ids.length; i++) if (ids[i]! <= ids[i - 1]!) { sorted = false; break; }
  if (!sorted) {
    const set = new Set(ids);
    for (let i = 0; i < refs.length; i++) if (!set.has(refs[i]!) && earlier.get(refs[i]!) < 0) return false;
    return true;
  }
  for (let i = 0; i < refs.length; i++) {
    const r = refs[i]!;
    if (earlier.get(r) >= 0) continue;
    let lo = 0;
    let hi = ids.length - 1;
    let found = false;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = ids[mid]!;
      if (v === r) { found = true; break; }
      if (v < r) lo = mid + 1;
      else hi = mid - 1;
    }
    if (!found) return false;
  }
  return true;
}

/** the ids of `refs` that are neither in `ids` nor in `earlier` */
function notIn(ids: readonly number[], refs: readonly number[], earlier: IdTable): number[] {
  const set = new Set(ids);
  return refs.filter((r) => !set.has(r) && earlier.get(r) < 0);
}

/** windows per round trip when a restoring broker walks its sessions */
const WINDOW_BATCH = 2000;

/** items per round trip of a load */
const PAGE = 5000;

/** a request without its id */
type Body = Request extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

/** Opens the SQLite store on a worker thread (see SqliteThreadStore). */
export function openSqliteThreadStore(opts: SqliteStoreOptions): Promise<SqliteThreadStore> {
  return SqliteThreadStore.open(opts);
}

function fromWire(e: WireError): Error {
  return e.store ? new StoreError(e.message, e.code) : Object.assign(new Error(e.message), e.code !== undefined ? { code: e.code } : {});
}

/** A Buffer over what structured cloning turned into a Uint8Array (no copy). */
function toBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function fixProps(p: Properties): Properties {
  const o = p as Record<string, unknown>;
  for (const k in o) if (o[k] instanceof Uint8Array) o[k] = toBuffer(o[k]);
  return p;
}

function fixMessage(m: StoredMessage): StoredMessage {
  m.payload = toBuffer(m.payload);
  if (m.properties !== undefined) m.properties = fixProps(m.properties);
  return m;
}
