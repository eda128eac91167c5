import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connected, startTestBroker, subscribed, RawClient } from './_harness.js';

// Bad bytes from the network: each closes only the offending connection; a bystander keeps
// receiving, and nothing it was sent is lost.
const tb = startTestBroker({ maxPacketSize: 1024 * 1024 });
after(() => tb.broker.close());

async function bystanderStillServed(tag: string): Promise<void> {
  const sub = await connected(tb, { clientId: `by-${tag}` });
  await subscribed(sub, `by/${tag}`, 1);
  const pub = await connected(tb, { clientId: `byp-${tag}` });
  pub.send({ type: 'publish', topic: `by/${tag}`, payload: Buffer.from('ok'), qos: 1, retain: false, dup: false, packetId: 1 });
  await pub.next('puback');
  assert.equal((await sub.next('publish')).payload.toString(), 'ok');
  sub.end(); pub.end();
}

const cases: Array<[string, number[]]> = [
  ['reserved packet type 0', [0x00, 0x00]],
  ['a remaining length of five bytes', [0x10, 0xff, 0xff, 0xff, 0xff, 0x7f]],
  ['CONNECT with reserved flag bit set', [0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x03, 0x00, 0x3c, 0x00, 0x01, 0x61]],
  ['CONNECT with fixed-header flags set', [0x11, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, 0x61]],
  ['CONNECT whose client id length runs past the packet', [0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x09, 0x61]],
  ['CONNECT with an invalid UTF-8 client id', [0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, 0xff]],
  ['CONNECT with U+0000 in the client id', [0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, 0x00]],
  ['a header claiming a 100 MB PUBLISH as the first packet', [0x30, 0x80, 0x80, 0x80, 0x30]],
];

for (const [name, bytes] of cases) {
  test(`${name} closes that connection and the broker keeps serving others`, async () => {
    const c = RawClient.connectTo(tb);
    c.sendRaw(bytes);
    await c.closedByBroker();
    await bystanderStillServed(name.replace(/\W+/g, '-'));
  });
}

const afterConnect: Array<[string, number[]]> = [
  ['PUBLISH with QoS 3', [0x36, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01]],
  ['SUBSCRIBE with wrong fixed-header flags', [0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x00]],
  ['SUBSCRIBE with no topic filter', [0x82, 0x02, 0x00, 0x01]],
  ['SUBSCRIBE requesting QoS 3', [0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x03]],
  ['UNSUBSCRIBE with no topic filter', [0xa2, 0x02, 0x00, 0x01]],
  ['PUBACK with a three-byte body (3.1.1)', [0x40, 0x03, 0x00, 0x01, 0x00]],
  ['PINGREQ with a body', [0xc0, 0x01, 0x00]],
  ['a CONNACK sent by a client', [0x20, 0x02, 0x00, 0x00]],
  ['a SUBACK sent by a client', [0x90, 0x03, 0x00, 0x01, 0x00]],
  ['PUBLISH QoS 1 with packet id 0', [0x32, 0x05, 0x00, 0x01, 0x61, 0x00, 0x00]],
  ['a header claiming a 100 MB PUBLISH over max_packet_size', [0x30, 0x80, 0x80, 0x80, 0x30]],
];

for (const [name, bytes] of afterConnect) {
  test(`after CONNECT, ${name} closes the connection (will sent) and nothing is lost for others`, async () => {
    const w = await connected(tb, { clientId: `w-${name}` });
    await subscribed(w, 'mal/will', 0);
    const c = await connected(tb, { clientId: `bad-${name}`, will: { topic: 'mal/will', payload: Buffer.from('bye'), qos: 0, retain: false } });
    c.sendRaw(bytes);
    await c.closedByBroker();
    assert.equal((await w.next('publish')).payload.toString(), 'bye');
    w.end();
    await bystanderStillServed(`after-${name.replace(/\W+/g, '-')}`);
  });
}

test('a CONNECT split into single bytes is parsed like a whole one', async () => {
  const c = RawClient.connectTo(tb);
  const bytes = [0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, 0x7a];
  for (const b of bytes) c.sendRaw([b]);
  assert.equal((await c.next('connack')).reasonCode, 0);
  c.end();
});

test('random garbage from 50 connections never stops the broker', async () => {
  let seed = 12345;
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
  for (let i = 0; i < 50; i++) {
    const c = RawClient.connectTo(tb);
    const n = 1 + (rnd() % 64);
    const bytes = Array.from({ length: n }, () => rnd() & 0xff);
    c.sendRaw(bytes);
    c.destroy();
  }
  await bystanderStillServed('garbage');
});
