import {
  cloneInflight,
  cloneMessage,
  cloneQueued,
  cloneSession,
  cloneSub,
  cloneWill,
} from './encode.js';
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

interface Entry {
  msg: StoredMessage;
  refs: number;
}

/**
 * The reference Store: everything in maps, deep-copied in and out, nothing survives the process.
 * A commit is all or nothing: every change is recorded in an undo log that is replayed backwards
 * when a change fails (e.g. a reference to a message that is not stored).
 */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  private readonly messages = new Map<number, Entry>();
  private readonly sessions = new Map<string, StoredSession>();
  private readonly subs = new Map<string, Map<string, StoredSubscription>>();
  private readonly queues = new Map<string, Map<number, QueuedRef>>();
  /** Map iteration order is insertion order; `set` on an existing key keeps its place: the send order. */
  private readonly inflight = new Map<string, Map<number, InflightRef>>();
  private readonly qos2 = new Map<string, Set<number>>();
  private readonly retained = new Map<string, number>();
  private readonly wills = new Map<string, StoredWill>();
  private lastMessageId = 0;
  private lastSeq = 0;
  private closed = false;

  /** test-only: how many message bodies are stored */
  messageCount(): number {
    return this.messages.size;
  }

  loadMeta(): Promise<{ lastMessageId: number; lastSeq: number }> {
    return Promise.resolve({ lastMessageId: this.lastMessageId, lastSeq: this.lastSeq });
  }

  async *loadSessions(): AsyncIterable<StoredSession> {
    for (const s of [...this.sessions.values()]) yield cloneSession(s);
  }

  async *loadSubscriptions(): AsyncIterable<{ clientId: string; sub: StoredSubscription }> {
    const all: Array<{ clientId: string; sub: StoredSubscription }> = [];
    for (const [clientId, m] of this.subs) for (const sub of m.values()) all.push({ clientId, sub: cloneSub(sub) });
    yield* all;
  }

  loadSession(clientId: string): Promise<StoredSession | undefined> {
    const s = this.sessions.get(clientId);
    return Promise.resolve(s === undefined ? undefined : cloneSession(s));
  }

  loadWindow(clientId: string): Promise<Window> {
    const w: Window = { inflight: [], queued: [], incomingQos2: [] };
    for (const r of this.inflight.get(clientId)?.values() ?? []) {
      const e = this.messages.get(r.messageId);
      if (e !== undefined) w.inflight.push({ ...cloneInflight(r), message: cloneMessage(e.msg) });
    }
    const q = [...(this.queues.get(clientId)?.values() ?? [])].sort((a, b) => a.seq - b.seq);
    for (const r of q) {
      const e = this.messages.get(r.messageId);
      if (e !== undefined) w.queued.push({ ...cloneQueued(r), message: cloneMessage(e.msg) });
    }
    w.incomingQos2 = [...(this.qos2.get(clientId) ?? [])].sort((a, b) => a - b);
    return Promise.resolve(w);
  }

  async *loadRetained(): AsyncIterable<{ topic: string; message: StoredMessage }> {
    const all: Array<{ topic: string; message: StoredMessage }> = [];
    for (const [topic, id] of this.retained) {
      const e = this.messages.get(id);
      if (e !== undefined) all.push({ topic, message: cloneMessage(e.msg) });
    }
    yield* all;
  }

  loadWills(): Promise<StoredWill[]> {
    return Promise.resolve([...this.wills.values()].map(cloneWill));
  }

  commit(changes: readonly Change[]): Promise<void> {
    if (this.closed) return Promise.reject(new StoreError('the memory store is closed'));
    const undo: Array<() => void> = [];
    const touched = new Set<number>();
    try {
      for (const c of changes) this.apply(c, undo, touched);
      // Free what lost its last reference (or never got one) in this commit.
      for (const id of touched) {
        const e = this.messages.get(id);
        if (e !== undefined && e.refs <= 0) {
          this.messages.delete(id);
          undo.push(() => this.messages.set(id, e));
        }
      }
    } catch (err) {
      for (let i = undo.length - 1; i >= 0; i--) undo[i]!();
      return Promise.reject(err instanceof StoreError ? err : new StoreError(`memory store: ${String(err)}`, undefined, { cause: err }));
    }
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  // --- mutations, each recording its inverse -------------------------------------------------

  private ref(id: number, delta: number, undo: Array<() => void>, touched: Set<number>): void {
    const e = this.messages.get(id);
    if (e === undefined) {
      if (delta > 0) throw new StoreError(`memory store: message ${id} is referenced but not stored`);
      return;
    }
    e.refs += delta;
    undo.push(() => (e.refs -= delta));
    if (delta < 0) touched.add(id);
  }

  private static put<K, V>(map: Map<K, V>, key: K, value: V, undo: Array<() => void>): void {
    const had = map.has(key);
    const old = map.get(key);
    map.set(key, value);
    undo.push(() => (had ? map.set(key, old as V) : map.delete(key)));
  }

  private static del<K, V>(map: Map<K, V>, key: K, undo: Array<() => void>): V | undefined {
    if (!map.has(key)) return undefined;
    const old = map.get(key) as V;
    map.delete(key);
    undo.push(() => map.set(key, old));
    return old;
  }

  /** The per-client inner map, created (with its undo) on first use. */
  private static inner<K, V>(outer: Map<string, Map<K, V>>, clientId: string, undo: Array<() => void>): Map<K, V> {
    let m = outer.get(clientId);
    if (m === undefined) {
      m = new Map();
      MemoryStore.put(outer, clientId, m, undo);
    }
    return m;
  }

  private apply(c: Change, undo: Array<() => void>, touched: Set<number>): void {
    const { put, del, inner } = MemoryStore;
    switch (c.op) {
      case 'message': {
        // a message is recorded again by each commit that adds a reference to it: stored once, kept as it is
        if (this.messages.has(c.msg.id)) { touched.add(c.msg.id); return; }
        put(this.messages, c.msg.id, { msg: cloneMessage(c.msg), refs: 0 }, undo);
        touched.add(c.msg.id);
        if (c.msg.id > this.lastMessageId) {
          const old = this.lastMessageId;
          this.lastMessageId = c.msg.id;
          undo.push(() => (this.lastMessageId = old));
        }
        return;
      }
      case 'session':
        put(this.sessions, c.session.clientId, cloneSession(c.session), undo);
        return;
      case 'dropSession': {
        const id = c.clientId;
        del(this.sessions, id, undo);
        del(this.subs, id, undo);
        const q = del(this.queues, id, undo);
        for (const r of q?.values() ?? []) this.ref(r.messageId, -1, undo, touched);
        const f = del(this.inflight, id, undo);
        for (const r of f?.values() ?? []) this.ref(r.messageId, -1, undo, touched);
        del(this.qos2, id, undo);
        return;
      }
      case 'sub':
        put(inner(this.subs, c.clientId, undo), c.sub.filter, cloneSub(c.sub), undo);
        return;
      case 'unsub': {
        const m = this.subs.get(c.clientId);
        if (m !== undefined) del(m, c.filter, undo);
        return;
      }
      case 'enqueue': {
        const q = inner(this.queues, c.clientId, undo);
        const old = q.get(c.ref.seq);
        this.ref(c.ref.messageId, +1, undo, touched);
        put(q, c.ref.seq, cloneQueued(c.ref), undo);
        if (old !== undefined) this.ref(old.messageId, -1, undo, touched);
        if (c.ref.seq > this.lastSeq) {
          const prev = this.lastSeq;
          this.lastSeq = c.ref.seq;
          undo.push(() => (this.lastSeq = prev));
        }
        return;
      }
      case 'dequeue': {
        const q = this.queues.get(c.clientId);
        const old = q === undefined ? undefined : del(q, c.seq, undo);
        if (old !== undefined) this.ref(old.messageId, -1, undo, touched);
        return;
      }
      case 'inflight': {
        const f = inner(this.inflight, c.clientId, undo);
        const old = f.get(c.ref.packetId);
        this.ref(c.ref.messageId, +1, undo, touched);
        put(f, c.ref.packetId, cloneInflight(c.ref), undo);
        if (old !== undefined) this.ref(old.messageId, -1, undo, touched);
        return;
      }
      case 'inflightDone': {
        const f = this.inflight.get(c.clientId);
        const old = f === undefined ? undefined : del(f, c.packetId, undo);
        if (old !== undefined) this.ref(old.messageId, -1, undo, touched);
        return;
      }
      case 'qos2': {
        let s = this.qos2.get(c.clientId);
        if (s === undefined) {
          s = new Set();
          put(this.qos2, c.clientId, s, undo);
        }
        if (!s.has(c.packetId)) {
          const set = s;
          set.add(c.packetId);
          undo.push(() => set.delete(c.packetId));
        }
        return;
      }
      case 'qos2Done': {
        const s = this.qos2.get(c.clientId);
        if (s?.delete(c.packetId)) undo.push(() => s.add(c.packetId));
        return;
      }
      case 'retain': {
        const old = this.retained.get(c.topic);
        this.ref(c.messageId, +1, undo, touched);
        put(this.retained, c.topic, c.messageId, undo);
        if (old !== undefined) this.ref(old, -1, undo, touched);
        return;
      }
      case 'unretain': {
        const old = del(this.retained, c.topic, undo);
        if (old !== undefined) this.ref(old, -1, undo, touched);
        return;
      }
      case 'will':
        put(this.wills, c.will.clientId, cloneWill(c.will), undo);
        return;
      case 'willDone':
        del(this.wills, c.clientId, undo);
        return;
      default:
        throw new StoreError(`memory store: unknown change ${JSON.stringify((c as { op?: unknown }).op)}`);
    }
  }
}
