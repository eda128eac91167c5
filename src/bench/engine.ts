/**
 * The load engine of one worker thread: its share of publishers, subscribers or idle connections,
 * driven by the coordinator's phases (connect subscribers, connect publishers, start, finish).
 *
 * Publishers write pre-stamped batches (many PUBLISHes per socket.write). Each is held back by:
 * the rate schedule (--rate), the QoS 1 in-flight limit (--inflight), the end-to-end window
 * (--window: at most W messages ahead of its slowest receiving subscriber, read from a table in
 * shared memory that the subscribers' engines write), the socket's backpressure ('drain') and
 * --limit. In a flood, a publisher waits until a quarter of the window is free, as the C loadgen does.
 */
import { Client, type ClientOwner, type FailKind } from './client.js';
import {
  isLoopback, pubPortOf, pubTopic, receiversOf, slotOf, slotsPerPub, subEndpoint, subFilter, subPortOf, type BenchConfig,
} from './config.js';
import { LatencyRecorder } from './histogram.js';
import type { Assignment, Counters, FromWorker, Ready, SharedTables, Timeline } from './protocol.js';
import { zeroCounters } from './protocol.js';
import { nowNs, PublishBatcher } from './stamp.js';
import type { PublishPacket } from '../codec/types.js';

const TWO32 = 4294967296;

type WaitAsync = (a: Int32Array, index: number, value: number) => { async: true; value: Promise<string> } | { async: false; value: string };
/** Atomics.waitAsync (Node >= 16; not in TypeScript's ES2022 library) */
const waitAsync = (Atomics as unknown as { waitAsync?: WaitAsync }).waitAsync?.bind(Atomics);
/** a stamp older than this (or from the future) is not one of ours */
const MAX_LATENCY_NS = 3600e9;

interface SetupPhase {
  list: Client[];
  next: number;
  inProgress: number;
  ok: number;
  failed: number;
  lastOkNs: number;
  startNs: number;
  done: (r: Ready, lastOkNs: number) => void;
}

export class Engine implements ClientOwner {
  readonly c: Counters = zeroCounters();
  readonly latency = new LatencyRecorder();
  readonly ackLatency = new LatencyRecorder();
  readonly connectLatency = new LatencyRecorder();
  lastError = '';
  private readonly pubs: Client[] = [];
  private readonly batchers: PublishBatcher[] = [];
  private readonly subs: Client[] = [];
  private readonly idles: Client[] = [];
  private readonly seqs: Uint32Array | undefined;
  private readonly subReady: Uint8Array | undefined;
  private readonly perPub: number;
  /** per local publisher: its receiving subscribers and their slots in `seqs` */
  private readonly receivers: Int32Array[] = [];
  private readonly slots: Int32Array[] = [];
  /** sub mode: per local subscriber, the last sequence number per publisher index */
  private readonly seen: Uint32Array[] = [];
  /** QoS 1 in flight, per local publisher: a ring indexed by packet id (size > 2 × inflight) */
  private readonly ringPid: Uint16Array[] = [];
  private readonly ringTime: Float64Array[] = [];
  private readonly ringMask: number;
  private readonly ids: Uint16Array;
  private readonly connInflight: number;
  private readonly connRate: number;
  private setup: SetupPhase | undefined;
  private setupTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private tl: Timeline | undefined;
  private publishing = false;
  private finished = false;
  private scheduled = false;
  private windowWaiting = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly pumpAllBound = (): void => this.pumpAll();
  private readonly onTickBound = (): void => this.onTick();
  private readonly pace: Int32Array | undefined;
  /** --offline: per local subscriber, the deliveries it should receive; the phase's state */
  private readonly subExpected: number[] = [];
  private lastAckNs = 0;
  private lastRecvNs = 0;
  private waitPublished = false;
  private waitDrained = false;

  constructor(readonly cfg: BenchConfig, readonly a: Assignment, shared: SharedTables, private readonly post: (m: FromWorker) => void) {
    const workers = Math.max(1, cfg.workers);
    this.connInflight = Math.max(1, Math.ceil(cfg.connInflight / workers));
    this.connRate = cfg.connRate / workers;
    this.seqs = shared.seqs !== undefined ? new Uint32Array(shared.seqs) : undefined;
    this.subReady = shared.subReady !== undefined ? new Uint8Array(shared.subReady) : undefined;
    this.pace = shared.pace !== undefined ? new Int32Array(shared.pace) : undefined;
    this.perPub = slotsPerPub(cfg);
    let ring = 2;
    while (ring < cfg.inflight * 2) ring *= 2;
    this.ringMask = ring - 1;
    this.ids = new Uint16Array(65536);
    const base = {
      host: cfg.host, port: cfg.port, ws: cfg.ws, version: cfg.protocol, keepalive: cfg.keepalive,
      ...(cfg.username !== undefined ? { username: cfg.username } : {}),
      ...(cfg.password !== undefined ? { password: cfg.password } : {}),
    };
    const id = (role: string, i: number): string => `${cfg.clientIdPrefix}${process.pid}-${role}${i}`;
    const subAt = subEndpoint(cfg);
    for (const j of a.subs) {
      const s = new Client(this, 'sub', j, {
        ...base, ...subAt, port: subPortOf(cfg, j), clientId: id('s', j), filter: subFilter(cfg, j), qos: cfg.qos, ...this.source(j, subAt.host), ...(cfg.persistent ? { clean: false } : {}),
      });
      s.local = this.subs.length;
      // --offline: every publisher that reaches it sends --limit messages
      let from = 0;
      for (let i = 0; i < cfg.pubs; i++) if (slotOf(cfg, this.perPub, i, j) >= 0) from++;
      this.subExpected.push(from * cfg.count);
      this.subs.push(s);
      this.seen.push(new Uint32Array(0));
    }
    for (const i of a.pubs) {
      const p = new Client(this, 'pub', i, { ...base, port: pubPortOf(cfg, i), clientId: id('p', i), ...this.source(cfg.subs + i) });
      p.local = this.pubs.length;
      this.pubs.push(p);
      this.batchers.push(new PublishBatcher({
        topic: pubTopic(cfg, i), qos: cfg.qos, size: cfg.size, pub: i, version: cfg.protocol, batchBytes: cfg.batchBytes,
      }));
      const recv = this.seqs !== undefined ? receiversOf(cfg, i) : [];
      this.receivers.push(Int32Array.from(recv));
      this.slots.push(Int32Array.from(recv, (j) => slotOf(cfg, this.perPub, i, j)));
      this.ringPid.push(new Uint16Array(cfg.qos > 0 ? ring : 0));
      this.ringTime.push(new Float64Array(cfg.qos > 0 ? ring : 0));
    }
    for (let n = a.connFrom; n < a.connTo; n++) {
      this.idles.push(new Client(this, 'idle', n, { ...base, clientId: id('c', n), ...this.source(n) }));
    }
  }

  /** Connections to a 127.x host are spread over source addresses (conn mode, or --src-ips). */
  private source(n: number, host = this.cfg.host): { localAddress?: string } {
    const cfg = this.cfg;
    if (!isLoopback(host) || host === 'localhost') return {};
    let k = cfg.srcIps;
    // about 100 connections per source address: bind() then finds a free port at once (node cannot
    // set IP_BIND_ADDRESS_NO_PORT, which lets the C loadgen leave the port to connect())
    if (k === 0 && cfg.mode === 'conn') k = Math.min(250, Math.floor(cfg.conns / 100) + 2);
    if (k === 0) return {};
    return { localAddress: `127.0.0.${2 + (n % k)}` };
  }

  // ---------------------------------------------------------------- phases

  connectSubs(): void {
    this.connectAll(this.subs, (r) => this.post({ type: 'subsDone', result: r }));
  }

  connectPubs(): void {
    this.connectAll(this.pubs, (r) => this.post({ type: 'pubsDone', result: r }));
  }

  connectIdle(startNs: number): void {
    this.connectAll(this.idles, (r, lastOkNs) => this.post({ type: 'idleDone', result: r, lastOkNs }), startNs);
  }

  /** --offline: the subscribers disconnect (DISCONNECT: their persistent sessions stay). */
  disconnectSubs(): void {
    for (const s of this.subs) if (this.subReady !== undefined) this.subReady[s.index] = 0;
    void Promise.all(this.subs.map((s) => s.disconnect())).then(() => this.post({ type: 'subsOff' }));
  }

  /** --offline: the subscribers reconnect (no SUBSCRIBE when the session is present) and drain their queue. */
  reconnectSubs(): void {
    this.waitDrained = true;
    this.connectAll(this.subs, (r) => {
      let present = 0;
      for (const s of this.subs) if (s.ready && s.sessionPresent) present++;
      this.post({ type: 'subsBack', result: r, sessionPresent: present });
      this.checkDrained();
    });
  }

  private checkPublished(): void {
    if (!this.waitPublished) return;
    const count = this.cfg.count;
    for (const p of this.pubs) if (p.built < count || p.inflight > 0) return;
    this.waitPublished = false;
    this.post({ type: 'published', lastAckNs: this.lastAckNs });
  }

  private checkDrained(): void {
    if (!this.waitDrained || this.setup !== undefined) return;
    for (let k = 0; k < this.subs.length; k++) if (this.subs[k]!.got < this.subExpected[k]!) return;
    this.waitDrained = false;
    this.post({ type: 'drained', lastRecvNs: this.lastRecvNs });
  }

  start(tl: Timeline): void {
    if (this.cfg.offline) {
      this.waitPublished = true;
      this.checkPublished();
    }
    this.tl = tl;
    this.publishing = this.pubs.length > 0;
    const at = (ns: number, fn: () => void): void => {
      this.timers.push(setTimeout(fn, Math.max(0, (ns - nowNs()) / 1e6)));
    };
    at(tl.tEnd, () => { this.publishing = false; });
    if (this.cfg.rate > 0 && this.pubs.length > 0) {
      if (this.pace !== undefined && waitAsync !== undefined) this.waitTick();
      else this.timers.push(setInterval(this.pumpAllBound, 1));
    } else {
      this.kick();
    }
    this.timers.push(setInterval(() => this.post({ type: 'stats', counters: this.snapshot() }), 1000));
    this.startKeepalive();
  }

  startKeepalive(): void {
    const ka = this.cfg.keepalive;
    if (ka <= 0) return;
    this.timers.push(setInterval(() => {
      const old = Date.now() - ka * 500;
      for (const list of [this.subs, this.pubs, this.idles]) {
        for (const cl of list) if (cl.ready && cl.lastTxMs < old) cl.ping();
      }
    }, Math.max(1000, ka * 250)));
  }

  /** Stops everything, disconnects every client and posts the result. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.publishing = false;
    for (const t of this.timers) clearTimeout(t);
    if (this.pollTimer !== undefined) clearTimeout(this.pollTimer);
    if (this.setupTimer !== undefined) clearTimeout(this.setupTimer);
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    let open = 0;
    const c = this.snapshot();
    for (let k = 0; k < this.pubs.length; k++) {
      let ready = 0;
      for (const j of this.receivers[k]!) if (this.subReady?.[j] === 1) ready++;
      c.expected += this.pubs[k]!.built * ready;
    }
    const closing: Promise<void>[] = [];
    for (const list of [this.subs, this.pubs, this.idles]) {
      for (const cl of list) {
        if (cl.ready) open++;
        closing.push(cl.disconnect());
      }
    }
    let posted = false;
    const post = (): void => {
      if (posted) return;
      posted = true;
      this.post({
        type: 'done', counters: c, latency: this.latency.data(), ackLatency: this.ackLatency.data(),
        connectLatency: this.connectLatency.data(), lastError: this.lastError, openAtEnd: open,
      });
    };
    // the coordinator ends this thread once 'done' arrives: let the connections close first (bounded)
    const t = setTimeout(post, 1500);
    void Promise.all(closing).then(() => {
      clearTimeout(t);
      post();
    });
  }

  snapshot(): Counters {
    const c = { ...this.c };
    for (const list of [this.subs, this.pubs, this.idles]) {
      for (const cl of list) {
        c.bytesIn += cl.bytesIn;
        c.bytesOut += cl.bytesOut;
      }
    }
    return c;
  }

  // ---------------------------------------------------------------- setup

  private connectAll(list: Client[], done: SetupPhase['done'], startNs = nowNs()): void {
    this.setup = { list, next: 0, inProgress: 0, ok: 0, failed: 0, lastOkNs: startNs, startNs, done };
    const timeoutNs = this.cfg.connTimeout * 1e9;
    this.sweepTimer = setInterval(() => {
      const s = this.setup;
      if (s === undefined) return;
      const now = nowNs();
      for (let i = 0; i < s.next; i++) {
        const cl = s.list[i]!;
        if (cl.handshaking && now - cl.startNs > timeoutNs) cl.end('timeout', `no ${cl.state.toUpperCase()} within ${this.cfg.connTimeout} s`);
      }
    }, 250);
    this.fillSetup();
  }

  private fillSetup(): void {
    const s = this.setup;
    if (s === undefined) return;
    let allowed = s.list.length;
    if (this.connRate > 0) allowed = Math.min(allowed, Math.floor((nowNs() - s.startNs) * this.connRate / 1e9) + 1);
    while (s.next < allowed && s.inProgress < this.connInflight) {
      s.inProgress++;
      s.list[s.next++]!.start();
    }
    if (s.next >= s.list.length && s.inProgress === 0) {
      this.setup = undefined;
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
      s.done({ ok: s.ok, failed: s.failed }, s.lastOkNs);
      return;
    }
    if (s.next < s.list.length && s.inProgress < this.connInflight && this.setupTimer === undefined) {
      this.setupTimer = setTimeout(() => {
        this.setupTimer = undefined;
        this.fillSetup();
      }, 1);
    }
  }

  onReady(cl: Client): void {
    const s = this.setup;
    const now = nowNs();
    this.connectLatency.record(now - cl.startNs);
    if (cl.role === 'idle') this.c.connOk++;
    if (cl.role === 'sub' && this.subReady !== undefined) this.subReady[cl.index] = 1;
    if (s !== undefined) {
      s.inProgress--;
      s.ok++;
      s.lastOkNs = now;
      this.fillSetup();
    }
  }

  onEnd(cl: Client, kind: FailKind, why: string): void {
    if (this.finished) return;
    this.lastError = `${cl.role} ${cl.index}: ${why}`;
    const c = this.c;
    if (cl.role === 'sub' && this.subReady !== undefined) this.subReady[cl.index] = 0;
    if (cl.state !== 'failed') {
      // it was ready
      c.errClosed++;
      if (cl.role === 'idle') c.dropped++;
      if (this.windowWaiting) this.kick(); // a dead subscriber no longer holds its publishers
      return;
    }
    if (cl.role === 'idle') c.connFail++;
    switch (kind) {
      case 'connack': c.errConnack++; break;
      case 'suback': c.errSuback++; break;
      case 'proto': c.errProto++; break;
      case 'timeout': c.errTimeout++; break;
      default: c.errConnect++;
    }
    const s = this.setup;
    if (s !== undefined) {
      s.inProgress--;
      s.failed++;
      this.fillSetup();
    }
  }

  // ---------------------------------------------------------------- receiving

  onPublish(sub: Client, p: PublishPacket): void {
    const c = this.c;
    const now = sub.rxNs;
    const tl = this.tl;
    c.received++;
    sub.got++;
    this.lastRecvNs = now;
    const inWin = tl !== undefined && now >= tl.tMeas && now < tl.tEnd;
    if (inWin) c.receivedWin++;
    else if (tl !== undefined && now >= tl.tEnd) c.receivedAfter++;
    const pl = p.payload;
    if (pl.length < 16) {
      c.foreign++;
      return;
    }
    const lat = now - (pl.readUInt32LE(0) + pl.readUInt32LE(4) * TWO32);
    if (lat < 0 || lat > MAX_LATENCY_NS) {
      c.foreign++;
      return;
    }
    if (inWin) this.latency.record(lat);
    const pub = pl.readUInt32LE(8);
    const seq = pl.readUInt32LE(12);
    let table: Uint32Array;
    let slot: number;
    if (this.seqs !== undefined) {
      slot = pub < this.cfg.pubs ? slotOf(this.cfg, this.perPub, pub, sub.index) : -1;
      table = this.seqs;
    } else {
      // sub mode: publishers of another process, tracked by index (bounded)
      slot = pub < 1 << 20 ? pub : -1;
      const k = sub.local;
      table = this.seen[k]!;
      if (slot >= table.length && slot >= 0) {
        const grown = new Uint32Array(Math.max(slot + 1, table.length * 2, 16));
        grown.set(table);
        this.seen[k] = table = grown;
      }
    }
    if (slot < 0) {
      c.foreign++;
      return;
    }
    const last = table[slot]!;
    if (seq > last) {
      if (seq > last + 1) c.gaps += seq - last - 1;
      table[slot] = seq;
    } else {
      c.dups++;
    }
  }

  onPuback(pub: Client, packetId: number): void {
    const k = pub.local;
    const slot = packetId & this.ringMask;
    const times = this.ringTime[k];
    if (times === undefined || times.length === 0 || this.ringPid[k]![slot] !== packetId || times[slot] === 0) {
      this.c.errUnknownAck++;
      return;
    }
    const now = pub.rxNs;
    this.ackLatency.record(now - times[slot]!);
    times[slot] = 0;
    pub.inflight--;
    this.c.acked++;
    this.lastAckNs = now;
    const tl = this.tl;
    if (tl !== undefined && now >= tl.tMeas && now < tl.tEnd) this.c.ackedWin++;
  }

  onChunk(cl: Client): void {
    if (this.waitPublished && cl.role === 'pub') this.checkPublished();
    if (this.waitDrained && cl.role === 'sub') this.checkDrained();
    if (cl.role === 'pub' || this.windowWaiting) this.kick();
  }

  onDrain(): void {
    this.kick();
  }

  // ---------------------------------------------------------------- publishing

  private kick(): void {
    if (this.scheduled || !this.publishing) return;
    this.scheduled = true;
    setImmediate(this.pumpAllBound);
  }

  private pumpAll(): void {
    this.scheduled = false;
    if (!this.publishing) return;
    this.windowWaiting = false;
    let more = false;
    const now = nowNs();
    for (let k = 0; k < this.pubs.length; k++) if (this.pump(k, now)) more = true;
    if (more) this.kick();
    if (this.windowWaiting && this.pollTimer === undefined) {
      // the receiving subscribers may live in another worker: look again in a moment
      this.pollTimer = setTimeout(() => {
        this.pollTimer = undefined;
        this.kick();
      }, 1);
    }
  }

  /** One batch from local publisher k; true if it could send another at once. */
  private pump(k: number, now: number): boolean {
    const p = this.pubs[k]!;
    if (!p.ready || p.blocked || p.limitReached) return false;
    const cfg = this.cfg;
    const b = this.batchers[k]!;
    let n = b.perBatch;
    if (cfg.rate > 0) {
      const per = cfg.rate / cfg.pubs;
      const target = Math.floor((now - this.tl!.t0) * per / 1e9) + 1;
      const burst = Math.floor(per / 10) + 1; // catch up at most 100 ms
      if (target > p.rateCount + burst) {
        this.c.rateSkipped += target - burst - p.rateCount;
        p.rateCount = target - burst;
      }
      if (target <= p.rateCount) return false;
      n = Math.min(n, target - p.rateCount);
    }
    if (cfg.qos > 0) {
      const room = cfg.inflight - p.inflight;
      if (room <= 0) return false;
      n = Math.min(n, room);
    }
    if (cfg.window > 0 && this.receivers[k]!.length > 0) {
      const need = Math.min(n, cfg.rate > 0 ? 1 : Math.max(1, Math.floor(cfg.window / 4)));
      let room = cfg.window - (p.built - p.minLast);
      if (room < need) {
        p.minLast = this.slowest(k, p.built);
        room = cfg.window - (p.built - p.minLast);
      }
      if (room < need) {
        this.windowWaiting = true;
        return false;
      }
      if (room <= n) {
        n = room;
        this.windowWaiting = true; // the window is used up: the subscribers' progress resumes it
      }
    }
    if (cfg.count > 0) {
      n = Math.min(n, cfg.count - p.built);
      if (n <= 0) {
        p.limitReached = true;
        return false;
      }
    }
    let ids: Uint16Array | undefined;
    if (cfg.qos > 0) {
      ids = this.ids;
      const pids = this.ringPid[k]!;
      const times = this.ringTime[k]!;
      const mask = this.ringMask;
      let m = 0;
      for (; m < n; m++) {
        const pid = p.nextPid;
        const slot = pid & mask;
        if (times[slot] !== 0) break; // that slot's packet id is still in flight
        pids[slot] = pid;
        times[slot] = now;
        ids[m] = pid;
        p.nextPid = pid === 65535 ? 1 : pid + 1;
      }
      n = m;
      if (n === 0) return false;
      p.inflight += n;
    }
    const full = n === b.perBatch;
    const stampNs = nowNs();
    const buf = b.build(n, stampNs, p.built + 1, ids);
    if (ids !== undefined) {
      const times = this.ringTime[k]!;
      for (let m = 0; m < n; m++) times[ids[m]! & this.ringMask] = stampNs;
    }
    p.built += n;
    p.rateCount += n;
    const c = this.c;
    c.sent += n;
    c.writes++;
    const tl = this.tl!;
    if (stampNs >= tl.tMeas && stampNs < tl.tEnd) c.sentWin += n;
    p.write(buf);
    return full && !p.blocked;
  }

  /** --rate: wait for the pacer's next tick (see pacer.ts), then pump. */
  private waitTick(): void {
    if (!this.publishing) return;
    const a = this.pace!;
    const r = waitAsync!(a, 0, Atomics.load(a, 0));
    if (r.async) void r.value.then(this.onTickBound);
    else setImmediate(this.onTickBound);
  }

  private onTick(): void {
    if (!this.scheduled) this.pumpAll();
    this.waitTick();
  }

  /** The lowest sequence number any connected receiving subscriber of local publisher k has seen. */
  private slowest(k: number, built: number): number {
    const seqs = this.seqs!;
    const ready = this.subReady!;
    const recv = this.receivers[k]!;
    const slots = this.slots[k]!;
    let min = Infinity;
    for (let r = 0; r < recv.length; r++) {
      if (ready[recv[r]!] !== 1) continue;
      const v = Atomics.load(seqs, slots[r]!);
      if (v < min) min = v;
    }
    return min === Infinity ? built : min;
  }
}
