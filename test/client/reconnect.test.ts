/**
 * Reconnecting: Debian's mosquitto is stopped and started again on the same port under connected clients.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type MqttClient, type Message } from '../../src/client/index.js';
import type { PublishPacket } from '../../src/codec/types.js';
import { midge, Proc, removeDir, sleep, startMosquitto, waitFor, within, type Broker } from './_helpers.js';

const brokers: Broker[] = [];
const clients: MqttClient[] = [];
after(async () => {
  await Promise.all(clients.map((c) => c.end({ force: true })));
  for (const b of brokers) {
    b.proc.kill('SIGCONT');
    await b.stop();
    removeDir(b.dir);
  }
});

const fast = { initialDelay: 100, maxDelay: 400 };

test('QoS 1 messages in flight when mosquitto stops are all delivered after it restarts', async () => {
  const broker = await startMosquitto(['allow_anonymous true', 'persistence true', 'persistence_location $DIR/']);
  brokers.push(broker);
  const url = `mqtt://127.0.0.1:${broker.port}`;
  const sub = await connect(url, { clientId: 'rc-sub', clean: false, reconnect: fast });
  const pub = await connect(url, { clientId: 'rc-pub', clean: false, reconnect: fast });
  clients.push(sub, pub);
  const received: Message[] = [];
  sub.on('message', (m) => received.push(m));
  await sub.subscribe('rc/t', { qos: 1 });
  const dups: number[] = [];
  pub.on('packetsend', (p) => { if (p.type === 'publish' && (p as PublishPacket).dup) dups.push((p as PublishPacket).packetId!); });

  // freeze the broker so that what we publish now stays in flight (written, never acknowledged)
  broker.proc.kill('SIGSTOP');
  const inFlight = Array.from({ length: 50 }, (_, i) => pub.publish('rc/t', `f${i}`, { qos: 1 }));
  await sleep(100);
  assert.equal(pub.pendingPublishes, 50);
  // stop it (it saves its state on SIGTERM), publish more while it is down, then start it again
  const stopped = broker.stop();
  broker.proc.kill('SIGCONT');
  await stopped;
  await waitFor(() => !pub.connected && !sub.connected, 5000, 'both clients to notice');
  const offline = Array.from({ length: 10 }, (_, i) => pub.publish('rc/t', `o${i}`, { qos: 1 }));
  await broker.restart();

  const mids = await within(Promise.all([...inFlight, ...offline]), 10_000, 'publishes to complete after the restart');
  assert.equal(mids.length, 60);
  assert.ok(dups.length > 0, 'unacknowledged messages are re-sent with DUP');
  const want = [...Array.from({ length: 50 }, (_, i) => `f${i}`), ...Array.from({ length: 10 }, (_, i) => `o${i}`)];
  await waitFor(() => want.every((w) => received.some((m) => m.payload.toString() === w)), 10_000,
    `all 60 messages (have ${new Set(received.map((m) => m.payload.toString())).size})`);
});

test('a clean-session client subscribes again after mosquitto restarts', async () => {
  const broker = await startMosquitto();
  brokers.push(broker);
  const url = `mqtt://127.0.0.1:${broker.port}`;
  const sub = await connect(url, { reconnect: fast });
  clients.push(sub);
  const received: string[] = [];
  sub.on('message', (m) => received.push(m.payload.toString()));
  await sub.subscribe('rs/#', { qos: 1 });
  let connects = 0;
  sub.on('connect', () => { connects++; });
  await broker.stop();
  await broker.restart();
  await waitFor(() => connects === 1, 5000, 'the reconnect');
  const pub = await connect(url);
  clients.push(pub);
  // the SUBSCRIBE goes out right after CONNACK; publish until it has taken effect
  await waitFor(async () => {
    await pub.publish('rs/x', 'after restart', { qos: 1 });
    return received.includes('after restart');
  }, 5000, 'the renewed subscription');
});

test('reconnect attempts back off while the broker is down and stop at end()', async () => {
  const broker = await startMosquitto();
  brokers.push(broker);
  const c = await connect(`mqtt://127.0.0.1:${broker.port}`, { reconnect: { initialDelay: 50, maxDelay: 200, jitter: 0 } });
  clients.push(c);
  const attempts: number[] = [];
  c.on('reconnect', () => attempts.push(Math.round(performance.now())));
  await broker.stop();
  await waitFor(() => attempts.length >= 4, 5000, 'four attempts');
  const gaps = attempts.slice(1).map((t, i) => t - attempts[i]!);
  assert.ok(gaps.every((g) => g >= 90 && g <= 600), `gaps ${gaps.join(',')}`);
  await c.end();
  const n = attempts.length;
  await sleep(500);
  assert.equal(attempts.length, n, 'no attempt after end()');
});

test('midge sub reconnects, subscribes again and keeps printing after mosquitto restarts', async () => {
  const broker = await startMosquitto();
  brokers.push(broker);
  const P = String(broker.port);
  const sub = Proc.midge(['sub', '-p', P, '-t', 'rc/cli', '-d']);
  try {
    await sub.waitForOutput('received SUBACK');
    await broker.stop();
    await broker.restart();
    await waitFor(() => sub.stdout.split('received SUBACK').length > 2, 8000, 'the second SUBACK');
    assert.equal((await midge(['pub', '-p', P, '-t', 'rc/cli', '-m', 'after restart'])).code, 0);
    await sub.waitForOutput('after restart\n');
    assert.equal(sub.stderr, '');
  } finally {
    await sub.stop();
  }
});
