/**
 * Bridge configuration: mosquitto's `connection` blocks parsed with its defaults and its topic-mapping
 * table (mosquitto.conf(5), "Configuring Bridges"), and every bad input an error naming file and line.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, parseConfigFile } from '../../src/config/index.js';
import { mapIncoming, mapOutgoing, nextRestartDelay } from '../../src/bridge/index.js';

const dir = mkdtempSync(join(tmpdir(), 'midge-bridge-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

function write(lines: string[]): string {
  const path = join(dir, `b${n++}.conf`);
  writeFileSync(path, lines.join('\n'));
  return path;
}

describe('bridge configuration that mosquitto accepts', () => {
  test('a minimal block gets mosquitto defaults (client ids from the host name, notification topic, backoff 5..30)', () => {
    const cfg = parseConfigFile(write(['listener 1883', 'connection edge', 'address broker.example:1884', 'topic sensors/#']));
    assert.equal(cfg.bridges.length, 1);
    const b = cfg.bridges[0]!;
    assert.equal(b.name, 'edge');
    assert.deepEqual(b.addresses, [{ host: 'broker.example', port: 1884 }]);
    assert.equal(b.remoteClientId, `${hostname()}.edge`);
    assert.equal(b.localClientId, `local.${hostname()}.edge`);
    assert.equal(b.notificationTopic, `$SYS/broker/connection/${hostname()}.edge/state`);
    assert.equal(b.protocolVersion, 4);
    assert.equal(b.cleanSession, false);
    assert.equal(b.localCleanSession, undefined);
    assert.equal(b.keepalive, 60);
    assert.equal(b.restartBase, 5);
    assert.equal(b.restartCap, 30);
    assert.equal(b.startType, 'automatic');
    assert.equal(b.idleTimeout, 60);
    assert.equal(b.threshold, 10);
    assert.equal(b.notifications, true);
    assert.equal(b.notificationsLocalOnly, false);
    assert.equal(b.tryPrivate, true);
    assert.equal(b.outgoingRetain, true);
    assert.equal(b.attemptUnsubscribe, true);
    assert.equal(b.roundRobin, false);
    assert.equal(b.tlsVersion, 'tlsv1.2');
    assert.deepEqual(b.topics.map((t) => [t.direction, t.qos, t.localTopic, t.remoteTopic]), [['out', 0, 'sensors/#', 'sensors/#']]);
  });

  test('every supported key is read, and old names (clientid, username, password) still work', () => {
    const path = write([
      'connection a', 'addresses 10.0.0.1 10.0.0.2:1885 [::1]:1886', 'round_robin true', 'topic # both 2',
      'bridge_protocol_version mqttv50', 'cleansession true', 'local_cleansession false', 'clientid r1', 'local_clientid l1',
      'username u', 'password p', 'local_username lu', 'local_password lp', 'keepalive_interval 2', 'restart_timeout 20',
      'start_type lazy', 'idle_timeout 7', 'threshold 3', 'notifications false', 'notification_topic bridges/a',
      'notifications_local_only true', 'try_private false', 'bridge_outgoing_retain false', 'bridge_attempt_unsubscribe false',
      'bridge_max_packet_size 2000', 'bridge_receive_maximum 10', 'bridge_session_expiry_interval 60',
      'bridge_cafile /tmp/ca.crt', 'bridge_certfile /tmp/c.crt', 'bridge_keyfile /tmp/c.key', 'bridge_insecure true',
      'bridge_tls_version tlsv1.3', 'bridge_alpn mqtt', 'bridge_bind_address 127.0.0.1',
      'connection b', 'address h2', 'remote_clientid rb', 'remote_username ru', 'remote_password rp', 'topic x in',
      'restart_timeout 2 9',
    ]);
    const [a, b] = parseConfigFile(path).bridges;
    assert.deepEqual(a!.addresses, [{ host: '10.0.0.1', port: 1883 }, { host: '10.0.0.2', port: 1885 }, { host: '::1', port: 1886 }]);
    assert.equal(a!.roundRobin, true);
    assert.equal(a!.protocolVersion, 5);
    assert.equal(a!.cleanSession, true);
    assert.equal(a!.localCleanSession, false);
    assert.equal(a!.remoteClientId, 'r1');
    assert.equal(a!.localClientId, 'l1');
    assert.equal(a!.remoteUsername, 'u');
    assert.equal(a!.remotePassword, 'p');
    assert.equal(a!.localUsername, 'lu');
    assert.equal(a!.localPassword, 'lp');
    assert.equal(a!.keepalive, 5, 'mosquitto raises a keepalive below 5 to 5');
    assert.equal(a!.restartBase, 20);
    assert.equal(a!.restartCap, undefined, 'one value is a constant delay');
    assert.equal(a!.startType, 'lazy');
    assert.equal(a!.idleTimeout, 7);
    assert.equal(a!.threshold, 3);
    assert.equal(a!.notifications, false);
    assert.equal(a!.notificationTopic, 'bridges/a');
    assert.equal(a!.notificationsLocalOnly, true);
    assert.equal(a!.tryPrivate, false);
    assert.equal(a!.outgoingRetain, false);
    assert.equal(a!.attemptUnsubscribe, false);
    assert.equal(a!.maxPacketSize, 2000);
    assert.equal(a!.receiveMaximum, 10);
    assert.equal(a!.sessionExpiryInterval, 60);
    assert.equal(a!.cafile, '/tmp/ca.crt');
    assert.equal(a!.insecure, true);
    assert.equal(a!.tlsVersion, 'tlsv1.3');
    assert.equal(a!.alpn, 'mqtt');
    assert.equal(a!.bindAddress, '127.0.0.1');
    assert.equal(b!.remoteClientId, 'rb');
    assert.equal(b!.localClientId, 'local.rb');
    assert.equal(b!.remoteUsername, 'ru');
    assert.equal(b!.remotePassword, 'rp');
    assert.equal(b!.restartBase, 2);
    assert.equal(b!.restartCap, 9);
    assert.equal(b!.topics[0]!.direction, 'in');
  });

  test('bridge keys after a listener line still belong to the bridge above it, as in mosquitto', () => {
    const cfg = parseConfigFile(write(['connection a', 'address h', 'listener 1884', 'topic t/# in 1', 'allow_anonymous true']));
    assert.equal(cfg.bridges[0]!.topics[0]!.localTopic, 't/#');
    assert.equal(cfg.listeners.length, 1);
  });

  // mosquitto.conf(5)'s table: pattern, local prefix, remote prefix -> full local topic, full remote topic
  const TABLE: Array<[string, string, string]> = [
    ['topic pattern/# both 0 L/ R/', 'L/pattern/#', 'R/pattern/#'],
    ['topic pattern/# both 0 L/ ""', 'L/pattern/#', 'pattern/#'],
    ['topic pattern/# both 0 "" R/', 'pattern/#', 'R/pattern/#'],
    ['topic pattern/# both 0 "" ""', 'pattern/#', 'pattern/#'],
    ['topic "" both 0 local/t remote/t', 'local/t', 'remote/t'],
  ];
  for (const [line, local, remote] of TABLE) {
    test(`mapping table: "${line}" subscribes ${local} locally and ${remote} remotely`, () => {
      const t = parseConfigFile(write(['connection a', 'address h', line])).bridges[0]!.topics[0]!;
      assert.equal(t.localTopic, local);
      assert.equal(t.remoteTopic, remote);
    });
  }

  test('topic mapping both ways: prefixes swapped, first matching line wins, in/out lines only one way', () => {
    const topics = parseConfigFile(write([
      'connection a', 'address h', 'topic # both 2 local/topic/ remote/topic/', 'topic clients/total in 0 test/mosquitto/org/ $SYS/broker/',
      'topic "" out 1 single/local single/remote', 'topic x/# out 0 "" R/',
    ])).bridges[0]!.topics;
    assert.equal(mapOutgoing(topics, 'local/topic/a/b'), 'remote/topic/a/b');
    assert.equal(mapIncoming(topics, 'remote/topic/a/b'), 'local/topic/a/b');
    assert.equal(mapIncoming(topics, '$SYS/broker/clients/total'), 'test/mosquitto/org/clients/total');
    assert.equal(mapOutgoing(topics, 'test/mosquitto/org/clients/total'), undefined, 'an in line does not send out');
    assert.equal(mapOutgoing(topics, 'single/local'), 'single/remote');
    assert.equal(mapIncoming(topics, 'single/remote'), undefined, 'an out line does not bring in');
    assert.equal(mapOutgoing(topics, 'x/1'), 'R/x/1');
  });

  test('restart_timeout backoff: constant stays; base+cap grows by decorrelated jitter, never above the cap nor below the base', () => {
    assert.equal(nextRestartDelay({ restartBase: 7 }, 7), 7);
    assert.equal(nextRestartDelay({ restartBase: 2, restartCap: 100 }, 2, () => 0.999), 5); // base + floor(0.999 * (6 - 2))
    assert.equal(nextRestartDelay({ restartBase: 2, restartCap: 10 }, 9, () => 0.999), 10);
    let d = 5;
    for (let i = 0; i < 50; i++) {
      d = nextRestartDelay({ restartBase: 5, restartCap: 30 }, d);
      assert.ok(d >= 5 && d <= 30, String(d));
    }
  });
});

describe('bad bridge configuration: an error naming file and line', () => {
  const BAD: Array<[string[], string, number]> = [
    [['connection a', 'address h', 'topic # sideways 1'], "Invalid bridge topic direction 'sideways' (out, in or both)", 3],
    [['connection a', 'address h', 'topic # out 3'], "Invalid bridge QoS level '3' (0, 1 or 2)", 3],
    [['connection a', 'address h', 'topic # in x'], "Invalid bridge QoS level 'x' (0, 1 or 2)", 3],
    [['connection a', 'address h', 'topic # in 1 L/'], 'Invalid bridge topic: a local prefix needs a remote prefix after it ("" for none)', 3],
    [['connection a', 'address h', 'topic # in 1 L/+ R/'], "Invalid bridge topic local prefix 'L/+' (no wildcards)", 3],
    [['connection a', 'address h', 'topic "" in 1 "" R'], 'Invalid bridge topic: the pattern "" needs both a local and a remote prefix (the full local and remote topics)', 3],
    [['connection a', 'address h', 'topic a/#/b'], "Invalid bridge topic 'a/#/b'", 3],
    [['connection a', 'address h', 'topic # in 1 a b extra'], 'Unexpected extra value "extra" for topic', 3],
    [['listener 1883', 'topic #'], 'The bridge option "topic" must come after a "connection NAME" line', 2],
    [['address 10.0.0.1'], 'The bridge option "address" must come after a "connection NAME" line', 1],
    [['remote_username u'], 'The bridge option "remote_username" must come after a "connection NAME" line', 1],
    [['connection a', 'topic #'], 'Bridge a has no address (address HOST[:PORT])', 1],
    [['connection a', 'address h'], 'Bridge a has no topic line (topic PATTERN [out|in|both [QOS [LOCAL_PREFIX REMOTE_PREFIX]]])', 1],
    [['connection a', 'address h:70000', 'topic #'], 'Invalid port in address value (h:70000)', 2],
    [['connection a', 'address h', 'address h2', 'topic #'], 'Duplicate address value in bridge a (give every address on one line)', 3],
    [['connection a', 'address h', 'topic #', 'connection a'], 'Duplicate bridge name "a" (the first is at FILE:1)', 4],
    [['connection a', 'address h', 'topic #', 'bridge_psk 0a0b'], '"bridge_psk": PSK is not supported by Midge (Node\'s TLS has no PSK for bridges here); use certificates (bridge_cafile, bridge_certfile, bridge_keyfile)', 4],
    [['connection a', 'bridge_identity me'], '"bridge_identity": PSK is not supported by Midge (Node\'s TLS has no PSK for bridges here); use certificates (bridge_cafile, bridge_certfile, bridge_keyfile)', 2],
    [['connection a', 'bridge_require_ocsp true'], 'The "bridge_require_ocsp" option is not supported by Midge yet', 2],
    [['connection a', 'bridge_protocol_version mqttv6'], 'Invalid bridge_protocol_version value (mqttv6): mqttv31, mqttv311 or mqttv50', 2],
    [['connection a', 'start_type manual'], 'Invalid start_type value (manual): automatic, lazy or once', 2],
    [['connection a', 'restart_timeout 10 5'], 'Invalid restart_timeout value (10 5): the cap must not be less than the base', 2],
    [['connection a', 'restart_timeout 1 2 3'], 'Unexpected extra value "3" for restart_timeout', 2],
    [['connection a', 'cleansession yes'], 'Invalid cleansession value (yes)', 2],
    [['connection a', 'notification_topic a/#'], 'Invalid notification_topic value (a/#)', 2],
    [['connection a', 'address h', 'topic #', 'remote_password p'], 'Bridge a has remote_password but no remote_username', 1],
    [['connection a', 'address h', 'topic #', 'bridge_certfile c.crt'], 'Bridge a needs both bridge_certfile and bridge_keyfile, or neither', 1],
    [['connection a', 'address h', 'topic #', 'bridge_insecure true'], 'Bridge a has TLS options but no bridge_cafile or bridge_capath (one of them turns TLS on)', 1],
    [['connection'], 'Empty connection value', 1],
    [['connection a', 'address h', 'topic #', 'remote_clientid edge+1'],
      'Bridge a: its notification topic $SYS/broker/connection/edge+1/state is not a valid topic (the remote client id has + or #); set notification_topic or notifications false', 1],
  ];
  for (const [lines, detail, line] of BAD) {
    test(`"${lines.join(' | ')}" fails at line ${line}: ${detail}`, () => {
      const path = write(lines);
      assert.throws(() => parseConfigFile(path), (err: unknown) => {
        assert.ok(err instanceof ConfigError, String(err));
        assert.equal(err.message, `Error: ${detail.replaceAll('FILE', path)} in ${path}:${line}.`);
        assert.equal(err.file, path);
        assert.equal(err.line, line);
        return true;
      });
    });
  }
});
