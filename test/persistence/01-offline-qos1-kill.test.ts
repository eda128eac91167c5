/**
 * The durability promise at QoS 1: once Midge has answered PUBACK, the message survives `kill -9` for
 * every persistent session it was routed to. A persistent subscriber is offline; a raw publisher
 * pipelines 10,000 QoS 1 messages (100 in flight) and records every PUBACK; the broker is SIGKILLed
 * after ~3,000 acks and restarted on the same data directory; the subscriber comes back and must get
 * every acknowledged payload (duplicates are allowed at QoS 1 and counted).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { stopAllBrokers, type BrokerProcess } from '../helpers/broker-process.js';
import { run, spawnLines } from '../helpers/proc.js';
import {
  assertCleanLog,
  closeRecordedClients,
  describeTally,
  killHard,
  makeDataDir,
  pump,
  recorded,
  removeDataDirs,
  startPersistent,
  tally,
  waitForPayloads,
} from './_helpers.js';

const TOTAL = 10_000;
const KILL_AFTER_ACKS = 3_000;
const WINDOW = 100;

after(async () => {
  await closeRecordedClients();
  await stopAllBrokers();
  removeDataDirs();
});

/** Publishes until the broker is SIGKILLed after KILL_AFTER_ACKS PUBACKs; returns the acked payloads. */
async function publishAndKill(broker: BrokerProcess, tag: string, diag: (s: string) => void): Promise<Set<string>> {
  let killed = false;
  const r = await pump(broker.port, {
    clientId: `${tag}-pub`,
    qos: 1,
    count: TOTAL,
    window: WINDOW,
    topicOf: (i) => `crash/${i % 16}`,
    payloadOf: (i) => `${tag}-${i}`,
    onAck: (n) => {
      if (n >= KILL_AFTER_ACKS && !killed) {
        killed = true;
        broker.kill('SIGKILL');
      }
    },
    timeoutMs: 90_000,
  });
  await killHard(broker);
  assert.ok(killed, `the broker was killed (acks: ${r.acked.size}, refused: ${r.refused})`);
  assert.equal(r.refused, 0, 'no PUBLISH was refused');
  assert.ok(r.cutOff, 'the kill cut the stream short');
  diag(`${tag}: ${r.acked.size} PUBACKs received (kill sent after ${KILL_AFTER_ACKS}), ${r.sent} PUBLISHes sent, ${r.elapsedMs} ms`);
  return new Set([...r.acked].map((i) => `${tag}-${i}`));
}

test('offline MQTT.js subscriber: every PUBACKed payload arrives after kill -9 and restart', { timeout: 150_000 }, async (t) => {
  const dir = makeDataDir();
  const tag = 'js';
  const first = await startPersistent(dir);
  const sub = await recorded(first.broker.port, { clientId: `${tag}-sub`, clean: false });
  await sub.client.subscribeAsync('crash/#', { qos: 1 });
  await sub.end();

  const acked = await publishAndKill(first.broker, tag, (s) => t.diagnostic(s));

  const second = await startPersistent(dir);
  t.diagnostic(`restart: accepting after ${second.startMs} ms; ${second.restoredLine ?? 'no "Store: restored" line'}`);
  const sub2 = await recorded(second.broker.port, { clientId: `${tag}-sub`, clean: false });
  assert.equal(sub2.sessionPresent, true, 'the session survived the kill');
  const t0 = Math.round(performance.now());
  const payloads = (): string[] => sub2.got.map((g) => g.payload);
  await waitForPayloads(payloads, acked, 60_000);
  await sub2.quiet(500, 5_000);
  const r = tally(acked, payloads());
  t.diagnostic(`after restart (${Math.round(performance.now()) - t0} ms to drain): ${describeTally(r)}`);
  assert.ok(sub2.got.every((g) => g.qos === 1 && g.topic.startsWith('crash/')), 'delivered at QoS 1 on crash/#');
  assert.deepEqual(r.missing, [], 'every acknowledged message was delivered');
  await sub2.end();
  assertCleanLog(second.broker);
  await second.broker.stop();
});

test('offline mosquitto_sub -c -q 1: every PUBACKed payload arrives after kill -9 and restart', { timeout: 150_000 }, async (t) => {
  const dir = makeDataDir();
  const tag = 'mosq';
  const id = `${tag}-sub`;
  const first = await startPersistent(dir);
  // -E: subscribe, wait for the SUBACK, exit; the persistent session stays behind
  const made = await run('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(first.broker.port), '-c', '-q', '1', '-i', id, '-t', 'crash/#', '-E'], { timeoutMs: 10_000 });
  assert.equal(made.code, 0, `mosquitto_sub -E: ${made.stderr}`);

  const acked = await publishAndKill(first.broker, tag, (s) => t.diagnostic(s));

  const second = await startPersistent(dir);
  t.diagnostic(`restart: accepting after ${second.startMs} ms; ${second.restoredLine ?? 'no "Store: restored" line'}`);
  // Not `-C N`: duplicates are allowed at QoS 1, so a count could stop it before every distinct payload
  // arrived. The lines are read as they come and the process is stopped once it has them all.
  const sub = spawnLines('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(second.broker.port), '-c', '-q', '1', '-i', id, '-t', 'crash/#', '-v']);
  const payloads = (): string[] => sub.lines.map((l) => l.slice(l.indexOf(' ') + 1));
  const t0 = Math.round(performance.now());
  await waitForPayloads(payloads, acked, 60_000);
  // quiet for 500 ms (bounded)
  for (let n = sub.lines.length, i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 500));
    if (sub.lines.length === n) break;
    n = sub.lines.length;
  }
  sub.kill('SIGTERM');
  await sub.exited;
  const r = tally(acked, payloads());
  t.diagnostic(`after restart (${Math.round(performance.now()) - t0} ms): ${describeTally(r)}`);
  assert.ok(sub.lines.every((l) => /^crash\/\d+ mosq-\d+$/.test(l)), `mosquitto_sub printed only crash/# lines (first: ${sub.lines[0] ?? 'none'}; stderr: ${sub.stderr()})`);
  assert.deepEqual(r.missing, [], 'every acknowledged message was delivered');
  assertCleanLog(second.broker);
  await second.broker.stop();
});
