/**
 * start_type lazy (connect at `threshold` queued messages, stop after `idle_timeout`) and once (no restart).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startMidge, startMosquitto, stopAllBrokers } from '../helpers/broker-process.js';
import { freePort } from '../helpers/ports.js';
import { killAll } from '../helpers/proc.js';
import { logLines, publish, retained, sleep, subscribe, until } from './_helpers.js';

after(async () => {
  await stopAllBrokers();
  await killAll();
});

describe('start types and limits', { timeout: 60_000 }, () => {
  test('lazy, threshold 3, idle_timeout 2: no connection for 2 queued messages, connects at the 3rd and delivers them in order, stops when idle', async () => {
    const remote = await startMosquitto({ verbose: true });
    const rsub = await subscribe(remote, ['z/#'], { qos: 1 });
    const local = await startMidge({
      verbose: true,
      config: ['connection lz', `address 127.0.0.1:${remote.port}`, 'remote_clientid edge-lz', 'start_type lazy', 'threshold 3',
        'idle_timeout 2', 'topic z/# out 1'].join('\n'),
    });
    await until('local subscription', 5000, () => logLines(local, /local\.edge-lz 1 z\/#/).length === 1);
    await publish(local, 'z/1', 'one');
    await publish(local, 'z/2', 'two');
    await sleep(2500);
    assert.equal(logLines(local, /Connecting bridge lz/).length, 0, 'below the threshold: not started');
    await publish(local, 'z/3', 'three');
    assert.deepEqual(await rsub.waitForLines(3, 5000), ['1 0 z/1 one', '1 0 z/2 two', '1 0 z/3 three']);
    await until('idle stop', 8000, () => logLines(local, /Bridge lz idle for 2 s: stopping it/).length === 1);
    assert.equal(await retained(remote, '$SYS/broker/connection/edge-lz/state'), '0', 'stopping says 0 on the remote');
    rsub.kill();
    await local.stop();
    await remote.stop();
  });

  test('once: a refused first connection is not retried (nothing listens on the port)', async () => {
    const port = await freePort();
    const local = await startMidge({
      verbose: true,
      config: ['connection one', `address 127.0.0.1:${port}`, 'start_type once', 'restart_timeout 1', 'topic o/# out 1'].join('\n'),
    });
    await until('the failure', 5000, () => logLines(local, /Error creating bridge: Connection refused\./).length === 1);
    await sleep(2500);
    assert.equal(logLines(local, /Connecting bridge one/).length, 1, 'one attempt only');
    assert.equal(logLines(local, /Bridge one has start_type once: not restarting\./).length, 1);
    await local.stop();
  });

  test('bridge_max_packet_size 100 (3.1.1 remote): a 200-byte message is dropped with a warning, the next small one crosses', async () => {
    const remote = await startMosquitto({ verbose: true });
    const rsub = await subscribe(remote, ['mp/#'], { qos: 1 });
    const local = await startMidge({
      verbose: true,
      config: ['connection mp', `address 127.0.0.1:${remote.port}`, 'bridge_max_packet_size 100', 'topic mp/# out 1'].join('\n'),
    });
    await until('bridge up', 10_000, () => logLines(local, /Bridge mp connected to/).length === 1);
    await publish(local, 'mp/big', 'x'.repeat(200));
    await publish(local, 'mp/small', 'fits');
    assert.deepEqual(await rsub.waitForLines(1, 5000), ['1 0 mp/small fits']);
    await sleep(500);
    assert.equal(rsub.lines.length, 1);
    assert.equal(logLines(local, /a message on 'mp\/big' is over bridge_max_packet_size 100; dropped\./).length, 1);
    rsub.kill();
    await local.stop();
    await remote.stop();
  });
});
