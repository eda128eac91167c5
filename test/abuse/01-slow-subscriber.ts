/**
 * Abuse 01: a publisher floods a subscriber that stopped reading. The broker must not buffer the flood
 * for it: its RSS stays under a stated bound, what it cannot deliver is dropped and counted in
 * `$SYS/broker/publish/messages/dropped`, and everything not dropped reaches the subscriber once it reads
 * again (published = received + dropped, exactly). A bystander pair is served throughout.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { encode } from '../../src/codec/index.js';
import { startMidge, type BrokerProcess } from '../helpers/broker-process.js';
import { connect as mqttjsConnect } from '../helpers/mqttjs.js';
import { Bystander, RawClient, isAlive, memOf, mib, pollUntil, pump, sampleRss, watchSys } from './_helpers.js';

/** messages flooded, each with a 2 KiB payload: 300 MiB through the broker */
const MESSAGES = 150_000;
const PAYLOAD = 2048;
/** stated bound: the broker's peak RSS grows by less than this over its RSS before the flood */
const PEAK_GROWTH_BOUND_KIB = 128 * 1024;
const DROPPED = '$SYS/broker/publish/messages/dropped';

describe('abuse 01: a publisher flooding a slow subscriber', { timeout: 120_000 }, () => {
  let broker: BrokerProcess;
  let bystander: Bystander;
  let sys: MqttClient;
  const raws: RawClient[] = [];

  before(async () => {
    broker = await startMidge({ config: 'sys_interval 1\n' });
    bystander = await Bystander.start(broker.port, '01');
    sys = await mqttjsConnect(broker.port, { clientId: 'sys-watch-01' });
  });
  after(async () => {
    for (const r of raws) r.destroy();
    await Promise.all([bystander?.pub.endAsync(true), bystander?.sub.endAsync(true), sys?.endAsync(true)]);
    await broker?.stop();
  });

  it('keeps RSS bounded, counts the drops in $SYS, delivers the rest, and serves the bystander', async (t) => {
    const values = await watchSys(sys, [DROPPED]);
    const slow = await RawClient.connect(broker.port, 'slow-sub-01');
    raws.push(slow);
    slow.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'flood/#', qos: 0 }] });
    await slow.waitFor((p) => p.type === 'suback', 5000, 'SUBACK');
    slow.discard();
    slow.socket.pause(); // from here on the subscriber reads nothing
    const flooder = await RawClient.connect(broker.port, 'flooder-01');
    raws.push(flooder);

    const m0 = memOf(broker.pid);
    const sampler = sampleRss(broker.pid);
    const bystanderPump = bystander.startPump();
    const packet = encode({ type: 'publish', topic: 'flood/x', payload: Buffer.alloc(PAYLOAD, 0x61), qos: 0, retain: false, dup: false }, 4);
    let n = 0;
    const sent = await pump(flooder.socket, () => (n++ < MESSAGES ? packet : undefined), { maxBytes: Infinity, ms: 45_000 });
    assert.equal(sent.packets, MESSAGES, `the flooder sent all ${MESSAGES} messages within 45 s (sent ${sent.packets})`);
    // barrier: the broker handles one connection's packets in order, so after this PINGRESP it routed them all
    flooder.send({ type: 'pingreq' });
    await flooder.waitFor((p) => p.type === 'pingresp', 20_000, 'PINGRESP after the flood');
    const m1 = memOf(broker.pid);

    slow.socket.resume();
    const conserved = await pollUntil(() => {
      const dropped = Number(values.get(DROPPED) ?? '0');
      return dropped > 0 && slow.publishes + dropped >= MESSAGES;
    }, 20_000);
    const dropped = Number(values.get(DROPPED) ?? '0');
    const by = await bystanderPump.stop();
    const m2 = memOf(broker.pid);
    const sampled = sampler.stop();

    t.diagnostic(`flood: ${MESSAGES} x ${PAYLOAD} B in ${sent.ms} ms; slow subscriber received ${slow.publishes}, dropped (${DROPPED}) ${dropped}`);
    t.diagnostic(`broker RSS before ${mib(m0.rss)}, after the flood ${mib(m1.rss)}, after draining ${mib(m2.rss)}; peak VmHWM ${mib(m2.hwm)} (sampled max ${mib(sampled)}); bound: peak < before + ${mib(PEAK_GROWTH_BOUND_KIB)}`);
    t.diagnostic(`bystander: ${by.published} QoS 1 messages, all delivered in order, slowest PUBACK ${by.maxPubackMs} ms`);

    assert.ok(isAlive(broker.pid), 'the broker process is alive');
    assert.ok(dropped > 0, 'drops are counted in $SYS');
    assert.ok(conserved, `published = received + dropped within 20 s (received ${slow.publishes}, dropped ${dropped}, published ${MESSAGES})`);
    assert.equal(slow.publishes + dropped, MESSAGES, 'no message is both delivered and counted as dropped');
    assert.equal(slow.closed, false, 'the slow subscriber was not disconnected');
    assert.ok(m2.hwm - m0.rss < PEAK_GROWTH_BOUND_KIB, `peak RSS ${mib(m2.hwm)} is under ${mib(m0.rss)} + ${mib(PEAK_GROWTH_BOUND_KIB)}`);
    await bystander.roundTrip();
  });
});
