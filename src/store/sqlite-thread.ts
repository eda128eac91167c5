import { Worker } from 'node:worker_threads';
import type { Properties } from '../codec/types.js';
import { encodeChanges } from './journal.js';
import type { SqliteStoreOptions } from './sqlite.js';
import type { Request, WireError } from './sqlite-worker.js';
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
    worker.on('message', (m: { id: number; ok?: unknown; err?: WireError }) => {
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
    if (changes.length === 0) return this.call({ op: 'commit' });
    const blob = encodeChanges(changes);
    // the encoder's buffer is not pooled: it moves to the worker without a copy
    return this.call({ op: 'commit', blob }, [blob.buffer as ArrayBuffer]);
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
   * those of the next sessions (WINDOW_BATCH per round trip) and the others are kept until asked for;
   * every commit drops what is kept (it may change a window).
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
    return this.iterate<StoredSession>('sessions', (x) => {
      this.sessionIndex.set(x.clientId, this.sessionOrder.length);
      this.sessionOrder.push(x.clientId);
      return x;
    });
  }

  loadSubscriptions(): AsyncIterable<{ clientId: string; sub: StoredSubscription }> {
    return this.iterate<{ clientId: string; sub: StoredSubscription }>('subscriptions', (x) => x);
  }

  loadRetained(): AsyncIterable<{ topic: string; message: StoredMessage }> {
    return this.iterate<{ topic: string; message: StoredMessage }>('retained', (x) => {
      x.message = fixMessage(x.message);
      return x;
    });
  }

  /** Pages of an iterator that lives in the worker (5000 items per round trip). */
  private async *iterate<T>(kind: 'sessions' | 'subscriptions' | 'retained', fix: (x: T) => T): AsyncIterable<T> {
    const iter = await this.call<number>({ op: 'open', kind });
    let done = false;
    try {
      while (!done) {
        const page = await this.call<{ items: T[]; done: boolean }>({ op: 'next', iter, max: 5000 });
        done = page.done;
        for (const x of page.items) yield fix(x);
      }
    } finally {
      if (!done && this.dead === undefined) await this.call({ op: 'end', iter });
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

/** windows per round trip when a restoring broker walks its sessions */
const WINDOW_BATCH = 500;

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
