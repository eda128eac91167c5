/**
 * What neither mosquitto 2.0.11 nor Midge's broker sends, from a scripted 5.0 broker: reason strings on
 * failed acks and refused CONNACKs, CONNACK availability flags, a DISCONNECT with a server reference
 * (followed with `followRedirects`), and a server that exceeds our receive maximum or packet size.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ConnackPacket, Packet, Properties } from '../../src/codec/types.js';
import { ConnectionLostError, ConnectionRefusedError, PublishError, SubscribeError, UnsubscribeError } from '../../src/client/index.js';
import { Clients, rejection, ScriptedBroker, waitFor, within } from './_helpers.js';

/** the CONNACK (and what follows it) each client id gets */
type Script = { connack: ConnackPacket; after?: Packet[]; onPacket?: (p: Packet, send: (p: Packet) => void) => void };
const scripts = new Map<string, Script>();
const ok: ConnackPacket = { type: 'connack', sessionPresent: false, reasonCode: 0 };

let broker: ScriptedBroker;
let second: ScriptedBroker;
const clients = new Clients();

before(async () => {
  const run = (p: Packet, send: (p: Packet) => void, ids: WeakMap<object, string>, socket: object): void => {
    if (p.type === 'connect') {
      ids.set(socket, p.clientId);
      const s = scripts.get(p.clientId) ?? { connack: ok };
      send(s.connack);
      if (s.after) setTimeout(() => s.after!.forEach(send), 100);
      return;
    }
    scripts.get(ids.get(socket) ?? '')?.onPacket?.(p, send);
  };
  const ids = new WeakMap<object, string>();
  broker = await ScriptedBroker.start((p, send, socket) => run(p, send, ids, socket));
  second = await ScriptedBroker.start((p, send, socket) => run(p, send, ids, socket));
});
after(async () => {
  await clients.endAll();
  await broker.close();
  await second.close();
});

describe('reason strings', () => {
  test('a refused CONNACK carries its reason string and properties on ConnectionRefusedError', async () => {
    scripts.set('refused', { connack: { type: 'connack', sessionPresent: false, reasonCode: 0x89, properties: { reasonString: 'try later', userProperties: [['retry', '5']] } } });
    const err = await rejection(clients.connect(broker.url, { clientId: 'refused' }));
    assert.ok(err instanceof ConnectionRefusedError, String(err));
    assert.deepEqual([err.reasonCode, err.reasonString, err.properties?.userProperties, err.text], [0x89, 'try later', [['retry', '5']], 'Server busy']);
  });

  test('PUBACK, PUBREC, SUBACK and UNSUBACK failures carry reason code and reason string', async () => {
    const props = (s: string): Properties => ({ reasonString: s });
    scripts.set('acks', {
      connack: ok,
      onPacket: (p, send) => {
        if (p.type === 'publish' && p.qos === 1) send({ type: 'puback', packetId: p.packetId!, reasonCode: 0x97, properties: props('quota') });
        if (p.type === 'publish' && p.qos === 2) send({ type: 'pubrec', packetId: p.packetId!, reasonCode: 0x90, properties: props('bad name') });
        if (p.type === 'subscribe') send({ type: 'suback', packetId: p.packetId, reasonCodes: [0x01, 0x9e], properties: props('no shares') });
        if (p.type === 'unsubscribe') send({ type: 'unsuback', packetId: p.packetId, reasonCodes: [0x87], properties: props('not yours') });
      },
    });
    const c = await clients.connect(broker.url, { clientId: 'acks' });
    const e1 = await rejection(c.publish('t', 'x', { qos: 1 }));
    assert.ok(e1 instanceof PublishError && e1.reasonCode === 0x97 && e1.reasonString === 'quota', String(e1));
    const e2 = await rejection(c.publish('t', 'x', { qos: 2 }));
    assert.ok(e2 instanceof PublishError && e2.reasonCode === 0x90 && e2.reasonString === 'bad name', String(e2));
    const e3 = await rejection(c.subscribe(['a', '$share/g/b'], { qos: 1 }));
    assert.ok(e3 instanceof SubscribeError, String(e3));
    assert.deepEqual([e3.reasonCodes, e3.reasonString], [[0x01, 0x9e], 'no shares']);
    const e4 = await rejection(c.unsubscribe('a'));
    assert.ok(e4 instanceof UnsubscribeError && e4.reasonString === 'not yours', String(e4));
    assert.equal(c.connected, true);
  });

  test('a server DISCONNECT carries reason code, reason string and user properties to the offline event', async () => {
    scripts.set('dropped', { connack: ok, after: [{ type: 'disconnect', reasonCode: 0x89, properties: { reasonString: 'overloaded', userProperties: [['k', 'v']] } }] });
    const c = await clients.connect(broker.url, { clientId: 'dropped' });
    const err = await within(new Promise<Error | undefined>((resolve) => c.once('offline', resolve)), 5000, 'offline');
    assert.ok(err instanceof ConnectionLostError, String(err));
    assert.deepEqual([err.reasonCode, err.reasonString, err.properties?.userProperties], [0x89, 'overloaded', [['k', 'v']]]);
  });
});

describe('CONNACK availability flags', () => {
  test('wildcard, shared and subscription-id subscriptions the broker cannot serve are refused without sending', async () => {
    scripts.set('flags', {
      connack: { ...ok, properties: { wildcardSubscriptionAvailable: 0, sharedSubscriptionAvailable: 0, subscriptionIdentifiersAvailable: 0 } },
      onPacket: (p, send) => { if (p.type === 'subscribe') send({ type: 'suback', packetId: p.packetId, reasonCodes: p.subscriptions.map(() => 0) }); },
    });
    const c = await clients.connect(broker.url, { clientId: 'flags' });
    assert.deepEqual([c.connack?.wildcardSubscriptionAvailable, c.connack?.sharedSubscriptionAvailable, c.connack?.subscriptionIdentifiersAvailable], [false, false, false]);
    for (const [topic, options, code] of [['a/+', {}, 0xa2], ['$share/g/t', {}, 0x9e], ['plain', { subscriptionIdentifier: 4 }, 0xa1]] as const) {
      const err = await rejection(c.subscribe(topic, options));
      assert.ok(err instanceof SubscribeError && err.reasonCodes[0] === code, `${topic}: ${String(err)}`);
    }
    assert.equal(await c.subscribe('plain'), 0);
    const subscribed = broker.received.flatMap((p) => (p.type === 'subscribe' ? p.subscriptions.map((s) => s.topic) : []));
    assert.deepEqual(subscribed.filter((t) => ['a/+', '$share/g/t', 'plain'].includes(t)), ['plain']);
  });
});

describe('misbehaving servers', () => {
  test('a DISCONNECT 0x9C with a server reference is followed with followRedirects', async () => {
    scripts.set('moving', { connack: ok, after: [{ type: 'disconnect', reasonCode: 0x9c, properties: { serverReference: `127.0.0.1:${second.port}` } }] });
    const c = await clients.connect(broker.url, { clientId: 'moving', followRedirects: true, reconnect: { initialDelay: 5000 } });
    await waitFor(() => second.received.some((p) => p.type === 'connect' && p.clientId === 'moving'), 3000, 'the CONNECT to the referenced server');
    await waitFor(() => c.connected, 2000, 'connected again');
    assert.deepEqual(c.server, { host: '127.0.0.1', port: second.port });
  });

  test('a QoS 2 message beyond our receive maximum is a protocol error (DISCONNECT 0x93)', async () => {
    const flood: Packet[] = [1, 2, 3].map((id) => ({ type: 'publish', topic: 'q2', payload: Buffer.from('x'), qos: 2, retain: false, dup: false, packetId: id }));
    scripts.set('flooded', { connack: ok, after: flood });
    const c = await clients.connect(broker.url, { clientId: 'flooded', properties: { receiveMaximum: 2 } });
    const err = await within(new Promise<Error | undefined>((resolve) => c.once('offline', resolve)), 5000, 'offline');
    assert.ok(err instanceof ConnectionLostError && err.reasonCode === 0x93, String(err));
    await waitFor(() => broker.received.some((p) => p.type === 'disconnect' && p.reasonCode === 0x93));
  });

  test('a packet larger than our maximum packet size is refused with DISCONNECT 0x95', async () => {
    scripts.set('big', { connack: ok, after: [{ type: 'publish', topic: 'big', payload: Buffer.alloc(300), qos: 0, retain: false, dup: false }] });
    const c = await clients.connect(broker.url, { clientId: 'big', properties: { maximumPacketSize: 200 } });
    const err = await within(new Promise<Error | undefined>((resolve) => c.once('offline', resolve)), 5000, 'offline');
    assert.ok(err instanceof ConnectionLostError && err.reasonCode === 0x95, String(err));
    await waitFor(() => broker.received.some((p) => p.type === 'disconnect' && p.reasonCode === 0x95));
  });
});
