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
 * The turn's change set (DESIGN.md "The two seams"): every change to durable state is recorded here,
 * once, by the one place that makes it (Session for queues, in-flight and incoming QoS 2; Broker for
 * sessions, subscriptions, retained messages and wills). Once per turn (setImmediate, so that all the
 * reads of one poll phase share it) the set is committed as one transaction, and only then are the
 * acknowledgements of that turn written. A commit that fails is retried; meanwhile nothing new is
 * acknowledged (the durability that was asked for is never silently dropped).
 */
export class Recorder {
  private changes: Change[] = [];
  private holders: Holder[] = [];
  private scheduled = false;
  private committing: Promise<void> | undefined;
  private failing = false;
  /** incremented per commit; a message recorded in this batch is not recorded again in it */
  private batch = 1;
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

  constructor(readonly store: Store, private readonly log: Logger) {}

  /** Record one change for this turn's commit. */
  add(c: Change): void {
    this.changes.push(c);
    if (!this.scheduled) this.schedule();
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
    if (!this.holders.includes(h)) this.holders.push(h);
    if (!this.scheduled) this.schedule();
  }

  /** true while `h` waits for a commit that has not started yet */
  waiting(h: Holder): boolean {
    return this.holders.includes(h);
  }

  private schedule(): void {
    this.scheduled = true;
    setImmediate(runCommit, this);
  }

  /** Commit what this turn recorded; resolves when it is durable (and its output released). */
  async commit(): Promise<void> {
    this.scheduled = false;
    if (this.committing !== undefined) {
      // one commit at a time, in order: this turn's set follows the one in progress
      await this.committing.catch(() => undefined);
      if (this.changes.length === 0 && this.holders.length === 0 && !this.scheduledExtra()) return;
    }
    const changes = this.changes;
    const holders = this.holders;
    const extra = this.extraOps?.();
    this.changes = [];
    this.holders = [];
    this.batch++;
    // what each holder held when the commit started belongs to it; later output waits for the next one
    const cuts = holders.map((h) => h.held?.length ?? 0);
    const run = this.write(changes, extra);
    this.committing = run;
    try {
      await run;
    } finally {
      if (this.committing === run) this.committing = undefined;
    }
    for (let i = 0; i < holders.length; i++) {
      const h = holders[i]!;
      // output after the cut that waits for no later commit goes out with it
      if (this.holders.includes(h)) h.release(cuts[i]);
      else h.release();
    }
  }

  /** Write one change set, retrying until the store takes it (acknowledgements wait meanwhile). */
  private async write(recorded: Change[], extra: Array<string | Buffer> | undefined): Promise<void> {
    const changes = compact(recorded);
    if (changes.length === 0 && extra === undefined) return;
    for (let attempt = 0; ; attempt++) {
      try {
        const t0 = performance.now();
        await (extra === undefined ? this.store.commit(changes) : this.store.commit(changes, extra));
        this.commitSeconds.observe((performance.now() - t0) / 1000);
        this.counters.commits++;
        this.counters.changes += changes.length;
        if (this.failing) {
          this.failing = false;
          this.log.info('Store: writes succeed again; acknowledgements resume.');
        }
        return;
      } catch (err) {
        this.counters.failures++;
        if (!this.failing) {
          this.failing = true;
          this.log.error(`Store: commit failed, no acknowledgement is sent until it succeeds: ${err instanceof Error ? err.message : String(err)}`);
        }
        await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)).unref());
      }
    }
  }

  /** the bus has ops waiting (they are taken by the next commit) */
  private scheduledExtra(): boolean {
    return this.extraPending?.() === true;
  }

  extraPending: (() => boolean) | undefined;

  /** Wait for everything recorded so far to be committed (close, tests). */
  async drain(): Promise<void> {
    for (let i = 0; i < 100 && (this.scheduled || this.committing !== undefined || this.changes.length > 0 || this.holders.length > 0 || this.scheduledExtra()); i++) {
      await this.commit();
    }
  }

  get isFailing(): boolean { return this.failing; }
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
