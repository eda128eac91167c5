/** The test helpers themselves: bounded waits, failures that say why, nothing left running. */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { afterEach, describe, test } from 'node:test';
import { startBroker, stopAllBrokers } from './broker-process.js';
import { closeAllClients, collect, connect, expectNoMessage } from './mqttjs.js';
import { accepts, freePort, isPortFree } from './ports.js';
import { killAll, run, spawnLines } from './proc.js';

const T = { timeout: 15_000 };

afterEach(async () => {
  await closeAllClients();
  await stopAllBrokers();
  await killAll();
});

describe('ports', () => {
  test('freePort returns a port that can be listened on, and isPortFree / accepts tell its state', T, async () => {
    const port = await freePort();
    assert.equal(await isPortFree(port), true);
    assert.equal(await accepts(port), false);
    const server = createServer().listen(port, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      assert.equal(await isPortFree(port), false);
      assert.equal(await accepts(port), true);
    } finally {
      server.close();
    }
  });
});

describe('proc', () => {
  test('run passes stdin and returns exit code, stdout and stderr', T, async () => {
    const r = await run('sh', ['-c', 'cat; echo err >&2; exit 3'], { timeoutMs: 3000, input: 'in\n' });
    assert.deepEqual(r, { code: 3, signal: null, stdout: 'in\n', stderr: 'err\n' });
  });

  test('run rejects after its timeout and kills the command', T, async () => {
    const started = Math.round(performance.now());
    await assert.rejects(run('sleep', ['10'], { timeoutMs: 200 }), /no exit within 200 ms/);
    assert.ok(Math.round(performance.now()) - started < 1000);
  });

  test('spawnLines gives lines as they arrive and fails at once when the process exits short of them', T, async () => {
    const p = spawnLines('sh', ['-c', 'echo a; sleep 0.2; printf b']);
    assert.deepEqual(await p.waitForLines(1, 2000), ['a']);
    assert.deepEqual(await p.waitForLines(2, 2000), ['a', 'b'], 'the last, unterminated line too');
    const started = Math.round(performance.now());
    await assert.rejects(p.waitForLines(3, 5000), /the process exited/);
    assert.ok(Math.round(performance.now()) - started < 1000, 'did not wait for the timeout');
    assert.deepEqual(await p.exited, { code: 0, signal: null });
  });
});

describe('broker-process', () => {
  test('startBroker resolves when the port accepts, and stop() frees it', T, async () => {
    const broker = await startBroker();
    assert.ok(broker.pid > 0);
    assert.equal(await accepts(broker.port), true);
    await broker.stop();
    assert.equal(await accepts(broker.port), false);
    await broker.stop(); // twice is harmless
  });

  test('a broker that cannot start makes startBroker throw with its logs', T, async () => {
    await assert.rejects(startBroker({ config: 'no_such_option 1\n' }), (err: Error) => {
      assert.match(err.message, /broker exited before accepting connections/);
      assert.match(err.message, /no_such_option/, 'the broker log is in the error');
      return true;
    });
  });

  test('waitForLog resolves with the matching line and rejects after its timeout', T, async () => {
    const broker = await startBroker({ verbose: true });
    assert.match(await broker.waitForLog(/listen socket on port/), new RegExp(`port ${broker.port}`));
    await assert.rejects(broker.waitForLog(/never logged/, 200), /timed out after 200 ms/);
  });

  test('stopAllBrokers stops every broker still running', T, async () => {
    const a = await startBroker();
    const b = await startBroker();
    await stopAllBrokers();
    assert.deepEqual([await accepts(a.port), await accepts(b.port)], [false, false]);
  });
});

describe('mqttjs', () => {
  test('collect also returns messages that arrived before it was called, and each only once', T, async () => {
    const broker = await startBroker();
    const pub = await connect(broker.port, { clientId: 'helpers-pub' });
    await pub.publishAsync('helpers/t', 'kept', { qos: 1, retain: true });
    const sub = await connect(broker.port, { clientId: 'helpers-sub' });
    await sub.subscribeAsync('helpers/t', { qos: 1 });
    await new Promise((r) => setTimeout(r, 200));
    const [m] = await collect(sub, 1);
    assert.deepEqual([m!.payload, m!.retain], ['kept', true]);
    await expectNoMessage(sub, 100);
    await assert.rejects(collect(sub, 1, 100), /waiting for 1 messages: timed out/);
  });

  test('connect rejects when nothing listens', T, async () => {
    await assert.rejects(connect(await freePort()), /connect to port \d+ as '' failed/);
  });
});
