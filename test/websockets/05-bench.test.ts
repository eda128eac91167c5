/**
 * `midge bench --ws`: the load generator over ws://HOST:PORT/mqtt against a `protocol websockets`
 * listener of a `midge broker` process (QoS 1 fan-in: every message acknowledged and delivered).
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { stopAllBrokers } from '../helpers/broker-process.js';
import { killAll } from '../helpers/proc.js';
import { midgeCli } from '../security/_util.js';
import { startWsBroker } from './_ws.js';

after(async () => {
  await stopAllBrokers();
  await killAll();
});

test('midge bench run --ws: 2 publishers, 1 subscriber, QoS 1 over WebSockets, nothing lost; --ws against the TCP port fails', { timeout: 30_000 }, async () => {
  const b = await startWsBroker([[]], [], false);
  const r = await midgeCli(['bench', 'run', '--pubs', '2', '--subs', '1', '--topics', '2', '--wildcard', '-q', '1', '-r', '2000',
    '-d', '1', '--warmup', '0', '--drain', '1', '-w', '1', '-p', String(b.wsPorts[0]), '--ws', '--json', '--quiet'], 20_000);
  assert.equal(r.code, 0, r.stderr);
  const json = JSON.parse(r.stdout.trim().split('\n').pop()!) as { transport: string; received: number; lost: number; missing: number; acked: number };
  assert.equal(json.transport, 'ws');
  assert.ok(json.received > 500, `received ${json.received}`);
  assert.deepEqual([json.lost, json.missing], [0, 0]);

  // the TCP listener does not speak HTTP: every handshake fails, and the generator says so
  const bad = await midgeCli(['bench', 'run', '--pubs', '1', '--subs', '1', '-d', '0.5', '--warmup', '0', '--drain', '0',
    '--conn-timeout', '2', '--setup-timeout', '5', '-w', '1', '-p', String(b.port), '--ws', '--quiet'], 20_000);
  assert.notEqual(bad.code, 0, bad.stdout + bad.stderr);
});
