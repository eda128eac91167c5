/**
 * Abuse 04: one SUBSCRIBE packet with the filter `#` 1,000 times, over 100,000 retained messages, sent by
 * a client that never reads. Answering it naively means 100,000,000 retained deliveries queued for a
 * socket that takes none (before the retained cursor, the broker grew by GiBs and aborted); the broker's
 * RSS must stay under a stated bound while a bystander pair is served throughout.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { encode } from '../../src/codec/index.js';
import { startMidge, type BrokerProcess } from '../helpers/broker-process.js';
import { connect as mqttjsConnect } from '../helpers/mqttjs.js';
import { Bystander, RawClient, isAlive, memOf, mib, pollUntil, pump, sampleRss, sleep, watchSys } from './_helpers.js';

const RETAINED = 100_000;
const REPEATS = 1_000;
/** how long the never-reading subscriber is watched */
const WATCH_MS = 10_000;
/** stated bound: the broker's peak RSS grows by less than this over its RSS with the retained set loaded */
const PEAK_GROWTH_BOUND_KIB = 96 * 1024;
const RETAINED_COUNT = '$SYS/broker/retained messages/count';

describe('abuse 04: SUBSCRIBE # x 1,000 over 100,000 retained messages, never read', { timeout: 120_000 }, () => {
  let broker: BrokerProcess;
  let bystander: Bystander;
  let sys: MqttClient;
  const raws: RawClient[] = [];

  before(async () => {
    // a heap cap, so that a broker without the fix aborts at ~1.5 GiB rather than take the machine's memory
    broker = await startMidge({ config: 'sys_interval 1\n', env: { ...process.env, NODE_OPTIONS: '--max-old-space-size=1536' } });
    bystander = await Bystander.start(broker.port, '04');
    sys = await mqttjsConnect(broker.port, { clientId: 'sys-watch-04' });
  });
  after(async () => {
    for (const r of raws) r.destroy();
    await Promise.all([bystander?.pub.endAsync(true), bystander?.sub.endAsync(true), sys?.endAsync(true)]);
    await broker?.stop();
  });

  it('keeps the broker RSS bounded and serves the bystander', async (t) => {
    const values = await watchSys(sys, [RETAINED_COUNT]);
    // load the retained set: pipelined QoS 0 retained PUBLISHes, then one QoS 1 as a barrier
    const loader = await RawClient.connect(broker.port, 'retained-loader-04');
    raws.push(loader);
    const t0 = Math.round(performance.now());
    let i = 0;
    const loaded = await pump(loader.socket, () => (i < RETAINED
      ? encode({ type: 'publish', topic: `retained/${i % 100}/${i++}`, payload: Buffer.from('retained value'), qos: 0, retain: true, dup: false }, 4)
      : undefined), { maxBytes: Infinity, ms: 30_000 });
    assert.equal(loaded.packets, RETAINED, 'the loader sent every retained message');
    loader.send({ type: 'publish', topic: 'retained/barrier', payload: Buffer.from('b'), qos: 1, retain: false, dup: false, packetId: 1 });
    await loader.waitFor((p) => p.type === 'puback', 20_000, 'PUBACK of the barrier');
    const counted = await pollUntil(() => Number(values.get(RETAINED_COUNT) ?? 0) >= RETAINED, 5000);
    assert.ok(counted, `the broker holds ${RETAINED} retained messages (${RETAINED_COUNT} ${values.get(RETAINED_COUNT)})`);
    const loadMs = Math.round(performance.now()) - t0;
    loader.destroy();

    const m0 = memOf(broker.pid);
    const sampler = sampleRss(broker.pid, 100);
    const bystanderPump = bystander.startPump();
    const abuser = await RawClient.connect(broker.port, 'hash-x1000-04');
    raws.push(abuser);
    abuser.socket.pause(); // never reads (the kernel still takes what fits in its buffers)
    abuser.send({ type: 'subscribe', packetId: 7, subscriptions: Array.from({ length: REPEATS }, () => ({ topic: '#', qos: 1 as const })) });
    const watchEnd = Math.round(performance.now()) + WATCH_MS;
    while (Math.round(performance.now()) < watchEnd && isAlive(broker.pid)) await sleep(250);
    const alive = isAlive(broker.pid);
    const m1 = alive ? memOf(broker.pid) : undefined;
    const peak = sampler.stop();
    const by = await bystanderPump.stop().catch((err: unknown) => err as Error);
    abuser.destroy();
    const m2 = isAlive(broker.pid) ? memOf(broker.pid) : undefined;

    t.diagnostic(`loaded ${RETAINED} retained messages in ${loadMs} ms; one SUBSCRIBE with '#' x ${REPEATS}, unread for ${WATCH_MS} ms`);
    t.diagnostic(`broker RSS with the retained set ${mib(m0.rss)}, after ${WATCH_MS} ms ${m1 ? mib(m1.rss) : '(dead)'}, after the client left ${m2 ? mib(m2.rss) : '(dead)'}; peak VmHWM ${m2 ? mib(m2.hwm) : '?'} (sampled max ${mib(peak)}); bound: peak < ${mib(m0.rss)} + ${mib(PEAK_GROWTH_BOUND_KIB)}`);
    t.diagnostic(by instanceof Error ? `bystander failed: ${by.message}` : `bystander: ${by.published} QoS 1 messages, all delivered in order, slowest PUBACK ${by.maxPubackMs} ms`);
    assert.ok(alive && m2 !== undefined, `the broker process is alive ${WATCH_MS} ms after the SUBSCRIBE (last RSS sampled ${mib(peak)})\n${broker.logs().slice(-2000)}`);
    assert.ok(m2.hwm - m0.rss < PEAK_GROWTH_BOUND_KIB, `peak RSS ${mib(m2.hwm)} is under ${mib(m0.rss)} + ${mib(PEAK_GROWTH_BOUND_KIB)}`);
    if (by instanceof Error) throw by;
    await bystander.roundTrip();
  });
});
