// How many QoS 1 messages a broker keeps unacknowledged for one subscriber (its in-flight window,
// max_inflight_messages, 20 by default in Midge and mosquitto), checked with a raw MQTT 3.1.1 client
// that acknowledges only the first K PUBLISHes it receives and then counts what else arrives.
//
//   npm run build && node bench/window-check.mjs
//
// Two ways, each with a fresh broker (its own defaults: no configuration but the listener):
//   offline: the subscriber (clean session false) subscribes to w/# at QoS 1 and disconnects, a
//            publisher sends N QoS 1 messages and gets every PUBACK, the subscriber reconnects.
//   online:  the subscriber stays connected while the publisher sends the N messages.
// A broker that keeps to a window of W sends K + W messages at most (K acknowledged, W not).
// Environment: BROKERS (default midge,mosquitto), N (default 500), KS (default 0,1,5,50), QUIET_MS
// (default 500: the subscriber stops counting after this long without a packet; 5 s at most).
// Every broker runs on 127.0.0.1 and is stopped by its PID.
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { startBroker } = await import(pathToFileURL(join(ROOT, 'dist/test/helpers/bench-brokers.js')).href);

function int(name, dflt, min, max) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) {
    console.error(`${name}: expected an integer from ${min} to ${max}, not '${raw}'`);
    process.exit(2);
  }
  return v;
}
const N = int('N', 500, 1, 60000);
const QUIET_MS = int('QUIET_MS', 500, 50, 5000);
const KS = (process.env.KS ?? '0,1,5,50').split(',').map((k) => {
  const v = Number(k);
  if (!Number.isInteger(v) || v < 0 || v > N) {
    console.error(`KS: expected integers from 0 to N (${N}), not '${k}'`);
    process.exit(2);
  }
  return v;
});
const BROKERS = (process.env.BROKERS ?? 'midge,mosquitto').split(',').filter(Boolean);
for (const b of BROKERS) {
  if (b !== 'midge' && b !== 'mosquitto') {
    console.error(`BROKERS: midge or mosquitto, not '${b}'`);
    process.exit(2);
  }
}

const str = (s) => { const b = Buffer.from(s); const l = Buffer.alloc(2); l.writeUInt16BE(b.length); return Buffer.concat([l, b]); };
const u16 = (n) => { const b = Buffer.alloc(2); b.writeUInt16BE(n); return b; };
function packet(first, body) {
  const len = [];
  let n = body.length;
  do { let d = n % 128; n = Math.floor(n / 128); if (n > 0) d |= 128; len.push(d); } while (n > 0);
  return Buffer.concat([Buffer.from([first, ...len]), body]);
}
const CONNECT = (id, clean) => packet(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, clean ? 2 : 0]), u16(60), str(id)]));

/** A connection that hands out whole packets ({ type, flags, body }) in order. */
class Raw {
  constructor(port) {
    this.sock = net.connect(port, '127.0.0.1');
    this.sock.setNoDelay(true);
    this.buf = Buffer.alloc(0);
    this.packets = [];
    this.waiters = [];
    this.closed = false;
    this.sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.split(); });
    this.sock.on('error', () => undefined);
    this.sock.on('close', () => { this.closed = true; this.wake(); });
  }
  split() {
    for (;;) {
      let len = 0; let mul = 1; let i = 1;
      for (;; i++) {
        if (i >= this.buf.length) return;
        len += (this.buf[i] & 127) * mul; mul *= 128;
        if ((this.buf[i] & 128) === 0) break;
      }
      if (this.buf.length < i + 1 + len) return;
      this.packets.push({ type: this.buf[0] >> 4, flags: this.buf[0] & 15, body: this.buf.subarray(i + 1, i + 1 + len) });
      this.buf = this.buf.subarray(i + 1 + len);
      this.wake();
    }
  }
  wake() { for (const w of this.waiters.splice(0)) w(); }
  /** the next packet, or undefined after `ms` without one (or once the connection is closed) */
  async next(ms) {
    if (this.packets.length === 0 && !this.closed) {
      await new Promise((resolve) => {
        const t = setTimeout(resolve, ms);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return this.packets.shift();
  }
  async expect(type, what) {
    const p = await this.next(5000);
    if (p?.type !== type) throw new Error(`${what}: expected packet type ${type}, got ${p === undefined ? 'nothing' : p.type}`);
    return p;
  }
  send(b) { this.sock.write(b); }
  close() { this.sock.destroy(); }
}

/** The subscriber's side once messages flow: acknowledge the first k PUBLISHes, count all. */
async function count(sub, k) {
  let received = 0;
  let acked = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 5000) {
    const p = await sub.next(QUIET_MS);
    if (p === undefined) break;
    if (p.type !== 3) continue;
    received++;
    if (acked < k) {
      const topicLen = p.body.readUInt16BE(0);
      sub.send(packet(0x40, p.body.subarray(2 + topicLen, 4 + topicLen)));
      acked++;
    }
  }
  return { received, acked };
}

async function publishAll(port) {
  const pub = new Raw(port);
  pub.send(CONNECT('wc-pub', true));
  await pub.expect(2, 'publisher CONNACK');
  for (let i = 0; i < N; i++) pub.send(packet(0x32, Buffer.concat([str('w/x'), u16((i % 65535) + 1), Buffer.from('hello')])));
  let acks = 0;
  while (acks < N) {
    const p = await pub.next(10_000);
    if (p === undefined) throw new Error(`publisher: ${acks} of ${N} PUBACKs`);
    if (p.type === 4) acks++;
  }
  pub.close();
}

async function subscribe(port) {
  const sub = new Raw(port);
  sub.send(CONNECT('wc-sub', false));
  await sub.expect(2, 'subscriber CONNACK');
  sub.send(packet(0x82, Buffer.concat([u16(1), str('w/#'), Buffer.from([1])])));
  await sub.expect(9, 'SUBACK');
  return sub;
}

async function once(kind, way, k, dir) {
  const broker = await startBroker(kind, { dir, defaults: true });
  try {
    let sub = await subscribe(broker.port);
    if (way === 'offline') {
      sub.close();
      await new Promise((r) => setTimeout(r, 200));
      await publishAll(broker.port);
      sub = new Raw(broker.port);
      sub.send(CONNECT('wc-sub', false));
      await sub.expect(2, 'subscriber CONNACK on reconnect');
    } else {
      await publishAll(broker.port);
    }
    const r = await count(sub, k);
    sub.close();
    return r;
  } finally {
    await broker.stop();
  }
}

const dir = mkdtempSync(join(tmpdir(), 'midge-window-'));
const rows = [];
try {
  for (const kind of BROKERS) {
    for (const way of ['offline', 'online']) {
      for (const k of KS) {
        const r = await once(kind, way, k, dir);
        rows.push({ broker: kind, way, k, ...r, unacknowledged: r.received - r.acked });
      }
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(`${N} QoS 1 messages for one subscriber; it acknowledges the first K PUBLISHes only (broker defaults: max_inflight_messages 20)`);
console.log('| broker | way | K (PUBACKs sent) | PUBLISH received | unacknowledged |');
console.log('|---|---|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.broker} | ${r.way} | ${r.acked} | ${r.received} | ${r.unacknowledged} |`);
console.log(`JSON ${JSON.stringify(rows)}`);
