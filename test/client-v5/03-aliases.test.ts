/**
 * MQTT 5.0 topic aliases through the client library, checked on the wire with a decoding proxy:
 * outgoing aliases to mosquitto and Midge (which resolve them for their subscribers), incoming aliases
 * from Midge (mosquitto 2.0.11 sends none), and the protocol errors for bad incoming aliases
 * (a scripted broker, since real brokers do not make them).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { BrokerProcess } from '../helpers/broker-process.js';
import type { Packet, PublishPacket } from '../../src/codec/types.js';
import { ConnectionLostError } from '../../src/client/index.js';
import { Clients, collect, KINDS, ScriptedBroker, startBrokerOf, waitFor, within, WireProxy } from './_helpers.js';

const publishes = (packets: Packet[], pred: (p: PublishPacket) => boolean = () => true): PublishPacket[] =>
  packets.filter((p): p is PublishPacket => p.type === 'publish' && pred(p));
const shape = (p: PublishPacket): string => `${p.topic}#${p.properties?.topicAlias ?? '-'}`;

for (const kind of KINDS) {
  describe(`topic aliases against ${kind}`, () => {
    let broker: BrokerProcess;
    let url: string;
    let proxy: WireProxy;
    const clients = new Clients();

    before(async () => {
      broker = await startBrokerOf(kind, ['max_topic_alias 2']);
      url = `mqtt://127.0.0.1:${broker.port}`;
      proxy = await WireProxy.start(broker.port);
    });
    after(async () => {
      await clients.endAll();
      await proxy.close();
      await broker.stop();
    });

    test('outgoing: autoTopicAlias sends the topic once, then an empty topic with the alias; subscribers get full topics', async () => {
      const sub = await clients.connect(url);
      const got = collect(sub);
      await sub.subscribe('out/#', { qos: 1 });
      const c = await clients.connect(proxy.url, { clientId: `${kind}-alias-out`, autoTopicAlias: true });
      const events: string[] = [];
      c.on('packetsend', (p) => { if (p.type === 'publish') events.push(shape(p)); });
      for (const t of ['out/a', 'out/a', 'out/a', 'out/b', 'out/b']) await c.publish(t, t, { qos: 1 });
      const wire = publishes(proxy.toServer, (p) => p.payload.toString().startsWith('out/')).map(shape);
      assert.deepEqual(wire, ['out/a#1', '#1', '#1', 'out/b#2', '#2']);
      assert.deepEqual(events, wire);
      const msgs = await got.next(5);
      assert.deepEqual(msgs.map((m) => m.topic), ['out/a', 'out/a', 'out/a', 'out/b', 'out/b']);
    });

    test('outgoing: with more topics than the broker maximum, the least recently used alias is reassigned', async () => {
      const sub = await clients.connect(url);
      const got = collect(sub);
      await sub.subscribe('lru/#', { qos: 1 });
      const c = await clients.connect(proxy.url, { clientId: `${kind}-alias-lru` });
      const topics = ['lru/a', 'lru/b', 'lru/a', 'lru/c', 'lru/b', 'lru/a', 'lru/c'];
      for (const t of topics) await c.publish(t, t, { qos: 1, topicAlias: 'auto' });
      const wire = publishes(proxy.toServer, (p) => p.payload.toString().startsWith('lru/')).map(shape);
      assert.deepEqual(wire, ['lru/a#1', 'lru/b#2', '#1', 'lru/c#2', 'lru/b#1', 'lru/a#2', 'lru/c#1']);
      const msgs = await got.next(topics.length);
      assert.deepEqual(msgs.map((m) => m.topic), topics);
      assert.deepEqual(msgs.map((m) => m.payload.toString()), topics);
    });

    test('outgoing: an explicit alias number is used as given (mosquitto_pub -D publish topic-alias)', async () => {
      const sub = await clients.connect(url);
      const got = collect(sub);
      await sub.subscribe('explicit/#', { qos: 0 });
      const c = await clients.connect(proxy.url, { clientId: `${kind}-alias-explicit` });
      await c.publish('explicit/x', '1', { qos: 1, topicAlias: 2 });
      await c.publish('explicit/x', '2', { qos: 1, topicAlias: 2 });
      await c.publish('explicit/y', '3', { qos: 1, topicAlias: 2 });
      await c.publish('explicit/y', '4', { qos: 1 });
      const wire = publishes(proxy.toServer, (p) => p.topic.startsWith('explicit/') || p.properties?.topicAlias === 2).slice(-4).map(shape);
      assert.deepEqual(wire, ['explicit/x#2', '#2', 'explicit/y#2', 'explicit/y#-']);
      const msgs = await got.next(4);
      assert.deepEqual(msgs.map((m) => `${m.topic}:${m.payload.toString()}`), ['explicit/x:1', 'explicit/x:2', 'explicit/y:3', 'explicit/y:4']);
    });

    test(kind === 'midge'
      ? 'incoming: aliases the broker sends are resolved to the full topic, and only when we allow them'
      : 'incoming: mosquitto 2.0.11 sends no topic aliases, even when we allow them', async () => {
      const c = await clients.connect(proxy.url, { clientId: `${kind}-alias-in`, properties: { topicAliasMaximum: 5 } });
      const got = collect(c);
      await c.subscribe('in/#', { qos: 1 });
      const plain = await clients.connect(proxy.url, { clientId: `${kind}-alias-none` });
      const plainGot = collect(plain);
      await plain.subscribe('in/#', { qos: 1 });
      const pub = await clients.connect(url);
      for (const t of ['in/a', 'in/a', 'in/b', 'in/a']) await pub.publish(t, 'x', { qos: 1 });
      const msgs = await got.next(4);
      await plainGot.next(4);
      assert.deepEqual(msgs.map((m) => m.topic), ['in/a', 'in/a', 'in/b', 'in/a']);
      const onWire = publishes(proxy.toClient, (p) => p.payload.toString() === 'x').map(shape);
      if (kind === 'midge') {
        // the aliased connection's PUBLISHes carry aliases, the other's do not
        const aliased = onWire.filter((s) => !s.endsWith('#-'));
        assert.deepEqual(aliased, ['in/a#1', '#1', 'in/b#2', '#1']);
        assert.deepEqual(msgs.map((m) => m.properties?.topicAlias), [1, 1, 2, 1], 'the alias stays visible on the message');
        assert.equal(onWire.filter((s) => s.endsWith('#-')).length, 4);
      } else {
        assert.ok(onWire.every((s) => s.endsWith('#-') && !s.startsWith('#')), onWire.join(' '));
      }
    });
  });
}

describe('bad incoming aliases (scripted broker)', () => {
  let broker: ScriptedBroker;
  const clients = new Clients();
  /** what the broker sends after CONNACK, per client id */
  const scripts = new Map<string, PublishPacket[]>();

  before(async () => {
    broker = await ScriptedBroker.start((p, send) => {
      if (p.type !== 'connect') return;
      send({ type: 'connack', sessionPresent: false, reasonCode: 0 });
      // after the client's connect() resolved and its listeners are on
      setTimeout(() => { for (const pub of scripts.get(p.clientId) ?? []) send(pub); }, 100);
    });
  });
  after(async () => {
    await clients.endAll();
    await broker.close();
  });

  const pub = (topic: string, topicAlias: number): PublishPacket =>
    ({ type: 'publish', topic, payload: Buffer.from('p'), qos: 0, retain: false, dup: false, properties: { topicAlias } });

  for (const [name, packets, code] of [
    ['an unknown alias is a protocol error (0x82)', [pub('', 3)], 0x82],
    ['an alias above our Topic Alias Maximum is invalid (0x94)', [pub('t', 6)], 0x94],
    ['alias 0 is invalid (0x94)', [pub('t', 0)], 0x94],
  ] as Array<[string, PublishPacket[], number]>) {
    test(`${name}: the client sends DISCONNECT with the code and goes offline with it`, async () => {
      const clientId = `bad-${code}-${packets[0]!.properties!.topicAlias}`;
      scripts.set(clientId, [pub('good/topic', 1), pub('', 1), ...packets]);
      const c = await clients.connect(broker.url, { clientId, properties: { topicAliasMaximum: 5 } });
      const offline = new Promise<Error | undefined>((resolve) => c.once('offline', resolve));
      const got = collect(c);
      const err = await within(offline, 5000, 'offline');
      assert.deepEqual(got.messages.map((x) => x.topic), ['good/topic', 'good/topic'], 'the good alias was resolved');
      assert.ok(err instanceof ConnectionLostError && err.reasonCode === code, String(err));
      await waitFor(() => broker.received.some((p) => p.type === 'disconnect' && p.reasonCode === code), 2000, `DISCONNECT ${code}`);
    });
  }
});
