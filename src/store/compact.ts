import type { Change } from './store.js';

export type Kind = 0 | 1 | 2; // in-flight, queue, incoming QoS 2

/**
 * Leaves out of a change set what it undoes itself (DESIGN.md: a change undone within the same
 * commit is never written): a message sent and acknowledged, queued and dequeued, an incoming QoS 2
 * id received and released; then the messages that nothing left in the set refers to (a message
 * that is stored already keeps its stored copy; a later reference records it again).
 *
 * Used by the Recorder on each turn's set, and by the SQLite store on the many turns that it folds
 * from its journal into its tables at once (src/store/sqlite.ts), where most pairs cancel.
 */
export function compact(changes: readonly Change[]): readonly Change[] {
  if (changes.length < 2) return changes;
  // only a change that closes an entry (dequeue, inflightDone, qos2Done) can cancel anything: a set
  // without one (a turn of publishes to offline sessions) is written as it is, without the maps below
  let closes = false;
  for (let i = 0; i < changes.length; i++) {
    const op = changes[i]!.op;
    if (op === 'dequeue' || op === 'inflightDone' || op === 'qos2Done') { closes = true; break; }
  }
  if (!closes) return changes;
  const k = new Compactor(false, true, changes.length);
  for (let i = 0; i < changes.length; i++) k.add(changes[i]!);
  return k.anyCancelled ? k.survivors() : changes;
}

/**
 * compact() one change at a time: the SQLite store's thread adds each journaled set as it comes
 * (after answering its commit), so that a fold only writes what is left (`survivors`) instead of
 * decoding and compacting tens of thousands of changes while commits wait behind it.
 */
export class Compactor {
  /** with `keep`: the changes added, in order */
  private items: Change[] = [];
  /**
   * per change added (by its index, the first `added`): 1 while it is to be written, 0 once a pair
   * cancelled out or it was left out. Typed arrays that grow by doubling and are used again after a
   * reset: pushing onto two arrays of 100,000s of elements cost more than the rest of a digest.
   */
  private alive: Uint8Array;
  /** with `tracking`: per change (by its index), the message id it refers to, -1 for none */
  private msgOf: Float64Array;
  /**
   * per client, per kind: id -> the index in items of the change that opened the entry since the
   * reset; `more`: the indexes of its later state changes (a PUBREL sent), which few entries have.
   * Numbers in IdTables, not an array per entry: a digest of a queue of 100,000 allocates nothing
   * per change (the SQLite store's thread digests every commit on the path of the next ones), and a
   * queue's seqs and a window's packet ids come nearly in order, as IdTable wants them.
   */
  private open = new Map<string, OpenEntries>();
  private cancelled = false;
  /**
   * per message id: how many changes not cancelled refer to it (enqueue, inflight, retain), and where
   * its records are in items (`msgAt`: the first; `msgMoreAt`: any later ones, rare); a message whose
   * count is 0 at the end of a set is left out at once (endSet), so that what a fold would not write
   * is not kept until it either. A message is tracked while it is in `msgRefs`.
   */
  private msgRefs = new IdTable();
  private msgAt = new IdTable();
  private msgMoreAt = new Map<number, number[]>();
  /** message ids whose count fell to 0 in the current set (endSet looks at them) */
  private unreferenced: number[] = [];
  /** changes added since the reset (cancelled or not) */
  added = 0;
  /** changes added since the reset and still to be written (not cancelled, not left out; with `tracking`) */
  live = 0;

  /**
   * `tracking`: count references per message, so that `live` and `endSet` leave out a message that
   * nothing refers to any more (the SQLite store's running compaction); compact() does without.
   * `keep`: keep the changes themselves (survivors()); without, only which of them are left
   * (liveIndexes(), for a caller that can find a change again by its index, as the SQLite store
   * does in its journaled sets: it keeps the bytes, not the decoded changes). Needs `tracking`.
   * `capacity`: how many changes its arrays first have room for (they grow).
   */
  constructor(private readonly tracking = true, private readonly keep = true, capacity = INITIAL) {
    if (!keep && !tracking) throw new Error('a Compactor that does not keep the changes must track messages');
    this.alive = new Uint8Array(capacity);
    this.msgOf = tracking ? new Float64Array(capacity) : NO_IDS;
  }
  /** `message` changes added with add() since the reset (survivors() looks for unreferenced ones only if there are some) */
  private messages = 0;
  /** the highest message id and queue seq added since the reset, cancelled ones included */
  maxId = 0;
  maxSeq = 0;

  add(c: Change): void {
    const i = this.slot(this.keep ? c : 1);
    switch (c.op) {
      case 'message': this.messages++; this.messageAt(i, c.msg.id); return;
      case 'retain': this.ref(c.messageId, 1); return;
      case 'inflight': this.entry(i, c.clientId, 0, c.ref.packetId, c.ref.state === 'publish', c.ref.messageId); return;
      case 'inflightDone': this.entry(i, c.clientId, 0, c.packetId, false, -1); return;
      case 'enqueue': this.entry(i, c.clientId, 1, c.ref.seq, true, c.ref.messageId); return;
      case 'dequeue': this.entry(i, c.clientId, 1, c.seq, false, -1); return;
      case 'qos2': this.entry(i, c.clientId, 2, c.packetId, true, -1); return;
      case 'qos2Done': this.entry(i, c.clientId, 2, c.packetId, false, -1); return;
      // everything of the client before it is gone anyway; pairs do not span it
      case 'dropSession': this.open.delete(c.clientId); return;
      default: return;
    }
  }

  /**
   * The same as add() for a change that is not kept (`keep` false), from its fields alone: the
   * journal's digestChanges reads them from a set's bytes without decoding the set into objects.
   */
  addMessage(messageId: number): void { this.messageAt(this.slot(1), messageId); }
  addRetain(messageId: number): void { this.slot(1); this.ref(messageId, 1); }
  /** kind 0: in flight (`opens`: a PUBLISH entry, not a PUBREL state change), 1: queue, 2: incoming QoS 2; messageId -1 for none */
  addEntry(clientId: string, kind: Kind, id: number, opens: boolean, messageId: number): void {
    this.entry(this.slot(1), clientId, kind, id, opens, messageId);
  }
  addDropSession(clientId: string): void { this.slot(1); this.open.delete(clientId); }
  /** a change that neither pairs nor refers to a message (session, sub, will, ...) */
  addOther(): void { this.slot(1); }

  private slot(item: Change | 1): number {
    if (item === 1 && this.keep) throw new Error('this Compactor keeps the changes: use add()');
    const i = this.added;
    if (i === this.alive.length) this.grow(Math.max(INITIAL, 2 * i));
    if (item !== 1) this.items.push(item);
    this.alive[i] = 1;
    if (this.tracking) this.msgOf[i] = -1;
    this.added++;
    this.live++;
    return i;
  }

  /** the per-change arrays with room for `n` changes, the first `added` kept */
  private grow(n: number): void {
    const alive = new Uint8Array(n);
    alive.set(this.alive.subarray(0, this.added));
    this.alive = alive;
    if (this.tracking) {
      const msgOf = new Float64Array(n);
      msgOf.set(this.msgOf.subarray(0, this.added));
      this.msgOf = msgOf;
    }
  }

  private messageAt(i: number, mid: number): void {
    if (mid > this.maxId) this.maxId = mid;
    if (!this.tracking) return;
    if (this.msgRefs.get(mid) < 0) {
      this.msgRefs.set(mid, 0);
      this.msgAt.set(mid, i);
      this.unreferenced.push(mid); // recorded for a reference that this set is to make
    } else if (this.msgAt.get(mid) < 0) this.msgAt.set(mid, i);
    else {
      const more = this.msgMoreAt.get(mid);
      if (more === undefined) this.msgMoreAt.set(mid, [i]);
      else more.push(i);
    }
  }

  /** an entry's change at index i: opens it, changes its state (in flight only) or closes it */
  private entry(i: number, clientId: string, kind: Kind, id: number, opens: boolean, msg: number): void {
    if (msg >= 0) {
      this.ref(msg, 1);
      if (this.tracking) this.msgOf[i] = msg;
    }
    if (kind === 1 && opens && id > this.maxSeq) this.maxSeq = id;
    let perClient = this.open.get(clientId);
    if (perClient === undefined) {
      if (!opens) return;
      perClient = { at: [undefined, undefined, undefined], more: undefined };
      this.open.set(clientId, perClient);
    }
    let byId = perClient.at[kind];
    if (opens) {
      (byId ??= perClient.at[kind] = new IdTable()).set(id, i);
      // an entry opened again: what its earlier state changes were stays as it is (written)
      if (perClient.more !== undefined) perClient.more.delete(moreKey(kind, id));
      return;
    }
    const first = byId === undefined ? -1 : byId.get(id);
    if (first < 0) return;
    if (msg >= 0) {
      // a state change (PUBREL sent) of an entry opened since the reset
      const more = (perClient.more ??= new Map());
      const key = moreKey(kind, id);
      const list = more.get(key);
      if (list === undefined) more.set(key, [i]);
      else list.push(i);
      return;
    }
    // opened and finished since the reset: none of it is written
    this.drop(first);
    let n = 1;
    const later = perClient.more?.get(moreKey(kind, id));
    if (later !== undefined) {
      for (let j = 0; j < later.length; j++) this.drop(later[j]!);
      n += later.length;
      perClient.more!.delete(moreKey(kind, id));
    }
    this.alive[i] = 0;
    this.live -= n + 1;
    byId!.delete(id);
    this.cancelled = true;
  }

  /** the change at index j is cancelled: what it referred to loses a reference */
  private drop(j: number): void {
    this.alive[j] = 0;
    if (this.tracking) {
      const msg = this.msgOf[j]!;
      if (msg >= 0) this.ref(msg, -1);
    }
  }

  private ref(messageId: number, by: 1 | -1): void {
    if (!this.tracking) return;
    const refs = this.msgRefs.get(messageId);
    if (refs < 0) {
      // a message recorded before the reset (the tables hold it): only counted while referenced
      if (by > 0) this.msgRefs.set(messageId, 1);
      return;
    }
    this.msgRefs.set(messageId, refs + by);
    if (refs + by === 0) this.unreferenced.push(messageId);
  }

  /**
   * The end of one commit's set: a message that nothing added and not cancelled refers to any more
   * is left out now (survivors() would leave it out). Not earlier: within a set, an in-flight entry
   * may refer to a message that its queue entry, dequeued by the same set, referred to, without
   * recording it again (Session.sendNew). A later set that refers to it records it again.
   */
  endSet(): void {
    const ids = this.unreferenced;
    if (ids.length === 0) return;
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k]!;
      const refs = this.msgRefs.get(id);
      if (refs !== 0) continue;
      const at = this.msgAt.get(id);
      if (at >= 0) {
        this.leaveOut(at);
        this.msgAt.delete(id);
        const more = this.msgMoreAt.get(id);
        if (more !== undefined) {
          for (let j = 0; j < more.length; j++) this.leaveOut(more[j]!);
          this.msgMoreAt.delete(id);
        }
      }
      this.msgRefs.delete(id);
      this.cancelled = true;
    }
    this.unreferenced = [];
  }

  private leaveOut(j: number): void {
    if (this.alive[j] === 1) {
      this.alive[j] = 0;
      this.live--;
    }
  }

  /**
   * What is left, in order; once a pair cancelled, without the messages that nothing left refers
   * to. Leaves the state as it is (a fold that fails takes them again, with what came since).
   */
  survivors(): Change[] {
    if (!this.keep) throw new Error('this Compactor does not keep the changes: use liveIndexes()');
    const items = this.items;
    const alive = this.alive;
    const out: Change[] = [];
    if (!this.cancelled) {
      for (let i = 0; i < items.length; i++) out.push(items[i]!);
      return out;
    }
    if (this.messages === 0) {
      // no message recorded (an offline client's queue drained: its entries refer to stored messages)
      for (let i = 0; i < items.length; i++) if (alive[i] === 1) out.push(items[i]!);
      return out;
    }
    const referenced = new Set<number>();
    for (let i = 0; i < items.length; i++) {
      if (alive[i] === 0) continue;
      const c = items[i]!;
      if (c.op === 'enqueue' || c.op === 'inflight') referenced.add(c.ref.messageId);
      else if (c.op === 'retain') referenced.add(c.messageId);
    }
    for (let i = 0; i < items.length; i++) {
      if (alive[i] === 0) continue;
      const c = items[i]!;
      if (c.op === 'message' && !referenced.has(c.msg.id)) continue;
      out.push(c);
    }
    return out;
  }

  /**
   * The indexes (in the order added, counted from the reset) of the changes left to write: with
   * `tracking`, after endSet(), the same changes as survivors() leaves (a message nothing left refers
   * to is left out at the end of the set that left it so).
   */
  liveIndexes(): number[] {
    const alive = this.alive;
    const out: number[] = [];
    for (let i = 0; i < this.added; i++) if (alive[i] === 1) out.push(i);
    return out;
  }

  /** whether a pair cancelled out since the reset */
  get anyCancelled(): boolean {
    return this.cancelled;
  }

  /** Start again (what was added is written). */
  reset(): void {
    this.items = [];
    // (the typed arrays are used again, unless a long journal made them large)
    if (this.alive.length > MAX_KEPT) {
      this.alive = new Uint8Array(INITIAL);
      this.msgOf = this.tracking ? new Float64Array(INITIAL) : NO_IDS;
    }
    this.open.clear();
    this.msgRefs.clear();
    this.msgAt.clear();
    this.msgMoreAt.clear();
    this.unreferenced = [];
    this.cancelled = false;
    this.added = 0;
    this.messages = 0;
    this.live = 0;
    this.maxId = 0;
    this.maxSeq = 0;
  }
}

/** the per-change arrays' first length, and the longest kept after a reset */
const INITIAL = 1024;
const MAX_KEPT = 1 << 18;
/** empty arrays to start from (a Compactor that does not track messages never grows them) */
const NO_IDS = new Float64Array(0);
const NO_VALUES = new Int32Array(0);
/** how far past an IdTable's end (and past four times its sets) an id may be and still grow it */
const SLACK = 64;
/** the Map's size at which an IdTable first tries to move its ids into the array (then at each doubling) */
const DENSIFY_MIN = 256;

/** A client's entries opened since the reset, per kind (see Compactor.open). */
interface OpenEntries {
  at: [IdTable | undefined, IdTable | undefined, IdTable | undefined];
  /** by moreKey(kind, id) */
  more: Map<number, number[]> | undefined;
}

/** one key for a kind and an entry's id (packet ids and seqs are below 2^50) */
function moreKey(kind: Kind, id: number): number {
  return id * 4 + kind;
}

/**
 * A map from ids (non-negative integers) to values (non-negative integers below 2^31), -1 for none:
 * the Compactor's per-message and per-entry tables. Message ids since a reset come in order, nearly without gaps
 * (the Recorder gives them one after another), so they are kept in an array from the first id set,
 * which grows as they come; an id below it (a message stored before the reset) or far past its end
 * goes to a Map. A digest of 100,000 queued messages set and read each entry of a Map of that size
 * (the store's thread digests every commit on the path of the next ones): see BENCHMARKS.md.
 */
export class IdTable {
  private base = -1;
  private dense = NO_VALUES;
  /** ids set in `dense` are below base + used */
  private used = 0;
  /** sets that went to `dense` since the clear (at least as many as the ids it holds) */
  private sets = 0;
  private sparse: Map<number, number> | undefined;
  /** the Map's size at which densify() is tried next */
  private densifyAt = DENSIFY_MIN;

  get(id: number): number {
    const k = id - this.base;
    if (this.base >= 0 && k >= 0 && k < this.used) {
      const d = this.dense[k]!;
      if (d >= 0 || this.sparse === undefined) return d;
    }
    // (an id set in the Map while it was far past the array's end stays there until set again)
    const v = this.sparse?.get(id);
    return v === undefined ? -1 : v;
  }

  set(id: number, value: number): void {
    if (this.base < 0) this.base = id;
    const k = id - this.base;
    if (k >= 0 && k < this.dense.length) {
      this.dense[k] = value;
      this.sets++;
      if (k >= this.used) this.used = k + 1;
      if (this.sparse !== undefined) this.sparse.delete(id);
      return;
    }
    // past the end: grow while ids come nearly in order (at most doubling, and the array stays at
    // least a quarter used: ids spread far apart cannot make it huge), else a Map. It starts small:
    // the Compactor has one per client with entries (thousands of sessions in a fan-out)
    if (k >= 0 && k < 2 * this.dense.length + SLACK && k < 4 * this.sets + SLACK) {
      const next = new Int32Array(Math.max(16, 2 * this.dense.length, k + 1)).fill(-1);
      next.set(this.dense.subarray(0, this.used));
      this.dense = next;
      this.dense[k] = value;
      this.sets++;
      this.used = k + 1;
      if (this.sparse !== undefined) this.sparse.delete(id);
      return;
    }
    const sparse = (this.sparse ??= new Map());
    sparse.set(id, value);
    if (sparse.size >= this.densifyAt) this.densify();
  }

  /**
   * Move the Map's ids at or past the array's start into the array when, with those already there,
   * they would fill a quarter of it. Ids that skipped past the end while the array was short (the
   * first ids after a jump: messages whose changes a commit cancelled) otherwise keep every later
   * id in the Map however dense they come (seen: a Map of 400,000 ids 90% dense, every get and set
   * of the thread store's `recorded` a Map lookup). Tried each time the Map doubles: amortized O(1).
   */
  private densify(): void {
    const sparse = this.sparse!;
    this.densifyAt = 2 * sparse.size;
    const base = this.base;
    let hi = base + this.used - 1;
    let above = 0;
    for (const k of sparse.keys()) {
      if (k < base) continue;
      above++;
      if (k > hi) hi = k;
    }
    const span = hi - base + 1;
    if (above === 0 || span > 4 * (this.sets + above) + SLACK) return;
    const next = new Int32Array(Math.max(16, span)).fill(-1);
    next.set(this.dense.subarray(0, this.used));
    for (const [k, v] of sparse) {
      if (k < base) continue;
      next[k - base] = v;
      sparse.delete(k);
    }
    this.dense = next;
    this.sets += above;
    this.used = span;
    if (sparse.size === 0) {
      this.sparse = undefined;
      this.densifyAt = DENSIFY_MIN;
    }
  }

  delete(id: number): void {
    const k = id - this.base;
    if (this.base >= 0 && k >= 0 && k < this.used) this.dense[k] = -1;
    this.sparse?.delete(id);
  }

  /** how many entries it has room for (the array's used part and the Map's entries) */
  get extent(): number {
    return this.used + (this.sparse?.size ?? 0);
  }

  clear(): void {
    if (this.used > 0) this.dense.fill(-1, 0, this.used);
    this.used = 0;
    this.sets = 0;
    this.base = -1;
    this.sparse = undefined;
    this.densifyAt = DENSIFY_MIN;
  }
}
