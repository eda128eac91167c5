/**
 * Every key the parser accepts is either applied to the broker (options, listeners, security, logger,
 * process) or refused with "not supported by Midge yet" and its file and line. The table below must
 * name every key of `KEYS`: adding a key to the parser without saying how it is honoured fails here.
 */
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KEYS } from '../../src/config/keys.js';
import { checkSupported, ConfigError, createConfiguredLogger, keyLocation, parseConfigFile, type BrokerConfig } from '../../src/config/index.js';
import { optionsFromConfig, planListeners } from '../../src/cli/broker.js';
import { loadSecurity } from '../../src/auth/config.js';
import type { SecurityOptions } from '../../src/auth/hooks.js';
import type { BrokerOptions } from '../../src/broker/options.js';
import { Logger } from '../../src/broker/log.js';
import { makePki, type Pki } from '../security/_pki.js';

let pki: Pki;
let dir: string;
before(async () => {
  pki = await makePki();
  dir = mkdtempSync(join(tmpdir(), 'midge-support-'));
  mkdirSync(join(dir, 'capath'));
  copyFileSync(pki.ca, join(dir, 'capath', 'ca.pem'));
  mkdirSync(join(dir, 'conf.d'));
  writeFileSync(join(dir, 'conf.d', 'extra.conf'), 'max_inflight_messages 3\n');
  chmodSync(dir, 0o755);
});
after(() => {
  pki.remove();
  rmSync(dir, { recursive: true, force: true });
});

interface Built {
  cfg: BrokerConfig;
  planned: ReturnType<typeof planListeners>;
  opts: BrokerOptions;
  sec: SecurityOptions;
}

let n = 0;
function file(lines: string[]): string {
  const path = join(dir, `t${++n}.conf`);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

async function build(lines: string[]): Promise<Built> {
  const cfg = parseConfigFile(file(lines));
  checkSupported(cfg);
  const planned = planListeners(cfg, { ports: [] });
  const log = new Logger(false, false, () => {});
  const opts = optionsFromConfig(cfg, planned, log);
  const sec = await loadSecurity(cfg, planned.map((p) => ({ config: p.config, port: p.spec.port })), log);
  return { cfg, planned, opts, sec };
}

function refused(lines: string[]): ConfigError {
  const path = file(lines);
  try {
    checkSupported(parseConfigFile(path));
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    assert.equal(err.file, path);
    assert.equal(err.line, lines.length, `the error points at the offending line: ${err.message}`);
    return err;
  }
  assert.fail(`accepted: ${lines.join(' | ')}`);
}

const TLS = (): string[] => ['listener 8883', `certfile ${pki.serverCert}`, `keyfile ${pki.serverKey}`];
const spec = (b: Built, i = 0): NonNullable<Built['planned'][number]>['spec'] => b.planned[i]!.spec;

type Honoured =
  | { how: 'applied'; lines: () => string[]; check: (b: Built) => void | Promise<void> }
  | { how: 'refused'; line: string; error: RegExp; accepted?: string }
  | { how: 'inert'; why: string };

const TABLE: Record<string, Honoured> = {
  listener: { how: 'applied', lines: () => ['listener 1884 127.0.0.1'], check: (b) => assert.deepEqual(spec(b), { port: 1884, host: '127.0.0.1' }) },
  port: { how: 'applied', lines: () => ['port 1885'], check: (b) => assert.equal(spec(b).port, 1885) },
  bind_address: { how: 'applied', lines: () => ['bind_address 127.0.0.1'], check: (b) => assert.equal(spec(b).host, '127.0.0.1') },
  protocol: { how: 'applied', lines: () => ['listener 9001', 'protocol websockets'], check: (b) => assert.equal(spec(b).protocol, 'websockets') },
  websockets_origin: {
    how: 'applied', lines: () => ['listener 9001', 'protocol websockets', 'websockets_origin https://a.example', 'websockets_origin https://b.example'],
    check: (b) => assert.deepEqual(spec(b).websocketsOrigins, ['https://a.example', 'https://b.example']),
  },
  http_dir: { how: 'applied', lines: () => ['listener 9001', 'protocol websockets', `http_dir ${dir}`], check: (b) => assert.equal(spec(b).httpDir, dir) },
  websockets_headers_size: {
    how: 'applied', lines: () => ['websockets_headers_size 4096', 'listener 9001', 'protocol websockets', 'listener 1884'],
    check: (b) => assert.deepEqual([spec(b).websocketsHeadersSize, spec(b, 1).websocketsHeadersSize], [4096, undefined]),
  },
  socket_domain: { how: 'applied', lines: () => ['listener 1884', 'socket_domain ipv6'], check: (b) => assert.equal(spec(b).socketDomain, 'ipv6') },
  max_connections: {
    how: 'applied', lines: () => ['listener 1884', 'max_connections 5', 'listener 1885', 'max_connections 0'],
    // 0 is no limit, as in mosquitto (its check is max_connections > 0)
    check: (b) => assert.deepEqual([spec(b).maxConnections, spec(b, 1).maxConnections], [5, undefined]),
  },
  mount_point: { how: 'refused', line: 'mount_point tenant/', error: /"mount_point" is not supported by Midge yet/ },
  cafile: { how: 'applied', lines: () => [...TLS(), `cafile ${pki.ca}`], check: (b) => assert.ok(spec(b).tls!.ca!.toString().includes(readFileSync(pki.ca, 'utf8'))) },
  capath: { how: 'applied', lines: () => [...TLS(), `capath ${join(dir, 'capath')}`], check: (b) => assert.ok(spec(b).tls!.ca!.toString().includes(readFileSync(pki.ca, 'utf8'))) },
  certfile: { how: 'applied', lines: TLS, check: (b) => assert.deepEqual(spec(b).tls!.cert, readFileSync(pki.serverCert)) },
  keyfile: { how: 'applied', lines: TLS, check: (b) => assert.deepEqual(spec(b).tls!.key, readFileSync(pki.serverKey)) },
  crlfile: { how: 'applied', lines: () => [...TLS(), `cafile ${pki.ca}`, `crlfile ${pki.crl}`], check: (b) => assert.ok(spec(b).tls!.crl!.toString().includes('BEGIN X509 CRL')) },
  tls_version: { how: 'applied', lines: () => [...TLS(), 'tls_version tlsv1.3'], check: (b) => assert.deepEqual([spec(b).tls!.minVersion, spec(b).tls!.maxVersion], ['TLSv1.3', undefined]) },
  ciphers: { how: 'applied', lines: () => [...TLS(), 'ciphers ECDHE-ECDSA-AES128-GCM-SHA256'], check: (b) => assert.equal(spec(b).tls!.ciphers, 'ECDHE-ECDSA-AES128-GCM-SHA256') },
  require_certificate: { how: 'applied', lines: () => [...TLS(), `cafile ${pki.ca}`, 'require_certificate true'], check: (b) => assert.equal(spec(b).tls!.requestCert, true) },
  use_identity_as_username: {
    how: 'applied', lines: () => [...TLS(), `cafile ${pki.ca}`, 'require_certificate true', 'use_identity_as_username true'],
    check: (b) => { assert.equal(spec(b).useIdentityAsUsername, true); assert.equal(b.sec.listeners[0]!.certificateUsername, 'identity'); },
  },
  use_subject_as_username: {
    how: 'applied', lines: () => [...TLS(), `cafile ${pki.ca}`, 'require_certificate true', 'use_subject_as_username true'],
    check: (b) => { assert.equal(spec(b).useSubjectAsUsername, true); assert.equal(b.sec.listeners[0]!.certificateUsername, 'subject'); },
  },
  per_listener_settings: {
    how: 'applied', lines: () => ['per_listener_settings true', 'listener 1884', 'allow_anonymous true', 'listener 1885'],
    check: async (b) => {
      assert.equal(b.sec.perListener, true);
      assert.deepEqual(await b.sec.listeners[0]!.auth!.check(undefined, undefined), { ok: true });
      assert.equal((await b.sec.listeners[1]!.auth!.check(undefined, undefined)).ok, false, 'allow_anonymous defaults to false per listener');
    },
  },
  allow_anonymous: { how: 'applied', lines: () => ['listener 1884', 'allow_anonymous true'], check: async (b) => assert.deepEqual(await b.sec.global!.check(undefined, undefined), { ok: true }) },
  password_file: {
    how: 'applied', lines: () => [`password_file ${pki.passwd}`],
    check: async (b) => {
      assert.deepEqual(await b.sec.global!.check('mqtt', Buffer.from('test')), { ok: true });
      assert.deepEqual(await b.sec.global!.check('mqtt', Buffer.from('nope')), { ok: false, reason: 'wrong password' });
    },
  },
  acl_file: {
    how: 'applied', lines: () => [`acl_file ${file(['user u', 'topic read t/#'])}`],
    check: (b) => { assert.equal(b.sec.global!.canRead('c', 'u', 't/1'), true); assert.equal(b.sec.global!.canRead('c', 'u', 'x'), false); },
  },
  allow_zero_length_clientid: { how: 'applied', lines: () => ['allow_zero_length_clientid false'], check: (b) => assert.equal(b.opts.allowZeroLengthClientid, false) },
  clientid_prefixes: { how: 'applied', lines: () => ['clientid_prefixes ok-'], check: (b) => assert.equal(b.sec.clientidPrefixes, 'ok-') },
  max_inflight_messages: { how: 'applied', lines: () => ['max_inflight_messages 4'], check: (b) => assert.equal(b.opts.maxInflightMessages, 4) },
  max_queued_messages: { how: 'applied', lines: () => ['max_queued_messages 40'], check: (b) => assert.equal(b.opts.maxQueuedMessages, 40) },
  max_queued_bytes: { how: 'applied', lines: () => ['max_queued_bytes 100'], check: (b) => assert.equal(b.opts.maxQueuedBytes, 100) },
  max_inflight_bytes: { how: 'applied', lines: () => ['max_inflight_bytes 200'], check: (b) => assert.equal(b.opts.maxInflightBytes, 200) },
  memory_limit: { how: 'applied', lines: () => ['memory_limit 100000000'], check: (b) => assert.equal(b.opts.memoryLimit, 100000000) },
  global_max_connections: { how: 'applied', lines: () => ['global_max_connections 9'], check: (b) => assert.equal(b.opts.globalMaxConnections, 9) },
  global_max_clients: { how: 'applied', lines: () => ['global_max_clients 8'], check: (b) => assert.equal(b.opts.globalMaxClients, 8) },
  midge_max_retained_messages: { how: 'applied', lines: () => ['midge_max_retained_messages 50'], check: (b) => assert.equal(b.opts.maxRetainedMessages, 50) },
  midge_max_retained_bytes: { how: 'applied', lines: () => ['midge_max_retained_bytes 5000'], check: (b) => assert.equal(b.opts.maxRetainedBytes, 5000) },
  max_packet_size: { how: 'applied', lines: () => ['max_packet_size 2000'], check: (b) => assert.equal(b.opts.maxPacketSize, 2000) },
  message_size_limit: { how: 'applied', lines: () => ['message_size_limit 100'], check: (b) => assert.equal(b.opts.messageSizeLimit, 100) },
  max_keepalive: { how: 'applied', lines: () => ['max_keepalive 30'], check: (b) => assert.equal(b.opts.maxKeepalive, 30) },
  // set on the broker after createBroker (Broker#topicAliasMaximum); 06-listeners-config sees it in a CONNACK
  max_topic_alias: { how: 'applied', lines: () => ['max_topic_alias 7'], check: (b) => assert.equal(b.cfg.maxTopicAlias, 7) },
  retain_available: { how: 'applied', lines: () => ['retain_available false'], check: (b) => assert.equal(b.opts.retainAvailable, false) },
  queue_qos0_messages: { how: 'applied', lines: () => ['queue_qos0_messages true'], check: (b) => assert.equal(b.opts.queueQos0Messages, true) },
  upgrade_outgoing_qos: { how: 'refused', line: 'upgrade_outgoing_qos true', error: /"upgrade_outgoing_qos true" is not supported by Midge yet/, accepted: 'upgrade_outgoing_qos false' },
  sys_interval: { how: 'applied', lines: () => ['sys_interval 3'], check: (b) => assert.equal(b.opts.sysInterval, 3) },
  persistent_client_expiration: { how: 'applied', lines: () => ['persistent_client_expiration 2h'], check: (b) => assert.equal(b.opts.persistentClientExpiration, 7200) },
  // the CLI opens the SQLite store from these (test/persistence runs it); here: the config carries them
  persistence: { how: 'applied', lines: () => ['persistence true'], check: (b) => assert.equal(b.cfg.persistence, true) },
  midge_persistence_fsync: { how: 'applied', lines: () => ['midge_persistence_fsync true'], check: (b) => assert.equal(b.cfg.persistenceFsync, true) },
  persistence_location: { how: 'applied', lines: () => ['persistence_location /var/lib/midge/'], check: (b) => assert.equal(b.cfg.persistenceLocation, '/var/lib/midge/') },
  persistence_file: { how: 'applied', lines: () => ['persistence_file state.db'], check: (b) => assert.equal(b.cfg.persistenceFile, 'state.db') },
  autosave_interval: { how: 'inert', why: 'Midge commits every change before acknowledging it (the broker logs so once at start)' },
  autosave_on_changes: { how: 'inert', why: 'Midge commits every change before acknowledging it (the broker logs so once at start)' },
  // the logger: checked through createConfiguredLogger below
  connection_messages: { how: 'applied', lines: () => ['connection_messages false'], check: (b) => assert.equal(createConfiguredLogger(b.cfg, false).logger.connectionMessages, false) },
  log_timestamp: { how: 'applied', lines: () => ['log_timestamp false'], check: (b) => assert.equal(createConfiguredLogger(b.cfg, false).logger.timestamps, false) },
  log_type: { how: 'refused', line: 'log_type unsubscribe', error: /"log_type unsubscribe" is not supported by Midge yet/, accepted: 'log_type warning' },
  midge_log_format: { how: 'applied', lines: () => ['midge_log_format json'], check: (b) => assert.equal(b.cfg.logFormat, 'json') },
  log_dest: { how: 'refused', line: 'log_dest topic', error: /"log_dest topic" is not supported by Midge yet/, accepted: 'log_dest stdout' },
  // process keys: applied by `midge broker` (06-listeners-config starts brokers with them)
  pid_file: { how: 'applied', lines: () => ['pid_file /run/midge.pid'], check: (b) => assert.equal(b.cfg.pidFile, '/run/midge.pid') },
  user: { how: 'applied', lines: () => ['user nobody'], check: (b) => assert.equal(b.cfg.user, 'nobody') },
  include_dir: { how: 'applied', lines: () => [`include_dir ${join(dir, 'conf.d')}`], check: (b) => assert.equal(b.opts.maxInflightMessages, 3) },
  midge_failed_login_delay: { how: 'applied', lines: () => ['midge_failed_login_delay 250'], check: (b) => assert.equal(b.sec.throttle!.opts.baseDelayMs, 250) },
  midge_failed_login_delay_max: { how: 'applied', lines: () => ['midge_failed_login_delay_max 9000'], check: (b) => assert.equal(b.sec.throttle!.opts.maxDelayMs, 9000) },
  midge_failed_login_half_life: { how: 'applied', lines: () => ['midge_failed_login_half_life 5'], check: (b) => assert.equal(b.sec.throttle!.opts.halfLifeMs, 5000) },
  midge_connect_timeout: { how: 'applied', lines: () => ['midge_connect_timeout 7'], check: (b) => assert.equal(b.opts.connectTimeout, 7) },
  // the HTTP listener: opened by `midge broker` from these (src/http/config.ts; test/http starts brokers with them)
  http_listener: { how: 'applied', lines: () => ['http_listener 8080'], check: (b) => assert.deepEqual(b.cfg.httpListeners, [{ port: 8080 }]) },
  http_admin_user: { how: 'applied', lines: () => ['http_admin_user ops'], check: (b) => assert.deepEqual(b.cfg.httpAdminUsers, ['ops']) },
  http_token_file: { how: 'applied', lines: () => ['http_token_file /etc/midge/token'], check: (b) => assert.equal(b.cfg.httpTokenFile, '/etc/midge/token') },
  http_metrics_token_file: { how: 'applied', lines: () => ['http_metrics_token_file /etc/midge/mt'], check: (b) => assert.equal(b.cfg.httpMetricsTokenFile, '/etc/midge/mt') },
  // the cluster: `midge broker` opens the Redis store and bus from these (test/cluster starts nodes with them)
  cluster_redis: { how: 'applied', lines: () => ['cluster_redis redis://127.0.0.1:6390/2'], check: (b) => assert.equal(b.cfg.clusterRedis, 'redis://127.0.0.1:6390/2') },
  cluster_node_id: { how: 'applied', lines: () => ['cluster_redis redis://h', 'cluster_node_id node-a'], check: (b) => assert.equal(b.cfg.clusterNodeId, 'node-a') },
  cluster_prefix: { how: 'applied', lines: () => ['cluster_redis redis://h', 'cluster_prefix eu:'], check: (b) => assert.equal(b.cfg.clusterPrefix, 'eu:') },
};

describe('every key the parser accepts is applied or refused', () => {
  test('the table names exactly the parser\'s keys', () => {
    assert.deepEqual(Object.keys(TABLE).sort(), [...KEYS.keys()].sort());
  });

  for (const [key, h] of Object.entries(TABLE)) {
    if (h.how === 'applied') {
      test(`${key} is applied`, async () => { await h.check(await build(h.lines())); });
    } else if (h.how === 'refused') {
      test(`${h.line} is refused with its file and line${h.accepted !== undefined ? `; ${h.accepted} is accepted` : ''}`, async () => {
        assert.match(refused(['listener 1883', 'allow_anonymous true', h.line]).message, h.error);
        if (h.accepted !== undefined) await build(['listener 1883', 'allow_anonymous true', h.accepted]);
      });
    } else {
      test(`${key} is accepted: ${h.why}`, async () => { await build([`${key} ${key === 'autosave_interval' ? '60' : key === 'autosave_on_changes' ? 'true' : '/tmp/x'}`]); });
    }
  }
});

describe('checkSupported', () => {
  test('TLS keys on a listener without certfile and keyfile are errors at their line', () => {
    for (const k of ['cafile /x', 'capath /x', 'crlfile /x', 'ciphers HIGH', 'tls_version tlsv1.2', 'require_certificate true',
      'use_identity_as_username true', 'use_subject_as_username true']) {
      assert.match(refused(['listener 1884', k]).message, /only applies to a TLS listener, and the listener on port 1884 has no certfile and keyfile/);
    }
  });

  test('allow_zero_length_clientid with per_listener_settings true is refused', () => {
    assert.match(refused(['per_listener_settings true', 'listener 1884', 'allow_zero_length_clientid false']).message,
      /"allow_zero_length_clientid" with per_listener_settings true is not supported by Midge yet/);
  });

  test('per_listener_settings with two listeners on one port (different addresses) is refused', () => {
    assert.match(refused(['per_listener_settings true', 'listener 1884 127.0.0.1', 'listener 1884 ::1']).message,
      /Midge tells listeners apart by port; port 1884 is used by two listeners/);
  });

  test('use_identity_as_username without require_certificate is a warning (every client is refused, as in mosquitto)', () => {
    const path = file([...TLS(), `cafile ${pki.ca}`, 'use_identity_as_username true']);
    const w = checkSupported(parseConfigFile(path));
    assert.equal(w.length, 1);
    assert.match(w[0]!.message, /use_identity_as_username without require_certificate true/);
    assert.deepEqual(w[0]!.at, { file: path, line: 5 });
  });

  test('keyLocation finds global, listener and per-listener security keys', () => {
    const path = file(['max_keepalive 10', 'per_listener_settings true', 'listener 1884', 'allow_anonymous true', 'max_connections 3']);
    const cfg = parseConfigFile(path);
    assert.deepEqual(keyLocation(cfg, 'max_keepalive'), { file: path, line: 1 });
    assert.deepEqual(keyLocation(cfg.listeners[0]!, 'listener'), { file: path, line: 3 });
    assert.deepEqual(keyLocation(cfg.listeners[0]!, 'allow_anonymous'), { file: path, line: 4 });
    assert.deepEqual(keyLocation(cfg.listeners[0]!, 'max_connections'), { file: path, line: 5 });
    assert.equal(keyLocation(cfg, 'allow_anonymous'), undefined);
  });

  test('midge_failed_login_delay_max below midge_failed_login_delay is an error', () => {
    assert.match(refused(['midge_failed_login_delay 500', 'midge_failed_login_delay_max 100']).message, /must not be less than/);
  });
});

describe('the configured logger', () => {
  test('log_type picks the levels, log_dest file receives them, log_timestamp false drops the time', () => {
    const logFile = join(dir, 'levels.log');
    const cfg = parseConfigFile(file([`log_dest file ${logFile}`, 'log_type warning', 'log_type debug', 'log_timestamp false']));
    const { logger, close } = createConfiguredLogger(cfg, false);
    logger.error('an error');
    logger.warning('a warning');
    logger.info('a notice');
    logger.debug('a packet');
    logger.conn('a connection');
    close();
    assert.deepEqual(readFileSync(logFile, 'utf8').split('\n'), ['Warning: a warning', 'a packet', 'a connection', '']);
  });

  test('-v means log_type all, whatever log_type says', () => {
    const logFile = join(dir, 'all.log');
    const cfg = parseConfigFile(file([`log_dest file ${logFile}`, 'log_type none', 'log_timestamp false']));
    const { logger, close } = createConfiguredLogger(cfg, true);
    logger.error('e');
    logger.debug('d');
    close();
    assert.deepEqual(readFileSync(logFile, 'utf8').split('\n'), ['Error: e', 'd', '']);
  });

  test('a log file that cannot be opened is an error naming it', () => {
    const cfg = parseConfigFile(file([`log_dest file ${join(dir, 'no', 'such', 'dir', 'x.log')}`]));
    assert.throws(() => createConfiguredLogger(cfg, false), /Unable to open log file .*x\.log for writing \(ENOENT\)/);
  });
});
