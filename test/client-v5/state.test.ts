/**
 * The MQTT 5.0 rules of the client state machine with a fake clock and no sockets: what the broker's
 * CONNACK allows, topic aliases both ways, enhanced authentication, redirection and reason codes.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ClientState, type Action, type ClientStateOptions } from '../../src/client/state.js';
import type { ConnackPacket, Packet, Properties, PublishPacket } from '../../src/codec/types.js';
import { decodePacket } from '../../src/codec/index.js';
import {
  ConnectionLostError, MaximumPacketSizeError, PublishError, ServerRedirectError, SubscribeError, UnsubscribeError,
} from '../../src/client/errors.js';
import { parseServerReference } from '../../src/client/redirect.js';

function options(o: Partial<ClientStateOptions> = {}): ClientStateOptions {
  return {
    protocolVersion: 5, clientId: 'c1', clean: true, keepalive: 60, connectTimeout: 5000, maxInflight: 65535,
    queueLimit: 100, resubscribe: true, ...o,
  };
}
const sent = (actions: Action[]): Packet[] => actions.flatMap((a) => (a.type === 'send' ? [a.packet] : []));
const ofType = <T extends Action['type']>(actions: Action[], type: T): Array<Extract<Action, { type: T }>> =>
  actions.filter((a): a is Extract<Action, { type: T }> => a.type === type);
const msg = (topic: string, qos: 0 | 1 | 2, extra: object = {}) => ({ topic, payload: Buffer.from('x'), qos, retain: false, ...extra });
const pub = (topic: string, properties?: Properties, qos: 0 | 1 | 2 = 0, packetId?: number): PublishPacket =>
  ({ type: 'publish', topic, payload: Buffer.from('p'), qos, retain: false, dup: false, ...(packetId ? { packetId } : {}), ...(properties ? { properties } : {}) });

/** A state machine connected with the given CONNACK properties. */
function connected(props: Properties = {}, o: Partial<ClientStateOptions> = {}): { s: ClientState; actions: Action[] } {
  const s = new ClientState(options(o));
  s.open(0);
  const connack: ConnackPacket = { type: 'connack', sessionPresent: false, reasonCode: 0 };
  if (Object.keys(props).length > 0) connack.properties = props;
  return { s, actions: s.handle(connack, 0) };
}

describe('the limits of the broker CONNACK', () => {
  test('server keep alive replaces the keepalive for the PINGREQ timer', () => {
    const { s } = connected({ serverKeepAlive: 2 }, { keepalive: 60 });
    assert.equal(s.keepalive, 2);
    assert.equal(s.nextDeadline(), 2000);
    assert.deepEqual(sent(s.tick(2000)), [{ type: 'pingreq' }]);
  });

  test('no more QoS 1/2 publishes in flight than the broker receive maximum', () => {
    const { s } = connected({ receiveMaximum: 2 });
    const out = [1, 2, 3, 4].flatMap((i) => sent(s.publish(msg(`t/${i}`, 1), 1).actions));
    assert.equal(out.length, 2);
    const next = sent(s.handle({ type: 'puback', packetId: (out[0] as PublishPacket).packetId! }, 2));
    assert.deepEqual(next.map((p) => p.type === 'publish' && p.topic), ['t/3']);
    assert.equal(s.inflightCount, 2);
  });

  test('a packet larger than the broker maximum packet size is refused with MaximumPacketSizeError and not sent', () => {
    const { s } = connected({ maximumPacketSize: 100 });
    const small = s.publish(msg('t', 1), 1);
    assert.equal(sent(small.actions).length, 1);
    const big = s.publish({ ...msg('t', 1), payload: Buffer.alloc(200) }, 2);
    assert.equal(sent(big.actions).length, 0);
    const [r] = ofType(big.actions, 'reject');
    assert.ok(r?.error instanceof MaximumPacketSizeError);
    assert.deepEqual([r.error.limit, r.error.size > 200, r.error.reasonCode], [100, true, 0x95]);
    const sub = s.subscribe([{ topic: 'x'.repeat(150), qos: 0 }], undefined, 3);
    assert.ok(ofType(sub.actions, 'reject')[0]?.error instanceof MaximumPacketSizeError);
    assert.equal(s.status, 'connected');
  });

  test('QoS above the broker maximum QoS is refused with PublishError 0x9B', () => {
    const { s } = connected({ maximumQoS: 1 });
    const [r] = ofType(s.publish(msg('t', 2), 1).actions, 'reject');
    assert.ok(r?.error instanceof PublishError && r.error.reasonCode === 0x9b);
    assert.equal(sent(s.publish(msg('t', 1), 1).actions).length, 1);
  });

  test('a retained message to a broker without retain is refused with PublishError 0x9A', () => {
    const { s } = connected({ retainAvailable: 0 });
    const [r] = ofType(s.publish({ ...msg('t', 0), retain: true }, 1).actions, 'reject');
    assert.ok(r?.error instanceof PublishError && r.error.reasonCode === 0x9a);
  });

  test('shared, wildcard and subscription-id subscriptions are refused when the broker says it has none', () => {
    const { s } = connected({ sharedSubscriptionAvailable: 0, wildcardSubscriptionAvailable: 0, subscriptionIdentifiersAvailable: 0 });
    // the subscription identifier is for every filter of the SUBSCRIBE
    const cases: Array<[string, Properties | undefined, number[]]> = [
      ['$share/g/t', undefined, [0x9e, 0x80]], ['a/+', undefined, [0xa2, 0x80]], ['a/#', undefined, [0xa2, 0x80]],
      ['a', { subscriptionIdentifiers: [3] }, [0xa1, 0xa1]],
    ];
    for (const [topic, props, codes] of cases) {
      const r = s.subscribe([{ topic, qos: 0 }, { topic: 'fine', qos: 0 }], props, 1);
      assert.equal(sent(r.actions).length, 0, topic);
      const [rej] = ofType(r.actions, 'reject');
      assert.ok(rej?.error instanceof SubscribeError);
      assert.deepEqual(rej.error.reasonCodes, codes, topic);
    }
    assert.equal(sent(s.subscribe([{ topic: 'plain', qos: 0 }], undefined, 2).actions).length, 1);
  });

  test('the CONNACK information is kept with the 5.0 defaults filled in', () => {
    const { s } = connected({ assignedClientIdentifier: 'auto-1', responseInformation: 'resp/', topicAliasMaximum: 4, reasonString: 'hi' });
    assert.equal(s.clientId, 'auto-1');
    assert.deepEqual({ ...s.server, properties: undefined }, {
      sessionPresent: false, reasonCode: 0, properties: undefined, receiveMaximum: 65535, topicAliasMaximum: 4, maximumQoS: 2,
      retainAvailable: true, wildcardSubscriptionAvailable: true, subscriptionIdentifiersAvailable: true,
      sharedSubscriptionAvailable: true, assignedClientIdentifier: 'auto-1', responseInformation: 'resp/', reasonString: 'hi',
    });
  });
});

describe('topic aliases', () => {
  test('outgoing: the first publish carries topic and alias, later ones an empty topic', () => {
    const { s } = connected({ topicAliasMaximum: 2 });
    const topics = ['a', 'a', 'b', 'a', 'c', 'b'].map((t) => {
      const [p] = sent(s.publish({ ...msg(t, 0), topicAlias: 'auto' }, 1).actions) as PublishPacket[];
      return `${p!.topic}#${p!.properties?.topicAlias}`;
    });
    // c takes the least recently used alias (b's 2), so b needs its topic again
    assert.deepEqual(topics, ['a#1', '#1', 'b#2', '#1', 'c#2', 'b#1']);
  });

  test('outgoing: the autoTopicAlias option aliases every publish, and none when the broker allows none', () => {
    const { s } = connected({ topicAliasMaximum: 5 }, { autoTopicAlias: true });
    const [p1, p2] = [1, 2].map(() => sent(s.publish(msg('t', 0), 1).actions)[0] as PublishPacket);
    assert.deepEqual([p1!.topic, p2!.topic, p2!.properties?.topicAlias], ['t', '', 1]);
    const [p3] = sent(s.publish({ ...msg('t', 0), topicAlias: false }, 1).actions) as PublishPacket[];
    assert.equal(p3!.topic, 't');
    const none = connected({}, { autoTopicAlias: true }).s;
    const [p4] = sent(none.publish(msg('t', 0), 1).actions) as PublishPacket[];
    assert.equal(p4!.properties?.topicAlias, undefined);
  });

  test('outgoing: the encoded bytes carry the empty topic and the alias', () => {
    const { s } = connected({ topicAliasMaximum: 1 });
    s.publish({ ...msg('long/topic/name', 0), topicAlias: 1 }, 1);
    const [a] = ofType(s.publish({ ...msg('long/topic/name', 0), topicAlias: 1 }, 1).actions, 'send');
    const decoded = decodePacket(a!.bytes!, 5) as PublishPacket;
    assert.deepEqual([decoded.topic, decoded.properties?.topicAlias], ['', 1]);
  });

  test('outgoing: a QoS 1 message sent with an alias is sent again with its full topic after a reconnect', () => {
    const { s } = connected({ topicAliasMaximum: 3 });
    s.publish({ ...msg('q/t', 1), topicAlias: 'auto' }, 1);
    const [second] = sent(s.publish({ ...msg('q/t', 1), topicAlias: 'auto' }, 1).actions) as PublishPacket[];
    assert.equal(second!.topic, '');
    s.connectionLost();
    s.open(10);
    const resent = sent(s.handle({ type: 'connack', sessionPresent: true, reasonCode: 0 }, 11)) as PublishPacket[];
    assert.deepEqual(resent.map((p) => [p.topic, p.dup, p.properties?.topicAlias]), [['q/t', true, undefined], ['q/t', true, undefined]]);
  });

  test('incoming: an alias is resolved, and an unknown or out-of-range alias is a protocol error with DISCONNECT', () => {
    const cases: Array<[PublishPacket[], number]> = [
      [[pub('', { topicAlias: 2 })], 0x82],
      [[pub('x', { topicAlias: 9 })], 0x94],
      [[pub('x', { topicAlias: 0 })], 0x94],
      [[pub('')], 0x82],
    ];
    for (const [packets, code] of cases) {
      const { s } = connected({}, { properties: { topicAliasMaximum: 4 } });
      const actions = packets.flatMap((p) => s.handle(p, 1));
      assert.deepEqual(sent(actions), [{ type: 'disconnect', reasonCode: code }]);
      const [close] = ofType(actions, 'close');
      assert.ok(close?.error instanceof ConnectionLostError && close.error.reasonCode === code);
    }
    const { s } = connected({}, { properties: { topicAliasMaximum: 4 } });
    s.handle(pub('full/topic', { topicAlias: 4 }), 1);
    const [m] = ofType(s.handle(pub('', { topicAlias: 4, userProperties: [['k', 'v']] }), 2), 'message');
    assert.deepEqual([m?.message.topic, m?.message.properties?.topicAlias], ['full/topic', 4]);
  });
});

describe('enhanced authentication', () => {
  const auth = { method: 'M', data: Buffer.from('me') };

  test('CONNECT carries the method; a challenge asks the application, whose answer goes in AUTH 0x18', () => {
    const s = new ClientState(options({ auth }));
    const [connect] = sent(s.open(0));
    assert.deepEqual(connect?.type === 'connect' && connect.properties, { authenticationMethod: 'M', authenticationData: Buffer.from('me') });
    const [ask] = ofType(s.handle({ type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'M', authenticationData: Buffer.from('c1') } }, 1), 'auth');
    assert.deepEqual([ask?.data, ask?.reauth], [Buffer.from('c1'), false]);
    assert.deepEqual(sent(s.authRespond(ask!.token, Buffer.from('r1'), 2)), [{ type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'M', authenticationData: Buffer.from('r1') } }]);
    s.handle({ type: 'connack', sessionPresent: false, reasonCode: 0 }, 3);
    assert.deepEqual(s.authRespond(ask!.token, Buffer.from('late'), 4), [], 'an answer after the exchange ended is dropped');
  });

  test('reauthenticate sends AUTH 0x19 and resolves with the broker data at AUTH 0x00', () => {
    const { s } = connected({}, { auth });
    const { op, actions } = s.reauthenticate(Buffer.from('again'), 1);
    assert.deepEqual(sent(actions), [{ type: 'auth', reasonCode: 0x19, properties: { authenticationMethod: 'M', authenticationData: Buffer.from('again') } }]);
    const [ask] = ofType(s.handle({ type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'M' } }, 2), 'auth');
    assert.equal(ask?.reauth, true);
    assert.equal(sent(s.authRespond(ask!.token, undefined, 3)).length, 1);
    const done = s.handle({ type: 'auth', reasonCode: 0, properties: { authenticationMethod: 'M', authenticationData: Buffer.from('ok') } }, 4);
    assert.deepEqual(ofType(done, 'resolve'), [{ type: 'resolve', op, value: Buffer.from('ok') }]);
  });

  test('AUTH with another method, or without a method configured, is a protocol error', () => {
    const { s } = connected({}, { auth });
    assert.deepEqual(sent(s.handle({ type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'X' } }, 1)), [{ type: 'disconnect', reasonCode: 0x82 }]);
    const plain = connected().s;
    assert.deepEqual(sent(plain.handle({ type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'M' } }, 1)), [{ type: 'disconnect', reasonCode: 0x82 }]);
  });
});

describe('reason codes and redirection', () => {
  test('CONNACK 0x9D with a server reference closes with ServerRedirectError', () => {
    const s = new ClientState(options());
    s.open(0);
    const [close] = ofType(s.handle({ type: 'connack', sessionPresent: false, reasonCode: 0x9d, properties: { serverReference: 'other:1884' } }, 1), 'close');
    assert.ok(close?.error instanceof ServerRedirectError);
    assert.deepEqual([close.error.serverReference, close.error.moved, close.error.reasonCode], ['other:1884', true, 0x9d]);
  });

  test('server references parse as host, host:port, [v6]:port and URLs', () => {
    assert.deepEqual(parseServerReference('b.example', 1883), { host: 'b.example', port: 1883 });
    assert.deepEqual(parseServerReference('127.0.0.1:1999 other:2', 1883), { host: '127.0.0.1', port: 1999 });
    assert.deepEqual(parseServerReference('[::1]:2000', 1883), { host: '::1', port: 2000 });
    assert.deepEqual(parseServerReference('mqtt://h:3000/', 1883), { host: 'h', port: 3000 });
    assert.equal(parseServerReference('h:0', 1883), undefined);
  });

  test('a server DISCONNECT puts its reason code, reason string and server reference on ConnectionLostError', () => {
    const { s } = connected();
    const [close] = ofType(s.handle({ type: 'disconnect', reasonCode: 0x9c, properties: { reasonString: 'go away', serverReference: 'b:1' } }, 1), 'close');
    assert.ok(close?.error instanceof ConnectionLostError);
    assert.deepEqual([close.error.reasonCode, close.error.reasonString, close.error.serverReference], [0x9c, 'go away', 'b:1']);
  });

  test('failed acks carry reason code and reason string: PUBACK, PUBREC, SUBACK, UNSUBACK', () => {
    const { s } = connected();
    const p1 = s.publish(msg('a', 1), 1);
    const id1 = (sent(p1.actions)[0] as PublishPacket).packetId!;
    const [r1] = ofType(s.handle({ type: 'puback', packetId: id1, reasonCode: 0x87, properties: { reasonString: 'no' } }, 2), 'reject');
    assert.ok(r1?.error instanceof PublishError && r1.error.reasonCode === 0x87 && r1.error.reasonString === 'no');
    const p2 = s.publish(msg('a', 2), 1);
    const id2 = (sent(p2.actions)[0] as PublishPacket).packetId!;
    const [r2] = ofType(s.handle({ type: 'pubrec', packetId: id2, reasonCode: 0x97 }, 2), 'reject');
    assert.ok(r2?.error instanceof PublishError && r2.error.reasonCode === 0x97);
    const sub = s.subscribe([{ topic: 'a', qos: 1 }, { topic: 'b', qos: 1 }], undefined, 3);
    const sid = (sent(sub.actions)[0] as { packetId: number }).packetId;
    const [r3] = ofType(s.handle({ type: 'suback', packetId: sid, reasonCodes: [1, 0x87], properties: { reasonString: 'denied' } }, 4), 'reject');
    assert.ok(r3?.error instanceof SubscribeError);
    assert.deepEqual([r3.error.reasonCodes, r3.error.reasonString], [[1, 0x87], 'denied']);
    const uns = s.unsubscribe(['a', 'zz'], undefined, 5);
    const uid = (sent(uns.actions)[0] as { packetId: number }).packetId;
    const [r4] = ofType(s.handle({ type: 'unsuback', packetId: uid, reasonCodes: [0, 0x8f] }, 6), 'reject');
    assert.ok(r4?.error instanceof UnsubscribeError);
    assert.deepEqual(r4.error.reasonCodes, [0, 0x8f]);
    const ok = s.unsubscribe(['nothing'], undefined, 7);
    const okId = (sent(ok.actions)[0] as { packetId: number }).packetId;
    assert.deepEqual(ofType(s.handle({ type: 'unsuback', packetId: okId, reasonCodes: [0x11] }, 8), 'resolve')[0]?.value, [0x11]);
  });

  test('more incoming QoS 2 messages than our receive maximum is a protocol error 0x93', () => {
    const { s } = connected({}, { properties: { receiveMaximum: 2 } });
    s.handle(pub('t', undefined, 2, 1), 1);
    s.handle(pub('t', undefined, 2, 2), 1);
    assert.deepEqual(sent(s.handle(pub('t', undefined, 2, 3), 1)), [{ type: 'disconnect', reasonCode: 0x93 }]);
  });

  test('bytes the codec cannot parse are answered with DISCONNECT carrying the codec reason code', () => {
    const { s } = connected();
    const err = Object.assign(new Error('bad'), { reasonCode: 0x95 });
    assert.deepEqual(sent(s.parseError(err, 1)), [{ type: 'disconnect', reasonCode: 0x95 }]);
  });
});

describe('DISCONNECT', () => {
  test('a session expiry at DISCONNECT is sent only when CONNECT had one [MQTT-3.14.2-2]', () => {
    const props = { sessionExpiryInterval: 30, reasonString: 'bye' };
    const without = connected().s;
    assert.deepEqual(sent(without.end(1, true, 0, props)), [{ type: 'disconnect', properties: { reasonString: 'bye' } }]);
    const withExpiry = connected({}, { properties: { sessionExpiryInterval: 5 } }).s;
    assert.deepEqual(sent(withExpiry.end(1, true, 0x04, props)), [{ type: 'disconnect', reasonCode: 4, properties: props }]);
  });
});
