import type { Packet, ProtocolVersion, QoS } from '../codec/types.js';
import type { Message } from './types.js';
import { Fifo } from '../util/fifo.js';
import { PacketIdAllocator } from './packet-id.js';
import { encodePublish } from './publish-encoder.js';
import type { SharedGroup } from './shared.js';

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
  /** call Session.pump once the socket has drained */
  waitForDrain(): void;
  /** the client's maximum packet size (v5), 0 = none */
  readonly maxOutgoingPacketSize: number;
  /** v5: topic aliases the client accepts from us (0 = none) and those already given (topic → alias) */
  readonly outgoingAliasMax: number;
  outgoingAliases: Map<string, number> | undefined;
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
}

interface Queued {
  msg: Message;
  qos: QoS;
  retain: boolean;
  subIds?: number[];
  share?: SharedGroup;
}

export interface SessionLimits {
  /** 0 = unlimited (capped at 65535 by packet ids) */
  maxInflight: number;
  /** 0 = unlimited */
  maxQueued: number;
  queueQos0: boolean;
}

export interface SessionCounters {
  messagesSent: number;
  bytesSent: number;
  dropped: number;
}

/** What every session of a broker shares: one object per broker, not one per session. */
export interface SessionEnv extends SessionLimits {
  readonly counters: SessionCounters;
  /** a session starts dropping messages (called once per episode) */
  onDrop(session: Session): void;
}

/**
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
  /** routing scratch fields, reused per publish to merge overlapping subscriptions without allocation */
  routeStamp = 0;
  routeQos: QoS = 0;
  routeRap = false;
  routeSubIds: number[] | undefined = undefined;

  constructor(readonly clientId: string, private readonly env: SessionEnv) {}

  get online(): boolean { return this.outlet !== null; }

  /** subscriptions by filter */
  get subscriptions(): Map<string, SubEntry> { return (this.subs_ ??= new Map()); }
  /** true when the session has at least one subscription (without allocating) */
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
    // no expiry check here: onward delivery of a message starts now (even with expiry 0) [MQTT-3.3.2-5];
    // queued copies are checked when they leave the queue, retained ones before they are offered
    const out = this.outlet;
    if (qos === 0) {
      if (out === null) {
        if (this.env.queueQos0) this.enqueue({ msg, qos, retain, subIds, share });
        return;
      }
      if (this.blocked || out.congested()) {
        // respect the socket's back-pressure: wait in the (bounded) queue, in order, until it drains
        this.enqueue({ msg, qos, retain, subIds, share });
        this.block(out);
        return;
      }
      this.send(out, msg, 0, retain, 0, false, subIds, now);
      return;
    }
    if (out !== null && (this.queue_ === undefined || this.queue_.length === 0) && this.inflight.size < this.window()) {
      if (this.sendNew(out, msg, qos, retain, subIds, now, share)) return;
    }
    this.enqueue({ msg, qos, retain, subIds, share });
  }

  /**
   * Retained messages sent on SUBSCRIBE: a one-off burst bounded by the retained store, so it is
   * queued past max_queued_messages instead of being dropped (the queue only holds references).
   */
  deliverRetained(msg: Message, qos: QoS, subIds: number[] | undefined, now: number): void {
    this.unbounded = true;
    try {
      this.deliver(msg, qos, true, subIds, now);
    } finally {
      this.unbounded = false;
    }
  }

  private unbounded = false;

  private enqueue(q: Queued): void {
    if (!this.unbounded && this.env.maxQueued > 0 && this.queue.length >= this.env.maxQueued) {
      this.drop();
      return;
    }
    this.queue.push(q);
  }

  private drop(): void {
    this.env.counters.dropped++;
    if (!this.dropping) {
      this.dropping = true;
      this.env.onDrop(this);
    }
  }

  private sendNew(out: Outlet, msg: Message, qos: QoS, retain: boolean, subIds: number[] | undefined, now: number, share?: SharedGroup): boolean {
    const id = this.ids.allocate(this.inflight);
    if (id === 0) return false;
    this.inflight.set(id, { msg, qos, retain, subIds, share, state: 'publish' });
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
      if (qos > 0) this.inflight.delete(id);
      this.env.counters.dropped++;
      return;
    }
    out.logPublish?.(dup, qos, retain, id, msg.topic, msg.payload.length);
    out.writeBuffer(buf);
    this.env.counters.messagesSent++;
    this.env.counters.bytesSent += buf.length;
  }

  private block(out: Outlet): void {
    if (this.blocked) return;
    this.blocked = true;
    out.waitForDrain();
  }

  /** Move queued messages into the in-flight window while it has room (and QoS 0 while the socket takes them). */
  pump(now: number): void {
    const out = this.outlet;
    this.blocked = false;
    if (out === null || this.queue_ === undefined) return;
    const window = this.window();
    while (this.queue.length > 0) {
      const q = this.queue.peek()!;
      if (q.msg.expiresAt !== undefined && q.msg.expiresAt <= now) { this.queue.shift(); continue; }
      if (q.qos === 0) {
        if (out.congested()) { this.block(out); break; }
        this.queue.shift();
        this.send(out, q.msg, 0, q.retain, 0, false, q.subIds, now);
        continue;
      }
      if (this.inflight.size >= window) break;
      if (!this.sendNew(out, q.msg, q.qos, q.retain, q.subIds, now, q.share)) break;
      this.queue.shift();
    }
    if (this.queue.length === 0) this.dropping = false;
  }

  /** PUBACK received. Returns false when no QoS 1 message was in flight with that id. */
  onPuback(id: number, now: number): boolean {
    const e = this.inflight.get(id);
    if (e === undefined || e.qos !== 1) return false;
    this.inflight.delete(id);
    this.pump(now);
    return true;
  }

  /** PUBREC received: the PUBREL to send is the caller's; returns false for an unknown id. */
  onPubrec(id: number): boolean {
    const e = this.inflight.get(id);
    if (e === undefined || e.qos !== 2) return false;
    e.state = 'pubrel';
    return true;
  }

  /** PUBREC with a v5 error reason code: the message is abandoned [MQTT-4.3.3-4]. */
  abandon(id: number, now: number): void {
    if (this.inflight.delete(id)) this.pump(now);
  }

  onPubcomp(id: number, now: number): boolean {
    const e = this.inflight.get(id);
    if (e === undefined || e.qos !== 2) return false;
    this.inflight.delete(id);
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
          this.inflight_.delete(id);
        }
      }
    }
    if (this.queue_ !== undefined && orphans.length + this.queue_.length > 0) {
      const keep = new Fifo<Queued>();
      for (const q of this.queue_) {
        if (q.share !== undefined) orphans.push({ msg: q.msg, share: q.share });
        else keep.push(q);
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
