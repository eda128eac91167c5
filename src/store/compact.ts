import type { Change } from './store.js';

type Kind = 0 | 1 | 2; // in-flight, queue, incoming QoS 2

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
  const k = new Compactor(false);
  for (let i = 0; i < changes.length; i++) k.add(changes[i]!);
  return k.anyCancelled ? k.survivors() : changes;
}

/**
 * compact() one change at a time: the SQLite store's thread adds each journaled set as it comes
 * (after answering its commit), so that a fold only writes what is left (`survivors`) instead of
 * decoding and compacting tens of thousands of changes while commits wait behind it.
 */
export class Compactor {
  /** the changes added, in order (1 in place of each when they are not kept); undefined where a pair cancelled out */
  private items: Array<Change | 1 | undefined> = [];
  /**
   * per client, per kind: id -> the changes of the entry opened since the reset, as pairs of their
   * index in items and the message id they refer to (-1: none)
   */
  private open = new Map<string, [Map<number, number[]> | undefined, Map<number, number[]> | undefined, Map<number, number[]> | undefined]>();
  private cancelled = false;
  /**
   * per message id: where its records are in items and how many changes not cancelled refer to it
   * (enqueue, inflight, retain); a message whose count is 0 at the end of a set is left out at once
   * (endSet), so that what a fold would not write is not kept until it either
   */
  private msgs = new Map<number, { at: number[]; refs: number }>();
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
   */
  constructor(private readonly tracking = true, private readonly keep = true) {
    if (!keep && !tracking) throw new Error('a Compactor that does not keep the changes must track messages');
  }
  /** the highest message id and queue seq added since the reset, cancelled ones included */
  maxId = 0;
  maxSeq = 0;

  add(c: Change): void {
    const i = this.items.length;
    this.items.push(this.keep ? c : 1);
    this.added++;
    this.live++;
    let kind: Kind;
    let id: number;
    let opens = false;
    let msg = -1;
    switch (c.op) {
      case 'message': {
        const mid = c.msg.id;
        if (mid > this.maxId) this.maxId = mid;
        if (!this.tracking) return;
        const m = this.msgs.get(mid);
        if (m === undefined) {
          this.msgs.set(mid, { at: [i], refs: 0 });
          this.unreferenced.push(mid); // recorded for a reference that this set is to make
        } else m.at.push(i);
        return;
      }
      case 'retain': this.ref(c.messageId, 1); return;
      case 'inflight': kind = 0; id = c.ref.packetId; opens = c.ref.state === 'publish'; msg = c.ref.messageId; this.ref(msg, 1); break;
      case 'inflightDone': kind = 0; id = c.packetId; break;
      case 'enqueue': kind = 1; id = c.ref.seq; opens = true; if (id > this.maxSeq) this.maxSeq = id; msg = c.ref.messageId; this.ref(msg, 1); break;
      case 'dequeue': kind = 1; id = c.seq; break;
      case 'qos2': kind = 2; id = c.packetId; opens = true; break;
      case 'qos2Done': kind = 2; id = c.packetId; break;
      case 'dropSession':
        // everything of the client before it is gone anyway; pairs do not span it
        this.open.delete(c.clientId);
        return;
      default: return;
    }
    let perClient = this.open.get(c.clientId);
    if (perClient === undefined) {
      if (!opens) return;
      perClient = [undefined, undefined, undefined];
      this.open.set(c.clientId, perClient);
    }
    let byId = perClient[kind];
    if (opens) {
      (byId ??= perClient[kind] = new Map()).set(id, [i, msg]);
      return;
    }
    const list = byId?.get(id);
    if (list === undefined) return;
    if (c.op === 'inflight') {
      list.push(i, msg); // a state change (PUBREL sent) of an entry opened since the reset
      return;
    }
    // opened and finished since the reset: none of it is written
    const items = this.items;
    for (let j = 0; j < list.length; j += 2) {
      items[list[j]!] = undefined;
      if (list[j + 1]! >= 0) this.ref(list[j + 1]!, -1);
    }
    items[i] = undefined;
    this.live -= list.length / 2 + 1;
    byId!.delete(id);
    this.cancelled = true;
  }

  private ref(messageId: number, by: 1 | -1): void {
    if (!this.tracking) return;
    const m = this.msgs.get(messageId);
    if (m === undefined) {
      // a message recorded before the reset (the tables hold it): only counted while referenced
      if (by > 0) this.msgs.set(messageId, { at: [], refs: 1 });
      return;
    }
    m.refs += by;
    if (m.refs === 0) this.unreferenced.push(messageId);
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
    const items = this.items;
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k]!;
      const m = this.msgs.get(id);
      if (m === undefined || m.refs > 0) continue;
      for (let j = 0; j < m.at.length; j++) {
        if (items[m.at[j]!] !== undefined) {
          items[m.at[j]!] = undefined;
          this.live--;
        }
      }
      this.msgs.delete(id);
      this.cancelled = true;
    }
    this.unreferenced = [];
  }

  /**
   * What is left, in order; once a pair cancelled, without the messages that nothing left refers
   * to. Leaves the state as it is (a fold that fails takes them again, with what came since).
   */
  survivors(): Change[] {
    if (!this.keep) throw new Error('this Compactor does not keep the changes: use liveIndexes()');
    const items = this.items as Array<Change | undefined>;
    const out: Change[] = [];
    if (!this.cancelled) {
      for (let i = 0; i < items.length; i++) out.push(items[i]!);
      return out;
    }
    const referenced = new Set<number>();
    for (let i = 0; i < items.length; i++) {
      const c = items[i];
      if (c === undefined) continue;
      if (c.op === 'enqueue' || c.op === 'inflight') referenced.add(c.ref.messageId);
      else if (c.op === 'retain') referenced.add(c.messageId);
    }
    for (let i = 0; i < items.length; i++) {
      const c = items[i];
      if (c === undefined || (c.op === 'message' && !referenced.has(c.msg.id))) continue;
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
    const items = this.items;
    const out: number[] = [];
    for (let i = 0; i < items.length; i++) if (items[i] !== undefined) out.push(i);
    return out;
  }

  /** whether a pair cancelled out since the reset */
  get anyCancelled(): boolean {
    return this.cancelled;
  }

  /** Start again (what was added is written). */
  reset(): void {
    this.items = [];
    this.open.clear();
    this.msgs.clear();
    this.unreferenced = [];
    this.cancelled = false;
    this.added = 0;
    this.live = 0;
    this.maxId = 0;
    this.maxSeq = 0;
  }
}
