/**
 * MQTT 5 limits and what CONNACK advertises, against the broker process: receive maximum (both ways),
 * maximum packet size (of the client), server keep alive, assigned client identifier, retain available.
 * The broker's own maximum packet size and receive maximum violations are in 01-reason-codes.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import type { IDisconnectPacket } from 'mqtt';
import { startBroker } from '../helpers/broker-process.js';
import { collect, expectNoMessage, waitForEvent, waitForPacket } from '../helpers/mqttjs.js';
import { cleanup, connackOf, isMosquitto, mosquittoDiffers, mosqPub, mosqSub, paho, sleep, T, untilReady, v5, withoutMarkers } from './_clients.js';
import { packet, RawClient5, wireTap } from './_wire.js';

afterEach(cleanup);

describe('receive maximum', () => {
  test('to the client: with Receive Maximum 2 and no PUBACK, 2 messages are in flight; each PUBACK lets one more out',
    mosquittoDiffers('sends two more messages after the first PUBACK: 3 in flight to a client whose Receive Maximum is 2'), async () => {
    const broker = await startBroker();
    const held: (() => void)[] = [];
    const sub = await v5(broker.port, {
      clientId: 'rm-sub', properties: { receiveMaximum: 2 },
      customHandleAcks: (_topic, _message, _packet, done) => held.push(() => done(0)),
    });
    await sub.subscribeAsync('rm/t', { qos: 1 });
    const wire = wireTap(sub.stream);
    const pub = await v5(broker.port, { clientId: 'rm-pub' });
    for (let i = 1; i <= 5; i++) await pub.publishAsync('rm/t', `m${i}`, { qos: 1 });

    await wire.waitFor(2, 'publish');
    await sleep(300);
    assert.equal(wire.packets.filter((p) => p.type === 'publish').length, 2, 'no third message before a PUBACK [MQTT-3.3.4-9]');
    held.shift()!();
    await wire.waitFor(3, 'publish');
    await sleep(200);
    assert.equal(wire.packets.filter((p) => p.type === 'publish').length, 3, 'one PUBACK, one more message');
    for (let seen = 3; seen < 5;) {
      const next = held.shift();
      if (next !== undefined) next();
      else await sleep(20);
      await wire.waitFor(++seen, 'publish');
    }
    const payloads = wire.packets.filter((p) => p.type === 'publish').map((p) => p.payload!.toString());
    assert.deepEqual(payloads, ['m1', 'm2', 'm3', 'm4', 'm5']);
    while (held.length > 0) held.shift()!();
  });

  test('from the client: CONNACK advertises max_inflight_messages as Receive Maximum (MQTT.js, paho)', T, async () => {
    for (const [config, expected] of [['', 20], ['max_inflight_messages 3\n', 3]] as const) {
      const broker = await startBroker({ config });
      const js = await v5(broker.port, { clientId: 'rmc-js' });
      assert.equal(connackOf(js).properties?.receiveMaximum, expected, `config '${config}'`);
      const [, ack] = await paho(broker.port, { clientId: 'rmc-paho' });
      assert.equal(ack.props?.ReceiveMaximum, expected);
      await broker.stop();
    }
  });
});

describe('maximum packet size of the client', () => {
  test('a message too large for one subscriber is dropped for that subscriber only (MQTT.js, mosquitto_sub, paho)', T, async () => {
    const broker = await startBroker();
    const small = await v5(broker.port, { clientId: 'mps-js', properties: { maximumPacketSize: 100 } });
    await small.subscribeAsync('mps/t', { qos: 1 });
    const smallSub = mosqSub(broker.port, ['-V', 'mqttv5', '-D', 'connect', 'maximum-packet-size', '100', '-q', '1', '-t', 'mps/t', '-t', 'mps/ready', '-F', '%l %p']);
    await untilReady(broker.port, smallSub, 'mps/ready'); // the same SUBSCRIBE as mps/t
    const from = smallSub.lines.length;
    const [big] = await paho(broker.port, { clientId: 'mps-paho' });
    await big.subscribe('mps/t', { qos: 1 });

    await mosqPub(broker.port, ['-t', 'mps/t', '-q', '1', '-m', 'x'.repeat(300)]);
    await mosqPub(broker.port, ['-t', 'mps/t', '-q', '1', '-m', 'tiny']);
    await big.waitFor('message', (e) => e.payload === 'tiny');
    assert.deepEqual(big.messages().map((e) => e.payload!.length), [300, 4], 'paho (no maximum) got both');
    assert.equal(await smallSub.waitForLine(/^\d+ /, 3000, from), '4 tiny', 'mosquitto_sub got only the small one');
    const got = await collect(small, 1);
    assert.equal(got[0]!.payload, 'tiny');
    await expectNoMessage(small, 200);
    assert.equal(small.connected, true, 'MQTT.js closes on a packet over its maximum: it never got one');
    assert.deepEqual(withoutMarkers(smallSub.lines.slice(from)), ['4 tiny']);
  });
});

describe('maximum packet size: the boundaries', () => {
  test('to the client: a PUBLISH of exactly its Maximum Packet Size arrives, one byte more does not (MQTT.js)',
    mosquittoDiffers('leaves the Remaining Length bytes out of the packet size: it sends 101 bytes to a client whose maximum is 100'), async () => {
    const broker = await startBroker();
    const small = await v5(broker.port, { clientId: 'mpx-js', properties: { maximumPacketSize: 100 } });
    await small.subscribeAsync('mpx/t', { qos: 1 });
    // PUBLISH QoS 1 on 'mpx/t' without properties: 1 + 1 (length) + 2 + 5 (topic) + 2 (id) + 1 (no properties) + payload.
    await mosqPub(broker.port, ['-t', 'mpx/t', '-q', '1', '-m', 'a'.repeat(88)]); // 100 bytes
    await mosqPub(broker.port, ['-t', 'mpx/t', '-q', '1', '-m', 'b'.repeat(89)]); // 101 bytes
    await mosqPub(broker.port, ['-t', 'mpx/t', '-q', '1', '-m', 'tiny']);
    const got = await collect(small, 2);
    assert.deepEqual(got.map((m) => m.payload), ['a'.repeat(88), 'tiny'], '[MQTT-3.1.2-24]');
    await expectNoMessage(small, 150);
    assert.equal(small.connected, true);
  });

  test('to the broker: a PUBLISH of exactly max_packet_size is taken, one byte more is DISCONNECT 0x95',
    mosquittoDiffers('leaves the Remaining Length bytes out of the packet size: it takes 202 bytes with max_packet_size 200'), async () => {
    const broker = await startBroker({ config: 'max_packet_size 200\n' });
    const sub = await v5(broker.port, { clientId: 'mpy-sub' });
    await sub.subscribeAsync('mpy/t', { qos: 1 });
    const exact = packet.publish({ topic: 'mpy/t', payload: 'c'.repeat(187), qos: 1, packetId: 1 });
    const over = packet.publish({ topic: 'mpy/t', payload: 'd'.repeat(188), qos: 1, packetId: 2 });
    assert.deepEqual([exact.length, over.length], [200, 201]);
    const [raw] = await RawClient5.connect(broker.port, { clientId: 'mpy-raw' });
    raw.send(exact);
    assert.equal((await raw.next('puback')).reasonCode, 0);
    assert.equal((await collect(sub, 1))[0]!.payload, 'c'.repeat(187));
    raw.send(over);
    assert.equal((await raw.next('disconnect')).reasonCode, 0x95);
    await raw.closedByBroker();
    await expectNoMessage(sub, 150);
  });

  test('a retained message too large for a new subscriber is not sent to it; the small one is, and to others both', T, async () => {
    const broker = await startBroker();
    await mosqPub(broker.port, ['-t', 'mpr/big', '-r', '-q', '1', '-m', 'x'.repeat(300)]);
    await mosqPub(broker.port, ['-t', 'mpr/small', '-r', '-q', '1', '-m', 'tiny']);
    const small = await v5(broker.port, { clientId: 'mpr-js', properties: { maximumPacketSize: 100 } });
    await small.subscribeAsync('mpr/#', { qos: 1 });
    const [big] = await paho(broker.port, { clientId: 'mpr-paho' });
    await big.subscribe('mpr/#', { qos: 1 });
    const [m] = await collect(small, 1);
    assert.deepEqual([m!.topic, m!.payload, m!.retain], ['mpr/small', 'tiny', true]);
    await expectNoMessage(small, 200);
    assert.equal(small.connected, true);
    await big.waitFor('message', (e) => e.topic === 'mpr/big');
    await big.waitFor('message', (e) => e.topic === 'mpr/small');
  });
});

describe('server keep alive', () => {
  test('max_keepalive 10: a client asking 60 s gets Server Keep Alive 10 (MQTT.js, paho); one asking 5 s keeps 5', T, async () => {
    const broker = await startBroker({ config: 'max_keepalive 10\n' });
    const js = await v5(broker.port, { clientId: 'ska-js', keepalive: 60 });
    assert.equal(connackOf(js).properties?.serverKeepAlive, 10);
    const [, ack] = await paho(broker.port, { clientId: 'ska-paho', keepalive: 60 });
    assert.equal(ack.props?.ServerKeepAlive, 10);
    const modest = await v5(broker.port, { clientId: 'ska-5', keepalive: 5 });
    assert.equal(connackOf(modest).properties?.serverKeepAlive ?? 5, 5);
  });

  test('max_keepalive 10: a client asking 0 (no keep alive) gets Server Keep Alive 10, as with mosquitto (MQTT.js, paho)',
    T,
    async () => {
    const broker = await startBroker({ config: 'max_keepalive 10\n' });
    const js = await v5(broker.port, { clientId: 'ska0-js', keepalive: 0 });
    assert.equal(connackOf(js).properties?.serverKeepAlive, 10);
    const [, ack] = await paho(broker.port, { clientId: 'ska0-paho', keepalive: 0 });
    assert.equal(ack.props?.ServerKeepAlive, 10);
    const [raw, ack2] = await RawClient5.connect(broker.port, { clientId: 'ska0-raw', keepalive: 0 });
    assert.deepEqual(ack2.properties.serverKeepAlive, [10]);
    raw.destroy();
  });

  // mosquitto and midge both refuse max_keepalive below 10.
  const KA = 10;
  test(`max_keepalive ${KA}: a raw client asking 60 s that stays silent is dropped after 1.5 × ${KA} s; MQTT.js adopts ${KA} s and stays`,
    { timeout: 40_000 }, async () => {
      const broker = await startBroker({ config: `max_keepalive ${KA}\n` });
      const js = await v5(broker.port, { clientId: 'ska2-js', keepalive: 60 });
      await js.subscribeAsync('ska2/t', { qos: 0 });
      const [raw, ack] = await RawClient5.connect(broker.port, { clientId: 'ska2-raw', keepalive: 60 });
      assert.deepEqual(ack.properties.serverKeepAlive, [KA]);
      const t0 = Math.round(performance.now());
      await raw.closedByBroker(KA * 1500 + 4000);
      const dt = Math.round(performance.now()) - t0;
      assert.ok(dt >= KA * 1250, `dropped after ${dt} ms`);
      // mosquitto 2.0.11 closes without a DISCONNECT (see 01-reason-codes).
      if (!isMosquitto) assert.equal(raw.packets.find((p) => p.type === 'disconnect')?.reasonCode, 0x8d);
      await sleep(Math.max(0, KA * 2500 - (Math.round(performance.now()) - t0)));
      await mosqPub(broker.port, ['-t', 'ska2/t', '-m', 'alive']);
      assert.equal((await collect(js, 1))[0]!.payload, 'alive');
      assert.equal(js.connected, true);
    });
});

describe('assigned client identifier', () => {
  test('an empty client id gets an Assigned Client Identifier (MQTT.js, paho) that names a real session; a named client gets none', T, async () => {
    const broker = await startBroker();
    const anon = await v5(broker.port, { clientId: '', properties: { sessionExpiryInterval: 60 } });
    const id = connackOf(anon).properties?.assignedClientIdentifier;
    assert.ok(typeof id === 'string' && id.length > 0, `assigned: ${String(id)}`);
    const [, ack] = await paho(broker.port, { clientId: '' });
    const id2 = ack.props?.AssignedClientIdentifier;
    assert.ok(typeof id2 === 'string' && id2.length > 0 && id2 !== id, `paho assigned: ${String(id2)}`);
    const named = await v5(broker.port, { clientId: 'aci-named' });
    assert.equal(connackOf(named).properties?.assignedClientIdentifier, undefined);

    await anon.subscribeAsync('aci/t', { qos: 1 });
    await anon.endAsync();
    await named.publishAsync('aci/t', 'for the assigned id', { qos: 1 });
    const back = await v5(broker.port, { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } });
    assert.equal(connackOf(back).sessionPresent, true);
    assert.equal((await collect(back, 1))[0]!.payload, 'for the assigned id');
  });
});

describe('retain available', () => {
  test('retain_available false: CONNACK says Retain Available 0 and a retained PUBLISH is DISCONNECT 0x9A; by default retain works', T, async () => {
    const off = await startBroker({ config: 'retain_available false\n' });
    const sub = await v5(off.port, { clientId: 'ra-sub' });
    await sub.subscribeAsync('ra/t', { qos: 1 });
    const pub = await v5(off.port, { clientId: 'ra-pub' });
    assert.equal(connackOf(pub).properties?.retainAvailable, false);
    const [, ack] = await paho(off.port, { clientId: 'ra-paho' });
    assert.equal(ack.props?.RetainAvailable, 0);
    await pub.publishAsync('ra/t', 'plain', { qos: 1 });
    assert.equal((await collect(sub, 1))[0]!.payload, 'plain');
    pub.publish('ra/t', 'kept?', { qos: 1, retain: true });
    const d = await waitForPacket(pub, (p) => p.dir === 'in' && p.cmd === 'disconnect');
    assert.equal((d.packet as IDisconnectPacket).reasonCode, 0x9a, '[MQTT-3.3.1-19]');
    await waitForEvent(pub, 'close');
    await expectNoMessage(sub, 200);
    const late = await v5(off.port, { clientId: 'ra-late' });
    await late.subscribeAsync('ra/t', { qos: 1 });
    await expectNoMessage(late, 200);

    const on = await startBroker();
    const pub2 = await v5(on.port, { clientId: 'ra-pub' });
    assert.notEqual(connackOf(pub2).properties?.retainAvailable, false);
    await pub2.publishAsync('ra/t', 'kept', { qos: 1, retain: true });
    const late2 = await v5(on.port, { clientId: 'ra-late' });
    await late2.subscribeAsync('ra/t', { qos: 1 });
    const [m] = await collect(late2, 1);
    assert.deepEqual([m!.payload, m!.retain], ['kept', true]);
  });
});
