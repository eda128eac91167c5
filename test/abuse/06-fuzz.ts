/**
 * Abuse 06: random and mutated packets over real sockets, many connections in parallel, until at least
 * 1,000,000 were sent and the broker decoded at least 1,000,000 (`$SYS/broker/messages/received`; what
 * follows a fatal mutation on a connection is never read, so more are sent than decoded). Valid packets of every type (CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP,
 * SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH; MQTT 3.1, 3.1.1 and
 * 5.0) are encoded with the project codec, then some are mutated: bytes flipped, truncated, a bogus
 * remaining length, the first byte replaced, garbage inserted, or replaced by random bytes. The broker
 * never crashes, logs no internal error, and only the offending connections are closed: the bystander
 * pair keeps working and every QoS 1 message it publishes arrives.
 *
 * Reproducible: the seed is printed; MIDGE_FUZZ_SEED=<seed> replays the same byte streams (connection n
 * always gets the stream of prng(seed + n)).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { MqttClient } from 'mqtt';
import { encode } from '../../src/codec/index.js';
import type { Packet, ProtocolVersion, Properties, QoS } from '../../src/codec/types.js';
import { startMidge, type BrokerProcess } from '../helpers/broker-process.js';
import { connect as mqttjsConnect } from '../helpers/mqttjs.js';
import { Bystander, isAlive, memOf, mib, prng, sampleRss, watchSys } from './_helpers.js';

const TARGET_PACKETS = 1_000_000;
/** hard cap on the fuzzing time; the target is normally reached in well under half of it */
const MAX_MS = 120_000;
const PARALLEL = 24;
/** chance that a packet after CONNECT is mutated */
const MUTATION_RATE = 0.01;
/** stated bound: the broker's peak RSS grows by less than this over its RSS before the fuzzing */
const PEAK_GROWTH_BOUND_KIB = 256 * 1024;
const RECEIVED = '$SYS/broker/messages/received';
/** MIDGE_FUZZ_VERBOSE=1: the broker logs every connection, and the test prints why connections ended */
const VERBOSE = process.env.MIDGE_FUZZ_VERBOSE === '1';

type Rand = () => number;
const int = (r: Rand, n: number): number => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)]!;
const bytes = (r: Rand, n: number): Buffer => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = int(r, 256);
  return b;
};

const TOPICS = ['fz/a', 'fz/b/c', 'fz/dev/1/temp', 'fz/dev/2/temp', 'fz/x/y/z', 'fz/ü/✓', 'fz//', 'fz/$x'];
const FILTERS = ['fz/#', 'fz/+/c', 'fz/dev/+/temp', '#', '+/+', 'fz/a', '$share/g/fz/#', '$share/h/fz/+/c', '$SYS/#', 'fz/+'];

function props(r: Rand, kind: 'publish' | 'connect' | 'ack' | 'subscribe' | 'auth'): Properties | undefined {
  if (r() < 0.5) return undefined;
  const p: Properties = {};
  if (r() < 0.3) p.userProperties = [['k', 'v'], ['fz', String(int(r, 1000))]];
  if (kind === 'publish') {
    if (r() < 0.3) p.messageExpiryInterval = int(r, 10);
    if (r() < 0.3) p.topicAlias = 1 + int(r, 11); // max_topic_alias is 10: 11 is a protocol error
    if (r() < 0.2) p.responseTopic = 'fz/resp';
    if (r() < 0.2) p.correlationData = bytes(r, int(r, 16));
    if (r() < 0.2) p.payloadFormatIndicator = int(r, 2);
    if (r() < 0.1) p.contentType = 'text/plain';
  } else if (kind === 'connect') {
    if (r() < 0.4) p.sessionExpiryInterval = int(r, 3);
    if (r() < 0.3) p.receiveMaximum = 1 + int(r, 100);
    if (r() < 0.3) p.topicAliasMaximum = int(r, 20);
    if (r() < 0.2) p.maximumPacketSize = 64 + int(r, 100_000);
    if (r() < 0.1) p.requestProblemInformation = int(r, 2);
  } else if (kind === 'subscribe') {
    if (r() < 0.3) p.subscriptionIdentifiers = [1 + int(r, 1000)];
  } else if (kind === 'ack' || kind === 'auth') {
    if (r() < 0.3) p.reasonString = 'fz';
    if (kind === 'auth') { p.authenticationMethod = 'FZ'; p.authenticationData = bytes(r, 4); }
  }
  return p;
}

function connectOf(r: Rand, n: number, version: ProtocolVersion): Packet {
  const v5 = version === 5;
  const clean = r() < 0.9;
  return {
    type: 'connect',
    protocolName: version === 3 ? 'MQIsdp' : 'MQTT',
    protocolVersion: version,
    clean,
    keepalive: pick(r, [0, 5, 60, 65535]),
    // persistent sessions from a pool of 64 ids (they never expire: thousands of them would make
    // every publish a walk over offline queues), resumed and taken over as the run goes
    clientId: r() < 0.1 && version !== 3 ? '' : clean ? `fz-${n}` : `fz-p${n % 64}`,
    ...(r() < 0.2 ? { will: { topic: 'fz/will', payload: bytes(r, int(r, 32)), qos: int(r, 3) as QoS, retain: r() < 0.3, ...(v5 && r() < 0.5 ? { properties: { willDelayInterval: int(r, 2) } } : {}) } } : {}),
    ...(r() < 0.2 ? { username: 'fz-user', password: bytes(r, 8) } : {}),
    ...(v5 ? { properties: props(r, 'connect') } : {}),
  } as Packet;
}

/** A valid packet of a random type (client or server direction) for a connection of `version`. */
function packetOf(r: Rand, version: ProtocolVersion): Packet {
  const v5 = version === 5;
  const id = 1 + int(r, 65535);
  const x = r();
  if (x < 0.45) {
    const qos = (r() < 0.6 ? 0 : r() < 0.6 ? 1 : 2) as QoS;
    return { type: 'publish', topic: pick(r, TOPICS), payload: bytes(r, int(r, 200)), qos, retain: r() < 0.03, dup: qos > 0 && r() < 0.1, ...(qos > 0 ? { packetId: id } : {}), ...(v5 ? { properties: props(r, 'publish') } : {}) } as Packet;
  }
  if (x < 0.6) return { type: pick(r, ['puback', 'pubrec', 'pubrel', 'pubcomp'] as const), packetId: id, ...(v5 && r() < 0.3 ? { reasonCode: pick(r, [0, 0x10, 0x80, 0x92]), properties: props(r, 'ack') } : {}) };
  if (x < 0.72) return { type: 'subscribe', packetId: id, subscriptions: Array.from({ length: 1 + int(r, 3) }, () => ({ topic: pick(r, FILTERS), qos: int(r, 3) as QoS, ...(v5 ? { noLocal: r() < 0.05, retainAsPublished: r() < 0.2, retainHandling: int(r, 3) as 0 | 1 | 2 } : {}) })), ...(v5 ? { properties: props(r, 'subscribe') } : {}) };
  if (x < 0.82) return { type: 'unsubscribe', packetId: id, topics: [pick(r, FILTERS)], ...(v5 ? { properties: props(r, 'ack') } : {}) };
  if (x < 0.995) return { type: 'pingreq' };
  // the rest is fatal even unmutated (a protocol error closes the connection): rarer, so that most
  // connections carry many packets
  if (x < 0.997 && v5) return { type: 'auth', reasonCode: pick(r, [0x18, 0x19, 0x00]), properties: props(r, 'auth') ?? { authenticationMethod: 'FZ' } };
  if (x < 0.998) return { type: 'connack', sessionPresent: r() < 0.5, reasonCode: int(r, 6) };
  if (x < 0.9985) return { type: 'suback', packetId: id, reasonCodes: [int(r, 3)] };
  if (x < 0.999) return { type: 'unsuback', packetId: id, ...(v5 ? { reasonCodes: [0] } : {}) };
  if (x < 0.9995) return { type: 'pingresp' };
  return connectOf(r, 0, version); // a second CONNECT
}

/** The remaining length varint for `n` (n < 2^28). */
function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

const MUTATIONS = ['flip', 'truncate', 'length', 'byte0', 'insert', 'random'] as const;
type Mutation = (typeof MUTATIONS)[number];

function mutate(r: Rand, b: Buffer, counts: Record<Mutation, number>): Buffer {
  const m = pick(r, MUTATIONS);
  counts[m]++;
  switch (m) {
    case 'flip': {
      const c = Buffer.from(b);
      for (let k = 1 + int(r, 3); k > 0; k--) c[int(r, c.length)] ^= 1 + int(r, 255);
      return c;
    }
    case 'truncate': return b.subarray(0, int(r, b.length));
    case 'length': {
      // keep byte 0 and the body, replace the remaining length by a bogus one (sometimes a 5-byte one)
      let p = 1;
      while (p < b.length && (b[p]! & 0x80) !== 0) p++;
      const bogus = r() < 0.1 ? [0xff, 0xff, 0xff, 0xff, 0x7f] : varint(int(r, r() < 0.5 ? 300 : 268_435_455));
      return Buffer.concat([b.subarray(0, 1), Buffer.from(bogus), b.subarray(p + 1)]);
    }
    case 'byte0': { const c = Buffer.from(b); c[0] = int(r, 256); return c; }
    case 'insert': { const at = int(r, b.length + 1); return Buffer.concat([b.subarray(0, at), bytes(r, 1 + int(r, 4)), b.subarray(at)]); }
    case 'random': return bytes(r, 1 + int(r, 64));
  }
}

interface Stats {
  packets: number;
  mutated: number;
  connections: number;
  randomOnly: number;
  bytes: number;
  mutations: Record<Mutation, number>;
}

/**
 * The bytes connection `n` sends: a CONNECT (sometimes mutated, sometimes only random bytes) and then
 * 40-160 packets. `head` is the valid CONNECT when there is one: it is sent alone and the rest after the
 * broker's answer, so that the packets run through the connected state (sent together, a fatal packet
 * anywhere would close the connection before the CONNECT's authentication step let any of them run).
 */
function streamOf(seed: number, n: number, st: Stats): { head: Buffer | undefined; rest: Buffer } {
  const r = prng((seed + n * 0x9e3779b1) >>> 0);
  const version = pick(r, [3, 4, 4, 5, 5] as const);
  const parts: Buffer[] = [];
  const add = (p: Packet, rate: number): void => {
    let b: Buffer;
    try {
      b = encode(p, version);
    } catch {
      return; // a combination the encoder refuses (it would not decode either): not sent
    }
    if (r() < rate) { b = mutate(r, b, st.mutations); st.mutated++; }
    parts.push(b);
    st.packets++;
  };
  let head: Buffer | undefined;
  const mode = r();
  if (mode < 0.05) {
    // nothing but random bytes, as one "packet"
    parts.push(bytes(r, 1 + int(r, 2000)));
    st.packets++;
    st.mutated++;
    st.randomOnly++;
  } else {
    add(connectOf(r, n, version), mode < 0.15 ? 1 : 0);
    if (mode >= 0.15) head = parts.pop();
    const count = 40 + int(r, 121);
    for (let i = 0; i < count; i++) add(packetOf(r, version), MUTATION_RATE);
    if (r() < 0.5) add({ type: 'disconnect', ...(version === 5 ? { reasonCode: pick(r, [0, 4]) } : {}) }, MUTATION_RATE);
  }
  const rest = Buffer.concat(parts);
  st.bytes += rest.length + (head?.length ?? 0);
  return { head, rest };
}

/**
 * Sends one stream (the head first, the rest once the broker answered it), then half-closes, or (1 in
 * 10) resets part-way; resolves when the socket is closed.
 */
function runConnection(port: number, stream: { head: Buffer | undefined; rest: Buffer }, r: Rand): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const reset = r() < 0.1;
    const resetAt = int(r, stream.rest.length + 1);
    const timer = setTimeout(() => s.destroy(), 15_000);
    let sent = false;
    const sendRest = (): void => {
      if (sent) return;
      sent = true;
      if (reset) {
        s.write(stream.rest.subarray(0, resetAt), () => s.resetAndDestroy());
        return;
      }
      s.write(stream.rest);
      s.end();
    };
    s.on('error', () => undefined);
    s.on('data', sendRest); // the answer to the head (then read and discarded)
    s.on('close', () => { clearTimeout(timer); resolve(); });
    s.on('connect', () => {
      if (stream.head === undefined) sendRest();
      else s.write(stream.head);
    });
  });
}

describe('abuse 06: random and mutated packets until the broker decoded 1,000,000', { timeout: MAX_MS + 60_000 }, () => {
  let broker: BrokerProcess;
  let bystander: Bystander;
  let sys: MqttClient;

  before(async () => {
    broker = await startMidge({ config: `sys_interval 1\nmax_queued_messages 100\nconnection_messages ${VERBOSE}\n` });
    bystander = await Bystander.start(broker.port, '06');
    sys = await mqttjsConnect(broker.port, { clientId: 'sys-watch-06' });
  });
  after(async () => {
    await Promise.all([bystander?.pub.endAsync(true), bystander?.sub.endAsync(true), sys?.endAsync(true)]);
    await broker?.stop();
  });

  it('never crashes the broker, which closes only the offending connections', async (t) => {
    const seed = process.env.MIDGE_FUZZ_SEED !== undefined ? Number(process.env.MIDGE_FUZZ_SEED) : (Date.now() ^ (process.pid << 8)) >>> 0;
    t.diagnostic(`seed ${seed} (replay with MIDGE_FUZZ_SEED=${seed})`);
    const values = await watchSys(sys, [RECEIVED]);
    await new Promise((r) => setTimeout(r, 1100));
    const received0 = Number(values.get(RECEIVED) ?? 0);
    const st: Stats = { packets: 0, mutated: 0, connections: 0, randomOnly: 0, bytes: 0, mutations: { flip: 0, truncate: 0, length: 0, byte0: 0, insert: 0, random: 0 } };
    const m0 = memOf(broker.pid);
    const sampler = sampleRss(broker.pid);
    const bystanderPump = bystander.startPump();
    const t0 = Math.round(performance.now());
    const decodedSoFar = (): number => Number(values.get(RECEIVED) ?? 0) - received0;
    let next = 0;
    let crashed = false;
    await Promise.all(Array.from({ length: PARALLEL }, async () => {
      while ((st.packets < TARGET_PACKETS || decodedSoFar() < TARGET_PACKETS) && Math.round(performance.now()) - t0 < MAX_MS && !crashed) {
        const n = next++;
        const data = streamOf(seed, n, st);
        st.connections++;
        await runConnection(broker.port, data, prng((seed ^ n) >>> 0));
        if (n % 500 === 0 && !isAlive(broker.pid)) crashed = true;
      }
    }));
    const ms = Math.round(performance.now()) - t0;
    const alive = isAlive(broker.pid);
    const m1 = alive ? memOf(broker.pid) : undefined;
    const peak = sampler.stop();
    const by = alive ? await bystanderPump.stop().catch((err: unknown) => err as Error) : new Error('the broker died');
    await new Promise((r) => setTimeout(r, 1100));
    const decoded = decodedSoFar();

    t.diagnostic(`${st.packets} packets (${st.mutated} mutated or random: ${JSON.stringify(st.mutations)}, ${st.randomOnly} random-only streams) in ${mib(st.bytes / 1024)} over ${st.connections} connections, ${PARALLEL} at a time, in ${ms} ms`);
    t.diagnostic(`the broker decoded ${decoded} packets (${RECEIVED}; the rest followed a fatal mutation on their connection and were never read)`);
    t.diagnostic(`broker RSS before ${mib(m0.rss)}, after ${m1 ? mib(m1.rss) : '(dead)'}, peak VmHWM ${m1 ? mib(m1.hwm) : '?'} (sampled max ${mib(peak)}); bound: peak < before + ${mib(PEAK_GROWTH_BOUND_KIB)}`);
    t.diagnostic(by instanceof Error ? `bystander failed: ${by.message}` : `bystander: ${by.published} QoS 1 messages, all delivered in order, slowest PUBACK ${by.maxPubackMs} ms`);

    if (VERBOSE) {
      const reasons = new Map<string, number>();
      for (const l of broker.logs().split('\n')) {
        const m = /(disconnected due to .*|closed its connection|has exceeded timeout)/.exec(l);
        if (m !== null) { const k = m[1]!.replace(/\d+/g, 'N'); reasons.set(k, (reasons.get(k) ?? 0) + 1); }
      }
      for (const [k, v] of [...reasons].sort((x, y) => y[1] - x[1]).slice(0, 25)) t.diagnostic(`${v} ${k}`);
    }
    assert.ok(alive && m1 !== undefined, `the broker process is alive (seed ${seed})\n${broker.logs().slice(-3000)}`);
    assert.ok(st.packets >= TARGET_PACKETS, `${TARGET_PACKETS} packets sent within ${MAX_MS} ms (sent ${st.packets})`);
    assert.ok(decoded >= TARGET_PACKETS, `the broker decoded ${TARGET_PACKETS} of them within ${MAX_MS} ms (decoded ${decoded})`);
    const internal = broker.logs().split('\n').filter((l) => /internal error|TypeError|RangeError|ReferenceError|^\s+at .*\.js:\d+/i.test(l));
    assert.deepEqual(internal.slice(0, 20), [], `no internal error in the broker's log (seed ${seed})`);
    assert.ok(m1.hwm - m0.rss < PEAK_GROWTH_BOUND_KIB, `peak RSS ${mib(m1.hwm)} is under ${mib(m0.rss)} + ${mib(PEAK_GROWTH_BOUND_KIB)}`);
    if (by instanceof Error) throw by;
    await bystander.roundTrip();
  });
});
