/**
 * Midge bridging to Debian's mosquitto as the remote broker: directions, prefixes and QoS, notifications and
 * their will, the remote going away mid-stream (queued in order, restart backoff), several addresses with
 * and without round robin, TLS with a client certificate, and an address that does not resolve.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMidge, startMosquitto, stopAllBrokers, type BrokerProcess } from '../helpers/broker-process.js';
import { freePort } from '../helpers/ports.js';
import { killAll, run } from '../helpers/proc.js';
import { makePki, type Pki } from '../security/_pki.js';
import { logLines, publish, publishLines, retained, sleep, subscribe, until } from './_helpers.js';

const dirs: string[] = [];
let pki: Pki | undefined;
after(async () => {
  await stopAllBrokers();
  await killAll();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  pki?.remove();
});

function bridgeConf(remotePort: number | string, lines: string[], name = 'r'): string {
  return [`connection ${name}`, `address 127.0.0.1:${remotePort}`, `remote_clientid edge-${name}`, ...lines].join('\n');
}

async function connected(local: BrokerProcess, name: string, n = 1, ms = 10_000): Promise<void> {
  await until(`bridge ${name} connected ${n} time(s)`, ms, () => logLines(local, new RegExp(`Bridge ${name} connected to`)).length >= n);
}

describe('Midge → mosquitto', { timeout: 120_000 }, () => {
  test('out, in and both with prefixes at QoS 0, 1 and 2 (checked with mosquitto_sub/mosquitto_pub on each side), no echo', async () => {
    const remote = await startMosquitto({ verbose: true });
    const local = await startMidge({
      verbose: true,
      config: bridgeConf(remote.port, [
        'restart_timeout 1',
        'topic out0/# out 0 L/ R/', 'topic out1/# out 1 L/ R/', 'topic out2/# out 2 L/ R/',
        'topic in0/# in 0 L/ R/', 'topic in1/# in 1 L/ R/', 'topic in2/# in 2 L/ R/',
        'topic both/# both 2 "" remote/',
      ]),
    });
    await connected(local, 'r');
    const rsub = await subscribe(remote, ['R/#', 'remote/#']);
    const lsub = await subscribe(local, ['L/#', 'both/#']);
    for (const q of [0, 1, 2]) await publish(local, `L/out${q}/a`, `o${q}`, 2);
    await publish(local, 'both/x', 'bx', 2);
    for (const q of [0, 1, 2]) await publish(remote, `R/in${q}/a`, `i${q}`, 2);
    await publish(remote, 'remote/both/y', 'by', 2);
    const r = await rsub.waitForLines(8, 10_000);
    const l = await lsub.waitForLines(8, 10_000);
    await sleep(1000); // an echo would come now
    rsub.kill();
    lsub.kill();
    // the QoS a message crosses with is the lower of its own and the topic line's
    assert.deepEqual(new Set(rsub.lines), new Set(['0 0 R/out0/a o0', '1 0 R/out1/a o1', '2 0 R/out2/a o2', '2 0 remote/both/x bx',
      '2 0 R/in0/a i0', '2 0 R/in1/a i1', '2 0 R/in2/a i2', '2 0 remote/both/y by']), `remote saw:\n${r.join('\n')}`);
    assert.deepEqual(new Set(lsub.lines), new Set(['2 0 L/out0/a o0', '2 0 L/out1/a o1', '2 0 L/out2/a o2', '2 0 both/x bx',
      '0 0 L/in0/a i0', '1 0 L/in1/a i1', '2 0 L/in2/a i2', '2 0 both/y by']), `local saw:\n${l.join('\n')}`);
    assert.equal(rsub.lines.length, 8, 'nothing came back to the remote');
    assert.equal(lsub.lines.length, 8, 'nothing came back to the local broker');
    await local.stop();
    await remote.stop();
  });

  test('notifications: "1" retained on the remote and the local broker; the will sets "0" when the bridge dies (SIGKILL)', async () => {
    const remote = await startMosquitto({ verbose: true });
    const local = await startMidge({ verbose: true, config: bridgeConf(remote.port, ['topic n/# out 1', 'keepalive_interval 5']) });
    await connected(local, 'r');
    await until('the remote state 1', 5000, async () => (await retained(remote, '$SYS/broker/connection/edge-r/state')) === '1');
    assert.equal(await retained(local, '$SYS/broker/connection/edge-r/state'), '1');
    local.kill('SIGKILL');
    await until('the will on the remote', 10_000, async () => (await retained(remote, '$SYS/broker/connection/edge-r/state')) === '0');
    await local.stop();
    await remote.stop();
  });

  test('the remote stopped and restarted mid-stream: QoS 1 messages queue locally and arrive in order; restart_timeout 1 4 backs off', async () => {
    const data = mkdtempSync(join(tmpdir(), 'midge-bridge-remote-'));
    dirs.push(data);
    chmodSync(data, 0o777); // mosquitto started as root drops to its own user
    const port = await freePort();
    const remoteConf = `persistence true\npersistence_location ${data}/\n`;
    let remote = await startMosquitto({ verbose: true, port, config: remoteConf });
    const rsub1 = await subscribe(remote, ['R/#'], { qos: 1, id: 'far-sub', clean: false });
    const local = await startMidge({ verbose: true, config: bridgeConf(port, ['restart_timeout 1 4', 'topic s/# out 1 L/ R/']) });
    await connected(local, 'r');
    const first = Array.from({ length: 5 }, (_, i) => `m${i + 1}`);
    await publishLines(local, 'L/s/x', first);
    await rsub1.waitForLines(5, 10_000);
    rsub1.kill();
    await sleep(300);
    await remote.stop();
    const downAt = Math.round(performance.now());
    const second = Array.from({ length: 20 }, (_, i) => `m${i + 6}`);
    await publishLines(local, 'L/s/x', second); // acknowledged by the local broker while the remote is away
    await until('three failed attempts', 20_000, () => logLines(local, /Bridge r restarting in \d+ s/).length >= 4);
    remote = await startMosquitto({ verbose: true, port, config: remoteConf });
    await connected(local, 'r', 2, 15_000);
    const rsub2 = await subscribe(remote, ['R/#'], { qos: 1, id: 'far-sub', clean: false });
    const got = await rsub2.waitForLines(20, 10_000);
    await sleep(500);
    rsub2.kill();
    assert.deepEqual(got.map((l) => l.split(' ').pop()), second, 'every message, once, in order');
    assert.equal(rsub2.lines.length, 20);
    // the backoff: the first delay is the base, none above the cap, and the attempts are spread over time
    const delays = logLines(local, /Bridge r restarting in \d+ s/).map((l) => Number(/in (\d+) s/.exec(l)![1]));
    assert.equal(delays[0], 1);
    assert.ok(delays.every((d) => d >= 1 && d <= 4), delays.join(','));
    assert.ok(Math.round(performance.now()) - downAt >= delays.slice(0, 3).reduce((a, b) => a + b, 0) * 1000, 'the attempts waited their delays');
    assert.ok(logLines(local, /Error creating bridge: Connection refused\./).length >= 3, local.logs());
    await local.stop();
    await remote.stop();
  });

  for (const roundRobin of [false, true]) {
    test(`addresses with two remotes, round_robin ${roundRobin}: failover to the second${roundRobin ? ', and it stays there' : ' and back to the first'}`, async () => {
      const portA = await freePort();
      let a = await startMosquitto({ verbose: true, port: portA });
      const b = await startMosquitto({ verbose: true });
      const local = await startMidge({
        verbose: true,
        config: ['connection rr', `addresses 127.0.0.1:${portA} 127.0.0.1:${b.port}`, `round_robin ${roundRobin}`,
          'remote_clientid edge-rr', 'restart_timeout 1', 'topic f/# out 1'].join('\n'),
      });
      await until('connected to A', 10_000, () => logLines(local, new RegExp(`Bridge rr connected to 127.0.0.1:${portA}`)).length === 1);
      await a.stop();
      await until('connected to B', 15_000, () => logLines(local, new RegExp(`Bridge rr connected to 127.0.0.1:${b.port}`)).length === 1);
      const bsub = await subscribe(b, ['f/#'], { qos: 1 });
      await publish(local, 'f/1', 'on-b');
      assert.deepEqual(await bsub.waitForLines(1, 5000), ['1 0 f/1 on-b']);
      bsub.kill();
      a = await startMosquitto({ verbose: true, port: portA });
      const asub = await subscribe(a, ['f/#'], { qos: 1 });
      if (!roundRobin) {
        await until('back on A', 15_000, () => logLines(local, new RegExp(`Bridge rr connected to 127.0.0.1:${portA}`)).length === 2);
        assert.ok(logLines(local, /the main address .* is back/).length === 1);
        await publish(local, 'f/2', 'on-a');
        assert.deepEqual(await asub.waitForLines(1, 5000), ['1 0 f/2 on-a']);
      } else {
        await sleep(7000); // longer than the 5 s main-address probe of round_robin false
        assert.equal(logLines(local, new RegExp(`Bridge rr connected to 127.0.0.1:${portA}`)).length, 1, 'stays on B');
        assert.equal(asub.lines.length, 0);
      }
      asub.kill();
      await local.stop();
      await a.stop();
      await b.stop();
    });
  }

  test('TLS bridge with a client certificate to a mosquitto TLS listener that requires one', async () => {
    pki = await makePki();
    const port = await freePort();
    const remote = await startMosquitto({
      verbose: true, port,
      config: [`listener ${port} 127.0.0.1`, `cafile ${pki.ca}`, `certfile ${pki.serverCert}`, `keyfile ${pki.serverKey}`,
        'require_certificate true', 'use_identity_as_username true', 'allow_anonymous false'].join('\n'),
    });
    const local = await startMidge({
      verbose: true,
      config: bridgeConf(port, [`bridge_cafile ${pki.ca}`, `bridge_certfile ${pki.clientCert}`, `bridge_keyfile ${pki.clientKey}`,
        'restart_timeout 1', 'topic t/# both 1 L/ R/']),
    });
    await connected(local, 'r');
    assert.match(remote.logs(), /New bridge connected from 127\.0\.0\.1:\d+ as edge-r \(p2, c0, k60, u'client1'\)/);
    const lsub = await subscribe(local, ['L/#'], { qos: 1 });
    // the far side over TLS too: mosquitto_pub with the client certificate
    const r = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '--cafile', pki.ca, '--cert', pki.clientCert,
      '--key', pki.clientKey, '-t', 'R/t/1', '-m', 'over-tls', '-q', '1'], { timeoutMs: 5000 });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await lsub.waitForLines(1, 5000), ['1 0 L/t/1 over-tls']);
    lsub.kill();
    await local.stop();
    await remote.stop();
  });

  test('an address that does not resolve (no-such-host.invalid): logged at run time, retried, and the broker keeps serving', async () => {
    const local = await startMidge({ verbose: true, config: ['connection ghost', 'address no-such-host.invalid:1883', 'restart_timeout 1', 'topic g/# out 1'].join('\n') });
    await until('two failed attempts', 15_000, () => logLines(local, /Error creating bridge: Unable to resolve the address/).length >= 2);
    const sub = await subscribe(local, ['g/#'], { qos: 1 });
    await publish(local, 'g/1', 'still-here');
    assert.deepEqual(await sub.waitForLines(1, 5000), ['1 0 g/1 still-here']);
    sub.kill();
    await local.stop();
  });
});
