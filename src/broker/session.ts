import type { Packet, ProtocolVersion, QoS, Will } from '../codec/types.js';
import type { Message } from './types.js';
import { Fifo } from '../util/fifo.js';
import { PacketIdAllocator } from './packet-id.js';
import { encodePublish } from './publish-encoder.js';
import type { SharedGroup } from './shared.js';
import type { Recorder } from './recorder.js';
import type { QueuedRef } from '../store/store.js';
import type { Traffic } from './traffic.js';

/**
 * The connection side of a session, as the session sees it: somewhere to put bytes.
 * Connection implements it; unit tests use a fake. The session itself does no I/O.
 */
export interface Outlet {
  readonly protocolVersion: ProtocolVersion;
  /** queue encoded bytes for the socket (coalesced per event-loop turn) */
  writeBuffer(buf: Buffer): void;
  writePacket(p: Packet): void;
  /** true while the socket holds more unsent bytes than the broker allows: QoS 0 then waits in the queue */
  congested(): boolean;
  /**
   * true while the socket and this turn's output hold more than a few tens of KiB: the queue's (and a
   * retained burst's) QoS 1/2 messages then wait for the socket instead of all going at once
   */
  outputFull(): boolean;
  /** call Session.pump once the socket has drained */
  waitForDrain(): void;
  /** the client's maximum packet size (v5), 0 = none */
  readonly maxOutgoingPacketSize: number;
  /** v5: topic aliases the client accepts from us (0 = none) and those already given (topic → alias) */
  readonly outgoingAliasMax: number;
  outgoingAliases: Map<string, number> | undefined;
  /** what is written from now on waits for this turn's commit (Connection.holdForCommit) */
  holdForCommit?(): void;
  /** verbose log of an outgoing PUBLISH */
  logPublish?(dup: boolean, qos: QoS, retain: boolean, packetId: number, topic: string, bytes: number): void;
}

/** A subscription of one session to one filter, as stored in the topic trie. */
export interface SubEntry {
  session: Session;
  filter: string;
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  subscriptionId?: number;
  /** set for a member of a shared subscription `$share/GROUP/FILTER` */
  share?: SharedGroup;
}

/** A message that was on its way to a shared-subscription member when that member went away. */
export interface Orphan { msg: Message; share: SharedGroup }

interface Inflight {
  msg: Message;
  qos: QoS;
  retain: boolean;
  subIds?: number[];
  share?: SharedGroup;
  /** 'publish': PUBLISH sent, waiting for PUBACK/PUBREC; 'pubrel': PUBREL sent, waiting for PUBCOMP */
  state: 'publish' | 'pubrel';
  /** recorded in the durable store */
  stored?: boolean;
  /** the Recorder's turn that recorded it (undefined: restored from the store) */
  turn?: number;
  // (every field is set where an entry is made: see Queued)
}

/**
 * The retained messages owed to one subscription (sent after its SUBACK): a cursor over the retained
 * store that the session pulls from while its window and socket have room, never a copy of the set.
 */
export interface RetainedBurst {
  filter: string;
  qos: QoS;
  subIds?: number[];
  /** the deliverable retained messages matching the filter (expired and unreadable ones skipped) */
  cursor: Iterator<Message, void, undefined>;
  /** a message taken from the cursor that did not fit yet */
  next?: Message;
}

interface Queued {
  msg: Message;
  qos: QoS;
  retain: boolean;
  subIds?: number[];
  share?: SharedGroup;
  /** its position in the durable store's copy of the queue, when recorded there */
  seq?: number;
  /** the Recorder's turn that recorded it (undefined: restored from the store) */
  turn?: number;
  /**
   * the store's id of its message, set when the entry is recorded: the entry is then a QueuedRef
   * itself, the `ref` of its enqueue change, not copied into another object (none of these fields
   * changes once it is recorded; stores copy what they keep)
   */
  messageId?: number;
  // (every field is set where an entry is made, undefined or not: entries of one shape, whose fields
  // are in the object, not added later to a property store; the publish into an offline queue with
  // the Recorder on: 133/142/147k -> 144/152/168k msgs/s, bench/store-cost.mjs `recorder`)
}

export interface SessionLimits {
  /** 0 = unlimited (capped at 65535 by packet ids) */
  maxInflight: number;
  /** 0 = unlimited */
  maxQueued: number;
  /** payload bytes queued (max_queued_bytes); 0 = unlimited */
  maxQueuedBytes: number;
  /** payload bytes of QoS 1/2 messages in flight (max_inflight_bytes); 0 = unlimited */
  maxInflightBytes: number;
  queueQos0: boolean;
}

export interface SessionCounters {
  /** PUBLISH packets sent ($SYS/broker/publish/messages/sent) */
  messagesSent: number;
  /** payload bytes of the PUBLISH packets sent ($SYS/broker/publish/bytes/sent) */
  publishBytesSent: number;
  /** messages dropped: queue full, too large for the client ($SYS/broker/publish/messages/dropped) */
  dropped: number;
}

/** What every session of a broker shares: one object per broker, not one per session. */
export interface SessionEnv extends SessionLimits {
  readonly counters: SessionCounters;
  /** a session starts dropping messages (called once per episode) */
  onDrop(session: Session): void;
  /** the durable store's change recorder (persistence on); sessions with an expiry record their changes */
  recorder?: Recorder;
  /** the broker's plain metrics counters (PUBLISH out by QoS) */
  readonly traffic?: Traffic;
}

/**
 * Internal to the broker (hooks see it as a SessionInfo).
 * One client's session: subscriptions, outgoing in-flight window and queue, incoming QoS 2 ids.
 * Survives its connection when the session is persistent.
 */
export class Session {
  outlet: Outlet | null = null;
  // The collections are made on first use: most sessions of an idle connection never need them,
  // and an idle connection should cost as little memory as possible.
  private subs_: Map<string, SubEntry> | undefined;
  private inflight_: Map<number, Inflight> | undefined;
  private queue_: Fifo<Queued> | undefined;
  private qos2_: Set<number> | undefined;
  private ids_: PacketIdAllocator | undefined;
  private bursts_: Fifo<RetainedBurst> | undefined;
  /** client's receive maximum (v5), caps the in-flight window */
  clientReceiveMaximum = 65535;
  /** seconds the session outlives its connection; 0xFFFFFFFF = forever */
  expiryInterval = 0;
  disconnectedAt: number | undefined;
  protocolVersion: ProtocolVersion = 4;
  username: string | undefined;
  /** port of the listener the session last connected on (per_listener_settings: its ACL applies offline too) */
  listenerPort: number | undefined;
  /** true while dropping messages (to log once per episode, like mosquitto) */
  dropping = false;
  /** true while QoS 0 messages wait for the socket to drain */
  private blocked = false;
  /** payload bytes in the queue and in flight, for max_queued_bytes and max_inflight_bytes */
  private queuedBytes = 0;
  private inflightBytes = 0;
  /** routing scratch fields, reused per publish to merge overlapping subscriptions without allocation */
  routeStamp = 0;
  routeQos: QoS = 0;
  routeRap = false;
  routeSubIds: number[] | undefined = undefined;

  /** the session has a row in the durable store */
  stored = false;

  /**
   * @internal In a cluster, for a few seconds after the session moved to this node: the ids of the messages
   * it was given, so that one that reaches it twice in the hand-over (directly and through the previous node)
   * is delivered once. Undefined otherwise (one check per delivery).
   */
  recentIds: Set<number> | undefined = undefined;

  constructor(readonly clientId: string, private readonly env: SessionEnv) {}

  /** the recorder, when this session's changes are durable (persistence on, and the session outlives its connection) */
  private get rec(): Recorder | undefined {
    const r = this.env.recorder;
    return r !== undefined && this.stored ? r : undefined;
  }

  /** A QoS 2 PUBLISH was received (its PUBREC follows): remember its id until PUBREL [MQTT-4.3.3-2]. */
  addIncomingQos2(id: number): void {
    this.incomingQos2.add(id);
    this.rec?.add({ op: 'qos2', clientId: this.clientId, packetId: id });
  }

  /** PUBREL received: forget the id. Returns false when it was not known. */
  releaseIncomingQos2(id: number): boolean {
    if (this.qos2_ === undefined || !this.qos2_.delete(id)) return false;
    this.rec?.add({ op: 'qos2Done', clientId: this.clientId, packetId: id });
    return true;
  }

  /**
   * Restore what the store kept of this session (at start): in-flight messages in their send order,
   * the queue in order, incoming QoS 2 ids. Nothing is recorded again.
   */
  restore(
    inflight: ReadonlyArray<{ packetId: number; msg: Message; qos: QoS; retain: boolean; subIds?: number[]; state: 'publish' | 'pubrel' }>,
    queued: ReadonlyArray<{ seq: number; msg: Message; qos: QoS; retain: boolean; subIds?: number[] }>,
    incomingQos2: readonly number[],
  ): void {
    for (const e of inflight) {
      this.inflight.set(e.packetId, { msg: e.msg, qos: e.qos, retain: e.retain, subIds: e.subIds, share: undefined, state: e.state, stored: true, turn: undefined });
      this.inflightBytes += e.msg.payload.length;
    }
    for (const q of queued) {
      this.queue.push({ msg: q.msg, qos: q.qos, retain: q.retain, subIds: q.subIds, share: undefined, seq: q.seq, turn: undefined, messageId: undefined });
      this.queuedBytes += q.msg.payload.length;
    }
    for (const id of incomingQos2) this.incomingQos2.add(id);
  }

  get online(): boolean { return this.outlet !== null; }

  /** messages queued, messages in flight, and their payload bytes (read by metrics and the admin API; allocates nothing) */
  get stateCounts(): { queued: number; queuedBytes: number; inflight: number; inflightBytes: number } {
    return { queued: this.queue_?.length ?? 0, queuedBytes: this.queuedBytes, inflight: this.inflight_?.size ?? 0, inflightBytes: this.inflightBytes };
  }

  /** subscriptions by filter */
  get subscriptions(): Map<string, SubEntry> { return (this.subs_ ??= new Map()); }
  /** true when the session has at least one subscription (without allocating) */
  /** messages this session holds (queued and in flight) and their payload bytes, for $SYS/broker/store/... */
  get heldMessages(): number { return (this.queue_?.length ?? 0) + (this.inflight_?.size ?? 0); }
  get heldBytes(): number { return this.queuedBytes + this.inflightBytes; }
  get hasSubscriptions(): boolean { return this.subs_ !== undefined && this.subs_.size > 0; }
  /** outgoing QoS 1/2 by packet id; a Map keeps send order for redelivery */
  get inflight(): Map<number, Inflight> { return (this.inflight_ ??= new Map()); }
  get queue(): Fifo<Queued> { return (this.queue_ ??= new Fifo()); }
  /** incoming QoS 2 packet ids: PUBREC sent, PUBREL not yet received (method B, [MQTT-4.3.3-2]) */
  get incomingQos2(): Set<number> { return (this.qos2_ ??= new Set()); }
  private get ids(): PacketIdAllocator { return (this.ids_ ??= new PacketIdAllocator()); }

  private window(): number {
    const max = this.env.maxInflight === 0 ? 65535 : this.env.maxInflight;
    return Math.min(max, this.clientReceiveMaximum);
  }

  /** Deliver (or queue) a message at an already-computed QoS. */
  deliver(msg: Message, qos: QoS, retain: boolean, subIds: number[] | undefined, now: number, share?: SharedGroup): void {
    const recent = this.recentIds;
    if (recent !== undefined && msg.storeId !== undefined) {
      if (recent.has(msg.storeId)) return;
      recent.add(msg.storeId);
    }
    // no expiry check here: onward delivery of a message starts now (even with expiry 0) [MQTT-3.3.2-5];
    // queued copies are checked when they leave the queue, retained ones before they are offered
    const out = this.outlet;
    if (qos === 0) {
      if (out === null) {
        if (this.env.queueQos0) this.enqueue({ msg, qos, retain, subIds, share, seq: undefined, turn: undefined, messageId: undefined });
        return;
      }
      if (this.blocked || out.congested()) {
        // respect the socket's back-pressure: wait in the (bounded) queue, in order, until it drains
        this.enqueue({ msg, qos, retain, subIds, share, seq: undefined, turn: undefined, messageId: undefined });
        this.block(out);
        return;
      }
      this.send(out, msg, 0, retain, 0, false, subIds, now);
      return;
    }
    if (out !== null && (this.queue_ === undefined || this.queue_.length === 0) && this.inflight.size < this.window() && this.bytesRoom()) {
      if (this.sendNew(out, msg, qos, retain, subIds, now, share)) return;
    }
    this.enqueue({ msg, qos, retain, subIds, share, seq: undefined, turn: undefined, messageId: undefined });
  }

  /**
   * The retained messages matching a new subscription: they are pulled from `burst.cursor` as the
   * window and the socket make room (after what is already queued), so a SUBSCRIBE over a large
   * retained set, or many of them, costs a cursor each, not a copy of the set. A new burst for a
   * filter that still has one pending replaces it (a client resubscribing in a loop holds one).
   */
  addRetainedBurst(burst: RetainedBurst, now: number): void {
    const bursts = (this.bursts_ ??= new Fifo());
    if (bursts.length > 0) {
      let replaced = false;
      const keep = new Fifo<RetainedBurst>();
      for (const b of bursts) {
        if (b.filter === burst.filter) { if (!replaced) { keep.push(burst); replaced = true; } }
        else keep.push(b);
      }
      if (!replaced) keep.push(burst);
      this.bursts_ = keep;
    } else {
      bursts.push(burst);
    }
    if (this.outlet !== null) this.pump(now);
  }

  /** retained bursts still owed (for tests and $SYS-style introspection) */
  get pendingBursts(): number { return this.bursts_?.length ?? 0; }

  private enqueue(q: Queued): void {
    if ((this.env.maxQueued > 0 && this.queue.length >= this.env.maxQueued) ||
        (this.env.maxQueuedBytes > 0 && this.queuedBytes >= this.env.maxQueuedBytes)) {
      this.drop();
      return;
    }
    ownPayload(q.msg);
    this.queue.push(q);
    this.queuedBytes += q.msg.payload.length;
    const rec = q.qos > 0 ? this.rec : undefined;
    if (rec !== undefined) {
      const ref = q as Queued & QueuedRef;
      ref.seq = rec.nextSeq++;
      ref.turn = rec.turn;
      ref.messageId = rec.message(q.msg);
      rec.add({ op: 'enqueue', clientId: this.clientId, ref });
    }
  }

  /** max_inflight_bytes: another QoS 1/2 message may go while fewer bytes are in flight (so one always may) */
  private bytesRoom(): boolean {
    return this.env.maxInflightBytes === 0 || this.inflightBytes < this.env.maxInflightBytes;
  }

  /** The queue's first message leaves it. */
  private dequeue(queue: Fifo<Queued>): void {
    const q = queue.shift()!;
    this.queuedBytes -= q.msg.payload.length;
    if (q.seq !== undefined) this.env.recorder?.add({ op: 'dequeue', clientId: this.clientId, seq: q.seq }, q.turn ?? 0);
  }

  /** An in-flight message is done (acknowledged, abandoned, dropped or handed to another member). */
  private release(id: number, e: Inflight): void {
    this.inflight.delete(id);
    this.inflightBytes -= e.msg.payload.length;
    if (e.stored === true) this.env.recorder?.add({ op: 'inflightDone', clientId: this.clientId, packetId: id }, e.turn ?? 0);
  }

  private drop(): void {
    this.env.counters.dropped++;
    if (!this.dropping) {
      this.dropping = true;
      this.env.onDrop(this);
    }
  }

  /**
   * `fromStoredQueue`: the message leaves a queue entry that is in the store, in this same turn (so the
   * store holds the message until then, and the in-flight entry can refer to it without recording it again).
   */
  private sendNew(out: Outlet, msg: Message, qos: QoS, retain: boolean, subIds: number[] | undefined, now: number, share?: SharedGroup, fromStoredQueue = false): boolean {
    const id = this.ids.allocate(this.inflight);
    if (id === 0) return false;
    ownPayload(msg);
    const entry: Inflight = { msg, qos, retain, subIds, share, state: 'publish', stored: undefined, turn: undefined };
    this.inflight.set(id, entry);
    this.inflightBytes += msg.payload.length;
    const rec = this.rec;
    if (rec !== undefined) {
      entry.stored = true;
      entry.turn = rec.turn;
      const messageId = fromStoredQueue && msg.storeId !== undefined ? msg.storeId : rec.message(msg);
      rec.add({ op: 'inflight', clientId: this.clientId, ref: { packetId: id, messageId, qos, retain, subIds, state: 'publish' } });
      // Exactly once across a crash: a QoS 2 PUBLISH goes out only once its packet id is committed.
      // Sent before, a crash would leave the message queued (or unrouted) in the store, and the
      // restarted broker would send it again under another packet id, which a receiver that delivers
      // on PUBLISH (the spec's method B) takes for a new message. QoS 1 may be sent twice: it goes at once.
      if (qos === 2) out.holdForCommit?.();
    }
    this.send(out, msg, qos, retain, id, false, subIds, now);
    return true;
  }

  private send(out: Outlet, msg: Message, qos: QoS, retain: boolean, id: number, dup: boolean, subIds: number[] | undefined, now: number): void {
    const alias = out.outgoingAliasMax > 0 ? aliasFor(out, msg.topic) : 0;
    const buf = encodePublish(msg, out.protocolVersion, qos, retain, id, dup, subIds, now, alias);
    if (out.maxOutgoingPacketSize > 0 && buf.length > out.maxOutgoingPacketSize) {
      // the alias this packet would have announced was never sent: forget it
      if (alias > 0) out.outgoingAliases!.delete(msg.topic);
      // [MQTT-3.1.2-25] too large for this client: dropped for it only, acknowledged as if delivered
      if (qos > 0) this.release(id, this.inflight.get(id)!);
      this.env.counters.dropped++;
      return;
    }
    out.logPublish?.(dup, qos, retain, id, msg.topic, msg.payload.length);
    out.writeBuffer(buf);
    // bytes/sent is counted by the connection for every packet; here only the PUBLISH counters
    const counters = this.env.counters;
    counters.messagesSent++;
    counters.publishBytesSent += msg.payload.length;
    const t = this.env.traffic;
    if (t !== undefined) { t.publishOut[qos]!++; t.publishBytesOut[qos]! += msg.payload.length; }
  }

  private block(out: Outlet): void {
    if (this.blocked) return;
    this.blocked = true;
    out.waitForDrain();
  }

  /**
   * Move queued messages into the in-flight window while it has room (and QoS 0 while the socket
   * takes them), then, once the queue is empty, the retained messages still owed to new subscriptions.
   */
  pump(now: number): void {
    const out = this.outlet;
    this.blocked = false;
    if (out === null) return;
    const window = this.window();
    const queue = this.queue_;
    if (queue !== undefined) {
      while (queue.length > 0) {
        const q = queue.peek()!;
        if (q.msg.expiresAt !== undefined && q.msg.expiresAt <= now) { this.dequeue(queue); continue; }
        if (q.qos === 0) {
          if (out.congested()) { this.block(out); return; }
          this.dequeue(queue);
          this.send(out, q.msg, 0, q.retain, 0, false, q.subIds, now);
          continue;
        }
        if (this.inflight.size >= window || !this.bytesRoom()) return;
        // a large window (max_inflight_messages 0) opens to a whole queue on reconnect: the socket takes
        // it piece by piece, so that each packet and in-flight entry is made shortly before it is sent
        if (out.outputFull()) { this.block(out); return; }
        if (!this.sendNew(out, q.msg, q.qos, q.retain, q.subIds, now, q.share, q.seq !== undefined)) return;
        this.dequeue(queue);
      }
      this.dropping = false;
    }
    const bursts = this.bursts_;
    if (bursts === undefined) return;
    while (bursts.length > 0) {
      const b = bursts.peek()!;
      const msg = b.next ?? b.cursor.next().value;
      if (msg === undefined) { bursts.shift(); continue; }
      b.next = undefined;
      const qos = (msg.qos < b.qos ? msg.qos : b.qos) as QoS;
      if (qos === 0) {
        if (out.congested()) { b.next = msg; this.block(out); return; }
        this.send(out, msg, 0, true, 0, false, b.subIds, now);
        continue;
      }
      if (out.outputFull()) { b.next = msg; this.block(out); return; }
      if (this.inflight.size >= window || !this.bytesRoom() || !this.sendNew(out, msg, qos, true, b.subIds, now)) { b.next = msg; return; }
    }
    this.bursts_ = undefined;
  }

  /** PUBACK received. Returns false when no QoS 1 message was in flight with that id. */
  onPuback(id: number, now: number): boolean {
    const e = this.inflight.get(id);
    if (e === undefined || e.qos !== 1) return false;
    this.release(id, e);
    this.pump(now);
    return true;
  }

  /** PUBREC received: the PUBREL to send is the caller's; returns false for an unknown id. */
  onPubrec(id: number): boolean {
    const e = this.inflight.get(id);
    if (e === undefined || e.qos !== 2) return false;
    e.state = 'pubrel';
    const rec = e.stored === true ? this.env.recorder : undefined;
    if (rec !== undefined) {
      rec.add({ op: 'inflight', clientId: this.clientId, ref: { packetId: id, messageId: rec.message(e.msg), qos: 2, retain: e.retain, subIds: e.subIds, state: 'pubrel' } });
    }
    return true;
  }

  /** PUBREC with a v5 error reason code: the message is abandoned [MQTT-4.3.3-4]. */
  abandon(id: number, now: number): void {
    const e = this.inflight.get(id);
    if (e === undefined) return;
    this.release(id, e);
    this.pump(now);
  }

  /** PUBCOMP received. Returns false (and changes nothing) unless a QoS 2 message with that id was PUBRECed. */
  onPubcomp(id: number, now: number): boolean {
    const e = this.inflight.get(id);
    if (e === undefined || e.qos !== 2 || e.state !== 'pubrel') return false;
    this.release(id, e);
    this.pump(now);
    return true;
  }

  /**
   * A connection takes the session: re-send what was in flight (PUBLISH with DUP, or PUBREL)
   * in the original order [MQTT-4.4.0-1], then fill the window from the queue.
   */
  attach(out: Outlet, now: number): void {
    this.outlet = out;
    this.disconnectedAt = undefined;
    if (this.inflight_ !== undefined) for (const [id, e] of this.inflight_) {
      // delivery of these started before: they are completed even if expired since [MQTT-4.4.0-1]
      if (e.state === 'pubrel') out.writePacket({ type: 'pubrel', packetId: id });
      else this.send(out, e.msg, e.qos, e.retain, id, true, e.subIds, now);
    }
    this.pump(now);
  }

  /**
   * The connection is gone. Returns the messages that came through a shared subscription and were
   * not yet received by this client: they go to another member of the group instead.
   */
  detach(now: number): Orphan[] {
    this.outlet = null;
    this.blocked = false;
    this.disconnectedAt = now;
    const orphans: Orphan[] = [];
    if (this.inflight_ !== undefined) {
      for (const [id, e] of this.inflight_) {
        if (e.share !== undefined && e.state === 'publish') {
          orphans.push({ msg: e.msg, share: e.share });
          this.release(id, e);
        }
      }
    }
    if (this.queue_ !== undefined && orphans.length + this.queue_.length > 0) {
      const keep = new Fifo<Queued>();
      for (const q of this.queue_) {
        if (q.share !== undefined) {
          orphans.push({ msg: q.msg, share: q.share });
          this.queuedBytes -= q.msg.payload.length;
          if (q.seq !== undefined) this.env.recorder?.add({ op: 'dequeue', clientId: this.clientId, seq: q.seq }, q.turn ?? 0);
        } else {
          keep.push(q);
        }
      }
      this.queue_ = keep;
    }
    return orphans;
  }
}

/** The alias to send a topic with: negative when the client already knows it, 0 when none is left. */
function aliasFor(out: Outlet, topic: string): number {
  const aliases = (out.outgoingAliases ??= new Map());
  const known = aliases.get(topic);
  if (known !== undefined) return -known;
  if (aliases.size >= out.outgoingAliasMax) return 0;
  const alias = aliases.size + 1;
  aliases.set(topic, alias);
  return alias;
}

/**
 * A payload decoded from a socket chunk is a view of that chunk: kept beyond this turn (queued, in
 * flight, retained), it would keep the whole chunk alive. Copy it, and any Buffer property, once.
 */
export function ownPayload(msg: Message): void {
  if (msg.owned === true) return;
  msg.owned = true;
  msg.payload = ownBuffer(msg.payload);
  const cd = msg.properties?.correlationData;
  if (cd !== undefined) msg.properties = { ...msg.properties, correlationData: ownBuffer(cd) };
}

/** `buf` itself when it is the whole of its memory, else a copy (small copies share Node's pool). */
export function ownBuffer(buf: Buffer): Buffer {
  if (buf.byteOffset === 0 && buf.buffer.byteLength === buf.length) return buf;
  return Buffer.from(buf);
}

/** A will from CONNECT, with its payload (and correlation data) copied out of the socket chunk. */
export function ownWill(will: Will): Will {
  const cd = will.properties?.correlationData;
  return {
    ...will,
    payload: ownBuffer(will.payload),
    ...(cd !== undefined ? { properties: { ...will.properties, correlationData: ownBuffer(cd) } } : {}),
  };
}
