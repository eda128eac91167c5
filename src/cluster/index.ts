import { openRedisStore, type RedisStore } from '../store/redis.js';
import { RedisBus } from './redis-bus.js';
import type { Bus } from './bus.js';

export type { Bus, BusStats } from './bus.js';

export interface ClusterOptions {
  /** redis://[user:pass@]HOST:PORT[/DB], rediss://..., or redis+sentinel://... */
  redis: string;
  /** this node's name, unique in the cluster */
  nodeId: string;
  /** key prefix in Redis (default "midge:") */
  prefix?: string;
  /** node lease in ms (default 3000): a node silent this long is adopted by another */
  leaseMs?: number;
  /** what should be the same on every node (name -> digest), compared at join (see RedisBusOptions.config) */
  config?: Record<string, string>;
}

/**
 * One node of a cluster on Redis: the store (the cluster's state) and the bus (routing between nodes,
 * session hand-over, leases) to give `createBroker({ store, bus })`. ioredis is loaded only here.
 */
export async function openCluster(opts: ClusterOptions): Promise<{ store: RedisStore; bus: Bus }> {
  const store = await openRedisStore({ url: opts.redis, ...(opts.prefix !== undefined ? { prefix: opts.prefix } : {}) });
  const bus = new RedisBus(store, { nodeId: opts.nodeId, ...(opts.leaseMs !== undefined ? { leaseMs: opts.leaseMs } : {}),
    ...(opts.config !== undefined ? { config: opts.config } : {}) });
  return { store, bus };
}
