/**
 * MQTT 5.0 properties of CONNECT, will, PUBLISH, SUBSCRIBE, UNSUBSCRIBE and DISCONNECT through the
 * client library, against Debian's mosquitto and against Midge's own broker: each test fails when
 * the feature is missing (the property is not sent, or the broker's behaviour it asks for does not happen).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { BrokerProcess } from '../helpers/broker-process.js';
import { ConnectionLostError } from '../../src/client/index.js';
import type { SubscribePacket, UnsubscribePacket } from '../../src/codec/types.js';
import { Clients, collect, KINDS, sleep, waitFor, within, WireProxy, startBrokerOf } from './_helpers.js';

for (const kind of KINDS) {
  describe(`MQTT 5.0 properties against ${kind}`, () => {
    let broker: BrokerProcess;
    let url: string;
    let proxy: WireProxy;
    const clients = new Clients();
    const id = (name: string): string => `${kind}-${name}`;

    before(async () => {
      broker = await startBrokerOf(kind);
      url = `mqtt://127.0.0.1:${broker.port}`;
      proxy = await WireProxy.start(broker.port);
    });
    after(async () => {
      await clients.endAll();
      await proxy.close();
      await broker.stop();
    });

    test('every CONNECT property goes on the wire and the broker accepts them', async () => {
      const properties = {
        sessionExpiryInterval: 30, receiveMaximum: 10, maximumPacketSize: 100_000, topicAliasMaximum: 5,
        requestResponseInformation: 1, requestProblemInformation: 0, userProperties: [['a', '1'], ['b', '2'], ['a', '3']] as Array<[string, string]>,
      };
      const c = await clients.connect(proxy.url, { clientId: id('connect-props'), properties });
      const connect = proxy.toServer.find((p) => p.type === 'connect' && p.clientId === id('connect-props'));
      assert.deepEqual(connect?.type === 'connect' && connect.properties, properties);
      assert.equal(c.connack?.reasonCode, 0);
      await c.end();
    });

    test('every PUBLISH property reaches the subscriber, user properties in order, with the subscription identifier', async () => {
      const sub = await clients.connect(url);
      const got = collect(sub);
      await sub.subscribe('props/all', { qos: 1, subscriptionIdentifier: 7 });
      const pub = await clients.connect(url);
      const userProperties: Array<[string, string]> = [['z', '1'], ['a', '2'], ['z', '3'], ['', '']];
      await pub.publish('props/all', 'payload', {
        qos: 1,
        properties: {
          payloadFormatIndicator: 1, messageExpiryInterval: 60, contentType: 'text/plain; charset=utf-8',
          responseTopic: 'props/reply', correlationData: Buffer.from([0, 1, 2, 255]), userProperties,
        },
      });
      const [m] = await got.next(1);
      const p = m!.properties!;
      assert.equal(p.payloadFormatIndicator, 1);
      assert.ok(p.messageExpiryInterval! <= 60 && p.messageExpiryInterval! >= 55, `expiry ${p.messageExpiryInterval}`);
      assert.equal(p.contentType, 'text/plain; charset=utf-8');
      assert.equal(p.responseTopic, 'props/reply');
      assert.deepEqual(p.correlationData, Buffer.from([0, 1, 2, 255]));
      assert.deepEqual(p.userProperties, userProperties);
      assert.deepEqual(p.subscriptionIdentifiers, [7]);
    });

    test('a message with expiry 1 s queued for an offline client is not delivered after 2 s', async () => {
      const options = { clientId: id('expiry'), clean: false, properties: { sessionExpiryInterval: 60 } };
      const away = await clients.connect(url, options);
      await away.subscribe('expiry/t', { qos: 1 });
      await away.end();
      const pub = await clients.connect(url);
      await pub.publish('expiry/t', 'short-lived', { qos: 1, properties: { messageExpiryInterval: 1 } });
      await pub.publish('expiry/t', 'lasting', { qos: 1, properties: { messageExpiryInterval: 100 } });
      await sleep(2100);
      const back = await clients.connect(url, { ...options, clean: false });
      const got = collect(back);
      assert.equal(back.connack?.sessionPresent, true);
      await got.next(1);
      await sleep(300);
      assert.deepEqual(got.messages.map((m) => m.payload.toString()), ['lasting']);
      assert.ok(got.messages[0]!.properties!.messageExpiryInterval! <= 98, 'the expiry counts down while queued');
      await back.end({ properties: { sessionExpiryInterval: 0 } });
    });

    test('a will with delay 3 s is not sent when the client comes back after 1 s, and is sent after the delay otherwise', async () => {
      const watcher = await clients.connect(url);
      const wills = collect(watcher);
      await watcher.subscribe('will/#', { qos: 1 });
      const will = {
        topic: 'will/delayed', payload: 'gone', qos: 1 as const,
        properties: { willDelayInterval: 3, contentType: 'text/plain', userProperties: [['w', '1'], ['w', '2']] as Array<[string, string]> },
      };
      const options = { clientId: id('will'), clean: false, properties: { sessionExpiryInterval: 60 }, will };
      await clients.connect(proxy.url, options);
      proxy.cut();
      await sleep(1000);
      const back = await clients.connect(url, { ...options, will: undefined });
      await sleep(3000);
      assert.equal(wills.messages.length, 0, 'the will was cancelled by the reconnect');
      await back.end({ properties: { sessionExpiryInterval: 0 } });

      await clients.connect(proxy.url, { ...options, clientId: id('will2'), will: { ...will, properties: { ...will.properties, willDelayInterval: 2 } } });
      const cutAt = Math.round(performance.now());
      proxy.cut();
      const [m] = await wills.next(1, 6000);
      const waited = Math.round(performance.now()) - cutAt;
      assert.ok(waited >= 1500, `the will came after ${waited} ms`);
      assert.deepEqual([m!.topic, m!.payload.toString(), m!.properties?.contentType, m!.properties?.userProperties],
        ['will/delayed', 'gone', 'text/plain', [['w', '1'], ['w', '2']]]);
    });

    test('no-local keeps a client from receiving its own messages', async () => {
      const c = await clients.connect(url);
      const got = collect(c);
      await c.subscribe('nolocal/t', { qos: 1, noLocal: true });
      await c.subscribe('nolocal/marker', { qos: 1 });
      const other = await clients.connect(url);
      await c.publish('nolocal/t', 'own', { qos: 1 });
      await other.publish('nolocal/t', 'other', { qos: 1 });
      await c.publish('nolocal/marker', 'end', { qos: 1 });
      await waitFor(() => got.messages.some((m) => m.topic === 'nolocal/marker'));
      assert.deepEqual(got.messages.map((m) => m.payload.toString()).sort(), ['end', 'other']);
    });

    test('retain-as-published keeps the retain flag live; retain handling 1 sends retained once, 2 never', async () => {
      const pub = await clients.connect(url);
      await pub.publish('rh/t', 'kept', { qos: 1, retain: true });
      const rap = await clients.connect(url);
      const rapGot = collect(rap);
      await rap.subscribe('rh/live', { qos: 1, retainAsPublished: true });
      const plainClient = await clients.connect(url);
      const plain = collect(plainClient);
      await plainClient.subscribe('rh/live', { qos: 1 });
      await pub.publish('rh/live', 'x', { qos: 1, retain: true });
      const [live] = await rapGot.next(1);
      assert.equal(live!.retain, true);
      await plain.next(1);
      assert.equal(plain.messages[0]!.retain, false);

      const c = await clients.connect(url);
      const got = collect(c);
      await c.subscribe('rh/t', { qos: 1, retainHandling: 1 });
      await c.subscribe('rh/t', { qos: 1, retainHandling: 1 });
      const never = await clients.connect(url);
      const none = collect(never);
      await never.subscribe('rh/t', { qos: 1, retainHandling: 2 });
      await c.subscribe('rh/t', { qos: 1, retainHandling: 0 });
      await waitFor(() => got.messages.length >= 2);
      await sleep(300);
      assert.deepEqual(got.messages.map((m) => m.retain), [true, true], 'once for the new subscription, again for handling 0');
      assert.equal(none.messages.length, 0);
      await pub.publish('rh/t', '', { qos: 1, retain: true });
    });

    test('overlapping subscriptions report their subscription identifiers', async () => {
      const c = await clients.connect(url);
      const got = collect(c);
      await c.subscribe('ids/+', { qos: 1, subscriptionIdentifier: 1 });
      await c.subscribe('ids/#', { qos: 1, subscriptionIdentifier: 2 });
      const pub = await clients.connect(url);
      await pub.publish('ids/x', 'm', { qos: 1 });
      await got.next(1);
      await sleep(200);
      const ids = new Set(got.messages.flatMap((m) => m.properties?.subscriptionIdentifiers ?? []));
      assert.deepEqual([...ids].sort(), [1, 2]);
    });

    test('the session ends after its expiry interval, and DISCONNECT can end it at once', async () => {
      const short = { clientId: id('sess-short'), clean: false, properties: { sessionExpiryInterval: 1 } };
      await (await clients.connect(url, short)).end();
      await sleep(2500);
      const later = await clients.connect(url, short);
      assert.equal(later.connack?.sessionPresent, false, 'the 1 s session expired');
      await later.end();
      const long = { clientId: id('sess-long'), clean: false, properties: { sessionExpiryInterval: 60 } };
      await (await clients.connect(url, long)).end();
      const kept = await clients.connect(url, long);
      assert.equal(kept.connack?.sessionPresent, true);
      await kept.end({ properties: { sessionExpiryInterval: 0 } });
      const gone = await clients.connect(url, long);
      assert.equal(gone.connack?.sessionPresent, false, 'DISCONNECT with session expiry 0 ended it');
      await gone.end({ properties: { sessionExpiryInterval: 0 } });
    });

    test('UNSUBSCRIBE and SUBSCRIBE user properties go on the wire; UNSUBACK reason codes come back', async () => {
      const c = await clients.connect(proxy.url, { clientId: id('unsub') });
      await c.subscribe('u/t', { qos: 0, properties: { userProperties: [['s', '1']] } });
      const codes = await c.unsubscribe(['u/t', 'u/never'], { userProperties: [['u', '1'], ['u', '2']] });
      assert.deepEqual(codes, [0x00, 0x11]);
      const unsub = proxy.toServer.find((p): p is UnsubscribePacket => p.type === 'unsubscribe' && p.topics.includes('u/never'));
      const sub = proxy.toServer.find((p): p is SubscribePacket => p.type === 'subscribe' && p.subscriptions[0]?.topic === 'u/t');
      assert.deepEqual(unsub?.properties?.userProperties, [['u', '1'], ['u', '2']]);
      assert.deepEqual(sub?.properties?.userProperties, [['s', '1']]);
    });

    test('DISCONNECT reason code, session expiry, reason string and user properties go on the wire', async () => {
      const c = await clients.connect(proxy.url, { clientId: id('disc'), properties: { sessionExpiryInterval: 10 } });
      await c.end({ reasonCode: 0x04, properties: { sessionExpiryInterval: 0, reasonString: 'bye', userProperties: [['d', '1']] } });
      const last = proxy.toServer.filter((p) => p.type === 'disconnect').at(-1);
      assert.deepEqual(last, { type: 'disconnect', reasonCode: 0x04, properties: { sessionExpiryInterval: 0, reasonString: 'bye', userProperties: [['d', '1']] } });
    });

    // mosquitto 2.0.11 closes a taken-over connection without a DISCONNECT; Midge sends 0x8E
    test(`a session takeover reaches the offline event as ConnectionLostError${kind === 'midge' ? ' with reason code 0x8E' : ''}`, async () => {
      const first = await clients.connect(url, { clientId: id('taken') });
      const offline = new Promise<Error | undefined>((resolve) => first.once('offline', resolve));
      const pending = first.publish('never/acked', 'x', { qos: 1 }).catch((e: Error) => e);
      await clients.connect(url, { clientId: id('taken') });
      const err = await within(offline, 5000, 'offline');
      const code = kind === 'midge' ? 0x8e : undefined;
      assert.ok(err instanceof ConnectionLostError);
      assert.equal(err.reasonCode, code);
      const r = await pending;
      if (r instanceof Error) assert.ok(r instanceof ConnectionLostError && r.reasonCode === code);
    });
  });
}
