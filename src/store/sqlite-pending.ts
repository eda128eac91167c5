import { Compactor, IdTable } from './compact.js';
import { decodeChanges, digestChanges, type SetSummary } from './journal.js';
import type { Change } from './store.js';

/**
 * What the SQLite store has journaled and not folded yet (src/store/sqlite.ts, docs/persistence.md
 * "How a commit is stored"): the sets in commit order, each added to a running compaction soon after
 * its commit has answered (`digest`), so that a fold writes what is left (`left`) without first
 * decoding and compacting everything while commits wait.
 *
 * The compaction keeps which changes are left, not the decoded changes: the sets are kept as
 * journaled (bytes) with the index of each one's first change, and `left` decodes again the sets
 * that still hold a change to write. So a queue waiting for its client costs its bytes, not objects.
 */
export class PendingSets {
  private readonly compactor = new Compactor(true, false);
  /** the sets added to the compactor, and the index (in its count) of each one's first change */
  private sets: Buffer[] = [];
  private starts: number[] = [];
  /** sets journaled and not added to the compactor yet, in commit order */
  private undigested: Buffer[] = [];
  /**
   * ids of the messages the pending sets record (SqliteStore.refsStored): an IdTable (value 1), not
   * a Set, as they come in order (a Set of 100,000 ids cost more than the rest of adding the sets)
   */
  private readonly ids = new IdTable();
  /** changes journaled (cancelled or not) and their payload bytes */
  changes = 0;
  bytes = 0;
  /** when the first of them was journaled (performance.now()) */
  since = 0;

  /** A journaled set (`blob`, summarized by `set`); digested later. */
  add(blob: Buffer, set: SetSummary): void {
    if (this.changes === 0) this.since = performance.now();
    this.undigested.push(blob);
    this.changes += set.count;
    this.bytes += set.bytes;
    const ids = set.messageIds;
    for (let i = 0; i < ids.length; i++) this.ids.set(ids[i]!, 1);
  }

  /** whether a pending set records message `id` */
  records(id: number): boolean {
    return this.ids.get(id) >= 0;
  }

  /** nothing journaled since the last reset */
  get empty(): boolean {
    return this.compactor.added === 0 && this.undigested.length === 0;
  }

  /** sets journaled and not digested yet */
  get undigestedCount(): number {
    return this.undigested.length;
  }

  /** changes of the digested sets left to write (not cancelled, not left out) */
  get live(): number {
    return this.compactor.live;
  }

  /**
   * Adds the sets not added yet to the compactor (reading only what pairs changes: digestChanges). A
   * set that cannot be read throws, and so does every later digest and fold: part of it may be in the
   * compaction already, so what is left to write is no longer known (the store's own encoding, so
   * not expected; the journal on disk is read in full when the file is opened again).
   */
  digest(): void {
    if (this.broken !== undefined) throw this.broken;
    const blobs = this.undigested;
    if (blobs.length === 0) return;
    this.undigested = [];
    const k = this.compactor;
    for (let i = 0; i < blobs.length; i++) {
      this.sets.push(blobs[i]!);
      this.starts.push(k.added);
      try {
        digestChanges(blobs[i]!, k);
      } catch (err) {
        this.broken = err;
        throw err;
      }
      k.endSet();
    }
  }

  private broken: unknown = undefined;

  /**
   * What a fold writes (digest first): the changes left, in order; how many were added; the highest
   * message id and queue seq journaled. Leaves the state as it is (a fold that fails takes them again).
   */
  left(): { changes: Change[]; added: number; maxId: number; maxSeq: number } {
    this.digest();
    const k = this.compactor;
    const indexes = k.liveIndexes();
    const changes: Change[] = [];
    const starts = this.starts;
    let s = -1;
    let set: Change[] = [];
    for (let n = 0; n < indexes.length; n++) {
      const i = indexes[n]!;
      if (s < 0 || (s + 1 < starts.length && starts[s + 1]! <= i)) {
        while (s + 1 < starts.length && starts[s + 1]! <= i) s++;
        set = decodeChanges(this.sets[s]!, false);
      }
      changes.push(set[i - starts[s]!]!);
    }
    return { changes, added: k.added, maxId: k.maxId, maxSeq: k.maxSeq };
  }

  /** The fold wrote them: start again. */
  reset(): void {
    this.compactor.reset();
    this.sets = [];
    this.starts = [];
    this.ids.clear();
    this.changes = 0;
    this.bytes = 0;
  }
}
