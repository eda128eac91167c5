/**
 * MQTT 5 session lifetime against the broker process: the Session Expiry Interval (0, a few seconds,
 * 0xFFFFFFFF, changed at DISCONNECT) and Clean Start, with mosquitto_sub, paho and MQTT.js. Each test has
 * a client whose session must survive next to the one whose session must not.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { startBroker } from '../helpers/broker-process.js';
import { collect, expectNoMessage } from '../helpers/mqttjs.js';
import { cleanup, connackOf, mosqPub, mosqSub, paho, sleep, T, untilReady, v5, withoutMarkers } from './_clients.js';
import { packet, prop, RawClient5 } from './_wire.js';

afterEach(cleanup);

describe('session expiry interval', () => {
  test('0 ends the session with the connection, 60 keeps it (mosquitto_sub -x / -D connect session-expiry-interval)', T, async () => {
    const broker = await startBroker();
    const sub = (id: string, session: string[]) =>
      mosqSub(broker.port, ['-V', 'mqttv5', '-i', id, '-q', '1', ...session, '-t', 'se/t', '-F', '%p']);
    // -c -x 0: Clean Start 0, expiry 0. -D ... 60 without -c: Clean Start 1, expiry 60.
    const first = [sub('se0', ['-c', '-x', '0']), sub('se60', ['-D', 'connect', 'session-expiry-interval', '60'])];
    for (const s of first) {
      await untilReady(broker.port, s, 'se/t');
      s.kill('SIGKILL');
      await s.exited;
    }
    await mosqPub(broker.port, ['-t', 'se/t', '-m', 'while-away', '-q', '1']);

    const kept = sub('se60', ['-c', '-x', '60']);
    assert.equal(await kept.waitForLine(/./), 'while-away', 'the queued message comes first');
    const ended = sub('se0', ['-c', '-x', '0']);
    await untilReady(broker.port, ended, 'se/t');
    assert.deepEqual(withoutMarkers(ended.lines), [], 'no session, so nothing was queued');
  });

  test('2 s: the session is there after 0.5 s away and gone after 3.5 s away (MQTT.js)', T, async () => {
    const broker = await startBroker();
    const opts = { clientId: 'se2', clean: false, properties: { sessionExpiryInterval: 2 } };
    const pub = await v5(broker.port, { clientId: 'se2-pub' });
    const first = await v5(broker.port, opts);
    assert.equal(connackOf(first).sessionPresent, false);
    await first.subscribeAsync('se2/t', { qos: 1 });
    await first.endAsync();

    await pub.publishAsync('se2/t', 'soon', { qos: 1 });
    await sleep(500);
    const back = await v5(broker.port, opts);
    assert.equal(connackOf(back).sessionPresent, true, 'back within the expiry interval');
    assert.equal((await collect(back, 1))[0]!.payload, 'soon');
    await back.endAsync();

    await sleep(3500);
    await pub.publishAsync('se2/t', 'too late', { qos: 1 });
    const late = await v5(broker.port, opts);
    assert.equal(connackOf(late).sessionPresent, false, 'the session expired');
    await expectNoMessage(late, 300);
  });

  test('0xFFFFFFFF does not expire, where 1 s does (paho)', T, async () => {
    const broker = await startBroker();
    for (const [id, expiry] of [['se-max', 0xffffffff], ['se-1', 1]] as const) {
      const [c, ack] = await paho(broker.port, { clientId: id, cleanStart: false, props: { SessionExpiryInterval: expiry } });
      assert.equal(ack.rc, 0);
      assert.deepEqual(await c.subscribe('semax/t', { qos: 1 }), [1]);
      await c.kill();
    }
    await sleep(2500);
    await mosqPub(broker.port, ['-t', 'semax/t', '-m', 'kept', '-q', '1']);
    const [forever, ack1] = await paho(broker.port, { clientId: 'se-max', cleanStart: false, props: { SessionExpiryInterval: 0xffffffff } });
    assert.equal(ack1.sessionPresent, true);
    assert.equal((await forever.waitFor('message')).payload, 'kept');
    const [short, ack2] = await paho(broker.port, { clientId: 'se-1', cleanStart: false, props: { SessionExpiryInterval: 1 } });
    assert.equal(ack2.sessionPresent, false);
    await sleep(300);
    assert.deepEqual(short.messages(), []);
  });

  test('changed at DISCONNECT: set to 0 ends a 60 s session; raised from 1 to 60 keeps a session past 1 s', T, async () => {
    const broker = await startBroker();
    const opts = (clientId: string, sessionExpiryInterval: number) => ({ clientId, clean: false, properties: { sessionExpiryInterval } });
    const ends = await v5(broker.port, opts('chg-0', 60));
    const stays = await v5(broker.port, opts('chg-60', 60));
    await ends.endAsync(false, { reasonCode: 0, properties: { sessionExpiryInterval: 0 } });
    await stays.endAsync();
    const [raised] = await paho(broker.port, { clientId: 'chg-up', cleanStart: false, props: { SessionExpiryInterval: 1 } });
    raised.command({ op: 'disconnect', props: { SessionExpiryInterval: 60 } });
    await raised.waitFor('disconnect');
    await sleep(2000);

    assert.equal(connackOf(await v5(broker.port, opts('chg-0', 60))).sessionPresent, false, 'ended by DISCONNECT');
    assert.equal(connackOf(await v5(broker.port, opts('chg-60', 60))).sessionPresent, true, 'kept');
    assert.equal(connackOf(await v5(broker.port, opts('chg-up', 60))).sessionPresent, true, 'kept past the 1 s of CONNECT');
  });

  test('a non-zero expiry at DISCONNECT after 0 at CONNECT is DISCONNECT 0x82, and the session still ends [MQTT-3.14.2-2]',
    T, async () => {
      const broker = await startBroker();
      const [raw, ack] = await RawClient5.connect(broker.port, { clientId: 'chg-bad', cleanStart: false, properties: [prop.sessionExpiryInterval(0)] });
      assert.equal(ack.reasonCode, 0);
      raw.send(packet.subscribe(1, [['chg/t', 1]]));
      await raw.next('suback');
      raw.send(packet.disconnect(0, [prop.sessionExpiryInterval(60)]));
      assert.equal((await raw.next('disconnect')).reasonCode, 0x82);
      await raw.closedByBroker();
      const back = await v5(broker.port, { clientId: 'chg-bad', clean: false, properties: { sessionExpiryInterval: 60 } });
      assert.equal(connackOf(back).sessionPresent, false);
    });
});

describe('clean start', () => {
  test('Clean Start 0 resumes the session with its queued messages; Clean Start 1 discards it and its subscriptions', T, async () => {
    const broker = await startBroker();
    const pub = await v5(broker.port, { clientId: 'cs-pub' });
    const opts = { clientId: 'cs', properties: { sessionExpiryInterval: 60 } };
    const first = await v5(broker.port, { ...opts, clean: true });
    await first.subscribeAsync('cs/t', { qos: 1 });
    await first.endAsync();

    await pub.publishAsync('cs/t', 'm1', { qos: 1 });
    const resumed = await v5(broker.port, { ...opts, clean: false });
    assert.equal(connackOf(resumed).sessionPresent, true);
    assert.equal((await collect(resumed, 1))[0]!.payload, 'm1');
    await resumed.endAsync();

    await pub.publishAsync('cs/t', 'm2', { qos: 1 });
    const fresh = await v5(broker.port, { ...opts, clean: true });
    assert.equal(connackOf(fresh).sessionPresent, false);
    await pub.publishAsync('cs/t', 'm3', { qos: 1 });
    await expectNoMessage(fresh, 300);
  });
});
