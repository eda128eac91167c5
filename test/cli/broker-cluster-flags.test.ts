/**
 * `midge broker --redis URL --node-id NAME`: parsed, and applied over the config file's cluster_redis
 * and cluster_node_id (the file's cluster_prefix stays).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadConfig, parseFlags, type Flags } from '../../src/cli/broker.js';

const dir = mkdtempSync(join(tmpdir(), 'midge-cluster-flags-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function flags(argv: string[]): Flags {
  const f = parseFlags(argv);
  assert.ok(typeof f !== 'string', String(f));
  return f;
}

test('--redis and --node-id are parsed (redis://, rediss://, redis+sentinel://)', () => {
  assert.deepEqual(flags(['--redis', 'redis://127.0.0.1:6379/2']).redis, 'redis://127.0.0.1:6379/2');
  assert.deepEqual(flags(['--redis', 'rediss://h:6380']).redis, 'rediss://h:6380');
  const f = flags(['-p', '1884', '--redis', 'redis+sentinel://s1,s2:26380/mymaster', '--node-id', 'b:1884', '-v']);
  assert.deepEqual([f.redis, f.nodeId, f.ports, f.verbose], ['redis+sentinel://s1,s2:26380/mymaster', 'b:1884', [1884], true]);
  assert.equal(flags([]).redis, undefined);
  assert.equal(flags([]).nodeId, undefined);
});

test('bad --redis and --node-id values are refused with a message: missing value, bad scheme, port 65536, empty id', () => {
  assert.equal(parseFlags(['--redis']), 'Error: --redis argument given, but no Redis URL specified.');
  assert.equal(parseFlags(['--node-id']), 'Error: --node-id argument given, but no node id specified.');
  assert.equal(parseFlags(['--redis', 'mqtt://u:pw@h']), 'Error: Invalid Redis URL specified (mqtt://u:***@h): the scheme must be redis, rediss or redis+sentinel, not mqtt.');
  assert.match(String(parseFlags(['--redis', 'redis://h:65536'])), /the port must be a number from 1 to 65535, not "65536"/);
  assert.equal(parseFlags(['--node-id', '']), 'Error: Invalid node id specified (): a node id must not be empty.');
});

test('the command line overrides the config file\'s cluster_redis and cluster_node_id; cluster_prefix stays', () => {
  const path = join(dir, 'cluster.conf');
  writeFileSync(path, 'cluster_redis redis://file-host:6379\ncluster_node_id from-file\ncluster_prefix eu:\n');
  const warnings: string[] = [];
  const fromFile = loadConfig(flags(['-c', path]), (m) => warnings.push(m));
  assert.deepEqual([fromFile.clusterRedis, fromFile.clusterNodeId, fromFile.clusterPrefix], ['redis://file-host:6379', 'from-file', 'eu:']);
  const over = loadConfig(flags(['-c', path, '--redis', 'redis://cli-host:6380/1', '--node-id', 'from-cli']), (m) => warnings.push(m));
  assert.deepEqual([over.clusterRedis, over.clusterNodeId, over.clusterPrefix], ['redis://cli-host:6380/1', 'from-cli', 'eu:']);
  assert.deepEqual(warnings, []);
});

test('--redis without a config file: the defaults with cluster_redis set; --node-id alone is a warning', () => {
  const cfg = loadConfig(flags(['--redis', 'redis://127.0.0.1:6379']), () => assert.fail('no warning expected'));
  assert.equal(cfg.clusterRedis, 'redis://127.0.0.1:6379');
  assert.equal(cfg.clusterPrefix, 'midge:');
  const warnings: string[] = [];
  loadConfig(flags(['--node-id', 'lonely']), (m) => warnings.push(m));
  assert.deepEqual(warnings, ['cluster_node_id without cluster_redis changes nothing: this broker is a single node.']);
});
