/**
 * Helpers for the MQTT 5.0 client tests: a broker of either kind on a free loopback port, clients
 * that are ended after each file, bounded waits, a TCP proxy that decodes both directions (to see
 * what went over the wire, and to cut the connection), and a scripted broker for protocol errors
 * no real broker makes.
 */
import net from 'node:net';
import { Parser, encode } from '../../src/codec/index.js';
import type { Packet, ProtocolVersion } from '../../src/codec/types.js';
import { connect, type ConnectOptions, type Message, type MqttClient } from '../../src/client/index.js';
import { startMidge, startMosquitto, type BrokerProcess } from '../helpers/broker-process.js';
import { collect, sleep, waitFor, within } from '../client/_helpers.js';

export { collect, sleep, waitFor, within };

export type BrokerKind = 'mosquitto' | 'midge';
export const KINDS: BrokerKind[] = ['mosquitto', 'midge'];

/** Debian's mosquitto or Midge's own broker (CLI), with extra mosquitto.conf lines. */
export function startBrokerOf(kind: BrokerKind, config: string[] = [], verbose = true): Promise<BrokerProcess> {
  const lines = [...config];
  // as root, mosquitto would drop to the 'mosquitto' user, which cannot read the test's private files
  if (kind === 'mosquitto' && process.getuid?.() === 0) lines.unshift('user root');
  return kind === 'mosquitto' ? startMosquitto({ config: lines.join('\n'), verbose }) : startMidge({ config: lines.join('\n'), verbose });
}

/** The error a promise rejects with (fails when it resolves, or takes longer than `ms`). */
export async function rejection(promise: Promise<unknown>, ms = 5000): Promise<Error> {
  const r = await within(promise.then(() => undefined, (e: Error) => e), ms, 'the rejection');
  if (r === undefined) throw new Error('expected a rejection, the promise resolved');
  return r;
}

/** Clients made here are ended (forced) by `endAll()` in after(). */
export class Clients {
  private readonly list: MqttClient[] = [];

  async connect(url: string, options: ConnectOptions = {}): Promise<MqttClient> {
    const c = await connect(url, { protocolVersion: 5, connectTimeout: 5000, reconnect: false, ...options });
    this.list.push(c);
    return c;
  }

  async endAll(): Promise<void> {
    await Promise.all(this.list.splice(0).map((c) => within(c.end({ force: true }), 5000, 'client end')));
  }
}

/**
 * A TCP proxy in front of a broker that decodes what passes: `toServer` and `toClient` are the packets
 * of all connections through it, in order. `cut()` destroys every connection (an abnormal loss).
 */
export class WireProxy {
  readonly toServer: Packet[] = [];
  readonly toClient: Packet[] = [];
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly server: net.Server, readonly port: number) {}

  static async start(targetPort: number): Promise<WireProxy> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new WireProxy(server, (server.address() as net.AddressInfo).port);
    server.on('connection', (client) => proxy.relay(client, targetPort));
    return proxy;
  }

  get url(): string { return `mqtt://127.0.0.1:${this.port}`; }

  cut(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private relay(client: net.Socket, targetPort: number): void {
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
    this.sockets.add(client).add(upstream);
    const up = new Parser({ protocolVersion: 4 });
    const down = new Parser({ protocolVersion: 4 });
    const watch = (from: net.Socket, to: net.Socket, parser: Parser, list: Packet[]): void => {
      from.on('data', (chunk: Buffer) => {
        try {
          parser.parse(Buffer.from(chunk), (p) => {
            list.push(p);
            if (p.type === 'connect') down.protocolVersion = p.protocolVersion as ProtocolVersion;
          });
        } catch { /* a broken stream is the test's business, not the proxy's */ }
        to.write(chunk);
      });
      from.on('close', () => { to.destroy(); this.sockets.delete(from); });
      from.on('error', () => to.destroy());
    };
    watch(client, upstream, up, this.toServer);
    watch(upstream, client, down, this.toClient);
  }
}

/**
 * A scripted 5.0 broker: answers CONNECT with `connack` (or what `onPacket` does) and hands every
 * packet to `onPacket(packet, send)`. `received` lists what clients sent.
 */
export class ScriptedBroker {
  readonly received: Packet[] = [];
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly server: net.Server, readonly port: number) {}

  static async start(onPacket: (p: Packet, send: (p: Packet) => void, socket: net.Socket) => void): Promise<ScriptedBroker> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const broker = new ScriptedBroker(server, (server.address() as net.AddressInfo).port);
    server.on('connection', (socket) => {
      broker.sockets.add(socket);
      socket.on('close', () => broker.sockets.delete(socket));
      socket.on('error', () => undefined);
      const parser = new Parser({ protocolVersion: 5 });
      const send = (p: Packet): void => { if (!socket.destroyed) socket.write(encode(p, 5)); };
      socket.on('data', (chunk: Buffer) => {
        try {
          parser.parse(Buffer.from(chunk), (p) => { broker.received.push(p); onPacket(p, send, socket); });
        } catch { socket.destroy(); }
      });
    });
    return broker;
  }

  get url(): string { return `mqtt://127.0.0.1:${this.port}`; }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
