import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError, defaultBrokerConfig, defaultListenerConfig, parseConfig, parseConfigFile,
  type BrokerConfig,
} from '../../src/config/index.js';

const dir = mkdtempSync(join(tmpdir(), 'midge-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** Writes `lines` (joined with `eol`) to a fresh file and returns its path. */
function write(lines: string[], eol = '\n', name = `c${n++}.conf`, inDir = dir): string {
  const path = join(inDir, name);
  writeFileSync(path, lines.join(eol));
  return path;
}

function load(lines: string[], eol = '\n'): BrokerConfig {
  return parseConfigFile(write(lines, eol));
}

/** Asserts that parsing throws a ConfigError with exactly this message, file and line. */
function assertError(fn: () => unknown, message: string, file: string, line: number): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.message, message);
    assert.equal(err.file, file);
    assert.equal(err.line, line);
    return true;
  });
}

describe('parsing good configuration files', () => {
  test('an empty file gives the defaults, with the file as the only source', () => {
    const path = write([]);
    assert.deepEqual(parseConfigFile(path), { ...defaultBrokerConfig(), sources: [path] });
  });

  test('the defaults are mosquitto 2.0 defaults', () => {
    const d = defaultBrokerConfig();
    assert.equal(d.maxInflightMessages, 20);
    assert.equal(d.maxQueuedMessages, 1000);
    assert.equal(d.maxQueuedBytes, 0);
    assert.equal(d.maxPacketSize, 0);
    assert.equal(d.messageSizeLimit, 0);
    assert.equal(d.maxKeepalive, 65535);
    assert.equal(d.retainAvailable, true);
    assert.equal(d.sysInterval, 10);
    assert.equal(d.allowAnonymous, undefined);
    assert.equal(d.persistence, false);
    assert.equal(d.persistenceFile, 'midge.db');
    assert.equal(d.autosaveInterval, 1800);
    assert.deepEqual(d.logDest, ['stderr']);
    assert.deepEqual(d.listeners, []);
    assert.notEqual(defaultBrokerConfig().logTypes, d.logTypes, 'each call returns fresh arrays');
  });

  test('a full file with comments, blank lines, trailing whitespace and CRLF line endings', () => {
    const c = load([
      '# Config file for midge',
      '',
      '#per_listener_settings false',
      '   # an indented comment',
      'allow_anonymous false  ',
      'password_file /etc/midge/passwd\t',
      'acl_file /etc/midge/acl',
      'max_inflight_messages 0',
      'max_queued_messages 5000',
      'max_queued_bytes 1048576',
      'max_packet_size 65536',
      'message_size_limit 268435455',
      'max_keepalive 120',
      'retain_available false',
      'sys_interval 0',
      'persistent_client_expiration 2d',
      'persistence true',
      'persistence_location /var/lib/midge/',
      'persistence_file midge.db',
      'autosave_interval 60',
      'connection_messages false',
      'log_type error',
      'log_type warning',
      'log_dest stdout',
      'log_dest file /var/log/midge.log',
      'log_timestamp false',
      'queue_qos0_messages true',
      'upgrade_outgoing_qos true',
      'allow_zero_length_clientid false',
      'max_topic_alias 0',
      'clientid_prefixes secure-',
      'pid_file /run/midge.pid',
      'user midge',
      '',
      'listener 1883',
      'listener 8883 0.0.0.0',
      'cafile /etc/midge/ca.crt',
      'capath /etc/ssl/certs',
      'certfile /etc/midge/server.crt',
      'keyfile /etc/midge/server.key',
      'tls_version tlsv1.2',
      'ciphers ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384',
      'require_certificate true',
      'use_identity_as_username true',
      'use_subject_as_username false',
      'crlfile /etc/midge/crl.pem',
      'listener 8080 ::1',
      'protocol websockets',
      'socket_domain ipv6',
      'max_connections 100',
      'mount_point tenant1/',
      '',
    ], '\r\n');
    assert.equal(c.allowAnonymous, false);
    assert.equal(c.passwordFile, '/etc/midge/passwd');
    assert.equal(c.aclFile, '/etc/midge/acl');
    assert.equal(c.maxInflightMessages, 0);
    assert.equal(c.maxQueuedMessages, 5000);
    assert.equal(c.maxQueuedBytes, 1048576);
    assert.equal(c.maxPacketSize, 65536);
    assert.equal(c.messageSizeLimit, 268435455);
    assert.equal(c.maxKeepalive, 120);
    assert.equal(c.retainAvailable, false);
    assert.equal(c.sysInterval, 0);
    assert.equal(c.persistentClientExpiration, 2 * 86400);
    assert.equal(c.persistence, true);
    assert.equal(c.persistenceLocation, '/var/lib/midge/');
    assert.equal(c.persistenceFile, 'midge.db');
    assert.equal(c.autosaveInterval, 60);
    assert.equal(c.connectionMessages, false);
    assert.deepEqual(c.logTypes, ['error', 'warning']);
    assert.deepEqual(c.logDest, ['stdout', 'file:/var/log/midge.log']);
    assert.equal(c.logTimestamp, false);
    assert.equal(c.queueQos0Messages, true);
    assert.equal(c.upgradeOutgoingQos, true);
    assert.equal(c.allowZeroLengthClientid, false);
    assert.equal(c.maxTopicAlias, 0);
    assert.equal(c.clientidPrefixes, 'secure-');
    assert.equal(c.pidFile, '/run/midge.pid');
    assert.equal(c.user, 'midge');
    assert.deepEqual(c.listeners, [
      defaultListenerConfig(1883),
      {
        ...defaultListenerConfig(8883),
        bindAddress: '0.0.0.0',
        cafile: '/etc/midge/ca.crt',
        capath: '/etc/ssl/certs',
        certfile: '/etc/midge/server.crt',
        keyfile: '/etc/midge/server.key',
        tlsVersion: 'tlsv1.2',
        ciphers: 'ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384',
        requireCertificate: true,
        useIdentityAsUsername: true,
        useSubjectAsUsername: false,
        crlfile: '/etc/midge/crl.pem',
      },
      {
        ...defaultListenerConfig(8080),
        bindAddress: '::1',
        protocol: 'websockets',
        socketDomain: 'ipv6',
        maxConnections: 100,
        mountPoint: 'tenant1/',
      },
    ]);
  });

  test('port and bind_address make the default listener, which comes first', () => {
    const c = load(['listener 9001', 'protocol websockets', 'port 1884', 'bind_address 127.0.0.1']);
    assert.deepEqual(c.listeners, [
      { ...defaultListenerConfig(1884), bindAddress: '127.0.0.1' },
      { ...defaultListenerConfig(9001), protocol: 'websockets' },
    ]);
  });

  test('per-listener keys before any listener apply to the default listener on port 1883', () => {
    const c = load(['max_connections 10', 'listener 1884', 'max_connections 20']);
    assert.deepEqual(c.listeners.map((l) => [l.port, l.maxConnections]), [[1883, 10], [1884, 20]]);
  });

  test('global keys after a listener are still global', () => {
    const c = load(['listener 1883', 'max_inflight_messages 5', 'allow_anonymous true']);
    assert.equal(c.maxInflightMessages, 5);
    assert.equal(c.allowAnonymous, true);
    assert.equal(c.listeners[0]!.allowAnonymous, undefined);
  });

  test('with per_listener_settings true, security keys apply to the listener they follow', () => {
    const c = load([
      'per_listener_settings true',
      'listener 1883 127.0.0.1',
      'allow_anonymous true',
      'listener 8883',
      'allow_anonymous false',
      'password_file /etc/midge/passwd',
      'acl_file /etc/midge/acl',
    ]);
    assert.equal(c.perListenerSettings, true);
    assert.equal(c.allowAnonymous, undefined);
    assert.equal(c.passwordFile, undefined);
    assert.equal(c.listeners[0]!.allowAnonymous, true);
    assert.equal(c.listeners[1]!.allowAnonymous, false);
    assert.equal(c.listeners[1]!.passwordFile, '/etc/midge/passwd');
    assert.equal(c.listeners[1]!.aclFile, '/etc/midge/acl');
  });

  test('port 0 (an ephemeral port, for tests) is accepted, also more than once', () => {
    const c = load(['listener 0', 'listener 0 127.0.0.1']);
    assert.deepEqual(c.listeners.map((l) => l.port), [0, 0]);
  });

  test('the same port on different addresses is two listeners', () => {
    const c = load(['listener 1883 127.0.0.1', 'listener 1883 ::1']);
    assert.equal(c.listeners.length, 2);
  });

  test('paths keep their spaces; a repeated key keeps the last value', () => {
    const c = load(['password_file /etc/my midge/passwd', 'max_keepalive 10', 'max_keepalive 20']);
    assert.equal(c.passwordFile, '/etc/my midge/passwd');
    assert.equal(c.maxKeepalive, 20);
  });

  test('persistent_client_expiration takes mosquitto\'s units: h, d, w, m (30 days) and y (365 days)', () => {
    const table: Array<[string, number]> = [
      ['1h', 3600], ['2d', 172800], ['3w', 1814400], ['1m', 2592000], ['1y', 31536000], ['14d', 1209600],
    ];
    for (const [text, seconds] of table) {
      assert.equal(load([`persistent_client_expiration ${text}`]).persistentClientExpiration, seconds, text);
    }
  });

  test('log_type and log_dest accumulate, and log_dest none or a repeated value is kept once', () => {
    const c = load(['log_type all', 'log_type all', 'log_dest none', 'log_dest none']);
    assert.deepEqual(c.logTypes, ['all']);
    assert.deepEqual(c.logDest, ['none']);
  });

  test('a UTF-8 byte order mark at the start of the file is ignored', () => {
    assert.equal(load(['\ufeffmax_keepalive 30']).maxKeepalive, 30);
  });

  test('parseConfig parses text under a given file name', () => {
    const c = parseConfig('listener 1883\nallow_anonymous true\n', '/virtual/midge.conf');
    assert.deepEqual(c.sources, ['/virtual/midge.conf']);
    assert.equal(c.allowAnonymous, true);
  });

  test('include_dir reads DIR/*.conf in alphabetical order and lists every file in sources', () => {
    const inc = join(dir, 'inc-good');
    mkdirSync(inc);
    write(['max_keepalive 30', 'listener 1884'], '\n', 'b.conf', inc);
    write(['max_keepalive 20', 'listener 1885'], '\n', 'a.conf', inc);
    write(['not a config file'], '\n', 'README', inc);
    write(['max_keepalive 99'], '\n', 'c.conf.disabled', inc);
    const main = write(['listener 1883', `include_dir ${inc}`]);
    const c = parseConfigFile(main);
    assert.deepEqual(c.sources, [main, join(inc, 'a.conf'), join(inc, 'b.conf')]);
    assert.equal(c.maxKeepalive, 30);
    assert.deepEqual(c.listeners.map((l) => l.port), [1883, 1885, 1884]);
  });
});

describe('rejecting bad configuration files with the file and line', () => {
  // [lines, message detail, line number]
  const BAD: ReadonlyArray<readonly [string[], string, number]> = [
    [['listener 1883', '', 'foo bar'], 'Unknown configuration variable "foo"', 3],
    [['# comment', 'Max_keepalive 10'], 'Unknown configuration variable "Max_keepalive"', 2],
    [['max_inflight_messages abc'], 'Invalid max_inflight_messages value (abc)', 1],
    [['max_inflight_messages 12x'], 'Invalid max_inflight_messages value (12x)', 1],
    [['max_inflight_messages 1.5'], 'Invalid max_inflight_messages value (1.5)', 1],
    [['max_inflight_messages 65536'], 'Invalid max_inflight_messages value (65536)', 1],
    [['max_queued_messages -1'], 'Invalid max_queued_messages value (-1)', 1],
    [['max_packet_size 10'], 'Invalid max_packet_size value (10)', 1],
    [['message_size_limit 268435456'], 'Invalid message_size_limit value (268435456)', 1],
    [['max_connections -2'], 'Invalid max_connections value (-2)', 1],
    [['', '', 'port 70000'], 'Invalid port value (70000)', 3],
    [['listener 65536'], 'Invalid port value (65536)', 1],
    [['listener -1'], 'Invalid port value (-1)', 1],
    [['listener mqtt'], 'Invalid port value (mqtt)', 1],
    [['persistence yes'], 'Invalid persistence value (yes)', 1],
    [['retain_available True'], 'Invalid retain_available value (True)', 1],
    [['allow_anonymous 1'], 'Invalid allow_anonymous value (1)', 1],
    [['listener 1883', 'protocol tcp'], 'Invalid protocol value (tcp)', 2],
    [['listener 1883', 'socket_domain ipv5'], 'Invalid socket_domain value (ipv5)', 2],
    [['listener 1883', 'tls_version tlsv1.0'], 'Invalid tls_version value (tlsv1.0)', 2],
    [['listener 1883', 'mount_point tenant/+/'], 'Invalid mount_point value (tenant/+/)', 2],
    [['log_type verbose'], 'Invalid log_type value (verbose)', 1],
    [['log_dest printer'], 'Invalid log_dest value (printer)', 1],
    [['log_dest file'], 'Empty log_dest file value', 1],
    [['log_dest stdout extra'], 'Unexpected extra value "extra" for log_dest stdout', 1],
    [['log_dest file /a', 'log_dest file /b'], 'Only one "log_dest file" destination is allowed', 2],
    [['persistent_client_expiration 5'],
      'Invalid persistent_client_expiration value (5), expected a number and a unit h, d, w, m or y such as 2d', 1],
    [['persistent_client_expiration 0d'],
      'Invalid persistent_client_expiration value (0d), expected a number and a unit h, d, w, m or y such as 2d', 1],
    [['persistent_client_expiration 2s'],
      'Invalid persistent_client_expiration value (2s), expected a number and a unit h, d, w, m or y such as 2d', 1],
    [['max_keepalive'], 'Empty max_keepalive value', 1],
    [['persistence   '], 'Empty persistence value', 1],
    [['password_file'], 'Empty password_file value', 1],
    [['listener'], 'Empty listener value', 1],
    [['max_keepalive 10 20'], 'Unexpected extra value "20" for max_keepalive', 1],
    [['allow_anonymous true # allow everyone'], 'Unexpected extra value "#" for allow_anonymous', 1],
    [['listener 1883 0.0.0.0 extra'], 'Unexpected extra value "extra" for listener', 1],
    [['listener 0 /run/midge.sock'], 'Unix socket listeners ("listener 0 PATH") are not supported by Midge yet', 1],
    [['listener 8883', 'certfile /etc/server.crt'],
      'The listener on port 8883 has a certfile but no keyfile; a TLS listener needs both', 2],
    [['listener 1883', 'listener 8883', 'keyfile /etc/server.key', 'listener 9000'],
      'The listener on port 8883 has a keyfile but no certfile; a TLS listener needs both', 3],
    [['certfile /etc/server.crt', 'listener 8883'],
      'The listener on port 1883 has a certfile but no keyfile; a TLS listener needs both', 1],
    [['listener 1883', 'listener 1883'], 'Duplicate listener on port 1883 (the first is at FILE:1)', 2],
    [['allow_anonymous true', 'per_listener_settings true'],
      'per_listener_settings must come before any security option ("allow_anonymous" is at FILE:1)', 2],
    [['connection bridge-01'], 'Bridge bridge-01 has no address (address HOST[:PORT])', 1],
    [['address 10.0.0.1:1883'], 'The bridge option "address" must come after a "connection NAME" line', 1],
    [['connection b', 'bridge_tcp_keepalive 10'], 'The "bridge_tcp_keepalive" option is not supported by Midge yet', 2],
    [['auth_plugin /usr/lib/auth.so'], 'The "auth_plugin" option is not supported by Midge yet', 1],
    [['auth_opt_db_host localhost'], 'The "auth_opt_db_host" option is not supported by Midge yet', 1],
    [['plugin /usr/lib/dynsec.so'], 'The "plugin" option is not supported by Midge yet', 1],
    [['listener 8883', 'psk_hint hint'], 'The "psk_hint" option is not supported by Midge yet', 2],
    [['websockets_headers_size 70000'], 'Invalid websockets_headers_size value (70000)', 1],
    [['websockets_log_level 255'], 'The "websockets_log_level" option is not supported by Midge yet', 1],
    [['retry_interval 20'], 'The "retry_interval" option is obsolete (mosquitto ignores it too); remove it', 1],
  ];
  for (const [lines, detail, line] of BAD) {
    test(`"${lines.join(' | ')}" fails at line ${line}: ${detail}`, () => {
      const path = write(lines);
      const message = `Error: ${detail.replaceAll('FILE', path)} in ${path}:${line}.`;
      assertError(() => parseConfigFile(path), message, path, line);
    });
  }

  test('the same errors come with CRLF line endings and the same line numbers', () => {
    const path = write(['# a', 'listener 1883', 'foo 1'], '\r\n');
    assertError(() => parseConfigFile(path), `Error: Unknown configuration variable "foo" in ${path}:3.`, path, 3);
  });

  test('the error messages match mosquitto\'s wording', () => {
    const path = write(['', '', 'port 70000']);
    assert.throws(() => parseConfigFile(path), { message: `Error: Invalid port value (70000) in ${path}:3.` });
  });

  test('parseConfig names the given file in its errors', () => {
    assertError(() => parseConfig('\n\nfoo 1\n', '/virtual/x.conf'),
      'Error: Unknown configuration variable "foo" in /virtual/x.conf:3.', '/virtual/x.conf', 3);
  });

  test('an unreadable main file is an error naming the file', () => {
    const path = join(dir, 'does-not-exist.conf');
    assertError(() => parseConfigFile(path), `Error: Unable to open config file ${path} (ENOENT).`, path, 0);
  });

  test('a bad line in an included file names that file and its line', () => {
    const inc = join(dir, 'inc-bad');
    mkdirSync(inc);
    write(['max_keepalive 30'], '\n', 'a.conf', inc);
    const bad = write(['# included', 'listener 1884', 'max_connections lots'], '\r\n', 'b.conf', inc);
    const main = write(['listener 1883', `include_dir ${inc}`]);
    assertError(() => parseConfigFile(main), `Error: Invalid max_connections value (lots) in ${bad}:3.`, bad, 3);
  });

  test('an unreadable included file is reported at the include_dir line', () => {
    const inc = join(dir, 'inc-unreadable');
    mkdirSync(inc);
    const dangling = join(inc, 'a.conf');
    symlinkSync(join(dir, 'nowhere.conf'), dangling);
    const main = write(['# main', `include_dir ${inc}`]);
    assertError(() => parseConfigFile(main),
      `Error: Unable to open config file ${dangling} (ENOENT) in ${main}:2.`, main, 2);
  });

  test('a missing include_dir is reported at its line', () => {
    const missing = join(dir, 'no-such-dir');
    const main = write(['listener 1883', `include_dir ${missing}`]);
    assertError(() => parseConfigFile(main),
      `Error: Unable to open include_dir "${missing}" (ENOENT) in ${main}:2.`, main, 2);
  });

  test('include_dir inside an included file is an error at that line', () => {
    const inc = join(dir, 'inc-nested');
    mkdirSync(inc);
    const nested = write(['', `include_dir ${dir}`], '\n', 'a.conf', inc);
    const main = write([`include_dir ${inc}`]);
    assertError(() => parseConfigFile(main),
      `Error: include_dir is only allowed in the main configuration file in ${nested}:2.`, nested, 2);
  });

  test('include_dir must not contain the main configuration file', () => {
    const inc = join(dir, 'inc-self');
    mkdirSync(inc);
    const main = write([`include_dir ${inc}`], '\n', 'main.conf', inc);
    assertError(() => parseConfigFile(main),
      `Error: include_dir "${inc}" must not contain the main configuration file in ${main}:1.`, main, 1);
  });

  test('a duplicate listener across files names the second and points at the first', () => {
    const inc = join(dir, 'inc-dup');
    mkdirSync(inc);
    const second = write(['', 'listener 1883'], '\n', 'a.conf', inc);
    const main = write(['listener 1883', `include_dir ${inc}`]);
    assertError(() => parseConfigFile(main),
      `Error: Duplicate listener on port 1883 (the first is at ${main}:1) in ${second}:2.`, second, 2);
  });
});

describe('an error that echoes a very long value cuts it to a readable length', () => {
  const big = 'x'.repeat(10 * 1024 * 1024);
  const cut = `${'x'.repeat(100)}... (10485760 bytes)`;
  const cases: Array<[string, string]> = [
    [`max_inflight_messages ${big}`, `Invalid max_inflight_messages value (${cut})`],
    [`persistent_client_expiration ${big}`, `Invalid persistent_client_expiration value (${cut}), expected a number and a unit h, d, w, m or y such as 2d`],
    [`${big} 1`, `Unknown configuration variable "${cut}"`],
    [`auth_opt_${big} 1`, `The "auth_opt_${'x'.repeat(91)}... (10485769 bytes)" option is not supported by Midge yet`],
    [`retain_available true ${big}`, `Unexpected extra value "${cut}" for retain_available`],
    [`log_dest stdout ${big}`, `Unexpected extra value "${cut}" for log_dest stdout`],
    [`include_dir /nonexistent/${big}`, `Unable to open include_dir "/nonexistent/${'x'.repeat(1011)}... (10485773 bytes)" (ENAMETOOLONG)`],
  ];
  for (const [line, detail] of cases) {
    test(detail.slice(0, 60), () => {
      assertError(() => parseConfig(`# a 10 MB value\n${line}\n`, '/x/big.conf'), `Error: ${detail} in /x/big.conf:2.`, '/x/big.conf', 2);
    });
  }
});

test('max_keepalive below 10 is refused, as mosquitto 2.0 refuses it', () => {
  assert.throws(() => parseConfig('max_keepalive 2\n', '/x/ka.conf'), /max_keepalive.*\/x\/ka\.conf:1/);
  assert.equal(parseConfig('max_keepalive 10\n', '/x/ka.conf').maxKeepalive, 10);
});

test('midge_connect_timeout: whole seconds from 1 to 86400, default 30; others are refused with file and line', () => {
  assert.equal(parseConfig('', '/x/ct.conf').connectTimeout, 30);
  assert.equal(parseConfig('midge_connect_timeout 5\n', '/x/ct.conf').connectTimeout, 5);
  assert.equal(parseConfig('midge_connect_timeout 86400\n', '/x/ct.conf').connectTimeout, 86400);
  // bad inputs tried: 0 (would close every connection), negative, fractional, a unit, too large, missing value
  for (const bad of ['0', '-1', '1.5', '10s', '86401', '']) {
    assert.throws(() => parseConfig(`\nmidge_connect_timeout ${bad}\n`, '/x/ct.conf'), /midge_connect_timeout.*\/x\/ct\.conf:2/, `value '${bad}'`);
  }
});

describe('the limits: max_queued_bytes, max_inflight_bytes, memory_limit, global_max_connections/_clients, midge_max_retained_*', () => {
  test('the defaults are no limit', () => {
    const d = defaultBrokerConfig();
    assert.deepEqual(
      [d.maxQueuedBytes, d.maxInflightBytes, d.memoryLimit, d.globalMaxConnections, d.globalMaxClients, d.maxRetainedMessages, d.maxRetainedBytes],
      [0, 0, 0, -1, -1, -1, -1]);
  });

  test('good values are read', () => {
    const c = load(['max_queued_bytes 1048576', 'max_inflight_bytes 65536', 'memory_limit 268435456',
      'global_max_connections 500', 'global_max_clients 400', 'midge_max_retained_messages 1000', 'midge_max_retained_bytes 9007199254740991']);
    assert.deepEqual(
      [c.maxQueuedBytes, c.maxInflightBytes, c.memoryLimit, c.globalMaxConnections, c.globalMaxClients, c.maxRetainedMessages, c.maxRetainedBytes],
      [1048576, 65536, 268435456, 500, 400, 1000, 9007199254740991]);
    const off = load(['max_queued_bytes 0', 'max_inflight_bytes 0', 'memory_limit 0', 'global_max_connections -1',
      'midge_max_retained_messages 0', 'midge_max_retained_bytes -1']);
    assert.deepEqual(
      [off.maxQueuedBytes, off.maxInflightBytes, off.memoryLimit, off.globalMaxConnections, off.maxRetainedMessages, off.maxRetainedBytes],
      [0, 0, 0, -1, 0, -1]);
  });

  // [lines, message] : the error is at the last line
  const BAD: ReadonlyArray<readonly [string[], string]> = [
    [['max_queued_bytes -1'], 'Invalid max_queued_bytes value (-1)'],
    [['max_queued_bytes 1k'], 'Invalid max_queued_bytes value (1k)'],
    [['max_inflight_bytes -5'], 'Invalid max_inflight_bytes value (-5)'],
    [['max_inflight_bytes 1.5'], 'Invalid max_inflight_bytes value (1.5)'],
    [['memory_limit -1'], 'Invalid memory_limit value (-1)'],
    [['# 256 MiB', 'memory_limit 256M'], 'Invalid memory_limit value (256M)'],
    [['memory_limit 99999999999999999'], 'Invalid memory_limit value (99999999999999999)'],
    [['global_max_connections -2'], 'Invalid global_max_connections value (-2)'],
    [['global_max_connections 2147483648'], 'Invalid global_max_connections value (2147483648)'],
    [['global_max_connections many'], 'Invalid global_max_connections value (many)'],
    [['midge_max_retained_messages -2'], 'Invalid midge_max_retained_messages value (-2)'],
    [['midge_max_retained_messages 10 20'], 'Unexpected extra value "20" for midge_max_retained_messages'],
    [['listener 1883', 'midge_max_retained_bytes 0x100'], 'Invalid midge_max_retained_bytes value (0x100)'],
    [['midge_max_retained_bytes'], 'Empty midge_max_retained_bytes value'],
    [['global_max_clients -3'], 'Invalid global_max_clients value (-3)'],
    [['global_max_clients ten'], 'Invalid global_max_clients value (ten)'],
  ];
  for (const [lines, message] of BAD) {
    test(`${lines.join(' | ')} → ${message}`, () => {
      const path = write(lines);
      assertError(() => parseConfigFile(path), `Error: ${message} in ${path}:${lines.length}.`, path, lines.length);
    });
  }
});
