/**
 * One benchmark connection: a raw socket, our codec's Parser, and the handshake
 * (CONNECT → CONNACK → SUBSCRIBE → SUBACK). No general client library: what happens after the
 * handshake (pumping PUBLISHes, counting deliveries) belongs to the owner.
 */
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, createWebSocketStream } from 'ws';
import { encode, Parser } from '../codec/index.js';
import type { Packet, ProtocolVersion, PublishPacket, QoS } from '../codec/types.js';
import { nowNs } from './stamp.js';

export type Role = 'pub' | 'sub' | 'idle';
export type ClientState = 'new' | 'connack' | 'suback' | 'ready' | 'closed' | 'failed';
export type FailKind = 'connect' | 'connack' | 'suback' | 'closed' | 'proto' | 'timeout';

export interface ClientOwner {
  /** the handshake finished (and, for a subscriber, the SUBACK granted the subscription) */
  onReady(c: Client): void;
  /** the connection ended: before `ready` (a failed handshake) or after it */
  onEnd(c: Client, kind: FailKind, why: string): void;
  onPublish(c: Client, p: PublishPacket): void;
  onPuback(c: Client, packetId: number): void;
  /** after the packets of one received chunk were handled (`c.rxNs` is the chunk's arrival time) */
  onChunk(c: Client): void;
  onDrain(c: Client): void;
}

export interface ClientOptions {
  host: string;
  port: number;
  /** over WebSocket: ws://host:port/mqtt, subprotocol mqtt */
  ws?: boolean;
  localAddress?: string;
  version: ProtocolVersion;
  clientId: string;
  keepalive: number;
  username?: string;
  password?: string;
  /** subscriber: the filter and its QoS */
  filter?: string;
  qos?: QoS;
  /** false: a persistent session (5.0: clean start false, session expiry 0xFFFFFFFF); default true */
  clean?: boolean;
}

const PINGREQ = Buffer.from([0xc0, 0x00]);
const DISCONNECT = Buffer.from([0xe0, 0x00]);

export class Client {
  state: ClientState = 'new';
  /** the owner's index for this client in its own lists */
  local = -1;
  /** a TCP socket, or the Duplex of a WebSocket (--ws) */
  socket: Socket | Duplex | undefined;
  /** ns: when connect() was called (handshake timeouts, connect latency) */
  startNs = 0;
  /** ns: when the last chunk arrived */
  rxNs = 0;
  /** ns: when the SUBSCRIBE was written (subscriber) */
  subscribedNs = 0;
  /** ms (Date.now): the last write, for keepalive */
  lastTxMs = 0;
  /** the socket's buffer is full: wait for 'drain' */
  blocked = false;
  bytesIn = 0;
  bytesOut = 0;
  // publisher state (the owner uses these)
  built = 0;
  rateCount = 0;
  inflight = 0;
  nextPid = 1;
  minLast = 0;
  limitReached = false;
  /** subscriber: how many deliveries it received (offline runs count towards the expected total) */
  got = 0;
  /** the last CONNACK's session present flag */
  sessionPresent = false;
  /** subscriber: a SUBACK granted the subscription (a reconnect with the session present skips SUBSCRIBE) */
  subscribed = false;
  // subscriber state: acknowledgements to send after the current chunk
  private acks: number[] | undefined;
  private parser: Parser;
  private readonly onPacketBound: (p: Packet) => void;

  constructor(readonly owner: ClientOwner, readonly role: Role, readonly index: number, readonly opts: ClientOptions) {
    this.parser = new Parser({ protocolVersion: opts.version });
    this.onPacketBound = (p) => this.onPacket(p);
  }

  get ready(): boolean { return this.state === 'ready'; }
  get handshaking(): boolean { return this.state === 'connack' || this.state === 'suback'; }

  start(): void {
    const o = this.opts;
    this.startNs = nowNs();
    this.state = 'connack';
    // a fresh parser: a reconnect (--offline) must not see a half packet of the last connection
    if (this.socket !== undefined) this.parser = new Parser({ protocolVersion: o.version });
    const s = o.ws === true ? openWebSocket(o)
      : connect({ host: o.host, port: o.port, ...(o.localAddress !== undefined ? { localAddress: o.localAddress } : {}) });
    this.socket = s;
    // shared listener functions find the client on the socket: no closures per connection, and an
    // idle connection skips what only traffic needs (Nagle off is a setsockopt call; 'drain')
    (s as OwnedSocket)[kClient] = this;
    s.on('data', onSocketData);
    s.on('error', onSocketError);
    s.on('close', onSocketClose);
    if (this.role !== 'idle') {
      if ('setNoDelay' in s) s.setNoDelay(true); // (ws sets it on its own socket)
      s.on('drain', onSocketDrain);
    }
    // written at once: node sends it when the TCP handshake is done
    this.write(encode({
      type: 'connect', protocolName: 'MQTT', protocolVersion: o.version, clean: o.clean ?? true, keepalive: o.keepalive,
      clientId: o.clientId,
      ...(o.clean === false && o.version === 5 ? { properties: { sessionExpiryInterval: 0xffffffff } } : {}),
      ...(o.username !== undefined ? { username: o.username } : {}),
      ...(o.password !== undefined ? { password: Buffer.from(o.password) } : {}),
    }, o.version));
  }

  /** Writes; returns false (and sets `blocked`) when the socket buffer is full. */
  write(buf: Buffer): boolean {
    const s = this.socket;
    if (s === undefined || s.destroyed) return false;
    this.bytesOut += buf.length;
    this.lastTxMs = Date.now();
    const ok = s.write(buf);
    if (!ok) this.blocked = true;
    return ok;
  }

  ping(): void {
    if (this.ready) this.write(PINGREQ);
  }

  /**
   * DISCONNECT, then close once the broker has closed its side (or after 1 s) with a reset rather
   * than a FIN: the broker's socket then skips TIME_WAIT, so that tens of thousands of closed
   * benchmark connections do not linger for a minute and slow down the next run's port allocation.
   */
  disconnect(): Promise<void> {
    const s = this.socket;
    const wasReady = this.ready;
    if (this.state !== 'failed') this.state = 'closed';
    if (s === undefined || s.destroyed) return Promise.resolve();
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    const reset = (): void => {
      if (!s.destroyed) {
        if ('resetAndDestroy' in s) s.resetAndDestroy();
        else s.destroy();
      }
    };
    if (!wasReady) {
      reset();
      return closed;
    }
    s.write(DISCONNECT);
    s.once('end', reset);
    setTimeout(reset, 1000).unref();
    return closed;
  }

  /** Stops reading (the socket stays open). */
  pause(): void { this.socket?.pause(); }

  end(kind: FailKind, why: string): void {
    if (this.state === 'closed' || this.state === 'failed') return;
    const wasReady = this.ready;
    this.state = wasReady ? 'closed' : 'failed';
    this.socket?.destroy();
    this.owner.onEnd(this, wasReady ? 'closed' : kind, why);
  }

  onDrain(): void {
    this.blocked = false;
    this.owner.onDrain(this);
  }

  onData(chunk: Buffer): void {
    this.rxNs = nowNs();
    this.bytesIn += chunk.length;
    try {
      this.parser.parse(chunk, this.onPacketBound);
    } catch (err) {
      this.end('proto', err instanceof Error ? err.message : String(err));
      return;
    }
    if (this.acks !== undefined && this.acks.length > 0) this.flushAcks(this.acks);
    this.owner.onChunk(this);
  }

  private onPacket(p: Packet): void {
    switch (p.type) {
      case 'publish':
        this.owner.onPublish(this, p);
        if (p.qos > 0 && this.ready) (this.acks ??= []).push(p.packetId!);
        return;
      case 'puback':
        this.owner.onPuback(this, p.packetId);
        return;
      case 'connack':
        if (this.state !== 'connack') throw new Error('unexpected CONNACK');
        if (p.reasonCode !== 0) {
          this.end('connack', `CONNACK refused with code ${p.reasonCode}`);
          return;
        }
        this.sessionPresent = p.sessionPresent;
        if (this.role === 'sub' && !(this.subscribed && p.sessionPresent)) {
          this.state = 'suback';
          this.subscribedNs = nowNs();
          this.write(encode({
            type: 'subscribe', packetId: 1, subscriptions: [{ topic: this.opts.filter!, qos: this.opts.qos ?? 0 }],
          }, this.opts.version));
        } else {
          this.state = 'ready';
          this.owner.onReady(this);
        }
        return;
      case 'suback':
        if (this.state !== 'suback') throw new Error('unexpected SUBACK');
        if ((p.reasonCodes[0] ?? 0x80) >= 0x80) {
          this.end('suback', `subscription refused (code ${p.reasonCodes[0] ?? 'none'})`);
          return;
        }
        this.subscribed = true;
        this.state = 'ready';
        this.owner.onReady(this);
        return;
      case 'pingresp':
        return;
      case 'disconnect':
        this.end('closed', `DISCONNECT from the broker (reason ${p.reasonCode ?? 0})`);
        return;
      case 'pubrel':
        // QoS 2 is not generated; answer anyway so that a foreign publisher's flow completes
        this.write(encode({ type: 'pubcomp', packetId: p.packetId }, this.opts.version));
        return;
      default:
        throw new Error(`unexpected ${p.type.toUpperCase()}`);
    }
  }

  private flushAcks(ids: number[]): void {
    const out = Buffer.allocUnsafe(ids.length * 4);
    for (let i = 0; i < ids.length; i++) {
      const at = i * 4;
      out[at] = 0x40;
      out[at + 1] = 2;
      out.writeUInt16BE(ids[i]!, at + 2);
    }
    ids.length = 0;
    this.write(out);
  }
}

/**
 * A WebSocket as a stream (ws's own adapter): binary messages in, each write one binary message out;
 * writes before the upgrade wait for it.
 */
function openWebSocket(o: ClientOptions): Duplex {
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  const ws = new WebSocket(`ws://${host}:${o.port}/mqtt`, 'mqtt', {
    perMessageDeflate: false,
    ...(o.localAddress !== undefined ? { localAddress: o.localAddress } : {}),
  });
  return createWebSocketStream(ws);
}

const kClient = Symbol('midge.bench.client');
type OwnedSocket = Duplex & { [kClient]: Client };
function onSocketData(this: Duplex, chunk: Buffer): void { (this as OwnedSocket)[kClient].onData(chunk); }
function onSocketDrain(this: Duplex): void { (this as OwnedSocket)[kClient].onDrain(); }
function onSocketError(this: Duplex, err: NodeJS.ErrnoException): void {
  const c = (this as OwnedSocket)[kClient];
  c.end(c.handshaking ? 'connect' : 'closed', err.code ?? err.message);
}
function onSocketClose(this: Duplex): void { (this as OwnedSocket)[kClient].end('closed', 'closed by the broker'); }
