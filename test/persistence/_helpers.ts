/**
 * Helpers for the crash and restart tests: a data directory per test, a Midge broker process with
 * `persistence true` on it, hard kills (SIGKILL) and restarts on the same directory, a raw MQTT client
 * built on the project's codec (`encode` + `Parser`), a pipelined publisher that records every PUBACK /
 * PUBREC it gets, and a recording MQTT.js subscriber. Every wait is bounded.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as mqttConnect, type IClientOptions, type MqttClient } from 'mqtt';
import { startMidge, type BrokerProcess } from '../helpers/broker-process.js';
import { untilConnack } from '../helpers/mqttjs.js';
import { Waiters } from '../helpers/proc.js';
import { encode, Parser } from '../../src/codec/index.js';
import type { ConnackPacket, Packet, ProtocolVersion, PublishPacket, QoS, Will, Properties } from '../../src/codec/index.js';

// ---------------------------------------------------------------------------------------------
// data directories and broker processes

const dirs = new Set<string>();

/** A fresh directory under the OS temp dir; removed by `removeDataDirs()`. */
export function makeDataDir(prefix = 'midge-persist-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(dir);
  return dir;
}

export function removeDataDirs(): void {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

/** Broker config text with persistence in `dir` (`extra` lines appended). */
export function persistConfig(dir: string, extra = ''): string {
  return `persistence true\npersistence_location ${dir}/\nmax_queued_messages 100000\n${extra}`;
}

export interface Started {
  broker: BrokerProcess;
  /** ms from spawn to accepting connections */
  startMs: number;
  /** the broker's "Store: restored ..." log line, if it wrote one within a moment of accepting */
  restoredLine: string | undefined;
}

/** Starts `midge broker -c` with persistence on `dir`; a restart is just another call with the same dir. */
export async function startPersistent(dir: string, extra = ''): Promise<Started> {
  const t0 = Math.round(performance.now());
  const broker = await startMidge({ config: persistConfig(dir, extra) });
  const startMs = Math.round(performance.now()) - t0;
  const restoredLine = broker.logs().split('\n').find((l) => /Store: restored/.test(l));
  return { broker, startMs, restoredLine };
}

/** SIGKILL, then wait until the process is gone. */
export async function killHard(broker: BrokerProcess): Promise<void> {
  broker.kill('SIGKILL');
  await broker.stop();
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A small seeded PRNG (mulberry32): the same seed gives the same sequence in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------
// a raw client on the project codec

export interface RawConnect {
  clientId: string;
  clean: boolean;
  version?: ProtocolVersion;
  keepalive?: number;
  will?: Will;
  properties?: Properties;
}

export class RawClient {
  readonly packets: Packet[] = [];
  closed = false;
  private readonly waiters = new Waiters();
  private readonly parser: Parser;
  /** the first bytes from the broker that did not decode, if any (the connection is then closed) */
  parseError: unknown = undefined;
  private readonly taken = new Set<Packet>();

  private constructor(
    private readonly socket: Socket,
    readonly version: ProtocolVersion,
  ) {
    this.parser = new Parser({ protocolVersion: version });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.waiters.check();
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        // payloads are views of the chunk: copy it, the chunk is not ours to keep
        this.parser.parse(Buffer.from(chunk), (p) => this.packets.push(p));
      } catch (err) {
        this.parseError ??= err;
        socket.destroy();
      }
      this.waiters.check();
    });
  }

  /** Opens a TCP connection and sends CONNECT; resolves with the CONNACK (rejects on close or timeout). */
  static async connect(port: number, opts: RawConnect, timeoutMs = 5000): Promise<{ client: RawClient; connack: ConnackPacket }> {
    const version = opts.version ?? 4;
    const socket = netConnect({ host: '127.0.0.1', port });
    const client = new RawClient(socket, version);
    socket.setNoDelay(true);
    client.send({
      type: 'connect',
      protocolName: version === 3 ? 'MQIsdp' : 'MQTT',
      protocolVersion: version,
      clean: opts.clean,
      keepalive: opts.keepalive ?? 60,
      clientId: opts.clientId,
      ...(opts.will !== undefined ? { will: opts.will } : {}),
      ...(opts.properties !== undefined ? { properties: opts.properties } : {}),
    });
    const connack = (await client.next((p) => p.type === 'connack', timeoutMs, 'CONNACK')) as ConnackPacket;
    return { client, connack };
  }

  send(p: Packet): void {
    if (!this.closed) this.socket.write(encode(p, this.version));
  }

  /** Resolves with the first packet received (and not yet taken by `next`) that satisfies `pred`. */
  next(pred: (p: Packet) => boolean, timeoutMs = 5000, what = 'a packet'): Promise<Packet> {
    return this.waiters.wait(
      `raw client waiting for ${what}`,
      timeoutMs,
      () => {
        const p = this.packets.find((q) => !this.taken.has(q) && pred(q));
        if (p !== undefined) this.taken.add(p);
        return p;
      },
      () => `packets: ${describePackets(this.packets)}`,
      () => (this.closed ? `the connection was closed${this.parseError !== undefined ? ` (undecodable input: ${String(this.parseError)})` : ''}` : undefined),
    );
  }

  /** Waits until `cond()` holds, re-checked on every packet. */
  until<T>(what: string, timeoutMs: number, cond: () => T | undefined): Promise<T> {
    return this.waiters.wait(what, timeoutMs, cond, () => `packets: ${describePackets(this.packets)}`);
  }

  publishes(): PublishPacket[] {
    return this.packets.filter((p): p is PublishPacket => p.type === 'publish');
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** DISCONNECT and close. */
  async disconnect(): Promise<void> {
    this.send({ type: 'disconnect' });
    this.socket.end();
    await this.until('close after DISCONNECT', 3000, () => (this.closed ? true : undefined)).catch(() => this.destroy());
  }
}

export function describePackets(ps: readonly Packet[], max = 40): string {
  const brief = ps.slice(-max).map((p) => {
    if (p.type === 'publish') return `publish(${p.topic} q${p.qos}${p.dup ? ' dup' : ''} id=${String(p.packetId)} "${p.payload.toString('utf8').slice(0, 20)}")`;
    if ('packetId' in p) return `${p.type}(${p.packetId})`;
    if (p.type === 'connack') return `connack(sp=${String(p.sessionPresent)} rc=${p.reasonCode})`;
    return p.type;
  });
  return `${ps.length} packets, last: ${brief.join(' ')}`;
}

/** SUBSCRIBE one filter and wait for the SUBACK; returns the granted codes. */
export async function rawSubscribe(c: RawClient, filter: string, qos: QoS, packetId = 1): Promise<number[]> {
  c.send({ type: 'subscribe', packetId, subscriptions: [{ topic: filter, qos }] });
  const suback = await c.next((p) => p.type === 'suback' && p.packetId === packetId, 5000, 'SUBACK');
  return (suback as { reasonCodes: number[] }).reasonCodes;
}

// ---------------------------------------------------------------------------------------------
// the pipelined publisher

export interface PumpOptions {
  clientId: string;
  qos: 1 | 2;
  count: number;
  /** messages in flight at most (until PUBACK, or PUBCOMP for QoS 2) */
  window: number;
  topicOf: (i: number) => string;
  payloadOf: (i: number) => string;
  /** called after each acknowledgement (PUBACK, or PUBREC for QoS 2) with the number so far */
  onAck?: (acked: number) => void;
  /** overall bound */
  timeoutMs: number;
  clean?: boolean;
}

export interface PumpResult {
  /** indexes of the messages the broker acknowledged (PUBACK / PUBREC with a success code) */
  acked: Set<number>;
  /** indexes whose PUBLISH was written to the socket */
  sent: number;
  /** acknowledgements with a failure reason code */
  refused: number;
  /** true when the connection ended before every message was acknowledged */
  cutOff: boolean;
  elapsedMs: number;
}

/**
 * Publishes `count` messages over one raw connection with up to `window` unacknowledged; stops when
 * all are acknowledged (QoS 2: completed) or the connection closes (the broker was killed).
 */
export async function pump(port: number, o: PumpOptions): Promise<PumpResult> {
  const t0 = Math.round(performance.now());
  let client: RawClient;
  try {
    ({ client } = await RawClient.connect(port, { clientId: o.clientId, clean: o.clean ?? true }));
  } catch {
    // the broker went away before CONNACK (a kill right at the start): nothing was acknowledged
    return { acked: new Set(), sent: 0, refused: 0, cutOff: true, elapsedMs: Math.round(performance.now()) - t0 };
  }
  const acked = new Set<number>();
  const byId = new Map<number, number>();
  let next = 0;
  let refused = 0;
  let completed = 0;
  let inFlight = 0;
  let handled = 0;
  const fill = (): void => {
    while (inFlight < o.window && next < o.count && !client.closed) {
      const i = next++;
      const packetId = (i % 65000) + 1;
      byId.set(packetId, i);
      inFlight++;
      client.send({ type: 'publish', topic: o.topicOf(i), payload: Buffer.from(o.payloadOf(i)), qos: o.qos, retain: false, dup: false, packetId });
    }
  };
  fill();
  await client
    .until('the publisher to finish', o.timeoutMs, () => {
      for (; handled < client.packets.length; handled++) {
        const p = client.packets[handled]!;
        if (p.type === 'puback' || p.type === 'pubrec') {
          const i = byId.get(p.packetId);
          if (i === undefined) continue;
          if ((p.reasonCode ?? 0) >= 0x80) {
            refused++;
            byId.delete(p.packetId);
            inFlight--;
            continue;
          }
          acked.add(i);
          o.onAck?.(acked.size);
          if (p.type === 'puback') {
            byId.delete(p.packetId);
            inFlight--;
            completed++;
          } else {
            client.send({ type: 'pubrel', packetId: p.packetId });
          }
        } else if (p.type === 'pubcomp') {
          if (byId.delete(p.packetId)) {
            inFlight--;
            completed++;
          }
        }
      }
      // the packet list only grows; drop what has been handled so that it stays small
      if (handled > 10_000) {
        client.packets.splice(0, handled);
        handled = 0;
      }
      fill();
      if (completed + refused >= o.count) return true;
      if (client.closed) return true;
      return undefined;
    })
    .finally(() => client.destroy());
  return { acked, sent: next, refused, cutOff: completed + refused < o.count, elapsedMs: Math.round(performance.now()) - t0 };
}

// ---------------------------------------------------------------------------------------------
// a recording MQTT.js client (listeners attached before CONNECT is sent)

export interface Got {
  topic: string;
  payload: string;
  qos: number;
  dup: boolean;
  retain: boolean;
  at: number;
  properties?: Record<string, unknown>;
}

export interface Recorded {
  client: MqttClient;
  got: Got[];
  sessionPresent: boolean;
  /** resolves once `cond(got)` holds (checked on every message) */
  until<T>(what: string, timeoutMs: number, cond: (got: Got[]) => T | undefined): Promise<T>;
  /** waits until no message arrived for `quietMs` (bounded by `maxMs`) */
  quiet(quietMs: number, maxMs: number): Promise<void>;
  end(): Promise<void>;
}

const openClients = new Set<MqttClient>();

export async function recorded(port: number, opts: IClientOptions): Promise<Recorded> {
  const client = mqttConnect({ host: '127.0.0.1', port, protocol: 'mqtt', reconnectPeriod: 0, connectTimeout: 5000, ...opts });
  openClients.add(client);
  const got: Got[] = [];
  const waiters = new Waiters();
  let last = Math.round(performance.now());
  client.on('message', (topic, payload, packet) => {
    last = Math.round(performance.now());
    got.push({
      topic,
      payload: payload.toString('utf8'),
      qos: packet.qos,
      dup: packet.dup,
      retain: packet.retain,
      at: last,
      ...(packet.properties !== undefined ? { properties: packet.properties as Record<string, unknown> } : {}),
    });
    waiters.check();
  });
  client.on('error', () => undefined);
  const sessionPresent = await untilConnack(client, 6000).then(
    (connack) => connack.sessionPresent,
    (err: Error) => {
      openClients.delete(client);
      throw new Error(`MQTT.js connect as '${opts.clientId ?? ''}' to port ${port} failed: ${err.message}`);
    },
  );
  return {
    client,
    got,
    sessionPresent,
    until: (what, timeoutMs, cond) =>
      waiters.wait(what, timeoutMs, () => cond(got), () => `received ${got.length} messages, last: ${JSON.stringify(got.slice(-5))}`),
    quiet: async (quietMs, maxMs) => {
      const end = Math.round(performance.now()) + maxMs;
      last = Math.max(last, Math.round(performance.now()));
      while (Math.round(performance.now()) < end && Math.round(performance.now()) - last < quietMs) await sleep(Math.min(100, quietMs));
    },
    end: async () => {
      openClients.delete(client);
      await client.endAsync();
    },
  };
}

export async function closeRecordedClients(): Promise<void> {
  const clients = [...openClients];
  openClients.clear();
  await Promise.all(clients.map((c) => c.endAsync(true)));
}

// ---------------------------------------------------------------------------------------------
// accounting

export interface Tally {
  acked: number;
  receivedDistinct: number;
  duplicates: number;
  /** acknowledged payloads that never arrived */
  missing: string[];
  /** payloads that arrived without the publisher having seen an acknowledgement */
  unackedReceived: number;
}

/** Compares what the subscriber received with what the broker acknowledged. */
export function tally(ackedPayloads: ReadonlySet<string>, received: readonly string[]): Tally {
  const counts = new Map<string, number>();
  for (const p of received) counts.set(p, (counts.get(p) ?? 0) + 1);
  let duplicates = 0;
  let unackedReceived = 0;
  for (const [p, n] of counts) {
    duplicates += n - 1;
    if (!ackedPayloads.has(p)) unackedReceived++;
  }
  const missing = [...ackedPayloads].filter((p) => !counts.has(p));
  return { acked: ackedPayloads.size, receivedDistinct: counts.size, duplicates, missing, unackedReceived };
}

export function describeTally(t: Tally): string {
  return `acked ${t.acked}, received ${t.receivedDistinct} distinct, ${t.duplicates} duplicates, ${t.unackedReceived} received without an ack seen, ${t.missing.length} acked but missing${t.missing.length > 0 ? ` (first: ${t.missing.slice(0, 5).join(', ')})` : ''}`;
}

/**
 * Waits (bounded) until every payload of `expected` is among `source()` (an array that only grows,
 * read incrementally), checked every 50 ms. Resolves false on timeout instead of throwing, so that the
 * caller can report exactly what is missing.
 */
export async function waitForPayloads(source: () => readonly string[], expected: ReadonlySet<string>, timeoutMs: number): Promise<boolean> {
  const remaining = new Set(expected);
  let read = 0;
  const end = Math.round(performance.now()) + timeoutMs;
  for (;;) {
    const items = source();
    for (; read < items.length; read++) remaining.delete(items[read]!);
    if (remaining.size === 0) return true;
    if (Math.round(performance.now()) > end) return false;
    await sleep(50);
  }
}

/** The broker logged no internal error, failed commit or stack trace. */
export function assertCleanLog(broker: BrokerProcess): void {
  const bad = broker.logs().split('\n').filter((l) => /internal error|commit failed|Error:|^\s+at .+:\d+/i.test(l));
  if (bad.length > 0) throw new Error(`the broker logged errors:\n${bad.slice(0, 10).join('\n')}`);
}
