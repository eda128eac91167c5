/**
 * Abuse 02: clients that send and never read. Each answer the broker owes them (PUBACK, PINGRESP,
 * SUBACK) would pile up in its memory if it kept reading their requests while they read nothing, so
 * its RSS must stay under a stated bound (whether it stops reading from them or disconnects them).
 * A bystander pair is served throughout and loses nothing.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { encode } from '../../src/codec/index.js';
import type { Packet } from '../../src/codec/types.js';
import { startBroker, type BrokerProcess } from '../helpers/broker-process.js';
import { Bystander, RawClient, isAlive, memOf, mib, pump, sampleRss } from './_helpers.js';

/** how long each abusive client keeps writing, and how much it may write at most */
const WRITE_MS = 10_000;
const MAX_BYTES = 48 * 1024 * 1024;
/** stated bound: the broker's peak RSS grows by less than this over its RSS before the abuse */
const PEAK_GROWTH_BOUND_KIB = 128 * 1024;

/** ~64 KiB of back-to-back packets made by `make(i)`, written again and again. */
function chunkOf(make: (i: number) => Packet): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  for (let i = 0; size < 64 * 1024; i++) {
    const b = encode(make(i), 4);
    parts.push(b);
    size += b.length;
  }
  return Buffer.concat(parts);
}

const KINDS: Array<[string, Buffer]> = [
  ['QoS 1 PUBLISH', chunkOf((i) => ({ type: 'publish', topic: 'never-reads/x', payload: Buffer.from('p'), qos: 1, retain: false, dup: false, packetId: (i % 65535) + 1 }))],
  ['PINGREQ', chunkOf(() => ({ type: 'pingreq' }))],
  ['SUBSCRIBE', chunkOf((i) => ({ type: 'subscribe', packetId: (i % 65535) + 1, subscriptions: [{ topic: `never-reads/s/${i % 100}`, qos: 1 }] }))],
];

describe('abuse 02: clients that send and never read', { timeout: 90_000 }, () => {
  let broker: BrokerProcess;
  let bystander: Bystander;
  const raws: RawClient[] = [];

  before(async () => {
    broker = await startBroker();
    bystander = await Bystander.start(broker.port, '02');
  });
  after(async () => {
    for (const r of raws) r.destroy();
    await Promise.all([bystander?.pub.endAsync(true), bystander?.sub.endAsync(true)]);
    await broker?.stop();
  });

  it('keeps the broker RSS bounded while QoS 1 PUBLISH, PINGREQ and SUBSCRIBE floods go unread', async (t) => {
    const clients: RawClient[] = [];
    for (const [name] of KINDS) {
      const c = await RawClient.connect(broker.port, `never-reads-${name.replaceAll(' ', '-')}`);
      c.socket.pause(); // never reads again
      clients.push(c);
      raws.push(c);
    }
    const m0 = memOf(broker.pid);
    const sampler = sampleRss(broker.pid);
    const bystanderPump = bystander.startPump();
    const results = await Promise.all(KINDS.map(([, chunk], i) =>
      pump(clients[i]!.socket, () => chunk, { maxBytes: MAX_BYTES, ms: WRITE_MS })));
    const m1 = memOf(broker.pid);
    const closedByBroker = clients.map((c) => c.closed);
    const by = await bystanderPump.stop();
    const sampled = sampler.stop();
    for (const c of clients) c.destroy();
    await bystander.roundTrip();
    const m2 = memOf(broker.pid);

    KINDS.forEach(([name], i) => {
      const r = results[i]!;
      t.diagnostic(`${name}: wrote ${mib(r.bytes / 1024)} in ${r.ms} ms (${r.stalled ? 'the broker stopped taking more' : closedByBroker[i] === true ? 'closed by the broker' : 'until the limit'})`);
    });
    t.diagnostic(`broker RSS before ${mib(m0.rss)}, after the floods ${mib(m1.rss)}, after the clients left ${mib(m2.rss)}; peak VmHWM ${mib(m2.hwm)} (sampled max ${mib(sampled)}); bound: peak < before + ${mib(PEAK_GROWTH_BOUND_KIB)}`);
    t.diagnostic(`bystander: ${by.published} QoS 1 messages, all delivered in order, slowest PUBACK ${by.maxPubackMs} ms`);

    assert.ok(isAlive(broker.pid), 'the broker process is alive');
    assert.ok(m2.hwm - m0.rss < PEAK_GROWTH_BOUND_KIB, `peak RSS ${mib(m2.hwm)} is under ${mib(m0.rss)} + ${mib(PEAK_GROWTH_BOUND_KIB)}`);
  });
});
