import { TopicTree } from '../topic/index.js';
import type { BrokerOptions } from './options.js';
import type { Logger } from './log.js';
import type { Recorder } from './recorder.js';
import type { Router } from './router.js';
import { ownPayload, type Session, type SubEntry } from './session.js';
import type { Message } from './types.js';
import type { Clock } from '../util/clock.js';

/** What the retained store needs from the broker that owns it. */
export interface RetainedEnv {
  readonly opts: BrokerOptions;
  readonly log: Logger;
  readonly clock: Clock;
  readonly router: Router;
  /** the durable store's recorder, once the broker has one */
  readonly recorder: Recorder | undefined;
}

/**
 * @internal Retained messages: the topic tree, message expiry, the Midge-only limits
 * (midge_max_retained_messages / _bytes), the cursor a new subscription pulls from, and the one
 * place that records retained changes for the durable store.
 */
export class RetainedMessages {
  private readonly tree = new TopicTree<Message>();
  /** topics of retained messages that have a message expiry interval (checked by the sweep) */
  private readonly expiring = new Set<string>();
  /** payload bytes of the retained messages (midge_max_retained_bytes, $SYS/broker/store/messages/bytes) */
  private bytes_ = 0;
  /** true while retained messages are being refused (logged once per episode) */
  private full = false;

  constructor(private readonly env: RetainedEnv) {}

  get size(): number { return this.tree.size; }
  /** payload bytes of the retained messages */
  get bytes(): number { return this.bytes_; }
  get(topic: string): Message | undefined { return this.tree.get(topic); }
  has(topic: string): boolean { return this.tree.has(topic); }

  /** A PUBLISH with the retain flag: stored, replaced or (empty payload) cleared [MQTT-3.3.1-10]. */
  onPublish(msg: Message, record = true): void {
    if (!record) {
      // another node of the cluster retained it (and its store has it already): this node's tree follows
      if (msg.payload.length === 0) this.clear(msg.topic, false);
      else this.store(msg, false);
      return;
    }
    if (msg.payload.length === 0) { this.clear(msg.topic); return; }
    const opts = this.env.opts;
    // with a retained limit: $SYS is always retained; a will (or a PUBLISH let through while its
    // async ACL ran) over a limit is delivered but not retained
    if ((opts.maxRetainedMessages <= 0 && opts.maxRetainedBytes <= 0) || msg.origin === undefined ||
      this.mayRetain(msg.topic, msg.payload.length)) this.store(msg);
  }

  /**
   * midge_max_retained_messages / midge_max_retained_bytes: may `topic` hold a retained message of
   * `size` payload bytes? Replacing one is allowed when the total does not grow past the byte limit.
   */
  mayRetain(topic: string, size: number): boolean {
    const maxCount = this.env.opts.maxRetainedMessages;
    const maxBytes = this.env.opts.maxRetainedBytes;
    const old = this.tree.get(topic);
    let why: string | undefined;
    if (old === undefined && maxCount > 0 && this.tree.size >= maxCount) {
      why = `midge_max_retained_messages (${maxCount})`;
    } else if (maxBytes > 0) {
      const oldSize = old?.payload.length ?? 0;
      if (size > oldSize && this.bytes_ - oldSize + size > maxBytes) why = `midge_max_retained_bytes (${maxBytes} bytes)`;
    }
    if (why === undefined) return true;
    if (!this.full) {
      this.full = true;
      this.env.log.warning(`Retained messages are being refused: ${why} reached.`);
    }
    return false;
  }

  /** Store (or replace) a retained message; restoring from the store comes here too. */
  store(msg: Message, record = true): void {
    ownPayload(msg);
    const old = this.tree.set(msg.topic, msg);
    const rec = record ? this.env.recorder : undefined;
    // $SYS topics are the broker's own, published anew every sys_interval: not kept across a restart
    if (rec !== undefined && !isSysTopic(msg.topic)) rec.add({ op: 'retain', topic: msg.topic, messageId: rec.message(msg) });
    this.bytes_ += msg.payload.length - (old?.payload.length ?? 0);
    if (msg.expiresAt !== undefined) this.expiring.add(msg.topic);
    else if (this.expiring.size > 0) this.expiring.delete(msg.topic);
  }

  /** Every removal of a retained message (cleared, expired) comes here, so that the counts stay right. */
  clear(topic: string, record = true): void {
    this.bytes_ -= this.tree.get(topic)?.payload.length ?? 0;
    // a deletion ends a refusing episode: the next refusal is logged again
    if (this.tree.delete(topic)) {
      this.full = false;
      if (record && !isSysTopic(topic)) this.env.recorder?.add({ op: 'unretain', topic });
    }
    this.expiring.delete(topic);
  }

  /** The retained messages matching `filter` (a valid filter), unexpired, one at a time (admin API). */
  *browse(filter: string): Generator<Message, void, undefined> {
    for (const [, msg] of this.tree.cursor(filter)) {
      if (msg.expiresAt === undefined || msg.expiresAt > this.env.clock.now()) yield msg;
    }
  }

  /** Remove the retained messages whose message expiry interval has passed (from the sweep). */
  expire(now: number): void {
    if (this.expiring.size === 0) return;
    for (const topic of this.expiring) {
      const msg = this.tree.get(topic);
      if (msg === undefined || msg.expiresAt === undefined) { this.expiring.delete(topic); continue; }
      if (msg.expiresAt <= now) this.clear(topic);
    }
  }

  /**
   * Send the retained messages matching a new subscription, with the retain flag set [MQTT-3.3.1-8]:
   * the session pulls them through a cursor as its window and socket make room (Session.pump).
   */
  sendTo(session: Session, entry: SubEntry): void {
    // retained messages are not sent for a shared subscription [MQTT-4.8.2-?, 4.8.2]
    if (entry.share !== undefined) return;
    if (this.tree.size === 0) return;
    const subIds = entry.subscriptionId !== undefined ? [entry.subscriptionId] : undefined;
    session.addRetainedBurst({ filter: entry.filter, qos: entry.qos, subIds, cursor: this.readableBy(session, entry.filter) }, this.env.clock.now());
  }

  /** The retained messages matching `filter` that `session` may read now; expired ones are removed on the way. */
  private *readableBy(session: Session, filter: string): Generator<Message, void, undefined> {
    const router = this.env.router;
    for (const [topic, msg] of this.tree.cursor(filter)) {
      const now = this.env.clock.now();
      if (msg.expiresAt !== undefined && msg.expiresAt <= now) {
        this.clear(topic);
        continue;
      }
      if (!router.mayRead(session, msg)) continue;
      const f = router.forward(session, msg, now);
      if (f !== null) yield f;
    }
  }
}

function isSysTopic(topic: string): boolean {
  return topic.charCodeAt(0) === 0x24 && topic.startsWith('$SYS/');
}
