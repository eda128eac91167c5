import { Worker } from 'node:worker_threads';
import type { Properties } from '../codec/types.js';
import { decodeRetained, encodeCommit } from './journal.js';
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
 * event loop encodes each commit's change set (src/store/journal.ts) and hands the bytes to the
 * worker, which journals them (one SQLite transaction) and answers when they are durable; the broker
 * meanwhile goes on reading, routing and delivering, and releases the acknowledgements of that turn
 * when the answer comes. Folds and loads run there too. Same contract as SqliteStore (the contract
 * suite runs against both).
 */
export class SqliteThreadStore implements Store {
  readonly kind = 'sqlite' as const;
  /**
   * Commits in flight at once: the worker applies them in order and, after one fails, refuses the
   * others until the caller's next commit (its retry) succeeds (Store.pipeline).
   */
  readonly pipeline = PIPELINE;
  /** a commit failed: the next one issued is the caller's retry, which the worker applies */
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

  private constructor(
    private readonly worker: Worker,
    readonly file: string,
  ) {
    worker.on('message', (m: number | { id: number; ok?: unknown; err?: WireError; failed?: boolean }) => {
      if (typeof m === 'number') {
        // a request answered without a value (most are commits): its id alone
        const w = this.waiting.get(m);
        if (w === undefined) return;
        this.waiting.delete(m);
        w.resolve(undefined);
        return;
      }
      const w = this.waiting.get(m.id);
      if (w === undefined) return;
      this.waiting.delete(m.id);
      if (m.failed === true) this.resume = true;
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
    let onMessage!: (m: { ready: boolean; err?: WireError }) => void;
    let onError!: (err: Error) => void;
    let onExit!: (code: number) => void;
    const first = await new Promise<{ ready: boolean; err?: WireError }>((resolve, reject) => {
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
    return new SqliteThreadStore(worker, opts.file);
  }

  private call<T>(req: Body, transfer?: ArrayBuffer[]): Promise<T> {
    if (this.dead !== undefined) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...req, id }, transfer);
    });
  }

  commit(changes: readonly Change[]): Promise<void> {
    if (this.windows.size > 0) this.windows.clear();
    this.epoch++;
    const resume = this.resume;
    this.resume = false;
    if (changes.length === 0) return this.call({ op: 'commit', resume });
    // the set and its summary in one buffer, not pooled: it moves to the worker without a copy
    const commit = encodeCommit(changes);
    return this.call(resume ? { op: 'commit', commit, resume } : { op: 'commit', commit }, [commit.buffer as ArrayBuffer]);
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
    for (const w of ws) {
      for (const e of w.inflight) e.message = fixMessage(e.message);
      for (const e of w.queued) e.message = fixMessage(e.message);
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
      if (this.dead === undefined) await this.call({ op: 'close' });
      await this.worker.terminate();
      this.dead ??= new StoreError(`database ${this.file} is closed`);
    })();
    return this.closing;
  }
}

/** commits in flight to the worker at once */
const PIPELINE = 2;

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
