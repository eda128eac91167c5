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
import { packet, prop, RawClient5 } from './_wire.js';
import { cleanup, connackOf, isMosquitto, mosqPub, mosqSub, mosquittoDiffers, paho, T, untilReady, v5, withoutMarkers } from './_clients.js';

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

  test('from the client: an alias mapped again to another topic is used with the new topic (MQTT.js reuses aliases LRU)', T, async () => {
    const broker = await startBroker();
    const sub = await v5(broker.port, { clientId: 'tl-sub' });
    await sub.subscribeAsync('tl/#', { qos: 1 });
    const pub = await v5(broker.port, { clientId: 'tl-pub', autoAssignTopicAlias: true });
    const topics = [...Array.from({ length: 12 }, (_, i) => `tl/${i}`), 'tl/0', 'tl/11', 'tl/1'];
    for (const [i, t] of topics.entries()) await pub.publishAsync(t, String(i), { qos: 1 });
    const sent = wire(pub, 'out');
    assert.ok(sent.every(([, alias]) => alias !== undefined && alias >= 1 && alias <= 10), JSON.stringify(sent));
    assert.ok(new Set(sent.map(([, alias]) => alias)).size === 10, 'all ten aliases used, so some were remapped');
    const got = await collect(sub, topics.length);
    assert.deepEqual(got.map((m) => `${m.topic} ${m.payload}`), topics.map((t, i) => `${t} ${i}`));
  });

  test('to the client: never an alias above the client\'s Topic Alias Maximum of 1, topics right every time (MQTT.js)', T, async () => {
    const broker = await startBroker();
    const sub = await v5(broker.port, { clientId: 'tm-sub', properties: { topicAliasMaximum: 1 } });
    await sub.subscribeAsync('tm/#', { qos: 1 });
    const topics = ['tm/a', 'tm/b', 'tm/a', 'tm/b', 'tm/b', 'tm/a'];
    for (const [i, t] of topics.entries()) await mosqPub(broker.port, ['-t', t, '-m', String(i), '-q', '1']);
    const got = await collect(sub, topics.length);
    assert.deepEqual(got.map((m) => `${m.topic} ${m.payload}`), topics.map((t, i) => `${t} ${i}`));
    assert.ok(wire(sub, 'in').every(([, alias]) => alias === undefined || alias === 1), JSON.stringify(wire(sub, 'in')));
    // Midge does use the one alias (mosquitto 2.0.11 never sends aliases, see above).
    if (!isMosquitto) assert.ok(wire(sub, 'in').some(([, alias]) => alias === 1), JSON.stringify(wire(sub, 'in')));
    assert.equal(sub.connected, true);
  });

  test('aliases end with the network connection: after a reconnection an alias-only PUBLISH is DISCONNECT 0x82', T, async () => {
    const broker = await startBroker();
    const sub = await v5(broker.port, { clientId: 'tr-sub' });
    await sub.subscribeAsync('tr/#', { qos: 1 });
    const session = { clientId: 'tr-raw', cleanStart: false, properties: [prop.sessionExpiryInterval(60)] };
    const [first] = await RawClient5.connect(broker.port, session);
    first.send(packet.publish({ topic: 'tr/x', payload: 'set', qos: 1, packetId: 1, properties: [prop.topicAlias(1)] }));
    first.send(packet.publish({ topic: '', payload: 'used', qos: 1, packetId: 2, properties: [prop.topicAlias(1)] }));
    await first.next('puback');
    await first.next('puback');
    first.send(packet.disconnect(0));
    await first.closedByBroker();
    const [again, ack] = await RawClient5.connect(broker.port, session);
    assert.equal(ack.sessionPresent, true);
    again.send(packet.publish({ topic: '', payload: 'stale', qos: 1, packetId: 3, properties: [prop.topicAlias(1)] }));
    assert.equal((await again.next('disconnect')).reasonCode, 0x82);
    await again.closedByBroker();
    assert.deepEqual((await collect(sub, 2)).map((m) => `${m.topic} ${m.payload}`), ['tr/x set', 'tr/x used']);
    await expectNoMessage(sub, 150);
  });

  test('to the client: a message dropped for the client\'s Maximum Packet Size leaves no alias the client never learnt',
    T, async () => {
    const broker = await startBroker();
    const sub = await v5(broker.port, { clientId: 'tz-sub', properties: { topicAliasMaximum: 5, maximumPacketSize: 100 } });
    await sub.subscribeAsync('tz/#', { qos: 1 });
    await mosqPub(broker.port, ['-t', 'tz/t', '-q', '1', '-m', 'x'.repeat(300)]);
    await mosqPub(broker.port, ['-t', 'tz/t', '-q', '1', '-m', 'small 1']);
    await mosqPub(broker.port, ['-t', 'tz/t', '-q', '1', '-m', 'small 2']);
    const got = await collect(sub, 2);
    assert.deepEqual(got.map((m) => `${m.topic} ${m.payload}`), ['tz/t small 1', 'tz/t small 2']);
    assert.equal(sub.connected, true);
    // The first PUBLISH that reaches the client names the topic [MQTT-3.3.2-12 / 3.3.4].
    const first = wire(sub, 'in')[0]!;
    assert.equal(first[0], 'tz/t', JSON.stringify(wire(sub, 'in')));
  });
});
