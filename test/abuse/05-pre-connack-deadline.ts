/**
 * Abuse 05: connections that never reach CONNACK must not live forever. An embedded broker (a child
 * process running createBroker from the compiled library, test/abuse/_embedded-broker.ts) has an
 * `authenticate` hook that never settles for one username and an MQTT 5 authentication method that
 * challenges forever. With a pre-CONNACK deadline of DEADLINE_S seconds (BrokerOptions.connectTimeout,
 * `midge_connect_timeout` in a config file), every one of these is closed by the broker once the
 * deadline passed, not before:
 *  - CONNECT whose authenticate hook never settles;
 *  - a v5 AUTH exchange the client abandons (never answers the broker's AUTH 0x18);
 *  - a v5 AUTH exchange the client keeps answering, forever;
 *  - a CONNECT dripped one byte at a time, never completed.
 * The broker process stays alive, its RSS bounded, and a bystander pair is served throughout.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { encode } from '../../src/codec/index.js';
import type { Packet } from '../../src/codec/types.js';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';
import { spawnLines, type LineProcess } from '../helpers/proc.js';
import { Bystander, RawClient, connectPacket, isAlive, memOf, mib, sampleRss, sleep, socketCount, within } from './_helpers.js';

const DEADLINE_S = 2;
const PER_KIND = 50;
/** stated bounds: each is closed in [deadline - 250 ms, deadline + SLACK_MS] after its first byte */
const SLACK_MS = 4000;
const PEAK_GROWTH_BOUND_KIB = 64 * 1024;
const SCRIPT = fileURLToPath(new URL('./_embedded-broker.js', import.meta.url));

interface Kind {
  name: string;
  /** opens one connection and starts its abuse; resolves with the client and when its first byte went */
  open(port: number, i: number): Promise<{ client: RawClient; firstByteAt: number; stop?: () => void }>;
}

const KINDS: Kind[] = [
  {
    name: 'authenticate hook that never settles',
    async open(port, i) {
      const client = await RawClient.open(port);
      const firstByteAt = Math.round(performance.now());
      client.send(connectPacket(`hang-${i}`, { username: 'hang', password: Buffer.from('x') }));
      return { client, firstByteAt };
    },
  },
  {
    name: 'v5 AUTH exchange the client abandons',
    async open(port, i) {
      const client = await RawClient.open(port, 5);
      const firstByteAt = Math.round(performance.now());
      client.send(connectPacket(`abandon-${i}`, { protocolVersion: 5, properties: { authenticationMethod: 'ENDLESS', authenticationData: Buffer.from('hi') } }));
      await client.waitFor((p) => p.type === 'auth', 5000, 'the broker\'s AUTH 0x18');
      return { client, firstByteAt }; // and never answers
    },
  },
  {
    name: 'v5 AUTH exchange the client keeps answering',
    async open(port, i) {
      const client = await RawClient.open(port, 5);
      const firstByteAt = Math.round(performance.now());
      client.send(connectPacket(`endless-${i}`, { protocolVersion: 5, properties: { authenticationMethod: 'ENDLESS', authenticationData: Buffer.from('hi') } }));
      const answer = encode({ type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'ENDLESS', authenticationData: Buffer.from('more') } }, 5);
      let seen = 0;
      const timer = setInterval(() => {
        const challenges = client.packets.filter((p: Packet) => p.type === 'auth').length;
        if (challenges > seen && !client.closed) { seen = challenges; client.socket.write(answer); }
      }, 200);
      return { client, firstByteAt, stop: () => clearInterval(timer) };
    },
  },
  {
    name: 'CONNECT dripped one byte at a time, never completed',
    async open(port, i) {
      const client = await RawClient.open(port);
      const bytes = encode(connectPacket(`drip-${i}`, { username: 'x'.repeat(64) }), 4);
      const firstByteAt = Math.round(performance.now());
      let k = 0;
      client.socket.write(bytes.subarray(k, ++k));
      const timer = setInterval(() => {
        if (k < bytes.length - 1 && !client.closed) client.socket.write(bytes.subarray(k, ++k)); // never the last byte
      }, 250);
      return { client, firstByteAt, stop: () => clearInterval(timer) };
    },
  },
];

describe('abuse 05: the pre-CONNACK deadline (embedded broker with hooks)', { timeout: 90_000 }, () => {
  let proc: LineProcess;
  let port: number;
  let bystander: Bystander;
  const clients: RawClient[] = [];

  before(async () => {
    proc = spawnLines(process.execPath, [...NODE_FLAGS, SCRIPT, JSON.stringify({ connectTimeout: DEADLINE_S })]);
    const line = await proc.waitForLine(/^listening \d+$/, 10_000);
    port = Number(line.split(' ')[1]);
    bystander = await Bystander.start(port, '05');
  });
  after(async () => {
    for (const c of clients) c.destroy();
    await Promise.all([bystander?.pub.endAsync(true), bystander?.sub.endAsync(true)]);
    proc?.kill('SIGTERM');
    const killer = setTimeout(() => proc.kill('SIGKILL'), 3000);
    await proc?.exited;
    clearTimeout(killer);
  });

  it(`closes every connection still short of CONNACK ${DEADLINE_S} s after its first byte`, async (t) => {
    const pid = proc.pid;
    const baseSockets = socketCount(pid);
    const m0 = memOf(pid);
    const sampler = sampleRss(pid, 100);
    const bystanderPump = bystander.startPump();
    const opened = await Promise.all(KINDS.flatMap((kind) => Array.from({ length: PER_KIND }, async (_, i) => {
      const o = await kind.open(port, i);
      clients.push(o.client);
      const closed = await o.client.closedWithin(DEADLINE_S * 1000 + SLACK_MS + 2000);
      o.stop?.();
      return { kind: kind.name, closed, after: Math.round(performance.now()) - o.firstByteAt, connack: o.client.packets.some((p) => p.type === 'connack' && p.reasonCode === 0) };
    })));
    await sleep(1500); // the broker destroys a socket it ended 1 s after ending it
    const afterSockets = socketCount(pid);
    const m1 = memOf(pid);
    const peak = sampler.stop();
    const by = await bystanderPump.stop().catch((err: unknown) => err as Error);

    for (const kind of KINDS) {
      const mine = opened.filter((o) => o.kind === kind.name);
      const closed = mine.filter((o) => o.closed);
      const times = closed.map((o) => o.after);
      t.diagnostic(`${kind.name}: ${closed.length}/${mine.length} closed by the broker, after ${times.length > 0 ? `${Math.min(...times)}-${Math.max(...times)}` : '-'} ms (bound [${DEADLINE_S * 1000 - 250}, ${DEADLINE_S * 1000 + SLACK_MS}] ms)`);
    }
    t.diagnostic(`broker sockets before ${baseSockets}, after ${afterSockets}; RSS before ${mib(m0.rss)}, after ${mib(m1.rss)}, peak VmHWM ${mib(m1.hwm)} (sampled max ${mib(peak)}); bound: peak < before + ${mib(PEAK_GROWTH_BOUND_KIB)}`);
    t.diagnostic(by instanceof Error ? `bystander failed: ${by.message}` : `bystander: ${by.published} QoS 1 messages, all delivered in order, slowest PUBACK ${by.maxPubackMs} ms`);

    assert.ok(isAlive(pid), 'the broker process is alive');
    for (const o of opened) {
      assert.equal(o.connack, false, `${o.kind}: no CONNACK 0 was given`);
      assert.ok(o.closed, `${o.kind}: closed by the broker within ${DEADLINE_S * 1000 + SLACK_MS} ms`);
      assert.ok(o.after >= DEADLINE_S * 1000 - 250 && o.after <= DEADLINE_S * 1000 + SLACK_MS, `${o.kind}: closed after ${o.after} ms, in [${DEADLINE_S * 1000 - 250}, ${DEADLINE_S * 1000 + SLACK_MS}]`);
    }
    assert.ok(afterSockets <= baseSockets, `the broker holds no socket of theirs (${afterSockets} vs ${baseSockets} before)`);
    assert.ok(m1.hwm - m0.rss < PEAK_GROWTH_BOUND_KIB, `peak RSS ${mib(m1.hwm)} is under ${mib(m0.rss)} + ${mib(PEAK_GROWTH_BOUND_KIB)}`);
    if (by instanceof Error) throw by;
    await within(bystander.roundTrip(), 25_000, 'bystander round trip');
  });
});
