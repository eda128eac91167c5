/**
 * The cluster's configuration and command line, with bad inputs: `cluster_redis` with a URL that is not a
 * Redis one (`http://x`), without a host (`redis://`), empty; a Redis that nothing listens on at start
 * (exit non-zero, naming the address, never the password); `--redis` and `--node-id` without a value.
 * And the good ones: `--redis URL --node-id NAME` without a file, `--redis` overriding the file's
 * `cluster_redis`, `persistence true` accepted and ignored with a cluster.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { startMidge, stopAllBrokers } from '../helpers/broker-process.js';
import { freePort } from '../helpers/ports.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { killAll, type RunResult } from '../helpers/proc.js';
import { JOIN_TIMEOUT_MS, nodeConfig, runBroker, startNode } from './harness.js';

const T = { timeout: 60_000 };
let redis: RedisServer | undefined;
const dirs: string[] = [];

after(async () => {
  await stopAllBrokers();
  await redis?.stop();
  await killAll();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The broker must refuse to start: non-zero exit, a message, no stack trace, no listener opened. */
function assertRefused(r: RunResult, what: string): string {
  const out = `${r.stderr}${r.stdout}`;
  assert.ok(r.code !== 0 && r.code !== null, `${what}: exit code ${String(r.code)} (signal ${String(r.signal)})\n${out}`);
  assert.notEqual(out.trim(), '', `${what}: says nothing`);
  assert.doesNotMatch(out, /^\s+at .+:\d+:\d+\)?$/m, `${what}: a stack trace instead of a message\n${out}`);
  assert.doesNotMatch(out, /Opening ipv4 listen socket/, `${what}: it opened a listener\n${out}`);
  return out;
}

describe('cluster configuration: bad inputs', () => {
  for (const [label, value] of [['http://x', 'http://x'], ['redis:// (no host)', 'redis://'], ['empty', '']] as const) {
    test(`cluster_redis ${label}: the broker exits non-zero naming the key`, T, async () => {
      const port = await freePort();
      const conf = nodeConfig(value, 'a').replace('{port}', String(port));
      const r = await runBroker(conf, [], 20_000);
      const out = assertRefused(r, `cluster_redis ${label}`);
      assert.match(out, /cluster_redis/, out);
    });
  }

  test('an unreachable Redis at start: exit non-zero, the message names the address and not the password', T, async () => {
    const port = await freePort(); // nothing listens there
    const conf = nodeConfig(`redis://midge:hunter2@127.0.0.1:${port}/3`, 'a').replace('{port}', String(await freePort()));
    const t0 = Math.round(performance.now());
    const r = await runBroker(conf, [], 45_000);
    const ms = Math.round(performance.now()) - t0;
    const out = assertRefused(r, 'unreachable Redis');
    assert.match(out, new RegExp(`127\\.0\\.0\\.1:${port}`), out);
    assert.doesNotMatch(out, /hunter2/, 'the password is not printed');
    assert.ok(ms < 30_000, `took ${ms} ms to give up`);
  });

  test('--redis without a value: exit 1 with a message naming --redis', T, async () => {
    const r = await runBroker(undefined, ['--redis'], 15_000);
    const out = assertRefused(r, '--redis');
    assert.match(out, /--redis/, out);
  });

  test('--node-id without a value: exit 1 with a message naming --node-id', T, async () => {
    redis ??= await startRedis();
    const r = await runBroker(undefined, ['--redis', redis.url, '--node-id'], 15_000);
    const out = assertRefused(r, '--node-id');
    assert.match(out, /--node-id/, out);
  });

  for (const bad of ['http://x', 'redis://']) {
    test(`--redis ${bad}: refused, the message quoting the URL`, T, async () => {
      const r = await runBroker(undefined, ['-p', String(await freePort()), '--redis', bad], 15_000);
      const out = assertRefused(r, `--redis ${bad}`);
      assert.ok(out.includes(`(${bad})`), out);
    });
  }
});

describe('cluster configuration: good inputs', () => {
  test('--redis URL --node-id NAME, without a config file, joins', T, async () => {
    redis ??= await startRedis();
    const b = await startMidge({ args: ['--redis', redis.url, '--node-id', 'cli-node'] });
    await b.waitForLog(/Cluster: node cli-node joined \(\d+ nodes?\)\./, JOIN_TIMEOUT_MS);
    await b.stop();
  });

  test('--redis overrides the file\'s cluster_redis (which names a Redis nobody listens on)', T, async () => {
    redis ??= await startRedis();
    const dead = await freePort();
    const b = await startMidge({ config: nodeConfig(`redis://127.0.0.1:${dead}`, 'override-node'), args: ['--redis', redis.url] });
    await b.waitForLog(/Cluster: node override-node joined/, JOIN_TIMEOUT_MS);
    await b.stop();
  });

  test('persistence true with a cluster: accepted, logged once, no database file written', T, async () => {
    redis ??= await startRedis();
    const dir = mkdtempSync(join(tmpdir(), 'midge-cluster-persist-'));
    dirs.push(dir);
    const n = await startNode(redis.url, 'persist-node', { extra: `persistence true\npersistence_location ${dir}/` });
    const line = await n.broker.waitForLog(/Cluster: state is kept in Redis; persistence_file is not used\./, 5000);
    assert.ok(line);
    assert.equal(n.broker.logs().split('\n').filter((l) => /persistence_file is not used/.test(l)).length, 1);
    await n.broker.stop();
    assert.deepEqual(readdirSync(dir), [], 'nothing written to persistence_location');
  });
});
