/**
 * SIGKILL of a node (A) of three while it has persistent QoS 1 subscribers (MQTT.js 3.1.1 and v5,
 * mosquitto_sub -c, paho clean_session=False) and clients with wills (MQTT.js 3.1.1 and v5, paho,
 * mosquitto_sub --will-topic), and a publisher on C streams QoS 1 messages to the subscribers' topic.
 * Two subscribers reconnect to B, two to C (so that, whichever survivor adopts A, some sessions move on from
 * the adopter while it adopts) and must receive every message C's node acknowledged (duplicates
 * are counted: QoS 1 allows them); each will is published exactly once cluster-wide (two watchers, on
 * B and on C, count); exactly one survivor logs the adoption.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { killAll, run } from '../helpers/proc.js';
import { startCluster, sleep, until, type Cluster } from './harness.js';
import {
  closeJsClients, jsClient, jsClientRetry, mosquittoSub, pahoSub, Respawned, StreamPublisher, tally, untilRouted,
  withoutProbes, type Inbox, type JsSubscriber,
} from './clients.js';

const clusters: Cluster[] = [];

after(async () => {
  await closeJsClients();
  for (const c of clusters) await c.stop();
  await killAll();
});

const TOPIC = 'fo/t';
const WILLS = ['fow/w1', 'fow/w2', 'fow/w3', 'fow/w4'];

/** A subscriber that lives on A, then on B or C: what both connections received. */
interface Moved extends Inbox {
  reconnect(): Promise<void>;
  /** after the reconnect: CONNACK session present, where known */
  sessionPresent(): boolean | undefined;
  connectMs?: number;
  /** Math.round(performance.now()) when the connection to B was made (MQTT.js: CONNACK; processes: spawned) */
  connectedAt?: number;
  stop(): Promise<void>;
}

describe('cluster: a node killed with SIGKILL', () => {
  for (const afterAdoption of [false, true]) {
    test(`its persistent subscribers resume on B and C ${afterAdoption ? 'once a survivor logged the adoption' : 'at once (CONNECT held until the adoption)'} with every acknowledged message; its clients' wills go out once`, { timeout: 180_000 }, async (t) => {
      const c = await startCluster({ nodes: ['a', 'b', 'c'], extra: 'sys_interval 1' });
      clusters.push(c);
      const [A, B, C] = [c.port('a'), c.port('b'), c.port('c')];

      // watchers of the wills, on B and C
      const watchC = await jsClient('fo-watch-c', C);
      await watchC.client.subscribeAsync('fow/#', { qos: 1 });
      const watchB = mosquittoSub('fo-watch-b', B, ['-t', 'fow/#', '-q', '1', '-i', 'fo-watch-b']);

      // persistent QoS 1 subscribers on A
      const jsSub = (name: string, v5: boolean) => ({
        clean: false, protocolVersion: (v5 ? 5 : 4) as 4 | 5, clientId: name,
        ...(v5 ? { properties: { sessionExpiryInterval: 600 } } : {}),
      });
      const movedJs = async (name: string, v5: boolean, to: number): Promise<Moved> => {
        const first = await jsClient(name, A, jsSub(name, v5));
        await first.client.subscribeAsync(TOPIC, { qos: 1 });
        let second: JsSubscriber | undefined;
        const m: Moved = {
          name,
          payloads: () => [...first.payloads(), ...(second?.payloads() ?? [])],
          reconnect: async () => {
            const r = await jsClientRetry(name, to, jsSub(name, v5), 30_000);
            second = r.sub;
            m.connectMs = r.ms;
            m.connectedAt = Math.round(performance.now());
            if (r.attempts.length > 0) t.diagnostic(`${name}: refused or timed out before: ${r.attempts.join('; ')}`);
          },
          sessionPresent: () => second?.connacks[0]?.sessionPresent,
          stop: async () => undefined,
        };
        return m;
      };
      const js311 = await movedJs('fo-js311', false, B);
      const js5 = await movedJs('fo-js5', true, C);

      const mos = new Respawned('fo-mosquitto', () => mosquittoSub('fo-mos', A, ['-t', TOPIC, '-q', '1', '-c', '-i', 'fo-mos']));
      const mosOnA = mos; // the first run is on A; later runs (started after the kill) on B
      mos.start(600_000);
      let mosPort = A;
      const mosB = new Respawned('fo-mosquitto-b', () => mosquittoSub('fo-mos-b', mosPort, ['-t', TOPIC, '-q', '1', '-c', '-i', 'fo-mos']));
      const mosMoved: Moved = {
        name: 'mosquitto_sub -c',
        payloads: () => [...mosOnA.payloads(), ...mosB.payloads()],
        reconnect: async () => {
          await mosOnA.stop();
          mosPort = B;
          mosB.start(30_000);
          mosMoved.connectedAt = Math.round(performance.now());
        },
        sessionPresent: () => undefined,
        stop: () => mosB.stop(),
      };

      const pahoFirst = pahoSub('fo-paho', { port: A, id: 'fo-paho', clean: false, topic: TOPIC, qos: 1 });
      await pahoFirst.subscribed();
      const pahoB = new Respawned('fo-paho-c', () => pahoSub('fo-paho-c', { port: C, id: 'fo-paho', clean: false, topic: TOPIC, qos: 1 }));
      const pahoMoved: Moved = {
        name: 'paho clean_session=False',
        payloads: () => [...pahoFirst.payloads(), ...pahoB.payloads()],
        reconnect: async () => {
          pahoB.start(30_000);
          await until('paho connected to C', 30_000, () => (pahoB.current()?.lines.some((l) => l === 'connack 1 0' || l === 'connack 0 0') === true ? true : undefined), 100);
          pahoMoved.connectedAt = Math.round(performance.now());
        },
        sessionPresent: () => {
          const line = pahoB.runs.flatMap((r) => r.lines).find((l) => /^connack \d 0$/.test(l));
          return line === undefined ? undefined : line === 'connack 1 0';
        },
        stop: () => pahoB.stop(),
      };
      const subscribers: Moved[] = [js311, js5, mosMoved, pahoMoved];

      // clients with wills on A
      await jsClient('fo-w1', A, { protocolVersion: 4, will: { topic: WILLS[0]!, payload: Buffer.from(`${WILLS[0]} gone`), qos: 1, retain: false } });
      const w2 = pahoSub('fo-w2', { port: A, id: 'fo-w2', clean: true, will: WILLS[1]! });
      assert.equal(await w2.connack(), 'connack 0 0');
      const w3 = mosquittoSub('fo-w3', A, ['-t', 'fo/none', '-i', 'fo-w3', '--will-topic', WILLS[2]!, '--will-payload', `${WILLS[2]} gone`, '--will-qos', '1']);
      await jsClient('fo-w4', A, { protocolVersion: 5, will: { topic: WILLS[3]!, payload: Buffer.from(`${WILLS[3]} gone`), qos: 1, retain: false } });

      // routes: C's publishes reach the subscribers on A; B's and C's reach the will watchers
      const pub = await jsClient('fo-pub', C);
      await untilRouted('foC', (p) => pub.client.publishAsync(TOPIC, p, { qos: 0 }), [js311, js5, mosMoved, pahoMoved], 20_000);
      await untilRouted('fowC', (p) => pub.client.publishAsync('fow/probe', p, { qos: 0 }), [watchC, watchB], 20_000);
      const pubB = await jsClient('fo-pub-b', B);
      await untilRouted('fowB', (p) => pubB.client.publishAsync('fow/probe', p, { qos: 0 }), [watchC, watchB], 20_000);
      // w3 is subscribed (its CONNECT went through) once A logged it; give it a moment
      await until('mosquitto_sub fo-w3 connected on A', 10_000, () => (/fo-w3/.test(c.node('a').broker.logs()) ? true : undefined)).catch(() => sleep(1000));

      const stream = new StreamPublisher(pub.client, TOPIC, 'f-', { window: 20 }).start();
      await until('300 messages acknowledged before the kill', 60_000, () => (stream.acked.length >= 300 ? true : undefined), 50);

      const killedAt = Math.round(performance.now());
      await c.kill('a');
      const ackedAtKill = stream.acked.length;
      if (afterAdoption) {
        await until('a survivor logging the adoption of node a', 20_000, () =>
          ['b', 'c'].some((n) => /Cluster: node a is gone/.test(c.node(n).broker.logs())) ? true : undefined, 50);
      }
      await Promise.all(subscribers.map((s) => s.reconnect()));
      const reconnectedMs = Math.round(performance.now()) - killedAt;
      await sleep(3000); // more messages while the subscribers are on B and C
      await stream.stop(30_000);
      t.diagnostic(`acknowledged: ${ackedAtKill} before the kill, ${stream.acked.length} in all; all four subscribers back (MQTT.js 3.1.1 and mosquitto_sub on B, MQTT.js v5 and paho on C) ${reconnectedMs} ms after the kill; MQTT.js CONNACK after ${js311.connectMs} / ${js5.connectMs} ms`);
      assert.deepEqual(stream.errors, [], 'the publisher on C saw no error');
      // docs: a CONNECT to a survivor is answered within ~6 s of the kill; twice that on this loaded two-core host
      for (const s of [js311, js5]) assert.ok(s.connectMs !== undefined && s.connectMs < 12_000, `${s.name}: CONNACK ${String(s.connectMs)} ms after the kill`);

      // every acknowledged message at every subscriber
      const expected = stream.acked;
      try {
        await until('every acknowledged message at every subscriber', 60_000, () =>
          subscribers.every((s) => tally(expected, withoutProbes(s.payloads())).missing.length === 0) ? true : undefined, 200);
      } catch {
        const ackTime = new Map(stream.acked.map((p, i) => [p, stream.ackedAt[i]! - killedAt]));
        const why = subscribers.map((s) => {
          const got = withoutProbes(s.payloads());
          const tl = tally(expected, got);
          const dupList = [...new Set(got.filter((p, i) => got.indexOf(p) !== i))];
          return `${s.name}: ${tl.missing.length} of ${expected.length} acknowledged messages missing (${tl.missing.map((p) => `${p}@${ackTime.get(p)}ms`).join(', ')}), ` +
            `${tl.dups} duplicates (${dupList.slice(0, 20).join(', ')}); reconnected ${s.connectedAt === undefined ? '?' : s.connectedAt - killedAt} ms after the kill`;
        });
        const adoption = ['b', 'c'].flatMap((n) => c.node(n).broker.logs().split('\n').filter((l) => /Cluster:/.test(l)).map((l) => `${n}: ${l}`));
        assert.fail(`lost acknowledged messages (times: acknowledgement after the kill):\n${why.join('\n')}\n${adoption.join('\n')}\n${c.crashed(['a']).join('\n')}\nnode logs: ${c.dumpLogs('failover')}`);
      }
      await sleep(1000);
      for (const s of subscribers) {
        const tl = tally(expected, withoutProbes(s.payloads()));
        t.diagnostic(`${s.name}: ${withoutProbes(s.payloads()).length} received for ${expected.length} acknowledged, ${tl.dups} duplicates`);
        assert.deepEqual(tl.unexpected.filter((p) => !p.startsWith('f-')), [], `${s.name}: nothing that was not published`);
      }
      assert.equal(js311.sessionPresent(), true, 'MQTT.js 3.1.1: session present on B');
      assert.equal(js5.sessionPresent(), true, 'MQTT.js v5: session present on C');
      assert.equal(pahoMoved.sessionPresent(), true, 'paho: session present on C');

      // wills: once each, at both watchers
      const willsOf = (b: Inbox): string[] => b.payloads().filter((p) => / gone$/.test(p)).sort();
      const want = WILLS.map((w) => `${w} gone`).sort();
      try {
        await until('the four wills at both watchers', 20_000, () =>
          [watchB, watchC].every((w) => want.every((x) => willsOf(w).includes(x))) ? true : undefined, 100);
      } catch {
        assert.fail(`wills: watcher on B ${JSON.stringify(willsOf(watchB))}, on C ${JSON.stringify(willsOf(watchC))}\n${c.logs()}`);
      }
      await sleep(3000); // a second publication of a will, if any, would come now
      assert.deepEqual(willsOf(watchB), want, 'each will exactly once (watcher on B)');
      assert.deepEqual(willsOf(watchC), want, 'each will exactly once (watcher on C)');

      // one adopter
      const adoptions = ['b', 'c'].flatMap((n) => c.node(n).broker.logs().split('\n').filter((l) => /Cluster: node a is gone/.test(l)).map((l) => `${n}: ${l}`));
      assert.equal(adoptions.length, 1, `exactly one survivor adopts node a:\n${adoptions.join('\n')}`);
      const m = /adopted its (\d+) sessions? and published (\d+) wills?/.exec(adoptions[0]!);
      assert.ok(m, adoptions[0]);
      t.diagnostic(adoptions[0]!);
      assert.equal(Number(m[2]), 4, 'four wills published');
      assert.deepEqual(c.crashed(['a']), [], 'B and C keep running');
      // $SYS/broker/cluster/nodes on B: 2 live nodes now (published every second; the retained value may lag)
      await until('$SYS/broker/cluster/nodes = 2 on B', 15_000, async () => {
        const r = await run('mosquitto_sub', ['-p', String(B), '-t', '$SYS/broker/cluster/nodes', '-C', '1', '-W', '3'], { timeoutMs: 5000 });
        return r.stdout === '2\n' ? true : undefined;
      }, 500);

      w2.kill();
      w3.kill();
      watchB.kill();
      await Promise.all(subscribers.map((s) => s.stop()));
      await closeJsClients();
      await c.stop();
    });
  }
});
