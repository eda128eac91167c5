/**
 * The local side of a bridge: an in-process MQTT 5.0 connection to the broker (an in-memory duplex pair
 * handed to `broker.handle`, no socket), so that the bridge is an ordinary client of its broker: its client
 * id and username (local_username) are what the ACLs and the hooks see (as in mosquitto, no password is
 * checked: the connection is `trusted`), and its session queues what the remote cannot take yet (bounded
 * by the usual limits, durable with persistence).
 *
 * Unlike the client library, it acknowledges a message only when the bridge says so (after the remote
 * broker has taken it), so the broker keeps a message in flight, and queues the ones behind it, until
 * then. Subscriptions are No Local (what the bridge brings in does not go back out) and Retain As Published.
 */
import { Duplex } from 'node:stream';
import { Parser, encode } from '../codec/index.js';
import type { Packet, Properties, PublishPacket, QoS } from '../codec/types.js';
import type { Broker } from '../broker/broker.js';
import { duplexPair } from '../util/duplex-pair.js';

export interface LocalLinkOptions {
  clientId: string;
  clean: boolean;
  username?: string;
  password?: string;
  /** for the log lines and the connection's address: `bridge/NAME` */
  name: string;
}

/** QoS 1/2 messages from the broker the bridge holds unacknowledged at most (the rest wait in its session queue). */
const HELD_MAX = 100;

type Waiter = { resolve(p: Packet): void; reject(e: Error): void };

export class LocalLink {
  private socket: Duplex | undefined;
  private readonly parser = new Parser({ protocolVersion: 5 });
  private nextId = 1;
  private readonly waiting = new Map<number, Waiter>();
  private connackWaiter: Waiter | undefined;
  /** outgoing QoS 1/2 (messages the bridge brings in): in flight and waiting for window room */
  private window = 65535;
  private inflight = 0;
  private readonly backlog: Array<() => void> = [];
  private pingTimer: NodeJS.Timeout | undefined;
  closed = false;
  /** a message from the broker; call `ack()` once the remote has it (QoS 0: nothing to acknowledge) */
  onMessage: (p: PublishPacket, ack: () => void) => void = (_p, ack) => ack();
  onClose: (why: string) => void = () => {};

  constructor(private readonly broker: Broker, private readonly o: LocalLinkOptions) {}

  /** CONNECT; resolves with session present, rejects with the refusal. */
  async connect(): Promise<boolean> {
    const [mine, theirs] = duplexPair();
    this.socket = mine;
    mine.on('data', (chunk: Buffer) => {
      try {
        this.parser.parse(chunk, (p) => this.onPacket(p));
      } catch (err) {
        this.close(`malformed packet from the broker: ${(err as Error).message}`);
      }
    });
    mine.on('close', () => this.close('closed by the broker'));
    mine.on('end', () => this.close('closed by the broker'));
    mine.on('error', () => this.close('closed by the broker'));
    this.broker.handle(theirs, { remoteAddress: `bridge/${this.o.name}`, remotePort: 0, trusted: true });
    // the receive maximum bounds what the bridge holds while the remote is away (the broker queues the rest)
    const props: Properties = { sessionExpiryInterval: this.o.clean ? 0 : 0xffffffff, receiveMaximum: HELD_MAX };
    const connect: Packet = {
      type: 'connect', protocolName: 'MQTT', protocolVersion: 5, clean: this.o.clean, keepalive: 0,
      clientId: this.o.clientId, properties: props,
    };
    if (this.o.username !== undefined) connect.username = this.o.username;
    if (this.o.password !== undefined) connect.password = Buffer.from(this.o.password);
    const connack = await new Promise<Packet>((resolve, reject) => {
      this.connackWaiter = { resolve, reject };
      this.send(connect);
    });
    if (connack.type !== 'connack') throw new Error(`expected CONNACK, got ${connack.type}`);
    if (connack.reasonCode !== 0) {
      this.close('refused');
      throw new Error(`the local broker refused the bridge's connection (reason code 0x${connack.reasonCode.toString(16)})`);
    }
    this.window = connack.properties?.receiveMaximum ?? 65535;
    const ka = connack.properties?.serverKeepAlive;
    if (ka !== undefined && ka > 0) {
      this.pingTimer = setInterval(() => this.send({ type: 'pingreq' }), Math.max(1, ka) * 500);
      this.pingTimer.unref();
    }
    return connack.sessionPresent;
  }

  subscribe(filters: Array<{ topic: string; qos: QoS }>): Promise<number[]> {
    const packetId = this.id();
    return this.request(packetId, {
      type: 'subscribe', packetId,
      subscriptions: filters.map((f) => ({ topic: f.topic, qos: f.qos, noLocal: true, retainAsPublished: true, retainHandling: 0 })),
    }).then((p) => (p.type === 'suback' ? p.reasonCodes : []));
  }

  unsubscribe(topics: string[]): Promise<void> {
    const packetId = this.id();
    return this.request(packetId, { type: 'unsubscribe', packetId, topics }).then(() => undefined);
  }

  /** Publishes to the local broker (a message brought in); QoS 1/2 resolve when the broker completes them. */
  publish(topic: string, payload: Buffer, qos: QoS, retain: boolean, properties?: Properties): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the local link is closed'));
    if (qos === 0) {
      this.send({ type: 'publish', topic, payload, qos, retain, dup: false, ...(properties ? { properties } : {}) });
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const go = (): void => {
        if (this.closed) { reject(new Error('the local link is closed')); return; }
        this.inflight++;
        const packetId = this.id();
        this.waiting.set(packetId, {
          resolve: () => { this.inflight--; this.pump(); resolve(); },
          reject: (e) => { this.inflight--; reject(e); },
        });
        this.send({ type: 'publish', topic, payload, qos, retain, dup: false, packetId, ...(properties ? { properties } : {}) });
      };
      if (this.inflight < this.window) go();
      else this.backlog.push(go);
    });
  }

  /** Ends the connection: DISCONNECT (the session stays when it is persistent). */
  end(): void {
    if (this.closed) return;
    this.send({ type: 'disconnect', reasonCode: 0 });
    this.close('ended by the bridge');
  }

  close(why: string): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pingTimer);
    const err = new Error(`the local link closed: ${why}`);
    this.connackWaiter?.reject(err);
    this.connackWaiter = undefined;
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
    for (const go of this.backlog.splice(0)) go();
    this.socket?.end();
    this.socket?.destroy();
    this.onClose(why);
  }

  private pump(): void {
    while (this.inflight < this.window && this.backlog.length > 0) this.backlog.shift()!();
  }

  private id(): number {
    for (let i = 0; i < 65535; i++) {
      const id = this.nextId;
      this.nextId = this.nextId >= 65535 ? 1 : this.nextId + 1;
      if (!this.waiting.has(id)) return id;
    }
    throw new Error('no free packet id on the local link');
  }

  private request(packetId: number, p: Packet): Promise<Packet> {
    if (this.closed) return Promise.reject(new Error('the local link is closed'));
    return new Promise<Packet>((resolve, reject) => {
      this.waiting.set(packetId, { resolve, reject });
      this.send(p);
    });
  }

  private send(p: Packet): void {
    if (this.closed || this.socket === undefined) return;
    this.socket.write(encode(p, 5));
  }

  private onPacket(p: Packet): void {
    switch (p.type) {
      case 'connack': {
        const w = this.connackWaiter;
        this.connackWaiter = undefined;
        w?.resolve(p);
        break;
      }
      case 'publish': {
        const id = p.packetId;
        let acked = false;
        const ack = (): void => {
          if (acked || this.closed) return;
          acked = true;
          if (p.qos === 1) this.send({ type: 'puback', packetId: id!, reasonCode: 0 });
          else if (p.qos === 2) this.send({ type: 'pubrec', packetId: id!, reasonCode: 0 });
        };
        // held until the remote has it: its own bytes, not a view of a buffer the broker may share or reuse
        this.onMessage({ ...p, payload: Buffer.from(p.payload) }, ack);
        break;
      }
      case 'pubrel': this.send({ type: 'pubcomp', packetId: p.packetId, reasonCode: 0 }); break;
      case 'pubrec': {
        if ((p.reasonCode ?? 0) >= 0x80) { this.settle(p.packetId, p); break; }
        this.send({ type: 'pubrel', packetId: p.packetId, reasonCode: 0 });
        break;
      }
      case 'puback': case 'pubcomp': case 'suback': case 'unsuback': this.settle(p.packetId, p); break;
      case 'disconnect': this.close(`DISCONNECT from the broker (reason code 0x${(p.reasonCode ?? 0).toString(16)})`); break;
      default: break;
    }
  }

  private settle(packetId: number, p: Packet): void {
    const w = this.waiting.get(packetId);
    if (w === undefined) return;
    this.waiting.delete(packetId);
    w.resolve(p);
  }
}
