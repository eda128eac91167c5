import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { RawClient, connected, startTestBroker, sleep } from './_harness.js';

const tb = startTestBroker();
after(() => tb.broker.close());

test('a CONNECT is answered with CONNACK 0 and no session present', async () => {
  const c = RawClient.connectTo(tb);
  const ack = await c.connect({ clientId: 'c01' });
  assert.equal(ack.reasonCode, 0);
  assert.equal(ack.sessionPresent, false);
  c.end();
});

test('a zero-length client id with clean session gets an assigned id [MQTT-3.1.3-6]', async () => {
  const c = RawClient.connectTo(tb);
  const ack = await c.connect({ clientId: '', clean: true });
  assert.equal(ack.reasonCode, 0);
  assert.ok([...tb.broker.sessions.keys()].some((id) => id.startsWith('auto-')));
  c.end();
});

test('a zero-length client id without clean session is refused with CONNACK 2 [MQTT-3.1.3-8]', async () => {
  const c = RawClient.connectTo(tb);
  const ack = await c.connect({ clientId: '', clean: false });
  assert.equal(ack.reasonCode, 2);
  await c.closedByBroker();
});

test('a 3.1 client (MQIsdp) connects and a zero-length id is refused for it', async () => {
  const ok = RawClient.connectTo(tb, 3);
  assert.equal((await ok.connect({ clientId: 'old31' })).reasonCode, 0);
  ok.end();
  const bad = RawClient.connectTo(tb, 3);
  assert.equal((await bad.connect({ clientId: '' })).reasonCode, 2);
});

test('an unsupported protocol level gets CONNACK 1 and the connection closes [MQTT-3.1.2-2]', async () => {
  const c = RawClient.connectTo(tb);
  // CONNECT with protocol name MQTT and level 9
  c.sendRaw([0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x09, 0x02, 0x00, 0x3c, 0x00, 0x01, 0x61]);
  const ack = await c.next('connack');
  assert.equal(ack.reasonCode, 1);
  await c.closedByBroker();
});

test('a first packet that is not CONNECT closes the connection without an answer [MQTT-3.1.0-1]', async () => {
  const c = RawClient.connectTo(tb);
  c.send({ type: 'pingreq' });
  await c.closedByBroker();
  assert.equal(c.packets.length, 0);
});

test('a second CONNECT closes the connection [MQTT-3.1.0-2]', async () => {
  const c = await connected(tb, { clientId: 'twice' });
  c.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId: 'twice' });
  await c.closedByBroker();
});

test('a client connecting with an id in use takes over: the old connection is closed [MQTT-3.1.4-2]', async () => {
  const first = await connected(tb, { clientId: 'dup-id' });
  const second = await connected(tb, { clientId: 'dup-id' });
  await first.closedByBroker();
  second.send({ type: 'pingreq' });
  await second.next('pingresp');
  assert.ok(tb.logs.some((l) => l.includes('Client dup-id already connected, closing old connection.')));
  second.end();
});

test('anonymous clients are refused with CONNACK 5 when allow_anonymous is false', async () => {
  const strict = startTestBroker({ allowAnonymous: false });
  try {
    const c = RawClient.connectTo(strict);
    assert.equal((await c.connect({ clientId: 'anon' })).reasonCode, 5);
    await c.closedByBroker();
  } finally { await strict.broker.close(); }
});

test('the authenticate hook decides, and a refused client never gets a session', async () => {
  const hooked = startTestBroker({
    hooks: { authenticate: async (_c, u, p) => u === 'mqtt' && p?.toString() === 'test' },
  });
  try {
    const bad = RawClient.connectTo(hooked);
    assert.equal((await bad.connect({ clientId: 'x1', username: 'mqtt', password: Buffer.from('nope') })).reasonCode, 5);
    const good = RawClient.connectTo(hooked);
    assert.equal((await good.connect({ clientId: 'x2', username: 'mqtt', password: Buffer.from('test') })).reasonCode, 0);
    assert.equal(hooked.broker.sessions.has('x1'), false);
    assert.equal(hooked.broker.sessions.has('x2'), true);
    good.end();
  } finally { await hooked.broker.close(); }
});

test('packets sent right after CONNECT wait for the async authentication and keep their order', async () => {
  const slow = startTestBroker({ hooks: { authenticate: async () => { await sleep(50); return true; } } });
  try {
    const c = RawClient.connectTo(slow);
    c.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId: 'fast' });
    c.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'a', qos: 0 }] });
    c.send({ type: 'pingreq' });
    assert.equal((await c.next('connack')).reasonCode, 0);
    await c.next('suback');
    await c.next('pingresp');
    c.end();
  } finally { await slow.broker.close(); }
});

test('a v5 client gets an assigned client identifier in CONNACK', async () => {
  const c = RawClient.connectTo(tb, 5);
  const ack = await c.connect({ clientId: '', clean: true });
  assert.equal(ack.reasonCode, 0);
  assert.match(ack.properties?.assignedClientIdentifier ?? '', /^auto-/);
  c.end();
});

test('New client connected is logged with address, id, protocol, clean flag and keepalive', async () => {
  const c = await connected(tb, { clientId: 'logme', keepalive: 30 });
  assert.ok(tb.logs.some((l) => /New client connected from 127\.0\.0\.1:\d+ as logme \(p2, c1, k30\)\./.test(l)));
  c.end();
});
