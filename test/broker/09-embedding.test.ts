import { test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { createBroker, type ClientInfo, type BrokerMessage as Message } from '../../src/index.js';

test('createBroker: listen() on an ephemeral port, typed events for connect, subscribe, publish, disconnect', async () => {
  const broker = createBroker({ listeners: [{ port: 0, host: '127.0.0.1' }], sysInterval: 0 });
  const events: string[] = [];
  broker.on('connect', (c: ClientInfo) => events.push(`connect ${c.id}`));
  broker.on('subscribe', (subs, c) => events.push(`subscribe ${c.id} ${subs.map((s) => s.topic).join(',')}`));
  broker.on('publish', (m: Message, c) => events.push(`publish ${c?.id} ${m.topic} ${m.payload.toString()}`));
  broker.on('disconnect', (c) => events.push(`disconnect ${c.id}`));
  const [addr] = await broker.listen();
  try {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${addr!.port}`, { clientId: 'emb', reconnectPeriod: 0 });
    await client.subscribeAsync('emb/t', { qos: 1 });
    const got = new Promise<string>((resolve) => client.on('message', (_t, p) => resolve(p.toString())));
    await client.publishAsync('emb/t', 'hello', { qos: 1 });
    assert.equal(await got, 'hello');
    await client.endAsync();
    const deadline = Math.round(performance.now()) + 2000;
    while (!events.includes('disconnect emb') && Math.round(performance.now()) < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(events, ['connect emb', 'subscribe emb emb/t', 'publish emb emb/t hello', 'disconnect emb']);
  } finally {
    await broker.close();
  }
});

test('close() disconnects clients and frees the port', async () => {
  const broker = createBroker({ listeners: [{ port: 0, host: '127.0.0.1' }], sysInterval: 0 });
  const [addr] = await broker.listen();
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${addr!.port}`, { clientId: 'closing', reconnectPeriod: 0 });
  const closed = new Promise<void>((resolve) => client.on('close', () => resolve()));
  await broker.close();
  await closed;
  const again = createBroker({ listeners: [{ port: addr!.port, host: '127.0.0.1' }], sysInterval: 0 });
  await again.listen();
  await again.close();
  client.end(true);
});
