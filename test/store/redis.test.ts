/**
 * The Redis store: the contract suite (including reopen) against a redis-server of our own, then
 * what only a network store can do wrong.
 */
import { after } from 'node:test';
import { openRedisStore, type RedisStore } from '../../src/store/redis.js';
import { startRedis } from '../helpers/redis-server.js';
import { storeContract } from './contract.js';

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
