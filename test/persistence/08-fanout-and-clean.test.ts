/**
 * "Every persistent session it was routed to": several offline sessions (one with overlapping
 * filters, two in a shared group) and a kill -9 mid-stream; each session gets every acknowledged
 * message, the shared group gets each one at least once. And a session ended by a clean-session
 * CONNECT stays ended across a kill sent the moment its CONNACK arrives.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { stopAllBrokers } from '../helpers/broker-process.js';
import {
  closeRecordedClients,
  describeTally,
  killHard,
  makeDataDir,
  pump,
  RawClient,
  recorded,
  removeDataDirs,
  sleep,
  startPersistent,
  tally,
  waitForPayloads,
  type Recorded,
} from './_helpers.js';

after(async () => {
  await closeRecordedClients();
  await stopAllBrokers();
  removeDataDirs();
});

test('fan-out to 3 offline sessions and a shared group of 2: every PUBACKed message reaches each after kill -9', { timeout: 120_000 }, async (t) => {
  const dir = makeDataDir();
  const first = await startPersistent(dir);
  const subs: Array<[string, string[]]> = [
    ['fan-a', ['fan/#']],
    ['fan-b', ['fan/+/x']],
    ['fan-c', ['fan/#', 'fan/+/x', '+/1/#']], // overlapping: one delivery per message
    ['fan-g1', ['$share/g/fan/#']],
    ['fan-g2', ['$share/g/fan/#']],
  ];
  for (const [id, filters] of subs) {
    const s = await recorded(first.broker.port, { clientId: id, clean: false });
    for (const f of filters) await s.client.subscribeAsync(f, { qos: 1 });
    await s.end();
  }
  let killed = false;
  const r = await pump(first.broker.port, {
    clientId: 'fan-pub',
    qos: 1,
    count: 5_000,
    window: 100,
    topicOf: (i) => `fan/${i % 3}/x`,
    payloadOf: (i) => `p${i}`,
    onAck: (n) => {
      if (n >= 1_000 && !killed) {
        killed = true;
        first.broker.kill('SIGKILL');
      }
    },
    timeoutMs: 60_000,
  });
  await killHard(first.broker);
  assert.ok(killed && r.cutOff);
  const acked = new Set([...r.acked].map((i) => `p${i}`));

  const second = await startPersistent(dir);
  t.diagnostic(`${r.acked.size} PUBACKs; restart ${second.startMs} ms; ${second.restoredLine ?? ''}`);
  const back = new Map<string, Recorded>();
  for (const [id] of subs) back.set(id, await recorded(second.broker.port, { clientId: id, clean: false }));
  for (const id of ['fan-a', 'fan-b', 'fan-c']) {
    const s = back.get(id)!;
    const payloads = (): string[] => s.got.map((g) => g.payload);
    await waitForPayloads(payloads, acked, 30_000);
  }
  const group = (): string[] => [...back.get('fan-g1')!.got, ...back.get('fan-g2')!.got].map((g) => g.payload);
  await waitForPayloads(group, acked, 30_000);
  await sleep(500);
  for (const id of ['fan-a', 'fan-b', 'fan-c']) {
    const tl = tally(acked, back.get(id)!.got.map((g) => g.payload));
    t.diagnostic(`${id}: ${describeTally(tl)}`);
    assert.deepEqual(tl.missing, [], `${id} got every acknowledged message`);
    if (id === 'fan-c') assert.equal(tl.duplicates, 0, 'overlapping filters of one session: one delivery each');
  }
  const tg = tally(acked, group());
  t.diagnostic(`shared group: g1 ${back.get('fan-g1')!.got.length}, g2 ${back.get('fan-g2')!.got.length}; ${describeTally(tg)}`);
  assert.deepEqual(tg.missing, [], 'the shared group got every acknowledged message');
  await Promise.all([...back.values()].map((s) => s.end()));
  await second.broker.stop();
});

test('a clean-session CONNECT ends a stored session; a kill -9 at its CONNACK does not bring it back', { timeout: 60_000 }, async () => {
  const dir = makeDataDir();
  const first = await startPersistent(dir);
  const sub = await recorded(first.broker.port, { clientId: 'cs-sub', clean: false });
  await sub.client.subscribeAsync('cs/#', { qos: 1 });
  await sub.end();
  const pub = await recorded(first.broker.port, { clientId: 'cs-pub' });
  for (let i = 0; i < 20; i++) await pub.client.publishAsync('cs/t', `old${i}`, { qos: 1 });
  await pub.end();
  const { client: clean, connack } = await RawClient.connect(first.broker.port, { clientId: 'cs-sub', clean: true });
  first.broker.kill('SIGKILL');
  assert.equal(connack.sessionPresent, false);
  await killHard(first.broker);
  clean.destroy();

  const second = await startPersistent(dir);
  const sub2 = await recorded(second.broker.port, { clientId: 'cs-sub', clean: false });
  assert.equal(sub2.sessionPresent, false, 'the session ended by the clean CONNECT stayed ended');
  const pub2 = await recorded(second.broker.port, { clientId: 'cs-pub2' });
  await pub2.client.publishAsync('cs/t', 'new', { qos: 1 });
  await sleep(500);
  assert.deepEqual(sub2.got, [], 'neither its old queue nor its old subscription came back');
  await Promise.all([sub2.end(), pub2.end()]);
  await second.broker.stop();
});
