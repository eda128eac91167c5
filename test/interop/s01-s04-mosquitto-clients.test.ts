/**
 * Walkthrough S1–S4 with Debian's mosquitto_pub / mosquitto_sub against the broker under test
 * (MIDGE_TEST_BROKER=midge|mosquitto). The clients' commands are the walkthrough's, plus `-p PORT`;
 * `-d` (client-side debug output) and `-F` (output format) are added where a test needs to see packets.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { brokerKind, MIDGE_MAIN, MOSQUITTO, startBroker, stopAllBrokers } from '../helpers/broker-process.js';
import { accepts, isPortFree } from '../helpers/ports.js';
import { killAll, run, spawnLines } from '../helpers/proc.js';
import { mosquittoPub, sleep, untilSubscribed, within, withoutMarkers } from './walkthrough.js';

const T = { timeout: 20_000 };
const port1883Free = await isPortFree(1883);

afterEach(async () => {
  await stopAllBrokers();
  await killAll();
});

/** Index of the first log line matching `re`, failing with the whole log when there is none. */
function lineIndex(lines: string[], re: RegExp): number {
  const i = lines.findIndex((l) => re.test(l));
  assert.notEqual(i, -1, `no log line matches ${String(re)}\n${lines.join('\n')}`);
  return i;
}

describe('S1: the broker started with -v logs every packet', () => {
  test('it logs the listening port, each client connecting, and one line per packet received and sent (QoS 1)', T, async () => {
    const broker = await startBroker({ verbose: true });
    const sub = spawnLines('mosquitto_sub', ['-p', String(broker.port), '-t', 'test', '-q', '1', '-i', 's1-sub']);
    await broker.waitForLog(/Sending SUBACK to s1-sub/);
    await mosquittoPub(broker.port, ['-t', 'test', '-m', 'abc', '-q', '1', '-i', 's1-pub']);
    await sub.waitForLine(/^abc$/);
    await broker.waitForLog(/Received PUBACK from s1-sub/);
    await broker.waitForLog(/Received DISCONNECT from s1-pub/);

    const lines = broker.logs().split('\n').filter((l) => l !== '');
    const now = Date.now() / 1000;
    for (const l of lines) {
      const m = /^(\d+): /.exec(l);
      assert.ok(m, `log line without a Unix-time prefix: ${JSON.stringify(l)}`);
      assert.ok(Math.abs(Number(m[1]) - now) < 120, `log time ${m[1]} is not now (${now})`);
    }
    lineIndex(lines, new RegExp(`^\\d+: Opening ipv4 listen socket on port ${broker.port}\\.$`));
    const connected = lineIndex(lines, /^\d+: New client connected from 127\.0\.0\.1:\d+ as s1-sub \(p2, c1, k60\)\.$/);
    const connack = lineIndex(lines, /^\d+: Sending CONNACK to s1-sub \(0, 0\)$/);
    const subscribe = lineIndex(lines, /^\d+: Received SUBSCRIBE from s1-sub$/);
    const suback = lineIndex(lines, /^\d+: Sending SUBACK to s1-sub$/);
    lineIndex(lines, /^\d+: New client connected from 127\.0\.0\.1:\d+ as s1-pub \(p2, c1, k60\)\.$/);
    const received = lineIndex(lines, /^\d+: Received PUBLISH from s1-pub \(d0, q1, r0, m1, 'test', \.\.\. \(3 bytes\)\)$/);
    const sent = lineIndex(lines, /^\d+: Sending PUBLISH to s1-sub \(d0, q1, r0, m\d+, 'test', \.\.\. \(3 bytes\)\)$/);
    const puback = lineIndex(lines, /^\d+: Sending PUBACK to s1-pub \(m1, rc0\)$/);
    const subPuback = lineIndex(lines, /^\d+: Received PUBACK from s1-sub \(Mid: \d+, RC:0\)$/);
    const disconnect = lineIndex(lines, /^\d+: Received DISCONNECT from s1-pub$/);
    // mosquitto logs 'New client connected' before 'Sending CONNACK', midge after it: either is fine.
    assert.ok(connected < subscribe && connack < subscribe && subscribe < suback && suback < received);
    assert.ok(received < sent && sent < subPuback && received < puback && puback < disconnect);
    assert.equal(lines.filter((l) => /Received PUBLISH from s1-pub/.test(l)).length, 1, 'one line per packet');
    assert.equal(lines.filter((l) => /Sending PUBLISH to s1-sub/.test(l)).length, 1, 'one line per packet');
  });

  test('it logs the four packets of a QoS 2 exchange on both sides', T, async () => {
    const broker = await startBroker({ verbose: true });
    const sub = spawnLines('mosquitto_sub', ['-p', String(broker.port), '-t', 'test', '-q', '2', '-i', 's1-sub']);
    await broker.waitForLog(/Sending SUBACK to s1-sub/);
    await mosquittoPub(broker.port, ['-t', 'test', '-m', 'abc', '-q', '2', '-i', 's1-pub']);
    await sub.waitForLine(/^abc$/);
    await broker.waitForLog(/Received PUBCOMP from s1-sub/);

    const lines = broker.logs().split('\n');
    const inPublish = lineIndex(lines, /^\d+: Received PUBLISH from s1-pub \(d0, q2, r0, m1, 'test', \.\.\. \(3 bytes\)\)$/);
    const pubrec = lineIndex(lines, /^\d+: Sending PUBREC to s1-pub \(m1, rc0\)$/);
    const pubrel = lineIndex(lines, /^\d+: Received PUBREL from s1-pub \(Mid: 1\)$/);
    const pubcomp = lineIndex(lines, /^\d+: Sending PUBCOMP to s1-pub \(m1\)$/);
    const outPublish = lineIndex(lines, /^\d+: Sending PUBLISH to s1-sub \(d0, q2, r0, m(\d+), 'test', \.\.\. \(3 bytes\)\)$/);
    const subPubrec = lineIndex(lines, /^\d+: Received PUBREC from s1-sub \(Mid: \d+\)$/);
    const subPubrel = lineIndex(lines, /^\d+: Sending PUBREL to s1-sub \(m\d+\)$/);
    const subPubcomp = lineIndex(lines, /^\d+: Received PUBCOMP from s1-sub \(Mid: \d+, RC:0\)$/);
    assert.ok(inPublish < pubrec && pubrec < pubrel && pubrel < pubcomp);
    assert.ok(inPublish < outPublish && outPublish < subPubrec && subPubrec < subPubrel && subPubrel < subPubcomp);
  });

  test('without a port it listens on 1883, where mosquitto_sub -t test and mosquitto_pub -t test -m abc meet', {
    ...T,
    skip: port1883Free ? false : 'port 1883 is in use on this machine',
  }, async () => {
    const broker =
      brokerKind === 'mosquitto' ? spawnLines(MOSQUITTO, ['-v']) : spawnLines(process.execPath, [MIDGE_MAIN, 'broker', '-v']);
    const deadline = Math.round(performance.now()) + 10_000;
    while (!(await accepts(1883))) {
      assert.ok(Math.round(performance.now()) < deadline, `nothing listens on 1883\n${broker.stderr()}`);
      await sleep(50);
    }
    const sub = spawnLines('mosquitto_sub', ['-t', 'test']);
    await untilSubscribed(1883, sub);
    const from = sub.lines.length;
    await mosquittoPub(1883, ['-t', 'test', '-m', 'abc']);
    assert.equal(await sub.waitForLine(/./, 3000, from), 'abc');
    assert.match(broker.stderr(), /Opening ipv4 listen socket on port 1883\./);
    sub.kill('SIGTERM');
    await within(sub.exited, 3000, 'mosquitto_sub stopping');
    broker.kill('SIGTERM');
    await within(broker.exited, 3000, 'the broker stopping on SIGTERM');
  });
});

describe('the broker process', () => {
  test('SIGTERM stops it within 2 s while a client is connected', T, async () => {
    const broker = await startBroker();
    const sub = spawnLines('mosquitto_sub', ['-p', String(broker.port), '-t', 'test', '-q', '1', '-i', 'sigterm-sub']);
    await untilSubscribed(broker.port, sub);
    const started = Math.round(performance.now());
    await broker.stop(); // SIGTERM, then SIGKILL after 3 s
    const took = Math.round(performance.now()) - started;
    assert.ok(took < 2000, `the broker took ${took} ms to exit on SIGTERM`);
  });
});

describe('S2: mosquitto_sub and mosquitto_pub', () => {
  test('mosquitto_sub -t test prints abc after mosquitto_pub -t test -m abc', T, async () => {
    const broker = await startBroker();
    const sub = spawnLines('mosquitto_sub', ['-p', String(broker.port), '-t', 'test']);
    await untilSubscribed(broker.port, sub);
    const from = sub.lines.length;
    await mosquittoPub(broker.port, ['-t', 'test', '-m', 'abc']);
    assert.equal(await sub.waitForLine(/./, 3000, from), 'abc');
    await sleep(200);
    assert.deepEqual(sub.lines.slice(from), ['abc'], 'printed once, nothing else');
  });
});

describe('S3: QoS 0, 1 and 2 on both sides; the effective QoS is the lower one', () => {
  // The flows as mosquitto_pub / mosquitto_sub -d print them (the client's own view of the packets).
  const publisherFlow: Record<number, RegExp[]> = {
    0: [],
    1: [/received PUBACK/],
    2: [/received PUBREC/, /sending PUBREL/, /received PUBCOMP/],
  };
  const subscriberFlow: Record<number, RegExp[]> = {
    0: [],
    1: [/sending PUBACK/],
    2: [/sending PUBREC/, /received PUBREL/, /sending PUBCOMP/],
  };
  const acks = /PUBACK|PUBREC|PUBREL|PUBCOMP/;

  for (const pubQos of [0, 1, 2]) {
    for (const subQos of [0, 1, 2]) {
      const effective = Math.min(pubQos, subQos);
      test(`a QoS ${pubQos} publish to a QoS ${subQos} subscription arrives once at QoS ${effective}`, T, async () => {
        const broker = await startBroker();
        const port = String(broker.port);
        const payload = `pub${pubQos}-sub${subQos}`;
        // mosquitto_sub flushes stdout per message, not after its -d lines: stdbuf makes it flush per line.
        const subArgs = ['-p', port, '-t', 'test', '-q', String(subQos), '-d', '-F', '%q %p', '-C', '1'];
        const sub = spawnLines('stdbuf', ['-oL', 'mosquitto_sub', ...subArgs]);
        const granted = await sub.waitForLine(/^Subscribed \(mid: \d+\): \d+$/);
        assert.match(granted, new RegExp(`: ${subQos}$`), 'SUBACK grants the requested QoS');

        const pub = await mosquittoPub(broker.port, ['-t', 'test', '-m', payload, '-q', String(pubQos), '-d']);
        const pubLines = pub.stdout.split('\n');
        assert.ok(pubLines.some((l) => l.includes(`sending PUBLISH (d0, q${pubQos}, r0,`)), pub.stdout);
        const pubAcks = pubLines.filter((l) => acks.test(l));
        assert.equal(pubAcks.length, publisherFlow[pubQos]!.length, `publisher acks: ${pub.stdout}`);
        publisherFlow[pubQos]!.forEach((re, i) => assert.match(pubAcks[i]!, re));

        await sub.waitForLine(new RegExp(`^${effective} ${payload}$`));
        const exit = await within(sub.exited, 3000, 'mosquitto_sub -C 1 exiting');
        assert.equal(exit.code, 0, sub.stderr());
        const publishes = sub.lines.filter((l) => /received PUBLISH/.test(l));
        assert.equal(publishes.length, 1, sub.lines.join('\n'));
        assert.match(publishes[0]!, new RegExp(`received PUBLISH \\(d0, q${effective}, r0, m\\d+, 'test', \\.\\.\\. \\(${payload.length} bytes\\)\\)`));
        const subAcks = sub.lines.filter((l) => acks.test(l));
        assert.equal(subAcks.length, subscriberFlow[effective]!.length, `subscriber acks: ${sub.lines.join('\n')}`);
        subscriberFlow[effective]!.forEach((re, i) => assert.match(subAcks[i]!, re));
      });
    }
  }
});

describe('S4: durable subscription (mosquitto_sub -c)', () => {
  for (const qos of ['1', '2']) {
    test(`every QoS ${qos} message published while mosquitto_sub -q ${qos} -i client01 -c was away arrives on reconnect, in order`, T, async () => {
      const broker = await startBroker();
      const port = String(broker.port);
      const subArgs = ['-p', port, '-t', 'test', '-q', qos, '-i', 'client01', '-c'];
      const first = spawnLines('mosquitto_sub', subArgs);
      await untilSubscribed(broker.port, first);
      first.kill('SIGINT');
      await within(first.exited, 3000, 'mosquitto_sub stopping on SIGINT');

      const sent = ['abc1', 'abc2', 'abc3', 'abc4', 'abc5'];
      for (const m of sent) await mosquittoPub(broker.port, ['-t', 'test', '-m', m, '-i', 'client02', '-q', qos]);

      const again = spawnLines('mosquitto_sub', subArgs);
      assert.deepEqual(await again.waitForLines(5, 3000), sent);
      await untilSubscribed(broker.port, again);
      assert.deepEqual(withoutMarkers(again.lines), sent, 'each message exactly once');
    });
  }

  test('without -c (clean session) none of the messages published while away arrives', T, async () => {
    const broker = await startBroker();
    const subArgs = ['-p', String(broker.port), '-t', 'test', '-q', '1', '-i', 'client01'];
    const first = spawnLines('mosquitto_sub', subArgs);
    await untilSubscribed(broker.port, first);
    first.kill('SIGINT');
    await within(first.exited, 3000, 'mosquitto_sub stopping on SIGINT');
    for (const m of ['abc1', 'abc2']) await mosquittoPub(broker.port, ['-t', 'test', '-m', m, '-i', 'client02', '-q', '1']);

    const again = spawnLines('mosquitto_sub', subArgs);
    await untilSubscribed(broker.port, again);
    assert.deepEqual(withoutMarkers(again.lines), []);
  });
});
