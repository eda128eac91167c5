import { compact } from '../store/compact.js';
import type { Change, Store, StoredMessage } from '../store/store.js';
import type { Logger } from './log.js';
import type { Message } from './types.js';
import { LatencyHistogram } from './traffic.js';

/**
 * A connection whose output waits for a commit: its acknowledgements (and everything written after
 * them, so that the order on the wire stays the order of the broker's decisions) are released when
 * the change set of their turn is durable.
 */
export interface Holder {
  /** output held back, in order; undefined when nothing is held */
  held: Buffer[] | undefined;
  /** write the first `n` held buffers (all when n is undefined) to the socket */
  release(n?: number): void;
}

/**
 * How long a commit that nothing waits for (no acknowledgement or other output is held for it, no
 * bus ops) waits for later turns to join it, and up to how many changes. Such a commit holds only
 * what the broker may lose in a crash without breaking a promise (a queue entry that went in
 * flight, a PUBACK that a subscriber sent): delayed, several turns share one transfer to the store,
 * and an in-flight entry acknowledged within the delay is never written. A turn that holds output
 * joins it and issues it at once.
 */
const LAZY_MS = 5;
const LAZY_CHANGES = 20_000;

/**
 * The turn's change set (DESIGN.md "The two seams"): every change to durable state is recorded here,
 * once, by the one place that makes it (Session for queues, in-flight and incoming QoS 2; Broker for
 * sessions, subscriptions, retained messages and wills). Once per turn (setImmediate, so that all the
 * reads of one poll phase share it) the set is committed as one transaction, and only then are the
 * acknowledgements of that turn written. A commit that fails is retried; meanwhile nothing new is
 * acknowledged (the durability that was asked for is never silently dropped).
 */
export class Recorder {
  private changes: Change[] = [];
  /** the holders whose output waits for this turn's commit (a Set: a turn may hold tens of thousands) */
  private holders = new Set<Holder>();
  private scheduled = false;
  /** commits not yet durable (or durable but behind one that is not), in order */
  private queue: Batch[] = [];
  /**
   * per holder: how many of its held buffers commits in the queue claim, the last one that holds it,
   * and where the holder is in that commit's `holders`
   */
  private claims = new Map<Holder, { claimed: number; last: Batch; at: number }>();
  /** commits that may be in flight to the store at once (Store.pipeline; 1 when it says nothing) */
  private readonly pipeline: number;
  /** bumped by every failure: answers to commits issued before it are stale (they are issued again) */
  private generation = 0;
  private retryTimer = false;
  private failing = false;
  /** the timer that issues a lazy commit at its deadline (see LAZY_MS) */
  private lazyTimer: NodeJS.Timeout | undefined;
  /** drain() is waiting: no commit is lazy */
  private draining = false;
  /** incremented per commit; a message recorded in this batch is not recorded again in it */
  private batch = 1;
  /**
   * the latest turn that an entry closed in this turn (dequeue, inflightDone, qos2Done) was opened in,
   * 0 when none was (see add): a commit can cancel a pair only when it holds that turn
   */
  private closedFrom = 0;
  nextMessageId = 1;
  nextSeq = 1;
  /**
   * In a cluster, message ids are unique cluster-wide: they come in blocks reserved in Redis (useIds);
   * the next block is asked for when half of this one is used.
   */
  private idEnd = Infinity;
  private idLow = Infinity;
  private spareIds: { first: number; size: number } | undefined;
  private reserving = false;
  reserveIds: (() => Promise<number>) | undefined;
  private idBlock = 0;
  /** the cluster bus's ops of this turn, committed with its changes (undefined: none) */
  extraOps: (() => Array<string | Buffer> | undefined) | undefined;
  /** commits done, changes written (for $SYS-style counters and tests) */
  readonly counters = { commits: 0, changes: 0, failures: 0 };
  /** how long the store took for each successful commit (for metrics) */
  readonly commitSeconds = new LatencyHistogram();

  /** `lazyMs`: how long a commit that nothing waits for waits for later turns (LAZY_MS; 0: it does not) */
  constructor(readonly store: Store, private readonly log: Logger, private readonly lazyMs = LAZY_MS) {
    this.pipeline = Math.max(1, Math.floor(store.pipeline ?? 1));
  }

  /**
   * Record one change for this turn's commit. A change that closes an entry (dequeue, inflightDone,
   * qos2Done) says which turn opened it (`openedIn`, the `turn` it was recorded in; 0: an entry of an
   * earlier run of the store, restored), so that a commit in which nothing can cancel skips
   * compaction. Without it the entry may have been opened in this turn.
   */
  add(c: Change, openedIn?: number): void {
    this.changes.push(c);
    if (openedIn === undefined) {
      if (c.op === 'dequeue' || c.op === 'inflightDone' || c.op === 'qos2Done') this.closedFrom = this.batch;
    } else if (openedIn > this.closedFrom) this.closedFrom = openedIn;
    if (!this.scheduled) this.schedule();
  }

  /** the turn being recorded: stamp an entry with it when recording what opens it (see add) */
  get turn(): number {
    return this.batch;
  }

  /**
   * Make sure `msg` is in the store (it is about to be referenced): its first reference in a batch
   * records it; the store keeps one copy, freed with its last reference. Returns its id.
   */
  message(msg: Message): number {
    const id = this.idOf(msg);
    if (msg.storeBatch !== this.batch) {
      msg.storeBatch = this.batch;
      this.add({ op: 'message', msg: toStored(id, msg) });
    }
    return id;
  }

  /** The message's store id, given now if it has none (a cluster forwards it with its id, unique cluster-wide). */
  idOf(msg: Message): number {
    let id = msg.storeId;
    if (id === undefined) {
      id = this.nextMessageId++;
      if (id >= this.idLow) id = this.nextId(id);
      msg.storeId = id;
    }
    return id;
  }

  /** Hand out message ids from [first, first + size) (a block reserved for this node). */
  useIds(first: number, size: number): void {
    this.idBlock = size;
    this.nextMessageId = first;
    this.idEnd = first + size;
    this.idLow = first + Math.floor(size / 2);
  }

  /** Past the middle of the block: the next one is reserved; at its end, the next one is used. */
  private nextId(id: number): number {
    if (!this.reserving && this.spareIds === undefined && this.reserveIds !== undefined) {
      this.reserving = true;
      this.reserveIds().then(
        (first) => { this.spareIds = { first, size: this.idBlock }; this.reserving = false; },
        (err: unknown) => {
          this.reserving = false;
          this.log.error(`Store: reserving message ids failed: ${err instanceof Error ? err.message : String(err)}`);
        },
      );
    }
    if (id < this.idEnd) return id;
    const spare = this.spareIds;
    if (spare === undefined) {
      // not expected (half a block is over 500,000 messages): ids past the block would collide, so fail loudly
      throw new Error('no message ids left: the next block was not reserved in time');
    }
    this.spareIds = undefined;
    this.useIds(spare.first, spare.size);
    return this.nextMessageId++;
  }

  /** Something outside the change list (the cluster bus's ops) waits for this turn's commit. */
  touch(): void {
    if (!this.scheduled) this.schedule();
  }

  /** `h`'s output from now on waits for this turn's commit. */
  hold(h: Holder): void {
    if (h.held === undefined) h.held = [];
    this.holders.add(h);
    if (!this.scheduled) this.schedule();
  }

  private schedule(): void {
    this.scheduled = true;
    setImmediate(runCommit, this);
  }

  /**
   * Commit what this turn recorded; resolves when it is durable (and its output released). Up to
   * `store.pipeline` commits are in flight at once; each turn's output is released only when its
   * commit and every earlier one are durable.
   */
  commit(): Promise<void> {
    this.scheduled = false;
    if (this.changes.length === 0 && this.holders.size === 0 && !this.scheduledExtra()) {
      // nothing new: wait for what is in flight
      const last = this.queue[this.queue.length - 1];
      return last === undefined ? Promise.resolve() : last.done;
    }
    const recorded = this.changes;
    const holders = this.holders;
    const extra = this.extraOps?.();
    const turn = this.batch;
    const closedFrom = this.closedFrom;
    this.changes = [];
    this.holders = new Set();
    this.closedFrom = 0;
    this.batch++;
    // a commit that waits for its turn to be issued takes this turn's changes too (group commit:
    // while the store is busy, commits grow rather than queue up one per turn)
    // (the cluster bus's ops of a turn go with its own commit: a commit carries one turn's at most)
    // (not one that was issued before and waits to be issued again after a failure: a store may have
    // applied it, its reply lost, and it must be the same set when it goes again)
    let b = this.queue[this.queue.length - 1];
    if (b !== undefined && b.state === 'queued' && !b.tried && (extra === undefined || b.extra === undefined)) {
      for (let i = 0; i < recorded.length; i++) b.changes.push(recorded[i]!);
      if (extra !== undefined) b.extra = extra;
      // every turn since its first went into it: an entry opened in one of them may cancel
      if (closedFrom >= b.firstTurn) b.mayCancel = true;
      if (holders.size > 0 || extra !== undefined) b.lazyUntil = 0;
    } else {
      let resolve!: () => void;
      const done = new Promise<void>((r) => { resolve = r; });
      b = {
        changes: recorded, extra, holders: [], cuts: [], state: 'queued', tried: false, generation: 0, attempts: 0, t0: 0, written: 0, done, resolve,
        firstTurn: turn, mayCancel: closedFrom >= turn,
        lazyUntil: holders.size === 0 && extra === undefined && !this.draining ? performance.now() + this.lazyMs : 0,
      };
      this.queue.push(b);
    }
    // what each holder held when the commit started (and no earlier commit claims) belongs to it;
    // later output waits for the next one
    for (const h of holders) {
      const held = h.held?.length ?? 0;
      const c = this.claims.get(h);
      const mine = held - (c?.claimed ?? 0);
      if (c !== undefined && c.last === b) {
        // an earlier turn of this same commit held it too (the commit waited and took this turn)
        b.cuts[c.at] += mine;
        c.claimed = held;
        continue;
      }
      b.holders.push(h);
      b.cuts.push(mine);
      if (c === undefined) this.claims.set(h, { claimed: held, last: b, at: b.holders.length - 1 });
      else {
        c.claimed = held;
        c.last = b;
        c.at = b.holders.length - 1;
      }
    }
    this.pump();
    return b.done;
  }

  /** Issue queued commits, in order, while fewer than `pipeline` are in flight (one while failing). */
  private pump(): void {
    if (this.retryTimer) return;
    const max = this.failing ? 1 : this.pipeline;
    let inFlight = 0;
    for (const b of this.queue) {
      if (b.state === 'issued') inFlight++;
      else if (b.state === 'queued') {
        if (inFlight >= max && (b.changes.length > 0 || b.extra !== undefined)) break;
        if (b.lazyUntil > 0 && this.lazyMs > 0 && !b.tried && b.changes.length < LAZY_CHANGES && this.waitLazy(b)) break;
        if (this.issue(b)) inFlight++;
      }
    }
    this.settle();
  }

  /** Hands `b` to the store; false when it has nothing to write (it is durable at once). */
  private issue(b: Batch): boolean {
    // what the set undoes itself is never written (a set that closes no entry it opened has nothing to undo)
    const changes = b.mayCancel ? compact(b.changes) : b.changes;
    if (changes.length === 0 && b.extra === undefined) {
      b.state = 'durable'; // released in its turn's order
      return false;
    }
    b.state = 'issued';
    b.tried = true;
    b.generation = this.generation;
    b.t0 = performance.now();
    b.written = changes.length;
    let run: Promise<void>;
    try {
      run = b.extra === undefined ? this.store.commit(changes) : this.store.commit(changes, b.extra);
    } catch (err) {
      run = Promise.reject(err);
    }
    run.then(
      () => this.succeeded(b),
      (err: unknown) => this.failed(b, err),
    );
    return true;
  }

  /**
   * true while `b`, a commit that nothing waits for, may wait for more turns to join it: it is
   * issued at its deadline (a timer), or as soon as a turn that holds output joins it.
   */
  private waitLazy(b: Batch): boolean {
    const left = b.lazyUntil - performance.now();
    if (left <= 0) return false;
    if (this.lazyTimer === undefined) {
      this.lazyTimer = setTimeout(() => {
        this.lazyTimer = undefined;
        this.pump();
      }, Math.ceil(left));
    }
    return true;
  }

  private succeeded(b: Batch): void {
    if (b.generation !== this.generation || b.state !== 'issued') return;
    b.state = 'durable';
    this.commitSeconds.observe((performance.now() - b.t0) / 1000);
    this.counters.commits++;
    this.counters.changes += b.written;
    if (this.failing) {
      this.failing = false;
      this.log.info('Store: writes succeed again; acknowledgements resume.');
    }
    this.pump();
  }

  /**
   * A commit failed: it and every commit issued after it (which a pipelining store refuses: it
   * never applies a commit after one that failed) are issued again, in order, the failed one first
   * and alone, after a backoff. Meanwhile nothing is acknowledged.
   */
  private failed(b: Batch, err: unknown): void {
    if (b.generation !== this.generation || b.state !== 'issued') return;
    this.generation++;
    for (const x of this.queue) if (x.state === 'issued') x.state = 'queued';
    this.counters.failures++;
    if (!this.failing) {
      this.failing = true;
      this.log.error(`Store: commit failed, no acknowledgement is sent until it succeeds: ${err instanceof Error ? err.message : String(err)}`);
    }
    const wait = Math.min(1000, 50 * 2 ** b.attempts++);
    this.retryTimer = true;
    setTimeout(() => {
      this.retryTimer = false;
      this.pump();
    }, wait).unref();
  }

  /** Release the output of the durable commits at the head of the queue, in order. */
  private settle(): void {
    while (this.queue.length > 0 && this.queue[0]!.state === 'durable') {
      const b = this.queue.shift()!;
      for (let i = 0; i < b.holders.length; i++) {
        const h = b.holders[i]!;
        const c = this.claims.get(h)!;
        // output after the cut that waits for no later commit goes out with it
        if (c.last === b && !this.holders.has(h)) {
          this.claims.delete(h);
          h.release();
        } else {
          c.claimed -= b.cuts[i]!;
          if (c.last === b) this.claims.delete(h);
          h.release(b.cuts[i]);
        }
      }
      b.resolve();
    }
  }

  /** the bus has ops waiting (they are taken by the next commit) */
  private scheduledExtra(): boolean {
    return this.extraPending?.() === true;
  }

  extraPending: (() => boolean) | undefined;

  /** Wait for everything recorded so far to be committed (close, tests). */
  async drain(): Promise<void> {
    this.draining = true;
    try {
      for (const b of this.queue) b.lazyUntil = 0;
      if (this.lazyTimer !== undefined) {
        clearTimeout(this.lazyTimer);
        this.lazyTimer = undefined;
      }
      this.pump();
      for (let i = 0; i < 100 && (this.scheduled || this.queue.length > 0 || this.changes.length > 0 || this.holders.size > 0 || this.scheduledExtra()); i++) {
        await this.commit();
      }
    } finally {
      this.draining = false;
    }
  }

  get isFailing(): boolean { return this.failing; }
}

/** One turn's commit. */
interface Batch {
  /** as recorded (compacted when issued) */
  changes: Change[];
  /** the cluster bus's ops of its turn (Recorder.extraOps), committed with it */
  extra: Array<string | Buffer> | undefined;
  /** changes written by the last issue (after compaction) */
  written: number;
  holders: Holder[];
  /** per holder: how many of its held buffers are this commit's */
  cuts: number[];
  state: 'queued' | 'issued' | 'durable';
  /** issued at least once: it takes no more changes (it goes again as it went) */
  tried: boolean;
  /** the Recorder's generation when it was issued */
  generation: number;
  /** failed attempts (the backoff grows with them) */
  attempts: number;
  t0: number;
  done: Promise<void>;
  resolve: () => void;
  /** the first turn whose changes it holds (the later ones joined it while it was queued) */
  firstTurn: number;
  /** an entry opened by one of its turns is closed by one of them: compact() may leave pairs out */
  mayCancel: boolean;
  /**
   * when nothing waits for it (no held output, no bus ops), the time (performance.now()) until which
   * it waits for later turns to join it; 0: issued as soon as the pipeline has room
   */
  lazyUntil: number;
}

function runCommit(r: Recorder): void {
  r.commit().catch(() => undefined);
}

function toStored(id: number, m: Message): StoredMessage {
  const s: StoredMessage = { id, topic: m.topic, payload: m.payload, qos: m.qos, retain: m.retain };
  if (m.properties !== undefined) s.properties = m.properties;
  if (m.expiresAt !== undefined) s.expiresAt = m.expiresAt;
  if (m.origin !== undefined) s.origin = m.origin;
  return s;
}

/** A stored message as the broker routes it. */
export function fromStored(s: StoredMessage): Message {
  const m: Message = { topic: s.topic, payload: s.payload, qos: s.qos, retain: s.retain };
  if (s.properties !== undefined) m.properties = s.properties;
  if (s.expiresAt !== undefined) m.expiresAt = s.expiresAt;
  if (s.origin !== undefined) m.origin = s.origin;
  m.storeId = s.id;
  m.owned = true;
  return m;
}
