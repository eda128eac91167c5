/**
 * Message expiry and wills in MQTT 5 against the broker process: a queued message past its expiry is
 * dropped while a fresh one arrives with the time it has left; a delayed will is cancelled by a
 * reconnection in time and sent when there is none; will properties reach subscribers unchanged.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import type { IPublishPacket, MqttClient } from 'mqtt';
import { startBroker } from '../helpers/broker-process.js';
import { collect, expectNoMessage, packets } from '../helpers/mqttjs.js';
import { cleanup, mosqPub, mosqSub, paho, sleep, T, untilReady, v5, withoutMarkers } from './_clients.js';

afterEach(cleanup);

/** Every PUBLISH the MQTT.js client received, as MQTT.js parsed it (properties included). */
function publishes(client: MqttClient): IPublishPacket[] {
  return packets(client).filter((p) => p.dir === 'in' && p.cmd === 'publish').map((p) => p.packet as IPublishPacket);
}

describe('message expiry interval', () => {
  test('queued for an offline client: expiry 1 s is gone after 2 s, expiry 100 s arrives with the time left', T, async () => {
    const broker = await startBroker();
    const opts = { clientId: 'mx-js', clean: false, properties: { sessionExpiryInterval: 60 } };
    const js = await v5(broker.port, opts);
    await js.subscribeAsync('mx/t', { qos: 1 });
    await js.endAsync();
    const subArgs = ['-V', 'mqttv5', '-c', '-x', '60', '-i', 'mx-sub', '-q', '1', '-t', 'mx/t', '-F', '%E %p'];
    const first = mosqSub(broker.port, subArgs);
    await untilReady(broker.port, first, 'mx/t');
    first.kill('SIGKILL');
    await first.exited;

    await mosqPub(broker.port, ['-t', 'mx/t', '-q', '1', '-m', 'short', '-D', 'publish', 'message-expiry-interval', '1']);
    await mosqPub(broker.port, ['-t', 'mx/t', '-q', '1', '-m', 'long', '-D', 'publish', 'message-expiry-interval', '100']);
    await sleep(2200);

    const back = await v5(broker.port, opts);
    const [m] = await collect(back, 1);
    assert.equal(m!.payload, 'long', 'the expired message is not delivered [MQTT-3.3.2-5]');
    await expectNoMessage(back, 200);
    const left = publishes(back)[0]!.properties?.messageExpiryInterval;
    assert.ok(left !== undefined && left >= 95 && left <= 98, `the remaining lifetime is sent [MQTT-3.3.2-6]: ${String(left)}`);

    const sub = mosqSub(broker.port, subArgs);
    const line = await sub.waitForLine(/./);
    const [expiry, payload] = line.split(' ');
    assert.equal(payload, 'long');
    assert.ok(Number(expiry) >= 95 && Number(expiry) <= 98, `mosquitto_sub printed ${line}`);
    await untilReady(broker.port, sub, 'mx/t');
    assert.deepEqual(withoutMarkers(sub.lines), [line]);
  });
});

describe('will', () => {
  test('a will with delay 5 s is not sent when the client is back after 1 s, and is sent after 5 s when it is not (paho)', { timeout: 30_000 }, async () => {
    const broker = await startBroker();
    const watch = await v5(broker.port, { clientId: 'wd-watch' });
    await watch.subscribeAsync('wd/#', { qos: 1 });
    const conn = (id: string) => ({
      clientId: id, cleanStart: false, props: { SessionExpiryInterval: 60 },
      will: { topic: `wd/${id}`, payload: `will of ${id}`, qos: 1, props: { WillDelayInterval: 5 } },
    });
    const [back] = await paho(broker.port, conn('back'));
    const [gone] = await paho(broker.port, conn('gone'));
    const t0 = Date.now();
    await Promise.all([back.kill(), gone.kill()]);
    await sleep(1000);
    const [, ack] = await paho(broker.port, conn('back'));
    assert.equal(ack.sessionPresent, true);

    const [m] = await collect(watch, 1, 9000);
    const dt = Date.now() - t0;
    assert.equal(m!.payload, 'will of gone');
    assert.ok(dt >= 4500, `the will came ${dt} ms after the connection dropped, before its 5 s delay`);
    await sleep(Math.max(0, 7000 - (Date.now() - t0)));
    await expectNoMessage(watch, 0);
  });

  test('will properties reach subscribers unchanged (MQTT.js will → mosquitto_sub -F and paho)', T, async () => {
    const broker = await startBroker();
    const sub = mosqSub(broker.port, ['-V', 'mqttv5', '-t', 'wp/#', '-F', '%C|%R|%D|%P|%p']);
    await untilReady(broker.port, sub, 'wp/ready');
    const from = sub.lines.length;
    const [py] = await paho(broker.port, { clientId: 'wp-paho' });
    await py.subscribe('wp/#', { qos: 1 });

    const dying = await v5(broker.port, {
      clientId: 'wp-dying',
      will: {
        topic: 'wp/will', payload: Buffer.from('gone'), qos: 1, retain: false,
        properties: {
          contentType: 'text/plain', responseTopic: 'wp/reply', correlationData: Buffer.from('corr-42'),
          payloadFormatIndicator: true, messageExpiryInterval: 60, userProperties: { b: ['2', '3'], a: '1' },
        },
      },
    });
    dying.stream.destroy(); // no DISCONNECT: the will is published

    assert.equal(await sub.waitForLine(/gone$/, 3000, from), 'text/plain|wp/reply|corr-42|b:2 b:3 a:1|gone');
    const m = await py.waitFor('message', (e) => e.topic === 'wp/will');
    assert.equal(m.payload, 'gone');
    assert.deepEqual(m.props, {
      PayloadFormatIndicator: 1, ContentType: 'text/plain', ResponseTopic: 'wp/reply', CorrelationData: Buffer.from('corr-42').toString('hex'),
      UserProperty: [['b', '2'], ['b', '3'], ['a', '1']], MessageExpiryInterval: m.props?.MessageExpiryInterval,
    });
    const left = Number(m.props?.MessageExpiryInterval);
    assert.ok(left >= 58 && left <= 60, `message expiry ${left}`);
  });
});
