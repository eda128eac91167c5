/**
 * Three `midge broker` nodes (a, b, c) on one Redis, with real clients: cross-node publish/subscribe at
 * QoS 0, 1 and 2 (order per publisher), retained messages cluster-wide, a persistent session moved between
 * nodes, takeover across nodes (v5 DISCONNECT 0x8E, and the will rules of one node), and $SYS/broker/cluster.
 *
 * A subscription made on one node reaches the other nodes' subscription index through Redis a moment later,
 * so before a test publishes what it counts, it sends probes (`untilRouted`) until every subscriber has one.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { killAll, run } from '../helpers/proc.js';
import { startCluster, sleep, until, type Cluster } from './harness.js';
import {
  closeJsClients, inOrder, jsClient, jsClientRetry, mosquittoPub, StreamPublisher, mosquittoSub, pahoPub, pahoSub, publishAll, range, tally,
  untilRouted, withoutProbes, type Inbox, type JsSubscriber,
} from './clients.js';

const T = { timeout: 90_000 };
let cluster: Cluster;

before(async () => {
  cluster = await startCluster({ nodes: ['a', 'b', 'c'], extra: 'sys_interval 1' });
}, { timeout: 60_000 });

afterEach(async () => {
  await closeJsClients();
  const crashed = cluster.crashed();
  assert.deepEqual(crashed, [], 'no node may exit during a test');
});

after(async () => {
  await closeJsClients();
  await cluster?.stop();
  await killAll();
});

/** A QoS 0 publisher on `node` for probes (its own connection, kept open). */
async function prober(node: string, topic: string): Promise<(payload: string) => Promise<unknown>> {
  const p = await jsClient(`probe-${node}-${topic.replace(/\W/g, '')}-${Math.random().toString(36).slice(2, 7)}`, cluster.port(node));
  return (payload) => p.client.publishAsync(topic, payload, { qos: 0 });
}

async function subscribeJs(s: JsSubscriber, topic: string, qos: 0 | 1 | 2): Promise<void> {
  const granted = await s.client.subscribeAsync(topic, { qos });
  assert.equal(granted[0]?.qos, qos, `${s.name}: SUBACK ${JSON.stringify(granted)}`);
}

/** Waits (bounded) until every inbox holds all of `expected` (probes aside), then a little longer for extras. */
async function allArrive(inboxes: Inbox[], expected: readonly string[], timeoutMs: number): Promise<void> {
  try {
    await until('messages', timeoutMs, () =>
      inboxes.every((b) => tally(expected, withoutProbes(b.payloads())).missing.length === 0) ? true : undefined, 100);
  } catch {
    const why = inboxes.map((b) => {
      const t = tally(expected, withoutProbes(b.payloads()));
      return `${b.name}: ${withoutProbes(b.payloads()).length} received, ${t.missing.length} missing (first: ${t.missing.slice(0, 5).join(', ')})`;
    });
    assert.fail(`not every message arrived within ${timeoutMs} ms:\n${why.join('\n')}`);
  }
  await sleep(500);
}

describe('cluster of three nodes: routing', () => {
  test('the nodes joined one after the other, each counting the live nodes', T, () => {
    const counts = ['a', 'b', 'c'].map((n) => /\((\d+) nodes?\)/.exec(cluster.node(n).joinedLine)?.[1]);
    assert.deepEqual(counts, ['1', '2', '3'], ['a', 'b', 'c'].map((n) => cluster.node(n).joinedLine).join('\n'));
  });

  for (const qos of [0, 1, 2] as const) {
    test(`QoS ${qos}: 300 messages published on A reach MQTT.js on B, mosquitto_sub and paho on C, each once, in order, at QoS ${qos}`, T, async () => {
      const topic = `cross/q${qos}`;
      const n = 300;
      const js = await jsClient(`cross-js-${qos}`, cluster.port('b'), { protocolVersion: 5 });
      await subscribeJs(js, topic, qos);
      const mos = mosquittoSub(`mosquitto_sub-${qos}`, cluster.port('c'), ['-t', topic, '-q', String(qos), '-i', `cross-mos-${qos}`]);
      const paho = pahoSub(`paho-${qos}`, { port: cluster.port('c'), id: `cross-paho-${qos}`, clean: true, topic, qos });
      await paho.subscribed();
      const pub = await jsClient(`cross-pub-${qos}`, cluster.port('a'));
      const ms = await untilRouted(`q${qos}`, (p) => pub.client.publishAsync(topic, p, { qos: 0 }), [js, mos, paho]);
      const expected = range(n, `m${qos}-`);
      const acked = await publishAll(pub.client, topic, expected, qos, 30_000);
      if (qos > 0) assert.equal(acked.length, n);
      await allArrive([js, mos, paho], expected, 30_000);
      for (const box of [js, mos, paho]) {
        const got = withoutProbes(box.payloads());
        const t = tally(expected, got);
        assert.deepEqual({ box: box.name, missing: t.missing.length, dups: t.dups, unexpected: t.unexpected }, { box: box.name, missing: 0, dups: 0, unexpected: [] });
        assert.deepEqual(got, expected, `${box.name}: order`);
      }
      const jsQos = new Set(js.messages.filter((m) => !m.payload.startsWith('probe-')).map((m) => m.qos));
      assert.deepEqual([...jsQos], [qos], 'MQTT.js on B received at the QoS of its subscription');
      const pahoQos = new Set(paho.messages().filter((m) => !m.includes('probe-')).map((m) => m.split(' ')[0]));
      assert.deepEqual([...pahoQos], [String(qos)], 'paho on C received at the QoS of its subscription');
      paho.kill();
      mos.kill();
      return void ms;
    });
  }

  test('a subscriber at QoS 1 gets a QoS 2 publish from another node at QoS 1 (the lower), and a QoS 0 one at QoS 0', T, async () => {
    const topic = 'cross/downgrade';
    const js = await jsClient('down-js', cluster.port('c'));
    await subscribeJs(js, topic, 1);
    const pub = await jsClient('down-pub', cluster.port('b'));
    await untilRouted('down', (p) => pub.client.publishAsync(topic, p, { qos: 0 }), [js]);
    await pub.client.publishAsync(topic, 'two', { qos: 2 });
    await pub.client.publishAsync(topic, 'zero', { qos: 0 });
    await allArrive([js], ['two', 'zero'], 10_000);
    const got = js.messages.filter((m) => !m.payload.startsWith('probe-')).map((m) => `${m.payload}@${m.qos}`);
    assert.deepEqual(got, ['two@1', 'zero@0']);
  });

  test('mosquitto_pub -l on C (QoS 1) and paho on A (QoS 2) publish to one topic: MQTT.js on B gets both, each publisher in order', T, async () => {
    const topic = 'order/t';
    const n = 400;
    const js = await jsClient('order-js', cluster.port('b'));
    await subscribeJs(js, topic, 2);
    const probeA = await prober('a', topic);
    const probeC = await prober('c', topic);
    await untilRouted('orderA', probeA, [js]);
    await untilRouted('orderC', probeC, [js]);
    const mosLines = range(n, 'mp-');
    const [r] = await Promise.all([
      run('mosquitto_pub', ['-p', String(cluster.port('c')), '-t', topic, '-q', '1', '-l', '-i', 'order-mosquitto'], { timeoutMs: 30_000, input: `${mosLines.join('\n')}\n` }),
      pahoPub({ port: cluster.port('a'), id: 'order-paho', topic, qos: 2, n, prefix: 'pp-' }),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const expected = [...mosLines, ...range(n, 'pp-')];
    await allArrive([js], expected, 30_000);
    const got = withoutProbes(js.payloads());
    const t = tally(expected, got);
    assert.equal(t.missing.length, 0);
    assert.equal(t.dups, 0, 'QoS 1 and 2 without a failure: no duplicates');
    assert.deepEqual(inOrder(got, 'mp-'), { ok: true }, 'mosquitto_pub on C: order kept');
    assert.deepEqual(inOrder(got, 'pp-'), { ok: true }, 'paho on A: order kept');
  });

  test('a retained message set on A (mosquitto_pub -r -q 1) is what a new subscriber on C gets at once; replaced on B (paho); cleared on A', T, async () => {
    const topic = 'ret/one';
    const sub = (args: string[]) => run('mosquitto_sub', ['-p', String(cluster.port('c')), '-t', topic, '-F', '%r %q %p', '-W', '3', ...args], { timeoutMs: 10_000 });

    await mosquittoPub(cluster.port('a'), ['-t', topic, '-m', 'r1', '-r', '-q', '1']);
    let r = await sub(['-C', '1', '-q', '1']);
    assert.equal(r.stdout, '1 1 r1\n', `set on A, subscribed on C right after the PUBACK\n${r.stderr}`);

    await pahoPub({ port: cluster.port('b'), id: 'ret-paho', topic, qos: 1, n: 1, prefix: 'r2-', retain: true });
    r = await sub(['-C', '1', '-q', '1']);
    assert.equal(r.stdout, '1 1 r2-0\n', `replaced on B\n${r.stderr}`);
    // a wildcard subscriber on A sees it too
    const w = await run('mosquitto_sub', ['-p', String(cluster.port('a')), '-t', 'ret/#', '-F', '%r %t %p', '-W', '3', '-C', '1'], { timeoutMs: 10_000 });
    assert.equal(w.stdout, '1 ret/one r2-0\n', w.stderr);

    await mosquittoPub(cluster.port('a'), ['-t', topic, '-n', '-r', '-q', '1']);
    r = await sub(['-C', '1']);
    assert.equal(r.stdout, '', 'cleared on A: nothing retained on C');
  });

  test('a persistent session (3.1.1, clean session 0) made on A resumes on B with the 50 QoS 1 messages published on C meanwhile', T, async () => {
    const topic = 'move/one';
    const opts = { clean: false, protocolVersion: 4 as const };
    const first = await jsClient('mover-311', cluster.port('a'), opts);
    assert.equal(first.connacks[0]?.sessionPresent, false);
    await subscribeJs(first, topic, 1);
    await untilRouted('move311', (p) => mosquittoPub(cluster.port('c'), ['-t', topic, '-m', p]), [first]);
    await first.client.endAsync();

    const expected = range(50, 'q-');
    const r = await run('mosquitto_pub', ['-p', String(cluster.port('c')), '-t', topic, '-q', '1', '-l'], { timeoutMs: 20_000, input: `${expected.join('\n')}\n` });
    assert.equal(r.code, 0, r.stderr);

    const second = await jsClient('mover-311', cluster.port('b'), opts);
    assert.equal(second.connacks[0]?.sessionPresent, true, 'session present on B');
    await allArrive([second], expected, 15_000);
    assert.deepEqual(withoutProbes(second.payloads()), expected, 'every queued message, once, in order');
    assert.ok(second.messages.every((m) => m.qos === 1));
    // and the subscription moved with it: a new message published on A now reaches it on B
    await mosquittoPub(cluster.port('a'), ['-t', topic, '-m', 'after', '-q', '1']);
    await allArrive([second], [...expected, 'after'], 10_000);
  });

  test('a v5 session (expiry 300) made on A resumes on C; mosquitto_sub -c made on B resumes on A', T, async () => {
    const topic = 'move/two';
    const v5 = { clean: false, protocolVersion: 5 as const, properties: { sessionExpiryInterval: 300 } };
    const first = await jsClient('mover-v5', cluster.port('a'), v5);
    await subscribeJs(first, topic, 1);
    const mosFirst = mosquittoSub('mos-mover', cluster.port('b'), ['-t', topic, '-q', '1', '-c', '-i', 'mover-mos']);
    await untilRouted('movev5', (p) => mosquittoPub(cluster.port('b'), ['-t', topic, '-m', p]), [first, mosFirst]);
    await first.client.endAsync();
    mosFirst.kill('SIGINT');
    await mosFirst.exited;

    const expected = range(30, 'v-');
    await pahoPub({ port: cluster.port('b'), id: 'move-paho', topic, qos: 1, n: 30, prefix: 'v-' });

    const second = await jsClient('mover-v5', cluster.port('c'), v5);
    assert.equal(second.connacks[0]?.sessionPresent, true, 'v5: session present on C');
    const mosSecond = mosquittoSub('mos-mover-2', cluster.port('a'), ['-t', topic, '-q', '1', '-c', '-i', 'mover-mos']);
    await allArrive([second, mosSecond], expected, 15_000);
    assert.deepEqual(withoutProbes(second.payloads()), expected);
    assert.deepEqual(withoutProbes(mosSecond.payloads()), expected);
    mosSecond.kill();
  });

  for (const [pubNode, online] of [['a', false], ['c', false], ['a', true]] as const) {
    test(`a persistent session moves from A to B (${online ? 'connected: takeover' : 'offline'}) while ${pubNode === 'a' ? 'A' : 'C'} streams QoS 1 to it: every acknowledged message arrives`, T, async (t) => {
      const topic = `mvs/${pubNode}${online ? 'on' : 'off'}`;
      const id = `mv-stream-${pubNode}-${online ? 'on' : 'off'}`;
      const opts = { clean: false, protocolVersion: 4 as const };
      const first = await jsClient(id, cluster.port('a'), opts);
      await subscribeJs(first, topic, 1);
      const pub = await jsClient(`${id}-pub`, cluster.port(pubNode));
      await untilRouted(`mvs${pubNode}${online ? 1 : 0}`, (p) => pub.client.publishAsync(topic, p, { qos: 0 }), [first]);
      if (!online) await first.client.endAsync();
      const stream = new StreamPublisher(pub.client, topic, 'v-', { window: 20 }).start();
      await until('200 acknowledged', 30_000, () => (stream.acked.length >= 200 ? true : undefined), 20);
      const ackedBefore = stream.acked.length;
      const second = await jsClientRetry(id, cluster.port('b'), opts, 15_000);
      assert.equal(second.sub.connacks[0]?.sessionPresent, true, 'session present on B');
      await sleep(1500);
      await stream.stop(30_000);
      assert.deepEqual(stream.errors, []);
      const got = (): string[] => withoutProbes([...first.payloads(), ...second.sub.payloads()]);
      const expected = stream.acked;
      try {
        await until('every acknowledged message', 20_000, () => (tally(expected, got()).missing.length === 0 ? true : undefined), 100);
      } catch {
        const tl = tally(expected, got());
        assert.fail(`${tl.missing.length} of ${expected.length} acknowledged messages lost (${ackedBefore} acknowledged before the move; ` +
          `${first.payloads().length} received on A, ${second.sub.payloads().length} on B): ${tl.missing.slice(0, 40).join(', ')}`);
      }
      const tl = tally(expected, got());
      t.diagnostic(`${expected.length} acknowledged (${ackedBefore} before the move), ${tl.dups} duplicates`);
      assert.deepEqual(inOrder(second.sub.payloads(), 'v-'), { ok: true }, 'order on B');
    });
  }

  test('takeover across nodes: a v5 client on A gets DISCONNECT 0x8E when its id connects on B; its will (session ends) goes out once', T, async () => {
    const watcher = await jsClient('tk-watch', cluster.port('c'));
    await subscribeJs(watcher, 'tkw/#', 1);
    for (const node of ['a', 'b']) await untilRouted(`tk${node}`, await prober(node, 'tkw/probe'), [watcher]);

    const old = await jsClient('tk-1', cluster.port('a'), {
      protocolVersion: 5, will: { topic: 'tkw/tk-1', payload: Buffer.from('tk-1 will'), qos: 1, retain: false },
    });
    let reason: number | undefined;
    old.client.on('disconnect', (p) => (reason = p.reasonCode));
    let closed = false;
    old.client.on('close', () => (closed = true));

    const t0 = Math.round(performance.now());
    const fresh = await jsClient('tk-1', cluster.port('b'), { protocolVersion: 5 });
    assert.equal(fresh.connacks[0]?.code, 0);
    await until('the old connection on A closed', 10_000, () => (closed ? true : undefined));
    assert.equal(reason, 0x8e, 'DISCONNECT with Session taken over');
    const took = Math.round(performance.now()) - t0;
    await until('the will', 10_000, () => (watcher.payloads().includes('tk-1 will') ? true : undefined));
    await sleep(1500);
    assert.equal(watcher.payloads().filter((p) => p === 'tk-1 will').length, 1, 'the will exactly once');
    assert.equal(fresh.client.connected, true, 'the new connection on B stays');
    assert.ok(took < 10_000, `took ${took} ms`);
  });

  test('takeover across nodes of a continuing session (v5 expiry 300, clean start 0): DISCONNECT 0x8E, session present, no will', T, async () => {
    const watcher = await jsClient('tk2-watch', cluster.port('c'));
    await subscribeJs(watcher, 'tkw2/#', 1);
    for (const node of ['a', 'b']) await untilRouted(`tk2${node}`, await prober(node, 'tkw2/probe'), [watcher]);
    const opts = { protocolVersion: 5 as const, clean: false, properties: { sessionExpiryInterval: 300 } };
    const old = await jsClient('tk-2', cluster.port('a'), {
      ...opts, will: { topic: 'tkw2/tk-2', payload: Buffer.from('tk-2 will'), qos: 1, retain: false },
    });
    let reason: number | undefined;
    old.client.on('disconnect', (p) => (reason = p.reasonCode));
    const fresh = await jsClient('tk-2', cluster.port('b'), opts);
    assert.equal(fresh.connacks[0]?.sessionPresent, true);
    await until('DISCONNECT on A', 10_000, () => reason);
    assert.equal(reason, 0x8e);
    await sleep(2000);
    assert.deepEqual(withoutProbes(watcher.payloads()), [], 'no will: the session continues on B');
  });

  test('takeover across nodes of a 3.1.1 client (MQTT.js on A, the same id with paho on C): A closes the old connection, C keeps the new', T, async () => {
    const old = await jsClient('tk-3', cluster.port('a'), { protocolVersion: 4 });
    let closed = false;
    old.client.on('close', () => (closed = true));
    const fresh = pahoSub('tk3-paho', { port: cluster.port('c'), id: 'tk-3', clean: true });
    assert.equal(await fresh.connack(), 'connack 0 0');
    await until('node A closing the old connection of tk-3', 10_000, () => (closed ? true : undefined));
    await sleep(1000);
    assert.deepEqual(fresh.lines.filter((l) => l.startsWith('lost')), [], 'the new connection on C stays');
    fresh.kill();
  });

  test('$SYS/broker/cluster: node_id and the number of live nodes', T, async () => {
    const id = await run('mosquitto_sub', ['-p', String(cluster.port('b')), '-t', '$SYS/broker/cluster/node_id', '-C', '1', '-W', '5'], { timeoutMs: 10_000 });
    assert.equal(id.stdout, 'b\n', id.stderr);
    const nodes = await run('mosquitto_sub', ['-p', String(cluster.port('c')), '-t', '$SYS/broker/cluster/nodes', '-C', '1', '-W', '5'], { timeoutMs: 10_000 });
    assert.equal(nodes.stdout, '3\n', nodes.stderr);
  });
});
