import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connected, RawClient, startTestBroker, subscribed, type TestBroker } from './_harness.js';
import { FakeClock, eventually } from '../helpers/fake-clock.js';
import { SYS_LOAD_TOPICS, nextLoad } from '../../src/broker/sys.js';

interface Sys { start(): void; update(): void; values(): Record<string, string> }
const sysOf = (tb: TestBroker): Sys => (tb.broker as unknown as { sys: Sys }).sys;

test('$SYS/broker topics are published as retained messages with the broker counters', async () => {
  const tb = startTestBroker({ sysInterval: 1 });
  // $SYS is published from listen(); without sockets start it directly
  sysOf(tb).start();
  try {
    const c = await connected(tb, { clientId: 'sysreader' });
    await subscribed(c, '$SYS/broker/#');
    const seen = new Map<string, string>();
    const deadline = Math.round(performance.now()) + 3000;
    while (!(seen.has('$SYS/broker/version') && seen.get('$SYS/broker/clients/connected') === '1') && Math.round(performance.now()) < deadline) {
      const m = await c.next('publish', 3000);
      seen.set(m.topic, m.payload.toString());
    }
    assert.match(seen.get('$SYS/broker/version') ?? '', /^midge version/);
    assert.equal(seen.get('$SYS/broker/clients/connected'), '1');
    for (const t of ['uptime', 'messages/received', 'bytes/received', 'subscriptions/count', 'retained messages/count', 'load/bytes/received/1min', 'heap/current']) {
      assert.ok(seen.has(`$SYS/broker/${t}`), t);
    }
    c.end();
  } finally { await tb.broker.close(); }
});

test('nextLoad is mosquitto\'s calc_load: an exponentially decaying average of the rate per minute', () => {
  // 10 messages in a 10 s interval = 60 per minute; from 0 the 1min average moves by (1 - e^(-10/60)) of it
  assert.equal(nextLoad(0, 10, 10, 60).toFixed(6), (60 * (1 - Math.exp(-10 / 60))).toFixed(6));
  // a steady rate is the fixed point
  assert.equal(nextLoad(60, 10, 10, 60), 60);
  // a steady rate converges to itself, faster over 1 min than over 15 min
  let l1 = 0;
  let l15 = 0;
  for (let i = 0; i < 60; i++) { l1 = nextLoad(l1, 5, 10, 60); l15 = nextLoad(l15, 5, 10, 900); }
  assert.ok(Math.abs(l1 - 30) < 0.01, `1min after 10 minutes of 30/min: ${l1}`);
  assert.ok(l15 > 14 && l15 < 15, // 30 * (1 - e^(-600/900))
     `15min after 10 minutes of 30/min: ${l15}`);
  // without traffic it decays by e^(-t/window): after one minute to 1/e of the 1min value
  let d = 100;
  for (let i = 0; i < 6; i++) d = nextLoad(d, 0, 10, 60);
  assert.equal(d.toFixed(6), (100 / Math.E).toFixed(6));
  // the interval's length matters, not the number of updates
  assert.equal(nextLoad(nextLoad(7, 0, 5, 300), 0, 5, 300).toFixed(9), nextLoad(7, 0, 10, 300).toFixed(9));
});

/** A broker on a fake clock, with $SYS every 10 s; what it published, topic by topic, in order. */
function sysBroker(opts: Parameters<typeof startTestBroker>[0] = {}): { tb: TestBroker; clock: FakeClock; published: Map<string, string[]> } {
  const clock = new FakeClock();
  const tb = startTestBroker({ sysInterval: 10, clock, ...opts });
  const published = new Map<string, string[]>();
  tb.broker.on('publish', (m) => {
    if (!m.topic.startsWith('$SYS/')) return;
    let list = published.get(m.topic);
    if (list === undefined) published.set(m.topic, (list = []));
    list.push(Buffer.from(m.payload).toString());
  });
  tb.broker.memoryUsed = () => 1000; // heap/current is a real measurement: fixed here, to see "only when changed"
  sysOf(tb).start();
  return { tb, clock, published };
}

test('$SYS: the first update publishes the whole tree; later ones only what changed, and uptime every time', async () => {
  const { tb, clock, published } = sysBroker();
  try {
    const names = [...published.keys()];
    for (const t of SYS_LOAD_TOPICS) assert.deepEqual(published.get(t), ['0.00'], `${t} starts at 0.00`);
    assert.equal(SYS_LOAD_TOPICS.length, 27);
    assert.equal(names.length, 26 + 27, names.join('\n'));
    assert.deepEqual(published.get('$SYS/broker/uptime'), ['0 seconds']);
    assert.deepEqual(published.get('$SYS/broker/clients/connected'), ['0']);
    for (const t of names) assert.ok(tb.broker.retained.has(t), `${t} is retained`);
    const counts = new Map([...published].map(([k, v]) => [k, v.length]));
    clock.advance(10_000);
    assert.deepEqual(published.get('$SYS/broker/uptime'), ['0 seconds', '10 seconds']);
    const changed = [...published].filter(([k, v]) => v.length !== counts.get(k)).map(([k]) => k).sort();
    // nothing happened: uptime; retained messages/count and the store (the $SYS messages themselves are retained
    // messages, as in mosquitto) moved at the first update
    assert.deepEqual(changed.filter((t) => !/retained messages|store\/messages|messages\/stored/.test(t)), ['$SYS/broker/uptime']);
    clock.advance(10_000);
    assert.equal(published.get('$SYS/broker/uptime')?.at(-1), '20 seconds');
    assert.equal(published.get('$SYS/broker/version')?.length, 1, 'version once');
    assert.equal(published.get('$SYS/broker/clients/total')?.length, 1, 'clients/total only when it changes');
  } finally { await tb.broker.close(); }
});

test('$SYS counters follow the traffic a client causes; load averages rise above 0, then decay', async () => {
  const { tb, clock, published } = sysBroker();
  const lastOf = (t: string): string => published.get(`$SYS/broker/${t}`)?.at(-1) ?? '(none)';
  const num = (t: string): number => Number(lastOf(t));
  try {
    const before = { received: num('messages/received'), bytes: num('bytes/received') };
    const sub = await connected(tb, { clientId: 'sub' });
    await subscribed(sub, 'load/#', 1);
    const pub = await connected(tb, { clientId: 'pub' });
    const N = 30;
    for (let i = 1; i <= N; i++) pub.send({ type: 'publish', topic: `load/${i}`, payload: Buffer.from('0123456789'), qos: 1, packetId: i, dup: false, retain: false });
    for (let i = 0; i < N; i++) await pub.next('puback');
    for (let i = 0; i < N; i++) {
      const m = await sub.next('publish');
      sub.send({ type: 'puback', packetId: m.packetId! });
    }
    await eventually('the PUBACKs to be read', () => tb.broker.stats.messagesReceived >= 2 + 1 + N + N);
    clock.advance(10_000);

    assert.equal(lastOf('clients/connected'), '2');
    assert.equal(lastOf('clients/active'), '2');
    assert.equal(lastOf('clients/total'), '2');
    assert.equal(lastOf('clients/maximum'), '2');
    assert.equal(lastOf('subscriptions/count'), '1');
    // packets: 2 CONNECT + 1 SUBSCRIBE + N PUBLISH + N PUBACK
    assert.ok(num('messages/received') - before.received >= 3 + 2 * N, lastOf('messages/received'));
    assert.equal(lastOf('publish/messages/received'), String(N));
    assert.equal(lastOf('publish/bytes/received'), String(10 * N));
    assert.equal(lastOf('publish/messages/sent'), String(N));
    assert.equal(lastOf('publish/bytes/sent'), String(10 * N));
    // sent: 2 CONNACK + 1 SUBACK + N PUBACK + N PUBLISH
    assert.ok(num('messages/sent') >= 3 + 2 * N, lastOf('messages/sent'));
    assert.equal(num('bytes/received'), tb.broker.stats.bytesReceived);
    assert.ok(num('bytes/received') - before.bytes > 10 * N);
    // every packet's bytes once: 2 CONNACK (4) + SUBACK (5) + N PUBACK (4) + N PUBLISH (2 + 2 + topic + 2 + 10)
    let publishBytes = 0;
    for (let i = 1; i <= N; i++) publishBytes += 16 + `load/${i}`.length;
    assert.equal(lastOf('bytes/sent'), String(8 + 5 + 4 * N + publishBytes));

    // the load averages: N publishes in 10 s = 6N per minute, pulled from 0 by (1 - e^(-10/window))
    const expect = (window: number): string => (6 * N * (1 - Math.exp(-10 / window))).toFixed(2);
    assert.equal(lastOf('load/publish/received/1min'), expect(60));
    assert.equal(lastOf('load/publish/received/5min'), expect(300));
    assert.equal(lastOf('load/publish/received/15min'), expect(900));
    assert.equal(lastOf('load/publish/sent/1min'), expect(60));
    assert.equal(lastOf('load/connections/1min'), (12 * (1 - Math.exp(-10 / 60))).toFixed(2));
    assert.equal(lastOf('load/sockets/1min'), (12 * (1 - Math.exp(-10 / 60))).toFixed(2));
    for (const t of ['messages/received', 'messages/sent', 'bytes/received', 'bytes/sent']) {
      assert.ok(num(`load/${t}/1min`) > 0, `load/${t}/1min rose: ${lastOf(`load/${t}/1min`)}`);
    }
    assert.equal(lastOf('load/publish/dropped/1min'), '0.00');

    // no more traffic: each update publishes a lower value; after a minute 1/e of the first one
    const peak = num('load/publish/received/1min');
    const peak15 = num('load/publish/received/15min');
    for (let i = 0; i < 6; i++) clock.advance(10_000);
    const decay = published.get('$SYS/broker/load/publish/received/1min')!.slice(-7).map(Number);
    for (let i = 1; i < decay.length; i++) assert.ok(decay[i]! < decay[i - 1]!, `decays: ${decay.join(' ')}`);
    assert.ok(Math.abs(num('load/publish/received/1min') - peak / Math.E) < 0.02, `${lastOf('load/publish/received/1min')} vs ${peak}/e`);
    // the 15 minute average decays far slower
    assert.ok(num('load/publish/received/15min') > peak15 * 0.9, lastOf('load/publish/received/15min'));

    sub.end(); pub.end();
    await eventually('the clients to be gone', () => tb.broker.stats.clientsConnected === 0);
    clock.advance(10_000);
    assert.equal(lastOf('clients/connected'), '0');
    assert.equal(lastOf('clients/total'), '0');
    assert.equal(lastOf('clients/maximum'), '2', 'the maximum stays');
  } finally { await tb.broker.close(); }
});

test('$SYS clients/disconnected, clients/expired, store/messages and shared_subscriptions/count', async () => {
  const { tb, clock, published } = sysBroker({ persistentClientExpiration: 30 });
  const lastOf = (t: string): string => published.get(`$SYS/broker/${t}`)?.at(-1) ?? '(none)';
  try {
    const away = await connected(tb, { clientId: 'away', clean: false });
    await subscribed(away, 'q', 1);
    const s1 = await connected(tb, { clientId: 'member1' });
    await subscribed(s1, '$share/g/work', 1);
    const s2 = await connected(tb, { clientId: 'member2' });
    await subscribed(s2, '$share/g/work', 1);
    await subscribed(s2, '$share/h/work', 0, 2);
    away.end();
    await eventually('the session to be detached', () => tb.broker.sessions.get('away')?.outlet === null);
    // the store holds the retained messages ($SYS among them) and what sessions hold
    const held = (): number => Number(lastOf('store/messages/count')) - Number(lastOf('retained messages/count'));
    clock.advance(10_000);
    assert.equal(held(), 0);
    const bytesBefore = Number(lastOf('store/messages/bytes'));
    const pub = await connected(tb, { clientId: 'pub' });
    for (let i = 1; i <= 3; i++) pub.send({ type: 'publish', topic: 'q', payload: Buffer.from('abcd'), qos: 1, packetId: i, dup: false, retain: false });
    for (let i = 0; i < 3; i++) await pub.next('puback');
    clock.advance(10_000);
    assert.equal(lastOf('clients/connected'), '3');
    assert.equal(lastOf('clients/disconnected'), '1');
    assert.equal(lastOf('clients/inactive'), '1');
    assert.equal(lastOf('clients/total'), '4');
    assert.equal(lastOf('subscriptions/count'), '1', 'q (shared subscriptions are counted apart, as mosquitto does)');
    assert.equal(lastOf('shared_subscriptions/count'), '3');
    // three messages queued for the session that is away
    assert.equal(held(), 3);
    assert.equal(lastOf('messages/stored'), lastOf('store/messages/count'));
    assert.ok(Number(lastOf('store/messages/bytes')) - bytesBefore >= 12);
    assert.equal(lastOf('clients/expired'), '0');
    clock.advance(30_000);
    assert.equal(lastOf('clients/expired'), '1');
    assert.equal(lastOf('clients/disconnected'), '0');
    assert.equal(lastOf('clients/total'), '3');
    s1.end(); s2.end(); pub.end();
    await eventually('the clients to be gone', () => tb.broker.stats.clientsConnected === 0);
    clock.advance(10_000);
    assert.equal(lastOf('shared_subscriptions/count'), '0');
  } finally { await tb.broker.close(); }
});

test('$SYS: sys_interval 0 publishes nothing', async () => {
  const tb = startTestBroker({ sysInterval: 0 });
  let sys = 0;
  tb.broker.on('publish', (m) => { if (m.topic.startsWith('$SYS')) sys++; });
  try {
    sysOf(tb).start();
    const c = RawClient.connectTo(tb);
    await c.connect({ clientId: 'x' });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(sys, 0);
    c.end();
  } finally { await tb.broker.close(); }
});
