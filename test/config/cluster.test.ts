/**
 * The cluster's configuration keys (cluster_redis, cluster_node_id, cluster_prefix): good values are
 * parsed into the config, bad ones are ConfigErrors naming the file and line and never the password.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { checkSupported, ConfigError, defaultBrokerConfig, parseConfig, parseConfigFile } from '../../src/config/index.js';
import { defaultNodeId, nodeIdProblem, prefixProblem } from '../../src/config/cluster.js';

const dir = mkdtempSync(join(tmpdir(), 'midge-config-cluster-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function write(lines: string[]): string {
  const path = join(dir, `c${++n}.conf`);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

/** Parsing fails with a ConfigError at this file and line; returns its message. */
function refused(lines: string[], line: number): string {
  const path = write(lines);
  let caught: unknown;
  try {
    parseConfigFile(path);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
  assert.equal(caught.file, path);
  assert.equal(caught.line, line);
  assert.ok(caught.message.endsWith(` in ${path}:${line}.`), caught.message);
  return caught.message;
}

describe('cluster keys: defaults and good values', () => {
  test('without any cluster key: no Redis, no node id, prefix "midge:"', () => {
    const d = defaultBrokerConfig();
    assert.equal(d.clusterRedis, undefined);
    assert.equal(d.clusterNodeId, undefined);
    assert.equal(d.clusterPrefix, 'midge:');
  });

  const goodUrls = [
    'redis://127.0.0.1:6379',
    'redis://redis.example',
    'redis://user:pa%40ss@redis.example:6390/4',
    'redis://:secret@10.0.0.1/0',
    'redis://[::1]:7000/15',
    'rediss://cache.internal:6380',
    'redis+sentinel://s1:26379,s2:26380,[::1]/mymaster',
    'redis+sentinel://u:p@s1:26379/mymaster/2',
    'REDIS://host:1/',
  ];
  for (const url of goodUrls) {
    test(`cluster_redis ${url} is accepted as given`, () => {
      const cfg = parseConfig(`cluster_redis ${url}\n`, 'x.conf');
      assert.equal(cfg.clusterRedis, url);
    });
  }

  test('cluster_node_id accepts a name with ":", "." and non-ASCII letters, and 128 bytes exactly', () => {
    assert.equal(parseConfig('cluster_node_id node-a.eu:1883\n', 'x.conf').clusterNodeId, 'node-a.eu:1883');
    assert.equal(parseConfig('cluster_node_id nœud-é\n', 'x.conf').clusterNodeId, 'nœud-é');
    const max = 'é'.repeat(64); // 128 bytes
    assert.equal(parseConfig(`cluster_node_id ${max}\n`, 'x.conf').clusterNodeId, max);
  });

  test('cluster_prefix sets the key prefix; the last of two lines wins', () => {
    assert.equal(parseConfig('cluster_prefix prod:\ncluster_prefix eu-prod:\n', 'x.conf').clusterPrefix, 'eu-prod:');
  });

  test('the three keys together, with comments and CRLF line ends', () => {
    const cfg = parseConfig('# cluster\r\ncluster_redis redis://r:6379/1\r\ncluster_node_id a\r\ncluster_prefix p:\r\n', 'x.conf');
    assert.deepEqual([cfg.clusterRedis, cfg.clusterNodeId, cfg.clusterPrefix], ['redis://r:6379/1', 'a', 'p:']);
    assert.deepEqual(checkSupported(cfg), [], 'no warning when cluster_redis is set');
  });

  test('the default node id is the host name and the port, and is itself a valid node id', () => {
    const id = defaultNodeId(1883);
    assert.match(id, /:1883$/);
    assert.equal(nodeIdProblem(id), undefined);
  });
});

describe('cluster keys: bad values name the file and line', () => {
  const badUrls: Array<[string, RegExp]> = [
    ['http://127.0.0.1:6379', /the scheme must be redis, rediss or redis\+sentinel, not http/],
    ['127.0.0.1:6379', /not a Redis URL/],
    ['redis://', /the host is missing/],
    ['redis:///0', /the host is missing/],
    ['redis://user:pw@/0', /the host is missing/],
    ['redis://host:0', /the port must be a number from 1 to 65535, not "0"/],
    ['redis://host:65536', /the port must be a number from 1 to 65535, not "65536"/],
    ['redis://host:-1', /the port must be a number from 1 to 65535, not "-1"/],
    ['redis://host:abc', /the port must be a number from 1 to 65535, not "abc"/],
    ['redis://host:', /the port must be a number from 1 to 65535, not ""/],
    ['redis://host/abc', /the database must be a non-negative integer, not "abc"/],
    ['redis://host/-1', /the database must be a non-negative integer, not "-1"/],
    ['redis://host/1.5', /the database must be a non-negative integer, not "1.5"/],
    ['redis://host/99999999999', /the database must be a non-negative integer/],
    ['redis://host/1/2', /too many path parts/],
    ['redis://a:1,b:2', /takes one host; several are for redis\+sentinel/],
    ['redis://host?db=1', /query strings/],
    ['redis://ho$t:1', /is not a host name or address/],
    ['redis://[::1:6379', /no closing bracket/],
    ['redis+sentinel://s1:26379', /the master name is missing/],
    ['redis+sentinel://s1:26379/', /the master name is missing/],
    ['redis+sentinel://s1:26379,,s2/m', /an empty host in the list of Sentinels/],
    ['redis+sentinel://s1:99999/m', /the port must be a number from 1 to 65535/],
    ['redis+sentinel://s1/m/x', /the database must be a non-negative integer, not "x"/],
    ['redis+sentinel://s1/m/1/2', /too many path parts/],
  ];
  for (const [url, why] of badUrls) {
    test(`cluster_redis ${url} is refused`, () => {
      const m = refused(['listener 1883', `cluster_redis ${url}`], 2);
      assert.match(m, /^Error: Invalid cluster_redis value \(/);
      assert.match(m, why);
    });
  }

  test('cluster_redis errors never show the password (bad port, bad database, bad host, bad percent-encoding)', () => {
    for (const url of ['redis://u:hunter2@h:0', 'redis://u:hunter2@h/x', 'redis://:hunter2@', 'redis+sentinel://u:hunter2@s1', 'redis://u:hunter2%zz@h', 'redis://hunter2@h:0', 'ftp://u:hunter2@h']) {
      const m = refused([`cluster_redis ${url}`], 1);
      assert.doesNotMatch(m, /hunter2/, m);
      assert.match(m, /\*\*\*/, `the credentials are shown as *** in ${m}`);
    }
  });

  test('cluster_redis with no value or two values is refused', () => {
    assert.match(refused(['cluster_redis'], 1), /cluster_redis/);
    assert.match(refused(['cluster_redis redis://a:1 redis://b:2'], 1), /cluster_redis/);
  });

  const badIds: Array<[string, string, RegExp]> = [
    ['129 bytes', 'x'.repeat(129), /at most 128 bytes \(this one has 129\)/],
    ['65 two-byte characters (130 bytes)', 'é'.repeat(65), /at most 128 bytes \(this one has 130\)/],
    ['a "/"', 'a/b', /must not contain "\/", "\+" or "#"/],
    ['a "+"', 'a+b', /must not contain/],
    ['a "#"', 'a#b', /must not contain/],
    ['a control character', 'a\u0001b', /whitespace or control characters/],
    ['a no-break space', 'a\u00a0b', /whitespace or control characters/],
  ];
  for (const [what, id, why] of badIds) {
    test(`cluster_node_id with ${what} is refused`, () => {
      const m = refused(['# node', `cluster_node_id ${id}`], 2);
      assert.match(m, /^Error: Invalid cluster_node_id value/);
      assert.match(m, why);
    });
  }

  test('cluster_node_id and cluster_prefix with no value are refused', () => {
    assert.match(refused(['cluster_node_id'], 1), /cluster_node_id/);
    assert.match(refused(['cluster_redis redis://h', 'cluster_prefix'], 2), /cluster_prefix/);
    assert.match(refused(['cluster_node_id a b'], 1), /cluster_node_id/);
  });

  test('the checks themselves: an empty node id and an empty or spaced prefix are refused', () => {
    assert.match(nodeIdProblem('')!, /must not be empty/);
    assert.match(nodeIdProblem('a b')!, /whitespace/);
    assert.match(prefixProblem('')!, /must not be empty/);
    assert.match(prefixProblem('a\tb')!, /whitespace/);
    assert.equal(prefixProblem('midge:'), undefined);
  });
});

describe('cluster keys without cluster_redis', () => {
  test('cluster_node_id and cluster_prefix without cluster_redis are warnings at their lines', () => {
    const path = write(['listener 1883', 'cluster_node_id a', 'cluster_prefix p:']);
    const w = checkSupported(parseConfigFile(path));
    assert.deepEqual(w.map((x) => [x.message, x.at]), [
      ['cluster_node_id without cluster_redis changes nothing: this broker is a single node', { file: path, line: 2 }],
      ['cluster_prefix without cluster_redis changes nothing: this broker is a single node', { file: path, line: 3 }],
    ]);
  });
});
