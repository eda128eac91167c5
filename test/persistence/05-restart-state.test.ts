/**
 * What a restart on the same data directory keeps: retained messages (and not those whose message
 * expiry passed while the broker was down), subscriptions (used without resubscribing), delayed wills
 * (fired after the restart when their client stays away, cancelled when it comes back), session expiry
 * counted across the downtime; and a clean SIGTERM shutdown keeps all of it too.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { stopAllBrokers } from '../helpers/broker-process.js';
import {
  closeRecordedClients,
  describePackets,
  killHard,
  makeDataDir,
  RawClient,
  recorded,
  removeDataDirs,
  sleep,
  startPersistent,
} from './_helpers.js';

after(async () => {
  await closeRecordedClients();
  await stopAllBrokers();
  removeDataDirs();
});

test('retained messages survive kill -9; one whose expiry passed while the broker was down is gone', { timeout: 60_000 }, async (t) => {
  const dir = makeDataDir();
  const first = await startPersistent(dir);
  const pub = await recorded(first.broker.port, { clientId: 'ret-pub', protocolVersion: 5 });
  await pub.client.publishAsync('ret/keep', 'kept', { qos: 1, retain: true });
  await pub.client.publishAsync('ret/short', 'short-lived', { qos: 1, retain: true, properties: { messageExpiryInterval: 2 } });
  await pub.client.publishAsync('ret/long', 'long-lived', { qos: 1, retain: true, properties: { messageExpiryInterval: 600 } });
  await pub.client.publishAsync('ret/cleared', 'soon gone', { qos: 1, retain: true });
  await pub.client.publishAsync('ret/cleared', '', { qos: 1, retain: true });
  await killHard(first.broker);
  const downAt = Math.round(performance.now());
  await sleep(2_500);

  const second = await startPersistent(dir);
  t.diagnostic(`down ${Math.round(performance.now()) - downAt} ms (incl. restart ${second.startMs} ms); ${second.restoredLine ?? 'no "Store: restored" line'}`);
  const sub = await recorded(second.broker.port, { clientId: 'ret-sub', protocolVersion: 5 });
  await sub.client.subscribeAsync('ret/#', { qos: 1 });
  await sub.until('two retained messages', 5_000, (g) => (g.length >= 2 ? true : undefined)).catch(() => undefined);
  await sleep(500);
  const got = sub.got.map((g) => `${g.topic}=${g.payload}${g.retain ? ' (retained)' : ''}`).sort();
  assert.deepEqual(got, ['ret/keep=kept (retained)', 'ret/long=long-lived (retained)']);
  const long = sub.got.find((g) => g.topic === 'ret/long');
  const left = long?.properties?.messageExpiryInterval;
  t.diagnostic(`ret/long: message expiry interval left ${String(left)} s of 600`);
  assert.ok(typeof left === 'number' && left <= 598 && left > 500, `the downtime counts against its expiry (left: ${String(left)})`);
  await sub.end();
  await second.broker.stop();
});

test('subscriptions survive kill -9: a subscriber that does not resubscribe still gets messages; an UNSUBSCRIBE stays', { timeout: 60_000 }, async () => {
  const dir = makeDataDir();
  const first = await startPersistent(dir);
  const sub = await recorded(first.broker.port, { clientId: 'subs-keep', clean: false });
  await sub.client.subscribeAsync('keep/#', { qos: 1 });
  await sub.client.subscribeAsync('drop/#', { qos: 1 });
  await sub.client.unsubscribeAsync('drop/#');
  await sub.end();
  // a v5 session with a subscription identifier and no-local, and a shared subscription
  const v5 = await recorded(first.broker.port, { clientId: 'subs-v5', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 600 } });
  await v5.client.subscribeAsync('keep/#', { qos: 1, nl: true, properties: { subscriptionIdentifier: 7 } });
  await v5.end();
  const shared = await recorded(first.broker.port, { clientId: 'subs-shared', clean: false });
  await shared.client.subscribeAsync('$share/g/keep/#', { qos: 1 });
  await shared.end();
  await killHard(first.broker);

  const second = await startPersistent(dir);
  const sub2 = await recorded(second.broker.port, { clientId: 'subs-keep', clean: false });
  assert.equal(sub2.sessionPresent, true);
  const pub = await recorded(second.broker.port, { clientId: 'subs-pub' });
  await pub.client.publishAsync('keep/1', 'one', { qos: 1 });
  await pub.client.publishAsync('drop/1', 'not for it', { qos: 1 });
  await pub.client.publishAsync('keep/2', 'two', { qos: 1 });
  await sub2.until('keep/2', 5_000, (g) => (g.some((m) => m.topic === 'keep/2') ? true : undefined));
  await sleep(200);
  assert.deepEqual(sub2.got.map((g) => `${g.topic}=${g.payload} q${g.qos}`), ['keep/1=one q1', 'keep/2=two q1']);
  const v52 = await recorded(second.broker.port, { clientId: 'subs-v5', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 600 } });
  await v52.until('two messages', 5_000, (g) => (g.length >= 2 ? true : undefined));
  assert.deepEqual(
    v52.got.map((g) => `${g.payload} ids=${JSON.stringify(g.properties?.subscriptionIdentifier)}`),
    ['one ids=7', 'two ids=7'],
    'the subscription identifier survived',
  );
  // no-local survived: its own PUBLISH does not come back
  await v52.client.publishAsync('keep/own', 'own', { qos: 1 });
  const shared2 = await recorded(second.broker.port, { clientId: 'subs-shared', clean: false });
  await shared2.until('own', 5_000, (g) => (g.some((m) => m.payload === 'own') ? true : undefined));
  await sleep(200);
  assert.deepEqual(shared2.got.map((g) => g.payload), ['one', 'two', 'own'], 'the shared subscription survived (the only member of its group)');
  assert.deepEqual(v52.got.map((g) => g.payload), ['one', 'two'], 'no-local survived');
  await Promise.all([pub.end(), sub2.end(), v52.end(), shared2.end()]);
  await second.broker.stop();
});

test('a v5 delayed will fires after a kill -9 and restart when its client stays away, and not when it comes back', { timeout: 60_000 }, async (t) => {
  const dir = makeDataDir();
  const DELAY_S = 4;
  const first = await startPersistent(dir);
  const watch = await recorded(first.broker.port, { clientId: 'will-watch', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 600 } });
  await watch.client.subscribeAsync('will/#', { qos: 1 });
  await watch.end();

  const willed = (id: string) =>
    RawClient.connect(first.broker.port, {
      clientId: id,
      clean: true,
      version: 5,
      properties: { sessionExpiryInterval: 600 },
      will: { topic: `will/${id}`, payload: Buffer.from(`${id} is gone`), qos: 1, retain: false, properties: { willDelayInterval: DELAY_S } },
    });
  const { client: away } = await willed('away');
  const { client: back } = await willed('back');
  // both vanish without DISCONNECT: their wills wait DELAY_S seconds
  const droppedAt = Math.round(performance.now());
  away.destroy();
  back.destroy();
  await sleep(500);
  await killHard(first.broker);

  const second = await startPersistent(dir);
  t.diagnostic(`restart ${second.startMs} ms, ${Math.round(performance.now()) - droppedAt} ms after the clients vanished`);
  const { client: back2, connack } = await RawClient.connect(second.broker.port, { clientId: 'back', clean: false, version: 5, properties: { sessionExpiryInterval: 600 } });
  assert.equal(connack.sessionPresent, true, 'the session of the client that comes back survived');
  const cameBackAt = Math.round(performance.now());
  const watch2 = await recorded(second.broker.port, { clientId: 'will-watch', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 600 } });
  const watchingAt = Math.round(performance.now());
  await watch2.until('the will of "away"', DELAY_S * 1000 + 10_000, (g) => g.find((m) => m.topic === 'will/away'));
  const arrived = watch2.got.find((m) => m.topic === 'will/away')!;
  t.diagnostic(`will/away arrived ${arrived.at - droppedAt} ms after its client vanished (delay ${DELAY_S} s); "back" reconnected after ${cameBackAt - droppedAt} ms`);
  if (watchingAt - droppedAt < DELAY_S * 1000 - 500) {
    assert.ok(arrived.at - droppedAt >= DELAY_S * 1000 - 300, `not before its delay (arrived after ${arrived.at - droppedAt} ms)`);
  }
  // "back" returned in time: its will must not go out, also not after its delay has passed
  const quietUntil = droppedAt + DELAY_S * 1000 + 1_500;
  await sleep(Math.max(0, quietUntil - Math.round(performance.now())));
  assert.deepEqual(watch2.got.map((m) => `${m.topic}=${m.payload}`), ['will/away=away is gone'], `only the will of the client that stayed away (back: ${describePackets(back2.packets)})`);
  await back2.disconnect();
  await watch2.end();
  await second.broker.stop();
});

test('session expiry counts across the downtime: expiry 3 s, broker down 4 s: session gone; expiry 600 s: present', { timeout: 60_000 }, async (t) => {
  const dir = makeDataDir();
  const first = await startPersistent(dir);
  const short = await recorded(first.broker.port, { clientId: 'exp-short', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 3 } });
  await short.client.subscribeAsync('exp/#', { qos: 1 });
  const long = await recorded(first.broker.port, { clientId: 'exp-long', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 600 } });
  await long.client.subscribeAsync('exp/#', { qos: 1 });
  await short.end();
  await long.end();
  const goneAt = Math.round(performance.now());
  await sleep(300);
  await killHard(first.broker);
  await sleep(4_000);

  const second = await startPersistent(dir);
  t.diagnostic(`restarted ${Math.round(performance.now()) - goneAt} ms after the clients disconnected`);
  const short2 = await recorded(second.broker.port, { clientId: 'exp-short', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 3 } });
  const long2 = await recorded(second.broker.port, { clientId: 'exp-long', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 600 } });
  assert.equal(short2.sessionPresent, false, `the 3 s session expired while the broker was down; broker log:\n${second.broker.logs()}`);
  assert.equal(long2.sessionPresent, true, 'the 600 s session is still there');
  // and the expired one's subscription is gone with it
  const pub = await recorded(second.broker.port, { clientId: 'exp-pub' });
  await pub.client.publishAsync('exp/x', 'hello', { qos: 1 });
  await long2.until('exp/x', 5_000, (g) => (g.length > 0 ? true : undefined));
  await sleep(200);
  assert.deepEqual(short2.got, [], 'the expired session had no subscription left');
  await Promise.all([pub.end(), short2.end(), long2.end()]);
  await second.broker.stop();
});

test('a clean SIGTERM shutdown keeps retained messages, subscriptions, queued messages and incoming QoS 2 ids', { timeout: 60_000 }, async (t) => {
  const dir = makeDataDir();
  const first = await startPersistent(dir);
  assert.ok(existsSync(join(dir, 'midge.db')), `the store is ${join(dir, 'midge.db')} (persistence_file defaults to midge.db)`);
  const sub = await recorded(first.broker.port, { clientId: 'term-sub', clean: false });
  await sub.client.subscribeAsync('term/#', { qos: 1 });
  await sub.end();
  const pub = await recorded(first.broker.port, { clientId: 'term-pub' });
  await pub.client.publishAsync('term/retained', 'still here', { qos: 1, retain: true });
  for (let i = 0; i < 200; i++) await pub.client.publishAsync('term/q', `q${i}`, { qos: 1 });
  await pub.end();
  const { client: q2 } = await RawClient.connect(first.broker.port, { clientId: 'term-q2', clean: false });
  q2.send({ type: 'publish', topic: 'term/q2', payload: Buffer.from('once'), qos: 2, retain: false, dup: false, packetId: 42 });
  await q2.next((p) => p.type === 'pubrec', 5000, 'PUBREC');

  const t0 = Math.round(performance.now());
  await first.broker.stop();
  const stopMs = Math.round(performance.now()) - t0;
  t.diagnostic(`SIGTERM: exited after ${stopMs} ms`);
  assert.ok(stopMs < 2_900, 'the broker exited on SIGTERM by itself (not by the SIGKILL fallback after 3 s)');
  q2.destroy();

  const second = await startPersistent(dir);
  t.diagnostic(`restart ${second.startMs} ms; ${second.restoredLine ?? 'no "Store: restored" line'}`);
  const sub2 = await recorded(second.broker.port, { clientId: 'term-sub', clean: false });
  assert.equal(sub2.sessionPresent, true);
  await sub2.until('202 messages', 20_000, (g) => (g.length >= 202 ? true : undefined)).catch(() => undefined);
  await sleep(300);
  const queued = sub2.got.filter((g) => g.topic === 'term/q').map((g) => g.payload);
  assert.deepEqual(queued, Array.from({ length: 200 }, (_, i) => `q${i}`), 'the queue, complete and in order');
  assert.deepEqual(sub2.got.filter((g) => g.topic !== 'term/q').map((g) => `${g.topic}=${g.payload}`).sort(), ['term/q2=once', 'term/retained=still here']);

  const { client: q22, connack } = await RawClient.connect(second.broker.port, { clientId: 'term-q2', clean: false });
  assert.equal(connack.sessionPresent, true);
  q22.send({ type: 'publish', topic: 'term/q2', payload: Buffer.from('once'), qos: 2, retain: false, dup: true, packetId: 42 });
  await q22.next((p) => p.type === 'pubrec', 5000, 'PUBREC for the re-sent PUBLISH');
  q22.send({ type: 'pubrel', packetId: 42 });
  await q22.next((p) => p.type === 'pubcomp', 5000, 'PUBCOMP');
  await sleep(300);
  assert.equal(sub2.got.filter((g) => g.topic === 'term/q2').length, 1, 'the re-sent QoS 2 PUBLISH was not routed again');

  const late = await recorded(second.broker.port, { clientId: 'term-late' });
  await late.client.subscribeAsync('term/retained', { qos: 1 });
  await late.until('the retained message', 5_000, (g) => (g.length > 0 ? true : undefined));
  assert.deepEqual(late.got.map((g) => [g.payload, g.retain]), [['still here', true]]);
  await Promise.all([late.end(), sub2.end(), q22.disconnect()]);
  await second.broker.stop();
});

test('queued messages whose message expiry passed while the broker was down are not delivered; the others are, with the time left', { timeout: 60_000 }, async (t) => {
  const dir = makeDataDir();
  const first = await startPersistent(dir);
  const sub = await recorded(first.broker.port, { clientId: 'qexp-sub', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 600 } });
  await sub.client.subscribeAsync('qexp/#', { qos: 1 });
  await sub.end();
  const pub = await recorded(first.broker.port, { clientId: 'qexp-pub', protocolVersion: 5 });
  await pub.client.publishAsync('qexp/short', 'short', { qos: 1, properties: { messageExpiryInterval: 2 } });
  await pub.client.publishAsync('qexp/long', 'long', { qos: 1, properties: { messageExpiryInterval: 600 } });
  await pub.client.publishAsync('qexp/none', 'none', { qos: 1 });
  await killHard(first.broker);
  await sleep(2_500);
  const second = await startPersistent(dir);
  const sub2 = await recorded(second.broker.port, { clientId: 'qexp-sub', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 600 } });
  await sub2.until('two messages', 5_000, (g) => (g.length >= 2 ? true : undefined)).catch(() => undefined);
  await sleep(500);
  assert.deepEqual(sub2.got.map((g) => g.payload), ['long', 'none']);
  const left = sub2.got[0]?.properties?.messageExpiryInterval;
  t.diagnostic(`qexp/long: ${String(left)} s left of 600`);
  assert.ok(typeof left === 'number' && left <= 598 && left > 500, `the downtime counts (left: ${String(left)})`);
  assert.equal(sub2.got[1]?.properties?.messageExpiryInterval, undefined);
  await Promise.all([pub.end(), sub2.end()]);
  await second.broker.stop();
});

test('a message both retained and queued: replacing or clearing the retained one keeps the queued copies, across two kills', { timeout: 60_000 }, async () => {
  const dir = makeDataDir();
  const first = await startPersistent(dir);
  const sub = await recorded(first.broker.port, { clientId: 'rc-sub', clean: false });
  await sub.client.subscribeAsync('rc/t', { qos: 1 });
  await sub.end();
  const pub = await recorded(first.broker.port, { clientId: 'rc-pub' });
  await pub.client.publishAsync('rc/t', 'A', { qos: 1, retain: true });
  await pub.client.publishAsync('rc/t', 'B', { qos: 1, retain: true });
  await pub.client.publishAsync('rc/t', 'C', { qos: 1, retain: true });
  await pub.client.publishAsync('rc/t', '', { qos: 1, retain: true }); // clears the retained message; still delivered
  await pub.client.publishAsync('rc/u', 'D', { qos: 1, retain: true });
  await pub.end();
  await killHard(first.broker);

  const second = await startPersistent(dir);
  const sub2 = await recorded(second.broker.port, { clientId: 'rc-sub', clean: false });
  await sub2.until('4 messages', 5_000, (g) => (g.length >= 4 ? true : undefined));
  await sleep(300);
  assert.deepEqual(sub2.got.map((g) => g.payload), ['A', 'B', 'C', ''], 'every queued copy, the retained ones replaced since included');
  await sub2.end(); // every one acknowledged
  const look = await recorded(second.broker.port, { clientId: 'rc-look' });
  await look.client.subscribeAsync('rc/#', { qos: 1 });
  await look.until('rc/u', 5_000, (g) => (g.length > 0 ? true : undefined));
  await sleep(300);
  assert.deepEqual(look.got.map((g) => `${g.topic}=${g.payload}`), ['rc/u=D'], 'rc/t has no retained message');
  await look.end();
  await sleep(200);
  await killHard(second.broker);

  const third = await startPersistent(dir);
  const sub3 = await recorded(third.broker.port, { clientId: 'rc-sub', clean: false });
  assert.equal(sub3.sessionPresent, true);
  const look3 = await recorded(third.broker.port, { clientId: 'rc-look3' });
  await look3.client.subscribeAsync('rc/#', { qos: 1 });
  await look3.until('rc/u', 5_000, (g) => (g.length > 0 ? true : undefined));
  await sleep(300);
  assert.deepEqual(look3.got.map((g) => `${g.topic}=${g.payload}`), ['rc/u=D']);
  assert.deepEqual(sub3.got.map((g) => g.payload), [], 'what the subscriber acknowledged is not sent again');
  await Promise.all([sub3.end(), look3.end()]);
  await third.broker.stop();
});
