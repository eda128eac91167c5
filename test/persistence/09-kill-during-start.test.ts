/**
 * kill -9 while the broker starts: while it creates the database (schema), and while it opens and
 * restores a full one. Neither leaves a store that the next start refuses or that lost anything.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MIDGE_MAIN, stopAllBrokers } from '../helpers/broker-process.js';
import { freePort } from '../helpers/ports.js';
import { exitOf, spawnTracked } from '../helpers/proc.js';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';
import {
  closeRecordedClients,
  makeDataDir,
  persistConfig,
  prng,
  pump,
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

/** Spawns `midge broker -c` on `dir` and SIGKILLs it after `ms`; returns whether it was still running. */
async function startAndKill(dir: string, ms: number): Promise<{ output: string; exitedEarly: boolean }> {
  const confDir = makeDataDir('midge-conf-');
  const conf = join(confDir, 'broker.conf');
  writeFileSync(conf, `listener ${await freePort()} 127.0.0.1\nallow_anonymous true\n${persistConfig(dir)}`);
  const child = spawnTracked(process.execPath, [...NODE_FLAGS, MIDGE_MAIN, 'broker', '-c', conf]);
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (output += s));
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (output += s));
  child.stdin?.end();
  const exited = exitOf(child);
  await Promise.race([sleep(ms), exited]);
  const exitedEarly = child.exitCode !== null;
  child.kill('SIGKILL');
  await exited;
  return { output, exitedEarly };
}

test('kill -9 at random moments of the start (creating the store, then restoring a full one) loses nothing', { timeout: 120_000 }, async (t) => {
  const seed = process.env.MIDGE_CRASH_SEED !== undefined ? Number(process.env.MIDGE_CRASH_SEED) : Date.now() % 1_000_000;
  t.diagnostic(`seed ${seed}`);
  const rnd = prng(seed);
  const dir = makeDataDir();
  // the first start of all, killed while it creates the file and its schema
  for (let i = 0; i < 5; i++) {
    const ms = Math.floor(rnd() * 600);
    const r = await startAndKill(dir, ms);
    assert.equal(r.exitedEarly, false, `start killed after ${ms} ms had not failed by itself: ${r.output}`);
  }
  const first = await startPersistent(dir);
  const sub = await recorded(first.broker.port, { clientId: 'ks-sub', clean: false });
  await sub.client.subscribeAsync('ks/#', { qos: 1 });
  await sub.end();
  const r = await pump(first.broker.port, { clientId: 'ks-pub', qos: 1, count: 5_000, window: 100, topicOf: () => 'ks/t', payloadOf: (i) => `k${i}`, timeoutMs: 60_000 });
  assert.equal(r.acked.size, 5_000);
  const pub = await recorded(first.broker.port, { clientId: 'ks-ret' });
  await pub.client.publishAsync('ks/retained', 'kept', { qos: 1, retain: true });
  await pub.end();
  await first.broker.stop();

  // restarts killed while they open and restore it
  const killedAt: string[] = [];
  for (let i = 0; i < 8; i++) {
    const ms = Math.floor(rnd() * 900);
    const k = await startAndKill(dir, ms);
    assert.equal(k.exitedEarly, false, `start killed after ${ms} ms had not failed by itself: ${k.output}`);
    killedAt.push(`${ms} ms${/Store: restored/.test(k.output) ? ' (restored)' : ''}`);
  }
  t.diagnostic(`starts killed after: ${killedAt.join(', ')}`);

  const last = await startPersistent(dir);
  t.diagnostic(`then a full start: ${last.startMs} ms; ${last.restoredLine ?? ''}`);
  const sub2 = await recorded(last.broker.port, { clientId: 'ks-sub', clean: false });
  assert.equal(sub2.sessionPresent, true);
  const acked = new Set([...r.acked].map((i) => `k${i}`));
  const payloads = (): string[] => sub2.got.filter((g) => g.topic === 'ks/t').map((g) => g.payload);
  await waitForPayloads(payloads, acked, 60_000);
  await sub2.quiet(300, 3_000);
  const tl = tally(acked, payloads());
  assert.deepEqual(tl.missing, []);
  assert.equal(tl.duplicates, 0, 'nothing delivered twice (it was never sent before)');
  assert.deepEqual(payloads(), [...acked], 'in order');
  const late = await recorded(last.broker.port, { clientId: 'ks-late' });
  await late.client.subscribeAsync('ks/retained', { qos: 1 });
  await late.until('the retained message', 5_000, (g) => (g.length > 0 ? true : undefined));
  assert.equal(late.got[0]?.payload, 'kept');
  await Promise.all([sub2.end(), late.end()]);
  await last.broker.stop();
});
