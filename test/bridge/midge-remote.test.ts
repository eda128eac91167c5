/**
 * Midge as the remote of a bridge: mosquitto's bridge (try_private) gets its own messages not back; two
 * Midge brokers bridged both ways (3.1.1 with the bridge bit, and 5.0 with No Local) do not loop; SIGHUP
 * adds and removes a bridge without a restart.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMidge, startMosquitto, stopAllBrokers, type BrokerProcess } from '../helpers/broker-process.js';
import { killAll } from '../helpers/proc.js';
import { logLines, publish, retained, sleep, subscribe, until } from './_helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'midge-bridge-'));
after(async () => {
  await stopAllBrokers();
  await killAll();
  rmSync(dir, { recursive: true, force: true });
});

/** Publishes on each side and checks that each subscriber sees each message exactly once. */
async function noLoops(a: BrokerProcess, b: BrokerProcess): Promise<void> {
  const asub = await subscribe(a, ['#'], { qos: 1 });
  const bsub = await subscribe(b, ['#'], { qos: 1 });
  await publish(a, 'from/a', 'A', 1);
  await publish(b, 'from/b', 'B', 1);
  await asub.waitForLines(2, 5000);
  await bsub.waitForLines(2, 5000);
  await sleep(1500); // a loop would bring them round again by now
  asub.kill();
  bsub.kill();
  const own = (lines: string[]): string[] => lines.filter((l) => !l.includes('$SYS')).sort();
  assert.deepEqual(own(asub.lines), ['1 0 from/a A', '1 0 from/b B'], `A saw:\n${asub.lines.join('\n')}`);
  assert.deepEqual(own(bsub.lines), ['1 0 from/a A', '1 0 from/b B'], `B saw:\n${bsub.lines.join('\n')}`);
}

describe('bridges to Midge', { timeout: 90_000 }, () => {
  test('mosquitto bridging to Midge with try_private: Midge sees a bridge and sends none of its own messages back', async () => {
    const remote = await startMidge({ verbose: true });
    const local = await startMosquitto({
      verbose: true,
      config: ['connection m', `address 127.0.0.1:${remote.port}`, 'remote_clientid mosq-edge', 'restart_timeout 1', 'topic # both 1'].join('\n'),
    });
    await until('mosquitto bridge connected', 10_000, () => /New bridge connected from 127\.0\.0\.1:\d+ as mosq-edge \(p2, c0, k60\)/.test(remote.logs()));
    await until('its subscription', 5000, () => logLines(remote, /^\d+: mosq-edge 1 #$/).length === 1);
    assert.equal(await retained(remote, '$SYS/broker/connection/mosq-edge/state'), '1', 'mosquitto may write its state topic in $SYS');
    await noLoops(local, remote);
  });

  test('two Midge brokers bridged both ways over MQTT 3.1.1 (try_private): no loop', async () => {
    const b = await startMidge({ verbose: true });
    const a = await startMidge({ verbose: true, config: ['connection ab', `address 127.0.0.1:${b.port}`, 'remote_clientid a-to-b', 'topic # both 1'].join('\n') });
    await until('bridge up', 10_000, () => logLines(a, /Bridge ab connected to/).length === 1);
    assert.match(b.logs(), /New bridge connected from 127\.0\.0\.1:\d+ as a-to-b \(p2, c0, k60\)/);
    await noLoops(a, b);
  });

  test('two Midge brokers bridged both ways over MQTT 5.0 (No Local): no loop', async () => {
    const b = await startMidge({ verbose: true });
    const a = await startMidge({
      verbose: true,
      config: ['connection ab5', `address 127.0.0.1:${b.port}`, 'remote_clientid a-to-b5', 'bridge_protocol_version mqttv50', 'topic # both 1'].join('\n'),
    });
    await until('bridge up', 10_000, () => logLines(a, /Bridge ab5 connected to/).length === 1);
    assert.match(b.logs(), /New client connected from 127\.0\.0\.1:\d+ as a-to-b5 \(p5, c0, k60\)/);
    await noLoops(a, b);
  });

  test('SIGHUP adds a bridge, changes its topic (h/# to k/#), then removes it: messages flow as configured; clients stay connected', async () => {
    const remote = await startMosquitto({ verbose: true });
    const file = join(dir, 'hup.conf');
    writeFileSync(file, 'allow_anonymous true\nsys_interval 1\n');
    const local = await startMidge({ verbose: true, args: ['-c', file] });
    const bystander = await subscribe(local, ['h/#'], { qos: 1 });
    const rsub = await subscribe(remote, ['h/#', 'k/#'], { qos: 1 });
    writeFileSync(file, ['allow_anonymous true', 'sys_interval 1', 'connection hup', `address 127.0.0.1:${remote.port}`, 'remote_clientid edge-hup',
      'restart_timeout 1', 'topic h/# out 1'].join('\n'));
    local.kill('SIGHUP');
    await until('bridge added', 10_000, () => logLines(local, /Bridge hup connected to/).length === 1);
    await until('local subscription', 5000, () => logLines(local, /local\.edge-hup 1 h\/#/).length === 1);
    await publish(local, 'h/1', 'one');
    assert.deepEqual(await rsub.waitForLines(1, 5000), ['1 0 h/1 one']);
    // the bridge's counters in $SYS (sys_interval 1)
    await until('$SYS counters', 5000, async () => (await retained(local, '$SYS/broker/bridge/hup/messages/sent')) === '1');
    assert.equal(await retained(local, '$SYS/broker/bridge/hup/state'), 'connected');
    const conf = (topic: string): string => ['allow_anonymous true', 'sys_interval 1', 'connection hup', `address 127.0.0.1:${remote.port}`,
      'remote_clientid edge-hup', 'restart_timeout 1', `topic ${topic} out 1`].join('\n');
    writeFileSync(file, conf('k/#'));
    local.kill('SIGHUP');
    await until('bridge restarted', 10_000, () => logLines(local, /Bridge hup connected to/).length === 2);
    assert.equal(logLines(local, /Bridge hup changed in the configuration: restarting it\./).length, 1);
    await until('new local subscription', 5000, () => logLines(local, /local\.edge-hup 1 k\/#/).length === 1);
    await publish(local, 'h/3', 'no-longer');
    await publish(local, 'k/1', 'now');
    assert.deepEqual(await rsub.waitForLines(2, 5000), ['1 0 h/1 one', '1 0 k/1 now'], 'the old topic stopped, the new one crosses');
    writeFileSync(file, 'allow_anonymous true\n');
    local.kill('SIGHUP');
    await until('bridge removed', 10_000, () => logLines(local, /Bridge hup stopped\./).length === 1);
    await publish(local, 'h/2', 'two');
    await bystander.waitForLines(3, 5000);
    await sleep(1000);
    assert.deepEqual(rsub.lines, ['1 0 h/1 one', '1 0 k/1 now'], 'nothing crosses once the bridge is gone');
    assert.equal(await retained(remote, '$SYS/broker/connection/edge-hup/state'), '0');
    assert.equal(await retained(local, '$SYS/broker/bridge/hup/state'), undefined, 'its $SYS topics are cleared');
    assert.deepEqual(bystander.lines, ['1 0 h/1 one', '1 0 h/3 no-longer', '1 0 h/2 two'], 'the local subscriber stayed connected through the reloads');
    bystander.kill();
    rsub.kill();
  });
});
