#!/usr/bin/env node
// Restart time with a large store: Midge `persistence true` against mosquitto `persistence true`.
//
//   npm run build && node bench/restart.mjs
//   QUICK=1 node bench/restart.mjs            (10,000 retained, 1,000 sessions)
//
// Per broker: a fresh store is filled with RETAINED retained messages (QoS 1, 64 B, distinct topics)
// and SESSIONS persistent sessions (clean session false, one QoS 1 subscription each, disconnected).
// Then, REPEAT times: stop the broker, start it again on the same store and port, and measure the
// time from spawn until the port accepts a connection (Midge restores the store before it listens;
// mosquitto loads its mosquitto.db before it listens), and Midge's own "Store: restored ... in N ms"
// log line. After the first restart everything is checked: a subscriber to 'ret/#' must receive every
// retained message, and every session must come back with "session present".
//   Midge:     stopped by SIGKILL (a crash: the store is what was committed) and, separately, by SIGTERM.
//   mosquitto: stopped by SIGTERM only (it writes mosquitto.db on a clean exit; after a SIGKILL it
//              has only its last autosave, here none).
//
// Environment: RETAINED (default 100000; QUICK 10000), SESSIONS (10000; QUICK 1000), REPEAT (2),
// BROKERS (midge-persist,mosquitto-persist), OUT (bench/results). Every broker runs on 127.0.0.1 and
// is stopped by its PID, also on failure. Results: OUT/restart-latest.md and OUT/restart-<stamp>.json.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(HERE);
const env = process.env;
function knob(name, fallback, min, max) {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) {
    console.error(`${name}=${raw}: expected an integer from ${min} to ${max}`);
    process.exit(2);
  }
  return v;
}
const QUICK = env.QUICK === '1';
const RETAINED = knob('RETAINED', QUICK ? 10000 : 100000, 1, 2_000_000);
const SESSIONS = knob('SESSIONS', QUICK ? 1000 : 10000, 1, 100_000);
const REPEAT = knob('REPEAT', QUICK ? 1 : 2, 1, 20);
const BROKERS = (env.BROKERS ?? 'midge-persist,mosquitto-persist').split(',').map((s) => s.trim()).filter(Boolean);
const OUT = env.OUT ?? join(HERE, 'results');
for (const b of BROKERS) {
  if (!['midge-persist', 'midge-fsync', 'mosquitto-persist'].includes(b)) {
    console.error(`unknown broker '${b}' (midge-persist, midge-fsync, mosquitto-persist)`);
    process.exit(2);
  }
}

// the build under test is copied first (see run.mjs)
const SNAP = join(HERE, '.snapshot-restart');
if (!existsSync(join(ROOT, 'dist/src/cli/main.js'))) {
  console.error('dist/src/cli/main.js is missing: build first (npm run build)');
  process.exit(2);
}
rmSync(SNAP, { recursive: true, force: true });
cpSync(join(ROOT, 'dist/src'), join(SNAP, 'dist/src'), { recursive: true });
cpSync(join(ROOT, 'dist/test/helpers/bench-brokers.js'), join(SNAP, 'dist/test/helpers/bench-brokers.js'));
const { startBroker } = await import(pathToFileURL(join(SNAP, 'dist/test/helpers/bench-brokers.js')).href);
const { encode, Parser } = await import(pathToFileURL(join(SNAP, 'dist/src/codec/index.js')).href);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A minimal MQTT 3.1.1 connection for filling and checking the store: CONNECT (clean session as
 * asked), then packets to `onPacket`; `connack` resolves with the CONNACK. Bounded by `timeoutMs`.
 */
function open(port, clientId, clean, onPacket = () => {}, timeoutMs = 20_000) {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    sock.setNoDelay(true);
    const parser = new Parser({ protocolVersion: 4 });
    let acked = false;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`${clientId}: no CONNACK within ${timeoutMs} ms`));
    }, timeoutMs);
    const conn = {
      sock,
      send: (p) => sock.write(encode(p, 4)),
      close: () => new Promise((res) => {
        if (sock.destroyed) return res();
        sock.once('close', () => res());
        sock.end(encode({ type: 'disconnect' }, 4));
        setTimeout(() => sock.destroy(), 2000).unref();
      }),
    };
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
              resolve({ ...conn, sessionPresent: p.sessionPresent });
            }
            return;
          }
          onPacket(p);
        });
      } catch (err) {
        sock.destroy();
        reject(err);
      }
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      if (!acked) reject(err);
    });
    sock.write(encode({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean, keepalive: 60, clientId }, 4));
  });
}

/** Runs `fn(i)` for i in [0, n) with at most `par` at once. */
async function pool(n, par, fn) {
  let next = 0;
  const worker = async () => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(par, n) }, worker));
}

const sessionId = (i) => `restart-s${i}`;
const payload = Buffer.alloc(64, 0x61);

/** SESSIONS persistent sessions, each subscribed to its own filter at QoS 1, disconnected. */
async function fillSessions(port) {
  await pool(SESSIONS, 32, async (i) => {
    let subacked;
    const got = new Promise((r) => { subacked = r; });
    const c = await open(port, sessionId(i), false, (p) => { if (p.type === 'suback') subacked(p); });
    c.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: `sess/${i}/#`, qos: 1 }] });
    const t = setTimeout(() => subacked(undefined), 20_000);
    const s = await got;
    clearTimeout(t);
    if (s === undefined || (s.reasonCodes[0] ?? 0x80) >= 0x80) throw new Error(`session ${i}: no SUBACK`);
    await c.close();
  });
}

/** RETAINED retained messages, QoS 1 (each acknowledged), over 4 connections with 100 in flight each. */
async function fillRetained(port) {
  const conns = 4;
  const per = Math.ceil(RETAINED / conns);
  await Promise.all(Array.from({ length: conns }, async (_, k) => {
    const from = k * per;
    const to = Math.min(RETAINED, from + per);
    let inflight = 0;
    let wake;
    const c = await open(port, `restart-fill${k}`, true, (p) => {
      if (p.type === 'puback') {
        inflight--;
        wake?.();
      }
    });
    let pid = 1;
    const deadline = Date.now() + 600_000;
    for (let n = from; n < to; n++) {
      while (inflight >= 100) {
        if (Date.now() > deadline) throw new Error('retained fill: no PUBACKs');
        await new Promise((r) => { wake = r; setTimeout(r, 1000); });
      }
      inflight++;
      c.send({ type: 'publish', topic: `ret/${Math.floor(n / 1000)}/${n}`, payload, qos: 1, retain: true, dup: false, packetId: pid });
      pid = pid === 65535 ? 1 : pid + 1;
    }
    while (inflight > 0) {
      if (Date.now() > deadline) throw new Error('retained fill: no PUBACKs');
      await new Promise((r) => { wake = r; setTimeout(r, 1000); });
    }
    await c.close();
  }));
}

/** A subscriber to 'ret/#' counts the retained messages it receives (bounded: 5 s without one, 120 s in all). */
async function countRetained(port) {
  let n = 0;
  let last = Date.now();
  const c = await open(port, 'restart-check', true, (p) => {
    if (p.type === 'publish' && p.retain) {
      n++;
      last = Date.now();
    }
  });
  c.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'ret/#', qos: 0 }] });
  const t0 = Date.now();
  while (n < RETAINED && Date.now() - last < 5000 && Date.now() - t0 < 120_000) await sleep(50);
  await c.close();
  return n;
}

/** How many of the sessions come back with "session present" (clean session false again). */
async function countSessions(port) {
  let present = 0;
  await pool(SESSIONS, 32, async (i) => {
    const c = await open(port, sessionId(i), false);
    if (c.sessionPresent) present++;
    await c.close();
  });
  return present;
}

function duKb(dir) {
  const r = spawnSync('du', ['-sk', dir], { encoding: 'utf8', timeout: 10_000 });
  const v = Number(r.stdout.split(/\s/)[0]);
  return Number.isFinite(v) ? v : undefined;
}

const work = mkdtempSync(join(tmpdir(), 'midge-restart-'));
let live;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    console.error(`\n${sig}: stopping`);
    Promise.resolve(live?.kill()).finally(() => process.exit(130));
  });
}

async function measure(kind) {
  const rec = { broker: kind, restarts: [] };
  const dataDir = mkdtempSync(join(work, `${kind}-data-`));
  const opts = { dir: work, dataDir, extraConfig: 'log_type information', readyTimeoutMs: 300_000 };
  let b = await startBroker(kind, opts);
  live = b;
  const port = b.port;
  rec.emptyReadyMs = Math.round(performance.now()) - b.spawnedAt; // the same start with an empty store
  try {
    let t = Date.now();
    await fillSessions(port);
    rec.fillSessionsS = (Date.now() - t) / 1000;
    t = Date.now();
    await fillRetained(port);
    rec.fillRetainedS = (Date.now() - t) / 1000;
    console.error(`${kind}: filled ${SESSIONS} sessions in ${rec.fillSessionsS} s, ${RETAINED} retained in ${rec.fillRetainedS} s`);
    const ways = kind.startsWith('midge') ? ['SIGKILL', 'SIGTERM'] : ['SIGTERM'];
    for (let rep = 1; rep <= REPEAT; rep++) {
      for (const how of ways) {
        const t0 = Date.now();
        if (how === 'SIGKILL') await b.kill();
        else await b.stop(120_000);
        const stopMs = Date.now() - t0;
        const storeKb = duKb(dataDir);
        b = await startBroker(kind, { ...opts, port });
        live = b;
        const readyMs = Math.round(performance.now()) - b.spawnedAt;
        const restored = /Store: restored (.*) in (\d+) ms/.exec(b.logs());
        const r = { rep, how, stopMs, storeKb, readyMs, restoreMs: restored ? Number(restored[2]) : undefined, restoredLine: restored?.[1], rssMb: Math.round(b.rssKb() / 1024) };
        if (rep === 1 && how === ways[0]) {
          t = Date.now();
          r.retainedAfter = await countRetained(port);
          r.sessionsPresent = await countSessions(port);
          r.checkS = (Date.now() - t) / 1000;
        }
        rec.restarts.push(r);
        console.error(`${kind} #${rep} after ${how}: stop ${stopMs} ms, store ${storeKb} KiB, ready in ${readyMs} ms`
          + `${r.restoreMs !== undefined ? ` (restore ${r.restoreMs} ms: ${r.restoredLine})` : ''}, RSS ${r.rssMb} MiB`
          + `${r.retainedAfter !== undefined ? `; after it: ${r.retainedAfter} of ${RETAINED} retained, ${r.sessionsPresent} of ${SESSIONS} sessions present` : ''}`);
      }
    }
  } catch (err) {
    rec.error = err instanceof Error ? err.message : String(err);
    console.error(`${kind}: ERROR ${rec.error}\n${b.logs().slice(-1500)}`);
  } finally {
    await b.stop(120_000);
    live = undefined;
    rmSync(dataDir, { recursive: true, force: true });
  }
  return rec;
}

function median(xs) {
  const v = xs.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

const started = new Date();
const records = [];
try {
  for (const kind of BROKERS) records.push(await measure(kind));
} finally {
  rmSync(work, { recursive: true, force: true });
}
const NAMES = { 'midge-persist': 'Midge persist', 'midge-fsync': 'Midge persist+fsync', 'mosquitto-persist': 'Mosquitto persist' };
const lines = [
  `Run ${started.toISOString()}: ${availableParallelism()} CPUs (${cpus()[0]?.model}); node ${process.version}; commit ${spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim()}.`,
  `Store: ${RETAINED} retained messages (64 B) + ${SESSIONS} persistent sessions (one QoS 1 subscription each); ${REPEAT} restart(s) per way, medians.`,
  '',
  '| broker | stopped by | stop ms | store MiB | spawn → listening ms | same, empty store | of which restore ms (log) | RSS after MiB | retained after restart | sessions present after restart | fill: sessions s, retained s |',
  '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|',
];
for (const r of records) {
  for (const how of ['SIGKILL', 'SIGTERM']) {
    const rs = r.restarts.filter((x) => x.how === how);
    if (rs.length === 0) continue;
    const check = rs.find((x) => x.retainedAfter !== undefined);
    const mb = median(rs.map((x) => x.storeKb));
    lines.push(`| ${NAMES[r.broker]} | ${how} | ${median(rs.map((x) => x.stopMs))} | ${mb === undefined ? 'n/a' : (mb / 1024).toFixed(1)} | ${median(rs.map((x) => x.readyMs))} | ${r.emptyReadyMs} | `
      + `${median(rs.map((x) => x.restoreMs)) ?? 'n/a'} | ${median(rs.map((x) => x.rssMb))} | ${check ? `${check.retainedAfter} of ${RETAINED}` : ''} | `
      + `${check ? `${check.sessionsPresent} of ${SESSIONS}` : ''} | ${r.fillSessionsS}, ${r.fillRetainedS} |`);
  }
  if (r.error) lines.push(`| ${NAMES[r.broker]} | ERROR: ${r.error.split('\n')[0]} ||||||||||`);
}
const md = lines.join('\n') + '\n';
mkdirSync(OUT, { recursive: true });
const stamp = started.toISOString().replace(/[:.]/g, '-');
writeFileSync(join(OUT, `restart-${stamp}.json`), JSON.stringify({ env: { RETAINED, SESSIONS, REPEAT, QUICK }, records }, null, 1));
writeFileSync(join(OUT, 'restart-latest.md'), md);
process.stdout.write(`\n${md}`);
process.exitCode = records.some((r) => r.error) ? 1 : 0;
