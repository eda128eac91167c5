/**
 * The SQLite store's worker thread (src/store/sqlite-thread.ts): it owns the database connection and
 * runs the in-thread SqliteStore, so that a commit's disk writes and the journal's folds never block
 * the broker's event loop. Requests arrive on the parent port as `{ id, op, args }` and are answered
 * in order with `{ id, ok }` or `{ id, err }`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { decodeChanges } from './journal.js';
import { openSqliteStore, type SqliteStore, type SqliteStoreOptions } from './sqlite.js';
import { StoreError } from './store.js';

export type Request =
  | { id: number; op: 'commit'; blob?: Uint8Array }
  | { id: number; op: 'loadMeta' | 'loadWills' | 'close' | 'stats' | 'messageCount' }
  | { id: number; op: 'loadSession' | 'loadWindow'; clientId: string }
  | { id: number; op: 'loadWindows'; clientIds: string[] }
  | { id: number; op: 'open'; kind: 'sessions' | 'subscriptions' | 'retained' }
  | { id: number; op: 'next'; iter: number; max: number }
  | { id: number; op: 'end'; iter: number };

export interface WireError {
  message: string;
  code?: string;
  store: boolean;
}

const port = parentPort!;
const opts = workerData as SqliteStoreOptions;
const iters = new Map<number, AsyncIterator<unknown>>();
let nextIter = 1;

function wireError(err: unknown): WireError {
  const e: WireError = { message: err instanceof Error ? err.message : String(err), store: err instanceof StoreError };
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') e.code = code;
  return e;
}

let store: SqliteStore;
try {
  store = await openSqliteStore(opts);
  port.postMessage({ ready: true });
} catch (err) {
  port.postMessage({ ready: false, err: wireError(err) });
  process.exit(0);
}

async function handle(r: Request): Promise<unknown> {
  switch (r.op) {
    case 'commit': {
      if (r.blob === undefined) return undefined;
      const blob = Buffer.from(r.blob.buffer, r.blob.byteOffset, r.blob.byteLength);
      // the decoded set is checked (references) and counted; the blob itself is what is journaled
      store.commitSync(blob, decodeChanges(blob, false));
      return undefined;
    }
    case 'loadMeta': return store.loadMeta();
    case 'loadWills': return store.loadWills();
    case 'loadSession': return store.loadSession(r.clientId);
    case 'loadWindow': return store.loadWindow(r.clientId);
    case 'loadWindows': {
      const out = [];
      for (const c of r.clientIds) out.push(await store.loadWindow(c));
      return out;
    }
    case 'stats': return { folds: store.folds };
    case 'messageCount': return store.messageCount();
    case 'open': {
      const it = (r.kind === 'sessions' ? store.loadSessions() : r.kind === 'subscriptions' ? store.loadSubscriptions() : store.loadRetained())[Symbol.asyncIterator]();
      const id = nextIter++;
      iters.set(id, it);
      return id;
    }
    case 'next': {
      const it = iters.get(r.iter);
      if (it === undefined) return { items: [], done: true };
      const items: unknown[] = [];
      for (let i = 0; i < r.max; i++) {
        const n = await it.next();
        if (n.done === true) {
          iters.delete(r.iter);
          return { items, done: true };
        }
        items.push(n.value);
      }
      return { items, done: false };
    }
    case 'end': {
      const it = iters.get(r.iter);
      iters.delete(r.iter);
      await it?.return?.();
      return undefined;
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
      const ok = await handle(r);
      port.postMessage({ id: r.id, ok });
    } catch (err) {
      port.postMessage({ id: r.id, err: wireError(err) });
    }
    if (r.op === 'close') port.close();
  });
});
