/**
 * A hand-written MQTT 5 client over a raw TCP socket, independent of Midge's codec, for what no
 * third-party client will send: protocol violations (topic alias 0, a property twice, more QoS 2
 * PUBLISHes than the receive maximum), and a client that never pings or never acknowledges.
 * Properties are lists of [identifier, encoded value] so that a test can repeat one at will.
 * Also `wireTap`, which frames and decodes what arrives on a third-party client's socket.
 */
import { connect as netConnect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { Waiters } from '../helpers/proc.js';

// ---- encoding ---------------------------------------------------------------------------------

export function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

export const u8 = (n: number): Buffer => Buffer.from([n]);
export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
export const bin = (b: Buffer): Buffer => Buffer.concat([u16(b.length), b]);
export const str = (s: string): Buffer => bin(Buffer.from(s, 'utf8'));

/** One property: its identifier and its encoded value. */
export type Prop = readonly [id: number, value: Buffer];

/** The properties a test sends, by spec name (MQTT 5.0 section 2.2.2.2). */
export const prop = {
  payloadFormatIndicator: (v: number): Prop => [0x01, u8(v)],
  messageExpiryInterval: (s: number): Prop => [0x02, u32(s)],
  contentType: (s: string): Prop => [0x03, str(s)],
  responseTopic: (s: string): Prop => [0x08, str(s)],
  correlationData: (b: Buffer): Prop => [0x09, bin(b)],
  subscriptionIdentifier: (n: number): Prop => [0x0b, varint(n)],
  sessionExpiryInterval: (s: number): Prop => [0x11, u32(s)],
  authenticationMethod: (s: string): Prop => [0x15, str(s)],
  authenticationData: (b: Buffer): Prop => [0x16, bin(b)],
  willDelayInterval: (s: number): Prop => [0x18, u32(s)],
  requestResponseInformation: (v: number): Prop => [0x19, u8(v)],
  receiveMaximum: (n: number): Prop => [0x21, u16(n)],
  topicAliasMaximum: (n: number): Prop => [0x22, u16(n)],
  topicAlias: (n: number): Prop => [0x23, u16(n)],
  userProperty: (k: string, v: string): Prop => [0x26, Buffer.concat([str(k), str(v)])],
  maximumPacketSize: (n: number): Prop => [0x27, u32(n)],
};

export function props(list: readonly Prop[] = []): Buffer {
  const body = Buffer.concat(list.flatMap(([id, value]) => [varint(id), value]));
  return Buffer.concat([varint(body.length), body]);
}

export function frame(firstByte: number, body: Buffer): Buffer {
  return Buffer.concat([u8(firstByte), varint(body.length), body]);
}

export interface ConnectOptions {
  clientId: string;
  keepalive?: number;
  cleanStart?: boolean;
  properties?: readonly Prop[];
}

export const packet = {
  connect(o: ConnectOptions): Buffer {
    const flags = o.cleanStart === false ? 0 : 0x02;
    const body = Buffer.concat([str('MQTT'), u8(5), u8(flags), u16(o.keepalive ?? 60), props(o.properties), str(o.clientId)]);
    return frame(0x10, body);
  },
  publish(o: { topic: string; payload?: string | Buffer; qos?: 0 | 1 | 2; retain?: boolean; packetId?: number; properties?: readonly Prop[] }): Buffer {
    const qos = o.qos ?? 0;
    const first = 0x30 | (qos << 1) | (o.retain === true ? 1 : 0);
    const payload = typeof o.payload === 'string' ? Buffer.from(o.payload) : (o.payload ?? Buffer.alloc(0));
    const id = qos > 0 ? u16(o.packetId ?? 1) : Buffer.alloc(0);
    return frame(first, Buffer.concat([str(o.topic), id, props(o.properties), payload]));
  },
  subscribe(packetId: number, filters: readonly [filter: string, options: number][], properties: readonly Prop[] = []): Buffer {
    const list = filters.flatMap(([f, opts]) => [str(f), u8(opts)]);
    return frame(0x82, Buffer.concat([u16(packetId), props(properties), ...list]));
  },
  /** PUBACK / PUBREC / PUBREL / PUBCOMP with reason code 0 and no properties (the short form). */
  ack(type: 'puback' | 'pubrec' | 'pubrel' | 'pubcomp', packetId: number): Buffer {
    const first = { puback: 0x40, pubrec: 0x50, pubrel: 0x62, pubcomp: 0x70 }[type];
    return frame(first, u16(packetId));
  },
  pingreq: (): Buffer => Buffer.from([0xc0, 0]),
  disconnect: (reasonCode = 0, properties: readonly Prop[] = []): Buffer =>
    frame(0xe0, Buffer.concat([u8(reasonCode), props(properties)])),
  auth: (reasonCode: number, properties: readonly Prop[]): Buffer => frame(0xf0, Buffer.concat([u8(reasonCode), props(properties)])),
};

// ---- decoding ---------------------------------------------------------------------------------

type PropType = 'byte' | 'u16' | 'u32' | 'varint' | 'utf8' | 'binary' | 'pair';

const PROPERTY_TYPES: Readonly<Record<number, readonly [string, PropType]>> = {
  0x01: ['payloadFormatIndicator', 'byte'], 0x02: ['messageExpiryInterval', 'u32'], 0x03: ['contentType', 'utf8'],
  0x08: ['responseTopic', 'utf8'], 0x09: ['correlationData', 'binary'], 0x0b: ['subscriptionIdentifier', 'varint'],
  0x11: ['sessionExpiryInterval', 'u32'], 0x12: ['assignedClientIdentifier', 'utf8'], 0x13: ['serverKeepAlive', 'u16'],
  0x15: ['authenticationMethod', 'utf8'], 0x16: ['authenticationData', 'binary'], 0x17: ['requestProblemInformation', 'byte'],
  0x18: ['willDelayInterval', 'u32'], 0x19: ['requestResponseInformation', 'byte'], 0x1a: ['responseInformation', 'utf8'],
  0x1c: ['serverReference', 'utf8'], 0x1f: ['reasonString', 'utf8'], 0x21: ['receiveMaximum', 'u16'],
  0x22: ['topicAliasMaximum', 'u16'], 0x23: ['topicAlias', 'u16'], 0x24: ['maximumQoS', 'byte'],
  0x25: ['retainAvailable', 'byte'], 0x26: ['userProperty', 'pair'], 0x27: ['maximumPacketSize', 'u32'],
  0x28: ['wildcardSubscriptionAvailable', 'byte'], 0x29: ['subscriptionIdentifierAvailable', 'byte'],
  0x2a: ['sharedSubscriptionAvailable', 'byte'],
};

/** Decoded properties: every property as a list of its values, in the order they came. */
export type DecodedProps = Record<string, unknown[]>;

class Reader {
  constructor(private readonly b: Buffer, public pos = 0) {}
  get left(): number {
    return this.b.length - this.pos;
  }
  byte(): number {
    if (this.left < 1) throw new Error('short packet');
    return this.b[this.pos++]!;
  }
  u16(): number {
    if (this.left < 2) throw new Error('short packet');
    const v = this.b.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    if (this.left < 4) throw new Error('short packet');
    const v = this.b.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  varint(): number {
    let v = 0;
    for (let mul = 1, i = 0; i < 4; i++, mul *= 128) {
      const b = this.byte();
      v += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return v;
    }
    throw new Error('malformed variable byte integer');
  }
  bytes(n: number): Buffer {
    if (this.left < n) throw new Error('short packet');
    const v = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  binary(): Buffer {
    return this.bytes(this.u16());
  }
  utf8(): string {
    return this.binary().toString('utf8');
  }
  rest(): Buffer {
    return this.bytes(this.left);
  }
  props(): DecodedProps {
    const end = this.varint() + this.pos;
    const out: DecodedProps = {};
    while (this.pos < end) {
      const id = this.varint();
      const def = PROPERTY_TYPES[id];
      if (def === undefined) throw new Error(`unknown property 0x${id.toString(16)}`);
      const [name, type] = def;
      const value = type === 'pair' ? [this.utf8(), this.utf8()] : type === 'utf8' ? this.utf8() : type === 'binary'
        ? Buffer.from(this.binary()) : type === 'byte' ? this.byte() : type === 'u16' ? this.u16() : type === 'u32'
          ? this.u32() : this.varint();
      (out[name] ??= []).push(value);
    }
    return out;
  }
}

export interface WirePacket {
  type: 'connack' | 'publish' | 'puback' | 'pubrec' | 'pubrel' | 'pubcomp' | 'suback' | 'unsuback' | 'pingresp' | 'disconnect' | 'auth' | 'other';
  /** CONNACK session present */
  sessionPresent?: boolean;
  /** CONNACK, acks, DISCONNECT, AUTH (0 when the packet omits it) */
  reasonCode?: number;
  /** SUBACK */
  reasonCodes?: number[];
  packetId?: number;
  topic?: string;
  qos?: number;
  retain?: boolean;
  dup?: boolean;
  payload?: Buffer;
  properties: DecodedProps;
}

const TYPES = ['other', 'other', 'connack', 'publish', 'puback', 'pubrec', 'pubrel', 'pubcomp', 'other', 'suback', 'other',
  'unsuback', 'other', 'pingresp', 'disconnect', 'auth'] as const;

/** Decodes one MQTT 5 packet sent by a server, from its first byte and body. */
export function decode(first: number, body: Buffer): WirePacket {
  const type = TYPES[first >> 4]!;
  const r = new Reader(body);
  switch (type) {
    case 'connack': {
      const sessionPresent = (r.byte() & 1) === 1;
      const reasonCode = r.byte();
      return { type, sessionPresent, reasonCode, properties: r.left > 0 ? r.props() : {} };
    }
    case 'publish': {
      const qos = (first >> 1) & 3;
      const topic = r.utf8();
      const packetId = qos > 0 ? r.u16() : undefined;
      const properties = r.props();
      return { type, topic, qos, packetId, retain: (first & 1) === 1, dup: (first & 8) === 8, properties, payload: Buffer.from(r.rest()) };
    }
    case 'puback': case 'pubrec': case 'pubrel': case 'pubcomp': {
      const packetId = r.u16();
      const reasonCode = r.left > 0 ? r.byte() : 0;
      return { type, packetId, reasonCode, properties: r.left > 0 ? r.props() : {} };
    }
    case 'suback': case 'unsuback': {
      const packetId = r.u16();
      const properties = r.props();
      return { type, packetId, properties, reasonCodes: [...r.rest()] };
    }
    case 'disconnect': case 'auth': {
      const reasonCode = r.left > 0 ? r.byte() : 0;
      return { type, reasonCode, properties: r.left > 0 ? r.props() : {} };
    }
    default:
      return { type, properties: {} };
  }
}

/** Splits a byte stream into packets: feed chunks, get [first byte, body] pairs. */
export class Framer {
  private buf = Buffer.alloc(0);

  push(chunk: Buffer, onPacket: (first: number, body: Buffer) => void): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      let len = 0;
      let i = 1;
      for (let mul = 1; ; i++, mul *= 128) {
        if (i >= this.buf.length) return;
        len += (this.buf[i]! & 0x7f) * mul;
        if ((this.buf[i]! & 0x80) === 0 || i === 4) break;
      }
      if (this.buf.length < i + 1 + len) return;
      const first = this.buf[0]!;
      const body = this.buf.subarray(i + 1, i + 1 + len);
      this.buf = this.buf.subarray(i + 1 + len);
      onPacket(first, body);
    }
  }
}

/**
 * Decodes every packet that arrives on a third-party client's socket from now on (attach it when the
 * socket is idle, e.g. right after CONNACK, so that the first chunk starts a packet). MQTT.js handles
 * one packet at a time, and a test that holds an acknowledgement (customHandleAcks) stops it there:
 * the tap still sees what the broker sends.
 */
export function wireTap(stream: Readable): { packets: WirePacket[]; waitFor(n: number, type: WirePacket['type'], timeoutMs?: number): Promise<WirePacket[]> } {
  const packets: WirePacket[] = [];
  const waiters = new Waiters();
  const framer = new Framer();
  stream.on('data', (chunk: Buffer) => framer.push(chunk, (first, body) => {
    packets.push(decode(first, body));
    waiters.check();
  }));
  return {
    packets,
    waitFor: (n, type, timeoutMs = 3000) => {
      const of = (): WirePacket[] => packets.filter((p) => p.type === type);
      return waiters.wait(`waiting for ${n} ${type} on the wire`, timeoutMs, () => (of().length >= n ? of() : undefined),
        () => `seen: ${JSON.stringify(packets.map((p) => p.type))}`);
    },
  };
}

// ---- the client ---------------------------------------------------------------------------------

export class RawClient5 {
  readonly packets: WirePacket[] = [];
  private readonly waiters = new Waiters();
  private readonly framer = new Framer();
  closed = false;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.framer.push(chunk, (first, body) => {
      this.packets.push(decode(first, body));
      this.waiters.check();
    }));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.waiters.check();
    });
  }

  /** Opens a TCP connection to 127.0.0.1:port (bounded). */
  static open(port: number): Promise<RawClient5> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host: '127.0.0.1', port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`raw connect to ${port}: timed out`));
      }, 3000);
      socket.once('connect', () => {
        clearTimeout(timer);
        const c = new RawClient5(socket);
        open.add(c);
        resolve(c);
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** Opens, sends CONNECT and resolves with CONNACK (of any reason code). */
  static async connect(port: number, o: ConnectOptions): Promise<[RawClient5, WirePacket]> {
    const c = await RawClient5.open(port);
    c.send(packet.connect(o));
    return [c, await c.next('connack')];
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  private describe = (): string =>
    `received: ${JSON.stringify(this.packets.map((p) => ({ ...p, payload: p.payload?.toString() })))}`;

  /** Takes the first packet of `type` received (waiting for it, bounded); it leaves the list. */
  next(type: WirePacket['type'], timeoutMs = 3000): Promise<WirePacket> {
    return this.waiters.wait(`raw client waiting for ${type}`, timeoutMs, () => {
      const i = this.packets.findIndex((p) => p.type === type);
      return i < 0 ? undefined : this.packets.splice(i, 1)[0];
    }, this.describe, () => (this.closed && !this.packets.some((p) => p.type === type) ? 'the connection closed' : undefined));
  }

  /** Resolves when the broker has closed the connection; rejects if it is still open after `timeoutMs`. */
  closedByBroker(timeoutMs = 3000): Promise<true> {
    return this.waiters.wait('waiting for the broker to close the connection', timeoutMs,
      () => (this.closed ? true : undefined), this.describe);
  }

  /** Waits `ms` and rejects if any packet of `type` arrived meanwhile (or was already there). */
  async nothing(type: WirePacket['type'], ms: number): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    if (this.packets.some((p) => p.type === type)) throw new Error(`expected no ${type}; ${this.describe()}`);
  }

  destroy(): void {
    this.socket.destroy();
    open.delete(this);
  }
}

const open = new Set<RawClient5>();

/** Destroys every raw client still open (for `afterEach`). */
export function closeAllRaw(): void {
  for (const c of [...open]) c.destroy();
}
