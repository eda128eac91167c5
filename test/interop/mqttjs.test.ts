/**
 * MQTT.js 5 (MQTT 3.1.1, and 3.1 where it applies) against the broker under test
 * (MIDGE_TEST_BROKER=midge|mosquitto): QoS flows, sessions, redelivery, retain, will, wildcards, takeover.
 * Every test starts its own broker, so no state leaks from one to the next.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import type { IClientOptions, IPublishPacket, MqttClient } from 'mqtt';
import { brokerKind, startBroker, stopAllBrokers, type BrokerProcess } from '../helpers/broker-process.js';
import { killAll } from '../helpers/proc.js';
import { rawSubscriber } from './raw-subscriber.js';
import { closeAllClients, collect, connect, expectNoMessage, packets, waitForEvent, waitForPacket } from '../helpers/mqttjs.js';

const T = { timeout: 20_000 };
type QoS = 0 | 1 | 2;
const QOS: QoS[] = [0, 1, 2];

afterEach(async () => {
  await closeAllClients();
  await stopAllBrokers();
  await killAll();
});

const versions = [
  { name: 'MQTT 3.1.1', opts: { protocolVersion: 4 } as IClientOptions },
  { name: 'MQTT 3.1', opts: { protocolId: 'MQIsdp', protocolVersion: 3 } as IClientOptions },
];

/** The publish-flow packets of a client's trace, as 'in publish', 'out puback', ... */
function flow(client: MqttClient): string[] {
  return packets(client)
    .filter((p) => /^pub(lish|ack|rec|rel|comp)$/.test(p.cmd))
    .map((p) => `${p.dir} ${p.cmd}`);
}

function connackOf(client: MqttClient): { sessionPresent: boolean; returnCode?: number } {
  const connack = packets(client).find((p) => p.dir === 'in' && p.cmd === 'connack');
  assert.ok(connack, 'no CONNACK in the trace');
  return connack.packet as unknown as { sessionPresent: boolean; returnCode?: number };
}

async function subscribe(client: MqttClient, filter: string, qos: QoS): Promise<void> {
  const granted = await client.subscribeAsync(filter, { qos });
  assert.equal(granted.length, 1);
  assert.equal(granted[0]!.qos, qos, `SUBACK for ${filter} grants QoS ${qos}`);
}

describe('QoS flows: received QoS = min(publish, subscription), both handshakes complete', () => {
  const publisherFlow: Record<QoS, string[]> = {
    0: ['out publish'],
    1: ['out publish', 'in puback'],
    2: ['out publish', 'in pubrec', 'out pubrel', 'in pubcomp'],
  };
  const subscriberFlow: Record<QoS, string[]> = {
    0: ['in publish'],
    1: ['in publish', 'out puback'],
    2: ['in publish', 'out pubrec', 'in pubrel', 'out pubcomp'],
  };
  for (const v of versions) {
    for (const pubQos of QOS) {
      for (const subQos of QOS) {
        const effective = Math.min(pubQos, subQos) as QoS;
        test(`${v.name}: a QoS ${pubQos} publish to a QoS ${subQos} subscription arrives once at QoS ${effective}`, T, async () => {
          const broker = await startBroker();
          const sub = await connect(broker.port, { ...v.opts, clientId: 'qos-sub' });
          await subscribe(sub, 'qos/topic', subQos);
          const pub = await connect(broker.port, { ...v.opts, clientId: 'qos-pub' });
          await pub.publishAsync('qos/topic', `p${pubQos}s${subQos}`, { qos: pubQos });
          assert.deepEqual(flow(pub), publisherFlow[pubQos]);

          const [m] = await collect(sub, 1);
          assert.deepEqual(
            { topic: m!.topic, payload: m!.payload, qos: m!.qos, retain: m!.retain, dup: m!.dup },
            { topic: 'qos/topic', payload: `p${pubQos}s${subQos}`, qos: effective, retain: false, dup: false },
          );
          const last = subscriberFlow[effective].at(-1)!;
          await waitForPacket(sub, (p) => `${p.dir} ${p.cmd}` === last);
          await expectNoMessage(sub, 150);
          assert.deepEqual(flow(sub), subscriberFlow[effective]);
        });
      }
    }
  }
});

describe('persistent sessions (clean: false)', () => {
  for (const v of versions) {
    test(`${v.name}: QoS 1 and 2 messages published while the subscriber was offline all arrive on reconnect, in order`, T, async () => {
      const broker = await startBroker();
      const opts = { ...v.opts, clientId: 'persist-sub', clean: false };
      const first = await connect(broker.port, opts);
      assert.equal(connackOf(first).sessionPresent, false, 'a new session');
      await subscribe(first, 'persist/#', 2);
      await first.endAsync();

      const pub = await connect(broker.port, { ...v.opts, clientId: 'persist-pub' });
      const sent = Array.from({ length: 10 }, (_, i) => ({ payload: `m${i + 1}`, qos: ((i % 2) + 1) as QoS }));
      for (const m of sent) await pub.publishAsync('persist/a', m.payload, { qos: m.qos });

      const again = await connect(broker.port, opts);
      if (v.opts.protocolVersion === 4) assert.equal(connackOf(again).sessionPresent, true, 'CONNACK says the session was kept');
      await collect(again, sent.length);
      await expectNoMessage(again, 300);
      // The order on the wire (MQTT.js emits a QoS 2 message only at PUBREL, so 'message' order differs).
      const onTheWire = packets(again)
        .filter((p) => p.dir === 'in' && p.cmd === 'publish')
        .map((p) => ({ payload: (p.packet as IPublishPacket).payload.toString(), qos: p.qos }));
      assert.deepEqual(onTheWire, sent);
    });
  }

  test('no in-flight limit and the durable store: 20,000 queued messages of 1 KB arrive in order after the reconnect', { timeout: 120_000 }, async () => {
    // the window opens on the whole queue at once; the broker hands it to the socket as the socket takes it
    const dir = mkdtempSync(join(tmpdir(), 'midge-mqttjs-big-'));
    try {
      const broker = await startBroker({ config: `max_inflight_messages 0\nmax_queued_messages 0\npersistence true\npersistence_location ${dir}/\n` });
      const opts = { clientId: 'big-sub', clean: false };
      const first = await connect(broker.port, opts);
      await subscribe(first, 'big/#', 1);
      await first.endAsync();
      const N = 20_000;
      const pub = await connect(broker.port, { clientId: 'big-pub' });
      const body = 'b'.repeat(994);
      await Promise.all(Array.from({ length: N }, (_, i) => pub.publishAsync('big/a', `${String(i).padStart(6, '0')}${body}`, { qos: 1 })));
      const again = await connect(broker.port, opts);
      assert.equal(connackOf(again).sessionPresent, true);
      const got = await collect(again, N, 90_000);
      const order = got.map((m) => Number(m.payload.slice(0, 6)));
      assert.deepEqual(order, Array.from({ length: N }, (_, i) => i), 'every message, in order, once');
      await expectNoMessage(again, 300);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a clean: true reconnect discards the session: nothing published meanwhile arrives', T, async () => {
    const broker = await startBroker();
    const first = await connect(broker.port, { clientId: 'clean-sub', clean: false });
    await subscribe(first, 'clean/#', 1);
    await first.endAsync();
    const pub = await connect(broker.port, { clientId: 'clean-pub' });
    await pub.publishAsync('clean/a', 'lost', { qos: 1 });

    const again = await connect(broker.port, { clientId: 'clean-sub', clean: true });
    assert.equal(connackOf(again).sessionPresent, false);
    await expectNoMessage(again, 500);
    // The subscription went with the session too.
    await pub.publishAsync('clean/a', 'after', { qos: 1 });
    await expectNoMessage(again, 300);
  });
});

describe('redelivery after reconnect', () => {
  for (const qos of [1, 2] as const) {
    test(`a QoS ${qos} message the subscriber never acknowledged comes again with DUP set and the same packet id`, T, async () => {
      const broker = await startBroker();
      // MQTT.js acknowledges by itself (customHandleAcks is for MQTT 5 only): a raw socket that never does.
      const silent = await rawSubscriber(broker.port, 'redeliver-sub', 'redeliver/t', qos);
      const pub = await connect(broker.port, { clientId: 'redeliver-pub' });
      await pub.publishAsync('redeliver/t', 'again', { qos });
      const first = await silent.nextPublish();
      assert.deepEqual([first.payload, first.qos, first.dup], ['again', qos, false]);
      silent.destroy();

      const again = await connect(broker.port, { clientId: 'redeliver-sub', clean: false });
      const [m] = await collect(again, 1);
      // [MQTT-4.4.0-1]: re-sent with the original packet identifier, and DUP set [MQTT-3.3.1-1].
      assert.deepEqual(
        { topic: m!.topic, payload: m!.payload, qos: m!.qos, dup: m!.dup, messageId: m!.messageId },
        { topic: 'redeliver/t', payload: 'again', qos, dup: true, messageId: first.messageId },
      );
      await expectNoMessage(again, 300);
    });
  }
});

describe('retained messages', () => {
  async function setup(): Promise<{ broker: BrokerProcess; pub: MqttClient }> {
    const broker = await startBroker();
    return { broker, pub: await connect(broker.port, { clientId: 'retain-pub' }) };
  }

  test('a retained message reaches a later subscriber flagged retained, and an existing one unflagged', T, async () => {
    const { broker, pub } = await setup();
    const existing = await connect(broker.port, { clientId: 'retain-old' });
    await subscribe(existing, 'retain/t', 1);
    await pub.publishAsync('retain/t', 'r1', { qos: 1, retain: true });
    const [live] = await collect(existing, 1);
    assert.deepEqual([live!.payload, live!.retain], ['r1', false]);

    const later = await connect(broker.port, { clientId: 'retain-new' });
    await subscribe(later, 'retain/t', 1);
    const [stored] = await collect(later, 1);
    assert.deepEqual([stored!.topic, stored!.payload, stored!.qos, stored!.retain], ['retain/t', 'r1', 1, true]);
  });

  test('a second retained message replaces the first', T, async () => {
    const { broker, pub } = await setup();
    await pub.publishAsync('retain/t', 'r1', { qos: 1, retain: true });
    await pub.publishAsync('retain/t', 'r2', { qos: 1, retain: true });
    const later = await connect(broker.port, { clientId: 'retain-new' });
    await subscribe(later, 'retain/t', 1);
    const [stored] = await collect(later, 1);
    assert.deepEqual([stored!.payload, stored!.retain], ['r2', true]);
    await expectNoMessage(later, 300);
  });

  test('an empty retained payload clears it: it is delivered to existing subscribers, and later ones get nothing', T, async () => {
    const { broker, pub } = await setup();
    await pub.publishAsync('retain/t', 'r1', { qos: 1, retain: true });
    const existing = await connect(broker.port, { clientId: 'retain-old' });
    await subscribe(existing, 'retain/t', 1);
    assert.equal((await collect(existing, 1))[0]!.payload, 'r1');
    await pub.publishAsync('retain/t', '', { qos: 1, retain: true });
    const [cleared] = await collect(existing, 1);
    assert.deepEqual([cleared!.payload, cleared!.retain], ['', false]);

    const later = await connect(broker.port, { clientId: 'retain-new' });
    await subscribe(later, 'retain/t', 1);
    await expectNoMessage(later, 500);
    await pub.publishAsync('retain/t', 'marker', { qos: 1 });
    const [marker] = await collect(later, 1);
    assert.deepEqual([marker!.payload, marker!.retain], ['marker', false], 'the subscription works');
  });
});

describe('wills', () => {
  async function watcher(broker: BrokerProcess): Promise<MqttClient> {
    const w = await connect(broker.port, { clientId: 'will-watcher' });
    await subscribe(w, 'will/#', 2);
    return w;
  }

  for (const v of versions) {
    test(`${v.name}: when the socket is destroyed without DISCONNECT the will is published with its QoS and retain flag`, T, async () => {
      const broker = await startBroker();
      const w = await watcher(broker);
      const c = await connect(broker.port, {
        ...v.opts,
        clientId: 'will-client',
        will: { topic: 'will/client', payload: Buffer.from('gone'), qos: 1, retain: true },
      });
      await expectNoMessage(w, 200);
      c.stream.destroy();
      const [m] = await collect(w, 1, 2000);
      assert.deepEqual([m!.topic, m!.payload, m!.qos], ['will/client', 'gone', 1]);

      const later = await connect(broker.port, { clientId: 'will-later' });
      await subscribe(later, 'will/client', 1);
      const [stored] = await collect(later, 1);
      assert.deepEqual([stored!.payload, stored!.retain], ['gone', true], 'the will was retained');
    });
  }

  test('when the client ends with DISCONNECT (end()) no will is published', T, async () => {
    const broker = await startBroker();
    const w = await watcher(broker);
    const c = await connect(broker.port, {
      clientId: 'will-client',
      will: { topic: 'will/client', payload: Buffer.from('gone'), qos: 1, retain: false },
    });
    await c.endAsync();
    await expectNoMessage(w, 1000);
    const pub = await connect(broker.port, { clientId: 'will-marker' });
    await pub.publishAsync('will/marker', 'marker', { qos: 1 });
    assert.equal((await collect(w, 1))[0]!.payload, 'marker', 'the watcher works');
  });
});

describe('wildcards', () => {
  /** Publishes each topic (QoS 1, in order) and then `end`; returns the topics the subscriber got. */
  async function matched(filter: string, topics: string[], end: string): Promise<string[]> {
    const broker = await startBroker();
    const sub = await connect(broker.port, { clientId: 'wild-sub' });
    await subscribe(sub, filter, 1);
    const pub = await connect(broker.port, { clientId: 'wild-pub' });
    for (const t of [...topics, end]) await pub.publishAsync(t, t, { qos: 1 });
    const got: string[] = [];
    for (;;) {
      const [m] = await collect(sub, 1);
      got.push(m!.topic);
      if (m!.topic === end) return got;
    }
  }

  test("'+' matches exactly one level, an empty one too", T, async () => {
    assert.deepEqual(await matched('w/+/c', ['w/b/c', 'w/b/c/d', 'w/c', 'w/b/x/c', 'w//c', 'x/b/c'], 'w/end/c'), ['w/b/c', 'w//c', 'w/end/c']);
  });

  test("'#' matches its parent level and every level below", T, async () => {
    assert.deepEqual(await matched('h/#', ['h', 'h/a', 'h/a/b', 'hx', 'x/h', 'H/a'], 'h/end'), ['h', 'h/a', 'h/a/b', 'h/end']);
  });

  test("'#' and '+/#' do not match $SYS topics, which '$SYS/#' does", T, async () => {
    const broker = await startBroker();
    const sys = await connect(broker.port, { clientId: 'sys-sub' });
    const all = await connect(broker.port, { clientId: 'all-sub' });
    const plus = await connect(broker.port, { clientId: 'plus-sub' });
    await subscribe(all, '#', 0);
    await subscribe(plus, '+/#', 0);
    await subscribe(sys, '$SYS/#', 0);
    const [s] = await collect(sys, 1, 3000);
    assert.match(s!.topic, /^\$SYS\//, 'the broker publishes $SYS topics');

    const pub = await connect(broker.port, { clientId: 'sys-pub' });
    await pub.publishAsync('m/x', 'marker', { qos: 1 });
    for (const c of [all, plus]) {
      const [m] = await collect(c, 1);
      assert.equal(m!.topic, 'm/x', 'the first message is the marker, not a $SYS one');
    }
    await expectNoMessage(all, 500);
    await expectNoMessage(plus, 0);
  });
});

describe('client id takeover', () => {
  test('a second connection with the same client id closes the first, whose will is published', T, async () => {
    const broker = await startBroker();
    const w = await connect(broker.port, { clientId: 'takeover-watcher' });
    await subscribe(w, 'takeover/#', 1);
    const first = await connect(broker.port, {
      clientId: 'same-id',
      will: { topic: 'takeover/will', payload: Buffer.from('first gone'), qos: 1, retain: false },
    });
    const closed = waitForEvent(first, 'close', 3000);
    const second = await connect(broker.port, { clientId: 'same-id' });
    await closed;
    const [will] = await collect(w, 1, 2000);
    assert.deepEqual([will!.topic, will!.payload], ['takeover/will', 'first gone']);

    await second.publishAsync('takeover/second', 'still here', { qos: 1 });
    const [m] = await collect(w, 1);
    assert.deepEqual([m!.topic, m!.payload], ['takeover/second', 'still here']);
    assert.equal(second.connected, true);
  });

  test('a takeover whose session continues (clean: false on both connections) publishes no will, as mosquitto 2', T, async () => {
    const broker = await startBroker();
    const w = await connect(broker.port, { clientId: 'quiet-watcher' });
    await subscribe(w, 'quiet/#', 1);
    const first = await connect(broker.port, {
      clientId: 'quiet-id', clean: false,
      will: { topic: 'quiet/will', payload: Buffer.from('should stay quiet'), qos: 1, retain: false },
    });
    const closed = waitForEvent(first, 'close', 3000);
    const second = await connect(broker.port, { clientId: 'quiet-id', clean: false });
    await closed;
    await second.publishAsync('quiet/second', 'marker', { qos: 1 });
    const [m] = await collect(w, 1, 2000);
    assert.deepEqual([m!.topic, m!.payload], ['quiet/second', 'marker'], 'the marker comes first: no will before it');
    await expectNoMessage(w, 300);
  });
});

describe('overlapping subscriptions', () => {
  // MQTT 3.1.1 §3.3.5 allows one copy per matching subscription, and mosquitto sends one per subscription.
  // Midge's requirement is one delivery at the highest QoS of the matching subscriptions.
  test('a message matching two subscriptions of one client is delivered once, at the higher QoS', {
    ...T,
    skip: brokerKind === 'mosquitto' ? 'mosquitto delivers one copy per matching subscription' : false,
  }, async () => {
    const broker = await startBroker();
    const sub = await connect(broker.port, { clientId: 'overlap-sub' });
    await subscribe(sub, 'ov/+', 0);
    await subscribe(sub, 'ov/#', 2);
    const pub = await connect(broker.port, { clientId: 'overlap-pub' });
    await pub.publishAsync('ov/a', 'both', { qos: 2 });
    await pub.publishAsync('ov/b', 'marker', { qos: 0 });
    const got = await collect(sub, 2);
    assert.deepEqual(
      got.map((m) => [m.payload, m.qos]),
      [
        ['both', 2],
        ['marker', 0],
      ],
    );
    await expectNoMessage(sub, 300);
  });
});
