/**
 * The retained-message burst (`midge bench run --retained N`): publishers store N retained messages
 * (QoS 1, distinct topics PREFIX/r/<publisher>/<n>, acknowledged before the next phase), then one
 * subscriber subscribes to --retained-filter ('#') and receives them; measured from its SUBSCRIBE
 * to the last delivery. Afterwards the messages are cleared again (empty retained PUBLISHes).
 * Runs on the main thread: the burst has a single receiver.
 */
import { encode } from '../codec/index.js';
import type { PublishPacket, QoS } from '../codec/types.js';
import { Client, type ClientOwner, type FailKind } from './client.js';
import { subEndpoint, type BenchConfig } from './config.js';
import type { BenchResult } from './coordinator.js';
import { LatencyRecorder } from './histogram.js';
import { nowNs } from './stamp.js';

export interface RetainedResult {
  stored: number;
  storeSeconds: number;
  storedPerS: number;
  received: number;
  burstSeconds: number;
  firstMs: number;
  cleared: boolean;
}

class Owner implements ClientOwner {
  ready = 0;
  failed = 0;
  lastError = '';
  received = 0;
  firstNs = 0;
  lastNs = 0;
  foreign = 0;
  readonly latency = new LatencyRecorder();
  inflight = new Map<Client, Set<number>>();
  wake: (() => void) | undefined;
  constructor(readonly topicPrefix: string) {}
  onReady(): void { this.ready++; this.wake?.(); }
  onEnd(_c: Client, _k: FailKind, why: string): void { this.failed++; this.lastError = why; this.wake?.(); }
  onPublish(c: Client, p: PublishPacket): void {
    if (!p.retain || !p.topic.startsWith(this.topicPrefix)) {
      this.foreign++;
      return;
    }
    if (this.received === 0) this.firstNs = c.rxNs;
    this.received++;
    this.lastNs = c.rxNs;
    this.latency.record(c.rxNs - c.subscribedNs);
  }
  onPuback(c: Client, id: number): void { this.inflight.get(c)?.delete(id); }
  onChunk(): void { this.wake?.(); }
  onDrain(): void { this.wake?.(); }
}

function wait(owner: Owner, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(() => { owner.wake = undefined; resolve(); }, ms);
    owner.wake = () => { clearTimeout(t); owner.wake = undefined; resolve(); };
  });
}

/** Publishes `count` retained messages per topic list over the publishers; true when all were acknowledged in time. */
async function storeAll(owner: Owner, pubs: Client[], cfg: BenchConfig, payloadOf: (i: number, n: number) => Buffer, deadlineNs: number): Promise<boolean> {
  const perPub = Math.ceil(cfg.retained / pubs.length);
  const next = pubs.map(() => 0);
  const pid = pubs.map(() => 1);
  for (const p of pubs) owner.inflight.set(p, new Set());
  for (;;) {
    let pending = false;
    for (let i = 0; i < pubs.length; i++) {
      const p = pubs[i]!;
      const inflight = owner.inflight.get(p)!;
      const total = Math.min(perPub, cfg.retained - i * perPub);
      if (next[i]! < total || inflight.size > 0) pending = true;
      if (!p.ready || p.blocked) continue;
      const parts: Buffer[] = [];
      let bytes = 0;
      while (next[i]! < total && inflight.size < cfg.inflight && bytes < cfg.batchBytes) {
        let id = pid[i]!;
        while (inflight.has(id)) id = id === 65535 ? 1 : id + 1;
        pid[i] = id === 65535 ? 1 : id + 1;
        inflight.add(id);
        const n = next[i]!;
        next[i] = n + 1;
        const b = encode({
          type: 'publish', topic: `${cfg.topic}/r/${i}/${n}`, payload: payloadOf(i, n), qos: 1 as QoS, retain: true, dup: false, packetId: id,
        }, cfg.protocol);
        parts.push(b);
        bytes += b.length;
      }
      if (parts.length > 0) p.write(Buffer.concat(parts));
    }
    if (!pending) return true;
    if (nowNs() > deadlineNs || pubs.every((p) => !p.ready)) return false;
    await wait(owner, 100);
  }
}

export async function runRetained(cfg: BenchConfig): Promise<BenchResult & { retained: RetainedResult }> {
  const cpu0 = process.cpuUsage();
  const t0 = nowNs();
  const owner = new Owner(`${cfg.topic}/r/`);
  const base = {
    host: cfg.host, port: cfg.port, ws: cfg.ws, version: cfg.protocol, keepalive: cfg.keepalive,
    ...(cfg.username !== undefined ? { username: cfg.username } : {}),
    ...(cfg.password !== undefined ? { password: cfg.password } : {}),
  };
  const pubs = Array.from({ length: cfg.pubs }, (_, i) => new Client(owner, 'pub', i, { ...base, clientId: `${cfg.clientIdPrefix}${process.pid}-rp${i}` }));
  const sub = new Client(owner, 'sub', 0, { ...base, ...subEndpoint(cfg), clientId: `${cfg.clientIdPrefix}${process.pid}-rs0`, filter: cfg.retainedFilter, qos: cfg.qos });
  const setupDeadline = t0 + cfg.setupTimeout * 1e9;
  const result: RetainedResult = { stored: 0, storeSeconds: 0, storedPerS: 0, received: 0, burstSeconds: 0, firstMs: 0, cleared: false };
  let lastError = '';
  let timedOut = false;
  try {
    for (const p of pubs) p.start();
    while (owner.ready + owner.failed < pubs.length && nowNs() < setupDeadline) await wait(owner, 100);
    if (owner.ready === 0) throw new Error(`no publisher connected: ${owner.lastError || 'timed out'}`);
    const payload = Buffer.alloc(cfg.size, 0x2e);
    const tStore = nowNs();
    const stored = await storeAll(owner, pubs, cfg, (i, n) => {
      const b = Buffer.from(payload);
      b.writeUInt32LE(i, 8);
      b.writeUInt32LE(n + 1, 12);
      return b;
    }, tStore + (cfg.setupTimeout + cfg.duration) * 1e9);
    if (!stored) timedOut = true;
    result.stored = cfg.retained;
    result.storeSeconds = round((nowNs() - tStore) / 1e9, 3);
    result.storedPerS = Math.round(cfg.retained / Math.max(1e-9, result.storeSeconds));

    const readyBefore = owner.ready;
    sub.start();
    const burstDeadline = nowNs() + (cfg.setupTimeout + cfg.duration) * 1e9;
    let lastProgress = nowNs();
    let lastCount = 0;
    while (owner.received < cfg.retained && nowNs() < burstDeadline && sub.state !== 'failed' && sub.state !== 'closed') {
      await wait(owner, 200);
      if (owner.received !== lastCount) {
        lastCount = owner.received;
        lastProgress = nowNs();
      } else if (owner.ready > readyBefore && nowNs() - lastProgress > 3e9) {
        break; // subscribed and nothing new for 3 s: the rest is not coming
      }
    }
    if (owner.received < cfg.retained && nowNs() >= burstDeadline) timedOut = true;
    result.received = owner.received;
    result.burstSeconds = owner.received > 0 ? round((owner.lastNs - sub.subscribedNs) / 1e9, 3) : 0;
    result.firstMs = owner.received > 0 ? round((owner.firstNs - sub.subscribedNs) / 1e6, 2) : 0;
    void sub.disconnect();
    // clear what we stored: an empty retained PUBLISH removes a retained message
    const none = Buffer.alloc(0);
    result.cleared = await storeAll(owner, pubs, cfg, () => none, nowNs() + (cfg.setupTimeout + cfg.duration) * 1e9);
  } finally {
    lastError = owner.lastError;
    await Promise.all([...pubs, sub].map((c) => c.disconnect()));
  }
  const cpu = process.cpuUsage(cpu0);
  const lat = owner.latency.summary();
  const burstRate = result.burstSeconds > 0 ? Math.round(result.received / result.burstSeconds) : 0;
  const empty = new LatencyRecorder().summary();
  return {
    mode: 'run', host: cfg.host, port: cfg.port, subHost: subEndpoint(cfg).host, subPort: subEndpoint(cfg).port, transport: cfg.ws ? 'ws' : 'tcp', protocol: cfg.protocol, pubs: cfg.pubs, subs: 1, topics: cfg.retained,
    wildcard: true, qos: cfg.qos, size: cfg.size, rate: 0, window: 0, inflight: cfg.inflight, warmupS: 0,
    durationS: result.burstSeconds, workers: 0,
    setup: { subsReady: owner.ready > cfg.pubs ? 1 : 0, subsFailed: sub.state === 'failed' ? 1 : 0, pubsReady: Math.min(owner.ready, cfg.pubs), pubsFailed: 0, seconds: 0 },
    sent: cfg.retained, sentPerS: result.storedPerS, received: result.received, msgsPerS: burstRate, acked: cfg.retained,
    ackedPerS: result.storedPerS, sentTotal: cfg.retained, receivedTotal: owner.received + owner.foreign,
    receivedAfterWindow: 0, ackedTotal: cfg.retained, expectedDeliveries: cfg.retained,
    lost: Math.max(0, cfg.retained - result.received), dups: 0, missing: Math.max(0, cfg.retained - result.received),
    foreign: owner.foreign, rateSkipped: 0, latencyUs: lat, ackLatencyUs: empty,
    mbytesOut: round(pubs.reduce((a, p) => a + p.bytesOut, 0) / 1e6, 1), mbytesIn: round(sub.bytesIn / 1e6, 1), writes: 0,
    cpu: {
      windowS: 0, windowPct: 0, totalS: round((cpu.user + cpu.system) / 1e6, 2),
      userS: round(cpu.user / 1e6, 2), systemS: round(cpu.system / 1e6, 2),
    },
    errors: { total: owner.failed, last: lastError },
    timedOut,
    retained: result,
  };
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
