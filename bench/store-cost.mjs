#!/usr/bin/env node
// Where the durable store's cost goes in the publish into an offline queue (BENCHMARKS.md "What the
// durable store costs, part by part"): the same load (`midge bench`, 10 publishers send N QoS 1
// messages, inflight 64 each, to one offline persistent subscriber, which then reconnects and drains)
// against an embedded broker (`createBroker` from dist/) with more of the store's work each time:
//
//   memory         no store (what `persistence false` runs)
//   recorder       the Recorder and a store that answers each commit at the next turn, doing nothing:
//                  recording the changes, holding and releasing the acknowledgements
//   recorder+enc   the same store also encodes each commit as the SQLite store's thread store does
//   sqlite-thread  the SQLite store on its own thread (what `persistence true` runs)
//   sqlite-main    the SQLite store on the event loop's thread (not shipped: a fold of a large journal
//                  would stop every client for its duration)
//   sqlite-fsync   sqlite-thread with fsync (midge_persistence_fsync true)
//
//   npm run build && node bench/store-cost.mjs
//
// LOAD=fanin runs the durable fan-in instead (bench/run.mjs persist_fanin_q1: 10 publishers, inflight
// 64 and window 64 each, to one persistent subscriber online; the broker's default in-flight window of
// 20): its figure is the messages received per second over DURATION seconds after a 1 s warm-up.
//
// Environment: REPEAT (default 3: rounds, the variants alternating in each), N (default 100000),
// VARIANTS (comma list, default all), LOAD (offline or fanin), DURATION (fanin: default 5 s), W0=1
// (fanin: max_inflight_messages 0, as persist_fanin_q1_w0), WINDOW (max_inflight_messages for either load;
// offline runs with 0 unless it is set: WINDOW=20 is persist_offline_q1's drain), MIDGE_NODE_ARGS (extra node flags for the
// broker, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof": a profile is written when it stops). Each run gets a fresh broker process on a free port of 127.0.0.1
// and a fresh store directory; the broker is stopped by its PID. Medians; ratios to `memory` of the
// same run. The broker runs with the node flags `midge` runs with.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createServer } from 'node:net';
import { fmt, host, knob, list, median } from './common.mjs';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const DIST = join(ROOT, 'dist/src');
const VARIANTS = ['memory', 'recorder', 'recorder+enc', 'sqlite-thread', 'sqlite-main', 'sqlite-fsync'];

/** The broker side: one variant on `port`, its store (if any) in `dir`; prints "ready" once listening. */
async function serve(variant, port, dir, load) {
  const imp = (p) => import(pathToFileURL(join(DIST, p)).href);
  const { createBroker } = await imp('broker/broker.js');
  let store;
  if (variant === 'recorder' || variant === 'recorder+enc') {
    const { encodeCommit } = await imp('store/journal.js');
    const encode = variant === 'recorder+enc';
    const empty = { async *[Symbol.asyncIterator]() {} };
    store = {
      kind: 'sqlite', pipeline: 2,
      loadMeta: async () => ({ lastMessageId: 0, lastSeq: 0 }),
      loadSessions: () => empty, loadSubscriptions: () => empty, loadRetained: () => empty,
      loadSession: async () => undefined,
      loadWindow: async () => ({ inflight: [], queued: [], incomingQos2: [] }),
      loadWills: async () => [],
      commit: (changes) => {
        if (encode && changes.length > 0) encodeCommit(changes);
        return new Promise((resolve) => setImmediate(resolve));
      },
      close: async () => {},
    };
  } else if (variant === 'sqlite-thread' || variant === 'sqlite-fsync') {
    const { openSqliteThreadStore } = await imp('store/sqlite-thread.js');
    store = await openSqliteThreadStore({ file: join(dir, 'midge.db'), fsync: variant === 'sqlite-fsync' });
  } else if (variant === 'sqlite-main') {
    const { openSqliteStore } = await imp('store/sqlite.js');
    store = await openSqliteStore({ file: join(dir, 'midge.db') });
  }
  const broker = createBroker({
    listeners: [{ port, host: '127.0.0.1' }], ...window(load), maxQueuedMessages: 1_000_000, maxQueuedBytes: 0, store,
  });
  await broker.start();
  await broker.listen();
  console.log('ready');
  process.on('SIGTERM', () => {
    broker.close().then(() => process.exit(0), () => process.exit(1));
  });
}

/** the broker's in-flight window: WINDOW if set; else fanin its default (20) unless W0, offline none (0) */
function window(load) {
  if (process.env.WINDOW !== undefined) return { maxInflightMessages: Number(process.env.WINDOW) };
  return load === 'fanin' && !process.env.W0 ? {} : { maxInflightMessages: 0 };
}

/** the broker's CPU seconds (src/bench/limits.ts), loaded by main() */
let cpuSeconds;

async function main() {
  const REPEAT = knob('REPEAT', 3, 1, 50);
  const N = knob('N', 100_000, 100, 1_000_000);
  const variants = list('VARIANTS', VARIANTS.join(','), VARIANTS);
  const load = list('LOAD', 'offline', ['offline', 'fanin'])[0];
  const duration = knob('DURATION', 5, 1, 120);
  const { NODE_FLAGS } = await import(pathToFileURL(join(DIST, 'cli/node-flags.js')).href);
  ({ cpuSeconds } = await import(pathToFileURL(join(DIST, 'bench/limits.js')).href));
  const results = new Map(variants.map((v) => [v, []]));
  for (let r = 1; r <= REPEAT; r++) {
    for (const v of variants) {
      const res = await runOnce(v, N, NODE_FLAGS, load, duration);
      results.get(v).push(res);
      if (load === 'fanin') console.log(`${v} #${r}: received ${fmt(res.publish)}/s, broker CPU ${res.cpuS.toFixed(2)} s, lost ${res.lost}, missing ${res.missing}`);
      else console.log(`${v} #${r}: published ${fmt(res.publish)}/s, drained ${fmt(res.drain)}/s, broker CPU ${res.cpuS.toFixed(2)} s, lost ${res.lost}, missing ${res.missing}`);
    }
  }
  const h = host(ROOT);
  const what = load === 'fanin' ? `LOAD=fanin, DURATION=${duration}` : `N=${N}`;
  console.log(`\nRun ${new Date().toISOString()} (commit ${h.commit}): ${h.nproc} CPUs (${h.cpuModel}); node ${h.node}; ${what}, REPEAT=${REPEAT}, medians.`);
  const base = results.get('memory');
  const mPub = base ? median(base.map((x) => x.publish)) : undefined;
  const mDrain = base ? median(base.map((x) => x.drain)) : undefined;
  if (load === 'fanin') console.log('| variant | received msgs/s | / memory | broker CPU s | lost + missing (worst) |\n|---|---:|---:|---:|---:|');
  else console.log('| variant | publish msgs/s | / memory | drain msgs/s | / memory | broker CPU s | lost + missing (worst) |\n|---|---:|---:|---:|---:|---:|---:|');
  for (const v of variants) {
    const xs = results.get(v);
    const pub = median(xs.map((x) => x.publish));
    const drain = median(xs.map((x) => x.drain));
    const ratio = (a, b) => (a === undefined || b === undefined ? 'n/a' : `${(a / b).toFixed(2)}×`);
    const worst = Math.max(...xs.map((x) => x.lost + x.missing));
    const cpu = fmt(median(xs.map((x) => x.cpuS)));
    if (load === 'fanin') console.log(`| ${v} | ${fmt(pub)} | ${ratio(pub, mPub)} | ${cpu} | ${worst} |`);
    else console.log(`| ${v} | ${fmt(pub)} | ${ratio(pub, mPub)} | ${fmt(drain)} | ${ratio(drain, mDrain)} | ${cpu} | ${worst} |`);
  }
}

/** One run: a fresh broker of `variant`, the load, its figures; the broker is stopped by its PID. */
async function runOnce(variant, n, nodeFlags, load, duration) {
  const dir = mkdtempSync(join(tmpdir(), 'midge-store-cost-'));
  const port = await freePort();
  const extra = (process.env.MIDGE_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const child = spawn(process.execPath, [...nodeFlags, ...extra, fileURLToPath(import.meta.url), '--serve', variant, String(port), dir, load], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  try {
    const deadline = Date.now() + 20_000;
    while (!out.includes('ready')) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${variant}: the broker did not start: ${out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const cpu0 = cpuSeconds(child.pid);
    const shape = load === 'fanin'
      ? ['--window', '64', '--persistent', '--warmup', '1', '-d', String(duration), '--drain', '1']
      : ['--offline', '-n', String(Math.ceil(n / 10)), '-d', '120'];
    const gen = spawnSync(process.execPath, [join(DIST, 'cli/main.js'), 'bench', 'run', '-p', String(port), '--pubs', '10', '--subs', '1', '--topics', '10',
      '--wildcard', '-q', '1', '--inflight', '64', ...shape, '-s', '64'], { encoding: 'utf8', timeout: 180_000 });
    const cpuS = cpuSeconds(child.pid) - cpu0;
    const text = `${gen.stdout}${gen.stderr}`;
    const num = (re) => {
      const m = re.exec(text);
      return m === null ? undefined : Number(m[1].replaceAll(',', ''));
    };
    const publish = load === 'fanin' ? num(/received\s+[\d,]+ \(([\d,]+) msgs\/s\)/) : num(/published .*?: ([\d,]+) msgs\/s/);
    const drain = load === 'fanin' ? 0 : num(/drained .*?: ([\d,]+) msgs\/s/);
    const lost = num(/lost \(gaps\)\s+([\d,]+)/);
    const missing = num(/missing at end\s+([\d,]+)/);
    if (publish === undefined || drain === undefined || lost === undefined || missing === undefined) throw new Error(`${variant}: the generator's report was not read:\n${text}`);
    return { publish, drain, lost, missing, cpuS };
  } finally {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

if (process.argv[2] === '--serve') await serve(process.argv[3], Number(process.argv[4]), process.argv[5], process.argv[6]);
else await main();
