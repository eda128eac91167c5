/**
 * The client protocol state machine: pure, no sockets, no timers.
 * It takes packets, calls and the time (`now`, in ms) and returns actions for the I/O shell (client.ts):
 * packets to send, messages to deliver, pending operations to resolve or reject, and when to close.
 * Operations are numbered tokens (`op`) that the shell maps to its promises.
 * The 5.0 rules of the broker's CONNACK (limits.ts) and topic aliases (aliases.ts) live in their own modules.
 */
import type {
  AckPacket, AuthPacket, ConnackPacket, ConnectPacket, DisconnectPacket, Packet, Properties, ProtocolVersion,
  PublishPacket, Subscription,
} from '../codec/types.js';
import { connackReturnCodeText, reasonCodeText } from '../codec/constants.js';
import { IncomingAliases, OutgoingAliases, withAlias } from './aliases.js';
import { connackInfo, NO_LIMITS, type ConnackInfo } from './connack.js';
import { AuthFlow } from './auth.js';
import { ControlFlows, INTERNAL } from './control.js';
import {
  ClientClosedError, ClientError, ConnectionLostError, ConnectionRefusedError, PublishError,
  QueueFullError, ServerRedirectError, TimeoutError,
} from './errors.js';
import { encodeChecked, publishRefusal, withoutAlias } from './limits.js';
import { Keepalive } from './keepalive.js';
import { PacketIdAllocator } from './packet-id.js';
import { Deque } from './queue.js';
import type { Action, ClientStateOptions, Message, OutgoingMessage } from './types.js';

export type { Action, ClientStateOptions, Message, OutgoingMessage } from './types.js';

type Status = 'offline' | 'connecting' | 'connected' | 'closed';
/** `topic` is the full topic: on a new connection the packet is sent again without its alias */
interface Flow { op: number; packet: PublishPacket; topic: string; stage: 'publish' | 'pubrel' }
interface Queued { op: number; message: OutgoingMessage }

export class ClientState {
  status: Status = 'offline';
  clientId: string;
  /** effective keepalive in seconds (the broker's Server Keep Alive wins) */
  keepalive: number;
  /** what the last successful CONNACK said (defaults before the first) */
  server: ConnackInfo = NO_LIMITS;
  readonly ids = new PacketIdAllocator();
  private readonly inflight = new Map<number, Flow>();          // outgoing QoS 1/2 by packet id
  private readonly queue = new Deque<Queued>();
  private readonly incomingQos2 = new Set<number>();             // PUBREC sent, PUBREL not yet seen
  /** manualAck: QoS 2 ids delivered whose PUBREC waits for the application */
  private readonly awaitingAck = new Set<number>();
  /** connections that reached CONNACK: a manual QoS 1 acknowledgement belongs to one of them */
  private connections = 0;
  private readonly controls: ControlFlows;
  private aliasesIn = new IncomingAliases(0);
  private aliasesOut = new OutgoingAliases(0);
  private nextOp = 1;
  private window: number;
  private connectStartedAt = 0;
  private readonly timer: Keepalive;
  /** the time of the call in progress, for packets sent by the control flows */
  private lastSentAt = 0;
  private ending = false;
  private readonly auth: AuthFlow;

  constructor(readonly options: ClientStateOptions) {
    this.clientId = options.clientId;
    this.keepalive = options.keepalive;
    this.window = options.maxInflight;
    this.timer = new Keepalive(options.pingTimeout);
    this.auth = new AuthFlow(options.protocolVersion === 5 ? options.auth?.method : undefined, options.auth?.data);
    const state = this;
    this.controls = new ControlFlows({
      version: options.protocolVersion,
      get server() { return state.server; },
      ids: this.ids,
      send: (actions, packet, bytes) => this.send(actions, packet, this.lastSentAt, undefined, bytes),
    });
  }

  get version(): ProtocolVersion { return this.options.protocolVersion; }
  /** QoS 1/2 publishes sent and not yet completed */
  get inflightCount(): number { return this.inflight.size; }
  get queuedCount(): number { return this.queue.length; }
  /** everything end() waits for */
  get outstanding(): number { return this.inflight.size + this.queue.length + this.controls.size; }
  get isEnding(): boolean { return this.ending; }

  /** The transport is open: send CONNECT. */
  open(now: number): Action[] {
    if (this.status === 'closed') return [{ type: 'close', error: new ClientClosedError() }];
    this.status = 'connecting';
    this.connectStartedAt = now;
    this.timer.pingSentAt = undefined;
    this.auth.reset();
    const o = this.options;
    this.aliasesIn = new IncomingAliases(o.protocolVersion === 5 ? (o.properties?.topicAliasMaximum ?? 0) : 0);
    this.aliasesOut = new OutgoingAliases(0);
    this.server = NO_LIMITS;
    const connect: ConnectPacket = {
      type: 'connect', protocolName: o.protocolVersion === 3 ? 'MQIsdp' : 'MQTT', protocolVersion: o.protocolVersion,
      clean: o.clean, keepalive: o.keepalive, clientId: o.clientId,
    };
    if (o.will) connect.will = o.will;
    if (o.bridge === true) connect.bridge = true;
    if (o.username !== undefined) connect.username = o.username;
    if (o.password !== undefined) connect.password = o.password;
    if (o.protocolVersion === 5) {
      const props = this.auth.connectProperties({ ...o.properties });
      if (Object.keys(props).length > 0) connect.properties = props;
    }
    const actions: Action[] = [];
    this.send(actions, connect, now);
    return actions;
  }

  /** The transport closed (for any reason). Pending work stays for a reconnect; see shutdown(). */
  connectionLost(): Action[] {
    if (this.status !== 'closed') this.status = 'offline';
    this.timer.pingSentAt = undefined;
    const op = this.auth.reset();
    return op === undefined ? [] : [{ type: 'reject', op, error: new ConnectionLostError('connection lost during re-authentication') }];
  }

  /** No reconnect will follow: reject everything pending with `error` and refuse new work. */
  shutdown(error: Error): Action[] {
    const actions: Action[] = [];
    const reject = (op: number): void => { if (op !== INTERNAL) actions.push({ type: 'reject', op, error }); };
    for (const f of this.inflight.values()) reject(f.op);
    for (const op of this.controls.drain()) reject(op);
    for (const q of this.queue.drain()) reject(q.op);
    const reauth = this.auth.reset();
    if (reauth !== undefined) reject(reauth);
    this.inflight.clear();
    this.status = 'closed';
    return actions;
  }

  /** Graceful end: DISCONNECT once nothing is outstanding (at once with `force`). */
  end(now: number, force = false, reasonCode?: number, properties?: Properties): Action[] {
    this.ending = true;
    if (this.status === 'connected' && !force && this.outstanding > 0) return [];
    const actions: Action[] = [];
    if (this.status === 'connected') {
      const packet: DisconnectPacket = { type: 'disconnect' };
      if (this.version === 5 && reasonCode) packet.reasonCode = reasonCode;
      if (this.version === 5 && properties) {
        const props = { ...properties };
        // [MQTT-3.14.2-2] a session that CONNECT gave expiry 0 cannot be given one at DISCONNECT: dropped
        if (!this.options.properties?.sessionExpiryInterval && props.sessionExpiryInterval) delete props.sessionExpiryInterval;
        if (Object.keys(props).length > 0) packet.properties = props;
      }
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
    } else if (this.queue.length >= this.options.queueLimit) {
      actions.push({ type: 'reject', op, error: new QueueFullError(this.options.queueLimit) });
    } else {
      this.queue.push({ op, message });
      this.drain(actions, now);
    }
    return { op, actions };
  }

  subscribe(subscriptions: Subscription[], properties: Properties | undefined, now: number): { op: number; actions: Action[] } {
    const op = this.nextOp++;
    return { op, actions: this.request(now, (actions, connected) => this.controls.request(actions, { op, kind: 'subscribe', subscriptions, ...(properties ? { properties } : {}) }, connected), op) };
  }

  unsubscribe(topics: string[], properties: Properties | undefined, now: number): { op: number; actions: Action[] } {
    const op = this.nextOp++;
    return { op, actions: this.request(now, (actions, connected) => this.controls.request(actions, { op, kind: 'unsubscribe', topics, ...(properties ? { properties } : {}) }, connected), op) };
  }

  /** 5.0 re-authentication (AUTH 0x19); resolves with the broker's final authentication data. */
  reauthenticate(data: Buffer | undefined, now: number): { op: number; actions: Action[] } {
    const op = this.nextOp++;
    const actions: Action[] = [];
    if (this.status !== 'connected' || this.ending) {
      actions.push({ type: 'reject', op, error: this.status === 'closed' || this.ending ? new ClientClosedError() : new ClientError('not connected') });
      return { op, actions };
    }
    const r = this.auth.start(op, data);
    if (r instanceof Error) actions.push({ type: 'reject', op, error: r });
    else this.send(actions, r, now);
    return { op, actions };
  }

  /** The application's answer to the challenge of `auth` action `token` (stale tokens are ignored). */
  authRespond(token: number, data: Buffer | undefined, now: number): Action[] {
    const actions: Action[] = [];
    const packet = this.status === 'connecting' || this.status === 'connected' ? this.auth.answer(token, data) : undefined;
    if (packet) this.send(actions, packet, now);
    return actions;
  }

  /** The challenge handler failed: give up this connection (and the re-authentication). */
  authFailed(token: number, error: Error): Action[] {
    if (token !== this.auth.token) return [];
    const op = this.auth.reset();
    this.status = 'offline';
    return [...(op === undefined ? [] : [{ type: 'reject' as const, op, error }]), { type: 'close', error }];
  }

  /** The bytes from the broker could not be parsed: DISCONNECT with the error's reason code (5.0) and close. */
  parseError(error: Error & { reasonCode?: number }, now: number): Action[] {
    return this.protocolError([], error.reasonCode ?? 0x81, error.message, now, error);
  }

  /** Keepalive and CONNACK timeout. Call at nextDeadline(). */
  tick(now: number): Action[] {
    const actions: Action[] = [];
    if (this.status === 'connecting' && now - this.connectStartedAt >= this.options.connectTimeout) {
      this.status = 'offline';
      actions.push({ type: 'close', error: new TimeoutError(`no CONNACK within ${this.options.connectTimeout} ms`) });
    } else if (this.status === 'connected') {
      const due = this.timer.due(now, this.keepalive);
      if (due === 'timeout') {
        this.status = 'offline';
        actions.push({ type: 'close', error: new TimeoutError(`no PINGRESP within ${this.timer.timeout(this.keepalive)} ms`) });
      } else if (due === 'ping') {
        this.send(actions, { type: 'pingreq' }, now);
        this.timer.pingSentAt = now;
      }
    }
    return actions;
  }

  /** When tick() must run next, or undefined when no timer is needed. */
  nextDeadline(): number | undefined {
    if (this.status === 'connecting') return this.connectStartedAt + this.options.connectTimeout;
    return this.status === 'connected' ? this.timer.deadline(this.keepalive) : undefined;
  }

  handle(packet: Packet, now: number): Action[] {
    this.timer.lastReceived = now;
    const actions: Action[] = [];
    if (this.status === 'connecting' && packet.type !== 'connack' && packet.type !== 'auth' && packet.type !== 'disconnect') {
      return this.protocolError(actions, 0x82, `expected CONNACK, received ${packet.type.toUpperCase()}`, now);
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
      case 'suback': case 'unsuback': this.controls.onAck(actions, packet); break;
      case 'pingresp': this.timer.pingSentAt = undefined; break;
      case 'auth': this.onAuth(actions, packet, now); break;
      case 'disconnect': {
        const code = packet.reasonCode ?? 0;
        this.status = 'offline';
        const why = packet.properties?.reasonString ? ` (${packet.properties.reasonString})` : '';
        const error = new ConnectionLostError(`disconnected by the broker: ${reasonCodeText(code)}${why}`, code,
          packet.properties ? { properties: packet.properties } : undefined);
        const reauth = this.auth.reset();
        if (reauth !== undefined) actions.push({ type: 'reject', op: reauth, error });
        actions.push({ type: 'close', error });
        break;
      }
      default: return this.protocolError(actions, 0x82, `unexpected ${packet.type.toUpperCase()} from the broker`, now);
    }
    this.finishEnding(actions, now);
    return actions;
  }

  /** A protocol error of the broker: DISCONNECT with `code` (5.0, once connected) and close [MQTT-4.13.1-1]. */
  private protocolError(actions: Action[], code: number, message: string, now: number, cause?: Error): Action[] {
    if (this.version === 5 && this.status === 'connected') this.send(actions, { type: 'disconnect', reasonCode: code }, now);
    this.status = 'offline';
    actions.push({ type: 'close', error: new ConnectionLostError(`protocol error: ${message}`, code, cause ? { cause } : undefined) });
    return actions;
  }

  /** Runs a SUBSCRIBE/UNSUBSCRIBE request now (connected) or keeps it for the next connection. */
  private request(now: number, run: (actions: Action[], connected: boolean) => void, op: number): Action[] {
    const actions: Action[] = [];
    if (this.status === 'closed' || this.ending) {
      actions.push({ type: 'reject', op, error: new ClientClosedError() });
      return actions;
    }
    this.lastSentAt = now;
    run(actions, this.status === 'connected');
    return actions;
  }

  private send(actions: Action[], packet: Packet, now: number, mid?: number, bytes?: Buffer): void {
    this.timer.lastSent = now;
    const a: Action = { type: 'send', packet };
    if (mid !== undefined) a.mid = mid;
    if (bytes !== undefined) a.bytes = bytes;
    actions.push(a);
  }

  private ack(type: AckPacket['type'], packetId: number, reasonCode?: number): AckPacket {
    const p: AckPacket = { type, packetId };
    if (this.version === 5 && reasonCode) p.reasonCode = reasonCode;
    return p;
  }

  private onConnack(packet: ConnackPacket, now: number): Action[] {
    const actions: Action[] = [];
    if (this.status !== 'connecting') return this.protocolError(actions, 0x82, 'unexpected CONNACK', now);
    if (packet.reasonCode !== 0) {
      this.status = 'offline';
      const text = connackReturnCodeText(packet.reasonCode, this.version);
      const error = this.version === 5 && (packet.reasonCode === 0x9c || packet.reasonCode === 0x9d)
        ? new ServerRedirectError(packet.reasonCode, text, packet.properties)
        : new ConnectionRefusedError(packet.reasonCode, this.version, text, packet.properties);
      actions.push({ type: 'close', error });
      return actions;
    }
    this.status = 'connected';
    this.connections++;
    this.auth.token++;
    this.server = connackInfo(packet);
    if (this.server.assignedClientIdentifier !== undefined) this.clientId = this.server.assignedClientIdentifier;
    // [MQTT-3.2.2-21] the broker's Server Keep Alive replaces ours
    this.keepalive = this.server.serverKeepAlive ?? this.options.keepalive;
    // [MQTT-3.3.4-7] no more QoS 1/2 publishes in flight than the broker's Receive Maximum
    this.window = Math.min(this.options.maxInflight, this.server.receiveMaximum);
    this.aliasesOut = new OutgoingAliases(this.version === 5 ? this.server.topicAliasMaximum : 0);
    actions.push({ type: 'connected', connack: packet });
    if (!packet.sessionPresent) {
      this.incomingQos2.clear();
      this.awaitingAck.clear();
    }
    this.lastSentAt = now;
    const resendControls = this.controls.connected(actions, packet.sessionPresent, this.options.resubscribe);
    // [MQTT-4.4.0-1] re-send unacknowledged PUBLISH (with DUP) and PUBREL, in their original order;
    // topic aliases belong to the old connection, so the full topic goes out again
    for (const flow of this.inflight.values()) {
      if (flow.stage === 'publish') {
        flow.packet = withoutAlias({ ...flow.packet, topic: flow.topic, dup: true });
        this.send(actions, flow.packet, now);
      } else {
        this.send(actions, this.ack('pubrel', flow.packet.packetId!), now);
      }
    }
    resendControls();
    this.drain(actions, now);
    this.finishEnding(actions, now);
    return actions;
  }

  private onPublish(actions: Action[], p: PublishPacket, now: number): void {
    let topic = p.topic;
    if (this.version === 5) {
      const r = this.aliasesIn.resolve(p.topic, p.properties?.topicAlias);
      if ('reasonCode' in r) { this.protocolError(actions, r.reasonCode, r.reason, now); return; }
      topic = r.topic;
    }
    const message: Message = { topic, payload: p.payload, qos: p.qos, retain: p.retain, dup: p.dup };
    if (p.packetId !== undefined) message.packetId = p.packetId;
    if (p.properties) message.properties = p.properties;
    if (p.qos === 0) {
      actions.push({ type: 'message', message });
    } else if (this.options.manualAck === true) {
      this.onPublishManual(actions, message, p.packetId!, p.qos, now);
    } else if (p.qos === 1) {
      this.send(actions, this.ack('puback', p.packetId!), now);
      actions.push({ type: 'message', message });
    } else if (!this.incomingQos2.has(p.packetId!)) {
      // [MQTT-3.3.4-9] the broker must not exceed the Receive Maximum we sent
      const receiveMaximum = this.version === 5 ? (this.options.properties?.receiveMaximum ?? 65535) : 65535;
      if (this.incomingQos2.size >= receiveMaximum) {
        this.protocolError(actions, 0x93, `more than ${receiveMaximum} QoS 2 messages in flight`, now);
        return;
      }
      // exactly once: deliver on the first PUBLISH, not again until its PUBREL arrives
      this.send(actions, this.ack('pubrec', p.packetId!), now);
      this.incomingQos2.add(p.packetId!);
      actions.push({ type: 'message', message });
    } else {
      this.send(actions, this.ack('pubrec', p.packetId!), now);
    }
  }

  /**
   * manualAck: the message goes to the application with an acknowledgement token; its PUBACK/PUBREC
   * is sent by acknowledge(). QoS 2: delivered once; a re-sent PUBLISH that waits for its
   * acknowledgement is not answered yet.
   */
  private onPublishManual(actions: Action[], message: Message, packetId: number, qos: 1 | 2, now: number): void {
    if (qos === 2) {
      if (this.incomingQos2.has(packetId)) {
        if (!this.awaitingAck.has(packetId)) this.send(actions, this.ack('pubrec', packetId), now);
        return;
      }
      const receiveMaximum = this.version === 5 ? (this.options.properties?.receiveMaximum ?? 65535) : 65535;
      if (this.incomingQos2.size >= receiveMaximum) {
        this.protocolError(actions, 0x93, `more than ${receiveMaximum} QoS 2 messages in flight`, now);
        return;
      }
      this.incomingQos2.add(packetId);
      this.awaitingAck.add(packetId);
    }
    message.ackToken = { connection: this.connections, packetId, qos };
    actions.push({ type: 'message', message });
  }

  /**
   * manualAck: the application has the message: send its PUBACK (QoS 1, on the connection it came
   * on; after a reconnect the broker sends it again) or PUBREC (QoS 2, once).
   */
  acknowledge(token: { connection: number; packetId: number; qos: 1 | 2 }, now: number): Action[] {
    const actions: Action[] = [];
    if (this.status !== 'connected') return actions;
    if (token.qos === 1) {
      if (token.connection === this.connections) this.send(actions, this.ack('puback', token.packetId), now);
    } else if (this.awaitingAck.delete(token.packetId)) {
      this.send(actions, this.ack('pubrec', token.packetId), now);
    }
    return actions;
  }

  private onAuth(actions: Action[], p: AuthPacket, now: number): void {
    const r = this.auth.received(p, this.status === 'connected');
    if (r.kind === 'protocol-error') this.protocolError(actions, 0x82, r.reason, now);
    else if (r.kind === 'challenge') actions.push({ type: 'auth', token: r.token, data: r.data, reauth: r.reauth });
    else actions.push({ type: 'resolve', op: r.op, value: r.data });
  }

  private onPubrec(actions: Action[], p: AckPacket, now: number): void {
    const flow = this.inflight.get(p.packetId);
    if (!flow || flow.packet.qos !== 2) {
      if (this.version === 5) this.send(actions, this.ack('pubrel', p.packetId, 0x92), now);
      return;
    }
    if ((p.reasonCode ?? 0) >= 0x80) {
      this.complete(actions, p.packetId, flow, new PublishError(p.reasonCode!, p.packetId, p.properties?.reasonString, p.properties));
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
    const error = p.type === 'puback' && code >= 0x80 ? new PublishError(code, p.packetId, p.properties?.reasonString, p.properties) : undefined;
    this.complete(actions, p.packetId, flow, error);
    this.drain(actions, now);
  }

  private complete(actions: Action[], id: number, flow: Flow, error?: Error): void {
    this.inflight.delete(id);
    this.ids.release(id);
    actions.push(error ? { type: 'reject', op: flow.op, error } : { type: 'resolve', op: flow.op, value: id });
  }

  /** Sends queued publishes while connected and the window has room. */
  private drain(actions: Action[], now: number): void {
    while (this.status === 'connected') {
      const q = this.queue.peek();
      if (!q) break;
      const m = q.message;
      if (m.qos > 0 && this.inflight.size >= this.window) break;
      let id: number | undefined;
      if (m.qos > 0 && (id = this.ids.alloc()) === undefined) break;
      this.queue.shift();
      let packet: PublishPacket = { type: 'publish', topic: m.topic, payload: m.payload, qos: m.qos, retain: m.retain, dup: false };
      if (id !== undefined) packet.packetId = id;
      if (m.properties && this.version === 5) packet.properties = m.properties;
      const mode = this.version === 5 ? m.topicAlias ?? (this.options.autoTopicAlias === true && 'auto') : false;
      const aliased = mode === false ? { packet, fresh: false } : withAlias(this.aliasesOut, packet, mode);
      packet = aliased.packet;
      const encoded = publishRefusal(this.server, m) ?? encodeChecked(packet, this.version, this.server);
      if (encoded instanceof Error) {
        if (id !== undefined) this.ids.release(id);
        if (aliased.fresh) this.aliasesOut.forget(m.topic);
        actions.push({ type: 'reject', op: q.op, error: encoded });
      } else if (id === undefined) {
        // QoS 0 has no packet id: the 'packetsend' event reports the client's message counter (paho's mid),
        // the publish resolves to undefined once written
        this.send(actions, packet, now, this.ids.peek(), encoded);
        actions.push({ type: 'resolve', op: q.op, value: undefined });
      } else {
        this.inflight.set(id, { op: q.op, packet, topic: m.topic, stage: 'publish' });
        this.send(actions, packet, now, undefined, encoded);
      }
    }
  }

  private finishEnding(actions: Action[], now: number): void {
    if (this.ending && this.status === 'connected' && this.outstanding === 0) actions.push(...this.end(now, true));
  }
}
