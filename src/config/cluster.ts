/**
 * The cluster's settings (issue 12, docs/cluster.md): `cluster_redis URL`, `cluster_node_id NAME`,
 * `cluster_prefix PREFIX` in the config file, `--redis URL` and `--node-id NAME` on the command line.
 * The checks are shared by both; each returns what is wrong (undefined when the value is fine), in
 * words that never contain a Redis password.
 */
import { hostname } from 'node:os';
import { parseRedisUrl, RedisUrlError } from '../store/redis-url.js';

/** The longest node id, in UTF-8 bytes. */
export const MAX_NODE_ID_BYTES = 128;
export const DEFAULT_CLUSTER_PREFIX = 'midge:';

/** Why `url` is not a Redis URL Midge can use, or undefined. Never contains the credentials. */
export function redisUrlProblem(url: string): string | undefined {
  try {
    parseRedisUrl(url);
    return undefined;
  } catch (err) {
    if (err instanceof RedisUrlError) return err.message;
    throw err;
  }
}

/**
 * Why `id` cannot name a node, or undefined. A node id is part of `$SYS/broker/cluster/nodes/NAME/...`
 * topics and of Redis keys: non-empty, at most 128 bytes, no whitespace or control characters, no
 * `/`, `+` or `#`.
 */
export function nodeIdProblem(id: string): string | undefined {
  if (id === '') return 'a node id must not be empty';
  const bytes = Buffer.byteLength(id, 'utf8');
  if (bytes > MAX_NODE_ID_BYTES) return `a node id is at most ${MAX_NODE_ID_BYTES} bytes (this one has ${bytes})`;
  if (/[\s\u0000-\u001f\u007f-\u009f]/u.test(id)) return 'a node id must not contain whitespace or control characters';
  if (/[/+#]/.test(id)) return 'a node id must not contain "/", "+" or "#" (it is a level of $SYS topics)';
  if (id.includes('\uFFFD')) return 'a node id must be valid UTF-8';
  return undefined;
}

/** Why `prefix` cannot be the cluster's key prefix in Redis, or undefined. */
export function prefixProblem(prefix: string): string | undefined {
  if (prefix === '') return 'the key prefix must not be empty';
  if (/[\s\u0000-\u001f\u007f]/.test(prefix)) return 'the key prefix must not contain whitespace or control characters';
  return undefined;
}

/** The default node id: the host name and the port of the first listener (`host-1:1883`). */
export function defaultNodeId(port: number): string {
  // a host name is short and plain; cut it anyway so that the default always passes nodeIdProblem
  const host = hostname().replace(/[\s/+#\u0000-\u001f\u007f]/g, '_').slice(0, 100) || 'midge';
  return `${host}:${port}`;
}
