/**
 * SUBSCRIBE / UNSUBSCRIBE flows of the client state machine (pure): requests made while offline,
 * requests awaiting their ack, the subscriptions to renew after a reconnect without a session, and
 * the typed results (granted QoS, SubscribeError / UnsubscribeError with the 5.0 reason codes).
 */
import type { Packet, Properties, ProtocolVersion, Subscription, SubscribePacket, UnsubscribePacket } from '../codec/types.js';
import type { ConnackInfo } from './connack.js';
import { QueueFullError, SubscribeError, UnsubscribeError } from './errors.js';
import { encodeChecked, refusedFilters } from './limits.js';
import type { PacketIdAllocator } from './packet-id.js';
import { Deque } from './queue.js';
import type { Action } from './types.js';

export type ControlRequest =
  | { op: number; kind: 'subscribe'; subscriptions: Subscription[]; properties?: Properties }
  | { op: number; kind: 'unsubscribe'; topics: string[]; properties?: Properties };

interface Control { op: number; packet: SubscribePacket | UnsubscribePacket }

/** What the control flows need from the state machine. */
export interface ControlContext {
  readonly version: ProtocolVersion;
  readonly server: ConnackInfo;
  readonly ids: PacketIdAllocator;
  send(actions: Action[], packet: Packet, bytes: Buffer): void;
}

/** op 0 is internal (re-subscription): its results go nowhere. */
export const INTERNAL = 0;

export class ControlFlows {
  private readonly pending = new Map<number, Control>();        // awaiting SUBACK / UNSUBACK
  private readonly unsent = new Deque<ControlRequest>();         // made while offline
  private readonly subscriptions = new Map<string, { sub: Subscription; properties?: Properties }>();

  constructor(private readonly ctx: ControlContext) {}

  get size(): number { return this.pending.size + this.unsent.length; }

  /** Sends now when connected, else keeps the request for the next connection. */
  request(actions: Action[], r: ControlRequest, connected: boolean): void {
    if (r.kind === 'unsubscribe') for (const t of r.topics) this.subscriptions.delete(t);
    if (connected) this.send(actions, r);
    else this.unsent.push(r);
  }

  /**
   * After CONNACK: renew the subscriptions (no session); returns what sends the unacknowledged and the
   * offline requests again (called after the publishes are re-sent, to keep the original order).
   */
  connected(actions: Action[], sessionPresent: boolean, resubscribe: boolean): () => void {
    const unacknowledged = [...this.pending.values()];
    if (!sessionPresent && resubscribe) this.resubscribe(actions);
    return () => {
      for (const c of unacknowledged) {
        const bytes = encodeChecked(c.packet, this.ctx.version, this.ctx.server);
        if (!(bytes instanceof Error)) this.ctx.send(actions, c.packet, bytes);
      }
      for (let r = this.unsent.shift(); r; r = this.unsent.shift()) this.send(actions, r);
    };
  }

  /** Ops of every pending request (for shutdown), which are forgotten. */
  drain(): number[] {
    const ops = [...this.pending.values()].map((c) => c.op);
    for (const r of this.unsent.drain()) ops.push(r.op);
    this.pending.clear();
    return ops;
  }

  onAck(actions: Action[], p: Packet & { type: 'suback' | 'unsuback' }): void {
    const c = this.pending.get(p.packetId);
    if (!c || (c.packet.type === 'subscribe') !== (p.type === 'suback')) return;
    this.pending.delete(p.packetId);
    this.ctx.ids.release(p.packetId);
    if (c.packet.type === 'subscribe' && p.type === 'suback') {
      const subs = c.packet.subscriptions;
      const codes = subs.map((_, i) => p.reasonCodes[i] ?? 0x80);
      subs.forEach((sub, i) => {
        if (codes[i]! < 0x80) this.subscriptions.set(sub.topic, c.packet.properties ? { sub, properties: c.packet.properties } : { sub });
      });
      if (c.op === INTERNAL) return;
      actions.push(codes.some((x) => x >= 0x80)
        ? { type: 'reject', op: c.op, error: new SubscribeError(codes, subs.map((s) => s.topic), p.properties) }
        : { type: 'resolve', op: c.op, value: codes });
    } else if (c.packet.type === 'unsubscribe' && p.type === 'unsuback' && c.op !== INTERNAL) {
      const codes = p.reasonCodes ?? [];
      actions.push(codes.some((x) => x >= 0x80)
        ? { type: 'reject', op: c.op, error: new UnsubscribeError(codes, c.packet.topics, p.properties) }
        : { type: 'resolve', op: c.op, value: codes });
    }
  }

  private resubscribe(actions: Action[]): void {
    const plain: Subscription[] = [];
    for (const { sub, properties } of this.subscriptions.values()) {
      if (properties) this.send(actions, { op: INTERNAL, kind: 'subscribe', subscriptions: [sub], properties });
      else plain.push(sub);
    }
    if (plain.length > 0) this.send(actions, { op: INTERNAL, kind: 'subscribe', subscriptions: plain });
  }

  private send(actions: Action[], r: ControlRequest): void {
    const reject = (error: Error): void => { if (r.op !== INTERNAL) actions.push({ type: 'reject', op: r.op, error }); };
    if (r.kind === 'subscribe') {
      // refused before sending when the broker said it cannot serve them (CONNACK availability flags)
      const codes = refusedFilters(this.ctx.server, r.subscriptions, r.properties);
      if (codes) { reject(new SubscribeError(codes, r.subscriptions.map((s) => s.topic))); return; }
    }
    const id = this.ctx.ids.alloc();
    if (id === undefined) { reject(new QueueFullError(65535)); return; }
    const packet: SubscribePacket | UnsubscribePacket = r.kind === 'subscribe'
      ? { type: 'subscribe', packetId: id, subscriptions: r.subscriptions }
      : { type: 'unsubscribe', packetId: id, topics: r.topics };
    if (r.properties && this.ctx.version === 5) packet.properties = r.properties;
    const bytes = encodeChecked(packet, this.ctx.version, this.ctx.server);
    if (bytes instanceof Error) { this.ctx.ids.release(id); reject(bytes); return; }
    this.pending.set(id, { op: r.op, packet });
    this.ctx.send(actions, packet, bytes);
  }
}
