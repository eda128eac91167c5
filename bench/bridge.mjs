#!/usr/bin/env node
// Bridges (issue 13): a bridged QoS 0 and QoS 1 stream, publisher on the LOCAL broker, subscriber on
// the REMOTE one, Midge → Mosquitto, Midge → Midge and Mosquitto → Mosquitto in the same run, and the
// same load DIRECT (publisher and subscriber on one broker, no bridge) for the added latency of the hop.
//
//   npm run build && node bench/bridge.mjs
//   QUICK=1 node bench/bridge.mjs                        (1 s per run, once, no waiting for quiet)
//   DURATION=5 REPEAT=2 SCENARIOS=lat_q0,flood_q1 PAIRS=midge-mosquitto DIRECT=midge node bench/bridge.mjs
//
// Environment:
//   DURATION    measured seconds per run (default 5; QUICK: 1)
//   REPEAT      runs per scenario and configuration, configurations alternating (default 2; QUICK: 1)
//   SCENARIOS   comma list of lat_q0, lat_q1, flood_q0, flood_q1 (default: all)
//   PAIRS       comma list of LOCAL-REMOTE bridges, each side midge or mosquitto
//               (default midge-mosquitto,midge-midge,mosquitto-mosquitto)
//   DIRECT      comma list of brokers for the direct runs, midge and/or mosquitto (default both; '' none)
//   BRIDGE_WAIT seconds to wait for a new bridge to carry a probe message (default 20)
//   QUIET_WAIT  before each run, wait up to this many seconds (default 10; QUICK: 0) until other
//               processes use less than QUIET_CPU (default 0.25) of a core; their CPU during each
//               run is reported either way ("other processes CPU s")
//   OUT         directory for results (default bench/results)
//
// Every run gets fresh brokers on free ports of 127.0.0.1 (Midge and Debian's mosquitto with the
// same mosquitto.conf), stopped by their PIDs, also on failure or Ctrl-C. The local broker gets a
// `connection` block (`address 127.0.0.1:REMOTE`, `topic bench/# out QOS`, the other keys at their
// defaults); once a probe message went over the bridge, `midge bench run` sends to the local broker
// and receives from the remote one (--sub-port). Results: OUT/bridge-latest.md and OUT/bridge-<stamp>.json.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { fmt, host, knob, list, median } from './common.mjs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(HERE);

// The knobs first: a bad one is refused before anything is copied or started.
const env = process.env;
const QUICK = env.QUICK === '1';
const DURATION = knob('DURATION', QUICK ? 1 : 5, 0.1, 600, false);
const REPEAT = knob('REPEAT', QUICK ? 1 : 2, 1, 20);
const BRIDGE_WAIT = knob('BRIDGE_WAIT', 20, 1, 300, false);
const QUIET_WAIT = knob('QUIET_WAIT', QUICK ? 0 : 10, 0, 600, false);
const QUIET_CPU = knob('QUIET_CPU', 0.25, 0, 2, false);
const KINDS = ['midge', 'mosquitto'];
const ALL_PAIRS = KINDS.flatMap((l) => KINDS.map((r) => `${l}-${r}`));
const PAIRS = list('PAIRS', 'midge-mosquitto,midge-midge,mosquitto-mosquitto', ALL_PAIRS);
const DIRECT = list('DIRECT', 'midge,mosquitto', KINDS);
const OUT = env.OUT ?? join(HERE, 'results');
const WARMUP = QUICK ? 0.5 : 1;

const common = ['--warmup', String(WARMUP), '-d', String(DURATION), '--drain', '1', '-s', '64'];
/** Each scenario: its QoS (also the QoS of the bridge's `topic` line) and the `midge bench run` arguments. */
const SCENARIOS = {
  lat_q0: { title: 'QoS 0, 1 → 1, 5k msgs/s', qos: 0, args: ['--pubs', '1', '--subs', '1', '-r', '5000', '-q', '0'], latency: true },
  lat_q1: { title: 'QoS 1, 1 → 1, 5k msgs/s', qos: 1, args: ['--pubs', '1', '--subs', '1', '-r', '5000', '-q', '1'], latency: true },
  flood_q0: { title: 'QoS 0, 1 → 1, flood, window 1000', qos: 0, args: ['--pubs', '1', '--subs', '1', '-q', '0', '--window', '1000'] },
  flood_q1: { title: 'QoS 1, 1 → 1, flood, inflight 64, window 64', qos: 1, args: ['--pubs', '1', '--subs', '1', '-q', '1', '--inflight', '64', '--window', '64'] },
};
const SELECTED = list('SCENARIOS', Object.keys(SCENARIOS).join(','), Object.keys(SCENARIOS));
const NAME = { midge: 'Midge', mosquitto: 'Mosquitto' };
/** The configurations of one scenario: the bridges ("midge-mosquitto": local Midge, remote mosquitto), then the direct brokers. */
const CONFIGS = [...PAIRS.map((p) => ({ id: p, local: p.split('-')[0], remote: p.split('-')[1] })), ...DIRECT.map((k) => ({ id: `direct-${k}`, local: k }))];
const label = (c) => (c.remote ? `${NAME[c.local]} → ${NAME[c.remote]}` : `${NAME[c.local]} direct`);
if (CONFIGS.length === 0 || SELECTED.length === 0) {
  console.error('nothing to run: PAIRS, DIRECT and SCENARIOS are all empty');
  process.exit(2);
}

// The build under test is copied first (see run.mjs): a rebuild of dist/ by someone else cannot
// change the brokers or the generator halfway.
const SNAP = join(HERE, '.snapshot-bridge');
if (!existsSync(join(ROOT, 'dist/src/cli/main.js'))) {
  console.error('dist/src/cli/main.js is missing: build first (npm run build)');
  process.exit(2);
}
rmSync(SNAP, { recursive: true, force: true });
cpSync(join(ROOT, 'dist/src'), join(SNAP, 'dist/src'), { recursive: true });
cpSync(join(ROOT, 'dist/test/helpers/bench-brokers.js'), join(SNAP, 'dist/test/helpers/bench-brokers.js'));
const { startBroker, MIDGE_MAIN } = await import(pathToFileURL(join(SNAP, 'dist/test/helpers/bench-brokers.js')).href);
const { allProcessCpu, otherCpuSeconds } = await import(pathToFileURL(join(SNAP, 'dist/src/bench/limits.js')).href);
const { encode, Parser } = await import(pathToFileURL(join(SNAP, 'dist/src/codec/index.js')).href);
{
  const r = spawnSync(process.execPath, [MIDGE_MAIN, 'bench', '--help'], { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0 || !r.stdout.includes('--sub-port')) {
    console.error(`the build has no 'midge bench run --sub-port': ${r.stderr || r.stdout.slice(0, 300)}`);
    process.exit(2);
  }
}

// ------------------------------------------------------------------ running

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const work = mkdtempSync(join(tmpdir(), 'midge-bridge-bench-'));
/** what is running now, for the signal handlers: brokers and the generator, each stopped by its PID */
const live = { brokers: new Set(), gen: undefined, probes: new Set() };
async function stopAll() {
  for (const s of live.probes) s.destroy();
  live.probes.clear();
  if (live.gen?.exitCode === null) live.gen.kill('SIGKILL');
  live.gen = undefined;
  // the local broker first (its bridge then disconnects from a remote that is still there)
  for (const b of [...live.brokers].reverse()) {
    await b.stop();
    live.brokers.delete(b);
  }
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    console.error(`\n${sig}: stopping`);
    stopAll().finally(() => {
      rmSync(work, { recursive: true, force: true });
      process.exit(130);
    });
  });
}

/** Midge and mosquitto run with the same lines: run.mjs's config plus the in-flight limit of the brief. */
const BASE_EXTRA = 'max_inflight_messages 20';
function bridgeBlock(remotePort, qos) {
  return ['connection bench', `address 127.0.0.1:${remotePort}`, `topic bench/# out ${qos}`].join('\n');
}

/**
 * A minimal MQTT 3.1.1 connection (our codec): CONNECT, then packets to `onPacket`. Resolves on the
 * CONNACK; bounded by `timeoutMs`. Closed by the caller (or by stopAll).
 */
function open(port, clientId, onPacket, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    live.probes.add(sock);
    sock.on('close', () => live.probes.delete(sock));
    const parser = new Parser({ protocolVersion: 4 });
    let acked = false;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`${clientId}: no CONNACK within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on('data', (chunk) => {
      try {
        parser.parse(chunk, (p) => {
          if (p.type === 'connack' && !acked) {
            acked = true;
            clearTimeout(timer);
            if (p.reasonCode !== 0) {
              sock.destroy();
              reject(new Error(`${clientId}: CONNACK ${p.reasonCode}`));
            } else {
              resolve({ send: (q) => sock.write(encode(q, 4)), close: () => sock.end(encode({ type: 'disconnect' }, 4)) });
            }
            return;
          }
          onPacket(p);
        });
      } catch (err) {
        sock.destroy();
        if (!acked) reject(err);
      }
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      if (!acked) reject(err);
    });
    sock.write(encode({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId }, 4));
  });
}

/**
 * Waits until the bridge carries a message: a subscriber on the remote to bench/probe, a QoS 0
 * `bench/probe` published on the local broker every 100 ms until one arrives. Bounded by BRIDGE_WAIT.
 * Resolves with the milliseconds it took, or throws.
 */
async function waitForBridge(localPort, remotePort) {
  const t0 = Date.now();
  let got = false;
  let subacked = false;
  let onSuback;
  const suback = new Promise((r) => { onSuback = r; });
  const sub = await open(remotePort, 'bridge-probe-sub', (p) => {
    if (p.type === 'suback') {
      subacked = true;
      onSuback();
    }
    if (p.type === 'publish' && p.topic === 'bench/probe') got = true;
  });
  let pub;
  try {
    pub = await open(localPort, 'bridge-probe-pub', () => {});
    sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'bench/probe', qos: 0 }] });
    await Promise.race([suback, sleep(5000)]);
    while (!got) {
      if (Date.now() - t0 > BRIDGE_WAIT * 1000) throw new Error(`the bridge carried no probe message within ${BRIDGE_WAIT} s${subacked ? '' : ' (no SUBACK from the remote)'}`);
      pub.send({ type: 'publish', topic: 'bench/probe', payload: Buffer.from('probe'), qos: 0, retain: false, dup: false });
      await sleep(100);
    }
    return Date.now() - t0;
  } finally {
    sub.close();
    pub?.close();
  }
}

/** Runs `midge bench run` to the end (bounded): publishers to pubPort, subscribers to subPort. */
function runGenerator(args, pubPort, subPort, timeoutMs) {
  return new Promise((resolve) => {
    const gen = spawn(process.execPath, [MIDGE_MAIN, 'bench', 'run', ...args, ...common, '-p', String(pubPort), '--sub-port', String(subPort), '--json', '--quiet'],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    live.gen = gen;
    let out = '';
    let err = '';
    gen.stdout.setEncoding('utf8').on('data', (s) => (out += s));
    gen.stderr.setEncoding('utf8').on('data', (s) => (err += s));
    const timer = setTimeout(() => gen.kill('SIGKILL'), timeoutMs);
    gen.on('close', (code, signal) => {
      clearTimeout(timer);
      live.gen = undefined;
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

/** Wait (bounded by QUIET_WAIT s) until the other processes use less than QUIET_CPU of a core (see run.mjs). */
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

async function runOne(scenario, cfg, rep) {
  const sc = SCENARIOS[scenario];
  const rec = { scenario, config: cfg.id, rep };
  let local;
  let remote;
  try {
    if (QUIET_WAIT > 0) rec.quiet = await waitForQuiet();
    if (cfg.remote) {
      remote = await startBroker(cfg.remote, { dir: work, extraConfig: BASE_EXTRA });
      live.brokers.add(remote);
    }
    local = await startBroker(cfg.local, { dir: work, extraConfig: cfg.remote ? `${BASE_EXTRA}\n${bridgeBlock(remote.port, sc.qos)}` : BASE_EXTRA });
    live.brokers.add(local);
    if (remote) rec.bridgeReadyMs = await waitForBridge(local.port, remote.port);
    await sleep(1000);
    const cpuL = local.cpuS();
    const cpuR = remote?.cpuS() ?? 0;
    const others0 = allProcessCpu();
    const res = await runGenerator(sc.args, local.port, (remote ?? local).port, (WARMUP + DURATION + 1 + 90) * 1000);
    rec.localCpuS = Math.round((local.cpuS() - cpuL) * 100) / 100;
    if (remote) rec.remoteCpuS = Math.round((remote.cpuS() - cpuR) * 100) / 100;
    rec.otherCpuS = otherCpuSeconds(others0, allProcessCpu(), [local.pid, remote?.pid ?? -1, process.pid, res.pid ?? -1]);
    rec.localHwmKb = local.hwmKb();
    if (remote) rec.remoteHwmKb = remote.hwmKb();
    rec.aliveAtEnd = local.alive() && (remote?.alive() ?? true);
    rec.gen = res.json;
    if (res.json === undefined) rec.error = `generator: code ${res.code} signal ${res.signal}: ${res.stderr.slice(-500)}`;
    else if (!rec.aliveAtEnd) rec.error = 'a broker exited during the run';
  } catch (err) {
    rec.error = err instanceof Error ? err.message : String(err);
  } finally {
    if (rec.error) rec.logs = { local: local?.logs().slice(-1500), remote: remote?.logs().slice(-1500) };
    for (const b of [local, remote]) {
      if (b) {
        await b.stop();
        live.brokers.delete(b);
      }
    }
  }
  return rec;
}

// ------------------------------------------------------------------ report

const ratio = (a, b) => (a === undefined || b === undefined || b === 0 ? undefined : a / b);
const fmtRatio = (r) => (r === undefined ? 'n/a' : `${r.toFixed(2)}×`);

/** The metrics of a scenario: throughput for the floods, p50 and p99 for the paced runs. */
function metricsOf(scenario) {
  return SCENARIOS[scenario].latency
    ? [{ name: 'p50 µs ↓', get: (g) => g.latencyUs?.p50 }, { name: 'p99 µs ↓', get: (g) => g.latencyUs?.p99 }, { name: 'msgs/s', get: (g) => g.msgsPerS }]
    : [{ name: 'msgs/s ↑', get: (g) => g.msgsPerS }, { name: 'p50 µs (window-bound)', get: (g) => g.latencyUs?.p50 }];
}
const val = (records, scenario, id, get) => median(records.filter((r) => r.scenario === scenario && r.config === id && r.gen).map((r) => get(r.gen)));

function mainTable(records) {
  const lines = [];
  const cols = CONFIGS.map(label);
  const mm = PAIRS.includes('midge-mosquitto') && PAIRS.includes('mosquitto-mosquitto');
  const mi = PAIRS.includes('midge-midge') && PAIRS.includes('mosquitto-mosquitto');
  lines.push(`| scenario | metric | ${cols.join(' | ')}${mm ? ' | Midge→Mosq. / Mosq.→Mosq.' : ''}${mi ? ' | Midge→Midge / Mosq.→Mosq.' : ''} |`);
  lines.push(`|---|---|${CONFIGS.map(() => '---:').join('|')}${mm ? '|---:' : ''}${mi ? '|---:' : ''}|`);
  for (const s of SELECTED) {
    for (const m of metricsOf(s)) {
      const v = Object.fromEntries(CONFIGS.map((c) => [c.id, val(records, s, c.id, m.get)]));
      const base = v['mosquitto-mosquitto'];
      lines.push(`| ${s} | ${m.name} | ${CONFIGS.map((c) => fmt(v[c.id])).join(' | ')}${mm ? ` | ${fmtRatio(ratio(v['midge-mosquitto'], base))}` : ''}${mi ? ` | ${fmtRatio(ratio(v['midge-midge'], base))}` : ''} |`);
    }
  }
  return lines.join('\n');
}

/** The hop: bridged p50/p99 minus direct on the local broker's kind; bridged throughput / direct. */
function hopTable(records) {
  const lines = ['| bridge | ' + SELECTED.map((s) => (SCENARIOS[s].latency ? `${s}: added p50 µs | ${s}: added p99 µs` : `${s}: bridged / direct`)).join(' | ') + ' |'];
  lines.push('|---|' + SELECTED.map((s) => (SCENARIOS[s].latency ? '---:|---:' : '---:')).join('|') + '|');
  for (const p of PAIRS) {
    const local = p.split('-')[0];
    const cells = SELECTED.map((s) => {
      const d = `direct-${local}`;
      if (SCENARIOS[s].latency) {
        const diff = (get) => {
          const a = val(records, s, p, get);
          const b = val(records, s, d, get);
          return a === undefined || b === undefined ? 'n/a' : fmt(a - b);
        };
        return `${diff((g) => g.latencyUs?.p50)} | ${diff((g) => g.latencyUs?.p99)}`;
      }
      return fmtRatio(ratio(val(records, s, p, (g) => g.msgsPerS), val(records, s, d, (g) => g.msgsPerS)));
    });
    lines.push(`| ${label(CONFIGS.find((c) => c.id === p))} (vs ${NAME[local]} direct) | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

function resourceTable(records) {
  const lines = ['| scenario | configuration | runs | lost (gaps), worst | undelivered at end, worst | dups | errors | bridge up ms | local CPU s | remote CPU s | local / remote peak RSS MiB | other processes CPU s |'];
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|');
  for (const s of SELECTED) {
    for (const c of CONFIGS) {
      const rs = records.filter((r) => r.scenario === s && r.config === c.id);
      const ok = rs.filter((r) => r.gen);
      const med = (f) => fmt(median(ok.map(f)));
      const worst = (f) => fmt(ok.length ? Math.max(...ok.map(f)) : undefined);
      const failed = rs.length - ok.length;
      lines.push(`| ${s} | ${label(c)} | ${ok.length}${failed ? ` (+${failed} failed)` : ''} | ${worst((r) => r.gen.lost)} | ${worst((r) => r.gen.missing)} | ${worst((r) => r.gen.dups)} | `
        + `${worst((r) => r.gen.errors?.total ?? 0)} | ${c.remote ? med((r) => r.bridgeReadyMs) : ''} | ${med((r) => r.localCpuS)} | ${c.remote ? med((r) => r.remoteCpuS) : ''} | `
        + `${med((r) => r.localHwmKb / 1024)}${c.remote ? ` / ${med((r) => r.remoteHwmKb / 1024)}` : ''} | ${med((r) => r.otherCpuS)} (max ${worst((r) => r.otherCpuS)}) |`);
    }
  }
  return lines.join('\n');
}

function machine() {
  const mosq = spawnSync('/usr/sbin/mosquitto', ['-h'], { encoding: 'utf8' });
  return { ...host(ROOT), mosquitto: (mosq.stdout || mosq.stderr || '').split('\n')[0]?.trim() };
}

// ------------------------------------------------------------------ main

const started = new Date();
const m = machine();
console.error(`# bridge bench: ${SELECTED.join(', ')} × ${CONFIGS.map((c) => c.id).join(', ')} × ${REPEAT}; ${DURATION} s each; ${m.nproc} CPUs (${m.cpuModel})`);
const records = [];
try {
  for (const s of SELECTED) {
    for (let rep = 1; rep <= REPEAT; rep++) {
      // alternate: each repetition starts with the next configuration
      const order = CONFIGS.map((_, i) => CONFIGS[(i + rep - 1) % CONFIGS.length]);
      for (const c of order) {
        const rec = await runOne(s, c, rep);
        records.push(rec);
        const g = rec.gen;
        const what = rec.error ? `ERROR ${rec.error.split('\n')[0]}`
          : `${g.msgsPerS} msgs/s, p50 ${g.latencyUs?.p50} µs, p99 ${g.latencyUs?.p99} µs, lost ${g.lost}, missing ${g.missing}`;
        console.error(`${s} ${c.id} #${rep}: ${what}; ${c.remote ? `bridge up in ${rec.bridgeReadyMs} ms, ` : ''}CPU local ${rec.localCpuS} s`
          + `${c.remote ? `, remote ${rec.remoteCpuS} s` : ''}, others ${rec.otherCpuS} s`);
      }
    }
  }
} finally {
  await stopAll();
  rmSync(work, { recursive: true, force: true });
}

const q1 = records.filter((r) => SCENARIOS[r.scenario].qos === 1);
const q1Loss = q1.filter((r) => !r.gen || r.gen.lost + r.gen.missing > 0);
const md = [
  `Run ${started.toISOString()} (commit ${m.commit}): ${m.nproc} CPUs (${m.cpuModel}), ${m.memGiB} GiB RAM; node ${m.node}; ${m.mosquitto}.`,
  `DURATION=${DURATION} s measured (+${WARMUP} s warmup, 1 s drain) per run, REPEAT=${REPEAT} (configurations alternating, fresh brokers per run), values are medians.`
    + ' Bridged: publisher on the local broker, subscriber on the remote one; direct: both on one broker.',
  '',
  mainTable(records),
  '',
  'The hop (bridged minus direct on the local broker\'s kind; throughput bridged / direct):',
  '',
  hopTable(records),
  '',
  resourceTable(records),
  '',
  `QoS 1: lost + undelivered = 0 in every run: ${q1.length === 0 ? 'n/a' : q1Loss.length === 0 ? 'yes' : `NO (${q1Loss.map((r) => `${r.scenario} ${r.config} #${r.rep}`).join(', ')})`}.`,
  '',
].join('\n');
mkdirSync(OUT, { recursive: true });
const stamp = started.toISOString().replace(/[:.]/g, '-');
writeFileSync(join(OUT, `bridge-${stamp}.json`), JSON.stringify({ machine: m, env: { DURATION, REPEAT, QUICK, PAIRS, DIRECT, SCENARIOS: SELECTED }, records }, null, 1));
writeFileSync(join(OUT, 'bridge-latest.md'), md);
process.stdout.write(`\n${md}`);
const failed = records.filter((r) => r.error).length;
if (failed > 0) console.error(`${failed} run(s) failed; see ${join(OUT, `bridge-${stamp}.json`)}`);
process.exitCode = failed > 0 || q1Loss.length > 0 ? 1 : 0;
