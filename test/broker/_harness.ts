/**
 * Test harness: a broker served over in-memory duplex pairs, and a raw-packet client
 * (like mosquitto's mosq_test.py) that sends and expects packets one by one.
 */
import { Duplex } from 'node:stream';
import { Parser, encode } from '../../src/codec/index.js';
import type { Packet, ProtocolVersion, ConnectPacket } from '../../src/codec/types.js';
import { createBroker, type Broker } from '../../src/broker/broker.js';
import type { BrokerOptions } from '../../src/broker/options.js';
import { Logger } from '../../src/broker/log.js';
import { duplexPair } from '../../src/util/duplex-pair.js';
export { duplexPair };


export interface TestBroker { broker: Broker; logs: string[] }

export function startTestBroker(opts: Partial<BrokerOptions> = {}): TestBroker {
  const logs: string[] = [];
  const logger = new Logger(true, true, (l) => logs.push(l), false);
  const broker = createBroker({ sysInterval: 0, logger, ...opts });
  return { broker, logs };
}

/** the packet of one type (acks share one interface, so Extract alone would give never) */
export type PacketOf<T extends Packet['type']> = Packet & { type: T };

let portCounter = 50000;

export class RawClient {
  readonly packets: Packet[] = [];
  private waiters: Array<() => void> = [];
  closed = false;
  readonly parser: Parser;

  constructor(readonly socket: Duplex, public version: ProtocolVersion = 4) {
    this.parser = new Parser({ protocolVersion: version });
    socket.on('data', (chunk: Buffer) => {
      this.parser.parse(chunk, (p) => { this.packets.push(p); this.wake(); });
    });
    socket.on('end', () => { this.closed = true; this.wake(); });
    socket.on('close', () => { this.closed = true; this.wake(); });
    socket.on('error', () => { this.closed = true; this.wake(); });
  }

  static connectTo(tb: TestBroker, version: ProtocolVersion = 4): RawClient {
    const [client, server] = duplexPair();
    tb.broker.handle(server, { remoteAddress: '127.0.0.1', remotePort: portCounter++ });
    return new RawClient(client, version);
  }

  private wake(): void { const w = this.waiters; this.waiters = []; for (const f of w) f(); }

  send(p: Packet): void { this.socket.write(encode(p, this.version)); }
  sendRaw(bytes: Buffer | number[]): void { this.socket.write(Buffer.from(bytes as Buffer)); }

  /** Wait for the next packet (optionally of a type); fails after timeoutMs. */
  async next<T extends Packet['type']>(type?: T, timeoutMs = 2000): Promise<PacketOf<T>> {
    const deadline = Math.round(performance.now()) + timeoutMs;
    for (;;) {
      const p = this.packets.shift();
      if (p !== undefined) {
        if (type !== undefined && p.type !== type) throw new Error(`expected ${type}, got ${JSON.stringify(p)}`);
        return p as PacketOf<T>;
      }
      if (this.closed) throw new Error(`connection closed while waiting for ${type ?? 'a packet'}`);
      const left = deadline - Math.round(performance.now());
      if (left <= 0) throw new Error(`timed out waiting for ${type ?? 'a packet'}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  /** Assert that nothing arrives within ms. */
  async nothing(ms = 200): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    if (this.packets.length > 0) throw new Error(`expected nothing, got ${JSON.stringify(this.packets[0])}`);
  }

  /** Wait until the broker closes the connection. */
  async closedByBroker(timeoutMs = 2000): Promise<void> {
    const deadline = Math.round(performance.now()) + timeoutMs;
    while (!this.closed) {
      const left = deadline - Math.round(performance.now());
      if (left <= 0) throw new Error('connection still open');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  async connect(fields: Partial<ConnectPacket> = {}): Promise<PacketOf<'connack'>> {
    this.send({
      type: 'connect', protocolName: this.version === 3 ? 'MQIsdp' : 'MQTT', protocolVersion: this.version,
      clean: true, keepalive: 60, clientId: 'c', ...fields,
    } as ConnectPacket);
    return this.next('connack');
  }

  end(): void { this.socket.end(); }
  destroy(): void { this.socket.destroy(); }
}

/** Connect a client and assert CONNACK 0. */
export async function connected(tb: TestBroker, fields: Partial<ConnectPacket> = {}, version: ProtocolVersion = 4): Promise<RawClient> {
  const c = RawClient.connectTo(tb, version);
  const ack = await c.connect(fields);
  if (ack.reasonCode !== 0) throw new Error(`CONNACK ${ack.reasonCode}`);
  return c;
}

export async function subscribed(c: RawClient, topic: string, qos: 0 | 1 | 2 = 0, packetId = 1): Promise<number[]> {
  c.send({ type: 'subscribe', packetId, subscriptions: [{ topic, qos }] });
  const ack = await c.next('suback');
  return ack.reasonCodes;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
