/**
 * kill -9 at 20 random points (seeded; MIDGE_CRASH_SEED=N replays a run). Each round: a publisher
 * pipelines 300-500 QoS 1 messages to an offline persistent subscriber, the broker is SIGKILLed at a
 * random point (after a random number of PUBACKs, or a random 0-20 ms from the start), restarted on the same
 * data directory, and the subscriber must get every payload that was acknowledged in that round.
 * The same at QoS 2 (10 rounds): every PUBREC'd payload exactly once.
 */
import { test, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { stopAllBrokers } from '../helpers/broker-process.js';
import {
  assertCleanLog,
  closeRecordedClients,
  describeTally,
  killHard,
  makeDataDir,
  prng,
  pump,
  recorded,
  removeDataDirs,
  sleep,
  startPersistent,
  tally,
  waitForPayloads,
} from './_helpers.js';

const ROUNDS = 20;
const BUDGET_MS = 110_000;

after(async () => {
  await closeRecordedClients();
  await stopAllBrokers();
  removeDataDirs();
});

test(`kill -9 at ${ROUNDS} random points: every acknowledged message arrives each time`, { timeout: BUDGET_MS + 30_000 }, (t) =>
  randomKills(t, 1, ROUNDS, BUDGET_MS));

test('QoS 2, kill -9 at 10 random points: every PUBREC\'d message arrives exactly once', { timeout: 90_000 }, (t) =>
  randomKills(t, 2, 10, 60_000));

async function randomKills(t: TestContext, qos: 1 | 2, rounds: number, budgetMs: number): Promise<void> {
  const seedEnv = process.env.MIDGE_CRASH_SEED;
  const seed = seedEnv !== undefined ? Number(seedEnv) : Date.now() % 1_000_000;
  t.diagnostic(`seed ${seed} (replay with MIDGE_CRASH_SEED=${seed})`);
  const rnd = prng(seed);
  const dir = makeDataDir();
  // fsync off (the default, said here): kill -9 does not lose what reached the OS, so the promise holds without it
  const extra = 'midge_persistence_fsync false\n';
  let current = await startPersistent(dir, extra);
  const sub0 = await recorded(current.broker.port, { clientId: `rk-sub${qos}`, clean: false });
  await sub0.client.subscribeAsync('rk/#', { qos });
  await sub0.end();

  const t0 = Math.round(performance.now());
  const totals = { acked: 0, received: 0, duplicates: 0, unacked: 0, restartMs: [] as number[] };
  const failures: string[] = [];
  let cutOff = 0;
  for (let round = 0; round < rounds; round++) {
    assert.ok(Math.round(performance.now()) - t0 < budgetMs, `time budget: round ${round} starts after ${Math.round(performance.now()) - t0} ms`);
    const count = 300 + Math.floor(rnd() * 201);
    const broker = current.broker;
    // Three rounds in four: the kill comes right after a random number of PUBACKs (the broker is quick:
    // a fixed delay would mostly land after the last one). Otherwise after a random 0-20 ms from the
    // start, which may be before the CONNACK.
    const byAcks = rnd() < 0.75;
    const killAfterAcks = byAcks ? Math.floor(rnd() * count * 0.9) : -1;
    const delayMs = byAcks ? -1 : Math.floor(rnd() * 21);
    const kill = (): void => broker.kill('SIGKILL');
    const pumping = pump(broker.port, {
      clientId: `rk-pub${qos}`,
      qos,
      count,
      window: 20 + Math.floor(rnd() * 81),
      topicOf: (i) => `rk/${round}/${i % 4}`,
      payloadOf: (i) => `r${round}-${i}`,
      onAck: (n) => {
        if (n === killAfterAcks) kill();
      },
      timeoutMs: 30_000,
    });
    if (byAcks && killAfterAcks === 0) kill();
    if (!byAcks) {
      await sleep(delayMs);
      kill();
    }
    const r = await pumping;
    await killHard(broker);
    if (r.cutOff) cutOff++;
    const acked = new Set([...r.acked].map((i) => `r${round}-${i}`));

    current = await startPersistent(dir, extra);
    totals.restartMs.push(current.startMs);
    const sub = await recorded(current.broker.port, { clientId: `rk-sub${qos}`, clean: false });
    const mine = (): string[] => sub.got.map((g) => g.payload).filter((p) => p.startsWith(`r${round}-`));
    await waitForPayloads(mine, acked, 20_000);
    await sub.quiet(250, 3_000);
    await sub.end();
    const tl = tally(acked, mine());
    totals.acked += tl.acked;
    totals.received += tl.receivedDistinct;
    totals.duplicates += tl.duplicates;
    totals.unacked += tl.unackedReceived;
    const line = `round ${round}: ${count} msgs, kill ${byAcks ? `after ack ${killAfterAcks}` : `after ${delayMs} ms`} (${r.sent} sent${r.cutOff ? '' : ', all acked before the kill'}): ${describeTally(tl)}; restart ${current.startMs} ms`;
    t.diagnostic(line);
    if (tl.missing.length > 0 || (qos === 2 && tl.duplicates > 0)) failures.push(line);
  }
  assertCleanLog(current.broker);
  await current.broker.stop();
  const ms = totals.restartMs;
  t.diagnostic(
    `totals: acked ${totals.acked}, received ${totals.received} distinct, ${totals.duplicates} duplicates, ` +
      `${totals.unacked} received without an ack seen; ${cutOff} rounds cut short by the kill; restart ${Math.min(...ms)}-${Math.max(...ms)} ms; ${Math.round(performance.now()) - t0} ms in all`,
  );
  assert.deepEqual(failures, [], `seed ${seed}: acknowledged messages were lost${qos === 2 ? ' or delivered twice' : ''}`);
  assert.ok(cutOff >= rounds / 2, `most kills came mid-stream (${cutOff} of ${rounds})`);
}
