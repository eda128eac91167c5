/**
 * QoS 2 across kill -9: every PUBREC'd message is delivered exactly once after the restart (none lost,
 * no duplicates), and the incoming QoS 2 packet id of a publisher survives: a PUBLISH re-sent with DUP
 * after the restart is not routed again, and its PUBREL is answered with PUBCOMP.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { stopAllBrokers } from '../helpers/broker-process.js';
import {
  assertCleanLog,
  closeRecordedClients,
  describePackets,
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
} from './_helpers.js';

after(async () => {
  await closeRecordedClients();
  await stopAllBrokers();
  removeDataDirs();
});

test('QoS 2: every PUBREC\'d message arrives exactly once after kill -9 and restart', { timeout: 150_000 }, async (t) => {
  const dir = makeDataDir();
  // this one with fsync on every commit (the other files use the default, off): the same promise, slower
  const extra = 'midge_persistence_fsync true\n';
  const first = await startPersistent(dir, extra);
  assert.match(first.broker.logs(), /Persistence: .*midge\.db \(SQLite, fsync on every commit\)/);
  const sub = await recorded(first.broker.port, { clientId: 'q2-sub', clean: false });
  await sub.client.subscribeAsync('crash2/#', { qos: 2 });
  await sub.end();

  const KILL_AFTER = 1_500;
  let killed = false;
  const r = await pump(first.broker.port, {
    clientId: 'q2-pub',
    qos: 2,
    count: 5_000,
    window: 50,
    topicOf: (i) => `crash2/${i % 8}`,
    payloadOf: (i) => `q2-${i}`,
    onAck: (n) => {
      if (n >= KILL_AFTER && !killed) {
        killed = true;
        first.broker.kill('SIGKILL');
      }
    },
    timeoutMs: 90_000,
  });
  await killHard(first.broker);
  assert.ok(killed && r.cutOff, `the broker was killed mid-stream (PUBRECs: ${r.acked.size})`);
  assert.equal(r.refused, 0);
  t.diagnostic(`${r.acked.size} PUBRECs received (kill sent after ${KILL_AFTER}), ${r.sent} PUBLISHes sent, ${r.elapsedMs} ms`);
  const acked = new Set([...r.acked].map((i) => `q2-${i}`));

  const second = await startPersistent(dir, extra);
  t.diagnostic(`restart: accepting after ${second.startMs} ms; ${second.restoredLine ?? 'no "Store: restored" line'}`);
  const sub2 = await recorded(second.broker.port, { clientId: 'q2-sub', clean: false });
  assert.equal(sub2.sessionPresent, true);
  const payloads = (): string[] => sub2.got.map((g) => g.payload);
  await waitForPayloads(payloads, acked, 60_000);
  await sub2.quiet(700, 5_000);
  const got = tally(acked, payloads());
  t.diagnostic(`after restart: ${describeTally(got)}`);
  assert.ok(sub2.got.every((g) => g.qos === 2), 'delivered at QoS 2');
  assert.deepEqual(got.missing, [], 'every PUBREC\'d message was delivered');
  assert.equal(got.duplicates, 0, 'no message was delivered twice');
  await sub2.end();
  assertCleanLog(second.broker);
  await second.broker.stop();
});

test('QoS 2: a PUBLISH re-sent with DUP after the restart is not routed again; PUBREL gets PUBCOMP', { timeout: 60_000 }, async (t) => {
  const dir = makeDataDir();
  const first = await startPersistent(dir);
  const sub = await recorded(first.broker.port, { clientId: 'q2dup-sub', clean: false });
  await sub.client.subscribeAsync('dup/#', { qos: 2 });
  await sub.end();

  const { client: pub, connack: c1 } = await RawClient.connect(first.broker.port, { clientId: 'q2dup-pub', clean: false });
  assert.equal(c1.reasonCode, 0);
  const publish = { type: 'publish', topic: 'dup/x', payload: Buffer.from('exactly-once'), qos: 2, retain: false, dup: false, packetId: 7 } as const;
  pub.send(publish);
  await pub.next((p) => p.type === 'pubrec' && p.packetId === 7, 5000, 'PUBREC 7');
  await killHard(first.broker);
  pub.destroy();

  const second = await startPersistent(dir);
  t.diagnostic(`restart: accepting after ${second.startMs} ms; ${second.restoredLine ?? 'no "Store: restored" line'}`);
  const sub2 = await recorded(second.broker.port, { clientId: 'q2dup-sub', clean: false });
  assert.equal(sub2.sessionPresent, true);
  await sub2.until('the PUBREC\'d message', 10_000, (g) => (g.length >= 1 ? true : undefined));

  const { client: pub2, connack: c2 } = await RawClient.connect(second.broker.port, { clientId: 'q2dup-pub', clean: false });
  assert.equal(c2.reasonCode, 0);
  assert.equal(c2.sessionPresent, true, 'the publisher\'s session survived the kill');
  pub2.send({ ...publish, dup: true });
  const rec = await pub2.next((p) => p.type === 'pubrec', 5000, 'PUBREC for the re-sent PUBLISH');
  assert.deepEqual({ type: rec.type, id: (rec as { packetId: number }).packetId }, { type: 'pubrec', id: 7 });
  pub2.send({ type: 'pubrel', packetId: 7 });
  const comp = await pub2.next((p) => p.type === 'pubcomp', 5000, 'PUBCOMP 7');
  assert.equal((comp as { packetId: number }).packetId, 7);
  // a fresh message after it shows that the subscriber is live: a second copy would be before it
  pub2.send({ type: 'publish', topic: 'dup/x', payload: Buffer.from('marker'), qos: 2, retain: false, dup: false, packetId: 8 });
  await pub2.next((p) => p.type === 'pubrec' && p.packetId === 8, 5000, 'PUBREC 8');
  pub2.send({ type: 'pubrel', packetId: 8 });
  await pub2.next((p) => p.type === 'pubcomp' && p.packetId === 8, 5000, 'PUBCOMP 8');
  await sub2.until('the marker', 5_000, (g) => (g.some((m) => m.payload === 'marker') ? true : undefined));
  await sleep(300);
  assert.deepEqual(sub2.got.map((g) => g.payload), ['exactly-once', 'marker'], `delivered exactly once (publisher packets: ${describePackets(pub2.packets)})`);
  await pub2.disconnect();
  await sub2.end();
  await second.broker.stop();
});
