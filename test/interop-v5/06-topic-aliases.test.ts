/**
 * MQTT 5 topic aliases both ways against the broker process. From the client: MQTT.js assigns or reuses
 * aliases on its own (autoAssignTopicAlias / autoUseTopicAlias) and subscribers still see full topics.
 * To the client: a subscriber that allows aliases (MQTT.js topicAliasMaximum, paho TopicAliasMaximum) gets
 * the topic once, then the alias alone; one that does not gets full topics. (mosquitto_sub 2.0.11 accepts
 * `-D connect topic-alias-maximum` but its library refuses a PUBLISH with an empty topic, so it cannot be
 * used here; paho 1.6.1 hands the alias to the application unresolved, which shows the wire.)
 * Invalid aliases (0, above the maximum) are in 01-reason-codes.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import type { IPublishPacket, MqttClient } from 'mqtt';
import { startBroker } from '../helpers/broker-process.js';
import { collect, expectNoMessage, packets } from '../helpers/mqttjs.js';
import { cleanup, connackOf, mosqPub, mosqSub, mosquittoDiffers, paho, T, untilReady, v5, withoutMarkers } from './_clients.js';

afterEach(cleanup);

/** [topic, alias, payload] of the PUBLISH packets a client sent or received, as on the wire. */
function wire(client: MqttClient, dir: 'in' | 'out'): [string, number | undefined, string][] {
  return packets(client).filter((p) => p.dir === dir && p.cmd === 'publish').map((p) => {
    const pub = p.packet as IPublishPacket;
    return [pub.topic.toString(), pub.properties?.topicAlias, pub.payload.toString()];
  });
}

describe('topic aliases', () => {
  test('from the client: MQTT.js autoAssignTopicAlias / autoUseTopicAlias send the topic once, subscribers get it every time', T, async () => {
    const broker = await startBroker();
    const sub = mosqSub(broker.port, ['-V', 'mqttv5', '-q', '1', '-t', 'ta/#', '-F', '%t %p']);
    await untilReady(broker.port, sub, 'ta/ready');
    const assign = await v5(broker.port, { clientId: 'ta-assign', autoAssignTopicAlias: true });
    assert.equal(connackOf(assign).properties?.topicAliasMaximum, 10);
    for (const p of ['a1', 'a2', 'a3']) await assign.publishAsync('ta/assigned/long/topic', p, { qos: 1 });
    const use = await v5(broker.port, { clientId: 'ta-use', autoUseTopicAlias: true });
    await use.publishAsync('ta/used', 'u1', { qos: 1, properties: { topicAlias: 2 } });
    await use.publishAsync('ta/used', 'u2', { qos: 1 });

    // What went out: the aliases were really used (else this test would prove nothing).
    const [first, ...rest] = wire(assign, 'out');
    assert.equal(first![0], 'ta/assigned/long/topic');
    assert.ok(first![1] !== undefined && first![1] >= 1 && first![1] <= 10, `alias ${String(first![1])}`);
    assert.deepEqual(rest, [['', first![1], 'a2'], ['', first![1], 'a3']]);
    assert.deepEqual(wire(use, 'out'), [['ta/used', 2, 'u1'], ['', 2, 'u2']]);

    await sub.waitForLine(/ u2$/);
    assert.deepEqual(withoutMarkers(sub.lines), [
      'ta/assigned/long/topic a1', 'ta/assigned/long/topic a2', 'ta/assigned/long/topic a3', 'ta/used u1', 'ta/used u2',
    ]);
  });

  test('to the client: a subscriber with Topic Alias Maximum gets the topic once, then the alias alone; one without gets topics',
    mosquittoDiffers('never sends topic aliases to clients'), async () => {
      const broker = await startBroker();
      const aliased = await v5(broker.port, { clientId: 'tb-aliased', properties: { topicAliasMaximum: 5 } });
      await aliased.subscribeAsync('tb/#', { qos: 1 });
      const plain = await v5(broker.port, { clientId: 'tb-plain' });
      await plain.subscribeAsync('tb/#', { qos: 1 });
      const [py] = await paho(broker.port, { clientId: 'tb-paho', props: { TopicAliasMaximum: 3 } });
      await py.subscribe('tb/#', { qos: 1 });
      for (const p of ['1', '2', '3']) await mosqPub(broker.port, ['-t', 'tb/some/long/topic', '-m', p, '-q', '1']);

      // MQTT.js resolves the alias: every message has its topic.
      assert.deepEqual((await collect(aliased, 3)).map((m) => `${m.topic} ${m.payload}`),
        ['tb/some/long/topic 1', 'tb/some/long/topic 2', 'tb/some/long/topic 3']);
      const [first, ...rest] = wire(aliased, 'in');
      assert.equal(first![0], 'tb/some/long/topic');
      assert.ok(first![1] !== undefined && first![1] >= 1 && first![1] <= 5, `alias ${String(first![1])}`);
      assert.deepEqual(rest, [['', first![1], '2'], ['', first![1], '3']]);
      // Never beyond what the client allowed, and never to a client that did not allow it [MQTT-3.3.2-9].
      assert.deepEqual(wire(plain, 'in'), [['tb/some/long/topic', undefined, '1'], ['tb/some/long/topic', undefined, '2'],
        ['tb/some/long/topic', undefined, '3']]);
      await collect(plain, 3);
      await expectNoMessage(plain, 0);

      await py.waitFor('message', (e) => e.payload === '3');
      const seen = py.messages().map((e) => [e.topic, e.props?.TopicAlias, e.payload]);
      const alias = seen[0]![1] as number;
      assert.ok(alias >= 1 && alias <= 3, `paho saw ${JSON.stringify(seen)}`);
      assert.deepEqual(seen, [['tb/some/long/topic', alias, '1'], ['', alias, '2'], ['', alias, '3']]);
    });
});
