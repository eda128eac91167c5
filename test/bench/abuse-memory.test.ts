/**
 * Memory-bound abuse: the broker process (every limit at its default) must keep its RSS bounded
 * and keep serving other clients when
 *   - a subscriber stops reading while a publisher floods QoS 0 and QoS 1 messages, and
 *   - clients claim a 100 MB packet in its fixed header and then trickle the bytes
 *     (a PUBLISH after CONNECT, and a first packet CONNECT), like mosquitto's 01-bad-initial-packets.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode, Parser } from '../../src/codec/index.js';
import type { Packet, QoS } from '../../src/codec/types.js';
import { startBroker, type BrokerHandle } from '../helpers/bench-brokers.js';

const MiB = 1024 * 1024;
/** how much the broker's peak RSS may exceed its RSS before the abuse */
const BOUND_MB = 150;

/** A raw MQTT 3.1.1 connection over our codec, for the tests only. */
class Raw {
  readonly packets: Packet[] = [];
  private readonly parser = new Parser({ protocolVersion: 4 });
  private notify: (() => void) | undefined;
  closed = false;
  pubacks = 0;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      try {
        this.parser.parse(chunk, (p) => {
          if (p.type === 'puback') this.pubacks++;
          else this.packets.push(p);
        });
      } catch {
        socket.destroy();
      }
      this.notify?.();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.notify?.();
    });
  }

  static async open(port: number): Promise<Raw> {
    const s = connect({ host: '127.0.0.1', port });
    await once(s, 'connect');
    return new Raw(s);
  }

  static async connected(port: number, clientId: string): Promise<Raw> {
    const r = await Raw.open(port);
    r.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId });
    const ack = await r.next('connack');
    assert.equal(ack.type === 'connack' && ack.reasonCode, 0);
    return r;
  }

  send(p: Packet): boolean {
    return this.socket.write(encode(p, 4));
  }

  /** Resolves with the next packet of that type (bounded). */
  async next(type: Packet['type'], timeoutMs = 5000): Promise<Packet> {
    const deadline = Math.round(performance.now()) + timeoutMs;
    for (;;) {
      const i = this.packets.findIndex((p) => p.type === type);
      if (i >= 0) return this.packets.splice(i, 1)[0]!;
      if (this.closed) throw new Error(`connection closed while waiting for ${type}`);
      const left = deadline - Math.round(performance.now());
      if (left <= 0) throw new Error(`no ${type} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.notify = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.notify = undefined;
    }
  }

  async until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Math.round(performance.now()) + timeoutMs;
    while (!cond()) {
      if (Math.round(performance.now()) > deadline || this.closed) return cond();
      await new Promise((r) => setTimeout(r, 20));
    }
    return true;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Samples the broker's RSS every 50 ms; `peakMb()` is the highest seen above `baseKb`. */
function watchRss(b: BrokerHandle): { stop(): void; peakMb(): number; baseKb: number } {
  const baseKb = b.rssKb();
  let peak = baseKb;
  const t = setInterval(() => {
    peak = Math.max(peak, b.rssKb());
  }, 50);
  return {
    baseKb,
    stop: () => clearInterval(t),
    peakMb: () => (Math.max(peak, b.rssKb()) - baseKb) / 1024,
  };
}

/** A fresh client can still subscribe, publish and receive. */
async function stillServes(port: number, tag: string): Promise<void> {
  const sub = await Raw.connected(port, `check-sub-${tag}`);
  sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: `check/${tag}`, qos: 1 }] });
  await sub.next('suback');
  const pub = await Raw.connected(port, `check-pub-${tag}`);
  pub.send({ type: 'publish', topic: `check/${tag}`, payload: Buffer.from('still here'), qos: 1, retain: false, dup: false, packetId: 7 });
  const got = await sub.next('publish');
  assert.equal(got.type === 'publish' && got.payload.toString(), 'still here');
  assert.ok(await pub.until(() => pub.pubacks === 1, 5000), 'PUBACK for the check message');
  sub.close();
  pub.close();
}

/** Writes `count` copies of `packet` in batches, honouring backpressure; bounded by `timeoutMs`. */
async function flood(r: Raw, packetOf: (i: number) => Buffer, count: number, timeoutMs: number): Promise<number> {
  const deadline = Math.round(performance.now()) + timeoutMs;
  const perBatch = 64;
  let i = 0;
  while (i < count && Math.round(performance.now()) < deadline && !r.closed) {
    const parts: Buffer[] = [];
    for (let k = 0; k < perBatch && i < count; k++, i++) parts.push(packetOf(i));
    if (!r.socket.write(Buffer.concat(parts))) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        once(r.socket, 'drain'),
        new Promise((res) => { timer = setTimeout(res, Math.max(1, deadline - Math.round(performance.now()))); }),
      ]);
      clearTimeout(timer);
    }
  }
  return i;
}

describe('broker memory under abuse (bounded RSS, still serving)', { timeout: 30_000 }, () => {
  let dir: string;
  let broker: BrokerHandle;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'midge-abuse-'));
    broker = await startBroker('midge', { dir, defaults: true });
  });

  after(async () => {
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a subscriber that stops reading while 200k QoS 0 and 20k QoS 1 messages of 1 KiB flood in does not grow the broker without limit', async (t) => {
    const sub = await Raw.connected(broker.port, 'paused-sub');
    sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'flood/#', qos: 1 }] });
    await sub.next('suback');
    sub.socket.pause(); // stops reading: the kernel buffers fill, then the broker's
    const pub = await Raw.connected(broker.port, 'flooder');
    const rss = watchRss(broker);
    const payload = Buffer.alloc(1024, 0x61);
    const q0 = encode({ type: 'publish', topic: 'flood/q0', payload, qos: 0, retain: false, dup: false }, 4);
    const sent0 = await flood(pub, () => q0, 200_000, 12_000);
    const q1 = (i: number): Buffer => encode({
      type: 'publish', topic: 'flood/q1', payload, qos: 1 as QoS, retain: false, dup: false, packetId: (i % 65535) + 1,
    }, 4);
    const sent1 = await flood(pub, q1, 20_000, 6_000);
    // every QoS 1 PUBLISH was handled once its PUBACK is back
    const acked = await pub.until(() => pub.pubacks >= sent1, 6_000);
    rss.stop();
    const grew = rss.peakMb();
    t.diagnostic(`sent ${sent0} QoS 0 + ${sent1} QoS 1 (${pub.pubacks} acked); broker RSS +${grew.toFixed(1)} MB at peak`);
    assert.ok(sent0 > 50_000, `the QoS 0 flood got going (${sent0} sent)`);
    assert.ok(acked, `all ${sent1} QoS 1 messages acknowledged (got ${pub.pubacks})`);
    assert.ok(broker.alive(), 'the broker is still running');
    assert.ok(grew < BOUND_MB, `broker RSS grew by ${grew.toFixed(1)} MB (bound ${BOUND_MB} MB) for ${sent0} + ${sent1} messages of 1 KiB`);
    await stillServes(broker.port, 'flood');
    pub.close();
    sub.close();
  });

  test('clients claiming a 100 MB PUBLISH (after CONNECT) or CONNECT (first packet) and trickling bytes keep the broker bounded and serving', async (t) => {
    const rss = watchRss(broker);
    // remaining length 100 MiB as a variable byte integer
    const len = 100 * MiB;
    const varint: number[] = [];
    let v = len;
    do {
      let b = v % 128;
      v = Math.floor(v / 128);
      if (v > 0) b |= 0x80;
      varint.push(b);
    } while (v > 0);
    const tricklers: Raw[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await Raw.connected(broker.port, `trickle-pub-${i}`);
      r.socket.write(Buffer.from([0x30, ...varint, 0x00, 0x03, 0x61, 0x2f, 0x62])); // PUBLISH 'a/b' ...
      tricklers.push(r);
    }
    for (let i = 0; i < 5; i++) {
      const r = await Raw.open(broker.port);
      r.socket.write(Buffer.from([0x10, ...varint, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04])); // CONNECT 'MQTT' 4 ...
      tricklers.push(r);
    }
    const chunk = Buffer.alloc(4096, 0x62);
    const stopAt = Math.round(performance.now()) + 2500;
    let closedByBroker = 0;
    const trickle = setInterval(() => {
      for (const r of tricklers) if (!r.closed) r.socket.write(chunk);
    }, 20);
    try {
      // meanwhile other clients are served
      await stillServes(broker.port, 'trickle-1');
      while (Math.round(performance.now()) < stopAt) await new Promise((r) => setTimeout(r, 100));
      await stillServes(broker.port, 'trickle-2');
    } finally {
      clearInterval(trickle);
      rss.stop();
      closedByBroker = tricklers.filter((r) => r.closed).length;
      for (const r of tricklers) r.close();
    }
    assert.ok(broker.alive(), 'the broker is still running');
    const grew = rss.peakMb();
    t.diagnostic(`broker RSS +${grew.toFixed(1)} MB at peak; ${closedByBroker} of 10 tricklers were closed by the broker`);
    assert.ok(grew < BOUND_MB, `broker RSS grew by ${grew.toFixed(1)} MB (bound ${BOUND_MB} MB) with 10 clients claiming 100 MB each`);
  });
});
