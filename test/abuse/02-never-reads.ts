/**
 * Abuse 02: clients that send and never read. Each answer the broker owes them (PUBACK, PINGRESP,
 * SUBACK) would pile up in its memory if it kept reading their requests while they read nothing, so
 * its RSS must stay under a stated bound (whether it stops reading from them or disconnects them).
 * A bystander pair is served throughout and loses nothing.
 */
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { encode } from '../../src/codec/index.js';
import type { Packet } from '../../src/codec/types.js';
import { startMidge, type BrokerProcess } from '../helpers/broker-process.js';
import { Bystander, RawClient, isAlive, memOf, mib, pump, sampleRss } from './_helpers.js';

/** how long each abusive client keeps writing, and how much it may write at most */
const WRITE_MS = 7_000;
const MAX_BYTES = 48 * 1024 * 1024;
/** stated bound: the broker's peak RSS (VmHWM) grows by less than this over its RSS before the flood */
const PEAK_GROWTH_BOUND_KIB = 96 * 1024;

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

describe('abuse 02: clients that send and never read', { timeout: 120_000 }, () => {
  // a broker per kind, so that one flood's leftovers do not hide the next one's growth
  let broker: BrokerProcess | undefined;
  let bystander: Bystander | undefined;
  const raws: RawClient[] = [];
  afterEach(async () => {
    for (const r of raws) r.destroy();
    raws.length = 0;
    await Promise.all([bystander?.pub.endAsync(true), bystander?.sub.endAsync(true)]);
    await broker?.stop();
    broker = undefined;
    bystander = undefined;
  });

  for (const [name, chunk] of KINDS) {
    it(`a ${name} flood that is never read leaves the broker RSS bounded`, async (t) => {
      const b = (broker = await startMidge());
      const by0 = (bystander = await Bystander.start(b.port, '02'));
      const c = await RawClient.connect(b.port, `never-reads-${name.replaceAll(' ', '-')}`);
      raws.push(c);
      c.socket.pause(); // never reads again
      const m0 = memOf(b.pid);
      const sampler = sampleRss(b.pid, 100);
      const bystanderPump = by0.startPump();
      const r = await pump(c.socket, () => chunk, { maxBytes: MAX_BYTES, ms: WRITE_MS });
      const closedByBroker = c.closed;
      const m1 = memOf(b.pid);
      const peak = sampler.stop();
      const by = await bystanderPump.stop().catch((err: unknown) => err as Error);
      c.destroy();
      const m2 = memOf(b.pid);

      t.diagnostic(`${name}: wrote ${mib(r.bytes / 1024)} in ${r.ms} ms (${r.stalled ? 'then the socket took no more' : closedByBroker ? 'then the broker closed it' : 'up to the limit'})`);
      t.diagnostic(`broker RSS before ${mib(m0.rss)}, at the end of the flood ${mib(m1.rss)}, after the client left ${mib(m2.rss)}; peak VmHWM ${mib(m2.hwm)} (sampled max ${mib(peak)}); bound: peak < before + ${mib(PEAK_GROWTH_BOUND_KIB)}`);
      t.diagnostic(by instanceof Error ? `bystander failed: ${by.message}` : `bystander: ${by.published} QoS 1 messages, all delivered in order, slowest PUBACK ${by.maxPubackMs} ms`);
      assert.ok(isAlive(b.pid), 'the broker process is alive');
      assert.ok(m2.hwm - m0.rss < PEAK_GROWTH_BOUND_KIB, `peak RSS ${mib(m2.hwm)} is under ${mib(m0.rss)} + ${mib(PEAK_GROWTH_BOUND_KIB)}`);
      if (by instanceof Error) throw by;
      await by0.roundTrip();
    });
  }
});
