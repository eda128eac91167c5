/**
 * Each acknowledgement is a commit point: the broker is SIGKILLed the moment CONNACK, SUBACK, UNSUBACK
 * or a retained PUBACK arrives, and after the restart the change it acknowledged is there. And a queued
 * message comes back byte for byte: a 1 MiB binary payload and its v5 properties.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { stopAllBrokers } from '../helpers/broker-process.js';
import {
  closeRecordedClients,
  killHard,
  makeDataDir,
  RawClient,
  rawSubscribe,
  recorded,
  removeDataDirs,
  sleep,
  startPersistent,
  type Started,
} from './_helpers.js';
import type { PublishPacket } from '../../src/codec/index.js';

after(async () => {
  await closeRecordedClients();
  await stopAllBrokers();
  removeDataDirs();
});

const ROUNDS = 3;

test('CONNACK, SUBACK, UNSUBACK and a retained PUBACK each survive a kill -9 sent the moment they arrive', { timeout: 90_000 }, async (t) => {
  const dir = makeDataDir();
  let b: Started = await startPersistent(dir);
  const restart = async (): Promise<void> => {
    b = await startPersistent(dir);
  };
  for (let round = 0; round < ROUNDS; round++) {
    // CONNACK of a new persistent session
    const id = `ack-${round}`;
    const { client: c, connack } = await RawClient.connect(b.broker.port, { clientId: id, clean: false });
    b.broker.kill('SIGKILL');
    assert.equal(connack.sessionPresent, false);
    await killHard(b.broker);
    c.destroy();
    await restart();
    const { client: c2, connack: again } = await RawClient.connect(b.broker.port, { clientId: id, clean: false });
    assert.equal(again.sessionPresent, true, `round ${round}: the session acknowledged by CONNACK survived`);

    // SUBACK
    const granted = await rawSubscribe(c2, `ack/${round}/#`, 1, 1);
    b.broker.kill('SIGKILL');
    assert.deepEqual(granted, [1]);
    await killHard(b.broker);
    c2.destroy();
    await restart();
    const { client: c3 } = await RawClient.connect(b.broker.port, { clientId: id, clean: false });
    const pub = await recorded(b.broker.port, { clientId: `ack-pub-${round}` });
    await pub.client.publishAsync(`ack/${round}/x`, 'after SUBACK', { qos: 1 });
    const p = (await c3.next((x) => x.type === 'publish', 5000, 'a message on the subscription acknowledged by SUBACK')) as PublishPacket;
    assert.equal(p.payload.toString(), 'after SUBACK');
    c3.send({ type: 'puback', packetId: p.packetId! });

    // UNSUBACK
    c3.send({ type: 'unsubscribe', packetId: 3, topics: [`ack/${round}/#`] });
    await c3.next((x) => x.type === 'unsuback', 5000, 'UNSUBACK');
    b.broker.kill('SIGKILL');
    await killHard(b.broker);
    c3.destroy();
    await pub.client.endAsync(true);
    await restart();
    const { client: c4 } = await RawClient.connect(b.broker.port, { clientId: id, clean: false });
    const pub2 = await recorded(b.broker.port, { clientId: `ack-pub2-${round}` });
    // a retained PUBACK, then the kill at once
    await pub2.client.publishAsync(`ack/${round}/y`, 'not for the unsubscribed', { qos: 1 });
    await pub2.client.publishAsync(`ret/${round}`, `retained ${round}`, { qos: 1, retain: true });
    b.broker.kill('SIGKILL');
    await sleep(300);
    assert.deepEqual(c4.publishes().map((x) => x.topic), [], `round ${round}: the subscription removed by UNSUBACK stayed removed`);
    await killHard(b.broker);
    c4.destroy();
    await pub2.client.endAsync(true);
    await restart();
    const r = await recorded(b.broker.port, { clientId: `ack-ret-${round}` });
    await r.client.subscribeAsync(`ret/${round}`, { qos: 1 });
    await r.until('the retained message', 5_000, (g) => (g.length > 0 ? true : undefined));
    assert.deepEqual(r.got.map((g) => [g.payload, g.retain]), [[`retained ${round}`, true]]);
    await r.end();
  }
  t.diagnostic(`${ROUNDS} rounds of 4 kills each; last restart ${b.startMs} ms; ${b.restoredLine ?? ''}`);
  await b.broker.stop();
});

test('a queued 1 MiB binary payload and its v5 properties come back byte for byte after kill -9', { timeout: 60_000 }, async (t) => {
  const dir = makeDataDir();
  const first = await startPersistent(dir);
  const sub = await recorded(first.broker.port, { clientId: 'bin-sub', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 600 } });
  await sub.client.subscribeAsync('bin/#', { qos: 2, properties: { subscriptionIdentifier: 42 } });
  await sub.end();
  const payload = randomBytes(1024 * 1024);
  payload[0] = 0xff; // not UTF-8
  const props = {
    payloadFormatIndicator: 0,
    contentType: 'application/octet-stream',
    responseTopic: 'bin/reply',
    correlationData: Buffer.from([0, 1, 2, 0xfe, 0xff]),
    userProperties: [['a', '1'], ['a', '2'], ['ü', 'ß']] as Array<[string, string]>,
  };
  const { client: pub } = await RawClient.connect(first.broker.port, { clientId: 'bin-pub', clean: true, version: 5 });
  pub.send({ type: 'publish', topic: 'bin/x', payload, qos: 1, retain: false, dup: false, packetId: 1, properties: props });
  const ack = await pub.next((x) => x.type === 'puback', 10_000, 'PUBACK');
  assert.equal((ack as { reasonCode?: number }).reasonCode ?? 0, 0);
  await killHard(first.broker);
  pub.destroy();

  const second = await startPersistent(dir);
  t.diagnostic(`restart ${second.startMs} ms; ${second.restoredLine ?? ''}`);
  const { client: sub2, connack } = await RawClient.connect(second.broker.port, { clientId: 'bin-sub', clean: false, version: 5, properties: { sessionExpiryInterval: 600 } });
  assert.equal(connack.sessionPresent, true);
  const p = (await sub2.next((x) => x.type === 'publish', 10_000, 'the queued message')) as PublishPacket;
  assert.equal(p.qos, 1, 'min(QoS 1 published, QoS 2 subscribed)');
  assert.ok(p.payload.equals(payload), `the payload is the same ${payload.length} bytes (got ${p.payload.length})`);
  assert.deepEqual(
    { ...p.properties },
    { ...props, userProperties: props.userProperties, subscriptionIdentifiers: [42] },
    'the properties, in order, and the subscription identifier',
  );
  sub2.send({ type: 'puback', packetId: p.packetId! });
  await sub2.disconnect();
  await second.broker.stop();
});
