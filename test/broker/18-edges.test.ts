import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encode } from '../../src/codec/index.js';
import type { ConnectPacket, ProtocolVersion } from '../../src/codec/types.js';
import { RawClient, connected, duplexPair, sleep, startTestBroker, subscribed } from './_harness.js';
import { FakeClock } from '../helpers/fake-clock.js';
import type { AuthResult } from '../../src/broker/types.js';

// Issue 15 "Rough edges": the broker-protocol and embedding-API parts.

function connectBytes(version: ProtocolVersion, clientId: string): Buffer {
  return encode({
    type: 'connect', protocolName: 'MQTT', protocolVersion: version, clean: true, keepalive: 60, clientId,
  } as ConnectPacket, version);
}

// ---- 1. CONNECT and a malformed packet in one read ----
// Checked against mosquitto 2.0.11 on 127.0.0.1: CONNECT (3.1.1) + 00 00 in one write gets back
// 20 02 00 00 (CONNACK 0) and then the close; a v5 CONNECT + 00 00 gets its CONNACK then DISCONNECT 0x82.
// The same for a PUBLISH with an empty topic (30 02 00 00) and a SUBSCRIBE without payload (82 02 00 01).
const garbage: Array<[string, number[]]> = [
  ['reserved packet type 0', [0x00, 0x00]],
  ['PUBLISH with an empty topic', [0x30, 0x02, 0x00, 0x00]],
  ['SUBSCRIBE without a payload', [0x82, 0x02, 0x00, 0x01]],
  ['a second CONNECT', [...connectBytes(4, 'again')]],
];
for (const [name, bad] of garbage) {
  test(`CONNECT + ${name} in one read: the CONNACK the CONNECT earned, then the close (3.1.1)`, async () => {
    const tb = startTestBroker();
    try {
      const c = RawClient.connectTo(tb);
      c.sendRaw(Buffer.concat([connectBytes(4, 'same-read'), Buffer.from(bad)]));
      const ack = await c.next('connack');
      assert.equal(ack.reasonCode, 0);
      await c.closedByBroker();
      assert.equal(c.packets.length, 0, 'nothing after the CONNACK');
    } finally {
      await tb.broker.close();
    }
  });
}

test('v5 CONNECT + reserved type 0 in one read: CONNACK 0 then DISCONNECT with an error reason code', async () => {
  const tb = startTestBroker();
  try {
    const c = RawClient.connectTo(tb, 5);
    c.sendRaw(Buffer.concat([connectBytes(5, 'same-read-5'), Buffer.from([0x00, 0x00])]));
    assert.equal((await c.next('connack')).reasonCode, 0);
    const d = await c.next('disconnect');
    assert.ok((d.reasonCode ?? 0) >= 0x80, `reason code ${d.reasonCode}`);
    await c.closedByBroker();
  } finally {
    await tb.broker.close();
  }
});

test('a slow async authenticate hook: the packets before the bad one are handled after it, in order', async () => {
  const tb = startTestBroker({ hooks: { authenticate: () => sleep(100).then(() => true) } });
  try {
    const sub = await connected(tb, { clientId: 'watcher' });
    await subscribed(sub, 'order/t', 0);
    const c = RawClient.connectTo(tb);
    const pub = encode({ type: 'publish', topic: 'order/t', payload: Buffer.from('before'), qos: 0, retain: false, dup: false }, 4);
    c.sendRaw(Buffer.concat([connectBytes(4, 'slow-auth'), pub, Buffer.from([0x00, 0x00])]));
    assert.equal((await c.next('connack', 2000)).reasonCode, 0);
    await c.closedByBroker();
    assert.equal((await sub.next('publish')).payload.toString(), 'before', 'the PUBLISH before the bad packet was routed');
    // after the close nothing else is read: a chunk that came later is not parsed
    sub.end();
  } finally {
    await tb.broker.close();
  }
});

test('a refused CONNECT followed by garbage in one read: only the refusing CONNACK', async () => {
  const tb = startTestBroker({ hooks: { authenticate: async () => ({ ok: false, returnCode: 4 }) } });
  try {
    const c = RawClient.connectTo(tb);
    c.sendRaw(Buffer.concat([connectBytes(4, 'refused'), Buffer.from([0x00, 0x00])]));
    assert.equal((await c.next('connack')).reasonCode, 4);
    await c.closedByBroker();
    assert.equal(c.packets.length, 0);
  } finally {
    await tb.broker.close();
  }
});

// ---- 5. the embedding life cycle: start() / close(), handle() without listen() ----

test('handle() without listen(): $SYS and the sweep run (the first handle() starts the broker)', async () => {
  const clock = new FakeClock();
  const tb = startTestBroker({ clock, sysInterval: 10 });
  assert.equal(clock.pending, 0, 'a broker that was only created has no timers');
  assert.equal(tb.broker.running, false);
  try {
    const c = await connected(tb, { clientId: 'sys-reader', keepalive: 2 });
    assert.equal(tb.broker.running, true);
    assert.deepEqual(await subscribed(c, '$SYS/broker/version', 0), [0]);
    const m = await c.next('publish');
    assert.equal(m.topic, '$SYS/broker/version', 'the retained $SYS value was published without listen()');
    // the sweep runs too: a keepalive of 2 s is over after 3 s without a packet
    clock.advance(3500);
    await c.closedByBroker();
  } finally {
    await tb.broker.close();
  }
  assert.equal(clock.pending, 0, 'close() stopped every timer');
});

test('start() is idempotent, listen() uses it, close() stops everything and is final', async () => {
  const clock = new FakeClock();
  const tb = startTestBroker({ clock, sysInterval: 10, memoryLimit: 1 << 30, listeners: [{ port: 0, host: '127.0.0.1' }] });
  const b = tb.broker;
  b.start();
  const timers = clock.pending;
  assert.equal(timers, 3, 'sweep, memory sampler, $SYS');
  b.start();
  await b.listen();
  assert.equal(clock.pending, timers, 'a second start() and listen() add no timers');
  await b.close();
  assert.equal(clock.pending, 0);
  b.start();
  assert.equal(clock.pending, 0, 'a closed broker does not start again');
  assert.equal(b.running, false);
  await assert.rejects(b.listen(), /closed/);
});

// ---- 7. broker.publish() takes a plain message ----

test('broker.publish({ topic, payload, qos, retain, properties }): string, Uint8Array and Buffer payloads, retained, v5 properties', async () => {
  const tb = startTestBroker();
  try {
    const c = await connected(tb, { clientId: 'plain', properties: {} } as never, 5);
    await subscribed(c, 'plain/#', 1);
    assert.equal(tb.broker.publish({ topic: 'plain/s', payload: 'text' }), true);
    const s = await c.next('publish');
    assert.equal(s.payload.toString(), 'text');
    assert.equal(s.qos, 0);
    const u8 = new Uint8Array([9, 1, 2, 3]).subarray(1);
    tb.broker.publish({ topic: 'plain/u8', payload: u8, qos: 1, properties: { contentType: 'x/y', userProperties: [['k', 'v']], topicAlias: 3 } });
    const u = await c.next('publish');
    assert.deepEqual([...u.payload], [1, 2, 3]);
    assert.equal(u.qos, 1);
    assert.equal(u.properties?.contentType, 'x/y');
    assert.deepEqual(u.properties?.userProperties, [['k', 'v']]);
    assert.equal(u.properties?.topicAlias, undefined, 'our topic alias is not passed on');
    c.send({ type: 'puback', packetId: u.packetId! });
    assert.equal(tb.broker.publish({ topic: 'nobody/here', payload: Buffer.from('r'), retain: true }), false);
    const late = await connected(tb, { clientId: 'late' });
    await subscribed(late, 'nobody/here', 0);
    const r = await late.next('publish');
    assert.equal(r.retain, true);
    assert.equal(r.payload.toString(), 'r');
  } finally {
    await tb.broker.close();
  }
});

test('broker.publish: a bad topic, QoS or payload throws a clear TypeError', () => {
  const tb = startTestBroker();
  try {
    // bad inputs tried: wildcards, an empty topic, a non-string topic, QoS 3, a number payload
    for (const topic of ['a/+', 'a/#', '', '#']) {
      assert.throws(() => tb.broker.publish({ topic, payload: 'x' }), (e: unknown) => e instanceof TypeError && /invalid topic name/.test(e.message), topic);
    }
    assert.throws(() => tb.broker.publish({ topic: 42, payload: 'x' } as never), /invalid topic name 42/);
    assert.throws(() => tb.broker.publish({ topic: 't', payload: 'x', qos: 3 as never }), /invalid QoS 3/);
    assert.throws(() => tb.broker.publish({ topic: 't', payload: 5 as never }), /payload must be/);
  } finally {
    void tb.broker.close();
  }
});

// ---- 6. the authenticate hook answers with an MQTT 5 reason code and reason string ----

// [hook answer, 3.1.1 return code, 5.0 reason code]
const refusals: Array<[AuthResult, number, number]> = [
  [{ ok: false, reasonCode: 0x86 }, 4, 0x86],
  [{ ok: false, reasonCode: 0x87 }, 5, 0x87],
  [{ ok: false, reasonCode: 0x8c }, 5, 0x8c],
  [{ ok: false, reasonCode: 0x88 }, 3, 0x88],
  [{ ok: false, reasonCode: 0x89 }, 3, 0x89],
  [{ ok: false, reasonCode: 0x85 }, 2, 0x85],
  [{ ok: false, reasonCode: 0x8a }, 5, 0x8a],
  [{ ok: false, reasonCode: 0x9f }, 3, 0x9f],
  // the 3.1.1 return code keeps working, mapped for 5.0
  [{ ok: false, returnCode: 4 }, 4, 0x86],
  [{ ok: false, returnCode: 3 }, 3, 0x88],
  [{ ok: false }, 5, 0x87],
  // reasonCode wins over returnCode
  [{ ok: false, returnCode: 4, reasonCode: 0x89 }, 3, 0x89],
  // bad answers tried: a success code, a non-CONNACK code, a 3.1.1 code out of range (0 would have accepted!)
  [{ ok: false, reasonCode: 0 }, 5, 0x87],
  [{ ok: false, reasonCode: 0x10 }, 5, 0x87],
  [{ ok: false, returnCode: 0 }, 5, 0x87],
  [{ ok: false, returnCode: 7 }, 5, 0x87],
];
for (const [answer, code3, code5] of refusals) {
  test(`authenticate answers ${JSON.stringify(answer)}: CONNACK ${code3} (3.1.1), 0x${code5.toString(16)} (5.0)`, async () => {
    const tb = startTestBroker({ hooks: { authenticate: async () => ({ ...answer, reasonString: 'go away' }) } });
    try {
      const c4 = RawClient.connectTo(tb, 4);
      assert.equal((await c4.connect({ clientId: 'r4' })).reasonCode, code3);
      await c4.closedByBroker();
      const c5 = RawClient.connectTo(tb, 5);
      const ack = await c5.connect({ clientId: 'r5', properties: {} } as never);
      assert.equal(ack.reasonCode, code5);
      assert.equal(ack.properties?.reasonString, 'go away');
      await c5.closedByBroker();
      const bad = (answer.reasonCode !== undefined && code5 !== answer.reasonCode) || (answer.reasonCode === undefined && answer.returnCode !== undefined && code3 !== answer.returnCode);
      assert.equal(tb.logs.some((l) => /the authenticate hook answered/.test(l)), bad, 'a code that is not a refusal is logged');
    } finally {
      await tb.broker.close();
    }
  });
}

// ---- 8. preConnect, authorizeForward, clientError ----

test('preConnect (sync): a refused address is closed before its CONNECT is read, silently; others are served', async () => {
  const seen: string[] = [];
  // bad answers tried: false, and undefined (a hook that forgot to return) refuses too
  const tb = startTestBroker({
    hooks: {
      preConnect: (info) => {
        seen.push(`${info.remoteAddress}:${info.listenerPort}`);
        return info.remoteAddress === '10.9.9.8' ? undefined as unknown as boolean : info.remoteAddress !== '10.9.9.9';
      },
    },
  });
  try {
    const [client, server] = duplexPair();
    tb.broker.handle(server, { remoteAddress: '10.9.9.9', remotePort: 4000, listenerPort: 1883 });
    const refused = new RawClient(client);
    refused.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId: 'nope' } as ConnectPacket);
    await refused.closedByBroker();
    assert.equal(refused.packets.length, 0, 'no CONNACK');
    assert.equal(tb.broker.connections.size, 0);
    assert.ok(tb.logs.some((l) => /Client connection from 10\.9\.9\.9:4000 denied: the preConnect hook refused it\./.test(l)));
    const [client2, server2] = duplexPair();
    tb.broker.handle(server2, { remoteAddress: '10.9.9.8', remotePort: 4001 });
    const forgot = new RawClient(client2);
    await forgot.closedByBroker();
    await connected(tb, { clientId: 'welcome' });
    assert.deepEqual(seen.slice(0, 1), ['10.9.9.9:1883']);
    assert.equal(seen.length, 3);
  } finally {
    await tb.broker.close();
  }
});

test('preConnect (async): the CONNECT waits for it; false or a rejection closes the socket without CONNACK', async () => {
  let answer: (addr: string) => Promise<boolean> = async () => true;
  const tb = startTestBroker({ hooks: { preConnect: (info) => answer(info.remoteAddress) } });
  try {
    answer = () => sleep(80).then(() => true);
    const t0 = Math.round(performance.now());
    const ok = RawClient.connectTo(tb);
    assert.equal((await ok.connect({ clientId: 'waited' })).reasonCode, 0);
    assert.ok(Math.round(performance.now()) - t0 >= 70, 'the CONNACK came after the hook settled');
    answer = () => sleep(30).then(() => false);
    const no = RawClient.connectTo(tb);
    await assert.rejects(no.connect({ clientId: 'async-no' }), /closed/);
    answer = () => Promise.reject(new Error('geoip down'));
    const broken = RawClient.connectTo(tb);
    await assert.rejects(broken.connect({ clientId: 'async-throw' }), /closed/);
    assert.ok(tb.logs.some((l) => /the preConnect hook failed: geoip down/.test(l)));
    assert.ok(!tb.logs.some((l) => /async-no|async-throw/.test(l)), 'their CONNECTs were never handled');
  } finally {
    await tb.broker.close();
  }
});

test('authorizeForward: per subscriber, a changed message, null to skip, unchanged; live and retained; a throw skips', async () => {
  const tb = startTestBroker({
    hooks: {
      authorizeForward: (session, message) => {
        if (session.clientId === 'masked') return { ...message, payload: `masked:${message.payload.toString()}` };
        if (session.clientId === 'skipped') return null;
        if (session.clientId === 'broken') throw new Error('boom');
        return message;
      },
    },
  });
  try {
    const subs = await Promise.all(['plain', 'masked', 'skipped', 'broken', 'plain2'].map((id) => connected(tb, { clientId: id })));
    for (const c of subs) await subscribed(c, 'fw/t', 0);
    const pub = await connected(tb, { clientId: 'fw-pub' });
    pub.send({ type: 'publish', topic: 'fw/t', payload: Buffer.from('secret'), qos: 0, retain: true, dup: false });
    const [plain, masked, skipped, broken, plain2] = subs as [RawClient, RawClient, RawClient, RawClient, RawClient];
    assert.equal((await plain.next('publish')).payload.toString(), 'secret');
    assert.equal((await plain2.next('publish')).payload.toString(), 'secret');
    assert.equal((await masked.next('publish')).payload.toString(), 'masked:secret', 'not the original\'s cached encoding');
    await skipped.nothing(100);
    await broken.nothing(1);
    assert.ok(tb.logs.some((l) => /authorizeForward failed for broken on 'fw\/t': boom/.test(l)));
    // the retained copy goes through it too
    const late = await connected(tb, { clientId: 'masked', clean: true });
    await subscribed(late, 'fw/#', 0);
    const r = await late.next('publish');
    assert.equal(r.payload.toString(), 'masked:secret');
    assert.equal(r.retain, true);
  } finally {
    await tb.broker.close();
  }
});

test("clientError: a connection that fails with an error is reported with the client and the error", async () => {
  const tb = startTestBroker();
  const errors: Array<[string, string]> = [];
  tb.broker.on('clientError', (client, err) => errors.push([client.id, err.constructor.name]));
  try {
    const c = await connected(tb, { clientId: 'faulty' });
    c.sendRaw([0x00, 0x00]); // reserved type 0
    await c.closedByBroker();
    const fine = await connected(tb, { clientId: 'fine' });
    fine.send({ type: 'disconnect' });
    await fine.closedByBroker();
    assert.deepEqual(errors, [['faulty', 'MalformedPacketError']], 'a normal DISCONNECT is no error');
  } finally {
    await tb.broker.close();
  }
});
