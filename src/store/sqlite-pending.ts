import { Compactor } from './compact.js';
import { decodeChanges, type SetSummary } from './journal.js';
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
  /** ids of the messages the pending sets record (SqliteStore.refsStored) */
  readonly ids = new Set<number>();
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
    for (let i = 0; i < ids.length; i++) this.ids.add(ids[i]!);
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

  /** Adds the sets not added yet to the compactor; a set that cannot be decoded throws and stays. */
  digest(): void {
    const blobs = this.undigested;
    const k = this.compactor;
    let i = 0;
    try {
      for (; i < blobs.length; i++) {
        const changes = decodeChanges(blobs[i]!, false);
        this.sets.push(blobs[i]!);
        this.starts.push(k.added);
        for (let j = 0; j < changes.length; j++) k.add(changes[j]!);
        k.endSet();
      }
    } finally {
      this.undigested = i === blobs.length ? [] : blobs.slice(i);
    }
  }

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
