#!/usr/bin/env node
// The cluster on Redis (issue 12): throughput of 1, 2 and 3 nodes against one node without a cluster and
// one node on Redis, the latency a cross-node hop adds, and the time from a node's SIGKILL to its
// persistent subscriber's session resuming on another node. CPU of every node and of redis-server per run.
//
//   npm run build && node bench/cluster.mjs
//   QUICK=1 node bench/cluster.mjs                       (1 s per run, once, no waiting for quiet)
//   DURATION=5 REPEAT=1 SCENARIOS=fanout_q0,failover CONFIGS=local,n2 node bench/cluster.mjs
//
// Environment:
//   DURATION    measured seconds per run (default 5; QUICK: 1)
//   REPEAT      runs per scenario and configuration, configurations alternating (default 2; QUICK: 1)
//   SCENARIOS   comma list of fanin_q0, fanout_q0, fanout_q1, fanin_q1, lat_q0, lat_q1, failover (default: all)
//   CONFIGS     throughput configurations, comma list of local, redis1, n2, n3 (default: all); the latency
//               scenarios run local, redis1, n2-same and n2-cross whenever their base is listed
//   RATE        msgs/s of the latency scenarios (default 2000)
//   FAILOVER_REPEAT  kills per failover measurement (default 3; QUICK: 1)
//   FAILOVER_NODES   nodes of the failover cluster (default 2, at most 3)
//   RECONNECT_DELAY  ms from the kill to the subscriber's first reconnect attempt (default 0: at once)
//   QUIET_WAIT  before each run, wait up to this many seconds (default 10; QUICK: 0) until other
//               processes use less than QUIET_CPU (default 0.25) of a core; their CPU during each run
//               is reported either way ("others CPU s")
//   OUT         directory for results (default bench/results)
//
// Configurations (every run: a fresh redis-server on a free loopback port, no persistence, and fresh
// Midge nodes, all stopped by their PIDs, also on failure or Ctrl-C):
//   local    one node, no cluster (the local bus)
//   redis1   one node with cluster_redis: the Redis store and bus, nobody to forward to
//   n2, n3   2 or 3 nodes on one Redis. Fan-in: the publishers spread over nodes 1..N-1, the subscriber on
//            node N; fan-out: the publisher on node 1, the subscribers spread over nodes 2..N
//            (`midge bench run -p P1,P2 --sub-port P3,...`): every delivery crosses nodes.
//   n2-same / n2-cross (latency): a 2-node cluster, publisher and subscriber on node 1, or on nodes 1 and 2.
// Failover: FAILOVER_NODES nodes; a persistent subscriber (clean session false, QoS 1 on fo/#) on node 1,
// a publisher on node 2 sending a QoS 1 message every 5 ms throughout. Node 1 is SIGKILLed; the subscriber
// reconnects at once to node 2 (then 3, ...; each attempt waits up to 15 s for its CONNACK, 100 ms between
// attempts) and the times from the kill to the adopter's "Cluster: node ... is gone" log line, to the
// CONNACK (session present) and to the first message are measured; every message node 2 acknowledged
// must arrive (lost = acknowledged but never received).
// Results: OUT/cluster-latest.md and OUT/cluster-<stamp>.json.
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
const RATE = knob('RATE', 2000, 1, 1e6);
const FAILOVER_REPEAT = knob('FAILOVER_REPEAT', QUICK ? 1 : 3, 1, 20);
const FAILOVER_NODES = knob('FAILOVER_NODES', 2, 2, 3);
const RECONNECT_DELAY = knob('RECONNECT_DELAY', 0, 0, 60_000);
const QUIET_WAIT = knob('QUIET_WAIT', QUICK ? 0 : 10, 0, 600, false);
const QUIET_CPU = knob('QUIET_CPU', 0.25, 0, 2, false);
const OUT = env.OUT ?? join(HERE, 'results');
const WARMUP = QUICK ? 0.5 : 1;

const common = ['--warmup', String(WARMUP), '-d', String(DURATION), '--drain', '1', '-s', '64'];
/** kind: how the clients are placed on the nodes (see the header); latency: p50/p99 are the result */
const SCENARIOS = {
  fanin_q0: { title: 'fan-in QoS 0 (10 → 1, flood, window 1000)', kind: 'fanin', args: ['--pubs', '10', '--subs', '1', '--topics', '10', '--wildcard', '-q', '0'] },
  fanout_q0: { title: 'fan-out QoS 0 (1 → 100, flood, window 1000)', kind: 'fanout', args: ['--pubs', '1', '--subs', '100', '-q', '0'] },
  fanout_q1: { title: 'fan-out QoS 1 (1 → 100, inflight 64, window 64)', kind: 'fanout', args: ['--pubs', '1', '--subs', '100', '-q', '1', '--inflight', '64', '--window', '64'] },
  fanin_q1: { title: 'fan-in QoS 1 (10 → 1, inflight 64, window 64)', kind: 'fanin', args: ['--pubs', '10', '--subs', '1', '--topics', '10', '--wildcard', '-q', '1', '--inflight', '64', '--window', '64'] },
  lat_q0: { title: `latency QoS 0 (1 → 1, ${RATE} msgs/s)`, kind: 'latency', latency: true, args: ['--pubs', '1', '--subs', '1', '-r', String(RATE), '-q', '0'] },
  lat_q1: { title: `latency QoS 1 (1 → 1, ${RATE} msgs/s)`, kind: 'latency', latency: true, args: ['--pubs', '1', '--subs', '1', '-r', String(RATE), '-q', '1'] },
  failover: { title: 'SIGKILL of a node: its persistent subscriber resumes on another node', kind: 'failover' },
};
const SELECTED = list('SCENARIOS', Object.keys(SCENARIOS).join(','), Object.keys(SCENARIOS));
const BASE_CONFIGS = list('CONFIGS', 'local,redis1,n2,n3', ['local', 'redis1', 'n2', 'n3']);
const LABEL = {
  local: '1 node, no cluster', redis1: '1 node on Redis', n2: '2 nodes', n3: '3 nodes',
  'n2-same': '2 nodes, same node', 'n2-cross': '2 nodes, cross-node',
};
/** The configurations of a scenario: throughput ones, or the latency pairs. */
function configsOf(scenario) {
  if (SCENARIOS[scenario].kind === 'failover') return [];
  if (SCENARIOS[scenario].latency) {
    return ['local', 'redis1', ...(BASE_CONFIGS.includes('n2') ? ['n2-same', 'n2-cross'] : [])].filter((c) => c.startsWith('n2') || BASE_CONFIGS.includes(c));
  }
  return BASE_CONFIGS;
}
/** Nodes, cluster or not, and the node indexes of the publishers and subscribers. */
function layout(config, kind) {
  if (config === 'local' || config === 'redis1') return { nodes: 1, cluster: config === 'redis1', pubs: [0], subs: [0] };
  if (config === 'n2-same') return { nodes: 2, cluster: true, pubs: [0], subs: [0] };
  if (config === 'n2-cross') return { nodes: 2, cluster: true, pubs: [0], subs: [1] };
  const n = Number(config.slice(1));
  const all = [...Array(n).keys()];
  if (kind === 'fanin') return { nodes: n, cluster: true, pubs: all.slice(0, n - 1), subs: [n - 1] };
  return { nodes: n, cluster: true, pubs: [0], subs: all.slice(1) };
}
if (SELECTED.length === 0 || (BASE_CONFIGS.length === 0 && SELECTED.some((s) => SCENARIOS[s].kind !== 'failover'))) {
  console.error('nothing to run: SCENARIOS or CONFIGS is empty');
  process.exit(2);
}

// The build under test is copied first (see run.mjs): a rebuild of dist/ by someone else cannot change
// the nodes or the generator halfway.
const SNAP = join(HERE, '.snapshot-cluster');
if (!existsSync(join(ROOT, 'dist/src/cli/main.js')) || !existsSync(join(ROOT, 'dist/test/helpers/redis-server.js'))) {
  console.error('dist/ is missing or incomplete: build first (npm run build)');
  process.exit(2);
}
rmSync(SNAP, { recursive: true, force: true });
cpSync(join(ROOT, 'dist/src'), join(SNAP, 'dist/src'), { recursive: true });
for (const f of ['bench-brokers.js', 'redis-server.js', 'ports.js', 'proc.js']) cpSync(join(ROOT, 'dist/test/helpers', f), join(SNAP, 'dist/test/helpers', f));
const { startBroker, MIDGE_MAIN } = await import(pathToFileURL(join(SNAP, 'dist/test/helpers/bench-brokers.js')).href);
const { startRedis } = await import(pathToFileURL(join(SNAP, 'dist/test/helpers/redis-server.js')).href);
const { allProcessCpu, otherCpuSeconds, cpuSeconds } = await import(pathToFileURL(join(SNAP, 'dist/src/bench/limits.js')).href);
const { encode, Parser } = await import(pathToFileURL(join(SNAP, 'dist/src/codec/index.js')).href);
{
  const r = spawnSync(process.execPath, [MIDGE_MAIN, 'bench', '--help'], { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0 || !r.stdout.includes('comma list')) {
    console.error(`the build's 'midge bench' takes no port lists: ${r.stderr || r.stdout.slice(0, 300)}`);
    process.exit(2);
  }
  const b = spawnSync(process.execPath, [MIDGE_MAIN, 'broker', '--help'], { encoding: 'utf8', timeout: 20_000 });
  if (!b.stdout.includes('--redis')) {
    console.error('the build\'s midge broker has no --redis: not a cluster build');
    process.exit(2);
  }
}

// ------------------------------------------------------------------ running

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const work = mkdtempSync(join(tmpdir(), 'midge-cluster-bench-'));
/** what is running now, for the signal handlers: nodes, Redis, the generator and probe sockets, each stopped by its PID */
const live = { nodes: new Set(), redis: new Set(), gen: undefined, socks: new Set() };
async function stopAll() {
  for (const s of live.socks) s.destroy();
  live.socks.clear();
  if (live.gen?.exitCode === null) live.gen.kill('SIGKILL');
  live.gen = undefined;
  for (const b of [...live.nodes]) {
    await b.stop();
    live.nodes.delete(b);
  }
  for (const r of [...live.redis]) {
    await r.stop();
    live.redis.delete(r);
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

const BASE_EXTRA = 'max_inflight_messages 20';

/** A fresh Redis (when `cluster`) and `n` nodes; node i is `cluster_node_id n<i+1>`. */
async function startCluster(n, cluster, extra = '') {
  const redis = cluster ? await startRedis() : undefined;
  if (redis) live.redis.add(redis);
  const nodes = [];
  for (let i = 0; i < n; i++) {
    const lines = [BASE_EXTRA, extra];
    if (cluster) lines.push(`cluster_redis ${redis.url}`, `cluster_node_id n${i + 1}`);
    const node = await startBroker('midge', { dir: work, extraConfig: lines.filter(Boolean).join('\n'), readyTimeoutMs: 20_000 });
    live.nodes.add(node);
    nodes.push(node);
  }
  return { redis, nodes };
}
async function stopCluster(c) {
  for (const node of c?.nodes ?? []) {
    await node.stop();
    live.nodes.delete(node);
  }
  if (c?.redis) {
    await c.redis.stop();
    live.redis.delete(c.redis);
  }
}

/**
 * A minimal MQTT 3.1.1 connection (our codec). Resolves on the CONNACK with { connack, send, close, sock }
 * (a refusing CONNACK too: the caller looks at its code); packets after it go to `onPacket(packet, send)`, the socket's
 * close to `onClose`. Rejects when the socket fails or closes first, or after `timeoutMs`.
 */
function open(port, clientId, { clean = true, onPacket = () => {}, onClose = () => {}, timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    sock.setNoDelay(true);
    live.socks.add(sock);
    const parser = new Parser({ protocolVersion: 4 });
    const send = (q) => sock.write(encode(q, 4));
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
            resolve({ connack: p, sock, send, close: () => sock.end(encode({ type: 'disconnect' }, 4)) });
            return;
          }
          onPacket(p, send);
        });
      } catch (err) {
        sock.destroy();
        if (!acked) reject(err);
      }
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      live.socks.delete(sock);
      clearTimeout(timer);
      if (!acked) reject(new Error(`${clientId}: connection closed before CONNACK`));
      else onClose();
    });
    sock.write(encode({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean, keepalive: 60, clientId }, 4));
  });
}

/**
 * Until a QoS 0 message published on node `pubPort` reaches a subscriber on `subPort` (the bus is up and
 * the subscription index propagated), every 100 ms; bounded by 20 s. Resolves with the milliseconds it took.
 */
async function waitForRoute(pubPort, subPort) {
  const t0 = Date.now();
  let got = false;
  let onSuback;
  const suback = new Promise((r) => { onSuback = r; });
  const sub = await open(subPort, 'route-probe-sub', { onPacket: (p) => {
    if (p.type === 'suback') onSuback();
    if (p.type === 'publish' && p.topic === 'probe/route') got = true;
  } });
  let pub;
  try {
    sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'probe/route', qos: 0 }] });
    await Promise.race([suback, sleep(5000)]);
    pub = await open(pubPort, 'route-probe-pub');
    while (!got) {
      if (Date.now() - t0 > 20_000) throw new Error(`no message from port ${pubPort} reached a subscriber on port ${subPort} within 20 s`);
      pub.send({ type: 'publish', topic: 'probe/route', payload: Buffer.from('probe'), qos: 0, retain: false, dup: false });
      await sleep(100);
    }
    return Date.now() - t0;
  } finally {
    sub.close();
    pub?.close();
  }
}

function runGenerator(args, pubPorts, subPorts, timeoutMs) {
  return new Promise((resolve) => {
    const gen = spawn(process.execPath, [MIDGE_MAIN, 'bench', 'run', ...args, ...common, '-p', pubPorts.join(','), '--sub-port', subPorts.join(','), '--json', '--quiet'],
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

const r2 = (x) => Math.round(x * 100) / 100;

async function runOne(scenario, config, rep) {
  const sc = SCENARIOS[scenario];
  const lay = layout(config, sc.kind);
  const rec = { scenario, config, rep, layout: lay };
  let c;
  try {
    if (QUIET_WAIT > 0) rec.quiet = await waitForQuiet();
    c = await startCluster(lay.nodes, lay.cluster);
    const pubPorts = lay.pubs.map((i) => c.nodes[i].port);
    const subPorts = lay.subs.map((i) => c.nodes[i].port);
    if (lay.cluster) {
      rec.routeMs = [];
      for (const p of new Set(pubPorts)) for (const s of new Set(subPorts)) rec.routeMs.push(await waitForRoute(p, s));
    }
    await sleep(500);
    const cpu0 = c.nodes.map((n) => n.cpuS());
    const redis0 = c.redis ? cpuSeconds(c.redis.pid) : 0;
    const others0 = allProcessCpu();
    const res = await runGenerator(sc.args, pubPorts, subPorts, (WARMUP + DURATION + 1 + 120) * 1000);
    rec.nodeCpuS = c.nodes.map((n, i) => r2(n.cpuS() - cpu0[i]));
    if (c.redis) rec.redisCpuS = r2(cpuSeconds(c.redis.pid) - redis0);
    rec.genCpuS = res.json?.cpu?.totalS;
    rec.otherCpuS = otherCpuSeconds(others0, allProcessCpu(), [process.pid, res.pid ?? -1, ...c.nodes.map((n) => n.pid), c.redis?.pid ?? -1]);
    rec.nodeHwmKb = c.nodes.map((n) => n.hwmKb());
    rec.aliveAtEnd = c.nodes.every((n) => n.alive());
    rec.gen = res.json;
    if (res.json === undefined) rec.error = `generator: code ${res.code} signal ${res.signal}: ${res.stderr.slice(-500)}`;
    else if (!rec.aliveAtEnd) rec.error = 'a node exited during the run';
  } catch (err) {
    rec.error = err instanceof Error ? err.message : String(err);
  } finally {
    if (rec.error) rec.logs = c?.nodes.map((n) => n.logs().slice(-1500));
    await stopCluster(c);
  }
  return rec;
}

/** One SIGKILL: see the header. */
async function failoverOnce(rep) {
  const rec = { scenario: 'failover', config: `n${FAILOVER_NODES}`, rep };
  let c;
  const received = new Set();
  let dups = 0;
  const acked = new Set();
  let pubTimer;
  try {
    if (QUIET_WAIT > 0) rec.quiet = await waitForQuiet();
    // information: the adopter's "Cluster: node ... is gone" line
    c = await startCluster(FAILOVER_NODES, true, 'log_type information');
    const [victim, ...survivors] = c.nodes;
    rec.routeMs = await waitForRoute(survivors[0].port, victim.port);
    let firstAt = 0;
    let onMsg = () => {};
    const onPacket = (p, send) => {
      if (p.type !== 'publish' || !p.topic.startsWith('fo/')) return;
      if (p.qos > 0) send({ type: 'puback', packetId: p.packetId });
      const seq = p.payload.readUInt32BE(0);
      if (received.has(seq)) dups++;
      else received.add(seq);
      if (firstAt === 0) firstAt = Date.now();
      onMsg();
    };
    let lostAt = 0;
    let subacked;
    const suback = new Promise((r) => { subacked = r; });
    const first = await open(victim.port, 'fo-sub', { clean: false, onClose: () => { lostAt = Date.now(); }, onPacket: (p, send) => {
      if (p.type === 'suback') subacked();
      else onPacket(p, send);
    } });
    first.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'fo/#', qos: 1 }] });
    await Promise.race([suback, sleep(5000)]);
    // the publisher on a survivor: QoS 1, one message every 5 ms, seq in the payload
    const inflight = new Map();
    let nextPid = 1;
    const pub = await open(survivors[0].port, 'fo-pub', { onPacket: (p) => {
      if (p.type === 'puback' && inflight.has(p.packetId)) {
        acked.add(inflight.get(p.packetId));
        inflight.delete(p.packetId);
      }
    } });
    let seq = 0;
    pubTimer = setInterval(() => {
      if (inflight.size > 1000) return;
      const pid = nextPid;
      nextPid = nextPid === 65535 ? 1 : nextPid + 1;
      const payload = Buffer.alloc(16);
      payload.writeUInt32BE(++seq, 0);
      inflight.set(pid, seq);
      pub.send({ type: 'publish', topic: 'fo/x', payload, qos: 1, retain: false, dup: false, packetId: pid });
    }, 5);
    // the subscriber receives before the kill
    const t1 = Date.now();
    while (received.size < 50 && Date.now() - t1 < 10_000) await sleep(20);
    if (received.size < 50) throw new Error(`the subscriber on the victim received ${received.size} messages before the kill`);
    await sleep(500);
    const logLen = survivors.map((s) => s.logs().length);
    rec.seqAtKill = seq;
    rec.receivedBeforeKill = received.size;
    const t0 = Date.now();
    await victim.kill();
    live.nodes.delete(victim);
    rec.killMs = Date.now() - t0;
    let goneAt = 0;
    const watch = setInterval(() => {
      if (goneAt === 0 && survivors.some((s, i) => /Cluster: node n1 is gone/.test(s.logs().slice(logLen[i])))) goneAt = Date.now();
    }, 20);
    // the reconnect loop: survivors in turn, each attempt bounded
    if (RECONNECT_DELAY > 0) await sleep(RECONNECT_DELAY);
    firstAt = 0;
    let attempts = 0;
    let session;
    const errors = [];
    while (session === undefined && Date.now() - t0 < 60_000) {
      const node = survivors[attempts % survivors.length];
      attempts++;
      try {
        const s = await open(node.port, 'fo-sub', { clean: false, timeoutMs: 15_000, onPacket });
        if (s.connack.reasonCode !== 0) {
          errors.push(`CONNACK ${s.connack.reasonCode} after ${Date.now() - t0} ms`);
          s.sock.destroy();
          await sleep(100);
          continue;
        }
        session = s;
        rec.connackMs = Date.now() - t0;
        rec.sessionPresent = s.connack.sessionPresent;
        rec.reconnectedTo = `n${c.nodes.indexOf(node) + 1}`;
      } catch (err) {
        errors.push(`${err instanceof Error ? err.message : String(err)} after ${Date.now() - t0} ms`);
        await sleep(100);
      }
    }
    rec.attempts = attempts;
    rec.attemptErrors = errors.slice(0, 5);
    if (session === undefined) throw new Error(`no CONNACK 0 within 60 s of the kill (${errors.slice(-3).join('; ')})`);
    // the first message after the CONNACK (queued while it was away, or new)
    const tc = Date.now();
    while (firstAt === 0 && Date.now() - tc < 10_000) await sleep(5);
    rec.firstMessageMs = firstAt === 0 ? undefined : firstAt - t0;
    rec.subDisconnectedAfterKillMs = lostAt === 0 ? undefined : lostAt - t0;
    // one more second of traffic, then stop and wait for every acknowledged message (bounded)
    await sleep(1000);
    clearInterval(pubTimer);
    pubTimer = undefined;
    const td = Date.now();
    while (Date.now() - td < 10_000 && (inflight.size > 0 || [...acked].some((s) => !received.has(s)))) await sleep(50);
    clearInterval(watch);
    rec.adoptionLoggedMs = goneAt === 0 ? undefined : goneAt - t0;
    rec.published = seq;
    rec.acked = acked.size;
    rec.received = received.size;
    const lostSeqs = [...acked].filter((s) => !received.has(s)).sort((a, b) => a - b);
    rec.lost = lostSeqs.length;
    if (lostSeqs.length > 0) rec.lostSeqs = lostSeqs.slice(0, 50);
    rec.dups = dups;
    rec.survivorCpuS = survivors.map((s) => r2(s.cpuS()));
    const adoptLine = survivors.map((s) => /Cluster: node n1 is gone[^\n]*/.exec(s.logs())?.[0]).find(Boolean);
    if (adoptLine) rec.adoptLine = adoptLine;
    if (rec.lost > 0) rec.logs = c.nodes.map((n) => n.logs().slice(-3000));
    session.close();
    pub.close();
  } catch (err) {
    rec.error = err instanceof Error ? err.message : String(err);
    rec.logs = c?.nodes.map((n) => n.logs().slice(-1500));
  } finally {
    if (pubTimer) clearInterval(pubTimer);
    await stopCluster(c);
  }
  return rec;
}

// ------------------------------------------------------------------ report

const ratio = (a, b) => (a === undefined || b === undefined || b === 0 ? undefined : a / b);
const fmtRatio = (r) => (r === undefined ? 'n/a' : `${r.toFixed(2)}×`);
const ok = (records, s, c) => records.filter((r) => r.scenario === s && r.config === c && r.gen);
const val = (records, s, c, get) => median(ok(records, s, c).map((r) => get(r)));
const rate = (r) => r.gen.msgsPerS;

function throughputTable(records) {
  const ths = SELECTED.filter((s) => !SCENARIOS[s].latency && SCENARIOS[s].kind !== 'failover');
  if (ths.length === 0) return '';
  const cs = BASE_CONFIGS;
  const ratios = [];
  for (const c of cs) if (c !== 'local' && cs.includes('local')) ratios.push([c, 'local']);
  for (const c of cs) if (c.startsWith('n') && cs.includes('redis1')) ratios.push([c, 'redis1']);
  const lines = [`| scenario | ${cs.map((c) => `${LABEL[c]} msgs/s`).join(' | ')} | ${ratios.map(([a, b]) => `${a} / ${b}`).join(' | ')} |`];
  lines.push(`|---|${cs.map(() => '---:').join('|')}|${ratios.map(() => '---:').join('|')}|`);
  for (const s of ths) {
    const v = Object.fromEntries(cs.map((c) => [c, val(records, s, c, rate)]));
    lines.push(`| ${s} | ${cs.map((c) => fmt(v[c])).join(' | ')} | ${ratios.map(([a, b]) => fmtRatio(ratio(v[a], v[b]))).join(' | ')} |`);
  }
  return lines.join('\n');
}

/** CPU per run, and per message delivered: the measured costs the scaling model is built from. */
function cpuTable(records) {
  if (!SELECTED.some((x) => SCENARIOS[x].kind !== 'failover')) return '';
  const lines = ['| scenario | configuration | runs | msgs/s | published | delivered | node CPU s (n1, n2, ...) | redis-server CPU s | generator CPU s | others CPU s | µs CPU / delivery: nodes | µs CPU / published msg: Redis | lost, missing, dups (worst) |'];
  lines.push('|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|');
  for (const s of SELECTED.filter((x) => SCENARIOS[x].kind !== 'failover')) {
    for (const c of configsOf(s)) {
      const rs = records.filter((r) => r.scenario === s && r.config === c);
      const good = rs.filter((r) => r.gen);
      if (rs.length === 0) continue;
      const med = (f) => median(good.map(f));
      const nodes = good[0]?.nodeCpuS.length ?? 0;
      const nodeCpu = [...Array(nodes).keys()].map((i) => fmt(med((r) => r.nodeCpuS[i]))).join(', ');
      const perMsg = (f) => med((r) => (r.gen.receivedTotal > 0 ? (f(r) * 1e6) / r.gen.receivedTotal : undefined));
      const perPub = (f) => med((r) => (r.gen.sentTotal > 0 ? (f(r) * 1e6) / r.gen.sentTotal : undefined));
      const worst = (f) => (good.length ? Math.max(...good.map(f)) : undefined);
      lines.push(`| ${s} | ${LABEL[c]} | ${good.length}${rs.length > good.length ? ` (+${rs.length - good.length} failed)` : ''} | ${fmt(med(rate))} | ${fmt(med((r) => r.gen.sentTotal))} | ${fmt(med((r) => r.gen.receivedTotal))} | `
        + `${nodeCpu} | ${c === 'local' ? '' : fmt(med((r) => r.redisCpuS))} | ${fmt(med((r) => r.genCpuS))} | ${fmt(med((r) => r.otherCpuS))} | `
        + `${fmt(perMsg((r) => r.nodeCpuS.reduce((a, b) => a + b, 0)))} | ${c === 'local' ? '' : fmt(perPub((r) => r.redisCpuS))} | `
        + `${fmt(worst((r) => r.gen.lost))}, ${fmt(worst((r) => r.gen.missing))}, ${fmt(worst((r) => r.gen.dups))} |`);
    }
  }
  return lines.join('\n');
}

function latencyTable(records) {
  const lat = SELECTED.filter((s) => SCENARIOS[s].latency);
  if (lat.length === 0) return '';
  const lines = ['| scenario | configuration | p50 µs | p99 µs | p99.9 µs | msgs/s |', '|---|---|---:|---:|---:|---:|'];
  for (const s of lat) {
    for (const c of configsOf(s)) {
      lines.push(`| ${s} | ${LABEL[c]} | ${fmt(val(records, s, c, (r) => r.gen.latencyUs?.p50))} | ${fmt(val(records, s, c, (r) => r.gen.latencyUs?.p99))} | `
        + `${fmt(val(records, s, c, (r) => r.gen.latencyUs?.p999))} | ${fmt(val(records, s, c, rate))} |`);
    }
  }
  const pairs = [['n2-cross', 'n2-same'], ['n2-same', 'local'], ['redis1', 'local']];
  lines.push('', '| scenario | hop | added p50 µs | added p99 µs |', '|---|---|---:|---:|');
  for (const s of lat) {
    for (const [a, b] of pairs) {
      if (!configsOf(s).includes(a) || !configsOf(s).includes(b)) continue;
      const d = (get) => {
        const x = val(records, s, a, get);
        const y = val(records, s, b, get);
        return x === undefined || y === undefined ? 'n/a' : fmt(x - y);
      };
      lines.push(`| ${s} | ${LABEL[a]} − ${LABEL[b]} | ${d((r) => r.gen.latencyUs?.p50)} | ${d((r) => r.gen.latencyUs?.p99)} |`);
    }
  }
  return lines.join('\n');
}

function failoverTable(records) {
  const fo = records.filter((r) => r.scenario === 'failover');
  if (fo.length === 0) return '';
  const lines = ['| run | adoption logged ms | CONNACK ms | session present | first message ms | attempts | published | acknowledged | received | lost | dups |',
    '|---:|---:|---:|:---:|---:|---:|---:|---:|---:|---:|---:|'];
  for (const r of fo) {
    if (r.error) {
      lines.push(`| ${r.rep} | ERROR: ${r.error.split('\n')[0].slice(0, 200)} | | | | | | | | | |`);
      continue;
    }
    lines.push(`| ${r.rep} | ${fmt(r.adoptionLoggedMs)} | ${fmt(r.connackMs)} | ${r.sessionPresent ? 'yes' : 'NO'} | ${fmt(r.firstMessageMs)} | ${r.attempts} | `
      + `${fmt(r.published)} | ${fmt(r.acked)} | ${fmt(r.received)} | ${r.lost} | ${r.dups} |`);
  }
  const good = fo.filter((r) => !r.error);
  if (good.length > 1) {
    lines.push(`| median | ${fmt(median(good.map((r) => r.adoptionLoggedMs)))} | ${fmt(median(good.map((r) => r.connackMs)))} | | ${fmt(median(good.map((r) => r.firstMessageMs)))} | | | | | ${Math.max(...good.map((r) => r.lost))} (worst) | |`);
  }
  return lines.join('\n');
}

function machine() {
  const redis = spawnSync('/usr/bin/redis-server', ['--version'], { encoding: 'utf8' });
  return { ...host(ROOT), redis: (redis.stdout || '').trim().split(' ').slice(0, 3).join(' ') };
}

// ------------------------------------------------------------------ main

const started = new Date();
const m = machine();
console.error(`# cluster bench: ${SELECTED.join(', ')}; configs ${BASE_CONFIGS.join(', ')}; ×${REPEAT}; ${DURATION} s each; ${m.nproc} CPUs (${m.cpuModel})`);
const records = [];
try {
  for (const s of SELECTED) {
    if (SCENARIOS[s].kind === 'failover') {
      for (let rep = 1; rep <= FAILOVER_REPEAT; rep++) {
        const rec = await failoverOnce(rep);
        records.push(rec);
        console.error(`failover #${rep}: ${rec.error ? `ERROR ${rec.error.split('\n')[0]}` : `adoption logged ${rec.adoptionLoggedMs} ms, CONNACK ${rec.connackMs} ms (session present ${rec.sessionPresent}), first message ${rec.firstMessageMs} ms, ${rec.attempts} attempt(s), acked ${rec.acked}, received ${rec.received}, lost ${rec.lost}${rec.lostSeqs ? ` (seqs ${rec.lostSeqs.slice(0, 10).join(",")}; seq at kill ${rec.seqAtKill}, received before kill ${rec.receivedBeforeKill})` : ""}, dups ${rec.dups}`}`);
      }
      continue;
    }
    const cs = configsOf(s);
    for (let rep = 1; rep <= REPEAT; rep++) {
      const order = cs.map((_, i) => cs[(i + rep - 1) % cs.length]);
      for (const c of order) {
        const rec = await runOne(s, c, rep);
        records.push(rec);
        const g = rec.gen;
        const what = rec.error ? `ERROR ${rec.error.split('\n')[0]}`
          : `${g.msgsPerS} msgs/s, p50 ${g.latencyUs?.p50} µs, p99 ${g.latencyUs?.p99} µs, lost ${g.lost}, missing ${g.missing}`;
        console.error(`${s} ${c} #${rep}: ${what}; CPU nodes ${rec.nodeCpuS?.join('/')} s${rec.redisCpuS !== undefined ? `, redis ${rec.redisCpuS} s` : ''}, generator ${rec.genCpuS} s, others ${rec.otherCpuS} s`);
      }
    }
  }
} finally {
  await stopAll();
  rmSync(work, { recursive: true, force: true });
}

const q1 = records.filter((r) => r.gen && SCENARIOS[r.scenario].args?.includes('-q') && SCENARIOS[r.scenario].args[SCENARIOS[r.scenario].args.indexOf('-q') + 1] === '1');
const q1Loss = q1.filter((r) => r.gen.lost + r.gen.missing > 0);
const foLoss = records.filter((r) => r.scenario === 'failover' && !r.error && r.lost > 0);
const md = [
  `Run ${started.toISOString()} (commit ${m.commit}): ${m.nproc} CPUs (${m.cpuModel}), ${m.memGiB} GiB RAM; node ${m.node}; ${m.redis} (no persistence).`,
  `DURATION=${DURATION} s measured (+${WARMUP} s warmup, 1 s drain) per run, REPEAT=${REPEAT} (configurations alternating; fresh Redis and nodes per run), values are medians.`
    + ' Every node, redis-server and the load generator share the host\'s CPUs.',
  '',
  throughputTable(records),
  '',
  cpuTable(records),
  '',
  latencyTable(records),
  '',
  failoverTable(records),
  '',
  `QoS 1: lost + undelivered = 0 in every run: ${q1.length === 0 ? 'n/a' : q1Loss.length === 0 ? 'yes' : `NO (${q1Loss.map((r) => `${r.scenario} ${r.config} #${r.rep}`).join(', ')})`}.`
    + `${records.some((r) => r.scenario === 'failover') ? ` Failover: every acknowledged message received: ${foLoss.length === 0 ? 'yes' : 'NO'}.` : ''}`,
  '',
].join('\n');
mkdirSync(OUT, { recursive: true });
const stamp = started.toISOString().replace(/[:.]/g, '-');
writeFileSync(join(OUT, `cluster-${stamp}.json`), JSON.stringify({ machine: m, env: { DURATION, REPEAT, QUICK, RATE, CONFIGS: BASE_CONFIGS, SCENARIOS: SELECTED, FAILOVER_REPEAT, FAILOVER_NODES, RECONNECT_DELAY }, records }, null, 1));
writeFileSync(join(OUT, 'cluster-latest.md'), md);
process.stdout.write(`\n${md}`);
const failed = records.filter((r) => r.error).length;
if (failed > 0) console.error(`${failed} run(s) failed; see ${join(OUT, `cluster-${stamp}.json`)}`);
process.exitCode = failed > 0 || q1Loss.length > 0 || foLoss.length > 0 ? 1 : 0;
