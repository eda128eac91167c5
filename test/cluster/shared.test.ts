/**
 * A shared subscription group across three nodes: `$share/g/t` with one member on each node (MQTT.js v5
 * on A, mosquitto_sub on B, paho on C); 3,000 QoS 1 messages published on B must each reach exactly
 * one member, cluster-wide.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { killAll } from '../helpers/proc.js';
import { startCluster, sleep, until, type Cluster } from './harness.js';
import { closeJsClients, jsClient, mosquittoSub, pahoSub, publishAll, range, tally, withoutProbes, type Inbox } from './clients.js';

let cluster: Cluster | undefined;

after(async () => {
  await closeJsClients();
  await cluster?.stop();
  await killAll();
});

describe('cluster: shared subscriptions', () => {
  test('$share/g/t with a member on each node: each of 3,000 QoS 1 messages is delivered exactly once in total', { timeout: 180_000 }, async (t) => {
    cluster = await startCluster({ nodes: ['a', 'b', 'c'] });
    const group = '$share/g/t';
    const js = await jsClient('share-js', cluster.port('a'), { protocolVersion: 5 });
    const granted = await js.client.subscribeAsync(group, { qos: 1 });
    assert.equal(granted[0]?.qos, 1);
    const mos = mosquittoSub('share-mosquitto', cluster.port('b'), ['-t', group, '-q', '1', '-i', 'share-mos']);
    const paho = pahoSub('share-paho', { port: cluster.port('c'), id: 'share-paho', clean: true, topic: group, qos: 1 });
    await paho.subscribed();
    const members: Inbox[] = [js, mos, paho];
    const all = (): string[] => members.flatMap((m) => m.payloads());

    const pub = await jsClient('share-pub', cluster.port('b'));
    // probes until the group has reached B's index (one member gets a probe), then a moment for the rest
    await until('a probe reaching a member of the group', 10_000, async () => {
      await pub.client.publishAsync('t', `probe-share-${Date.now()}`, { qos: 0 });
      await sleep(100);
      return all().some((p) => p.startsWith('probe-')) ? true : undefined;
    }, 0);
    await sleep(1000);

    const expected = range(3000, 's-');
    const acked = await publishAll(pub.client, 't', expected, 1, 90_000, 50);
    assert.equal(acked.length, expected.length, 'every publish acknowledged');
    try {
      await until('3,000 messages over the group', 60_000, () => (tally(expected, withoutProbes(all())).missing.length === 0 ? true : undefined), 200);
    } catch {
      const tl = tally(expected, withoutProbes(all()));
      assert.fail(`${tl.missing.length} messages never reached any member (first: ${tl.missing.slice(0, 10).join(', ')}); per member: ${members.map((m) => `${m.name} ${withoutProbes(m.payloads()).length}`).join(', ')}`);
    }
    await sleep(2000); // duplicates, if any, would come now
    const got = withoutProbes(all());
    const tl = tally(expected, got);
    const per = members.map((m) => `${m.name}: ${withoutProbes(m.payloads()).length}`).join(', ');
    t.diagnostic(`per member: ${per}`);
    assert.equal(tl.missing.length, 0, per);
    assert.equal(tl.dups, 0, `duplicates over the group (${per})`);
    assert.deepEqual(tl.unexpected, []);
    assert.equal(got.length, 3000, per);
    assert.deepEqual(cluster.crashed(), []);
    mos.kill();
    paho.kill();
  });
});
