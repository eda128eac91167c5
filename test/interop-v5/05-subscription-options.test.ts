/**
 * MQTT 5 subscription options and identifiers against the broker process: no local, retain as published,
 * retain handling 0/1/2 and subscription identifiers, set by paho (SubscribeOptions), MQTT.js and
 * mosquitto_sub. Each option is shown next to a subscription without it, in the same test.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import type { IPublishPacket, MqttClient } from 'mqtt';
import { startBroker } from '../helpers/broker-process.js';
import { collect, expectNoMessage, packets } from '../helpers/mqttjs.js';
import { cleanup, isMosquitto, mosqPub, mosqSub, paho, sleep, T, untilReady, v5, withoutMarkers } from './_clients.js';

afterEach(cleanup);

/** Every PUBLISH the MQTT.js client received, as MQTT.js parsed it. */
function publishes(client: MqttClient): IPublishPacket[] {
  return packets(client).filter((p) => p.dir === 'in' && p.cmd === 'publish').map((p) => p.packet as IPublishPacket);
}

const sorted = (xs: readonly string[]): string[] => [...xs].sort();

describe('subscription options', () => {
  test('no local: paho and MQTT.js do not get their own messages back; a subscription without it does', T, async () => {
    const broker = await startBroker();
    const [py] = await paho(broker.port, { clientId: 'nl-paho' });
    assert.deepEqual(await py.subscribe('nl/t', { qos: 1, noLocal: true }), [1]);
    const js = await v5(broker.port, { clientId: 'nl-js' });
    await js.subscribeAsync('nl/t', { qos: 1, nl: true });
    const ctl = await v5(broker.port, { clientId: 'nl-ctl' });
    await ctl.subscribeAsync('nl/t', { qos: 1, nl: false });

    py.command({ op: 'publish', topic: 'nl/t', payload: 'from paho', qos: 1 });
    await py.waitFor('published');
    await js.publishAsync('nl/t', 'from js', { qos: 1 });
    await ctl.publishAsync('nl/t', 'from ctl', { qos: 1 });

    assert.deepEqual(sorted((await collect(ctl, 3)).map((m) => m.payload)), ['from ctl', 'from js', 'from paho']);
    assert.deepEqual(sorted((await collect(js, 2)).map((m) => m.payload)), ['from ctl', 'from paho']);
    await py.waitFor('message', (e) => e.payload === 'from ctl');
    await py.waitFor('message', (e) => e.payload === 'from js');
    await expectNoMessage(js, 200);
    assert.deepEqual(sorted(py.messages().map((e) => e.payload!)), ['from ctl', 'from js']);
  });

  test('retain as published keeps RETAIN on live delivery (mosquitto_sub, MQTT.js, paho); without it RETAIN is 0', T, async () => {
    const broker = await startBroker();
    const rapSub = mosqSub(broker.port, ['-V', 'mqttv5', '--retain-as-published', '-t', 'rap/t', '-F', '%r %p']);
    const plainSub = mosqSub(broker.port, ['-V', 'mqttv5', '-t', 'rap/t', '-F', '%r %p']);
    await untilReady(broker.port, rapSub, 'rap/t');
    await untilReady(broker.port, plainSub, 'rap/t');
    const rapJs = await v5(broker.port, { clientId: 'rap-js' });
    await rapJs.subscribeAsync('rap/t', { qos: 1, rap: true });
    const plainJs = await v5(broker.port, { clientId: 'plain-js' });
    await plainJs.subscribeAsync('rap/t', { qos: 1, rap: false });
    const [py] = await paho(broker.port, { clientId: 'rap-paho' });
    await py.subscribe('rap/t', { qos: 1, retainAsPublished: true });

    await mosqPub(broker.port, ['-t', 'rap/t', '-m', 'r1', '-r', '-q', '1']);
    await mosqPub(broker.port, ['-t', 'rap/t', '-m', 'n1', '-q', '1']);

    assert.deepEqual((await collect(rapJs, 2)).map((m) => [m.payload, m.retain]), [['r1', true], ['n1', false]]);
    assert.deepEqual((await collect(plainJs, 2)).map((m) => [m.payload, m.retain]), [['r1', false], ['n1', false]]);
    await py.waitFor('message', (e) => e.payload === 'n1');
    assert.deepEqual(py.messages().map((e) => [e.payload, e.retain]), [['r1', true], ['n1', false]]);
    await rapSub.waitForLine(/ n1$/);
    await plainSub.waitForLine(/ n1$/);
    assert.deepEqual(withoutMarkers(rapSub.lines), ['1 r1', '0 n1']);
    assert.deepEqual(withoutMarkers(plainSub.lines), ['0 r1', '0 n1']);
  });

  test('retain handling: 0 sends retained on every SUBSCRIBE, 1 only when the subscription is new, 2 never (paho, MQTT.js)', T, async () => {
    const broker = await startBroker();
    await mosqPub(broker.port, ['-t', 'rh/t', '-m', 'kept', '-r', '-q', '1']);
    const expected: Record<number, string[]> = { 0: ['kept', 'kept', 'live'], 1: ['kept', 'live'], 2: ['live'] };
    const clients = [];
    for (const rh of [0, 1, 2]) {
      const [py] = await paho(broker.port, { clientId: `rh${rh}-paho` });
      for (let i = 0; i < 2; i++) {
        assert.deepEqual(await py.subscribe('rh/t', { qos: 1, retainHandling: rh }), [1]);
        await sleep(100);
      }
      const js = await v5(broker.port, { clientId: `rh${rh}-js` });
      for (let i = 0; i < 2; i++) await js.subscribeAsync('rh/t', { qos: 1, rh });
      clients.push({ rh, py, js });
    }
    // A live message after the subscriptions: anything a SUBSCRIBE sent comes before it.
    await mosqPub(broker.port, ['-t', 'rh/t', '-m', 'live', '-q', '1']);
    for (const { rh, py, js } of clients) {
      await py.waitFor('message', (e) => e.payload === 'live');
      assert.deepEqual(py.messages().map((e) => e.payload), expected[rh], `paho, retain handling ${rh}`);
      assert.deepEqual((await collect(js, expected[rh]!.length)).map((m) => m.payload), expected[rh], `MQTT.js, retain handling ${rh}`);
      await expectNoMessage(js, 0);
    }
  });
});

describe('subscription identifiers', () => {
  test('a message matching two subscriptions carries both identifiers; one matching one carries one (MQTT.js, paho, mosquitto_sub)', T, async () => {
    const broker = await startBroker();
    const js = await v5(broker.port, { clientId: 'sid-js' });
    await js.subscribeAsync('sid/+', { qos: 1, properties: { subscriptionIdentifier: 7 } });
    await js.subscribeAsync('sid/#', { qos: 1, properties: { subscriptionIdentifier: 9 } });
    const none = await v5(broker.port, { clientId: 'sid-none' });
    await none.subscribeAsync('sid/#', { qos: 1 });
    const [py] = await paho(broker.port, { clientId: 'sid-paho' });
    await py.subscribe('sid/+', { qos: 1, props: { SubscriptionIdentifier: 3 } });
    await py.subscribe('sid/x', { qos: 1, props: { SubscriptionIdentifier: 4 } });
    const sub = mosqSub(broker.port, ['-V', 'mqttv5', '-D', 'subscribe', 'subscription-identifier', '5', '-t', 'sid/#', '-t', 'ready/sid', '-F', '%S %p']);
    await untilReady(broker.port, sub, 'ready/sid');

    await mosqPub(broker.port, ['-t', 'sid/x', '-m', 'both', '-q', '1']);
    await mosqPub(broker.port, ['-t', 'sid/x/y', '-m', 'deep', '-q', '1']);

    // [MQTT-3.3.4-4/5]: one copy with every matching identifier (Midge), or one copy per subscription
    // with its own identifier (mosquitto 2.0.11); either way never an identifier of a subscription that
    // did not match.
    const copies = isMosquitto ? 3 : 2;
    await collect(js, copies);
    const ids = sorted(publishes(js).map((p) => `${p.payload.toString()} ${[p.properties?.subscriptionIdentifier ?? []].flat().sort().join(',')}`));
    assert.deepEqual(ids, isMosquitto ? ['both 7', 'both 9', 'deep 9'] : ['both 7,9', 'deep 9']);
    await expectNoMessage(js, 100);
    await collect(none, 2);
    assert.deepEqual(publishes(none).map((p) => p.properties?.subscriptionIdentifier), [undefined, undefined]);
    await py.waitFor('message', (e) => e.payload === 'both');
    await sleep(100);
    const pyIds = sorted(py.messages().map((e) => `${e.payload!} ${[e.props?.SubscriptionIdentifier].flat().sort().join(',')}`));
    assert.deepEqual(pyIds, isMosquitto ? ['both 3', 'both 4'] : ['both 3,4']);
    await sub.waitForLine(/ deep$/);
    assert.deepEqual(withoutMarkers(sub.lines), ['5 both', '5 deep']);
  });

  test('retained messages sent on SUBSCRIBE carry that subscription\'s identifier (MQTT.js, paho); without one, none', T, async () => {
    const broker = await startBroker();
    await mosqPub(broker.port, ['-t', 'sidr/t', '-m', 'kept', '-r', '-q', '1']);
    const js = await v5(broker.port, { clientId: 'sidr-js' });
    await js.subscribeAsync('sidr/#', { qos: 1, properties: { subscriptionIdentifier: 11 } });
    await js.subscribeAsync('sidr/+', { qos: 1 });
    await collect(js, 2);
    assert.deepEqual(sorted(publishes(js).map((p) => `${p.payload.toString()} ${p.retain} ${String(p.properties?.subscriptionIdentifier)}`)),
      ['kept true 11', 'kept true undefined']);
    const [py] = await paho(broker.port, { clientId: 'sidr-paho' });
    await py.subscribe('sidr/t', { qos: 1, props: { SubscriptionIdentifier: 268435455 } });
    const m = await py.waitFor('message');
    assert.deepEqual([m.payload, m.retain, m.props?.SubscriptionIdentifier], ['kept', true, [268435455]]);
  });

  test('subscribing again to the same filter replaces its identifier, or removes it when the new SUBSCRIBE has none', T, async () => {
    const broker = await startBroker();
    const js = await v5(broker.port, { clientId: 'sidu-js' });
    const ids: string[] = [];
    for (const [n, props] of [[1, { subscriptionIdentifier: 1 }], [2, { subscriptionIdentifier: 2 }], [3, undefined]] as const) {
      await js.subscribeAsync('sidu/t', { qos: 1, properties: props });
      await mosqPub(broker.port, ['-t', 'sidu/t', '-m', `m${n}`, '-q', '1']);
      await collect(js, 1);
      const p = publishes(js).at(-1)!;
      ids.push(`${p.payload.toString()} ${JSON.stringify(p.properties?.subscriptionIdentifier ?? null)}`);
    }
    assert.deepEqual(ids, ['m1 1', 'm2 2', 'm3 null'], '[MQTT-3.8.4-3]: one subscription, replaced each time');
    await expectNoMessage(js, 150);
  });

  test('subscription identifiers stay with a resumed session: queued and new messages carry them (MQTT.js)', T, async () => {
    const broker = await startBroker();
    const opts = { clientId: 'sids-js', clean: false, properties: { sessionExpiryInterval: 60 } };
    const first = await v5(broker.port, opts);
    await first.subscribeAsync('sids/t', { qos: 1, properties: { subscriptionIdentifier: 42 } });
    await first.endAsync();
    await mosqPub(broker.port, ['-t', 'sids/t', '-m', 'queued', '-q', '1']);
    const back = await v5(broker.port, opts);
    await collect(back, 1);
    await mosqPub(broker.port, ['-t', 'sids/t', '-m', 'new', '-q', '1']);
    await collect(back, 1);
    assert.deepEqual(publishes(back).map((p) => [p.payload.toString(), p.properties?.subscriptionIdentifier]), [['queued', 42], ['new', 42]]);
  });
});
