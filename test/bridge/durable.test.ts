/**
 * The bridge's queue is the local broker's session queue: with `persistence true`, QoS 1 and 2 messages
 * waiting for an absent remote survive a kill -9 of the local broker and arrive after its restart, in
 * order, each once.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMidge, startMosquitto, stopAllBrokers } from '../helpers/broker-process.js';
import { freePort } from '../helpers/ports.js';
import { killAll } from '../helpers/proc.js';
import { logLines, publishLines, sleep, subscribe, until } from './_helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'midge-bridge-durable-'));
after(async () => {
  await stopAllBrokers();
  await killAll();
  rmSync(dir, { recursive: true, force: true });
});

test('persistence true: QoS 1 and 2 messages queued for an absent remote survive kill -9 of the local broker and arrive once, in order', { timeout: 60_000 }, async () => {
  const remotePort = await freePort();
  const config = ['persistence true', `persistence_location ${dir}/`, 'connection d', `address 127.0.0.1:${remotePort}`,
    'remote_clientid edge-d', 'restart_timeout 1', 'topic d1/# out 1', 'topic d2/# out 2'].join('\n');
  let local = await startMidge({ verbose: true, config });
  await until('a failed attempt', 10_000, () => logLines(local, /Error creating bridge: Connection refused\./).length >= 1);
  const q1 = Array.from({ length: 30 }, (_, i) => `a${i + 1}`);
  const q2 = Array.from({ length: 10 }, (_, i) => `b${i + 1}`);
  await publishLines(local, 'd1/x', q1, 1);
  await publishLines(local, 'd2/x', q2, 2);
  local.kill('SIGKILL');
  await local.stop();
  const remote = await startMosquitto({ verbose: true, port: remotePort });
  const rsub = await subscribe(remote, ['d1/#', 'd2/#'], { qos: 2 });
  local = await startMidge({ verbose: true, config });
  await until('bridge connected', 10_000, () => logLines(local, /Bridge d connected to/).length === 1);
  const got = await rsub.waitForLines(40, 10_000);
  await sleep(1000);
  rsub.kill();
  assert.deepEqual(got.filter((l) => l.includes('d1/x')).map((l) => l.split(' ').pop()), q1);
  assert.deepEqual(got.filter((l) => l.includes('d2/x')).map((l) => l.split(' ').pop()), q2);
  assert.ok(got.filter((l) => l.includes('d2/x')).every((l) => l.startsWith('2 ')), 'QoS 2 end to end');
  assert.equal(rsub.lines.length, 40, 'each once');
  await local.stop();
  await remote.stop();
});
