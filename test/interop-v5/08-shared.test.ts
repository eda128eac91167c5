/**
 * Shared subscriptions ($share/GROUP/FILTER, MQTT 5.0 section 4.8.2) against the broker process: a group
 * made of MQTT.js (v5), paho (v5) and mosquitto_sub (3.1.1) shares the messages so that each is received
 * exactly once; a QoS 1 message in flight to a member that goes away goes to another member; retained
 * messages are not sent on a shared subscription.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import type { IPublishPacket, MqttClient } from 'mqtt';
import { startBroker } from '../helpers/broker-process.js';
import { collect, expectNoMessage, packets, waitForEvent } from '../helpers/mqttjs.js';
import { cleanup, isMosquitto, mosqPub, mosqSub, mosquittoDiffers, paho, sleep, T, untilReady, v5, withoutMarkers } from './_clients.js';

afterEach(cleanup);

interface Held { id: string; payload: string; subId: unknown; ack: () => void }

/**
 * Two MQTT.js members of $share/r/shr/t that never acknowledge by themselves (customHandleAcks); one QoS 1
 * message; the member holding it drops its connection. Returns the first delivery and the one that follows
 * to the other member (acknowledged), after checking that the other member got it exactly once.
 */
async function memberLeaves(withIds: boolean): Promise<[Held, Held]> {
  const broker = await startBroker();
  const held: Held[] = [];
  const member = (id: string) => v5(broker.port, {
    clientId: id,
    customHandleAcks: (_topic, message, packet: IPublishPacket, done) =>
      held.push({ id, payload: message.toString(), subId: packet.properties?.subscriptionIdentifier, ack: () => done(0) }),
  });
  const a = await member('shr-a');
  const b = await member('shr-b');
  await a.subscribeAsync('$share/r/shr/t', { qos: 1, properties: withIds ? { subscriptionIdentifier: 1 } : undefined });
  await b.subscribeAsync('$share/r/shr/t', { qos: 1, properties: withIds ? { subscriptionIdentifier: 2 } : undefined });
  const pub = await v5(broker.port, { clientId: 'shr-pub' });
  await pub.publishAsync('shr/t', 'only', { qos: 1 });

  const deadline = Math.round(performance.now()) + 3000;
  while (held.length === 0 && Math.round(performance.now()) < deadline) await sleep(20);
  await sleep(200);
  assert.equal(held.length, 1, `one member holds it, unacknowledged: ${JSON.stringify(held)}`);
  const [gone, other, otherId] = held[0]!.id === 'shr-a' ? [a, b, 'shr-b'] : [b, a, 'shr-a'];
  const closed = waitForEvent(gone, 'close');
  gone.stream.destroy(); // leaves without acknowledging, session expiry 0
  await closed;

  while (held.length === 1 && Math.round(performance.now()) < deadline + 3000) await sleep(20);
  assert.equal(held.length, 2, 'the message was sent again');
  held[1]!.ack();
  assert.deepEqual([held[1]!.id, held[1]!.payload], [otherId, 'only']);
  const [m] = await collect(other, 1);
  assert.equal(m!.payload, 'only');
  await expectNoMessage(other, 200);
  return [held[0]!, held[1]!];
}

/** Payloads of the PUBLISH packets a client received. */
function received(client: MqttClient): string[] {
  return packets(client).filter((p) => p.dir === 'in' && p.cmd === 'publish').map((p) => (p.packet as IPublishPacket).payload.toString());
}

describe('shared subscriptions', () => {
  test('a group of MQTT.js v5, paho v5 and mosquitto_sub 3.1.1 receives each of 300 messages exactly once in total', T, async () => {
    const broker = await startBroker();
    const js = await v5(broker.port, { clientId: 'sh-js' });
    const granted = await js.subscribeAsync('$share/g/sh/+', { qos: 1 });
    assert.equal(granted[0]!.qos, 1);
    const [py] = await paho(broker.port, { clientId: 'sh-paho' });
    assert.deepEqual(await py.subscribe('$share/g/sh/+', { qos: 1 }), [1]);
    const v311 = mosqSub(broker.port, ['-V', 'mqttv311', '-i', 'sh-311', '-q', '1', '-t', '$share/g/sh/+', '-t', 'ready/sh', '-F', '%p']);
    await untilReady(broker.port, v311, 'ready/sh'); // the same SUBSCRIBE as the shared filter
    const from = v311.lines.length;

    const pub = await v5(broker.port, { clientId: 'sh-pub' });
    await Promise.all(Array.from({ length: 300 }, (_, i) => pub.publishAsync('sh/t', String(i), { qos: 1 })));

    const got = (): string[][] => [received(js), py.messages().map((e) => e.payload!), withoutMarkers(v311.lines.slice(from))];
    const deadline = Math.round(performance.now()) + 8000;
    while (got().flat().length < 300 && Math.round(performance.now()) < deadline) await sleep(50);
    await sleep(300); // anything sent twice would show up now
    const [a, b, c] = got();
    const all = got().flat();
    assert.equal(all.length, 300, `received ${a!.length} + ${b!.length} + ${c!.length}`);
    assert.equal(new Set(all).size, 300, 'no message twice');
    assert.deepEqual([...new Set(all)].map(Number).sort((x, y) => x - y), Array.from({ length: 300 }, (_, i) => i));
    assert.ok([a, b, c].every((m) => m!.length > 0), `every member got some: ${a!.length}, ${b!.length}, ${c!.length}`);
    // Midge's default strategy is round robin: exactly a third each.
    if (!isMosquitto) assert.deepEqual([a!.length, b!.length, c!.length], [100, 100, 100]);
  });

  test('a QoS 1 message in flight to a member that disconnects is sent to another member',
    mosquittoDiffers('keeps the message with the session of the member that left (dropped when it ends)'), async () => {
      const [first, again] = await memberLeaves(false);
      assert.equal(first.subId, undefined);
      assert.equal(again.subId, undefined);
    });

  test('the message sent to another member carries that member\'s subscription identifier [MQTT-3.3.4-3]',
    mosquittoDiffers('keeps the message with the session of the member that left'),
    async () => {
      const [first, again] = await memberLeaves(true);
      assert.equal(first.subId, first.id === 'shr-a' ? 1 : 2, 'the first delivery carries it');
      assert.equal(again.subId, again.id === 'shr-a' ? 1 : 2, 'the second delivery carries the other member\'s');
    });

  test('retained messages are not sent on a shared subscription; a plain subscription gets them',
    mosquittoDiffers('sends retained messages on a new shared subscription'), async () => {
    const broker = await startBroker();
    await mosqPub(broker.port, ['-t', 'shret/t', '-m', 'kept', '-r', '-q', '1']);
    const shared = await v5(broker.port, { clientId: 'shret-js' });
    await shared.subscribeAsync('$share/g/shret/t', { qos: 1 });
    const [plain] = await paho(broker.port, { clientId: 'shret-paho' });
    await plain.subscribe('shret/t', { qos: 1 });
    const m = await plain.waitFor('message');
    assert.deepEqual([m.payload, m.retain], ['kept', true]);
    await expectNoMessage(shared, 300);

    await mosqPub(broker.port, ['-t', 'shret/t', '-m', 'live', '-q', '1']);
    const [live] = await collect(shared, 1);
    assert.deepEqual([live!.payload, live!.retain], ['live', false]);
    assert.deepEqual(received(shared), ['live']);
  });
});
