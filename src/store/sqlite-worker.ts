/**
 * The SQLite store's worker thread (src/store/sqlite-thread.ts): it owns the database connection and
 * runs the in-thread SqliteStore, taking the sets that the broker's thread appended to the commit log,
 * so that the folds into the tables and the loads never block the broker's event loop. Requests
 * arrive on the parent port as `{ id, op, args }` and are answered in order with `{ id, ok }` or
 * `{ id, err }`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openSqliteStore, type SqliteStore, type SqliteStoreOptions } from './sqlite.js';
import { StoreError } from './store.js';
import { encodeRetainedRows, readCommit } from './journal.js';

export type Request =
  /** answered once every request before it is (the thread store waits with it for the worker to catch up) */
  | { id: number; op: 'barrier' }
  /**
   * sets that the broker's thread appended to the commit log (records `seqs`), in encodeCommit's
   * form, one after the other in `data` (each ends at its `ends`): added to what the next fold
   * applies. `data` is a view of a buffer shared with the broker's thread, which fills it again once
   * this is answered (copied out first), or one of its own that moved here. Answered with
   * { foldFailing: true } while folds fail.
   */
  | { id: number; op: 'journaled'; data: Uint8Array; ends: number[]; seqs: number[] }
  /** a set that refers to messages it does not record: are they recorded by a set journaled, or stored? */
  | { id: number; op: 'check'; ids: number[] }
  /** fold now (after a fold failed) */
  | { id: number; op: 'fold' }
  | { id: number; op: 'loadMeta' | 'loadWills' | 'close' | 'stats' | 'messageCount' }
  | { id: number; op: 'loadSession' | 'loadWindow'; clientId: string }
  | { id: number; op: 'loadWindows'; clientIds: string[] }
  /** a page of a load (see PageReply), after the key of the previous page's last item */
  | { id: number; op: 'page'; kind: 'sessions'; after?: string; max: number }
  | { id: number; op: 'page'; kind: 'subscriptions'; after?: [string, string]; max: number }
  | { id: number; op: 'page'; kind: 'retained'; after?: string; max: number };

/**
 * A page of sessions or subscriptions as objects; a page of retained messages as one buffer in the
 * journal's binary form (a `message` and a `retain` change per topic, journal.ts), moved to the
 * broker's thread without a copy: cloning 100,000 messages one object and one payload at a time is
 * what made restoring through the thread slow. `done`: there is nothing after this page.
 */
export type PageReply = ({ items: unknown[] } | { blob: Uint8Array; count: number }) & {
  done: boolean;
  /** the key of the page's last item (the next page is asked for after it) */
  last?: string | [string, string];
};

export interface WireError {
  message: string;
  code?: string;
  store: boolean;
}

const port = parentPort!;
const opts = workerData as SqliteStoreOptions;
/** buffers of the current answer that move to the broker's thread (set by handle) */
let transfer: ArrayBuffer[] | undefined;

function wireError(err: unknown): WireError {
  const e: WireError = { message: err instanceof Error ? err.message : String(err), store: err instanceof StoreError };
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') e.code = code;
  return e;
}

let store: SqliteStore;
try {
  store = await openSqliteStore({ ...opts, appendsElsewhere: true });
  // each fold says which log records it applied: the broker's thread drops them from the log
  store.onFolded = (seq) => port.postMessage({ folded: seq });
  port.postMessage({ ready: true, seq: store.lastJournaled });
} catch (err) {
  port.postMessage({ ready: false, err: wireError(err) });
  process.exit(0);
}

async function handle(r: Request): Promise<unknown> {
  switch (r.op) {
    case 'barrier':
      return undefined;
    case 'journaled': {
      const d = r.data;
      let all: Buffer;
      if (d.buffer instanceof SharedArrayBuffer) {
        all = Buffer.allocUnsafeSlow(d.byteLength);
        all.set(d);
      } else all = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
      for (let i = 0, at = 0; i < r.ends.length; i++) {
        const end = r.ends[i]!;
        const { blob, set } = readCommit(all.subarray(at, end));
        store.addJournaled(r.seqs[i]!, blob, set);
        at = end;
      }
      return store.foldFailing ? { foldFailing: true } : undefined;
    }
    case 'check':
      store.checkRefs(r.ids);
      return undefined;
    case 'fold':
      store.foldNow();
      return undefined;
    case 'loadMeta': return store.loadMeta();
    case 'loadWills': return store.loadWills();
    case 'loadSession': return store.loadSession(r.clientId);
    case 'loadWindow': return store.loadWindow(r.clientId);
    case 'loadWindows': return store.loadWindows(r.clientIds);
    case 'stats': return { folds: store.folds };
    case 'messageCount': return store.messageCount();
    case 'page': {
      if (r.kind === 'sessions') {
        const items = store.sessionsPage(r.after, r.max);
        const last = items[items.length - 1];
        return { items, done: items.length < r.max, ...(last !== undefined ? { last: last.clientId } : {}) } satisfies PageReply;
      }
      if (r.kind === 'subscriptions') {
        const items = store.subscriptionsPage(r.after, r.max);
        const last = items[items.length - 1];
        return { items, done: items.length < r.max, ...(last !== undefined ? { last: [last.clientId, last.sub.filter] } : {}) } satisfies PageReply;
      }
      const rows = store.retainedRows(r.after, r.max);
      const blob = encodeRetainedRows(rows);
      transfer = [blob.buffer as ArrayBuffer];
      const last = rows[rows.length - 1];
      return { blob, count: rows.length, done: rows.length < r.max, ...(last !== undefined ? { last: last[0] as string } : {}) } satisfies PageReply;
    }
    case 'close':
      await store.close();
      return undefined;
  }
}

// one request at a time, in arrival order: a commit is never overtaken by a later one
let chain: Promise<void> = Promise.resolve();
port.on('message', (r: Request) => {
  chain = chain.then(async () => {
    try {
      transfer = undefined;
      const ok = await handle(r);
      // an answer without a value is its id alone (most are commits: the cheapest message to post)
      if (ok === undefined && transfer === undefined) port.postMessage(r.id);
      else port.postMessage({ id: r.id, ok }, transfer);
    } catch (err) {
      port.postMessage({ id: r.id, err: wireError(err) });
    }
    if (r.op === 'close') port.close();
  });
});
