/**
 * The client protocol state machine: pure, no sockets, no timers.
 * It takes packets, calls and the time (`now`, in ms) and returns actions for the I/O shell (client.ts):
 * packets to send, messages to deliver, pending operations to resolve or reject, and when to close.
 * Operations are numbered tokens (`op`) that the shell maps to its promises.
 */
import type {
  AckPacket, ConnackPacket, ConnectPacket, Packet, Properties, ProtocolVersion, PublishPacket, QoS,
  SubscribePacket, Subscription, UnsubscribePacket,
} from '../codec/types.js';
import { connackReturnCodeText, reasonCodeText } from '../codec/constants.js';
import {
  ClientClosedError, ConnectionLostError, ConnectionRefusedError, PublishError, QueueFullError,
  SubscribeError, TimeoutError,
} from './errors.js';
import { PacketIdAllocator } from './packet-id.js';
import { Deque } from './queue.js';
import type { Action, ClientStateOptions, Message, OutgoingMessage } from './types.js';

export type { Action, ClientStateOptions, Message, OutgoingMessage } from './types.js';

type Status = 'offline' | 'connecting' | 'connected' | 'closed';
interface Flow { op: number; packet: PublishPacket; stage: 'publish' | 'pubrel' }
interface Control { op: number; packet: SubscribePacket | UnsubscribePacket }
interface Queued { op: number; message: OutgoingMessage }
type ControlRequest =
  | { op: number; kind: 'subscribe'; subscriptions: Subscription[]; properties?: Properties }
  | { op: number; kind: 'unsubscribe'; topics: string[]; properties?: Properties };

/** op 0 is internal (re-subscription): its results go nowhere. */
const INTERNAL = 0;

export class ClientState {
  status: Status = 'offline';
  clientId: string;
  /** effective keepalive in seconds (the broker's Server Keep Alive wins) */
  keepalive: number;
  private readonly ids = new PacketIdAllocator();
  private readonly inflight = new Map<number, Flow>();          // outgoing QoS 1/2 by packet id
  private readonly control = new Map<number, Control>();        // SUBSCRIBE/UNSUBSCRIBE awaiting ack
  private readonly unsent = new Deque<ControlRequest>();         // SUBSCRIBE/UNSUBSCRIBE made offline
  private readonly queue = new Deque<Queued>();
  private readonly incomingQos2 = new Set<number>();             // PUBREC sent, PUBREL not yet seen
  private readonly subscriptions = new Map<string, { sub: Subscription; properties?: Properties }>();
  private aliases = new Map<number, string>();
  private nextOp = 1;
  private window: number;
  private maximumQoS: QoS = 2;
  private connectStartedAt = 0;
  private lastSent = 0;
  private lastReceived = 0;
  private pingSentAt: number | undefined;
  private ending = false;

  constructor(readonly options: ClientStateOptions) {
    this.clientId = options.clientId;
    this.keepalive = options.keepalive;
    this.window = options.maxInflight;
  }

  get version(): ProtocolVersion { return this.options.protocolVersion; }
  /** QoS 1/2 publishes sent and not yet completed */
  get inflightCount(): number { return this.inflight.size; }
  get queuedCount(): number { return this.queue.length; }
  /** everything end() waits for */
  get outstanding(): number { return this.inflight.size + this.queue.length + this.control.size + this.unsent.length; }
  get isEnding(): boolean { return this.ending; }

  /** The transport is open: send CONNECT. */
  open(now: number): Action[] {
    if (this.status === 'closed') return [{ type: 'close', error: new ClientClosedError() }];
    this.status = 'connecting';
    this.connectStartedAt = now;
    this.pingSentAt = undefined;
    this.aliases = new Map();
    const o = this.options;
    const connect: ConnectPacket = {
      type: 'connect', protocolName: o.protocolVersion === 3 ? 'MQIsdp' : 'MQTT', protocolVersion: o.protocolVersion,
      clean: o.clean, keepalive: o.keepalive, clientId: o.clientId,
    };
    if (o.will) connect.will = o.will;
    if (o.username !== undefined) connect.username = o.username;
    if (o.password !== undefined) connect.password = o.password;
    if (o.properties && o.protocolVersion === 5) connect.properties = o.properties;
    const actions: Action[] = [];
    this.send(actions, connect, now);
    return actions;
  }

  /** The transport closed (for any reason). Pending work stays for a reconnect; see shutdown(). */
  connectionLost(): Action[] {
    if (this.status !== 'closed') this.status = 'offline';
    this.pingSentAt = undefined;
    return [];
  }

  /** No reconnect will follow: reject everything pending with `error` and refuse new work. */
  shutdown(error: Error): Action[] {
    const actions: Action[] = [];
    const reject = (op: number): void => { if (op !== INTERNAL) actions.push({ type: 'reject', op, error }); };
    for (const f of this.inflight.values()) reject(f.op);
    for (const c of this.control.values()) reject(c.op);
    for (const r of this.unsent.drain()) reject(r.op);
    for (const q of this.queue.drain()) reject(q.op);
    this.inflight.clear();
    this.control.clear();
    this.status = 'closed';
    return actions;
  }

  /** Graceful end: DISCONNECT once nothing is outstanding (at once with `force`). */
  end(now: number, force = false, reasonCode?: number, properties?: Properties): Action[] {
    this.ending = true;
    if (this.status === 'connected' && !force && this.outstanding > 0) return [];
    const actions: Action[] = [];
    if (this.status === 'connected') {
      const packet: Packet = { type: 'disconnect' };
      if (this.version === 5 && reasonCode) packet.reasonCode = reasonCode;
      if (this.version === 5 && properties) packet.properties = properties;
      this.send(actions, packet, now);
    }
    actions.push(...this.shutdown(new ClientClosedError('client ended before the operation completed')));
    actions.push({ type: 'close' });
    return actions;
  }

  publish(message: OutgoingMessage, now: number): { op: number; actions: Action[] } {
    const op = this.nextOp++;
    const actions: Action[] = [];
    if (this.status === 'closed' || this.ending) {
      actions.push({ type: 'reject', op, error: new ClientClosedError() });
    } else if (message.qos > this.maximumQoS) {
      actions.push({ type: 'reject', op, error: new PublishError(0x9b, 0, 'QoS not supported by the broker') });
    } else if (this.queue.length >= this.options.queueLimit) {
      actions.push({ type: 'reject', op, error: new QueueFullError(this.options.queueLimit) });
    } else {
      this.queue.push({ op, message });
      this.drain(actions, now);
    }
    return { op, actions };
  }

  subscribe(subscriptions: Subscription[], properties: Properties | undefined, now: number): { op: number; actions: Action[] } {
    return this.request({ op: this.nextOp++, kind: 'subscribe', subscriptions, properties }, now);
  }

  unsubscribe(topics: string[], properties: Properties | undefined, now: number): { op: number; actions: Action[] } {
    for (const t of topics) this.subscriptions.delete(t);
    return this.request({ op: this.nextOp++, kind: 'unsubscribe', topics, properties }, now);
  }

  /** Keepalive and CONNACK timeout. Call at nextDeadline(). */
  tick(now: number): Action[] {
    const actions: Action[] = [];
    if (this.status === 'connecting' && now - this.connectStartedAt >= this.options.connectTimeout) {
      this.status = 'offline';
      actions.push({ type: 'close', error: new TimeoutError(`no CONNACK within ${this.options.connectTimeout} ms`) });
    } else if (this.status === 'connected' && this.keepalive > 0) {
      const period = this.keepalive * 1000;
      if (this.pingSentAt !== undefined) {
        if (now - this.pingSentAt >= this.pingTimeout) {
          this.status = 'offline';
          actions.push({ type: 'close', error: new TimeoutError(`no PINGRESP within ${this.pingTimeout} ms`) });
        }
      } else if (now - this.lastSent >= period || now - this.lastReceived >= period) {
        this.send(actions, { type: 'pingreq' }, now);
        this.pingSentAt = now;
      }
    }
    return actions;
  }

  /** When tick() must run next, or undefined when no timer is needed. */
  nextDeadline(): number | undefined {
    if (this.status === 'connecting') return this.connectStartedAt + this.options.connectTimeout;
    if (this.status !== 'connected' || this.keepalive === 0) return undefined;
    if (this.pingSentAt !== undefined) return this.pingSentAt + this.pingTimeout;
    return Math.min(this.lastSent, this.lastReceived) + this.keepalive * 1000;
  }

  handle(packet: Packet, now: number): Action[] {
    this.lastReceived = now;
    const actions: Action[] = [];
    if (this.status === 'connecting' && packet.type !== 'connack') {
      return this.fail(actions, `expected CONNACK, received ${packet.type.toUpperCase()}`);
    }
    switch (packet.type) {
      case 'connack': return this.onConnack(packet, now);
      case 'publish': this.onPublish(actions, packet, now); break;
      case 'puback': case 'pubcomp': this.onComplete(actions, packet, now); break;
      case 'pubrec': this.onPubrec(actions, packet, now); break;
      case 'pubrel': {
        this.incomingQos2.delete(packet.packetId);
        this.send(actions, this.ack('pubcomp', packet.packetId), now);
        break;
      }
      case 'suback': case 'unsuback': this.onControlAck(actions, packet, now); break;
      case 'pingresp': this.pingSentAt = undefined; break;
      case 'disconnect': {
        const code = packet.reasonCode ?? 0;
        this.status = 'offline';
        actions.push({ type: 'close', error: new ConnectionLostError(`disconnected by the broker: ${reasonCodeText(code)}`, code) });
        break;
      }
      default: return this.fail(actions, `unexpected ${packet.type.toUpperCase()} from the broker`);
    }
    this.finishEnding(actions, now);
    return actions;
  }

  private get pingTimeout(): number { return this.options.pingTimeout ?? this.keepalive * 1000; }

  private fail(actions: Action[], message: string): Action[] {
    this.status = 'offline';
    actions.push({ type: 'close', error: new ConnectionLostError(`protocol error: ${message}`, 0x82) });
    return actions;
  }

  private send(actions: Action[], packet: Packet, now: number, mid?: number): void {
    this.lastSent = now;
    actions.push(mid === undefined ? { type: 'send', packet } : { type: 'send', packet, mid });
  }

  private ack(type: AckPacket['type'], packetId: number, reasonCode?: number): AckPacket {
    const p: AckPacket = { type, packetId };
    if (this.version === 5 && reasonCode) p.reasonCode = reasonCode;
    return p;
  }

  private onConnack(packet: ConnackPacket, now: number): Action[] {
    const actions: Action[] = [];
    if (this.status !== 'connecting') return this.fail(actions, 'unexpected CONNACK');
    if (packet.reasonCode !== 0) {
      this.status = 'offline';
      const text = connackReturnCodeText(packet.reasonCode, this.version);
      actions.push({ type: 'close', error: new ConnectionRefusedError(packet.reasonCode, this.version, text) });
      return actions;
    }
    this.status = 'connected';
    const p = packet.properties ?? {};
    if (p.assignedClientIdentifier !== undefined) this.clientId = p.assignedClientIdentifier;
    this.keepalive = p.serverKeepAlive ?? this.options.keepalive;
    this.window = Math.min(this.options.maxInflight, p.receiveMaximum ?? 65535);
    this.maximumQoS = (p.maximumQoS ?? 2) as QoS;
    actions.push({ type: 'connected', connack: packet });
    const unacknowledged = [...this.control.values()];
    if (!packet.sessionPresent) {
      this.incomingQos2.clear();
      if (this.options.resubscribe) this.resubscribe(actions, now);
    }
    // [MQTT-4.4.0-1] re-send unacknowledged PUBLISH (with DUP) and PUBREL, in their original order
    for (const flow of this.inflight.values()) {
      if (flow.stage === 'publish') {
        flow.packet = { ...flow.packet, dup: true };
        this.send(actions, flow.packet, now);
      } else {
        this.send(actions, this.ack('pubrel', flow.packet.packetId!), now);
      }
    }
    for (const c of unacknowledged) this.send(actions, c.packet, now);
    for (let r = this.unsent.shift(); r; r = this.unsent.shift()) this.sendControl(actions, r, now);
    this.drain(actions, now);
    this.finishEnding(actions, now);
    return actions;
  }

  private resubscribe(actions: Action[], now: number): void {
    const plain: Subscription[] = [];
    for (const { sub, properties } of this.subscriptions.values()) {
      if (properties) this.sendControl(actions, { op: INTERNAL, kind: 'subscribe', subscriptions: [sub], properties }, now);
      else plain.push(sub);
    }
    if (plain.length > 0) this.sendControl(actions, { op: INTERNAL, kind: 'subscribe', subscriptions: plain }, now);
  }

  private onPublish(actions: Action[], p: PublishPacket, now: number): void {
    let topic = p.topic;
    const alias = p.properties?.topicAlias;
    if (alias !== undefined) {
      if (topic) this.aliases.set(alias, topic);
      else topic = this.aliases.get(alias) ?? '';
      if (!topic) { this.fail(actions, `unknown topic alias ${alias}`); return; }
    }
    const message: Message = { topic, payload: p.payload, qos: p.qos, retain: p.retain, dup: p.dup };
    if (p.packetId !== undefined) message.packetId = p.packetId;
    if (p.properties) message.properties = p.properties;
    if (p.qos === 0) {
      actions.push({ type: 'message', message });
    } else if (p.qos === 1) {
      this.send(actions, this.ack('puback', p.packetId!), now);
      actions.push({ type: 'message', message });
    } else {
      // exactly once: deliver on the first PUBLISH, not again until its PUBREL arrives
      this.send(actions, this.ack('pubrec', p.packetId!), now);
      if (!this.incomingQos2.has(p.packetId!)) {
        this.incomingQos2.add(p.packetId!);
        actions.push({ type: 'message', message });
      }
    }
  }

  private onPubrec(actions: Action[], p: AckPacket, now: number): void {
    const flow = this.inflight.get(p.packetId);
    if (!flow || flow.packet.qos !== 2) {
      if (this.version === 5) this.send(actions, this.ack('pubrel', p.packetId, 0x92), now);
      return;
    }
    if ((p.reasonCode ?? 0) >= 0x80) {
      this.complete(actions, p.packetId, flow, new PublishError(p.reasonCode!, p.packetId, p.properties?.reasonString));
      this.drain(actions, now);
      return;
    }
    flow.stage = 'pubrel';
    this.send(actions, this.ack('pubrel', p.packetId), now);
  }

  /** PUBACK (QoS 1) or PUBCOMP (QoS 2) */
  private onComplete(actions: Action[], p: AckPacket, now: number): void {
    const flow = this.inflight.get(p.packetId);
    const expected = p.type === 'puback' ? flow?.packet.qos === 1 : flow?.stage === 'pubrel';
    if (!flow || !expected) return;
    const code = p.reasonCode ?? 0;
    const error = p.type === 'puback' && code >= 0x80 ? new PublishError(code, p.packetId, p.properties?.reasonString) : undefined;
    this.complete(actions, p.packetId, flow, error);
    this.drain(actions, now);
  }

  private complete(actions: Action[], id: number, flow: Flow, error?: Error): void {
    this.inflight.delete(id);
    this.ids.release(id);
    actions.push(error ? { type: 'reject', op: flow.op, error } : { type: 'resolve', op: flow.op, value: id });
  }

  private onControlAck(actions: Action[], p: Packet & { type: 'suback' | 'unsuback' }, now: number): void {
    const c = this.control.get(p.packetId);
    if (!c || (c.packet.type === 'subscribe') !== (p.type === 'suback')) return;
    this.control.delete(p.packetId);
    this.ids.release(p.packetId);
    if (c.packet.type === 'subscribe' && p.type === 'suback') {
      const subs = c.packet.subscriptions;
      const codes = subs.map((_, i) => p.reasonCodes[i] ?? 0x80);
      subs.forEach((sub, i) => {
        if (codes[i]! < 0x80) this.subscriptions.set(sub.topic, c.packet.properties ? { sub, properties: c.packet.properties } : { sub });
      });
      if (c.op !== INTERNAL) {
        actions.push(codes.some((x) => x >= 0x80)
          ? { type: 'reject', op: c.op, error: new SubscribeError(codes, subs.map((s) => s.topic)) }
          : { type: 'resolve', op: c.op, value: codes });
      }
    } else if (c.op !== INTERNAL) {
      actions.push({ type: 'resolve', op: c.op, value: p.type === 'unsuback' ? (p.reasonCodes ?? []) : [] });
    }
    void now;
  }

  private request(r: ControlRequest, now: number): { op: number; actions: Action[] } {
    const actions: Action[] = [];
    if (this.status === 'closed' || this.ending) actions.push({ type: 'reject', op: r.op, error: new ClientClosedError() });
    else if (this.status === 'connected') this.sendControl(actions, r, now);
    else this.unsent.push(r);
    return { op: r.op, actions };
  }

  private sendControl(actions: Action[], r: ControlRequest, now: number): void {
    const id = this.ids.alloc();
    if (id === undefined) {
      if (r.op !== INTERNAL) actions.push({ type: 'reject', op: r.op, error: new QueueFullError(65535) });
      return;
    }
    const packet: SubscribePacket | UnsubscribePacket = r.kind === 'subscribe'
      ? { type: 'subscribe', packetId: id, subscriptions: r.subscriptions }
      : { type: 'unsubscribe', packetId: id, topics: r.topics };
    if (r.properties && this.version === 5) packet.properties = r.properties;
    this.control.set(id, { op: r.op, packet });
    this.send(actions, packet, now);
  }

  /** Sends queued publishes while connected and the window has room. */
  private drain(actions: Action[], now: number): void {
    while (this.status === 'connected') {
      const q = this.queue.peek();
      if (!q) break;
      const m = q.message;
      const packet: PublishPacket = { type: 'publish', topic: m.topic, payload: m.payload, qos: m.qos, retain: m.retain, dup: false };
      if (m.properties && this.version === 5) packet.properties = m.properties;
      if (m.qos === 0) {
        this.queue.shift();
        const mid = this.ids.peek();
        this.send(actions, packet, now, mid);
        actions.push({ type: 'resolve', op: q.op, value: mid });
        continue;
      }
      if (this.inflight.size >= this.window) break;
      const id = this.ids.alloc();
      if (id === undefined) break;
      this.queue.shift();
      packet.packetId = id;
      this.inflight.set(id, { op: q.op, packet, stage: 'publish' });
      this.send(actions, packet, now);
    }
  }

  private finishEnding(actions: Action[], now: number): void {
    if (this.ending && this.status === 'connected' && this.outstanding === 0) actions.push(...this.end(now, true));
  }
}
