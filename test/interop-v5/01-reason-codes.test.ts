/**
 * MQTT 5 reason codes on acknowledgements and on the server's DISCONNECT, against the broker process
 * (MIDGE_TEST_BROKER=midge|mosquitto), seen by MQTT.js, paho and mosquitto_sub, and for protocol
 * violations no third-party client will commit, by a raw client. In every test a well-behaved client
 * keeps receiving: a fault ends only the faulty connection.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import type { IDisconnectPacket, MqttClient } from 'mqtt';
import { startBroker } from '../helpers/broker-process.js';
import { collect, expectNoMessage, waitForEvent, waitForPacket } from '../helpers/mqttjs.js';
import { cleanup, connackOf, isMosquitto, mosquittoDiffers, mosqPub, mosqSub, paho, T, untilReady, v5 } from './_clients.js';
import { packet, prop, RawClient5 } from './_wire.js';

afterEach(cleanup);

/** The payloads a client receives up to and including `last` (bounded). */
async function until(client: MqttClient, last: string, timeoutMs = 3000): Promise<string[]> {
  const got: string[] = [];
  const deadline = Math.round(performance.now()) + timeoutMs;
  while (!got.includes(last)) {
    const [m] = await collect(client, 1, Math.max(1, deadline - Math.round(performance.now())));
    got.push(m!.payload);
  }
  return got;
}

/** The reason code of the DISCONNECT an MQTT.js client received (waits for it). */
async function disconnectCode(client: MqttClient, timeoutMs = 3000): Promise<number | undefined> {
  const d = await waitForPacket(client, (p) => p.dir === 'in' && p.cmd === 'disconnect', timeoutMs);
  return (d.packet as IDisconnectPacket).reasonCode;
}

describe('server DISCONNECT reason codes', () => {
  // paho 1.6.1 cannot tell: it reads a DISCONNECT's reason code only when properties follow it.
  test('session takeover: the old MQTT.js and mosquitto_sub connections get DISCONNECT 0x8E, the new ones carry on',
    mosquittoDiffers('sends no DISCONNECT to the old connection, it just closes it'), async () => {
      const broker = await startBroker();
      const oldJs = await v5(broker.port, { clientId: 'tk-js' });
      const oldSub = mosqSub(broker.port, ['-V', 'mqttv5', '-d', '-i', 'tk-sub', '-t', 'tk/old']);
      await untilReady(broker.port, oldSub, 'tk/old');
      const newJs = await v5(broker.port, { clientId: 'tk-js' });
      const newSub = await v5(broker.port, { clientId: 'tk-sub' });
      assert.equal(await disconnectCode(oldJs), 0x8e);
      await oldSub.waitForLine(/^Received DISCONNECT \(142\)$/);
      // The new connections are the live ones.
      for (const c of [newJs, newSub]) await c.subscribeAsync('tk/t', { qos: 1 });
      await newJs.publishAsync('tk/t', 'after takeover', { qos: 1 });
      for (const c of [newJs, newSub]) assert.equal((await collect(c, 1))[0]!.payload, 'after takeover');
    });

  test('keep alive timeout: a silent raw client and mosquitto_sub -k 5 stopped by SIGSTOP get DISCONNECT 0x8D, a pinging client stays',
    mosquittoDiffers('closes the connection without a DISCONNECT', 40_000), async () => {
    const broker = await startBroker();
    const live = await v5(broker.port, { clientId: 'ka-live', keepalive: 2 });
    await live.subscribeAsync('ka/t', { qos: 0 });
    const stopped = mosqSub(broker.port, ['-V', 'mqttv5', '-k', '5', '-d', '-i', 'ka-stopped', '-t', 'ka/stopped']);
    await untilReady(broker.port, stopped, 'ka/stopped');
    const [raw, ack] = await RawClient5.connect(broker.port, { clientId: 'ka-raw', keepalive: 2 });
    assert.equal(ack.reasonCode, 0);
    stopped.kill('SIGSTOP');
    const t0 = Math.round(performance.now());
    try {
      // [MQTT-3.1.2-22]: after 1.5 × keep alive without a packet the server closes, v5: with 0x8D.
      const d = await raw.next('disconnect', 6000);
      assert.equal(d.reasonCode, 0x8d);
      await raw.closedByBroker();
      const dt = Math.round(performance.now()) - t0;
      assert.ok(dt >= 2500, `disconnected after ${dt} ms, before 1.5 × keep alive`);
      // mosquitto_sub -k 5 is dropped after 7.5 s (+ the broker's check interval); resumed, it reads the
      // DISCONNECT waiting in its socket and prints it (-d).
      await new Promise((r) => setTimeout(r, Math.max(0, 11_000 - (Math.round(performance.now()) - t0))));
    } finally {
      stopped.kill('SIGCONT');
    }
    await stopped.waitForLine(/^Received DISCONNECT \(141\)$/, 3000);
    // The pinging client was never dropped and still receives.
    await mosqPub(broker.port, ['-t', 'ka/t', '-m', 'still here']);
    assert.equal((await collect(live, 1))[0]!.payload, 'still here');
    assert.equal(live.connected, true);
  });

  test('packet too large: CONNACK carries max_packet_size, a larger PUBLISH gets DISCONNECT 0x95, others go on', T, async () => {
    const broker = await startBroker({ config: 'max_packet_size 200\n' });
    const sub = await v5(broker.port, { clientId: 'mps-sub' });
    await sub.subscribeAsync('mps/#', { qos: 1 });
    const pub = await v5(broker.port, { clientId: 'mps-pub' });
    assert.equal(connackOf(pub).properties?.maximumPacketSize, 200);
    await pub.publishAsync('mps/a', 'x'.repeat(100), { qos: 1 });
    assert.equal((await collect(sub, 1))[0]!.payload.length, 100, 'a packet under the limit is delivered');
    pub.publish('mps/a', 'y'.repeat(300), { qos: 0 });
    assert.equal(await disconnectCode(pub), 0x95);
    await waitForEvent(pub, 'close');
    await expectNoMessage(sub, 200);
    await mosqPub(broker.port, ['-t', 'mps/b', '-m', 'after', '-q', '1']);
    assert.equal((await collect(sub, 1))[0]!.payload, 'after');
  });

  test('receive maximum exceeded: more unacknowledged QoS 2 PUBLISHes than CONNACK allowed is DISCONNECT 0x93',
    mosquittoDiffers('answers PUBREC 0x97 (quota exceeded) and keeps the connection'), async () => {
    const broker = await startBroker({ config: 'max_inflight_messages 5\n' });
    const sub = await v5(broker.port, { clientId: 'rmx-sub' });
    await sub.subscribeAsync('rmx/#', { qos: 1 });
    const [raw, ack] = await RawClient5.connect(broker.port, { clientId: 'rmx-raw' });
    assert.deepEqual(ack.properties.receiveMaximum, [5]);
    // Five in flight are allowed: each gets PUBREC; the sixth, before any PUBREL, breaks [MQTT-3.3.4-7].
    for (let id = 1; id <= 6; id++) raw.send(packet.publish({ topic: 'rmx/raw', payload: `m${id}`, qos: 2, packetId: id }));
    for (let i = 0; i < 5; i++) assert.equal((await raw.next('pubrec')).reasonCode, 0);
    assert.equal((await raw.next('disconnect')).reasonCode, 0x93);
    await raw.closedByBroker();
    await mosqPub(broker.port, ['-t', 'rmx/other', '-m', 'after', '-q', '1']);
    // Midge may deliver QoS 2 at PUBLISH (method B) and mosquitto at PUBREL: m1..m5 or nothing, never m6.
    const got = await until(sub, 'after');
    assert.ok(!got.includes('m6'), `the PUBLISH over the limit was not processed: ${got.join(' ')}`);
  });

  test('topic alias 0 and an alias above the Topic Alias Maximum are DISCONNECT 0x94; the valid alias worked', T, async () => {
    const broker = await startBroker();
    const sub = await v5(broker.port, { clientId: 'tai-sub' });
    await sub.subscribeAsync('tai/#', { qos: 0 });
    for (const bad of [0, 11]) {
      const [raw, ack] = await RawClient5.connect(broker.port, { clientId: `tai-${bad}` });
      assert.deepEqual(ack.properties.topicAliasMaximum, [10]);
      raw.send(packet.publish({ topic: 'tai/x', payload: `set-${bad}`, properties: [prop.topicAlias(10)] }));
      raw.send(packet.publish({ topic: '', payload: `use-${bad}`, properties: [prop.topicAlias(10)] }));
      raw.send(packet.publish({ topic: 'tai/x', payload: `bad-${bad}`, properties: [prop.topicAlias(bad)] }));
      // mosquitto 2.0.11 answers alias 0 with 0x81 (malformed packet).
      const expected = bad === 0 && isMosquitto ? 0x81 : 0x94;
      assert.equal((await raw.next('disconnect')).reasonCode, expected, `alias ${bad}`);
      await raw.closedByBroker();
      const got = await collect(sub, 2);
      assert.deepEqual(got.map((m) => `${m.topic} ${m.payload}`), [`tai/x set-${bad}`, `tai/x use-${bad}`]);
      await expectNoMessage(sub, 100);
    }
    await mosqPub(broker.port, ['-t', 'tai/y', '-m', 'after']);
    assert.equal((await collect(sub, 1))[0]!.payload, 'after');
  });

  test('a property twice where the spec allows one (Message Expiry Interval in PUBLISH) is DISCONNECT 0x82',
    mosquittoDiffers('closes the connection without a DISCONNECT'), async () => {
    const broker = await startBroker();
    const sub = await v5(broker.port, { clientId: 'dup-sub' });
    await sub.subscribeAsync('dup/#', { qos: 1 });
    const [raw] = await RawClient5.connect(broker.port, { clientId: 'dup-raw' });
    raw.send(packet.publish({ topic: 'dup/a', payload: 'once', qos: 1, packetId: 1, properties: [prop.messageExpiryInterval(60)] }));
    assert.equal((await raw.next('puback')).reasonCode, 0);
    raw.send(packet.publish({ topic: 'dup/a', payload: 'twice', qos: 1, packetId: 2,
      properties: [prop.messageExpiryInterval(60), prop.messageExpiryInterval(30)] }));
    // [MQTT-3.3.2.3.3] "It is a Protocol Error to include the Message Expiry Interval more than once"
    assert.equal((await raw.next('disconnect')).reasonCode, 0x82);
    await raw.closedByBroker();
    await raw.nothing('puback', 0);
    const [m] = await collect(sub, 1);
    assert.equal(m!.payload, 'once');
    await expectNoMessage(sub, 150);
    await mosqPub(broker.port, ['-t', 'dup/b', '-m', 'after', '-q', '1']);
    assert.equal((await collect(sub, 1))[0]!.payload, 'after');
  });
});

describe('reason codes on acknowledgements (ACL: anonymous may read and write open/#, only read closed/#)', () => {
  const ACL = 'topic readwrite open/#\ntopic read closed/#\n';
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });
  function aclBroker(): ReturnType<typeof startBroker> {
    dir = mkdtempSync(join(tmpdir(), 'midge-v5-acl-'));
    chmodSync(dir, 0o755); // mosquitto reads the file after dropping privileges
    writeFileSync(join(dir, 'acl'), ACL, { mode: 0o644 });
    return startBroker({ config: `acl_file ${join(dir, 'acl')}\n` });
  }

  test('a SUBSCRIBE the ACL refuses gets 0x87 for that filter only (MQTT.js, paho)',
    mosquittoDiffers('grants the subscription (0x01) and filters at delivery time'), async () => {
      const broker = await aclBroker();
      const js = await v5(broker.port, { clientId: 'acl-js' });
      await js.subscribeAsync(['open/#', 'secret/#'], { qos: 1 }).catch(() => undefined);
      const suback = await waitForPacket(js, (p) => p.dir === 'in' && p.cmd === 'suback');
      assert.deepEqual((suback.packet as unknown as { granted: number[] }).granted, [1, 0x87]);
      const [py] = await paho(broker.port, { clientId: 'acl-paho' });
      assert.deepEqual(await py.subscribe('closed/#', { qos: 1 }), [1]);
      assert.deepEqual(await py.subscribe('secret/#', { qos: 1 }), [0x87]);
    });

  test('a PUBLISH the ACL refuses gets PUBACK 0x87 (MQTT.js, mosquitto_pub) and is delivered nowhere', T, async () => {
    const broker = await aclBroker();
    const js = await v5(broker.port, { clientId: 'acl-js' });
    await js.subscribeAsync('open/#', { qos: 1 });
    const [py] = await paho(broker.port, { clientId: 'acl-paho' });
    assert.deepEqual(await py.subscribe('closed/#', { qos: 1 }), [1]);

    await assert.rejects(js.publishAsync('closed/x', 'refused', { qos: 1 }), (err: Error & { code?: number }) => {
      assert.equal(err.code, 0x87);
      return true;
    });
    const r = await mosqPub(broker.port, ['-t', 'closed/y', '-m', 'refused too', '-q', '1']);
    assert.match(r.stderr, /Not authorized/, 'mosquitto_pub reports the PUBACK reason code');
    // Positive controls: the same clients' allowed publishes arrive, and the closed/# reader got nothing.
    await js.publishAsync('open/x', 'allowed', { qos: 1 });
    await mosqPub(broker.port, ['-t', 'open/y', '-m', 'allowed too', '-q', '1']);
    assert.deepEqual((await collect(js, 2)).map((m) => m.payload), ['allowed', 'allowed too']);
    await expectNoMessage(js, 100);
    assert.deepEqual(py.messages(), [], 'closed/# readers got nothing');
  });
});

describe('PUBACK 0x10 no matching subscribers', () => {
  test('a QoS 1 PUBLISH nobody subscribes to gets PUBACK 0x10, which MQTT.js and mosquitto_pub take as success; with a subscriber 0x00', T, async () => {
    const broker = await startBroker();
    const js = await v5(broker.port, { clientId: 'nm-js' });
    const pubacks = async (): Promise<number | undefined> => {
      const p = await waitForPacket(js, (t) => t.dir === 'in' && t.cmd === 'puback');
      return (p.packet as { reasonCode?: number }).reasonCode;
    };
    await js.publishAsync('nm/nobody', 'x', { qos: 1 }); // resolves: 0x10 is not an error
    assert.equal(await pubacks(), 0x10);
    const r = await mosqPub(broker.port, ['-d', '-t', 'nm/nobody', '-m', 'y', '-q', '1']);
    assert.match(r.stdout + r.stderr, /PUBACK \(Mid: 1, RC:16\)/, 'mosquitto_pub -d shows the reason code and exits 0');
    // positive control: once something matches, PUBACK 0x00
    const sub = await v5(broker.port, { clientId: 'nm-sub' });
    await sub.subscribeAsync('nm/#', { qos: 1 });
    const js2 = await v5(broker.port, { clientId: 'nm-js2' });
    await js2.publishAsync('nm/somebody', 'z', { qos: 1 });
    const p2 = await waitForPacket(js2, (t) => t.dir === 'in' && t.cmd === 'puback');
    assert.equal((p2.packet as { reasonCode?: number }).reasonCode ?? 0, 0);
    assert.equal((await collect(sub, 1))[0]!.payload, 'z');
  });
});
