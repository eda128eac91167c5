/**
 * MQTT 5 message properties through the broker process: request/response (response topic, correlation
 * data, response information), user properties (order and duplicates kept), payload format indicator
 * (an invalid UTF-8 payload is refused with 0x99) and content type, between MQTT.js, paho,
 * mosquitto_pub / mosquitto_sub and, where the exact wire order matters, a raw client.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import type { IPublishPacket, MqttClient } from 'mqtt';
import { startBroker } from '../helpers/broker-process.js';
import { collect, expectNoMessage, packets } from '../helpers/mqttjs.js';
import { cleanup, connackOf, isMosquitto, mosqPub, mosqSub, mosquittoDiffers, paho, sleep, T, untilReady, v5, withoutMarkers } from './_clients.js';
import { packet, RawClient5 } from './_wire.js';

afterEach(cleanup);

function publishes(client: MqttClient): IPublishPacket[] {
  return packets(client).filter((p) => p.dir === 'in' && p.cmd === 'publish').map((p) => p.packet as IPublishPacket);
}

describe('request / response', () => {
  test('a request/response round trip between two MQTT.js clients: response topic and correlation data pass through', T, async () => {
    const broker = await startBroker();
    const requester = await v5(broker.port, { clientId: 'rr-req', properties: { requestResponseInformation: true } });
    // Midge answers with response information (mosquitto 2.0.11 sends none: then any reply topic will do).
    const base = connackOf(requester).properties?.responseInformation ?? 'rr/replies/rr-req';
    if (!isMosquitto) assert.equal(base, 'response/rr-req');
    await requester.subscribeAsync(`${base}/#`, { qos: 1 });
    const responder = await v5(broker.port, { clientId: 'rr-svc' });
    await responder.subscribeAsync('rr/service', { qos: 1 });

    const requests = [
      { payload: 'q1', responseTopic: `${base}/a`, correlationData: Buffer.from([0x00, 0x01]) },
      { payload: 'q2', responseTopic: `${base}/b`, correlationData: Buffer.from([0xff, 0xfe, 0x00, 0x80]) },
    ];
    for (const r of requests) {
      await requester.publishAsync('rr/service', r.payload, { qos: 1, properties: { responseTopic: r.responseTopic, correlationData: r.correlationData } });
    }
    await collect(responder, 2);
    const got = publishes(responder);
    assert.deepEqual(got.map((p) => [p.payload.toString(), p.properties?.responseTopic, p.properties?.correlationData]),
      requests.map((r) => [r.payload, r.responseTopic, r.correlationData]));
    // Answered in reverse order: the requester matches answers by correlation data, not by order.
    for (const p of [...got].reverse()) {
      await responder.publishAsync(p.properties!.responseTopic!, `answer to ${p.payload.toString()}`,
        { qos: 1, properties: { correlationData: p.properties!.correlationData! } });
    }
    await collect(requester, 2);
    const answers = publishes(requester).map((p) => [p.topic, p.properties?.correlationData, p.payload.toString()]);
    assert.deepEqual(answers, [
      [`${base}/b`, requests[1]!.correlationData, 'answer to q2'],
      [`${base}/a`, requests[0]!.correlationData, 'answer to q1'],
    ]);
  });

  test('Request Response Information 1 gets Response Information in CONNACK (MQTT.js, paho); without the request, none',
    mosquittoDiffers('never sends Response Information'), async () => {
      const broker = await startBroker();
      const asks = await v5(broker.port, { clientId: 'ri-js', properties: { requestResponseInformation: true } });
      assert.equal(connackOf(asks).properties?.responseInformation, 'response/ri-js');
      const [, ack] = await paho(broker.port, { clientId: 'ri-paho', props: { RequestResponseInformation: 1 } });
      assert.equal(ack.props?.ResponseInformation, 'response/ri-paho');
      const silent = await v5(broker.port, { clientId: 'ri-none' });
      assert.equal(connackOf(silent).properties?.responseInformation, undefined, '[MQTT-3.1.2-28]');
      const [, ack2] = await paho(broker.port, { clientId: 'ri-paho0', props: { RequestResponseInformation: 0 } });
      assert.equal(ack2.props?.ResponseInformation, undefined);
    });
});

describe('user properties', () => {
  test('order and duplicates are kept from mosquitto_pub -D publish user-property to paho, mosquitto_sub and the wire', T, async () => {
    const broker = await startBroker();
    const [py] = await paho(broker.port, { clientId: 'up-paho' });
    await py.subscribe('up/t', { qos: 1 });
    const sub = mosqSub(broker.port, ['-V', 'mqttv5', '-t', 'up/t', '-t', 'ready/up', '-F', '%P|%p']);
    await untilReady(broker.port, sub, 'ready/up');
    const [raw] = await RawClient5.connect(broker.port, { clientId: 'up-raw' });
    raw.send(packet.subscribe(1, [['up/t', 1]]));
    await raw.next('suback');

    await mosqPub(broker.port, ['-t', 'up/t', '-q', '1', '-m', 'with',
      '-D', 'publish', 'user-property', 'b', '2', '-D', 'publish', 'user-property', 'a', '1', '-D', 'publish', 'user-property', 'b', '3']);
    await mosqPub(broker.port, ['-t', 'up/t', '-q', '1', '-m', 'without']);

    const onWire = [await raw.next('publish'), await raw.next('publish')];
    for (const p of onWire) raw.send(packet.ack('puback', p.packetId!));
    assert.deepEqual(onWire.map((p) => [p.payload!.toString(), p.properties.userProperty]),
      [['with', [['b', '2'], ['a', '1'], ['b', '3']]], ['without', undefined]]);
    await py.waitFor('message', (e) => e.payload === 'without');
    assert.deepEqual(py.messages().map((e) => [e.payload, e.props?.UserProperty]),
      [['with', [['b', '2'], ['a', '1'], ['b', '3']]], ['without', undefined]]);
    await sub.waitForLine(/without$/);
    assert.deepEqual(withoutMarkers(sub.lines), ['b:2 a:1 b:3|with', '|without']);
  });
});

describe('payload format indicator and content type', () => {
  test('a payload marked UTF-8 that is not gets PUBACK 0x99 (MQTT.js, mosquitto_pub) and is not delivered; valid ones are',
    mosquittoDiffers('does not check payloads against the Payload Format Indicator (PUBACK 0, delivered)'), async () => {
    const dir = mkdtempSync(join(tmpdir(), 'midge-v5-pfi-'));
    try {
      const bad = join(dir, 'bad.bin');
      writeFileSync(bad, Buffer.from([0x61, 0xff, 0xfe, 0x62]));
      const broker = await startBroker();
      const sub = await v5(broker.port, { clientId: 'pfi-sub' });
      await sub.subscribeAsync('pfi/t', { qos: 1 });
      const [py] = await paho(broker.port, { clientId: 'pfi-paho' });
      await py.subscribe('pfi/t', { qos: 1 });
      const pub = await v5(broker.port, { clientId: 'pfi-pub' });

      await assert.rejects(pub.publishAsync('pfi/t', Buffer.from([0xc3, 0x28]), { qos: 1, properties: { payloadFormatIndicator: true } }),
        (err: Error & { code?: number }) => {
          assert.equal(err.code, 0x99);
          return true;
        });
      const r = await mosqPub(broker.port, ['-t', 'pfi/t', '-q', '1', '-f', bad, '-D', 'publish', 'payload-format-indicator', '1']);
      assert.match(r.stderr, /Payload format invalid/i, 'mosquitto_pub reports the PUBACK reason code');
      // Controls: valid UTF-8 with the indicator, and the same invalid bytes without it.
      await pub.publishAsync('pfi/t', 'grüße', { qos: 1, properties: { payloadFormatIndicator: true } });
      await mosqPub(broker.port, ['-t', 'pfi/t', '-q', '1', '-f', bad]);

      const got = await collect(sub, 2);
      assert.deepEqual(got.map((m) => m.payload), ['grüße', Buffer.from([0x61, 0xff, 0xfe, 0x62]).toString()]);
      assert.deepEqual(publishes(sub).map((p) => p.properties?.payloadFormatIndicator), [true, undefined]);
      await expectNoMessage(sub, 150);
      await py.waitFor('message', (e) => e.hex === '61fffe62');
      assert.deepEqual(py.messages().map((e) => [e.hex, e.props?.PayloadFormatIndicator]),
        [[Buffer.from('grüße').toString('hex'), 1], ['61fffe62', undefined]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('content type passes through (paho → mosquitto_sub %C, MQTT.js); a message without one has none', T, async () => {
    const broker = await startBroker();
    const sub = mosqSub(broker.port, ['-V', 'mqttv5', '-t', 'ct/t', '-t', 'ready/ct', '-F', '%C|%p']);
    await untilReady(broker.port, sub, 'ready/ct');
    const js = await v5(broker.port, { clientId: 'ct-js' });
    await js.subscribeAsync('ct/t', { qos: 1 });
    const [py] = await paho(broker.port, { clientId: 'ct-paho' });
    py.command({ op: 'publish', topic: 'ct/t', payload: '{"n":1}', qos: 1, props: { ContentType: 'application/json; charset=utf-8' } });
    await py.waitFor('published');
    py.command({ op: 'publish', topic: 'ct/t', payload: 'plain', qos: 1 });
    await sleep(50);

    await collect(js, 2);
    assert.deepEqual(publishes(js).map((p) => [p.payload.toString(), p.properties?.contentType]),
      [['{"n":1}', 'application/json; charset=utf-8'], ['plain', undefined]]);
    await sub.waitForLine(/plain$/);
    assert.deepEqual(withoutMarkers(sub.lines), ['application/json; charset=utf-8|{"n":1}', '|plain']);
  });
});
