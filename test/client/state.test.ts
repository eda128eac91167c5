/**
 * The client protocol state machine with a fake clock and no sockets: packets in, actions out.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ClientState, type Action, type ClientStateOptions } from '../../src/client/state.js';
import type { Packet, PublishPacket } from '../../src/codec/types.js';
import {
  ClientClosedError, ConnectionLostError, ConnectionRefusedError, PublishError, QueueFullError, SubscribeError, TimeoutError,
} from '../../src/client/errors.js';
import { PacketIdAllocator } from '../../src/client/packet-id.js';

function options(o: Partial<ClientStateOptions> = {}): ClientStateOptions {
  return {
    protocolVersion: 4, clientId: 'c1', clean: true, keepalive: 60, connectTimeout: 5000, maxInflight: 65535,
    queueLimit: 100, resubscribe: true, ...o,
  };
}
const sent = (actions: Action[]): Packet[] => actions.flatMap((a) => (a.type === 'send' ? [a.packet] : []));
const ofType = <T extends Action['type']>(actions: Action[], type: T): Array<Extract<Action, { type: T }>> =>
  actions.filter((a): a is Extract<Action, { type: T }> => a.type === type);
const msg = (topic: string, qos: 0 | 1 | 2, payload = 'x') => ({ topic, payload: Buffer.from(payload), qos, retain: false });

/** A state machine that is connected at time 0 (or `now`). */
function connected(o: Partial<ClientStateOptions> = {}, now = 0, sessionPresent = false): ClientState {
  const s = new ClientState(options(o));
  s.open(now);
  s.handle({ type: 'connack', sessionPresent, reasonCode: 0 }, now);
  return s;
}

describe('connecting', () => {
  test('opening the transport sends CONNECT with the options', () => {
    const s = new ClientState(options({ clientId: 'me', clean: false, keepalive: 30, username: 'u', password: Buffer.from('p') }));
    const [connect] = sent(s.open(0));
    assert.deepEqual(connect, {
      type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: false, keepalive: 30, clientId: 'me',
      username: 'u', password: Buffer.from('p'),
    });
    assert.equal(s.status, 'connecting');
  });

  test('MQTT 3.1 uses the protocol name MQIsdp', () => {
    const s = new ClientState(options({ protocolVersion: 3 }));
    const [connect] = sent(s.open(0));
    assert.equal(connect?.type === 'connect' && connect.protocolName, 'MQIsdp');
  });

  test('a successful CONNACK reports connected', () => {
    const s = new ClientState(options());
    s.open(0);
    const actions = s.handle({ type: 'connack', sessionPresent: false, reasonCode: 0 }, 10);
    assert.equal(ofType(actions, 'connected').length, 1);
    assert.equal(s.status, 'connected');
  });

  test('a refused CONNACK closes with ConnectionRefusedError carrying the code and mosquitto text', () => {
    const s = new ClientState(options());
    s.open(0);
    const [close] = ofType(s.handle({ type: 'connack', sessionPresent: false, reasonCode: 5 }, 10), 'close');
    assert.ok(close?.error instanceof ConnectionRefusedError);
    assert.equal(close.error.returnCode, 5);
    assert.equal(close.error.message, 'Connection Refused: not authorised.');
  });

  test('a refused 5.0 CONNACK uses the reason code text', () => {
    const s = new ClientState(options({ protocolVersion: 5 }));
    s.open(0);
    const [close] = ofType(s.handle({ type: 'connack', sessionPresent: false, reasonCode: 0x87 }, 10), 'close');
    assert.ok(close?.error instanceof ConnectionRefusedError);
    assert.equal(close.error.message, 'Not authorized');
  });

  test('no CONNACK within the connect timeout closes with TimeoutError', () => {
    const s = new ClientState(options({ connectTimeout: 1000 }));
    s.open(0);
    assert.equal(s.nextDeadline(), 1000);
    assert.deepEqual(s.tick(999), []);
    const [close] = ofType(s.tick(1000), 'close');
    assert.ok(close?.error instanceof TimeoutError);
  });

  test('the 5.0 CONNACK properties set client id, keepalive and the in-flight window', () => {
    const s = new ClientState(options({ protocolVersion: 5, clientId: '' }));
    s.open(0);
    s.handle({ type: 'connack', sessionPresent: false, reasonCode: 0, properties: { assignedClientIdentifier: 'auto-1', serverKeepAlive: 10, receiveMaximum: 1 } }, 0);
    assert.equal(s.clientId, 'auto-1');
    assert.equal(s.keepalive, 10);
    assert.equal(sent(s.publish(msg('a', 1), 0).actions).length, 1);
    assert.equal(sent(s.publish(msg('a', 1), 0).actions).length, 0, 'the second QoS 1 waits for room in the window');
    assert.equal(s.queuedCount, 1);
  });
});

describe('outgoing QoS flows', () => {
  test('a QoS 0 publish is sent and resolved at once to undefined (no packet id); packetsend still reports the message counter', () => {
    const s = connected();
    const { op, actions } = s.publish(msg('t', 0, 'abc'), 1);
    const [p] = sent(actions);
    assert.equal(p?.type, 'publish');
    assert.equal((p as PublishPacket).packetId, undefined);
    assert.equal((actions.find((a) => a.type === 'send') as { mid?: number }).mid, 1);
    assert.deepEqual(ofType(actions, 'resolve'), [{ type: 'resolve', op, value: undefined }]);
  });

  test('a QoS 1 publish resolves with its packet id when the PUBACK comes', () => {
    const s = connected();
    const { op, actions } = s.publish(msg('t', 1), 1);
    const p = sent(actions)[0] as PublishPacket;
    assert.equal(p.qos, 1);
    assert.equal(ofType(actions, 'resolve').length, 0);
    const done = s.handle({ type: 'puback', packetId: p.packetId! }, 2);
    assert.deepEqual(ofType(done, 'resolve'), [{ type: 'resolve', op, value: p.packetId }]);
    assert.equal(s.inflightCount, 0);
  });

  test('a QoS 2 publish goes PUBLISH, PUBREC, PUBREL, PUBCOMP and then resolves', () => {
    const s = connected();
    const { op, actions } = s.publish(msg('t', 2), 1);
    const id = (sent(actions)[0] as PublishPacket).packetId!;
    const rec = s.handle({ type: 'pubrec', packetId: id }, 2);
    assert.deepEqual(sent(rec), [{ type: 'pubrel', packetId: id }]);
    assert.equal(ofType(rec, 'resolve').length, 0);
    const comp = s.handle({ type: 'pubcomp', packetId: id }, 3);
    assert.deepEqual(ofType(comp, 'resolve'), [{ type: 'resolve', op, value: id }]);
  });

  test('a PUBACK for an unknown id is ignored', () => {
    const s = connected();
    assert.deepEqual(s.handle({ type: 'puback', packetId: 42 }, 1), []);
  });

  test('a 5.0 PUBACK with a failure reason code rejects with PublishError', () => {
    const s = connected({ protocolVersion: 5 });
    const { op, actions } = s.publish(msg('t', 1), 1);
    const id = (sent(actions)[0] as PublishPacket).packetId!;
    const [r] = ofType(s.handle({ type: 'puback', packetId: id, reasonCode: 0x87 }, 2), 'reject');
    assert.equal(r?.op, op);
    assert.ok(r?.error instanceof PublishError);
    assert.equal((r.error as PublishError).reasonCode, 0x87);
  });

  test('packet ids are never reused while in flight', () => {
    const s = connected({ queueLimit: 70000 });
    const inFlight = new Set<number>();
    for (let i = 0; i < 65535; i++) {
      const id = (sent(s.publish(msg('t', 1), 1).actions)[0] as PublishPacket).packetId!;
      assert.ok(!inFlight.has(id), `id ${id} handed out twice`);
      inFlight.add(id);
    }
    assert.equal(inFlight.size, 65535);
    assert.equal(sent(s.publish(msg('t', 1), 1).actions).length, 0, 'with every id in flight the publish waits');
    const next = sent(s.handle({ type: 'puback', packetId: 777 }, 2));
    assert.equal((next[0] as PublishPacket).packetId, 777, 'the only free id goes to the waiting publish');
  });

  test('the allocator skips ids still in flight when it wraps around', () => {
    const ids = new PacketIdAllocator();
    const held = new Set<number>();
    for (let i = 0; i < 200_000; i++) {
      const id = ids.alloc()!;
      assert.ok(!held.has(id));
      if (i % 7 === 0) held.add(id); else ids.release(id);
    }
    assert.equal(ids.inUse, held.size);
  });
});

describe('incoming QoS flows', () => {
  test('a QoS 1 message is delivered and acknowledged', () => {
    const s = connected();
    const actions = s.handle({ type: 'publish', topic: 't', payload: Buffer.from('m'), qos: 1, retain: false, dup: false, packetId: 9 }, 1);
    assert.equal(ofType(actions, 'message')[0]?.message.topic, 't');
    assert.deepEqual(sent(actions), [{ type: 'puback', packetId: 9 }]);
  });

  test('a QoS 2 message is delivered once even when the PUBLISH is repeated before PUBREL', () => {
    const s = connected();
    const pub: PublishPacket = { type: 'publish', topic: 't', payload: Buffer.from('m'), qos: 2, retain: false, dup: false, packetId: 5 };
    const first = s.handle(pub, 1);
    assert.equal(ofType(first, 'message').length, 1);
    assert.deepEqual(sent(first), [{ type: 'pubrec', packetId: 5 }]);
    const again = s.handle({ ...pub, dup: true }, 2);
    assert.equal(ofType(again, 'message').length, 0);
    assert.deepEqual(sent(again), [{ type: 'pubrec', packetId: 5 }]);
    assert.deepEqual(sent(s.handle({ type: 'pubrel', packetId: 5 }, 3)), [{ type: 'pubcomp', packetId: 5 }]);
    assert.equal(ofType(s.handle(pub, 4), 'message').length, 1, 'after PUBREL the id starts a new message');
  });

  test('a 5.0 topic alias is resolved for later messages', () => {
    const s = connected({ protocolVersion: 5, properties: { topicAliasMaximum: 5 } });
    s.handle({ type: 'publish', topic: 'long/topic', payload: Buffer.alloc(0), qos: 0, retain: false, dup: false, properties: { topicAlias: 3 } }, 1);
    const [m] = ofType(s.handle({ type: 'publish', topic: '', payload: Buffer.alloc(0), qos: 0, retain: false, dup: false, properties: { topicAlias: 3 } }, 2), 'message');
    assert.equal(m?.message.topic, 'long/topic');
  });
});

describe('keepalive', () => {
  test('PINGREQ goes out after one keepalive period of silence, and PINGRESP clears it', () => {
    const s = connected({ keepalive: 10 });
    assert.equal(s.nextDeadline(), 10_000);
    assert.deepEqual(s.tick(9_999), []);
    assert.deepEqual(sent(s.tick(10_000)), [{ type: 'pingreq' }]);
    s.handle({ type: 'pingresp' }, 10_050);
    assert.equal(s.nextDeadline(), 20_000);
    assert.deepEqual(s.tick(15_000), []);
  });

  test('sending and receiving both count as activity', () => {
    const s = connected({ keepalive: 10 });
    s.publish(msg('t', 0), 8_000);
    s.handle({ type: 'publish', topic: 't', payload: Buffer.alloc(0), qos: 0, retain: false, dup: false }, 9_000);
    assert.deepEqual(s.tick(10_000), [], 'activity at 8 s and 9 s');
    assert.deepEqual(sent(s.tick(18_000)), [{ type: 'pingreq' }]);
  });

  test('no PINGRESP within the ping timeout closes the connection with TimeoutError', () => {
    const s = connected({ keepalive: 10, pingTimeout: 3_000 });
    s.tick(10_000);
    assert.equal(s.nextDeadline(), 13_000);
    assert.deepEqual(s.tick(12_999), []);
    const [close] = ofType(s.tick(13_000), 'close');
    assert.ok(close?.error instanceof TimeoutError);
    assert.equal(s.status, 'offline');
  });

  test('keepalive 0 needs no timer', () => {
    const s = connected({ keepalive: 0 });
    assert.equal(s.nextDeadline(), undefined);
    assert.deepEqual(s.tick(1e9), []);
  });
});

describe('reconnecting', () => {
  test('in-flight QoS 1/2 messages are re-sent with DUP, and PUBREL again, after a reconnect', () => {
    const s = connected({ clean: false });
    const a = sent(s.publish(msg('t', 1, 'a'), 1).actions)[0] as PublishPacket;
    const b = sent(s.publish(msg('t', 2, 'b'), 1).actions)[0] as PublishPacket;
    const c = sent(s.publish(msg('t', 2, 'c'), 1).actions)[0] as PublishPacket;
    s.handle({ type: 'pubrec', packetId: c.packetId! }, 2);
    s.connectionLost();
    s.open(100);
    const resent = sent(s.handle({ type: 'connack', sessionPresent: true, reasonCode: 0 }, 101));
    assert.deepEqual(resent, [
      { ...a, dup: true },
      { ...b, dup: true },
      { type: 'pubrel', packetId: c.packetId },
    ]);
  });

  test('publishes made while offline are queued and sent in order on connect', () => {
    const s = connected();
    s.connectionLost();
    const ops = [s.publish(msg('t', 1, '1'), 1), s.publish(msg('t', 0, '2'), 1), s.publish(msg('t', 2, '3'), 1)];
    assert.ok(ops.every((o) => o.actions.length === 0));
    s.open(10);
    const out = sent(s.handle({ type: 'connack', sessionPresent: false, reasonCode: 0 }, 11)) as PublishPacket[];
    assert.deepEqual(out.map((p) => p.payload.toString()), ['1', '2', '3']);
  });

  test('the offline queue is bounded', () => {
    const s = new ClientState(options({ queueLimit: 2 }));
    s.publish(msg('t', 1), 0);
    s.publish(msg('t', 1), 0);
    const [r] = ofType(s.publish(msg('t', 1), 0).actions, 'reject');
    assert.ok(r?.error instanceof QueueFullError);
  });

  test('subscriptions are renewed after a reconnect without a session, and not with one', () => {
    const s = connected();
    const sub = sent(s.subscribe([{ topic: 'a/#', qos: 1 }], undefined, 1).actions)[0]!;
    assert.equal(sub.type, 'subscribe');
    s.handle({ type: 'suback', packetId: (sub as { packetId: number }).packetId, reasonCodes: [1] }, 2);
    s.connectionLost();
    s.open(10);
    const renewed = sent(s.handle({ type: 'connack', sessionPresent: false, reasonCode: 0 }, 11));
    assert.equal(renewed.length, 1);
    assert.deepEqual(renewed[0]?.type === 'subscribe' && renewed[0].subscriptions, [{ topic: 'a/#', qos: 1 }]);
    s.handle({ type: 'suback', packetId: (renewed[0] as { packetId: number }).packetId, reasonCodes: [1] }, 12);
    s.connectionLost();
    s.open(20);
    assert.deepEqual(sent(s.handle({ type: 'connack', sessionPresent: true, reasonCode: 0 }, 21)), []);
  });

  test('an unsubscribed filter is not renewed', () => {
    const s = connected();
    const sub = sent(s.subscribe([{ topic: 'a', qos: 0 }], undefined, 1).actions)[0] as { packetId: number };
    s.handle({ type: 'suback', packetId: sub.packetId, reasonCodes: [0] }, 2);
    s.unsubscribe(['a'], undefined, 3);
    s.connectionLost();
    s.open(10);
    const out = sent(s.handle({ type: 'connack', sessionPresent: false, reasonCode: 0 }, 11));
    assert.ok(out.every((p) => p.type !== 'subscribe'));
  });

  test('a subscribe made while offline is sent on connect', () => {
    const s = new ClientState(options());
    s.subscribe([{ topic: 'x', qos: 2 }], undefined, 0);
    s.open(1);
    const out = sent(s.handle({ type: 'connack', sessionPresent: false, reasonCode: 0 }, 2));
    assert.equal(out[0]?.type, 'subscribe');
  });
});

describe('subscribing', () => {
  test('SUBACK resolves with the granted QoS of each filter', () => {
    const s = connected();
    const { op, actions } = s.subscribe([{ topic: 'a', qos: 2 }, { topic: 'b', qos: 1 }], undefined, 1);
    const id = (sent(actions)[0] as { packetId: number }).packetId;
    assert.deepEqual(ofType(s.handle({ type: 'suback', packetId: id, reasonCodes: [1, 1] }, 2), 'resolve'), [{ type: 'resolve', op, value: [1, 1] }]);
  });

  test('a refused filter rejects with SubscribeError listing the codes', () => {
    const s = connected();
    const { actions } = s.subscribe([{ topic: 'a', qos: 0 }, { topic: 'b', qos: 0 }], undefined, 1);
    const id = (sent(actions)[0] as { packetId: number }).packetId;
    const [r] = ofType(s.handle({ type: 'suback', packetId: id, reasonCodes: [0, 0x80] }, 2), 'reject');
    assert.ok(r?.error instanceof SubscribeError);
    assert.deepEqual((r.error as SubscribeError).reasonCodes, [0, 0x80]);
  });
});

describe('ending', () => {
  test('end waits for in-flight messages, then sends DISCONNECT and closes', () => {
    const s = connected();
    const id = (sent(s.publish(msg('t', 1), 1).actions)[0] as PublishPacket).packetId!;
    assert.deepEqual(s.end(2), []);
    const done = s.handle({ type: 'puback', packetId: id }, 3);
    assert.deepEqual(done.map((a) => a.type), ['resolve', 'send', 'close']);
    assert.deepEqual(sent(done), [{ type: 'disconnect' }]);
  });

  test('a forced end rejects pending operations with ClientClosedError', () => {
    const s = connected();
    const { op } = s.publish(msg('t', 1), 1);
    const actions = s.end(2, true);
    assert.deepEqual(sent(actions), [{ type: 'disconnect' }]);
    const [r] = ofType(actions, 'reject');
    assert.equal(r?.op, op);
    assert.ok(r?.error instanceof ClientClosedError);
    assert.ok(ofType(s.publish(msg('t', 0), 3).actions, 'reject')[0]?.error instanceof ClientClosedError);
  });

  test('shutdown rejects queued, in-flight and unacknowledged operations alike', () => {
    const s = connected({ maxInflight: 1 });
    s.publish(msg('t', 1), 1);
    s.publish(msg('t', 1), 1);
    s.subscribe([{ topic: 'a', qos: 0 }], undefined, 1);
    const rejects = ofType(s.shutdown(new ConnectionLostError('gone')), 'reject');
    assert.equal(rejects.length, 3);
    assert.equal(s.status, 'closed');
  });

  test('a 5.0 DISCONNECT from the broker closes with its reason code', () => {
    const s = connected({ protocolVersion: 5 });
    const [close] = ofType(s.handle({ type: 'disconnect', reasonCode: 0x8e }, 1), 'close');
    assert.ok(close?.error instanceof ConnectionLostError);
    assert.equal((close.error as ConnectionLostError).reasonCode, 0x8e);
    assert.match(close.error.message, /Session taken over/);
  });

  test('a packet other than CONNACK while connecting is a protocol error', () => {
    const s = new ClientState(options());
    s.open(0);
    const [close] = ofType(s.handle({ type: 'pingresp' }, 1), 'close');
    assert.ok(close?.error instanceof ConnectionLostError);
  });
});

describe('manualAck: the application acknowledges incoming QoS 1/2', () => {
  const pub = (qos: 1 | 2, packetId: number, dup = false): PublishPacket =>
    ({ type: 'publish', topic: 't', payload: Buffer.from('m'), qos, retain: false, dup, packetId });
  const tokenOf = (actions: Action[]): { connection: number; packetId: number; qos: 1 | 2 } => {
    const [m] = ofType(actions, 'message');
    assert.ok(m?.message.ackToken, 'the message carries an acknowledgement token');
    return m.message.ackToken;
  };

  test('QoS 1: no PUBACK on receipt; acknowledge() sends it once', () => {
    const s = connected({ manualAck: true });
    const a = s.handle(pub(1, 7), 1);
    assert.deepEqual(sent(a), [], 'nothing sent on receipt');
    const t = tokenOf(a);
    assert.deepEqual(sent(s.acknowledge(t, 2)), [{ type: 'puback', packetId: 7 }]);
  });

  test('QoS 1: an acknowledgement from before a reconnect is not sent on the new connection (the broker sends the message again)', () => {
    const s = connected({ manualAck: true, clean: false });
    const t = tokenOf(s.handle(pub(1, 7), 1));
    s.connectionLost();
    s.open(2);
    s.handle({ type: 'connack', sessionPresent: true, reasonCode: 0 }, 3);
    assert.deepEqual(sent(s.acknowledge(t, 4)), []);
    const again = s.handle(pub(1, 7, true), 5);
    assert.deepEqual(sent(s.acknowledge(tokenOf(again), 6)), [{ type: 'puback', packetId: 7 }]);
  });

  test('QoS 2: delivered once; a re-sent PUBLISH is not answered before acknowledge(), which sends PUBREC once', () => {
    const s = connected({ manualAck: true });
    const first = s.handle(pub(2, 9), 1);
    assert.deepEqual(sent(first), []);
    const dup = s.handle(pub(2, 9, true), 2);
    assert.deepEqual(ofType(dup, 'message'), [], 'not delivered twice');
    assert.deepEqual(sent(dup), [], 'no PUBREC while the application has not acknowledged');
    const t = tokenOf(first);
    assert.deepEqual(sent(s.acknowledge(t, 3)), [{ type: 'pubrec', packetId: 9 }]);
    assert.deepEqual(sent(s.acknowledge(t, 4)), [], 'once');
    assert.deepEqual(sent(s.handle(pub(2, 9, true), 5)), [{ type: 'pubrec', packetId: 9 }], 'after it: a re-sent PUBLISH gets its PUBREC');
  });

  test('without manualAck the PUBACK goes out on receipt and the message has no token', () => {
    const s = connected();
    const a = s.handle(pub(1, 3), 1);
    assert.deepEqual(sent(a), [{ type: 'puback', packetId: 3 }]);
    assert.equal(ofType(a, 'message')[0]?.message.ackToken, undefined);
  });
});
