/**
 * Redis killed (SIGKILL) and restarted on the same port and directory (appendonly yes, appendfsync always), or hung (SIGSTOP) and resumed,
 * while a publisher on A streams QoS 1 messages to a persistent subscriber on B. No broker process may
 * exit; while Redis is away nothing is acknowledged, QoS 0 between two clients of A still flows, and a
 * CONNECT is refused as "server unavailable" (v5 0x88, 3.1.1 return code 3); once it is back, service
 * resumes and every message acknowledged to the publisher reaches the subscriber.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { killAll } from '../helpers/proc.js';
import { startCluster, sleep, until, type Cluster } from './harness.js';
import {
  closeJsClients, jsClient, jsClientRetry, StreamPublisher, tally, untilRouted, withoutProbes, type Inbox, type JsSubscriber,
} from './clients.js';

const clusters: Cluster[] = [];

after(async () => {
  await closeJsClients();
  for (const c of clusters) await c.stop();
  await killAll();
});

describe('cluster: Redis restarted under load', () => {
  for (const hang of [false, true]) {
    test(`Redis ${hang ? 'hung (SIGSTOP) for 4 s, then resumed' : 'killed (SIGKILL), restarted after 4 s'}: no node exits, nothing is acknowledged while Redis is away, service resumes, every acknowledged message is delivered`, { timeout: 180_000 }, async (t) => {
      const c = await startCluster({ nodes: ['a', 'b'], appendonly: true });
      clusters.push(c);
      const [A, B] = [c.port('a'), c.port('b')];

      // the persistent subscriber on B: reconnects (bounded) whenever its connection is closed
      const subOpts = { clean: false, protocolVersion: 4 as const };
      const conns: JsSubscriber[] = [await jsClient('rr-sub', B, subOpts)];
      await conns[0]!.client.subscribeAsync('rr/t', { qos: 1 });
      const sub: Inbox = { name: 'rr-sub', payloads: () => conns.flatMap((x) => x.payloads()) };
      let keepSub = true;
      const reconnects: string[] = [];
      const watch = (x: JsSubscriber): void => {
        x.client.once('close', () => {
          if (!keepSub) return;
          reconnects.push(`closed at ${new Date().toISOString()}`);
          void jsClientRetry('rr-sub', B, subOpts, 60_000).then((r) => {
            conns.push(r.sub);
            watch(r.sub);
          }, (err: Error) => reconnects.push(`gave up: ${err.message}`));
        });
      };
      watch(conns[0]!);

      // the publisher on A: reconnects by itself (MQTT.js, clean session 0 resends what was not acknowledged)
      const pub = await jsClient('rr-pub', A, { clean: false, protocolVersion: 4, reconnectPeriod: 1000 });
      await untilRouted('rr', (p) => pub.client.publishAsync('rr/t', p, { qos: 0 }), [sub]);

      // a persistent subscriber that is away during all of it: its queue is only in Redis (and B's memory)
      const off = await jsClient('rr-off', B, subOpts);
      await off.client.subscribeAsync('rr/t', { qos: 1 });
      await untilRouted('rroff', (p) => pub.client.publishAsync('rr/t', p, { qos: 0 }), [off]);
      await off.client.endAsync();

      // QoS 0 between two clients of A
      const local = await jsClient('rr-local', A);
      await local.client.subscribeAsync('rrl/t', { qos: 0 });
      const localPub = await jsClient('rr-local-pub', A);
      await untilRouted('rrl', (p) => localPub.client.publishAsync('rrl/t', p, { qos: 0 }), [local]);

      const stream = new StreamPublisher(pub.client, 'rr/t', 'r-', { window: 20 }).start();
      await until('300 acknowledged before Redis goes', 60_000, () => (stream.acked.length >= 300 ? true : undefined), 50);

      if (hang) c.redis.pause();
      else await c.redis.kill();
      const killedAt = Math.round(performance.now());
      await sleep(1000);
      const ackedSoonAfter = stream.acked.length;

      // while Redis is away
      await localPub.client.publishAsync('rrl/t', 'local-during', { qos: 0 });
      const refusals: string[] = [];
      for (const [name, version] of [['rr-new5', 5], ['rr-new4', 4]] as const) {
        try {
          const x = await jsClient(name, B, { protocolVersion: version, clean: false, ...(version === 5 ? { properties: { sessionExpiryInterval: 60 } } : {}) }, 8000);
          refusals.push(`${name}: accepted (${JSON.stringify(x.connacks)})`);
          await x.client.endAsync(true);
        } catch (err) {
          refusals.push(`${name}: ${(err as Error).message}`);
        }
      }
      await until('QoS 0 between two clients of A while Redis is away', 5000, () => (local.payloads().includes('local-during') ? true : undefined))
        .catch(() => assert.fail(`QoS 0 on one node stopped with Redis: ${JSON.stringify(local.payloads().slice(-5))}`));
      await sleep(Math.max(0, 4000 - (Math.round(performance.now()) - killedAt)));
      const ackedBeforeRestart = stream.acked.length;
      assert.equal(ackedBeforeRestart, ackedSoonAfter, `acknowledged while Redis was away: ${ackedBeforeRestart - ackedSoonAfter} (between 1 s and ${Math.round(performance.now()) - killedAt} ms after the kill)`);

      if (hang) c.redis.resume();
      else await c.redis.restart();
      const restartedAt = Math.round(performance.now());
      await until('more messages acknowledged after the restart', 60_000, () => (stream.acked.length > ackedBeforeRestart + 100 ? true : undefined), 100)
        .catch(() => assert.fail(`service did not resume: ${stream.acked.length - ackedBeforeRestart} acknowledged since the restart\n${c.logs().slice(-4000)}`));
      const resumedMs = Math.round(performance.now()) - restartedAt;
      await sleep(2000);
      await stream.stop(60_000);
      t.diagnostic(`acknowledged: ${ackedSoonAfter} before, ${stream.acked.length} in all; resumed ${resumedMs} ms after the restart; subscriber reconnects: ${reconnects.length}; publisher CONNACKs: ${pub.connacks.length}; CONNECTs while away: ${refusals.join(' | ')}`);
      assert.deepEqual(stream.errors, [], 'publisher errors');

      const expected = stream.acked;
      try {
        await until('every acknowledged message at the subscriber', 60_000, () =>
          tally(expected, withoutProbes(sub.payloads())).missing.length === 0 ? true : undefined, 200);
      } catch {
        const tl = tally(expected, withoutProbes(sub.payloads()));
        assert.fail(`${tl.missing.length} of ${expected.length} acknowledged messages never arrived (first: ${tl.missing.slice(0, 10).join(', ')}); subscriber: ${reconnects.join('; ')}`);
      }
      const tl = tally(expected, withoutProbes(sub.payloads()));
      t.diagnostic(`subscriber: ${withoutProbes(sub.payloads()).length} received, ${tl.dups} duplicates`);
      keepSub = false;

      assert.deepEqual(c.crashed(), [], 'no broker process exited');
      for (const n of ['a', 'b']) {
        const logs = c.node(n).broker.logs();
        const down = (logs.match(/Cluster: Redis unavailable/g) ?? []).length;
        const back = (logs.match(/Cluster: Redis is back\./g) ?? []).length;
        if (hang) {
          // a hang is noticed (or not) by timeouts: at most one episode, and one that began also ended
          assert.ok(down <= 1 && back === down, `node ${n}: ${down} 'Redis unavailable' and ${back} 'Redis is back' lines\n${logs.slice(-3000)}`);
        } else {
          assert.equal(down, 1, `node ${n}: 'Redis unavailable' once\n${logs.slice(-3000)}`);
          assert.equal(back, 1, `node ${n}: 'Redis is back' once`);
        }
      }
      if (!hang) {
        // the CONNECTs made while Redis was away were refused as server unavailable (v5 0x88, 3.1.1 rc 3)
        assert.match(refusals[0]!, /code 136\b/, refusals[0]);
        assert.match(refusals[1]!, /code 3\b/, refusals[1]);
      }

      // the subscriber that was away comes back on A (not on B, where its session was): its whole queue is there
      const back = await jsClientRetry('rr-off', A, subOpts, 30_000);
      assert.equal(back.sub.connacks[0]?.sessionPresent, true, 'rr-off: session present on A after the Redis restart');
      try {
        await until('every acknowledged message at the subscriber that was away', 60_000, () =>
          tally(expected, withoutProbes(back.sub.payloads())).missing.length === 0 ? true : undefined, 200);
      } catch {
        const tb = tally(expected, withoutProbes(back.sub.payloads()));
        assert.fail(`rr-off: ${tb.missing.length} of ${expected.length} acknowledged messages never arrived (first: ${tb.missing.slice(0, 10).join(', ')})`);
      }
      t.diagnostic(`rr-off: ${withoutProbes(back.sub.payloads()).length} received, ${tally(expected, withoutProbes(back.sub.payloads())).dups} duplicates`);

      // and a new client, after the return, works across nodes
      const fresh = await jsClient('rr-after', B);
      await fresh.client.subscribeAsync('rr/after', { qos: 1 });
      await untilRouted('after', (p) => pub.client.publishAsync('rr/after', p, { qos: 1 }), [fresh]);
      await closeJsClients();
      await c.stop();
    });
  }
});
