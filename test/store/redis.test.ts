/**
 * The Redis store: the contract suite (including reopen) against a redis-server of our own, then
 * what only a network store can do wrong: URLs and databases, prefixes, round trips, binary
 * payloads, Redis going away and hanging.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { StoreError, type Change, type StoredWill } from '../../src/store/store.js';
import { openRedisStore, redisAddress, type RedisStore } from '../../src/store/redis.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { collect, msg, session, snapshot, storeContract, sub } from './contract.js';

const server = await startRedis();
after(() => server.stop());
let n = 0;

storeContract({
  name: 'redis',
  // a prefix per store: one Redis, independent stores
  open: () => openRedisStore({ url: server.url, prefix: `contract-${++n}:` }),
  reopen: async (s) => {
    const prefix = (s as RedisStore).prefix;
    await s.close();
    return openRedisStore({ url: server.url, prefix });
  },
});

/** A plain connection for looking at what the store wrote. */
function raw(url = server.url): Redis {
  const r = new Redis(url, { maxRetriesPerRequest: 0, maintNotifications: 'disabled', lazyConnect: true });
  r.on('error', () => undefined);
  return r;
}

async function elapsed<T>(f: () => Promise<T>): Promise<[T | Error, number]> {
  const t0 = Math.round(performance.now());
  try {
    return [await f(), Math.round(performance.now()) - t0];
  } catch (err) {
    return [err as Error, Math.round(performance.now()) - t0];
  }
}

describe('RedisStore', () => {
  const opened: RedisStore[] = [];
  const open = async (over: { url?: string; prefix?: string; commandTimeoutMs?: number } = {}): Promise<RedisStore> => {
    const s = await openRedisStore({ url: server.url, prefix: `t-${++n}:`, ...over });
    opened.push(s);
    return s;
  };
  after(async () => {
    for (const s of opened) await s.close();
  });

  test('URL forms: the address names scheme, host, port and database, never the credentials', () => {
    assert.equal(redisAddress('redis://127.0.0.1:6380'), 'redis://127.0.0.1:6380');
    assert.equal(redisAddress('redis://user:s3cret@redis.example:6390/4'), 'redis://redis.example:6390/4');
    assert.equal(redisAddress('rediss://:s3cret@10.0.0.1/0'), 'rediss://10.0.0.1:6379/0');
    assert.equal(redisAddress('redis://[::1]:7000'), 'redis://[::1]:7000');
    assert.equal(redisAddress('redis+sentinel://u:s3cret@s1,s2:26380/mymaster/3'), 'redis+sentinel://s1:26379,s2:26380/mymaster/3');
    assert.throws(() => redisAddress('http://x:1'), (e: unknown) => e instanceof StoreError && /must be redis, rediss or redis\+sentinel, not http/.test(e.message));
    assert.throws(() => redisAddress('redis://x:1/abc'), (e: unknown) => e instanceof StoreError && /must be a non-negative integer/.test(e.message));
    assert.throws(() => redisAddress('redis://u:s3cret@x:0'), (e: unknown) => e instanceof StoreError && /port/.test(e.message) && !/s3cret/.test(e.message));
    assert.throws(() => redisAddress('not a url'), StoreError);
  });

  test('opening an unreachable Redis fails fast with a StoreError naming the address, not the password', async () => {
    const down = await startRedis();
    const url = `redis://midge:hunter2@127.0.0.1:${down.port}/2`;
    await down.stop();
    const [err, ms] = await elapsed(() => openRedisStore({ url, connectTimeoutMs: 1000 }));
    assert.ok(err instanceof StoreError, String(err));
    assert.match(err.message, new RegExp(`redis://127\\.0\\.0\\.1:${down.port}/2`));
    assert.doesNotMatch(err.message, /hunter2/);
    assert.equal(err.code, 'ECONNREFUSED');
    assert.ok(ms < 3000, `took ${ms} ms`);
  });

  test('credentials in the URL: the right password opens, a wrong one is a StoreError that does not show it', async () => {
    const own = await startRedis();
    try {
      const r = raw(own.url);
      await r.connect();
      await r.config('SET', 'requirepass', 'right-pw');
      r.disconnect();
      const [err, ms] = await elapsed(() => openRedisStore({ url: `redis://default:wrong-pw@127.0.0.1:${own.port}/1`, connectTimeoutMs: 1000 }));
      assert.ok(err instanceof StoreError, String(err));
      assert.match(err.message, new RegExp(`redis://127\\.0\\.0\\.1:${own.port}/1`));
      assert.match(err.message, /WRONGPASS|invalid/i);
      assert.doesNotMatch(err.message, /wrong-pw|right-pw/);
      assert.ok(ms < 3000, `took ${ms} ms`);
      const s = await openRedisStore({ url: `redis://default:right-pw@127.0.0.1:${own.port}/1` });
      opened.push(s);
      await s.commit([{ op: 'session', session: session('x') }]);
      assert.deepEqual(await s.loadSession('x'), session('x'));
      await s.close();
    } finally {
      await own.stop();
    }
  });

  test('the database in the URL and the prefix each separate the data', async () => {
    const a = await open({ prefix: 'deploy-a:' });
    const b = await open({ prefix: 'deploy-b:' });
    const a3 = await open({ url: `${server.url}/3`, prefix: 'deploy-a:' });
    const m = msg();
    await a.commit([
      { op: 'session', session: session('c1') },
      { op: 'sub', clientId: 'c1', sub: sub('x/#') },
      { op: 'message', msg: m },
      { op: 'retain', topic: 'x/1', messageId: m.id },
      { op: 'enqueue', clientId: 'c1', ref: { seq: 7, messageId: m.id, qos: 1, retain: false } },
      { op: 'qos2', clientId: 'c1', packetId: 3 },
      { op: 'will', will: { clientId: 'c1', will: { topic: 'w', payload: Buffer.from('w'), qos: 0, retain: false }, fireAt: 1 } },
    ]);
    const empty = { meta: { lastMessageId: 0, lastSeq: 0 }, sessions: [], subs: [], retained: [], wills: [], windows: { c1: { inflight: [], queued: [], incomingQos2: [] } } };
    assert.deepEqual(await snapshot(b, ['c1']), empty, 'another prefix sees nothing');
    assert.deepEqual(await snapshot(a3, ['c1']), empty, 'another database sees nothing');
    assert.equal((await a.loadWindow('c1')).queued.length, 1);
    assert.equal(await b.countMessages(), 0);
    assert.equal(await a.countMessages(), 1);
    // b writes the same client and topic: a's data is untouched
    const m2 = msg();
    await b.commit([{ op: 'session', session: session('c1', { protocolVersion: 4 }) }, { op: 'message', msg: m2 }, { op: 'retain', topic: 'x/1', messageId: m2.id }, { op: 'dropSession', clientId: 'c1' }]);
    assert.deepEqual(await a.loadSession('c1'), session('c1'));
    assert.deepEqual((await collect(a.loadRetained())).map((r) => r.message.id), [m.id]);
    // every key a wrote starts with its prefix, and b's with b's
    const r = raw();
    await r.connect();
    try {
      const keysA = await r.keys('deploy-a:*');
      const keysB = await r.keys('deploy-b:*');
      assert.ok(keysA.length >= 8 && keysB.length >= 3, `${keysA.length} ${keysB.length}`);
      const all = await r.keys('*');
      assert.ok(!all.some((k) => k.startsWith('c1') || k.startsWith('m:') || k === 'meta'), 'no key without a prefix');
    } finally {
      r.disconnect();
    }
  });

  test('one commit is one command on the wire (MONITOR), however many changes it holds', async () => {
    const s = await open();
    const changes: Change[] = [];
    for (let i = 0; i < 100; i++) {
      const m = msg();
      changes.push({ op: 'message', msg: m }, { op: 'enqueue', clientId: 'c', ref: { seq: i + 1, messageId: m.id, qos: 1, retain: false } });
      changes.push({ op: 'sub', clientId: `c${i}`, sub: sub(`f/${i}`) });
    }
    await s.commit([{ op: 'session', session: session('warm-up') }]); // the first call on a connection is an EVAL with the script's text
    const watcher = raw();
    await watcher.connect();
    const mon = await watcher.monitor();
    const marker = raw();
    await marker.connect();
    try {
      const seen: Array<{ source: string; cmd: string }> = [];
      let done!: () => void;
      const sawMarker = new Promise<void>((resolve) => (done = resolve));
      mon.on('monitor', (_time: string, args: string[], source: string) => {
        if (args[0] === 'echo' && args[1] === 'midge-test-marker') done();
        else seen.push({ source, cmd: String(args[0]).toLowerCase() });
      });
      const local = `127.0.0.1:${(s.client as unknown as { stream: { localPort: number } }).stream.localPort}`;
      await s.commit(changes);
      // Redis runs commands in order: once the marker is seen, everything before it was reported
      await marker.echo('midge-test-marker');
      await Promise.race([sawMarker, new Promise((_, reject) => setTimeout(() => reject(new Error('no marker in 5 s')), 5000))]);
      const fromStore = seen.filter((x) => x.source === local);
      const fromScript = seen.filter((x) => x.source === 'lua');
      assert.deepEqual(fromStore.map((x) => x.cmd), ['evalsha'], 'one command from the store connection');
      assert.ok(fromScript.length >= 300, `the script did the work inside Redis (${fromScript.length} commands)`);
      assert.equal((await s.loadWindow('c')).queued.length, 100);
      assert.equal(s.messageCount(), 100);
    } finally {
      mon.disconnect();
      watcher.disconnect();
      marker.disconnect();
    }
  });

  test('a commit with 600,000 arguments (a flood\'s forwards in one turn) goes through: no call stack overflow', async () => {
    const s = await open();
    const m = msg();
    const ops: Array<string | Buffer> = [];
    const body = Buffer.alloc(64, 1);
    for (let i = 0; i < 200_000; i++) ops.push('Y', 'big', body);
    await s.commit([{ op: 'message', msg: m }, { op: 'retain', topic: 't', messageId: m.id }], ops);
    const r = raw();
    try {
      await r.connect();
      assert.equal(await r.xlen(`${s.prefix}in:big`), 200_000);
      assert.equal(await r.hget(`${s.prefix}r`, 't'), String(m.id));
    } finally {
      r.disconnect();
    }
  });

  test('payloads and wills are binary-safe: all 256 byte values, stored as raw bytes', async () => {
    const s = await open();
    const all = Buffer.alloc(512);
    for (let i = 0; i < 512; i++) all[i] = i % 256;
    const m = msg({ topic: 'bin/ü/|', payload: all, properties: { correlationData: all.subarray(0, 256) } });
    const will: StoredWill = { clientId: 'id|with:odd\u00ffchars', will: { topic: 'w|', payload: Buffer.from(all), qos: 2, retain: true, properties: { correlationData: Buffer.from([0, 0xff]) } }, fireAt: 5 };
    await s.commit([
      { op: 'message', msg: m },
      { op: 'enqueue', clientId: will.clientId, ref: { seq: 1, messageId: m.id, qos: 2, retain: false, subIds: [1] } },
      { op: 'inflight', clientId: will.clientId, ref: { packetId: 9, messageId: m.id, qos: 2, retain: false, state: 'publish' } },
      { op: 'will', will },
    ]);
    const w = await s.loadWindow(will.clientId);
    assert.deepEqual(w.queued[0]!.message, m);
    assert.deepEqual(w.inflight[0]!.message, m);
    assert.deepEqual(await s.loadWills(), [will]);
    // the body in Redis ends with the payload's own bytes (no base64, no JSON escaping)
    const r = raw();
    await r.connect();
    try {
      const body = await r.hgetBuffer(`${s.prefix}m:${m.id}`, 'd');
      assert.ok(body !== null);
      assert.deepEqual(body.subarray(body.length - all.length), all);
    } finally {
      r.disconnect();
    }
  });

  test('reserveIds hands out disjoint blocks above what is stored, to any number of stores on one prefix', async () => {
    const a = await open({ prefix: 'ids:' });
    const b = await open({ prefix: 'ids:' });
    await a.commit([{ op: 'message', msg: msg({ id: 5000 }) }, { op: 'enqueue', clientId: 'c', ref: { seq: 40, messageId: 5000, qos: 1, retain: false } }]);
    const sizes = [100, 100, 1];
    const starts = await Promise.all([a.reserveIds('messageId', 100), b.reserveIds('messageId', 100), a.reserveIds('messageId', 1)]);
    const ranges = starts.map((st, i) => [st, st + sizes[i]!] as const).sort((x, y) => x[0] - y[0]);
    assert.equal(ranges[0]![0], 5001, 'above the highest stored id');
    for (let i = 1; i < ranges.length; i++) assert.equal(ranges[i]![0], ranges[i - 1]![1], `disjoint and contiguous: ${JSON.stringify(ranges)}`);
    assert.equal(await b.reserveIds('seq', 10), 41);
    assert.equal(await a.reserveIds('seq', 10), 51);
    // loadMeta still says what is stored
    assert.deepEqual(await a.loadMeta(), { lastMessageId: 5000, lastSeq: 40 });
    await assert.rejects(a.reserveIds('seq', 0), StoreError);
  });

  test('paging with tiny pages: every entry once, whatever bytes the ids and topics hold', async () => {
    const s = await openRedisStore({ url: server.url, prefix: `page-${++n}:`, pageSize: 2 });
    opened.push(s);
    const ids = ['', '-', '+', '(', '[', '(x', 'a', 'a\u0000b', 'ü', '\u{1F600}', 'z'.repeat(300)];
    const ch: Change[] = [];
    for (const id of ids) {
      const m = msg({ topic: `t/${id}` });
      ch.push({ op: 'session', session: session(id) }, { op: 'sub', clientId: id, sub: sub(`${id}/#`) }, { op: 'sub', clientId: id, sub: sub('+') });
      ch.push({ op: 'message', msg: m }, { op: 'retain', topic: m.topic, messageId: m.id });
    }
    await s.commit(ch);
    const sessions = (await collect(s.loadSessions())).map((x) => x.clientId);
    assert.deepEqual([...sessions].sort(), [...ids].sort());
    const subs = (await collect(s.loadSubscriptions())).map((x) => `${x.clientId}|${x.sub.filter}`);
    assert.deepEqual([...subs].sort(), ids.flatMap((id) => [`${id}|${id}/#`, `${id}|+`]).sort());
    const topics = (await collect(s.loadRetained())).map((x) => x.topic);
    assert.deepEqual([...topics].sort(), ids.map((id) => `t/${id}`).sort());
    // a client id that is a prefix of another's (and of its filters) keeps its own subscriptions
    await s.commit([{ op: 'dropSession', clientId: 'a' }]);
    assert.deepEqual((await collect(s.loadSubscriptions())).filter((x) => x.clientId.startsWith('a')).map((x) => `${x.clientId}|${x.sub.filter}`).sort(), ['a\u0000b|+', 'a\u0000b|a\u0000b/#']);
  });

  test('two stores on one prefix share messages and their reference counts (as two nodes would)', async () => {
    const a = await open({ prefix: 'shared:' });
    const b = await open({ prefix: 'shared:' });
    const m = msg();
    await a.commit([{ op: 'message', msg: m }, { op: 'enqueue', clientId: 'on-a', ref: { seq: 1, messageId: m.id, qos: 1, retain: false } }]);
    // b refers to the message a stored, without recording it
    await b.commit([{ op: 'inflight', clientId: 'on-b', ref: { packetId: 1, messageId: m.id, qos: 1, retain: false, state: 'publish' } }]);
    await a.commit([{ op: 'dequeue', clientId: 'on-a', seq: 1 }]);
    assert.equal(await a.countMessages(), 1, 'still in flight on b');
    assert.deepEqual((await a.loadWindow('on-b')).inflight[0]?.message, m);
    await b.commit([{ op: 'inflightDone', clientId: 'on-b', packetId: 1 }]);
    assert.equal(b.messageCount(), 0);
    assert.equal(await a.countMessages(), 0);
    // a reference before the message is recorded in the same set is refused, as in the memory store
    const m2 = msg();
    await assert.rejects(
      a.commit([{ op: 'retain', topic: 'r', messageId: m2.id }, { op: 'message', msg: m2 }]),
      (e: unknown) => e instanceof StoreError && e.message.includes(String(m2.id)),
    );
    assert.deepEqual(await collect(a.loadRetained()), []);
  });

  test('rediss:// (TLS): works with the CA given in `tls`, refused with a StoreError without it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'midge-redis-tls-'));
    try {
      const certFile = join(dir, 'cert.pem');
      const keyFile = join(dir, 'key.pem');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1',
        '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore', timeout: 20_000 });
      const tlsServer = await startRedis({ tls: { certFile, keyFile } });
      try {
        assert.match(tlsServer.url, /^rediss:/);
        const s = await openRedisStore({ url: `${tlsServer.url}/1`, prefix: 'tls:', tls: { ca: readFileSync(certFile) } });
        opened.push(s);
        const m = msg({ payload: Buffer.from([0, 1, 255]) });
        await s.commit([{ op: 'message', msg: m }, { op: 'retain', topic: 'x', messageId: m.id }]);
        assert.deepEqual(await collect(s.loadRetained()), [{ topic: 'x', message: m }]);
        const [err, ms] = await elapsed(() => openRedisStore({ url: tlsServer.url, connectTimeoutMs: 1000 }));
        assert.ok(err instanceof StoreError, String(err));
        assert.match(err.message, new RegExp(`rediss://127\\.0\\.0\\.1:${tlsServer.port}`));
        assert.ok(ms < 3000, `took ${ms} ms`);
      } finally {
        await tlsServer.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a newer schema under the prefix is refused at open', async () => {
    const r = raw();
    await r.connect();
    try {
      await r.hset('future:meta', 'schema', '99');
    } finally {
      r.disconnect();
    }
    await assert.rejects(open({ prefix: 'future:' }), (e: unknown) => e instanceof StoreError && /schema version 99, newer/.test(e.message));
  });

  test('Redis killed: commits and loads reject with a StoreError naming the address, then work again after a restart', async () => {
    const own: RedisServer = await startRedis();
    try {
      const s = await openRedisStore({ url: own.url, prefix: 'down:', commandTimeoutMs: 1000 });
      opened.push(s);
      await s.commit([{ op: 'session', session: session('a') }]);
      await own.kill();
      const [err, ms] = await elapsed(() => s.commit([{ op: 'session', session: session('b') }]));
      assert.ok(err instanceof StoreError, String(err));
      assert.match(err.message, new RegExp(`redis://127\\.0\\.0\\.1:${own.port}`));
      assert.ok(ms < 2000, `rejected after ${ms} ms`);
      await assert.rejects(s.loadSession('a'), (e: unknown) => e instanceof StoreError && e.message.includes(`127.0.0.1:${own.port}`));
      await assert.rejects(collect(s.loadSessions()), StoreError);
      // restarted (empty: nothing was saved); the store reconnects by itself within a few seconds
      await own.restart();
      let ok = false;
      const deadline = Math.round(performance.now()) + 10_000;
      for (let i = 0; i < 100 && !ok && Math.round(performance.now()) < deadline; i++) {
        try {
          await s.commit([{ op: 'session', session: session('c') }]);
          ok = true;
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      assert.ok(ok, 'commits work again after the restart');
      assert.deepEqual(await s.loadSession('c'), session('c'));
      // killed again: close() does not hang
      await own.kill();
      const [, closeMs] = await elapsed(() => s.close());
      assert.ok(closeMs < 2000, `close took ${closeMs} ms`);
      await assert.rejects(s.commit([]), StoreError);
    } finally {
      await own.stop();
    }
  });

  test('Redis hanging (SIGSTOP): a commit rejects after the command timeout, close() does not hang', async () => {
    const own: RedisServer = await startRedis();
    try {
      const s = await openRedisStore({ url: own.url, prefix: 'hang:', commandTimeoutMs: 500 });
      opened.push(s);
      own.pause();
      const [err, ms] = await elapsed(() => s.commit([{ op: 'session', session: session('a') }]));
      assert.ok(err instanceof StoreError, String(err));
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${own.port}.*timed out`));
      assert.ok(ms >= 400 && ms < 2000, `rejected after ${ms} ms`);
      const [, closeMs] = await elapsed(() => s.close());
      assert.ok(closeMs < 2500, `close took ${closeMs} ms`);
    } finally {
      own.resume();
      await own.stop();
    }
  });
});

describe('RedisStore: commits in flight at once', () => {
  const opened: RedisStore[] = [];
  const open = async (): Promise<RedisStore> => {
    const s = await openRedisStore({ url: server.url, prefix: `pipe-${++n}:` });
    opened.push(s);
    return s;
  };
  after(async () => {
    for (const s of opened) await s.close();
  });
  const enqueue = (clientId: string, seq: number, messageId: number): Change => ({ op: 'enqueue', clientId, ref: { seq, messageId, qos: 1, retain: false } });
  const sess = (clientId: string): Change => ({ op: 'session', session: session(clientId) });

  test('a commit issued behind one that fails is refused, not applied, until the failed one is retried; then both apply in order', async () => {
    const s = await open();
    assert.ok((s.pipeline ?? 1) > 1, 'the store lets several commits be in flight');
    // bad inputs: a reference to message 7000007, which is not stored; then sets issued behind it
    const bad = s.commit([sess('a'), enqueue('a', 1, 7000007)]);
    const behind1 = s.commit([sess('b')]);
    const m8 = msg();
    const behind2 = s.commit([{ op: 'message', msg: m8 }, enqueue('b', 2, m8.id)]);
    const results = await Promise.allSettled([bad, behind1, behind2]);
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected', 'rejected']);
    assert.match(String((results[0] as PromiseRejectedResult).reason), /message 7000007 is referenced but not stored/);
    assert.match(String((results[1] as PromiseRejectedResult).reason), /not applied: an earlier commit failed/);
    assert.equal(await s.loadSession('a'), undefined, 'the failed set left nothing');
    assert.equal(await s.loadSession('b'), undefined, 'a set behind the failed one was not applied');
    // the caller's retry (the first commit after it saw the failure) is applied; here it is fixed
    const m7 = msg();
    await s.commit([{ op: 'message', msg: m7 }, sess('a'), enqueue('a', 1, m7.id)]);
    await Promise.all([s.commit([sess('b')]), s.commit([{ op: 'message', msg: m8 }, enqueue('b', 2, m8.id)])]);
    assert.deepEqual((await s.loadWindow('a')).queued.map((q) => q.messageId), [m7.id]);
    assert.deepEqual((await s.loadWindow('b')).queued.map((q) => q.messageId), [m8.id]);
    // many good sets in flight at once all apply, in order
    const sets: Array<Promise<void>> = [];
    const ms: number[] = [];
    for (let i = 1; i <= 30; i++) {
      const m = msg();
      ms.push(m.id);
      sets.push(s.commit([{ op: 'message', msg: m }, sess(`s${i}`), enqueue('many', 10 + i, m.id), { op: 'dequeue', clientId: 'many', seq: 10 + i - 1 }]));
    }
    await Promise.all(sets);
    // each set queued one and removed the one before: only the last is left, and nothing leaked
    assert.deepEqual((await s.loadWindow('many')).queued.map((q) => q.messageId), [ms[29]]);
    assert.equal(await s.countMessages(), 3, 'm7, m8 and the last of the thirty');
  });

  test('a commit that Redis applied but whose reply was lost is not applied twice when retried', async () => {
    const s = await open();
    const m = msg();
    await s.commit([{ op: 'message', msg: m }, sess('keep'), enqueue('keep', 99, m.id)]);
    // the reply of the next commit is lost after Redis applied it (as when the connection drops then)
    const client = s.client as unknown as { midgeCommit(args: unknown[]): Promise<number> };
    const real = client.midgeCommit.bind(client);
    let lose = true;
    client.midgeCommit = async (args) => {
      const r = await real(args);
      if (lose) {
        lose = false;
        throw new Error('Connection is closed. (simulated: the reply was lost)');
      }
      return r;
    };
    // with a cluster op that is not idempotent: a forward appended to a node's inbox stream
    const set: Change[] = [sess('c'), enqueue('c', 1, m.id)];
    const forward = ['Y', 'node-x', 'one forward'];
    await assert.rejects(s.commit(set, forward), StoreError);
    const r = raw();
    await r.connect();
    try {
      assert.equal(await r.xlen(`${s.prefix}in:node-x`), 1, 'applied once by Redis');
      // the caller retries the same set: a no-op, not a second forward
      await s.commit(set, forward);
      assert.equal(await r.xlen(`${s.prefix}in:node-x`), 1, 'the retry did not forward again');
      assert.equal(await r.hget(`${s.prefix}m:${m.id}`, 'r'), '2');
      assert.deepEqual((await s.loadWindow('c')).queued.map((q) => q.seq), [1]);
      // and the commits after it go on in order
      await Promise.all([s.commit([{ op: 'dequeue', clientId: 'c', seq: 1 }], ['Y', 'node-x', 'two']), s.commit([sess('d'), { op: 'dequeue', clientId: 'keep', seq: 99 }])]);
      assert.equal(await r.xlen(`${s.prefix}in:node-x`), 2);
      assert.equal(await r.exists(`${s.prefix}m:${m.id}`), 0, 'the message went with its last reference');
      assert.ok(await s.loadSession('d'));
    } finally {
      r.disconnect();
    }
  });

  test('bad sequence headers are refused before anything is written', async () => {
    const s = await open();
    const client = s.client as unknown as { midgeCommit(args: unknown[]): Promise<number> };
    // bad inputs: a sequence number that is not a number, a header cut short, a number out of order
    await assert.rejects(client.midgeCommit([s.prefix, 'Z', 'tok', 'abc', '0', 'D', 'x']), /malformed commit sequence number/);
    await assert.rejects(client.midgeCommit([s.prefix, 'Z', 'tok', '1']), /malformed commit sequence number/);
    await assert.rejects(client.midgeCommit([s.prefix, 'Z', 'tok', '5', '0', 'D', 'x']), /commit 5 not applied: an earlier commit failed \(the last applied is 0\)/);
    assert.equal(await client.midgeCommit([s.prefix, 'Z', 'tok', '1', '0', 'D', 'x']), 0);
    assert.equal(await client.midgeCommit([s.prefix, 'Z', 'tok', '1', '0', 'D', 'x']), -1, 'the same number again: already applied');
    assert.equal(await client.midgeCommit([s.prefix, 'Z', 'tok', '7', '1', 'D', 'x']), 0, 'a resumed commit need not follow');
  });
});
