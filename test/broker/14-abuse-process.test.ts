/**
 * Bad input over a raw TCP socket against a broker process on an ephemeral loopback port.
 * For each case: the offending connection is closed, a bystander publisher/subscriber pair keeps
 * working, and every QoS 1 message the bystander publishes around the attack arrives (none lost).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startBroker, stopAllBrokers, type BrokerProcess } from '../helpers/broker-process.js';
import { connect, closeAllClients, collect } from '../helpers/mqttjs.js';
import type { MqttClient } from 'mqtt';

let broker: BrokerProcess;
let sub: MqttClient;
let pub: MqttClient;
let seq = 0;

before(async () => {
  broker = await startBroker({ config: 'max_packet_size 65536\n' });
  sub = await connect(broker.port, { clientId: 'bystander-sub', clean: false });
  await sub.subscribeAsync('bystander/#', { qos: 1 });
  pub = await connect(broker.port, { clientId: 'bystander-pub' });
});
after(async () => { await closeAllClients(); await stopAllBrokers(); });

const CONNECT = [0x10, 0x0e, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x02, 0x72, 0x77];

/** Open a raw socket, optionally CONNECT first, send the bytes (then optionally half-close); resolve when the broker closes it. */
function attack(bytes: number[], { connectFirst = true, endAfter = false } = {}): Promise<{ closedByBroker: boolean; received: Buffer }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(broker.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => { s.destroy(); resolve({ closedByBroker: false, received: Buffer.concat(chunks) }); }, 3000);
    s.on('data', (d) => chunks.push(d));
    s.on('error', () => {});
    s.on('close', () => { clearTimeout(timer); resolve({ closedByBroker: true, received: Buffer.concat(chunks) }); });
    s.on('connect', () => {
      if (connectFirst) s.write(Buffer.from(CONNECT));
      setTimeout(() => {
        s.write(Buffer.from(bytes));
        if (endAfter) s.end();
      }, connectFirst ? 50 : 0);
    });
    s.on('timeout', () => reject(new Error('timeout')));
  });
}

async function bystanderRoundTrip(during: () => Promise<unknown>): Promise<void> {
  const tags = [`m${++seq}`, `m${++seq}`, `m${++seq}`];
  const got = collect(sub, 3, 5000);
  await pub.publishAsync('bystander/t', tags[0]!, { qos: 1 });
  const attacked = during();
  await pub.publishAsync('bystander/t', tags[1]!, { qos: 1 });
  await attacked;
  await pub.publishAsync('bystander/t', tags[2]!, { qos: 1 });
  assert.deepEqual((await got).map((m) => m.payload), tags, 'the bystander lost nothing');
}

const utf8Topic = (topicBytes: number[]) => [0x30, 2 + topicBytes.length + 1, 0x00, topicBytes.length, ...topicBytes, 0x78];

const cases: Array<[string, number[], { connectFirst?: boolean; endAfter?: boolean }]> = [
  ['garbage bytes instead of CONNECT', [0xde, 0xad, 0xbe, 0xef, 0x00, 0xff, 0x13, 0x37], { connectFirst: false }],
  ['a remaining length over max_packet_size (1 MB claimed)', [0x30, 0x80, 0x80, 0x40], {}],
  ['a 5-byte remaining length', [0x30, 0xff, 0xff, 0xff, 0xff, 0x01], {}],
  ['a truncated PUBLISH, then close', [0x32, 0x20, 0x00, 0x09, 0x62, 0x79], { endAfter: true }],
  ['a PUBLISH topic that is not valid UTF-8', utf8Topic([0x61, 0xc3, 0x28]), {}],
  ['a PUBLISH topic with U+0000', utf8Topic([0x61, 0x00, 0x62]), {}],
  ['a PUBLISH topic with an encoded surrogate (U+D800)', utf8Topic([0xed, 0xa0, 0x80]), {}],
  ['a SUBSCRIBE filter that is not valid UTF-8', [0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0xff, 0x00], {}],
  ['SUBSCRIBE with reserved fixed-header flags 0000', [0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x00], {}],
  ['PUBREL with reserved flags 0000', [0x60, 0x02, 0x00, 0x01], {}],
  ['a PUBLISH with QoS 3', [0x36, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01], {}],
  ['a QoS 1 PUBLISH with packet id 0', [0x32, 0x05, 0x00, 0x01, 0x61, 0x00, 0x00], {}],
  ['a PUBLISH to a topic with a wildcard', [0x30, 0x04, 0x00, 0x01, 0x23, 0x78], {}],
  ['a second CONNECT', CONNECT, {}],
];

for (const [name, bytes, opts] of cases) {
  test(`${name}: that connection is closed, the broker serves everyone else and loses nothing`, async () => {
    await bystanderRoundTrip(async () => {
      const r = await attack(bytes, opts);
      assert.equal(r.closedByBroker, true, 'the broker closed the offending connection');
    });
  });
}

test('the broker process is still running and logged the bad connections without a stack trace', () => {
  const logs = broker.logs();
  assert.doesNotMatch(logs, /Internal error|TypeError|RangeError|at .*\.js:\d+/);
  assert.match(logs, /disconnected due to (malformed packet|protocol error|packet too large)/);
});
