/**
 * The main thread of `midge bench`: spreads the clients over worker threads, runs the phases
 * (subscribers connect, publishers connect, warmup, measured window, drain), adds up what the
 * workers count, and measures its own CPU use. Every wait is bounded; a run that overstays its
 * deadline is finished and reported as timed out.
 */
import { Worker } from 'node:worker_threads';
import { defaultWorkers, slotOf, slotsPerPub, subEndpoint, type BenchConfig } from './config.js';
import { LatencyRecorder, type LatencySummary } from './histogram.js';
import { openFileLimit } from './limits.js';
import {
  addCounters, zeroCounters, type Assignment, type Counters, type FromWorker, type SharedTables, type Timeline, type ToWorker,
} from './protocol.js';
import { nowNs } from './stamp.js';

export interface Progress {
  elapsedS: number;
  phase: 'warmup' | 'measure' | 'drain' | 'hold';
  sentPerS: number;
  receivedPerS: number;
  ackedPerS: number;
  lost: number;
  errors: number;
  cpuPct: number;
}

export interface BenchResult {
  mode: string;
  host: string;
  port: number;
  /** where the subscribers connected (--sub-host/--sub-port; else host and port) */
  subHost: string;
  subPort: number;
  /** the lists given to -p / --sub-port (several brokers), when there were several ports */
  pubPorts?: number[];
  subPorts?: number[];
  /** 'tcp', or 'ws' with --ws */
  transport: 'tcp' | 'ws';
  protocol: number;
  pubs: number;
  subs: number;
  topics: number;
  wildcard: boolean;
  qos: number;
  size: number;
  rate: number;
  window: number;
  inflight: number;
  warmupS: number;
  durationS: number;
  workers: number;
  setup: { subsReady: number; subsFailed: number; pubsReady: number; pubsFailed: number; seconds: number };
  sent: number;
  sentPerS: number;
  received: number;
  msgsPerS: number;
  acked: number;
  ackedPerS: number;
  sentTotal: number;
  receivedTotal: number;
  receivedAfterWindow: number;
  ackedTotal: number;
  expectedDeliveries: number;
  /** sequence gaps seen by subscribers */
  lost: number;
  dups: number;
  /** expected deliveries that never arrived (run only; includes `lost`) */
  missing: number;
  foreign: number;
  rateSkipped: number;
  latencyUs: LatencySummary;
  ackLatencyUs: LatencySummary;
  mbytesOut: number;
  mbytesIn: number;
  writes: number;
  /** the generator's own CPU (process.cpuUsage, all threads) */
  cpu: { windowS: number; windowPct: number; totalS: number; userS: number; systemS: number };
  errors: { total: number; last: string; [kind: string]: number | string };
  conns?: {
    requested: number;
    attempted: number;
    capNote?: string;
    connected: number;
    failed: number;
    connectSeconds: number;
    connectsPerS: number;
    connectUs: LatencySummary;
    openAfterHold: number;
    droppedDuringHold: number;
    holdS: number;
  };
  /** --offline: the queue for the persistent subscribers while they were away */
  offline?: {
    /** messages the publishers sent (all publishers × --limit when complete) */
    published: number;
    acked: number;
    /** from the first PUBLISH to the last PUBACK */
    publishSeconds: number;
    publishPerS: number;
    /** subscribers that found their session present on reconnect */
    sessionPresent: number;
    /** deliveries the subscribers should receive */
    expected: number;
    received: number;
    /** from the reconnect (CONNECT) to the last delivery */
    drainSeconds: number;
    drainPerS: number;
    complete: boolean;
  };
  timedOut: boolean;
}

export interface BenchHooks {
  progress?: (p: Progress) => void;
  /** conn mode: every connection is up (or failed); the hold starts */
  established?: (ok: number, failed: number, seconds: number) => void;
}

interface Collected {
  subsDone: Map<number, Extract<FromWorker, { type: 'subsDone' }>>;
  pubsDone: Map<number, Extract<FromWorker, { type: 'pubsDone' }>>;
  idleDone: Map<number, Extract<FromWorker, { type: 'idleDone' }>>;
  done: Map<number, Extract<FromWorker, { type: 'done' }>>;
  subsOff: Map<number, Extract<FromWorker, { type: 'subsOff' }>>;
  subsBack: Map<number, Extract<FromWorker, { type: 'subsBack' }>>;
  published: Map<number, Extract<FromWorker, { type: 'published' }>>;
  drained: Map<number, Extract<FromWorker, { type: 'drained' }>>;
}

type Phase = keyof Collected;

class Pool {
  readonly workers: Worker[] = [];
  readonly stats: Counters[] = [];
  readonly got: Collected = {
    subsDone: new Map(), pubsDone: new Map(), idleDone: new Map(), done: new Map(),
    subsOff: new Map(), subsBack: new Map(), published: new Map(), drained: new Map(),
  };
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(n: number) {
    for (let i = 0; i < n; i++) {
      // the young generation of a load generator is sized for throughput, whatever node flags the
      // process has (the midge bin's --max-semi-space-size=2 is for the broker's idle connections)
      const w = new Worker(new URL('./worker.js', import.meta.url), { resourceLimits: { maxYoungGenerationSizeMb: 48 } });
      this.stats.push(zeroCounters());
      w.on('message', (m: FromWorker) => {
        if (m.type === 'stats') this.stats[i] = m.counters;
        else if (m.type === 'error') this.fail(new Error(`worker ${i}: ${m.message}`));
        else (this.got[m.type] as Map<number, FromWorker>).set(i, m);
        this.wake?.();
      });
      w.on('error', (err) => this.fail(err));
      w.on('exit', (code) => {
        if (!this.got.done.has(i)) this.fail(new Error(`worker ${i} exited with code ${code}`));
      });
      this.workers.push(w);
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.wake?.();
  }

  send(m: ToWorker, only?: number): void {
    this.workers.forEach((w, i) => {
      if (only === undefined || only === i) w.postMessage(m);
    });
  }

  /** Resolves when every worker has posted `phase`; false at the deadline (ns). Throws a worker's failure. */
  async waitAll(phase: Phase, deadlineNs: number): Promise<boolean> {
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      if (this.got[phase].size === this.workers.length) return true;
      const left = (deadlineNs - nowNs()) / 1e6;
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  async terminate(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  total(): Counters {
    const c = zeroCounters();
    for (const s of this.stats) addCounters(c, s);
    return c;
  }
}

function sleepUntil(ns: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, (ns - nowNs()) / 1e6)));
}

/** Runs one benchmark as configured; resolves with what was measured. */
export async function runBench(cfg0: BenchConfig, hooks: BenchHooks = {}): Promise<BenchResult> {
  const cfg = { ...cfg0 };
  const limit = openFileLimit().soft;
  let capNote: string | undefined;
  const clients = cfg.mode === 'conn' ? cfg.conns : cfg.pubs + cfg.subs;
  if (clients + 200 > limit) {
    if (cfg.mode !== 'conn') throw new Error(`${clients} connections need more open files than 'ulimit -n' (${limit}) allows`);
    cfg.conns = Math.max(1, limit - 200);
    capNote = `capped from ${clients} to ${cfg.conns} by the open-file limit (ulimit -n ${limit})`;
  }
  cfg.workers = cfg.workers > 0 ? cfg.workers : defaultWorkers(cfg.mode === 'conn' ? cfg.conns : clients);
  const nw = cfg.workers;

  const shared: SharedTables = {};
  if (cfg.mode === 'run' && cfg.pubs > 0 && cfg.subs > 0) {
    const slots = cfg.pubs * slotsPerPub(cfg);
    if (slots > 64 << 20) throw new Error(`too many publisher × subscriber pairs (${slots}); use more --topics`);
    shared.seqs = new SharedArrayBuffer(slots * 4);
    shared.subReady = new SharedArrayBuffer(cfg.subs);
  }
  const assignments: Assignment[] = [];
  for (let w = 0; w < nw; w++) {
    const per = Math.ceil(cfg.conns / nw);
    assignments.push({
      worker: w, pubs: [], subs: [],
      connFrom: Math.min(cfg.conns, w * per), connTo: Math.min(cfg.conns, (w + 1) * per),
    });
  }
  for (let i = 0; i < cfg.pubs; i++) assignments[i % nw]!.pubs.push(i);
  // subscribers fill the workers from the other end, so that few clients still get separate threads
  for (let j = 0; j < cfg.subs; j++) assignments[nw - 1 - (j % nw)]!.subs.push(j);

  let pacer: Worker | undefined;
  if (cfg.rate > 0 && cfg.pubs > 0) {
    shared.pace = new SharedArrayBuffer(8);
    const intervalMs = Math.min(1, Math.max(0.1, (1000 * cfg.pubs) / cfg.rate));
    pacer = new Worker(new URL('./pacer.js', import.meta.url), { workerData: { sab: shared.pace, intervalMs } });
  }
  const stopPacer = async (): Promise<void> => {
    if (pacer === undefined) return;
    const a = new Int32Array(shared.pace!);
    Atomics.store(a, 1, 1);
    Atomics.notify(a, 1);
    await pacer.terminate();
    pacer = undefined;
  };

  const cpu0 = process.cpuUsage();
  const tStart = nowNs();
  const pool = new Pool(nw);
  const deadline = tStart + (cfg.offline
    ? 3 * cfg.setupTimeout + 2 * cfg.duration + 15
    : 2 * cfg.setupTimeout + cfg.warmup + cfg.duration + cfg.drain + cfg.hold + 10) * 1e9;
  let timedOut = false;
  let progressTimer: NodeJS.Timeout | undefined;
  let tl: Timeline | undefined;
  const setup = { subsReady: 0, subsFailed: 0, pubsReady: 0, pubsFailed: 0, seconds: 0 };
  let cpuWin0 = cpu0;
  let cpuWin1: NodeJS.CpuUsage | undefined;
  let connInfo: BenchResult['conns'];
  let off: OfflineRun | undefined;
  try {
    pool.workers.forEach((w, i) => w.postMessage({ type: 'init', cfg, assignment: assignments[i]!, shared } satisfies ToWorker));
    if (cfg.mode === 'conn') {
      const t0 = nowNs();
      pool.send({ type: 'connectIdle', startNs: t0 });
      const connectDeadline = Math.min(deadline, t0 + (cfg.setupTimeout + cfg.duration) * 1e9);
      if (!(await pool.waitAll('idleDone', connectDeadline))) timedOut = true;
      let ok = 0;
      let failed = 0;
      let last = t0;
      for (const m of pool.got.idleDone.values()) {
        ok += m.result.ok;
        failed += m.result.failed;
        last = Math.max(last, m.lastOkNs);
      }
      const seconds = (last - t0) / 1e9;
      hooks.established?.(ok, failed, seconds);
      connInfo = {
        requested: clients, attempted: cfg.conns, ...(capNote !== undefined ? { capNote } : {}), connected: ok, failed,
        connectSeconds: round(seconds, 3), connectsPerS: seconds > 0 ? Math.round(ok / seconds) : 0,
        connectUs: new LatencyRecorder().summary(), openAfterHold: 0, droppedDuringHold: 0, holdS: cfg.hold,
      };
      const holdEnd = nowNs() + cfg.hold * 1e9;
      progressTimer = startProgress(pool, hooks, () => 'hold', nowNs());
      await sleepUntil(Math.min(holdEnd, deadline));
    } else {
      const setupDeadline = Math.min(deadline, tStart + cfg.setupTimeout * 1e9);
      if (cfg.subs > 0) {
        pool.send({ type: 'connectSubs' });
        if (!(await pool.waitAll('subsDone', setupDeadline))) timedOut = true;
        for (const m of pool.got.subsDone.values()) {
          setup.subsReady += m.result.ok;
          setup.subsFailed += m.result.failed;
        }
      }
      if (cfg.pubs > 0 && !timedOut) {
        pool.send({ type: 'connectPubs' });
        if (!(await pool.waitAll('pubsDone', setupDeadline))) timedOut = true;
        for (const m of pool.got.pubsDone.values()) {
          setup.pubsReady += m.result.ok;
          setup.pubsFailed += m.result.failed;
        }
      }
      setup.seconds = round((nowNs() - tStart) / 1e9, 3);
      const needed = (cfg.pubs === 0 || setup.pubsReady > 0) && (cfg.subs === 0 || setup.subsReady > 0);
      if (cfg.offline && !timedOut && needed) {
        off = await runOffline(pool, cfg, deadline);
        if (!off.drained) timedOut = true;
      } else if (!timedOut && needed) {
        const t0 = nowNs() + 20e6; // a moment for the message to reach every worker
        tl = { t0, tMeas: t0 + cfg.warmup * 1e9, tEnd: t0 + (cfg.warmup + cfg.duration) * 1e9, tDrainEnd: t0 + (cfg.warmup + cfg.duration + cfg.drain) * 1e9 };
        pool.send({ type: 'start', timeline: tl });
        const t = tl;
        progressTimer = startProgress(pool, hooks, (now) => (now < t.tMeas ? 'warmup' : now < t.tEnd ? 'measure' : 'drain'), t0);
        await sleepUntil(tl.tMeas);
        cpuWin0 = process.cpuUsage();
        await sleepUntil(tl.tEnd);
        cpuWin1 = process.cpuUsage(cpuWin0);
        await sleepUntil(Math.min(tl.tDrainEnd, deadline));
      }
    }
    if (progressTimer !== undefined) clearInterval(progressTimer);
    pool.send({ type: 'finish' });
    if (!(await pool.waitAll('done', nowNs() + 5e9))) timedOut = true;
  } finally {
    if (progressTimer !== undefined) clearInterval(progressTimer);
    await stopPacer();
    await pool.terminate();
  }

  const c = zeroCounters();
  const lat = new LatencyRecorder();
  const ack = new LatencyRecorder();
  const conn = new LatencyRecorder();
  let last = '';
  let open = 0;
  for (const m of pool.got.done.values()) {
    addCounters(c, m.counters);
    lat.add(m.latency);
    ack.add(m.ackLatency);
    conn.add(m.connectLatency);
    if (m.lastError !== '') last = m.lastError;
    open += m.openAtEnd;
  }
  const cpuAll = process.cpuUsage(cpu0);
  const win = cfg.duration;
  const cpuWin = cpuWin1 ?? { user: 0, system: 0 };
  const per = (n: number): number => Math.round(n / win);
  if (connInfo !== undefined) {
    connInfo.connectUs = conn.summary();
    connInfo.openAfterHold = open;
    connInfo.droppedDuringHold = c.dropped;
  }
  const errors = {
    connect: c.errConnect, connack: c.errConnack, suback: c.errSuback, closed: c.errClosed, protocol: c.errProto,
    timeout: c.errTimeout, unknownAck: c.errUnknownAck,
  };
  let offline: BenchResult['offline'];
  if (off !== undefined) {
    let expected = 0;
    for (let j = 0; j < cfg.subs; j++) {
      let from = 0;
      for (let i = 0; i < cfg.pubs; i++) if (slotOf(cfg, slotsPerPub(cfg), i, j) >= 0) from++;
      expected += from * cfg.count;
    }
    const pubS = off.lastAckNs > off.t0 && off.t0 > 0 ? (off.lastAckNs - off.t0) / 1e9 : 0;
    const drainS = off.lastRecvNs > off.tRe && off.tRe > 0 ? (off.lastRecvNs - off.tRe) / 1e9 : 0;
    const received = c.received - c.foreign - c.dups;
    offline = {
      published: c.sent, acked: c.acked, publishSeconds: round(pubS, 3),
      publishPerS: pubS > 0 ? Math.round(c.acked / pubS) : 0,
      sessionPresent: off.present, expected, received, drainSeconds: round(drainS, 3),
      drainPerS: drainS > 0 ? Math.round(received / drainS) : 0,
      complete: off.published && off.drained && received >= expected,
    };
  }
  return {
    mode: cfg.mode, host: cfg.host, port: cfg.port, subHost: subEndpoint(cfg).host, subPort: subEndpoint(cfg).port,
    ...(cfg.pubPorts !== undefined ? { pubPorts: cfg.pubPorts } : {}), ...(cfg.subPorts !== undefined ? { subPorts: cfg.subPorts } : {}),
    transport: cfg.ws ? 'ws' : 'tcp', protocol: cfg.protocol, pubs: cfg.pubs, subs: cfg.subs,
    topics: cfg.topics, wildcard: cfg.wildcard, qos: cfg.qos, size: cfg.size, rate: cfg.rate, window: cfg.window,
    inflight: cfg.inflight, warmupS: cfg.warmup, durationS: cfg.duration, workers: nw, setup,
    sent: c.sentWin, sentPerS: per(c.sentWin), received: c.receivedWin, msgsPerS: per(c.receivedWin),
    acked: c.ackedWin, ackedPerS: per(c.ackedWin), sentTotal: c.sent, receivedTotal: c.received,
    receivedAfterWindow: c.receivedAfter, ackedTotal: c.acked, expectedDeliveries: c.expected,
    lost: c.gaps, dups: c.dups,
    missing: offline !== undefined ? Math.max(0, offline.expected - offline.received)
      : cfg.mode === 'run' ? Math.max(0, c.expected - (c.received - c.foreign)) : 0,
    foreign: c.foreign, rateSkipped: c.rateSkipped,
    latencyUs: lat.summary(), ackLatencyUs: ack.summary(),
    mbytesOut: round(c.bytesOut / 1e6, 1), mbytesIn: round(c.bytesIn / 1e6, 1), writes: c.writes,
    cpu: {
      windowS: round((cpuWin.user + cpuWin.system) / 1e6, 2),
      windowPct: round((cpuWin.user + cpuWin.system) / 1e4 / win, 1),
      totalS: round((cpuAll.user + cpuAll.system) / 1e6, 2),
      userS: round(cpuAll.user / 1e6, 2), systemS: round(cpuAll.system / 1e6, 2),
    },
    errors: { ...errors, total: Object.values(errors).reduce((a, b) => a + b, 0), last },
    ...(connInfo !== undefined ? { conns: connInfo } : {}),
    ...(offline !== undefined ? { offline } : {}),
    timedOut,
  };
}

interface OfflineRun {
  t0: number;
  tRe: number;
  published: boolean;
  drained: boolean;
  present: number;
  lastAckNs: number;
  lastRecvNs: number;
}

/**
 * --offline, once everyone is connected: the subscribers disconnect; the publishers send --limit
 * messages each (bounded by --duration) and wait for every PUBACK; the subscribers reconnect and
 * receive the queue (bounded by --duration).
 */
async function runOffline(pool: Pool, cfg: BenchConfig, deadline: number): Promise<OfflineRun> {
  const r: OfflineRun = { t0: 0, tRe: 0, published: false, drained: false, present: 0, lastAckNs: 0, lastRecvNs: 0 };
  pool.send({ type: 'disconnectSubs' });
  if (!(await pool.waitAll('subsOff', Math.min(deadline, nowNs() + 10e9)))) return r;
  await new Promise((res) => setTimeout(res, 200)); // the broker has handled the disconnects
  r.t0 = nowNs() + 20e6;
  const tl: Timeline = { t0: r.t0, tMeas: r.t0, tEnd: r.t0 + cfg.duration * 1e9, tDrainEnd: r.t0 + cfg.duration * 1e9 };
  pool.send({ type: 'start', timeline: tl });
  r.published = await pool.waitAll('published', Math.min(deadline, tl.tEnd + 1e9));
  for (const m of pool.got.published.values()) r.lastAckNs = Math.max(r.lastAckNs, m.lastAckNs);
  r.tRe = nowNs();
  pool.send({ type: 'reconnectSubs' });
  if (!(await pool.waitAll('subsBack', Math.min(deadline, r.tRe + cfg.setupTimeout * 1e9)))) return r;
  for (const m of pool.got.subsBack.values()) r.present += m.sessionPresent;
  r.drained = await pool.waitAll('drained', Math.min(deadline, r.tRe + (cfg.setupTimeout + cfg.duration) * 1e9));
  for (const m of pool.got.drained.values()) r.lastRecvNs = Math.max(r.lastRecvNs, m.lastRecvNs);
  return r;
}

function startProgress(pool: Pool, hooks: BenchHooks, phaseAt: (now: number) => Progress['phase'], t0: number): NodeJS.Timeout | undefined {
  const report = hooks.progress;
  if (report === undefined) return undefined;
  let prev = pool.total();
  let prevNs = nowNs();
  let prevCpu = process.cpuUsage();
  return setInterval(() => {
    const now = nowNs();
    const cur = pool.total();
    const cpu = process.cpuUsage(prevCpu);
    const dt = (now - prevNs) / 1e9;
    report({
      elapsedS: Math.round((now - t0) / 1e9), phase: phaseAt(now),
      sentPerS: Math.round((cur.sent - prev.sent) / dt), receivedPerS: Math.round((cur.received - prev.received) / dt),
      ackedPerS: Math.round((cur.acked - prev.acked) / dt), lost: cur.gaps,
      errors: cur.errConnect + cur.errConnack + cur.errSuback + cur.errClosed + cur.errProto + cur.errTimeout,
      cpuPct: Math.round((cpu.user + cpu.system) / 1e4 / dt),
    });
    prev = cur;
    prevNs = now;
    prevCpu = process.cpuUsage();
  }, 1000);
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
