/**
 * client.messages(filter): the iterator owns its subscription (subscribe on the first pull, unsubscribe on
 * break), against an in-process Midge broker on an ephemeral 127.0.0.1 port whose sessions we can look at.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createBroker, type Broker } from '../../src/broker/broker.js';
import { connect, InvalidArgumentError, SubscribeError, type MqttClient } from '../../src/client/index.js';

let broker: Broker;
let url = '';
const clients: MqttClient[] = [];

before(async () => {
  broker = createBroker({
    listeners: [{ port: 0, host: '127.0.0.1' }], sysInterval: 0,
    hooks: { authorizeSubscribe: (_c, filter) => !filter.startsWith('forbidden/') },
  });
  const [addr] = await broker.listen();
  url = `mqtt://127.0.0.1:${addr!.port}`;
});
after(async () => {
  await Promise.all(clients.map((c) => c.end({ force: true })));
  await broker.close();
});

async function client(clientId: string): Promise<MqttClient> {
  const c = await connect(url, { clientId, reconnect: false });
  clients.push(c);
  return c;
}

/** the filters the broker holds for a client */
const filters = (id: string): string[] => [...(broker.sessions.get(id)?.subscriptions.keys() ?? [])].sort();

async function until(what: string, cond: () => boolean, ms = 2000): Promise<void> {
  const deadline = Math.round(performance.now()) + ms;
  while (!cond()) {
    if (Math.round(performance.now()) > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('messages(filter) without subscribe(): the first pull subscribes, break unsubscribes', async () => {
  const sub = await client('it-own');
  const pub = await client('it-own-pub');
  const it = sub.messages('own/+', { qos: 1 });
  assert.deepEqual(filters('it-own'), [], 'nothing is subscribed before the first pull');
  const got: string[] = [];
  const loop = (async () => {
    for await (const m of it) {
      got.push(`${m.topic} ${m.payload.toString()} q${m.qos}`);
      if (got.length === 2) break;
    }
  })();
  await until('the iterator to subscribe', () => filters('it-own').includes('own/+'));
  await pub.publish('own/a', '1', { qos: 1 });
  await pub.publish('other/a', 'not matched', { qos: 1 });
  await pub.publish('own/b', '2', { qos: 1 });
  await loop;
  assert.deepEqual(got, ['own/a 1 q1', 'own/b 2 q1'], 'subscribed with the QoS asked for');
  await until('the iterator to unsubscribe', () => filters('it-own').length === 0);
});

test('a filter subscribed with subscribe() stays subscribed when its iterator stops (backward compatible)', async () => {
  const sub = await client('it-explicit');
  const pub = await client('it-explicit-pub');
  await sub.subscribe('mine/t', { qos: 1 });
  const sent: string[] = [];
  sub.on('packetsend', (p) => sent.push(p.type));
  const loop = (async () => { for await (const m of sub.messages('mine/t')) return m.payload.toString(); return undefined; })();
  await pub.publish('mine/t', 'x', { qos: 1 });
  assert.equal(await loop, 'x');
  await pub.publish('mine/t', 'still here', { qos: 1 });
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(filters('it-explicit'), ['mine/t']);
  assert.deepEqual(sent.filter((t) => t === 'subscribe' || t === 'unsubscribe'), [], 'no SUBSCRIBE or UNSUBSCRIBE of its own');
});

test('iterators on one filter share one subscription; the last to stop unsubscribes', async () => {
  const sub = await client('it-shared');
  const sent: string[] = [];
  sub.on('packetsend', (p) => sent.push(p.type));
  const a = sub.messages('shared/t');
  const b = sub.messages('shared/t');
  const na = a.next();
  const nb = b.next();
  await until('the subscription', () => filters('it-shared').includes('shared/t'));
  await a.return!();
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(filters('it-shared'), ['shared/t'], 'b still iterates');
  await b.return!();
  await until('the unsubscription', () => filters('it-shared').length === 0);
  assert.deepEqual(sent.filter((t) => t === 'subscribe' || t === 'unsubscribe'), ['subscribe', 'unsubscribe']);
  assert.deepEqual(await na, { value: undefined, done: true });
  assert.deepEqual(await nb, { value: undefined, done: true });
});

test('a refused subscription rejects the first next() with SubscribeError; subscribe: false subscribes nothing', async () => {
  const sub = await client('it-refused');
  const it = sub.messages('forbidden/t', { qos: 1 });
  await assert.rejects(it.next(), (e: unknown) => e instanceof SubscribeError && e.reasonCodes[0] === 0x80);
  const passive = sub.messages('passive/t', { subscribe: false });
  const n = passive.next();
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(filters('it-refused'), []);
  await passive.return!();
  assert.deepEqual(await n, { value: undefined, done: true });
  // bad filters tried: a '#' not at the end, a '+' inside a level
  assert.throws(() => sub.messages('a/#/b'), InvalidArgumentError);
  assert.throws(() => sub.messages('a/b+'), InvalidArgumentError);
});
