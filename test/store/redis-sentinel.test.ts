/**
 * Redis URLs as ioredis options (redisOptionsFromUrl, shared by the store and the cluster bus), and
 * the Redis store through a Sentinel: a redis-server master and a `redis-server --sentinel` of our own
 * on free loopback ports, stopped by PID.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { StoreError } from '../../src/store/store.js';
import { openRedisStore, redisOptionsFromUrl, RedisUrlError, type RedisStore } from '../../src/store/redis.js';
import { startRedis, startSentinel, type RedisSentinel, type RedisServer } from '../helpers/redis-server.js';
import { msg, session, sub } from './contract.js';

describe('redisOptionsFromUrl', () => {
  test('redis:// and rediss:// give host, port, db and credentials (percent-decoded); rediss sets tls', () => {
    assert.deepEqual(redisOptionsFromUrl('redis://127.0.0.1:6380'), { options: { host: '127.0.0.1', port: 6380 }, address: 'redis://127.0.0.1:6380' });
    assert.deepEqual(redisOptionsFromUrl('redis://h'), { options: { host: 'h', port: 6379 }, address: 'redis://h:6379' });
    assert.deepEqual(redisOptionsFromUrl('redis://us%3Aer:p%40ss%2Fw@h:1/7').options, { host: 'h', port: 1, db: 7, username: 'us:er', password: 'p@ss/w' });
    assert.deepEqual(redisOptionsFromUrl('redis://:pw@h/0').options, { host: 'h', port: 6379, db: 0, password: 'pw' });
    assert.deepEqual(redisOptionsFromUrl('rediss://[::1]:7000/'), { options: { host: '::1', port: 7000, tls: {} }, address: 'rediss://[::1]:7000' });
  });

  test('redis+sentinel:// gives sentinels (default port 26379), the master name and db; the credentials are the master\'s', () => {
    const { options, address } = redisOptionsFromUrl('redis+sentinel://admin:pw@10.0.0.1:26380,sentinel-b,[fe80::1]:5000/cache-master/4');
    assert.deepEqual(options, {
      sentinels: [{ host: '10.0.0.1', port: 26380 }, { host: 'sentinel-b', port: 26379 }, { host: 'fe80::1', port: 5000 }],
      name: 'cache-master', db: 4, username: 'admin', password: 'pw',
    });
    assert.equal(address, 'redis+sentinel://10.0.0.1:26380,sentinel-b:26379,[fe80::1]:5000/cache-master/4');
  });

  test('bad URLs throw a RedisUrlError without the password: no scheme, unknown scheme, no host, port 0 and 65536, db "x", no master name', () => {
    for (const url of ['hunter2@h', 'tcp://u:hunter2@h', 'redis://u:hunter2@', 'redis://u:hunter2@h:0', 'redis://u:hunter2@h:65536',
      'redis://u:hunter2@h/x', 'redis+sentinel://u:hunter2@h', 'redis+sentinel://u:hunter2@h:1,/m']) {
      assert.throws(() => redisOptionsFromUrl(url), (e: unknown) => e instanceof RedisUrlError && !e.message.includes('hunter2'), url);
    }
  });
});

describe('RedisStore through a Sentinel', () => {
  let master: RedisServer;
  let sentinel: RedisSentinel;
  const opened: RedisStore[] = [];
  before(async () => {
    master = await startRedis();
    sentinel = await startSentinel(master.port, 'mymaster');
  });
  after(async () => {
    for (const s of opened) await s.close();
    await sentinel?.stop();
    await master?.stop();
  });

  test('redis+sentinel://127.0.0.1:SPORT/mymaster/2: opens, commits, reads back, and the data is in db 2 of the master', async () => {
    const url = `${sentinel.url}/2`;
    const s = await openRedisStore({ url, prefix: 'sent:' });
    opened.push(s);
    assert.equal(s.address, `redis+sentinel://127.0.0.1:${sentinel.port}/mymaster/2`);
    const m = msg();
    await s.commit([
      { op: 'session', session: session('c1') },
      { op: 'sub', clientId: 'c1', sub: sub('a/#') },
      { op: 'message', msg: m },
      { op: 'retain', topic: 'a/1', messageId: m.id },
    ]);
    assert.deepEqual(await s.loadSession('c1'), session('c1'));
    // a second store through the Sentinel sees what the first committed
    const again = await openRedisStore({ url, prefix: 'sent:' });
    opened.push(again);
    assert.deepEqual(await again.loadSession('c1'), session('c1'));
    assert.equal(await again.countMessages(), 1);
    // and it is really in the master's database 2, under the prefix
    const raw = new Redis({ host: '127.0.0.1', port: master.port, db: 2, lazyConnect: true, maxRetriesPerRequest: 0, maintNotifications: 'disabled' });
    raw.on('error', () => undefined);
    try {
      await raw.connect();
      assert.equal(await raw.hexists('sent:sess', 'c1'), 1);
      assert.equal(await raw.hget('sent:r', 'a/1'), String(m.id));
      await raw.select(0);
      assert.equal(await raw.exists('sent:sess'), 0, 'nothing in db 0');
    } finally {
      raw.disconnect();
    }
  });

  test('a master name the Sentinel does not know: a StoreError naming the address, within the connect timeout', async () => {
    const t0 = Math.round(performance.now());
    await assert.rejects(openRedisStore({ url: `redis+sentinel://u:hunter2@127.0.0.1:${sentinel.port}/nosuchmaster`, connectTimeoutMs: 1000 }), (e: unknown) => {
      assert.ok(e instanceof StoreError, String(e));
      assert.match(e.message, new RegExp(`redis\\+sentinel://127\\.0\\.0\\.1:${sentinel.port}/nosuchmaster`));
      assert.doesNotMatch(e.message, /hunter2/);
      return true;
    });
    assert.ok(Math.round(performance.now()) - t0 < 4000, `took ${Math.round(performance.now()) - t0} ms`);
  });

  test('no Sentinel listening: a StoreError naming the address (not the password), within the connect timeout', async () => {
    const down = await startRedis();
    const port = down.port;
    await down.stop();
    const t0 = Math.round(performance.now());
    await assert.rejects(openRedisStore({ url: `redis+sentinel://u:hunter2@127.0.0.1:${port}/mymaster`, connectTimeoutMs: 1000 }), (e: unknown) => {
      assert.ok(e instanceof StoreError, String(e));
      assert.match(e.message, new RegExp(`redis\\+sentinel://127\\.0\\.0\\.1:${port}/mymaster`));
      assert.doesNotMatch(e.message, /hunter2/);
      return true;
    });
    assert.ok(Math.round(performance.now()) - t0 < 4000, `took ${Math.round(performance.now()) - t0} ms`);
  });

  test('a master with a password, behind a Sentinel: the URL\'s password opens, a wrong one is refused without showing it', async () => {
    const own = await startRedis();
    let sen: RedisSentinel | undefined;
    try {
      const r = new Redis({ host: '127.0.0.1', port: own.port, lazyConnect: true, maxRetriesPerRequest: 0, maintNotifications: 'disabled' });
      r.on('error', () => undefined);
      await r.connect();
      await r.config('SET', 'requirepass', 'right-pw');
      r.disconnect();
      sen = await startSentinel(own.port, 'pwmaster', 'right-pw');
      await assert.rejects(openRedisStore({ url: `redis+sentinel://default:wrong-pw@127.0.0.1:${sen.port}/pwmaster`, connectTimeoutMs: 1000 }), (e: unknown) => {
        assert.ok(e instanceof StoreError, String(e));
        assert.doesNotMatch(e.message, /wrong-pw|right-pw/);
        return true;
      });
      const s = await openRedisStore({ url: `redis+sentinel://default:right-pw@127.0.0.1:${sen.port}/pwmaster/1` });
      opened.push(s);
      await s.commit([{ op: 'session', session: session('pw') }]);
      assert.deepEqual(await s.loadSession('pw'), session('pw'));
    } finally {
      await sen?.stop();
      await own.stop();
    }
  });
});
