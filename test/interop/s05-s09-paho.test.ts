/**
 * Walkthrough S5–S9: its Python scripts (paho-mqtt 1.6.1, Debian's /usr/bin/python3 -u), verbatim but for
 * the port and, where the walkthrough would wait for a 60 s keepalive, keepalive=2. Subscribers that only
 * watch are mosquitto_sub. Broker under test chosen by MIDGE_TEST_BROKER=midge|mosquitto.
 */
import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import { brokerKind, startBroker, stopAllBrokers } from '../helpers/broker-process.js';
import { killAll, run, spawnLines, type LineProcess } from '../helpers/proc.js';
import { mosquittoPub, python, pythonLines, ScriptDir, scripts, sleep, untilSubscribed, withoutMarkers } from './walkthrough.js';

const T = { timeout: 20_000 };
const KEEPALIVE = 2;
const dir = new ScriptDir();

afterEach(async () => {
  await stopAllBrokers();
  await killAll();
});
after(() => dir.remove());

/** The three lines the walkthrough's on_message prints for the message whose payload is `payload`. */
async function printedMessage(sub: LineProcess, payload: string, from = 0): Promise<string[]> {
  const line = await sub.waitForLine(new RegExp(`^payload: b'${payload}'$`), 3000, from);
  const i = sub.lines.indexOf(line, from);
  await sub.waitForLines(i + 2, 3000);
  return sub.lines.slice(i - 1, i + 2);
}

/** mosquitto_sub -t test, shown to be subscribed. */
async function watcher(port: number): Promise<LineProcess> {
  const sub = spawnLines('mosquitto_sub', ['-p', String(port), '-t', 'test']);
  await untilSubscribed(port, sub);
  return sub;
}

function assertPublished(r: { code: number | null; stdout: string; stderr: string }): void {
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'rc: 0\nmid: 1\n');
}

describe('S5: paho subscriber and publisher', () => {
  test('client03 prints topic, payload and QoS of what client04 publishes; client04 prints rc: 0 and mid: 1', T, async () => {
    const broker = await startBroker();
    const sub = pythonLines(dir.write(scripts.subscriber, broker.port));
    await untilSubscribed(broker.port, sub);
    const from = sub.lines.length;

    assertPublished(await python(dir.write(scripts.publisher, broker.port)));
    assert.deepEqual(await printedMessage(sub, 'abc', from), ['topic: test', "payload: b'abc'", 'qos: 1']);
  });

  test('client03 (clean_session=False) gets on restart each QoS 1 message client04 published while it was stopped', T, async () => {
    const broker = await startBroker();
    const subScript = dir.write(scripts.subscriber, broker.port);
    const first = pythonLines(subScript);
    await untilSubscribed(broker.port, first);
    first.kill('SIGKILL');
    await first.exited;

    const pubScript = dir.write(scripts.publisher, broker.port);
    assertPublished(await python(pubScript));
    assertPublished(await python(pubScript));

    const again = pythonLines(subScript);
    await again.waitForLines(6, 3000);
    await untilSubscribed(broker.port, again);
    const messages = again.lines.filter((l) => !/ready-\d+|^topic: |^qos: 0$/.test(l));
    assert.deepEqual(messages, ["payload: b'abc'", 'qos: 1', "payload: b'abc'", 'qos: 1'], again.lines.join('\n'));
  });
});

describe('S6: retained messages', () => {
  test('after mosquitto_pub -t test -m retain -r, a new subscriber gets the message at once, flagged retained', T, async () => {
    const broker = await startBroker();
    await mosquittoPub(broker.port, ['-t', 'test', '-m', 'retain', '-r']);
    const started = Math.round(performance.now());
    const r = await run('mosquitto_sub', ['-p', String(broker.port), '-t', 'test', '-C', '1', '-F', '%r %p'], { timeoutMs: 3000 });
    assert.equal(r.stdout, '1 retain\n', r.stderr);
    assert.ok(Math.round(performance.now()) - started < 1500, `took ${Math.round(performance.now()) - started} ms`);
  });

  test('paho publish(retain=True) reaches an existing subscriber when published and replaces what a new one gets at once', T, async () => {
    const broker = await startBroker();
    const port = String(broker.port);
    await mosquittoPub(broker.port, ['-t', 'test', '-m', 'retain', '-r']);
    const existing = spawnLines('mosquitto_sub', ['-p', port, '-t', 'test', '-F', '%r %p']);
    assert.equal(await existing.waitForLine(/./, 3000), '1 retain', 'the retained message on subscribing');

    assertPublished(await python(dir.write(scripts.retain, broker.port)));
    // [MQTT-3.3.1-9]: to an established subscription the RETAIN flag is 0.
    assert.equal(await existing.waitForLine(/retain message/, 3000), '0 retain message');

    const r = await run('mosquitto_sub', ['-p', port, '-t', 'test', '-C', '1', '-F', '%r %p'], { timeoutMs: 3000 });
    assert.equal(r.stdout, '1 retain message\n', r.stderr);
    assert.deepEqual(withoutMarkers(existing.lines), ['1 retain', '0 retain message']);
  });
});

describe('S7: a will is not sent after disconnect()', () => {
  // The script never reads its CONNACK, and paho closes the socket right after writing the DISCONNECT. With
  // the CONNACK unread, Linux answers close() with a RST and may drop the DISCONNECT before it leaves, so
  // the broker sees a lost connection and rightly sends the will (mosquitto and midge alike: about a third
  // of runs under load). Only a run in which the broker logged the DISCONNECT tests S7, so try up to 8.
  test('will_set then disconnect(): the subscriber gets abc, then no will within 2 s, then a later message', { timeout: 30_000 }, async (t) => {
    for (let attempt = 1; attempt <= 8; attempt++) {
      const broker = await startBroker({ verbose: true });
      const sub = await watcher(broker.port);
      assertPublished(await python(dir.write(scripts.willThenDisconnect, broker.port)));
      await sub.waitForLine(/^abc$/, 3000);
      const received = await broker.waitForLog(/Received DISCONNECT from client04/, 500).then(
        () => true,
        () => false,
      );
      if (!received) {
        t.diagnostic(`run ${attempt}: the DISCONNECT did not reach the broker (RST), trying again`);
        await broker.stop();
        sub.kill();
        continue;
      }
      await sleep(2000);
      await mosquittoPub(broker.port, ['-t', 'test', '-m', 'marker']);
      await sub.waitForLine(/^marker$/, 3000);
      assert.deepEqual(withoutMarkers(sub.lines), ['abc', 'marker']);
      return;
    }
    assert.fail('in 8 runs the DISCONNECT never reached the broker');
  });
});

describe('S8: a will is sent when the connection drops without DISCONNECT', () => {
  test('the process ends without disconnect(): the will arrives within 1 s', T, async () => {
    const broker = await startBroker();
    const sub = await watcher(broker.port);
    assertPublished(await python(dir.write(scripts.willNoDisconnect, broker.port)));
    await sub.waitForLine(/^will$/, 1000);
    assert.deepEqual(withoutMarkers(sub.lines), ['abc', 'will']);
  });

  test('the process (keepalive=300, publishing every 60 s) is killed with SIGKILL: the will arrives within 1 s', T, async () => {
    const broker = await startBroker();
    const sub = await watcher(broker.port);
    const py = pythonLines(dir.write(scripts.willPeriodic, broker.port));
    assert.deepEqual(await py.waitForLines(2, 3000), ['rc: 0', 'mid: 1']);
    await sub.waitForLine(/^message 1$/, 3000);
    await sleep(300);
    assert.ok(!sub.lines.includes('will message'), 'no will while the client is connected');
    py.kill('SIGKILL');
    await sub.waitForLine(/^will message$/, 1000);
    assert.deepEqual(withoutMarkers(sub.lines), ['message 1', 'will message']);
  });

  test(`the process is stopped (SIGSTOP) with keepalive=${KEEPALIVE}: the will arrives after about 1.5 × keepalive`, T, async () => {
    const broker = await startBroker();
    const sub = await watcher(broker.port);
    const py = pythonLines(dir.write(scripts.willLoopForever, broker.port, KEEPALIVE));
    assert.deepEqual(await py.waitForLines(2, 3000), ['rc: 0', 'mid: 1']);
    await sub.waitForLine(/^abc$/, 3000);
    py.kill('SIGSTOP');
    const stopped = Math.round(performance.now());
    await sub.waitForLine(/^will$/, 3 * KEEPALIVE * 1000 + 3000);
    const elapsed = (Math.round(performance.now()) - stopped) / 1000;
    py.kill('SIGKILL');
    assert.ok(elapsed >= 0.95 * KEEPALIVE, `the will came after ${elapsed} s, before the keepalive of ${KEEPALIVE} s ran out`);
    // [MQTT-3.1.2-24] asks for 1.5 × keepalive; mosquitto 2.0.11 takes 2.3–2.9 × (5–6 s for 2 s, 11 s for 4 s),
    // so it gets a wider bound: what it shows here is that the will does come, and not early.
    const latest = brokerKind === 'mosquitto' ? 3 * KEEPALIVE + 1 : 1.5 * KEEPALIVE + 1.5;
    assert.ok(elapsed <= latest, `the will came after ${elapsed} s, later than ${latest} s (keepalive ${KEEPALIVE} s)`);
    assert.deepEqual(withoutMarkers(sub.lines), ['abc', 'will']);
  });
});

describe('S9: a client in loop_forever() keeps its connection', () => {
  test(`with keepalive=${KEEPALIVE} it stays idle for 7 s without its will being sent; killed, its will arrives within 1 s`, T, async () => {
    const broker = await startBroker();
    const sub = await watcher(broker.port);
    const py = pythonLines(dir.write(scripts.willLoopForever, broker.port, KEEPALIVE));
    assert.deepEqual(await py.waitForLines(2, 3000), ['rc: 0', 'mid: 1']);
    await sub.waitForLine(/^abc$/, 3000);
    await sleep(7000);
    assert.deepEqual(withoutMarkers(sub.lines), ['abc'], 'no will while loop_forever() answers keepalive');
    assert.deepEqual(py.lines, ['rc: 0', 'mid: 1'], 'the script is still in loop_forever()');
    py.kill('SIGKILL');
    await sub.waitForLine(/^will$/, 1000);
    assert.deepEqual(withoutMarkers(sub.lines), ['abc', 'will']);
  });
});
