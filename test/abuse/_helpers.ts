/**
 * Shared pieces of the abuse tier (test/abuse): the broker's memory from /proc, a bystander
 * publisher/subscriber pair that must keep being served, raw sockets that speak hand-encoded packets,
 * a seeded PRNG, and bounded waits. Every wait here has a deadline.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import type { MqttClient } from 'mqtt';
import WebSocket from 'ws';
import { encode, Parser } from '../../src/codec/index.js';
import type { ConnectPacket, Packet, ProtocolVersion } from '../../src/codec/types.js';
import { connect as mqttjsConnect, collect } from '../helpers/mqttjs.js';

// ---------------------------------------------------------------- time

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Rejects after `ms` with a message naming `what` (the promise itself is left to settle). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `cond` every `everyMs` until it is true; false when `ms` passed first. */
export async function pollUntil(cond: () => boolean | Promise<boolean>, ms: number, everyMs = 100): Promise<boolean> {
  const deadline = Math.round(performance.now()) + ms;
  for (;;) {
    if (await cond()) return true;
    if (Math.round(performance.now()) >= deadline) return false;
    await sleep(everyMs);
  }
}

// ---------------------------------------------------------------- the broker process

export interface Mem {
  /** VmRSS, KiB */
  rss: number;
  /** VmHWM (peak RSS since the process started), KiB */
  hwm: number;
}

/** The memory of a process as /proc/PID/status tells it. Throws when the process is gone. */
export function memOf(pid: number): Mem {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    if (m === null) throw new Error(`/proc/${pid}/status has no ${name}`);
    return Number(m[1]);
  };
  return { rss: field('VmRSS'), hwm: field('VmHWM') };
}

export const mib = (kib: number): string => `${(kib / 1024).toFixed(1)} MiB`;

/** Alive and not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Sockets the process has open (entries of /proc/PID/fd that are sockets). */
export function socketCount(pid: number): number {
  const dir = `/proc/${pid}/fd`;
  let fds: string[];
  try { fds = readdirSync(dir); } catch { return 0; }
  let n = 0;
  for (const fd of fds) {
    try {
      if (readlinkSync(`${dir}/${fd}`).startsWith('socket:')) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

/**
 * Samples a process's RSS every `everyMs` (VmHWM already gives the peak; the samples show the shape
 * and the last value before a crash). `stop()` returns the samples' maximum.
 */
export function sampleRss(pid: number, everyMs = 250): { stop(): number } {
  let max = 0;
  const timer = setInterval(() => {
    try { max = Math.max(max, memOf(pid).rss); } catch { /* gone: the liveness assertion reports it */ }
  }, everyMs);
  return { stop: () => { clearInterval(timer); return max; } };
}

/**
 * The V8 inspector of a broker started with `--inspect=127.0.0.1:0` (NODE_OPTIONS): a full garbage
 * collection on demand, then the heap in use. Node keeps freed memory until its heap limit makes it
 * collect, so RSS alone cannot tell a leak from garbage; after `gc()` it can.
 */
export class Inspector {
  private id = 0;
  private readonly pending = new Map<number, (result: unknown) => void>();
  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as { id?: number; result?: unknown };
      if (m.id !== undefined) { this.pending.get(m.id)?.(m.result); this.pending.delete(m.id); }
    });
  }

  /** Finds "Debugger listening on ws://..." in the logs and connects (bounded). */
  static async attach(logs: () => string, ms = 5000): Promise<Inspector> {
    let url: string | undefined;
    await pollUntil(() => (url = /Debugger listening on (ws:\/\/\S+)/.exec(logs())?.[1]) !== undefined, ms, 20);
    if (url === undefined) throw new Error(`no inspector URL in the broker's logs:\n${logs()}`);
    const ws = new WebSocket(url);
    await within(new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); }), ms, 'inspector connect');
    return new Inspector(ws);
  }

  private call(method: string): Promise<unknown> {
    const id = ++this.id;
    const p = new Promise<unknown>((resolve) => this.pending.set(id, resolve));
    this.ws.send(JSON.stringify({ id, method }));
    return within(p, 20_000, `inspector ${method}`);
  }

  /** Two full collections (the second one frees what the first one's finalizers released), then the used heap in KiB. */
  async gcHeap(): Promise<number> {
    await this.call('HeapProfiler.collectGarbage');
    await this.call('HeapProfiler.collectGarbage');
    const usage = (await this.call('Runtime.getHeapUsage')) as { usedSize: number };
    return usage.usedSize / 1024;
  }

  close(): void { this.ws.close(); }
}

// ---------------------------------------------------------------- the bystander

/**
 * An MQTT.js publisher/subscriber pair (QoS 1, persistent subscriber session) on its own topic.
 * `roundTrip(during)` publishes one message before, one during and one after `during()` and checks all
 * three arrive in order; `startPump()` keeps publishing (one QoS 1 message at a time) until stopped,
 * and `stop()` checks every message published arrived, in order, and reports the slowest PUBACK.
 */
export class Bystander {
  private seq = 0;
  private constructor(readonly pub: MqttClient, readonly sub: MqttClient, readonly topic: string) {}

  static async start(port: number, name: string, opts: { username?: string; password?: string } = {}): Promise<Bystander> {
    const topic = `bystander-${name}/t`;
    const sub = await mqttjsConnect(port, { clientId: `bystander-sub-${name}`, clean: false, keepalive: 30, ...opts });
    await sub.subscribeAsync(topic, { qos: 1 });
    const pub = await mqttjsConnect(port, { clientId: `bystander-pub-${name}`, keepalive: 30, ...opts });
    return new Bystander(pub, sub, topic);
  }

  private next(): string { return `m${++this.seq}`; }

  private async publish(tag: string, timeoutMs: number): Promise<number> {
    const t0 = Math.round(performance.now());
    await within(this.pub.publishAsync(this.topic, tag, { qos: 1 }), timeoutMs, `bystander PUBACK for ${tag}`);
    return Math.round(performance.now()) - t0;
  }

  async roundTrip(during: () => Promise<unknown> = async () => undefined, timeoutMs = 20_000): Promise<void> {
    const tags = [this.next(), this.next(), this.next()];
    const got = collect(this.sub, 3, timeoutMs);
    await this.publish(tags[0]!, timeoutMs);
    const attacked = during();
    await this.publish(tags[1]!, timeoutMs);
    await attacked;
    await this.publish(tags[2]!, timeoutMs);
    assert.deepEqual((await got).map((m) => m.payload), tags, 'the bystander lost nothing');
  }

  /** Keeps publishing QoS 1 messages, one after the other (a pause of `gapMs` between them). */
  startPump(gapMs = 20, pubackTimeoutMs = 15_000): Pump {
    const tags: string[] = [];
    let stopping = false;
    let maxLatency = 0;
    let failure: unknown;
    const loop = (async () => {
      while (!stopping) {
        const tag = this.next();
        tags.push(tag);
        try {
          maxLatency = Math.max(maxLatency, await this.publish(tag, pubackTimeoutMs));
        } catch (err) {
          failure = err;
          return;
        }
        await sleep(gapMs);
      }
    })();
    return {
      published: () => tags.length,
      stop: async (deliveryTimeoutMs = 20_000) => {
        stopping = true;
        await loop;
        if (failure !== undefined) throw failure;
        // the recorder of test/helpers/mqttjs.ts has every message since the subscriber connected
        const received = await collect(this.sub, tags.length, deliveryTimeoutMs);
        assert.deepEqual(received.map((m) => m.payload), tags, 'every bystander QoS 1 message arrived, in order');
        return { published: tags.length, maxPubackMs: maxLatency };
      },
    };
  }
}

export interface Pump {
  published(): number;
  /** Stops publishing; asserts every message arrived in order; resolves with the count and the slowest PUBACK. */
  stop(deliveryTimeoutMs?: number): Promise<{ published: number; maxPubackMs: number }>;
}

// ---------------------------------------------------------------- raw sockets

export function connectPacket(clientId: string, opts: Partial<ConnectPacket> = {}): ConnectPacket {
  return { type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId, ...opts };
}

/** A raw TCP socket to the broker, connected (rejects after `ms`). Errors after connecting are ignored. */
export function rawSocket(port: number, ms = 5000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`raw connect to ${port}: timed out`)); }, ms);
    s.once('error', (err) => { clearTimeout(timer); reject(err); });
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      s.on('error', () => undefined);
      resolve(s);
    });
  });
}

/**
 * A raw client: a socket plus the project's parser on what comes back. Packets arrive in `packets`
 * until `discard()` (then only counted), so a flooding client need not keep them.
 */
export class RawClient {
  readonly packets: Packet[] = [];
  received = 0;
  /** PUBLISH packets received */
  publishes = 0;
  bytesIn = 0;
  closed = false;
  private keep = true;
  private readonly parser: Parser;
  private readonly waiters = new Set<() => void>();

  constructor(readonly socket: net.Socket, readonly version: ProtocolVersion = 4) {
    this.parser = new Parser({ protocolVersion: version });
    socket.on('data', (chunk: Buffer) => {
      this.bytesIn += chunk.length;
      try {
        this.parser.parse(chunk, (p) => {
          this.received++;
          if (p.type === 'publish') this.publishes++;
          if (this.keep) this.packets.push(p);
        });
      } catch {
        socket.destroy();
      }
      for (const w of [...this.waiters]) w();
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of [...this.waiters]) w();
    });
  }

  static async open(port: number, version: ProtocolVersion = 4): Promise<RawClient> {
    return new RawClient(await rawSocket(port), version);
  }

  /** Sends CONNECT and waits for a successful CONNACK. */
  static async connect(port: number, clientId: string, opts: Partial<ConnectPacket> = {}): Promise<RawClient> {
    const version = opts.protocolVersion ?? 4;
    const c = await RawClient.open(port, version);
    c.send(connectPacket(clientId, opts));
    const ack = await c.waitFor((p) => p.type === 'connack', 5000, `CONNACK for ${clientId}`);
    if (ack.type !== 'connack' || ack.reasonCode !== 0) {
      c.socket.destroy();
      throw new Error(`CONNACK for ${clientId}: ${JSON.stringify(ack)}`);
    }
    return c;
  }

  send(p: Packet): boolean { return this.socket.write(encode(p, this.version)); }

  discard(): void { this.keep = false; this.packets.length = 0; }

  /** Resolves with the first kept packet matching `pred` (it stays in `packets`). */
  waitFor(pred: (p: Packet) => boolean, ms: number, what: string): Promise<Packet> {
    return this.until(() => this.packets.find(pred), ms, what);
  }

  /** Resolves when the broker closed the socket (true) or `ms` passed (false). */
  async closedWithin(ms: number): Promise<boolean> {
    try {
      await this.until(() => (this.closed ? true : undefined), ms, 'close');
      return true;
    } catch {
      return false;
    }
  }

  until<T>(attempt: () => T | undefined, ms: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const v = attempt();
        if (v !== undefined) { done(); resolve(v); return; }
        if (this.closed) { done(); reject(new Error(`${what}: the connection closed`)); }
      };
      const done = (): void => { clearTimeout(timer); this.waiters.delete(check); };
      const timer = setTimeout(() => { done(); reject(new Error(`${what}: timed out after ${ms} ms`)); }, ms);
      this.waiters.add(check);
      check();
    });
  }

  destroy(): void { this.socket.destroy(); }
}

/**
 * Writes buffers to a socket as fast as it takes them, honouring its back-pressure, until `next()`
 * returns undefined, `maxBytes` were written or `ms` passed. Resolves with the bytes handed to the
 * socket and whether it stopped because the socket would not take more (write() false, no 'drain').
 */
export async function pump(socket: net.Socket, next: () => Buffer | undefined, limits: { maxBytes: number; ms: number }): Promise<{ bytes: number; packets: number; stalled: boolean; ms: number }> {
  const t0 = Math.round(performance.now());
  const deadline = t0 + limits.ms;
  let bytes = 0;
  let packets = 0;
  for (;;) {
    if (socket.destroyed || bytes >= limits.maxBytes) break;
    if (Math.round(performance.now()) >= deadline) return { bytes, packets, stalled: socket.writableNeedDrain, ms: Math.round(performance.now()) - t0 };
    // write a batch, then yield so the event loop runs
    let ok = true;
    for (let i = 0; i < 256 && ok && bytes < limits.maxBytes; i++) {
      const b = next();
      if (b === undefined) return { bytes, packets, stalled: false, ms: Math.round(performance.now()) - t0 };
      ok = socket.write(b);
      bytes += b.length;
      packets++;
    }
    if (!ok) {
      const drained = await new Promise<boolean>((resolve) => {
        const left = Math.max(1, deadline - Math.round(performance.now()));
        const timer = setTimeout(() => { socket.off('drain', on); socket.off('close', on); resolve(false); }, left);
        function on(): void { clearTimeout(timer); socket.off('drain', on); socket.off('close', on); resolve(true); }
        socket.on('drain', on);
        socket.on('close', on);
      });
      if (!drained) return { bytes, packets, stalled: true, ms: Math.round(performance.now()) - t0 };
    } else {
      await new Promise((r) => setImmediate(r));
    }
  }
  return { bytes, packets, stalled: false, ms: Math.round(performance.now()) - t0 };
}

// ---------------------------------------------------------------- $SYS

/** The latest value of each $SYS topic the client subscribed to (strings), kept as they come. */
export async function watchSys(client: MqttClient, topics: string[]): Promise<Map<string, string>> {
  const values = new Map<string, string>();
  client.on('message', (topic, payload) => { if (topics.includes(topic)) values.set(topic, payload.toString('utf8')); });
  await client.subscribeAsync(topics, { qos: 0 });
  return values;
}

// ---------------------------------------------------------------- PRNG

/** mulberry32: a small seeded PRNG; `seed` is printed by the tests that use it, so a run can be replayed. */
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
