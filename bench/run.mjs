#!/usr/bin/env node
// Midge vs Mosquitto vs Aedes, the same load from `midge bench`, ratios from the same run.
//
//   npm run bench                      (builds first)
//   DURATION=5 REPEAT=2 SCENARIOS=fanin_q0,lat_q1 QUICK=1 node bench/run.mjs
//
// Environment:
//   DURATION   measured seconds per scenario run (default 5; QUICK: 1)
//   REPEAT     runs per broker and scenario, brokers alternating (default 2; QUICK: 1)
//   LAT_REPEAT at least this many runs of lat_q0 and lat_q1 (default 4; QUICK: 1)
//   SCENARIOS  comma list (default: all; see SCENARIOS below)
//   BROKERS    comma list of midge,mosquitto,aedes,midge-persist,midge-fsync,mosquitto-persist,
//              midge-ws,mosquitto-ws,midge-http (default: all); each scenario runs with those of its own
//              brokers that are listed: the WebSocket scenarios (ws_*) with midge-ws and mosquitto-ws (the
//              load over their `protocol websockets` listener, `midge bench --ws`) beside midge and
//              mosquitto over TCP;
//              the durable-store scenarios (persist_*) with midge-persist (persistence true),
//              midge-fsync (+ midge_persistence_fsync true), midge (in memory) and mosquitto-persist
//              (persistence true: in memory between autosaves); the cost-of-metrics scenarios (metrics_*)
//              with midge and midge-http (an http_listener, /metrics scraped every second during the run);
//              the others with midge, mosquitto, aedes
//   OFFLINE_N  persist_offline_q1: messages queued for the offline subscriber (default 100000; QUICK: 10000)
//   CONNS      idle connections for `conns` (default 20000, capped by `ulimit -n`)
//   QUICK=1    a short smoke run: DURATION=1, REPEAT=1, CONNS=2000, smaller p2p and retained
//   MIDGE_NODE_ARGS  extra node flags for the Midge broker (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof")
//   QUIET_WAIT before each run, wait up to this many seconds (default 20; QUICK: 0) until other
//              processes use less than QUIET_CPU (default 0.25) of a core; their CPU during each
//              run is reported either way ("other processes CPU s")
//   METRICS_REPEAT  at least this many runs of metrics_fanin_q0 and metrics_fanout_q0, each an off/on
//              pair run back to back (default 5; QUICK: 1); the verdict is the median paired ratio
//   DISTURBED_S a run during which other processes used more CPU-seconds is marked disturbed; the
//              metrics table also gives the ratio over the pairs with neither run disturbed (default 1)
//   OUT        directory for results (default bench/results)
//
// Every broker runs on a free port of 127.0.0.1 and is stopped by its PID, also on failure.
// Each scenario run gets a fresh broker. Results: OUT/latest.md (the table) and OUT/<stamp>.json.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { get as httpGet } from 'node:http';
import { connect as netConnect } from 'node:net';
import { fmt, knob, median } from './common.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(HERE);

// The knobs first: a bad one is refused before anything is copied or started.
const env = process.env;
const QUICK = env.QUICK === '1';
const DURATION = knob('DURATION', QUICK ? 1 : 5, 0.1, 3600, false);
const REPEAT = knob('REPEAT', QUICK ? 1 : 2, 1, 100);
// a p99 over one 5 s run moves by 2-4x from run to run here (scheduling noise on two shared cores):
// the latency scenarios run at least this often, and the table takes the median
const LAT_REPEAT = QUICK ? 1 : knob('LAT_REPEAT', 4, 1, 100);
const CONNS_WANTED = knob('CONNS', QUICK ? 2000 : 20000, 1, 1_000_000);
const QUIET_WAIT = knob('QUIET_WAIT', QUICK ? 0 : 20, 0, 600, false);
const QUIET_CPU = knob('QUIET_CPU', 0.25, 0, 2, false);
// the cost-of-metrics scenarios compare two variants of one broker whose difference (a few ms of CPU per
// second) is far below the run-to-run noise of this host: they run at least this often, paired
const METRICS_REPEAT = QUICK ? 1 : knob('METRICS_REPEAT', 5, 1, 100);
// a run during which other processes used more CPU-seconds than this is "disturbed" (reported apart)
const DISTURBED_S = knob('DISTURBED_S', 1, 0, 1000, false);

// The build under test is copied first, so that a rebuild of dist/ during the run (others work in
// the same tree) cannot change the broker or the generator halfway. node_modules still resolve
// from the repository, since the copy lives inside it (bench/.snapshot/, ignored by git).
const SNAP = join(HERE, '.snapshot');
if (!existsSync(join(ROOT, 'dist/src/cli/main.js'))) {
  console.error('dist/src/cli/main.js is missing: build first (npm run build)');
  process.exit(2);
}
rmSync(SNAP, { recursive: true, force: true });
cpSync(join(ROOT, 'dist/src'), join(SNAP, 'dist/src'), { recursive: true });
cpSync(join(ROOT, 'dist/test/helpers/bench-brokers.js'), join(SNAP, 'dist/test/helpers/bench-brokers.js'));
cpSync(join(HERE, 'aedes-server.mjs'), join(SNAP, 'bench/aedes-server.mjs'));
const { startBroker, freePort, MIDGE_MAIN } = await import(pathToFileURL(join(SNAP, 'dist/test/helpers/bench-brokers.js')).href);
const { allProcessCpu, openFileLimit, otherCpuSeconds } = await import(pathToFileURL(join(SNAP, 'dist/src/bench/limits.js')).href);
for (const cmd of [['broker', '--help'], ['bench', '--help']]) {
  const r = spawnSync(process.execPath, [MIDGE_MAIN, ...cmd], { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) {
    console.error(`the build does not run (midge ${cmd.join(' ')}): ${r.stderr || r.stdout}`);
    process.exit(2);
  }
}
const WARMUP = QUICK ? 0.5 : 1;
const fdLimit = openFileLimit().soft;
// this process opens nothing much, but the generator and the broker each need N descriptors + slack
const CONNS = Math.min(CONNS_WANTED, Number.isFinite(fdLimit) ? fdLimit - 200 : CONNS_WANTED);
const CONNS_NOTE = CONNS < CONNS_WANTED ? `N capped from ${CONNS_WANTED} to ${CONNS} by \`ulimit -n\` = ${fdLimit} (generator and broker each hold N sockets)` : '';
const P2P = QUICK ? 100 : 1000;
const RETAINED = QUICK ? 10000 : 100000;
const OFFLINE_N = knob('OFFLINE_N', QUICK ? 10000 : 100000, 10, 1_000_000);
const OFFLINE_PUBS = 10;
const NAMES = {
  midge: 'Midge', mosquitto: 'Mosquitto', aedes: 'Aedes',
  'midge-persist': 'Midge persist', 'midge-fsync': 'Midge persist+fsync', 'mosquitto-persist': 'Mosquitto persist',
  'midge-ws': 'Midge WS', 'mosquitto-ws': 'Mosquitto WS',
  'midge-http': 'Midge + /metrics 1/s',
};
const CLASSIC = ['midge', 'mosquitto', 'aedes'];
const DURABLE = ['midge-persist', 'midge-fsync', 'midge', 'mosquitto-persist'];
const WS = ['midge-ws', 'midge', 'mosquitto-ws', 'mosquitto'];
/** the cost of metrics: Midge without an HTTP listener against Midge with one, scraped every second */
const METRICS = ['midge', 'midge-http'];
const BROKERS = (env.BROKERS ?? Object.keys(NAMES).join(',')).split(',').map((s) => s.trim()).filter(Boolean);
const OUT = env.OUT ?? join(HERE, 'results');
const NODE_ARGS = (env.MIDGE_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);

const common = ['--warmup', String(WARMUP), '-d', String(DURATION), '--drain', '1', '-s', '64'];
/**
 * Broker CPU per message received by the subscribers, in µs: the broker's CPU from the generator's start
 * to its end (setup, warmup, window, drain) over the messages of warmup and window (window rate ×
 * (DURATION + WARMUP)). Approximate, but made the same way for both variants: a hot-path cost shows here
 * even when the throughput is bound by the load generator (fan-out on two cores).
 */
function brokerCpuPerMsg() {
  return {
    name: 'broker CPU µs/msg', dir: -1, info: true, fmt: (v) => (v === undefined ? 'n/a' : v.toFixed(3)),
    get: (r) => (r.gen?.msgsPerS > 0 && r.cpuS !== undefined ? (r.cpuS * 1e6) / (r.gen.msgsPerS * (DURATION + WARMUP)) : undefined),
  };
}

// Each scenario: the `midge bench` arguments and the metrics that go into the table.
// dir: 1 = higher is better, -1 = lower is better. mosq/aedes: targets for the ratio Midge / X.
const SCENARIOS = {
  fanin_q0: {
    title: 'fan-in QoS 0 (10 → 1, flood, window 1000)',
    args: ['run', '--pubs', '10', '--subs', '1', '--topics', '10', '--wildcard', '-q', '0', ...common],
    metrics: [thru({ mosq: 1.0 }), p99Info()],
  },
  fanout_q0_5k: {
    title: 'fan-out QoS 0 (1 → 100, 5k msgs/s)',
    args: ['run', '--pubs', '1', '--subs', '100', '-r', '5000', ...common],
    metrics: [thru({}), p99({})],
  },
  fanout_q0_flood: {
    title: 'fan-out QoS 0 (1 → 100, flood, window 1000)',
    args: ['run', '--pubs', '1', '--subs', '100', ...common],
    metrics: [thru({ mosq: 1.0 }), p99Info()],
  },
  fanin_q1: {
    title: 'fan-in QoS 1 (10 → 1, inflight 64, window 64)',
    args: ['run', '--pubs', '10', '--subs', '1', '--topics', '10', '--wildcard', '-q', '1', '--inflight', '64', '--window', '64', ...common],
    metrics: [thru({ mosq: 1.0 }), p99Info()],
  },
  ws_fanin_q0: {
    title: 'WebSocket fan-in QoS 0 (10 → 1, flood, window 1000): the -ws brokers over ws://, the others over TCP',
    args: ['run', '--pubs', '10', '--subs', '1', '--topics', '10', '--wildcard', '-q', '0', ...common],
    brokers: WS,
    metrics: [{ name: 'msgs/s', dir: 1, get: (r) => r.gen.msgsPerS, vsMosqWs: 1.0 }, p99Info()],
  },
  ws_fanin_q1: {
    title: 'WebSocket fan-in QoS 1 (10 → 1, inflight 64, window 64): the -ws brokers over ws://, the others over TCP',
    args: ['run', '--pubs', '10', '--subs', '1', '--topics', '10', '--wildcard', '-q', '1', '--inflight', '64', '--window', '64', ...common],
    brokers: WS,
    metrics: [{ name: 'msgs/s', dir: 1, get: (r) => r.gen.msgsPerS, vsMosqWs: 1.0 }, p99Info()],
  },
  lat_q0: {
    title: 'latency QoS 0 (1 → 1, 5k msgs/s)',
    args: ['run', '--pubs', '1', '--subs', '1', '-r', '5000', ...common],
    metrics: [lat('p50', { info: true }), lat('p99', { mosq: 1.5 }), lat('p999', { info: true })],
    minRepeat: LAT_REPEAT,
  },
  lat_q1: {
    title: 'latency QoS 1 (1 → 1, 5k msgs/s)',
    args: ['run', '--pubs', '1', '--subs', '1', '-r', '5000', '-q', '1', ...common],
    metrics: [lat('p50', { info: true }), lat('p99', { mosq: 1.5 }), lat('p999', { info: true })],
    minRepeat: LAT_REPEAT,
  },
  conns: {
    title: `${CONNS} idle connections (64 handshakes in flight)`,
    // one worker thread: the broker needs the other core (two workers measured 5-15% fewer connects/s)
    args: ['conn', '-c', String(CONNS), '--hold', '3', '-d', '120', '-k', '300', '-w', '1'],
    metrics: [
      { name: 'connects/s', dir: 1, get: (r) => r.gen.conns?.connectsPerS, mosq: 0.5, aedes: 2.5 },
      { name: 'KiB per connection', dir: -1, get: (r) => r.kibPerConn, abs: 3, aedes: 2.5 },
    ],
  },
  p2p: {
    title: `${P2P} publishers × ${P2P} subscribers point-to-point (QoS 0, flood, window 100)`,
    args: ['run', '--pubs', String(P2P), '--subs', String(P2P), '--topics', String(P2P), '--window', '100', ...common],
    metrics: [thru({}), p99Info()],
  },
  persist_fanin_q1: {
    title: 'durable: fan-in QoS 1 (10 → 1 persistent subscriber online, clean session false, inflight 64, window 64)',
    args: ['run', '--pubs', '10', '--subs', '1', '--topics', '10', '--wildcard', '-q', '1', '--inflight', '64', '--window', '64', '--persistent', ...common],
    brokers: DURABLE,
    metrics: [
      { name: 'msgs/s', dir: 1, get: (r) => r.gen.msgsPerS, vsMosq: 1.0, vsMem: 0.5 },
      { name: 'acks/s', dir: 1, get: (r) => r.gen.ackedPerS, info: true },
      { name: 'lost + undelivered at end (worst run)', dir: -1, get: (r) => r.gen.lost + r.gen.missing, worst: true, absMax: 0 },
      { name: 'p99 µs (window-bound)', dir: -1, get: (r) => r.gen.latencyUs?.p99, info: true },
    ],
  },
  persist_offline_q1: {
    title: `durable: QoS 1 to an offline persistent subscriber (${OFFLINE_PUBS} publishers send ${OFFLINE_N} messages, inflight 64 each, then it reconnects and drains)`,
    args: ['run', '--pubs', String(OFFLINE_PUBS), '--subs', '1', '--topics', String(OFFLINE_PUBS), '--wildcard', '-q', '1', '--inflight', '64',
      '--offline', '-n', String(Math.ceil(OFFLINE_N / OFFLINE_PUBS)), '-d', '120', '-s', '64'],
    brokers: DURABLE,
    metrics: [
      { name: 'publish msgs/s (acked)', dir: 1, get: (r) => r.gen.offline?.publishPerS, vsMosq: 1.0, vsMem: 0.5 },
      { name: 'drain msgs/s', dir: 1, get: (r) => r.gen.offline?.drainPerS, vsMosq: 1.0, vsMem: 0.5 },
      { name: 'delivered after reconnect', dir: 1, get: (r) => r.gen.offline?.received, absMin: Math.ceil(OFFLINE_N / OFFLINE_PUBS) * OFFLINE_PUBS },
    ],
  },
  metrics_fanin_q0: {
    title: 'cost of metrics: fan-in QoS 0 (10 → 1, flood, window 1000), http_listener on and /metrics scraped every second vs off',
    args: ['run', '--pubs', '10', '--subs', '1', '--topics', '10', '--wildcard', '-q', '0', ...common],
    brokers: METRICS,
    minRepeat: METRICS_REPEAT,
    metrics: [{ name: 'msgs/s', dir: 1, get: (r) => r.gen.msgsPerS, vsOff: 0.97 }, brokerCpuPerMsg()],
  },
  metrics_fanout_q0: {
    title: 'cost of metrics: fan-out QoS 0 (1 → 100, flood, window 1000), http_listener on and /metrics scraped every second vs off',
    args: ['run', '--pubs', '1', '--subs', '100', ...common],
    brokers: METRICS,
    minRepeat: METRICS_REPEAT,
    metrics: [{ name: 'msgs/s', dir: 1, get: (r) => r.gen.msgsPerS, vsOff: 0.97 }, brokerCpuPerMsg()],
  },
  // the same two loads at a fixed rate below saturation: both variants do the same work, so the broker's
  // CPU per message shows what metrics cost on the hot path without the throughput noise of a flood
  metrics_fanin_q0_rate: {
    title: 'cost of metrics at a fixed rate: fan-in QoS 0 (10 → 1, 100,000 msgs/s in all), broker CPU per message, on vs off',
    args: ['run', '--pubs', '10', '--subs', '1', '--topics', '10', '--wildcard', '-q', '0', '-r', '100000', ...common],
    brokers: METRICS,
    minRepeat: METRICS_REPEAT,
    metrics: [brokerCpuPerMsg(), { name: 'msgs/s', dir: 1, get: (r) => r.gen.msgsPerS, info: true }],
  },
  metrics_fanout_q0_rate: {
    title: 'cost of metrics at a fixed rate: fan-out QoS 0 (1 → 100, 5,000 msgs/s published, 500,000 delivered), broker CPU per message, on vs off',
    args: ['run', '--pubs', '1', '--subs', '100', '-r', '5000', ...common],
    brokers: METRICS,
    minRepeat: METRICS_REPEAT,
    metrics: [brokerCpuPerMsg(), { name: 'msgs/s', dir: 1, get: (r) => r.gen.msgsPerS, info: true }],
  },
  retained: {
    title: `retained burst (${RETAINED} retained messages to one '#' subscriber)`,
    args: ['run', '--pubs', '4', '--retained', String(RETAINED), '-d', '60', '-s', '64'],
    metrics: [
      { name: 'msgs/s', dir: 1, get: (r) => r.gen.msgsPerS, aedes: 2.5 },
      { name: 'received', dir: 1, get: (r) => r.gen.retained?.received, absMin: RETAINED },
    ],
  },
};

function thru(t) {
  return { name: 'msgs/s', dir: 1, get: (r) => r.gen.msgsPerS, ...t, aedes: 2.5 };
}
function p99(t) {
  return { name: 'p99 µs', dir: -1, get: (r) => r.gen.latencyUs?.p99, ...t };
}
function p99Info() {
  return { name: 'p99 µs (window-bound)', dir: -1, get: (r) => r.gen.latencyUs?.p99, info: true };
}
function lat(p, t) {
  return { name: `${p === 'p999' ? 'p99.9' : p} µs`, dir: -1, get: (r) => r.gen.latencyUs?.[p], aedes: 2.5, ...t };
}

// The same two with no in-flight limit in any broker. mosquitto 2.0.11 keeps 20 messages
// unacknowledged only until the client's first PUBACK: after it, each PUBACK lets about 20 more
// queued messages go (bench/window-check.mjs), so with the default limit it drains a queue with a
// window that grows, while Midge keeps 20. With max_inflight_messages 0 neither has a limit: the
// like-for-like comparison.
for (const name of ['persist_fanin_q1', 'persist_offline_q1']) {
  SCENARIOS[`${name}_w0`] = {
    ...SCENARIOS[name],
    title: `durable: ${name} with max_inflight_messages 0 (no in-flight limit) in every broker`,
    extraConfig: 'max_inflight_messages 0',
  };
}

const selected = (env.SCENARIOS ?? Object.keys(SCENARIOS).join(',')).split(',').map((s) => s.trim()).filter(Boolean);
for (const s of selected) {
  if (!(s in SCENARIOS)) {
    console.error(`unknown scenario '${s}' (have: ${Object.keys(SCENARIOS).join(', ')})`);
    process.exit(2);
  }
}
for (const b of BROKERS) {
  if (!(b in NAMES)) {
    console.error(`unknown broker '${b}' (${Object.keys(NAMES).join(', ')})`);
    process.exit(2);
  }
}
/** The brokers a scenario runs with: its own (the classic three by default) that BROKERS lists. */
const brokersOf = (scenario) => (SCENARIOS[scenario].brokers ?? CLASSIC).filter((b) => BROKERS.includes(b));
const isDurable = (scenario) => SCENARIOS[scenario].brokers === DURABLE;
const isWs = (scenario) => SCENARIOS[scenario].brokers === WS;
const isMetrics = (scenario) => SCENARIOS[scenario].brokers === METRICS;

// ------------------------------------------------------------------ running

const work = mkdtempSync(join(tmpdir(), 'midge-bench-'));
let current; // { broker, gen } of the run in progress, for the signal handlers
const stopCurrent = async () => {
  const c = current;
  current = undefined;
  if (c?.gen?.exitCode === null) c.gen.kill('SIGKILL');
  if (c?.broker) await c.broker.stop();
};
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    console.error(`\n${sig}: stopping`);
    stopCurrent().finally(() => process.exit(130));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs `midge bench` to the end (bounded); calls onEstablished when it prints ESTABLISHED. */
function runGenerator(args, port, timeoutMs, onEstablished, ws = false) {
  return new Promise((resolve) => {
    const gen = spawn(process.execPath, [MIDGE_MAIN, 'bench', ...args, '-p', String(port), ...(ws ? ['--ws'] : []), '--json', '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
    if (current) current.gen = gen;
    let out = '';
    let err = '';
    let established;
    gen.stdout.setEncoding('utf8').on('data', (s) => (out += s));
    gen.stderr.setEncoding('utf8').on('data', (s) => {
      err += s;
      if (established === undefined && /^ESTABLISHED /m.test(err)) established = onEstablished?.() ?? Promise.resolve();
    });
    const timer = setTimeout(() => gen.kill('SIGKILL'), timeoutMs);
    gen.on('close', async (code, signal) => {
      clearTimeout(timer);
      await established;
      let json;
      try {
        json = JSON.parse(out.trim().split('\n').pop() ?? '');
      } catch {
        json = undefined;
      }
      resolve({ json, code, signal, stderr: err, pid: gen.pid });
    });
  });
}

/**
 * Others share this host: wait (bounded by QUIET_WAIT s) until the other processes used less than
 * QUIET_CPU of a core over one second, so that a neighbour's build does not land in one broker's run.
 */
async function waitForQuiet() {
  const t0 = Date.now();
  let busy = 0;
  for (;;) {
    const a = allProcessCpu();
    await sleep(1000);
    busy = otherCpuSeconds(a, allProcessCpu(), [process.pid]);
    if (busy < QUIET_CPU || Date.now() - t0 > QUIET_WAIT * 1000) break;
  }
  return { waitedS: Math.round((Date.now() - t0) / 100) / 10, othersLastS: busy };
}

async function runOne(scenario, kind, rep) {
  const sc = SCENARIOS[scenario];
  const rec = { scenario, broker: kind, rep };
  let broker;
  let scraper;
  try {
    rec.quiet = await waitForQuiet();
    if (kind === 'midge-http') {
      // Midge with an http_listener; /metrics is scraped every second from before the load until its end
      const httpPort = await freePort();
      broker = await startBroker('midge', { dir: work, nodeArgs: NODE_ARGS, extraConfig: `http_listener ${httpPort} 127.0.0.1` });
      // the HTTP listener opens after the MQTT listeners (startBroker waits for those)
      await waitForPort(httpPort, 10_000);
      scraper = scrapeEverySecond(httpPort);
    } else {
      broker = await startBroker(kind, { dir: work, nodeArgs: kind.startsWith('midge') ? NODE_ARGS : [], extraConfig: sc.extraConfig });
    }
    current = { broker };
    await sleep(1000);
    rec.port = broker.port;
    rec.rssBeforeKb = broker.rssKb();
    const cpu0 = broker.cpuS();
    const others0 = allProcessCpu();
    const t0 = Date.now();
    const ws = broker.wsPort !== undefined;
    const res = await runGenerator(sc.args, ws ? broker.wsPort : broker.port, 600_000, async () => {
      await sleep(1000);
      rec.rssConnsKb = broker.rssKb();
    }, ws);
    rec.wallS = (Date.now() - t0) / 1000;
    rec.hwmKb = broker.hwmKb();
    rec.rssEndKb = broker.rssKb();
    rec.cpuS = Math.round((broker.cpuS() - cpu0) * 100) / 100;
    rec.otherCpuS = otherCpuSeconds(others0, allProcessCpu(), [broker.pid, process.pid, res.pid ?? -1]);
    rec.aliveAtEnd = broker.alive();
    if (broker.dataDir !== undefined) rec.storeKb = duKb(broker.dataDir);
    rec.gen = res.json;
    if (res.json === undefined) rec.error = `generator: code ${res.code} signal ${res.signal}: ${res.stderr.slice(-500)}`;
    if (rec.rssConnsKb !== undefined && res.json?.conns?.connected > 0) {
      rec.kibPerConn = Math.round(((rec.rssConnsKb - rec.rssBeforeKb) / res.json.conns.connected) * 100) / 100;
    }
  } catch (err) {
    rec.error = err instanceof Error ? err.message : String(err);
  } finally {
    current = undefined;
    if (scraper) {
      const s = scraper.stop();
      rec.scrapes = s.ok;
      rec.scrapeFailures = s.failed;
      rec.scrapeFirstMs = s.firstMs;
      rec.scrapeMedianMs = s.restMedianMs;
      rec.scrapeMaxMs = s.restMaxMs;
      if (s.ok === 0 && !rec.error) rec.error = 'no successful /metrics scrape';
    }
    if (broker) await broker.stop();
    if (broker?.dataDir !== undefined) rmSync(broker.dataDir, { recursive: true, force: true });
  }
  return rec;
}

/** Resolves once 127.0.0.1:port accepts a connection; rejects after `ms`. */
async function waitForPort(port, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = netConnect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`the http_listener on port ${port} did not accept connections within ${ms} ms`);
    await sleep(50);
  }
}

/**
 * GET /metrics every second (each bounded by its own timeout), as Prometheus would: from this process,
 * neither the broker's nor the load generator's; the body is read and dropped, never parsed (a
 * scrape costs this process well under a millisecond). stop() tells how many answered 200 and how long
 * they took (the first one loads prom-client in the broker).
 */
function scrapeEverySecond(port) {
  const st = { ok: 0, failed: 0, ms: [] };
  const once = () => {
    const t0 = performance.now();
    const req = httpGet({ host: '127.0.0.1', port, path: '/metrics', timeout: 5000, agent: false }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode === 200) st.ok++; else st.failed++;
        st.ms.push(performance.now() - t0);
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => { st.failed++; });
  };
  const timer = setInterval(once, 1000);
  once();
  return {
    stop: () => {
      clearInterval(timer);
      const rest = st.ms.slice(1);
      return { ok: st.ok, failed: st.failed, firstMs: st.ms[0], restMedianMs: median(rest), restMaxMs: rest.length ? Math.max(...rest) : undefined };
    },
  };
}

/** Disk use of a directory in KiB (the store at the end of a run, before the broker stops). */
function duKb(dir) {
  const r = spawnSync('du', ['-sk', dir], { encoding: 'utf8', timeout: 10_000 });
  const v = Number(r.stdout.split(/\s/)[0]);
  return Number.isFinite(v) ? v : undefined;
}

// ------------------------------------------------------------------ report

function ratio(a, b) {
  if (a === undefined || b === undefined || b === 0) return undefined;
  return a / b;
}

function fmtRatio(r) {
  return r === undefined ? 'n/a' : `${r.toFixed(2)}×`;
}

/** "met" for a Midge/X ratio against a factor: higher-better needs r >= f; lower-better needs r <= f (Aedes: r <= 1/f). */
function check(r, f, dir, vsAedes) {
  if (r === undefined || f === undefined) return undefined;
  if (dir > 0) return r >= f;
  return vsAedes ? r <= 1 / f : r <= f;
}

function buildTable(records) {
  const lines = [];
  lines.push('| scenario | metric | Midge | Mosquitto | Aedes | Midge / Mosquitto | Midge / Aedes | target | met |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---|:---:|');
  const verdicts = [];
  for (const scenario of selected.filter((s) => !isDurable(s) && !isWs(s) && !isMetrics(s))) {
    const sc = SCENARIOS[scenario];
    for (const m of sc.metrics) {
      const val = {};
      for (const b of brokersOf(scenario)) val[b] = median(records.filter((r) => r.scenario === scenario && r.broker === b && r.gen).map((r) => m.get(r)));
      const rm = ratio(val.midge, val.mosquitto);
      const ra = ratio(val.midge, val.aedes);
      const targets = [];
      const met = [];
      if (m.mosq !== undefined) {
        targets.push(m.dir > 0 ? `≥ ${m.mosq}× Mosq.` : `≤ ${m.mosq}× Mosq.`);
        met.push(check(rm, m.mosq, m.dir, false));
      }
      if (m.abs !== undefined) {
        targets.push(`≤ ${m.abs}`);
        met.push(val.midge === undefined ? undefined : val.midge <= m.abs);
      }
      if (m.absMin !== undefined) {
        targets.push(`all ${fmt(m.absMin)}`);
        met.push(val.midge === undefined ? undefined : val.midge >= m.absMin);
      }
      if (m.aedes !== undefined && !m.info) {
        targets.push(m.dir > 0 ? `≥ ${m.aedes}× Aedes` : `≤ 1/${m.aedes} Aedes`);
        met.push(check(ra, m.aedes, m.dir, true));
      }
      const verdict = met.length === 0 ? '' : met.some((x) => x === undefined) ? '?' : met.every(Boolean) ? 'yes' : 'NO';
      if (met.length > 0) verdicts.push({ scenario, metric: m.name, verdict });
      const name = `${m.name}${m.dir > 0 ? ' ↑' : ' ↓'}`;
      lines.push(`| ${scenario} | ${name} | ${fmt(val.midge)} | ${fmt(val.mosquitto)} | ${fmt(val.aedes)} | ${fmtRatio(rm)} | ${fmtRatio(ra)} | ${targets.join(', ')} | ${verdict} |`);
    }
  }
  return { table: lines.join('\n'), verdicts };
}

/**
 * The durable-store scenarios: Midge with persistence true against Midge in memory (target >= 50%)
 * and against mosquitto with persistence true (target >= 1.0×), the fsync setting beside them.
 */
function buildDurableTable(records) {
  const lines = [];
  lines.push('| scenario | metric | Midge persist | Midge persist+fsync | Midge memory | Mosquitto persist | persist / Mosq. persist | persist / Midge memory | fsync / Mosq. persist | fsync / Midge memory | target | met |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|:---:|');
  const verdicts = [];
  for (const scenario of selected.filter(isDurable)) {
    for (const m of SCENARIOS[scenario].metrics) {
      const val = {};
      for (const b of DURABLE) {
        const vs = records.filter((r) => r.scenario === scenario && r.broker === b && r.gen).map((r) => m.get(r));
        val[b] = m.worst ? (vs.length ? Math.max(...vs) : undefined) : median(vs);
      }
      const p = val['midge-persist'];
      const f = val['midge-fsync'];
      const rq = ratio(p, val['mosquitto-persist']);
      const rm = ratio(p, val.midge);
      const targets = [];
      const met = [];
      if (m.vsMosq !== undefined) {
        targets.push(`persist ≥ ${m.vsMosq}× Mosq. persist`);
        met.push(check(rq, m.vsMosq, m.dir, false));
      }
      if (m.vsMem !== undefined) {
        targets.push(`persist ≥ ${m.vsMem * 100}% memory`);
        met.push(check(rm, m.vsMem, m.dir, false));
      }
      if (m.absMax !== undefined) {
        targets.push(`${m.absMax} in every persist and fsync run`);
        const all = records.filter((r) => r.scenario === scenario && (r.broker === 'midge-persist' || r.broker === 'midge-fsync'));
        met.push(all.length === 0 ? undefined : all.every((r) => r.gen && m.get(r) <= m.absMax));
      }
      if (m.absMin !== undefined) {
        // every run of every broker, not the median: one loss is a loss
        targets.push(`all ${fmt(m.absMin)} in every persist and fsync run`);
        const all = records.filter((r) => r.scenario === scenario && (r.broker === 'midge-persist' || r.broker === 'midge-fsync'));
        met.push(all.length === 0 ? undefined : all.every((r) => r.gen && m.get(r) >= m.absMin));
      }
      const verdict = met.length === 0 ? '' : met.some((x) => x === undefined) ? '?' : met.every(Boolean) ? 'yes' : 'NO';
      if (met.length > 0) verdicts.push({ scenario, metric: m.name, verdict });
      const name = `${m.name}${m.dir > 0 ? ' ↑' : ' ↓'}`;
      lines.push(`| ${scenario} | ${name} | ${fmt(p)} | ${fmt(f)} | ${fmt(val.midge)} | ${fmt(val['mosquitto-persist'])} | ${fmtRatio(rq)} | ${fmtRatio(rm)} | `
        + `${fmtRatio(ratio(f, val['mosquitto-persist']))} | ${fmtRatio(ratio(f, val.midge))} | ${targets.join(', ')} | ${verdict} |`);
    }
  }
  return { table: lines.join('\n'), verdicts };
}

/**
 * The WebSocket scenarios: Midge over ws:// against Mosquitto over ws:// (its libwebsockets listener;
 * target >= 1.0x) and against Midge over TCP (the cost of the WebSocket layer), Mosquitto over TCP beside.
 */
function buildWsTable(records) {
  const lines = [];
  lines.push('| scenario | metric | Midge WS | Midge TCP | Mosquitto WS | Mosquitto TCP | Midge WS / Mosquitto WS | Midge WS / Midge TCP | Mosquitto WS / Mosquitto TCP | target | met |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---|:---:|');
  const verdicts = [];
  for (const scenario of selected.filter(isWs)) {
    for (const m of SCENARIOS[scenario].metrics) {
      const val = {};
      for (const b of WS) val[b] = median(records.filter((r) => r.scenario === scenario && r.broker === b && r.gen).map((r) => m.get(r)));
      const rq = ratio(val['midge-ws'], val['mosquitto-ws']);
      const targets = [];
      const met = [];
      if (m.vsMosqWs !== undefined) {
        targets.push(`Midge WS ≥ ${m.vsMosqWs}× Mosq. WS`);
        met.push(check(rq, m.vsMosqWs, m.dir, false));
      }
      const verdict = met.length === 0 ? '' : met.some((x) => x === undefined) ? '?' : met.every(Boolean) ? 'yes' : 'NO';
      if (met.length > 0) verdicts.push({ scenario, metric: m.name, verdict });
      const name = `${m.name}${m.dir > 0 ? ' ↑' : ' ↓'}`;
      lines.push(`| ${scenario} | ${name} | ${fmt(val['midge-ws'])} | ${fmt(val.midge)} | ${fmt(val['mosquitto-ws'])} | ${fmt(val.mosquitto)} | ${fmtRatio(rq)} | `
        + `${fmtRatio(ratio(val['midge-ws'], val.midge))} | ${fmtRatio(ratio(val['mosquitto-ws'], val.mosquitto))} | ${targets.join(', ')} | ${verdict} |`);
    }
  }
  return { table: lines.join('\n'), verdicts };
}

/**
 * The cost of metrics: Midge with an http_listener scraped every second against Midge without (target
 * >= 97%). Repetition k runs both variants back to back (which one first alternates), so the verdict
 * takes the median of the k paired ratios on/off, which cancels the drift of the host's load between
 * repetitions better than a ratio of medians (shown too). "Quiet" keeps the pairs in which neither run
 * was disturbed (other processes used at most DISTURBED_S CPU-seconds).
 */
function buildMetricsTable(records) {
  const lines = [];
  lines.push('| scenario | metric | Midge (no HTTP) | Midge + /metrics 1/s | on / off, medians | on / off, paired (median) | quiet pairs: on / off | pairs (quiet) | target | met |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---|:---:|');
  const verdicts = [];
  const runs = [];
  for (const scenario of selected.filter(isMetrics)) {
    const mine = records.filter((r) => r.scenario === scenario && r.gen);
    const pairs = [];
    for (const rep of [...new Set(mine.map((r) => r.rep))]) {
      const off = mine.find((r) => r.rep === rep && r.broker === 'midge');
      const on = mine.find((r) => r.rep === rep && r.broker === 'midge-http');
      if (off && on) pairs.push({ rep, off, on, quiet: (off.otherCpuS ?? 0) <= DISTURBED_S && (on.otherCpuS ?? 0) <= DISTURBED_S });
    }
    for (const m of SCENARIOS[scenario].metrics) {
      const off = median(mine.filter((r) => r.broker === 'midge').map((r) => m.get(r)));
      const on = median(mine.filter((r) => r.broker === 'midge-http').map((r) => m.get(r)));
      const paired = median(pairs.map((p) => ratio(m.get(p.on), m.get(p.off))));
      const quiet = pairs.filter((p) => p.quiet);
      const quietR = median(quiet.map((p) => ratio(m.get(p.on), m.get(p.off))));
      let target = 'info';
      let verdict = '';
      if (m.vsOff !== undefined) {
        const ok = paired === undefined ? undefined : paired >= m.vsOff;
        verdict = ok === undefined ? '?' : ok ? 'yes' : 'NO';
        target = `on ≥ ${m.vsOff * 100}% of off`;
        verdicts.push({ scenario, metric: m.name, verdict });
      }
      lines.push(`| ${scenario} | ${m.name} ${m.dir > 0 ? '↑' : '↓'} | ${(m.fmt ?? fmt)(off)} | ${(m.fmt ?? fmt)(on)} | ${fmtRatio(ratio(on, off))} | ${fmtRatio(paired)} | ${fmtRatio(quietR)} | ${pairs.length} (${quiet.length}) | ${target} | ${verdict} |`);
    }
    const rate = (r) => r.gen.msgsPerS;
    const { get: cpu, fmt: fmtCpu } = brokerCpuPerMsg();
    for (const p of pairs) {
      const cell = (r) => `${fmt(rate(r))} (${fmt(r.otherCpuS)}${(r.otherCpuS ?? 0) > DISTURBED_S ? ' **disturbed**' : ''})`;
      const sc = p.on.scrapes !== undefined ? `${p.on.scrapes} / ${p.on.scrapeFailures}, first ${fmt(p.on.scrapeFirstMs)} ms, then median ${fmt(p.on.scrapeMedianMs)} max ${fmt(p.on.scrapeMaxMs)} ms` : 'n/a';
      runs.push(`| ${scenario} | ${p.rep} | ${records.indexOf(p.off) < records.indexOf(p.on) ? 'off' : 'on'} | ${cell(p.off)} | ${cell(p.on)} | ${fmtRatio(ratio(rate(p.on), rate(p.off)))} | ${fmtCpu(cpu(p.off))} / ${fmtCpu(cpu(p.on))} | ${sc} |`);
    }
  }
  const table = [...lines, '', 'The pairs one by one (msgs/s; in brackets the CPU-seconds other processes used during the run):', '',
    '| scenario | pair | first | off msgs/s | on msgs/s | on / off | broker CPU µs/msg off / on | scrapes ok / failed, time |', '|---|---:|---|---:|---:|---:|---:|---|', ...runs].join('\n');
  return { table, verdicts };
}

function resourceTable(records) {
  const lines = [];
  lines.push('| scenario | broker | runs | peak RSS MiB | broker CPU s | store KiB at end | lost (gaps) | undelivered at end | errors | generator CPU % (window) | other processes CPU s |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const scenario of selected) {
    for (const b of brokersOf(scenario)) {
      const rs = records.filter((r) => r.scenario === scenario && r.broker === b);
      const ok = rs.filter((r) => r.gen);
      const med = (f) => fmt(median(ok.map(f)));
      const failed = rs.length - ok.length;
      // lost and undelivered: the worst run, not the median
      const worst = (f) => fmt(ok.length ? Math.max(...ok.map(f)) : undefined);
      lines.push(`| ${scenario} | ${NAMES[b]} | ${ok.length}${failed ? ` (+${failed} failed)` : ''} | ${med((r) => r.hwmKb / 1024)} | ${med((r) => r.cpuS)} | ${b.endsWith('persist') || b.endsWith('fsync') ? med((r) => r.storeKb) : ''} | ${worst((r) => r.gen.lost)} | ${worst((r) => r.gen.missing)} | ${med((r) => r.gen.errors?.total)} | ${med((r) => r.gen.cpu?.windowPct)} | ${med((r) => r.otherCpuS)} |`);
    }
  }
  return lines.join('\n');
}

function machine() {
  const cpuModel = (() => {
    try {
      return /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpus()[0]?.model;
    } catch {
      return cpus()[0]?.model;
    }
  })();
  const mosq = spawnSync('/usr/sbin/mosquitto', ['-h'], { encoding: 'utf8' });
  const mosqVersion = (mosq.stdout || mosq.stderr || '').split('\n')[0]?.trim();
  let aedesVersion = 'n/a';
  try {
    aedesVersion = JSON.parse(readFileSync(join(ROOT, 'node_modules/aedes/package.json'), 'utf8')).version;
  } catch {
    // not installed
  }
  const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
  return {
    nproc: availableParallelism(), cpuModel, memGiB: Math.round(totalmem() / 2 ** 30 * 10) / 10,
    node: process.version, mosquitto: mosqVersion, aedes: aedesVersion, commit, fdLimit,
  };
}

// ------------------------------------------------------------------ main

const started = new Date();
const m = machine();
console.error(`# bench: ${selected.map((s) => `${s} (${brokersOf(s).join(',')})`).join(', ')} × ${REPEAT}; ${DURATION} s each; ${m.nproc} CPUs (${m.cpuModel})`);
if (CONNS_NOTE) console.error(`# ${CONNS_NOTE}`);
const records = [];
try {
  for (const scenario of selected) {
    const reps = Math.max(REPEAT, SCENARIOS[scenario].minRepeat ?? 1);
    for (let rep = 1; rep <= reps; rep++) {
      // alternate: each repetition starts with the next broker
      const list = brokersOf(scenario);
      const order = list.map((_, i) => list[(i + rep - 1) % list.length]);
      for (const b of order) {
        const rec = await runOne(scenario, b, rep);
        records.push(rec);
        const g = rec.gen;
        const what = rec.error ? `ERROR ${rec.error.split('\n')[0]}`
          : g.conns ? `${g.conns.connected} conns, ${g.conns.connectsPerS}/s, ${rec.kibPerConn ?? 'n/a'} KiB/conn`
            : g.offline ? `published ${g.offline.acked} at ${g.offline.publishPerS}/s, drained ${g.offline.received} of ${g.offline.expected} at ${g.offline.drainPerS}/s, lost ${g.lost}, missing ${g.missing}`
            : `${g.msgsPerS} msgs/s, p99 ${g.latencyUs?.p99} µs, lost ${g.lost}, missing ${g.missing}`;
        console.error(`${scenario} ${b} #${rep}: ${what}; peak RSS ${Math.round(rec.hwmKb / 1024)} MiB, CPU ${rec.cpuS} s, others ${rec.otherCpuS} s`);
      }
    }
  }
} finally {
  await stopCurrent();
  rmSync(work, { recursive: true, force: true });
}

const classic = buildTable(records);
const durable = buildDurableTable(records);
const wsTable = buildWsTable(records);
const metricsCost = buildMetricsTable(records);
const verdicts = [...classic.verdicts, ...durable.verdicts, ...wsTable.verdicts, ...metricsCost.verdicts];
const hasClassic = selected.some((s) => !isDurable(s) && !isWs(s) && !isMetrics(s));
const hasWs = selected.some(isWs);
const hasDurable = selected.some(isDurable);
const hasMetrics = selected.some(isMetrics);
const md = [
  `Run ${started.toISOString()} (commit ${m.commit}): ${m.nproc} CPUs (${m.cpuModel}), ${m.memGiB} GiB RAM; node ${m.node}; ${m.mosquitto}; aedes ${m.aedes}.`,
  `DURATION=${DURATION} s measured (+${WARMUP} s warmup) per run, REPEAT=${REPEAT} (latency scenarios: ${Math.max(REPEAT, LAT_REPEAT)}; brokers alternating, a fresh broker per run), values are medians.`
    + ` Load: \`midge bench\` (${m.nproc > 1 ? m.nproc - 1 : 1} worker thread(s)); open-file limit ${fdLimit}.${CONNS_NOTE ? ` ${CONNS_NOTE}.` : ''}`,
  '',
  ...(hasClassic ? [classic.table, ''] : []),
  ...(hasWs ? ['MQTT over WebSockets (the `-ws` brokers: the load over their `protocol websockets` listener, `midge bench --ws`; the others over TCP):', '', wsTable.table, ''] : []),
  ...(hasDurable ? ['Durable store (Midge `persistence true`; Mosquitto `persistence true` keeps its state in memory between autosaves):', '', durable.table, ''] : []),
  ...(hasMetrics ? ['Cost of metrics (Midge with an `http_listener`, `GET /metrics` every second during the run, against Midge without one):', '', metricsCost.table, ''] : []),
  resourceTable(records),
  '',
].join('\n');
mkdirSync(OUT, { recursive: true });
const stamp = started.toISOString().replace(/[:.]/g, '-');
writeFileSync(join(OUT, `${stamp}.json`), JSON.stringify({ machine: m, env: { DURATION, REPEAT, QUICK, CONNS, CONNS_NOTE, OFFLINE_N, BROKERS }, records }, null, 1));
writeFileSync(join(OUT, 'latest.md'), md);
process.stdout.write(`\n${md}\n`);
const failedRuns = records.filter((r) => r.error).length;
if (failedRuns > 0) console.error(`${failedRuns} run(s) failed; see ${join(OUT, `${stamp}.json`)}`);
const missed = verdicts.filter((v) => v.verdict === 'NO');
console.error(`targets: ${verdicts.length - missed.length} of ${verdicts.length} met${missed.length ? `; missed: ${missed.map((v) => `${v.scenario} ${v.metric}`).join(', ')}` : ''}`);
process.exitCode = failedRuns > 0 ? 1 : 0;
