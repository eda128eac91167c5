/**
 * `midge bench` pieces: the latency recorder against exact percentiles, the stamped PUBLISH batches
 * through our parser, the subscriber/publisher slot table, flag parsing, and a short run against
 * a Midge broker process (counts add up, nothing lost, the window holds).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Parser } from '../../src/codec/index.js';
import type { Packet } from '../../src/codec/types.js';
import { parseArgs, pubPortOf, receiversOf, slotOf, slotsPerPub, subEndpoint, subPortOf, type BenchConfig } from '../../src/bench/config.js';
import { LatencyRecorder } from '../../src/bench/histogram.js';
import { PublishBatcher, readStamp } from '../../src/bench/stamp.js';
import { runBench } from '../../src/bench/coordinator.js';
import { summary } from '../../src/bench/report.js';
import { startBroker, type BrokerHandle } from '../helpers/bench-brokers.js';

describe('latency recorder', () => {
  test('percentiles are within 1% of the exact ones over six orders of magnitude', () => {
    const r = new LatencyRecorder();
    const values: number[] = [];
    let x = 12345;
    for (let i = 0; i < 20000; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      const v = Math.floor(1000 * 10 ** ((x / 2147483648) * 6)); // 1 µs .. 1 s in ns
      values.push(v);
      r.record(v);
    }
    values.sort((a, b) => a - b);
    const s = r.summary();
    for (const [p, got] of [[0.5, s.p50], [0.9, s.p90], [0.99, s.p99], [0.999, s.p999]] as const) {
      const exact = values[Math.ceil(p * values.length) - 1]! / 1000;
      assert.ok(Math.abs(got - exact) / exact < 0.01, `p${p * 100}: ${got} µs vs exact ${exact} µs`);
    }
    assert.equal(s.n, 20000);
    assert.equal(s.max, Math.round(values.at(-1)! / 100) / 10);
  });

  test('recorders of several threads add up', () => {
    const a = new LatencyRecorder();
    const b = new LatencyRecorder();
    for (let i = 1; i <= 100; i++) a.record(i * 1000);
    for (let i = 101; i <= 200; i++) b.record(i * 1000);
    a.add(b.data());
    const s = a.summary();
    assert.equal(s.n, 200);
    assert.ok(Math.abs(s.p50 - 100) <= 1, `p50 ${s.p50}`);
    assert.equal(s.min, 1);
    assert.equal(s.max, 200);
  });
});

describe('stamped PUBLISH batches', () => {
  for (const [version, qos] of [[4, 0], [4, 1], [5, 0], [5, 1]] as const) {
    test(`a batch parses back into the stamped messages (MQTT ${version === 5 ? '5.0' : '3.1.1'}, QoS ${qos})`, () => {
      const b = new PublishBatcher({ topic: 'bench/3', qos, size: 40, pub: 7, version, batchBytes: 1000 });
      assert.ok(b.perBatch >= 10);
      const ids = Uint16Array.from({ length: 5 }, (_, i) => 100 + i);
      const sent = 1_700_000_123_456_789;
      const buf = b.build(5, sent, 41, ids);
      assert.equal(buf.length, 5 * b.packetLength);
      const got: Packet[] = [];
      new Parser({ protocolVersion: version }).parse(buf, (p) => got.push(p));
      assert.equal(got.length, 5);
      got.forEach((p, k) => {
        assert.equal(p.type, 'publish');
        if (p.type !== 'publish') return;
        assert.equal(p.topic, 'bench/3');
        assert.equal(p.qos, qos);
        assert.equal(p.payload.length, 40);
        if (qos === 1) assert.equal(p.packetId, 100 + k);
        assert.deepEqual(readStamp(p.payload), { sentNs: sent, pub: 7, seq: 41 + k });
      });
    });
  }
});

describe('who receives whom', () => {
  const cfg = (o: Partial<BenchConfig>): BenchConfig => ({ ...parseArgs('run', []), ...o });

  test('point to point: one slot per pair, publisher i -> subscriber i', () => {
    const c = cfg({ pubs: 4, subs: 4, topics: 4 });
    const per = slotsPerPub(c);
    assert.equal(per, 1);
    for (let i = 0; i < 4; i++) {
      assert.deepEqual(receiversOf(c, i), [i]);
      assert.equal(slotOf(c, per, i, i), i);
      assert.equal(slotOf(c, per, i, (i + 1) % 4), -1);
    }
  });

  test('fan-in with a wildcard and fan-out on one topic: every subscriber receives every publisher', () => {
    for (const c of [cfg({ pubs: 10, subs: 1, topics: 10, wildcard: true }), cfg({ pubs: 1, subs: 100 })]) {
      const per = slotsPerPub(c);
      const slots = new Set<number>();
      for (let i = 0; i < c.pubs; i++) {
        assert.equal(receiversOf(c, i).length, c.subs);
        for (let j = 0; j < c.subs; j++) slots.add(slotOf(c, per, i, j));
      }
      assert.equal(slots.size, c.pubs * c.subs);
    }
  });

  test('more subscribers than topics share them round-robin, with distinct slots', () => {
    const c = cfg({ pubs: 3, subs: 7, topics: 3 });
    const per = slotsPerPub(c);
    const seen = new Set<number>();
    for (let i = 0; i < 3; i++) {
      for (const j of receiversOf(c, i)) {
        assert.equal(j % 3, i % 3);
        const s = slotOf(c, per, i, j);
        assert.ok(s >= 0 && s < c.pubs * per && !seen.has(s));
        seen.add(s);
      }
    }
    assert.equal(seen.size, 7);
  });
});

describe('flags', () => {
  test('defaults: loopback, a bounded run', () => {
    const c = parseArgs('run', []);
    assert.equal(c.host, '127.0.0.1');
    assert.ok(c.duration > 0 && c.setupTimeout > 0);
  });

  test('bad values are refused with the flag named', () => {
    assert.throws(() => parseArgs('pub', ['-q', '2']), /--qos/);
    assert.throws(() => parseArgs('pub', ['-s', '8']), /--size/);
    assert.throws(() => parseArgs('run', ['-c', '3']), /-c is for/);
    assert.throws(() => parseArgs('sub', ['--nope']), /unknown option/);
    assert.throws(() => parseArgs('run', ['--pubs', '0']), /--pubs >= 1/);
  });

  test('-c counts the clients of the subcommand; the window is for run only', () => {
    assert.equal(parseArgs('pub', ['-c', '5']).pubs, 5);
    assert.equal(parseArgs('sub', ['-c', '6']).subs, 6);
    assert.equal(parseArgs('conn', ['-c', '7']).conns, 7);
    assert.equal(parseArgs('pub', ['--window', '10']).window, 0);
    assert.equal(parseArgs('run', ['--window=10']).window, 10);
  });

  test('-p and --sub-port lists spread the clients over brokers (cluster nodes): i mod k; bad items refused', () => {
    const c = parseArgs('run', ['-p', '1884,1885', '--sub-port', '1886,1887,1888']);
    assert.deepEqual([c.port, c.pubPorts, c.subPort, c.subPorts], [1884, [1884, 1885], 1886, [1886, 1887, 1888]]);
    assert.deepEqual([0, 1, 2, 3].map((i) => pubPortOf(c, i)), [1884, 1885, 1884, 1885]);
    assert.deepEqual([0, 1, 2, 3].map((j) => subPortOf(c, j)), [1886, 1887, 1888, 1886]);
    const one = parseArgs('run', ['-p', '1884', '--sub-port', '1885']);
    assert.deepEqual([one.pubPorts, one.subPorts, pubPortOf(one, 3), subPortOf(one, 3)], [undefined, undefined, 1884, 1885]);
    const subs = parseArgs('sub', ['-c', '3', '-p', '1884,1885']);
    assert.deepEqual([0, 1, 2].map((j) => subPortOf(subs, j)), [1884, 1885, 1884], 'without --sub-port, -p spreads the subscribers');
    assert.throws(() => parseArgs('run', ['-p', '1884,']), /bad value for --port/);
    assert.throws(() => parseArgs('run', ['-p', '1884,70000']), /bad value for --port: '70000'/);
    assert.throws(() => parseArgs('run', ['--sub-port', 'a,1885']), /bad value for --sub-port: 'a'/);
  });

  test('--sub-host and --sub-port: the subscribers elsewhere, for run only; by default where the publishers are', () => {
    const d = parseArgs('run', ['-p', '1884']);
    assert.deepEqual(subEndpoint(d), { host: '127.0.0.1', port: 1884 });
    const c = parseArgs('run', ['-p', '1884', '--sub-port', '1885']);
    assert.deepEqual([c.host, c.port, subEndpoint(c)], ['127.0.0.1', 1884, { host: '127.0.0.1', port: 1885 }]);
    assert.deepEqual(subEndpoint(parseArgs('run', ['--sub-host=127.0.0.9'])), { host: '127.0.0.9', port: 1883 });
    assert.throws(() => parseArgs('run', ['--sub-port', '0']), /--sub-port/);
    assert.throws(() => parseArgs('run', ['--sub-host', '']), /--sub-host/);
    assert.throws(() => parseArgs('pub', ['--sub-port', '1885']), /are for run/);
    assert.throws(() => parseArgs('sub', ['--sub-host', '127.0.0.1']), /are for run/);
  });

  test('--persistent and --offline: offline implies persistent, needs run and --limit', () => {
    assert.equal(parseArgs('run', []).persistent, false);
    assert.equal(parseArgs('run', ['--persistent']).persistent, true);
    const c = parseArgs('run', ['--offline', '-n', '10']);
    assert.deepEqual([c.offline, c.persistent, c.count], [true, true, 10]);
    assert.throws(() => parseArgs('run', ['--offline']), /--limit/);
    assert.throws(() => parseArgs('pub', ['--offline', '-n', '5']), /--offline is for run/);
    assert.throws(() => parseArgs('run', ['--offline', '-n', '5', '--retained', '10']), /do not go together/);
    assert.throws(() => parseArgs('conn', ['--persistent']), /--persistent is for/);
  });
});

describe('midge bench run --offline against Midge with persistence true', { timeout: 60_000 }, () => {
  let dir: string;
  let broker: BrokerHandle;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'midge-bench-test-'));
    broker = await startBroker('midge-persist', { dir });
  });
  after(async () => {
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the queue built while the persistent subscribers were away arrives whole after their reconnect', async () => {
    const cfg = parseArgs('run', ['-p', String(broker.port), '--pubs', '3', '--subs', '2', '-q', '1', '--offline', '-n', '400', '-d', '20', '-w', '2']);
    const r = await runBench(cfg);
    assert.equal(r.timedOut, false);
    assert.equal(r.errors.total, 0, String(r.errors.last));
    const o = r.offline!;
    assert.ok(o !== undefined);
    assert.deepEqual([o.published, o.acked, o.sessionPresent, o.expected, o.received], [1200, 1200, 2, 2400, 2400]);
    assert.equal(o.complete, true);
    assert.ok(o.publishPerS > 0 && o.drainPerS > 0 && o.publishSeconds > 0 && o.drainSeconds > 0);
    assert.deepEqual([r.lost, r.dups, r.missing], [0, 0, 0]);
  });

  test('--persistent: an online run with clean session false loses nothing', async () => {
    const cfg = parseArgs('run', ['-p', String(broker.port), '--pubs', '3', '--subs', '1', '--topics', '3', '--wildcard', '-q', '1', '--persistent', '-r', '1000', '-d', '0.5', '--warmup', '0.2']);
    const r = await runBench(cfg);
    assert.equal(r.errors.total, 0, String(r.errors.last));
    assert.ok(r.sentTotal > 200);
    assert.deepEqual([r.lost, r.missing], [0, 0]);
  });
});

describe('midge bench run against a Midge broker', { timeout: 30_000 }, () => {
  let dir: string;
  let broker: BrokerHandle;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'midge-bench-test-'));
    broker = await startBroker('midge', { dir });
  });
  after(async () => {
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('QoS 1, 3 publishers × 2 subscribers, all-to-all: every message arrives once, acks and counts add up', async () => {
    const cfg = parseArgs('run', ['-p', String(broker.port), '--pubs', '3', '--subs', '2', '-q', '1', '-r', '3000', '-d', '1', '--warmup', '0.2', '--drain', '0.5', '-w', '2']);
    const r = await runBench(cfg);
    assert.equal(r.timedOut, false);
    assert.deepEqual([r.setup.subsReady, r.setup.pubsReady], [2, 3]);
    assert.equal(r.errors.total, 0, String(r.errors.last));
    assert.ok(r.sentTotal > 2000, `sent ${r.sentTotal}`);
    assert.equal(r.lost, 0);
    assert.equal(r.dups, 0);
    assert.equal(r.missing, 0);
    assert.equal(r.expectedDeliveries, r.sentTotal * 2);
    assert.equal(r.receivedTotal, r.expectedDeliveries);
    assert.equal(r.ackedTotal, r.sentTotal);
    assert.ok(Math.abs(r.sentPerS - 3000) < 300, `rate ${r.sentPerS}`);
    assert.ok(r.latencyUs.n > 0 && r.latencyUs.p50 > 0);
  });

  test('a flood with a window of 50 keeps every publisher at most 50 ahead of its subscriber', async () => {
    const cfg = parseArgs('run', ['-p', String(broker.port), '--pubs', '4', '--subs', '4', '--topics', '4', '--window', '50', '-d', '1', '--warmup', '0.2']);
    const r = await runBench(cfg);
    assert.equal(r.missing, 0);
    assert.ok(r.msgsPerS > 1000, `${r.msgsPerS} msgs/s`);
    // Little's law: in flight <= 4 × 50 messages, so the mean latency is bounded by 200 / throughput
    assert.ok(r.latencyUs.mean <= (200 / r.msgsPerS) * 1e6 * 1.5 + 5000, `mean ${r.latencyUs.mean} µs at ${r.msgsPerS} msgs/s`);
  });
});

describe('midge bench run --sub-port: publishers on one broker, subscribers on another (a bridge)', { timeout: 60_000 }, () => {
  let dir: string;
  let remote: BrokerHandle;
  let local: BrokerHandle;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'midge-bench-test-'));
    remote = await startBroker('midge', { dir });
    local = await startBroker('midge', { dir, extraConfig: `connection up\naddress 127.0.0.1:${remote.port}\ntopic bench/# out 1\nrestart_timeout 1` });
  });
  after(async () => {
    await local?.stop();
    await remote?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('QoS 1 over the bridge: the subscribers on the remote receive every message once; without --sub-port one endpoint', async () => {
    // the bridge connects in the background: a short probe run until it carries messages (bounded)
    const probe = parseArgs('run', ['-p', String(local.port), '--sub-port', String(remote.port), '-q', '1', '-r', '200', '-d', '0.3', '--warmup', '0', '--drain', '0.5', '-w', '1']);
    let ready = false;
    for (let i = 0; i < 20 && !ready; i++) ready = (await runBench(probe)).receivedTotal > 0;
    assert.ok(ready, 'the bridge never carried a message');
    const cfg = parseArgs('run', ['-p', String(local.port), '--sub-port', String(remote.port), '--pubs', '2', '--subs', '2', '-q', '1', '-r', '2000', '-d', '1', '--warmup', '0.2', '--drain', '1', '-w', '2']);
    const r = await runBench(cfg);
    assert.deepEqual([r.host, r.port, r.subHost, r.subPort], ['127.0.0.1', local.port, '127.0.0.1', remote.port]);
    assert.equal(r.errors.total, 0, String(r.errors.last));
    assert.ok(r.sentTotal > 1000, `sent ${r.sentTotal}`);
    assert.deepEqual([r.lost, r.dups, r.missing], [0, 0, 0]);
    assert.equal(r.receivedTotal, r.sentTotal * 2);
    assert.match(summary(r), new RegExp(`publishers 127\\.0\\.0\\.1:${local.port}, subscribers 127\\.0\\.0\\.1:${remote.port}`));
    // the same load with everything on the remote (no bridge there): delivered directly
    const direct = await runBench(parseArgs('run', ['-p', String(remote.port), '-r', '500', '-d', '0.3', '--warmup', '0', '-w', '1']));
    assert.ok(direct.receivedTotal > 0);
    assert.match(summary(direct), new RegExp(`; 127\\.0\\.0\\.1:${remote.port}$`, 'm'));
  });
});

describe('midge bench run with port lists: clients spread over two independent brokers', { timeout: 60_000 }, () => {
  let dir: string;
  let a: BrokerHandle;
  let b: BrokerHandle;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'midge-bench-test-'));
    a = await startBroker('midge', { dir });
    b = await startBroker('midge', { dir });
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('-p A,B --sub-port A,B with 2 topics: each pair meets on its broker, all delivered; -p A,B --sub-port A: publisher 1 (on B) never reaches the subscriber', async () => {
    const common = ['-q', '1', '-r', '400', '-d', '0.5', '--warmup', '0', '--drain', '0.5', '-w', '1'];
    const paired = await runBench(parseArgs('run', ['-p', `${a.port},${b.port}`, '--sub-port', `${a.port},${b.port}`, '--pubs', '2', '--subs', '2', '--topics', '2', ...common]));
    assert.equal(paired.errors.total, 0, String(paired.errors.last));
    assert.ok(paired.sentTotal > 50, `sent ${paired.sentTotal}`);
    assert.deepEqual([paired.lost, paired.dups, paired.missing], [0, 0, 0]);
    assert.equal(paired.receivedTotal, paired.sentTotal);
    assert.deepEqual([paired.pubPorts, paired.subPorts], [[a.port, b.port], [a.port, b.port]]);
    assert.match(summary(paired), new RegExp(`publishers 127\\.0\\.0\\.1:${a.port},${b.port}, subscribers 127\\.0\\.0\\.1:${a.port},${b.port}`));
    // one topic, the subscriber on A: what publisher 1 sends to B is never delivered (no bridge between them)
    const crossed = await runBench(parseArgs('run', ['-p', `${a.port},${b.port}`, '--sub-port', String(a.port), '--pubs', '2', '--subs', '1', ...common, '--window', '0']));
    assert.ok(crossed.sentTotal > 50, `sent ${crossed.sentTotal}`);
    assert.ok(crossed.receivedTotal > 0 && crossed.receivedTotal < crossed.sentTotal, `received ${crossed.receivedTotal} of ${crossed.sentTotal}`);
    assert.ok(crossed.missing > 0, `missing ${crossed.missing}`);
  });
});
