/**
 * Listeners and the rest of mosquitto.conf against the broker process: per_listener_settings (with
 * Debian's mosquitto as the reference), mosquitto 2.0's defaults, max_connections, socket_domain,
 * clientid_prefixes, the logging keys, pid_file, the limits a v5 CONNACK shows, and the keys Midge
 * refuses rather than ignores.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { startMidge, stopAllBrokers } from '../helpers/broker-process.js';
import { closeAllClients, collect, connect, expectNoMessage } from '../helpers/mqttjs.js';
import { killAll } from '../helpers/proc.js';
import { makePki, type Pki } from './_pki.js';
import {
  anotherPort, midge, midgeCli, midgeExact, mosquitto, mosquittoSub, rawConnect, stopExactBrokers, T,
} from './_util.js';

let pki: Pki;
let dir: string;
before(async () => {
  pki = await makePki();
  dir = mkdtempSync(join(tmpdir(), 'midge-listeners-'));
  chmodSync(dir, 0o755); // Debian's mosquitto reads the ACL files as the mosquitto user
});
after(() => {
  pki.remove();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await closeAllClients();
  await stopAllBrokers();
  await stopExactBrokers();
  await killAll();
});

const CONNECTED = 27; // mosquitto_sub -W ran out waiting for a message: it had connected

describe('per_listener_settings true', () => {
  async function config(portB: number): Promise<string[]> {
    const aclA = join(dir, 'acl-a');
    const aclB = join(dir, 'acl-b');
    writeFileSync(aclA, 'topic readwrite a/#\n', { mode: 0o644 });
    writeFileSync(aclB, 'user mqtt\ntopic readwrite #\n', { mode: 0o644 });
    return ['per_listener_settings true',
      'listener {port} 127.0.0.1', 'allow_anonymous true', `acl_file ${aclA}`,
      `listener ${portB} 127.0.0.1`, 'allow_anonymous false', `password_file ${pki.passwd}`, `acl_file ${aclB}`,
      'midge_failed_login_delay 0'];
  }

  test('each listener has its own anonymous access and password file, as in mosquitto', T, async () => {
    for (const start of [midge, mosquitto]) {
      const portB = await anotherPort();
      const b = await start(await config(portB));
      const sub = (port: number, args: string[]): Promise<number | null> =>
        mosquittoSub(['-p', String(port), ...args, '-t', 'a/x', '-W', '1']).then((r) => r.code);
      assert.equal(await sub(b.port, []), CONNECTED, 'anonymous on the first listener');
      assert.equal(await sub(portB, []), 5, 'anonymous on the second listener');
      assert.equal(await sub(portB, ['-u', 'mqtt', '-P', 'test']), CONNECTED);
      assert.equal(await sub(portB, ['-u', 'mqtt', '-P', 'wrong']), 5);
      await b.stop();
    }
  });

  test('each listener has its own ACL, also for delivery to a durable session that went offline', T, async () => {
    const portB = await anotherPort();
    const b = await midge(await config(portB), false);
    const onA = await connect(b.port, { clientId: 'on-a', clean: false });
    await onA.subscribeAsync('#', { qos: 1 });
    const onB = await connect(portB, { clientId: 'on-b', username: 'mqtt', password: 'test' });
    await onB.subscribeAsync('#', { qos: 1 });
    const pub = await connect(portB, { clientId: 'pub-b', username: 'mqtt', password: 'test' });
    await pub.publishAsync('b/x', 'for B only', { qos: 1 });
    await pub.publishAsync('a/x', 'for both', { qos: 1 });
    assert.deepEqual((await collect(onA, 1)).map((m) => m.payload), ['for both']);
    assert.deepEqual((await collect(onB, 2)).map((m) => m.payload), ['for B only', 'for both']);
    // offline: the session keeps the ACL of listener A, where it last connected
    await onA.endAsync();
    await pub.publishAsync('b/y', 'not for A', { qos: 1 });
    await pub.publishAsync('a/y', 'queued for A', { qos: 1 });
    const back = await connect(b.port, { clientId: 'on-a', clean: false });
    assert.deepEqual((await collect(back, 1)).map((m) => m.payload), ['queued for A']);
    await expectNoMessage(back, 200);
  });
});

describe('mosquitto 2.0 defaults', () => {
  test('once a listener is configured, allow_anonymous defaults to false (and with -p only, to true on loopback)', T, async () => {
    const b = await midgeExact('listener {port} 127.0.0.1\nmidge_failed_login_delay 0\n');
    assert.equal((await mosquittoSub(['-p', String(b.port), '-t', 'test', '-W', '1'])).code, 5);
    const open = await startMidge({}); // `midge broker -p PORT`, no config file
    assert.equal((await mosquittoSub(['-p', String(open.port), '-t', 'test', '-W', '1'])).code, CONNECTED);
    assert.match(open.logs(), /Opening ipv4 listen socket on port \d+\./);
  });

  test('without any listener the broker listens on 127.0.0.1:1883 only', async () => {
    const { planListeners } = await import('../../src/cli/broker.js');
    const { defaultBrokerConfig } = await import('../../src/config/index.js');
    assert.deepEqual(planListeners(defaultBrokerConfig(), { ports: [] }).map((p) => p.spec), [{ port: 1883, host: '127.0.0.1' }]);
    assert.deepEqual(planListeners(defaultBrokerConfig(), { ports: [1884] }).map((p) => p.spec), [{ port: 1884, host: '127.0.0.1' }]);
  });
});

describe('listener options', () => {
  test('max_connections: a listener refuses connections beyond it and accepts again when one closes', T, async () => {
    const b = await midge(['listener {port} 127.0.0.1', 'max_connections 2', 'allow_anonymous true'], false);
    const c1 = await connect(b.port, { clientId: 'mc1' });
    const c2 = await connect(b.port, { clientId: 'mc2' });
    await assert.rejects(connect(b.port, { clientId: 'mc3' }));
    // mosquitto 2.0.11's line, word for word
    await b.waitForLog(/: Client connection from 127\.0\.0\.1 denied: max_connections exceeded\./);
    await c1.endAsync();
    await new Promise((r) => setTimeout(r, 100));
    const c4 = await connect(b.port, { clientId: 'mc4' });
    assert.ok(c2.connected && c4.connected);
  });

  test('max_connections 0 is no limit, as in mosquitto', T, async () => {
    const b = await midge(['listener {port} 127.0.0.1', 'max_connections 0', 'allow_anonymous true'], false);
    const cs = await Promise.all([1, 2, 3].map((i) => connect(b.port, { clientId: `mz${i}` })));
    assert.ok(cs.every((c) => c.connected));
  });

  test('global_max_connections counts the connections of every listener together', T, async () => {
    const portB = await anotherPort();
    const b = await midge(['global_max_connections 2', 'listener {port} 127.0.0.1', `listener ${portB} 127.0.0.1`, 'allow_anonymous true'], false);
    const c1 = await connect(b.port, { clientId: 'gm1' });
    await connect(portB, { clientId: 'gm2' });
    await assert.rejects(connect(portB, { clientId: 'gm3' }));
    await assert.rejects(connect(b.port, { clientId: 'gm4' }));
    await b.waitForLog(/: Client connection from 127\.0\.0\.1 denied: global_max_connections exceeded\./);
    await c1.endAsync();
    await new Promise((r) => setTimeout(r, 100));
    assert.ok((await connect(portB, { clientId: 'gm5' })).connected, 'room again once one closed');
  });

  test('memory_limit: over it, a v5 QoS 1 PUBLISH gets PUBACK 0x97 and the broker says so once', T, async () => {
    // any node process uses more than 1 MB: every PUBLISH is refused from the first sample on
    const b = await midge(['memory_limit 1000000', 'listener {port} 127.0.0.1', 'allow_anonymous true'], false);
    await b.waitForLog(/Warning: memory_limit \(1000000 bytes\) exceeded \(\d+ bytes in use\): new PUBLISHes are refused\./);
    const c = await connect(b.port, { clientId: 'mem5', protocolVersion: 5 });
    const err = await c.publishAsync('m', 'x', { qos: 1 }).then(() => undefined, (e: unknown) => e as { code?: number });
    assert.equal(err?.code, 0x97);
    await c.publishAsync('m', 'y', { qos: 1 }).catch(() => undefined);
    assert.ok(c.connected, 'a v5 publisher stays connected');
    assert.equal(b.logs().match(/memory_limit \(1000000 bytes\) exceeded/g)?.length, 1, 'one line for the episode');
  });

  test('socket_domain ipv4 binds a host name to its IPv4 address only', T, async () => {
    const b = await midge(['listener {port} localhost', 'socket_domain ipv4', 'allow_anonymous true'], false);
    // the port accepts before the line has come through the broker's stdout pipe: wait for it
    assert.match(await b.waitForLog(/listen socket on port/), new RegExp(`Opening ipv4 listen socket on port ${b.port}\\.`));
    assert.equal((await mosquittoSub(['-h', '127.0.0.1', '-p', String(b.port), '-t', 'test', '-W', '1'])).code, CONNECTED);
  });

  test('clientid_prefixes: other client ids are refused with "not authorised", as in mosquitto', T, async () => {
    for (const start of [midge, mosquitto]) {
      const b = await start(['listener {port} 127.0.0.1', 'allow_anonymous true', 'clientid_prefixes ok-']);
      assert.equal((await mosquittoSub(['-p', String(b.port), '-i', 'ok-1', '-t', 'test', '-W', '1'])).code, CONNECTED);
      const r = await mosquittoSub(['-p', String(b.port), '-i', 'other', '-t', 'test', '-W', '1']);
      assert.deepEqual({ code: r.code, stderr: r.stderr }, { code: 5, stderr: 'Connection error: Connection Refused: not authorised.\n' });
      await b.stop();
    }
  });

  test('a v5 CONNACK shows max_topic_alias, max_inflight_messages, max_packet_size, retain_available and max_keepalive', T, async () => {
    const b = await midge(['listener {port} 127.0.0.1', 'allow_anonymous true', 'max_topic_alias 7', 'max_inflight_messages 9',
      'max_packet_size 4096', 'retain_available false', 'max_keepalive 30'], false);
    const ack = await rawConnect(b.port, { protocolVersion: 5, clean: true, keepalive: 600, clientId: 'props' });
    assert.equal(ack.reasonCode, 0);
    assert.deepEqual(ack.properties, { topicAliasMaximum: 7, receiveMaximum: 9, maximumPacketSize: 4096, retainAvailable: 0, serverKeepAlive: 30 });
  });

  test('allow_zero_length_clientid false refuses an empty client id', T, async () => {
    const b = await midge(['listener {port} 127.0.0.1', 'allow_anonymous true', 'allow_zero_length_clientid false'], false);
    const ack = await rawConnect(b.port, { protocolVersion: 4, clean: true, keepalive: 60, clientId: '' });
    assert.equal(ack.reasonCode, 2);
  });
});

describe('logging and process keys', () => {
  test('log_dest file, log_type, log_timestamp false and connection_messages false are applied', T, async () => {
    const logFile = join(dir, 'broker.log');
    const b = await midgeExact(['listener {port} 127.0.0.1', 'allow_anonymous false', `password_file ${pki.passwd}`,
      `log_dest file ${logFile}`, 'log_type error', 'log_type warning', 'log_timestamp false', 'connection_messages false',
      'midge_failed_login_delay 0'].join('\n'));
    assert.equal((await mosquittoSub(['-p', String(b.port), '-u', 'mqtt', '-P', 'test', '-t', 'test', '-W', '1'])).code, CONNECTED);
    assert.equal((await mosquittoSub(['-p', String(b.port), '-u', 'mqtt', '-P', 'bad', '-i', 'logged', '-t', 'test', '-W', '1'])).code, 5);
    const deadline = Math.round(performance.now()) + 3000;
    while (!readFileSync(logFile, 'utf8').includes('logged') && Math.round(performance.now()) < deadline) await new Promise((r) => setTimeout(r, 20));
    const lines = readFileSync(logFile, 'utf8').split('\n').filter((l) => l !== '');
    assert.ok(lines.length > 0);
    assert.ok(lines.every((l) => /^(Warning|Error): /.test(l)), `only warnings and errors, without timestamps:\n${lines.join('\n')}`);
    assert.ok(lines.some((l) => /^Warning: Client logged from 127\.0\.0\.1:\d+ failed to authenticate as 'mqtt'/.test(l)));
    assert.equal(b.logs(), '', 'nothing on stderr with log_dest file');
  });

  test('pid_file holds the pid while the broker runs and is removed when it stops', T, async () => {
    const pidFile = join(dir, 'midge.pid');
    const b = await midge(['listener {port} 127.0.0.1', 'allow_anonymous true', `pid_file ${pidFile}`], false);
    assert.equal(readFileSync(pidFile, 'utf8'), `${b.pid}\n`);
    await b.stop();
    assert.equal(existsSync(pidFile), false);
  });
});

describe('user', () => {
  test('started as root with user nobody, the broker runs as nobody once its listeners are open', { ...T, skip: process.getuid?.() !== 0 ? 'needs root' : false }, async () => {
    const b = await midge(['listener {port} 127.0.0.1', 'allow_anonymous true', 'user nobody'], false);
    await b.waitForLog(/Changed to user nobody \(uid \d+, gid \d+\)\./);
    const status = readFileSync(`/proc/${b.pid}/status`, 'utf8');
    const uid = /^Uid:\s+(\d+)/m.exec(status)![1];
    assert.notEqual(uid, '0');
    assert.equal((await mosquittoSub(['-p', String(b.port), '-t', 'test', '-W', '1'])).code, CONNECTED);
  });
});

describe('keys Midge cannot honour yet are errors with file and line, never ignored', () => {
  const cases: Array<[string, RegExp]> = [
    ['auto_id_prefix midge-', /The "auto_id_prefix" option is not supported by Midge yet/],
    ['upgrade_outgoing_qos true', /"upgrade_outgoing_qos true" is not supported by Midge yet/],
    ['log_type subscribe', /"log_type subscribe" is not supported by Midge yet/],
    ['log_dest syslog', /"log_dest syslog" is not supported by Midge yet/],
    ['mount_point tenant/', /"mount_point" is not supported by Midge yet/],
    ['http_dir /tmp', /"http_dir" only applies to a websockets listener, and the listener on port 1883 has protocol mqtt/],
    ['cafile /etc/ssl/ca.pem', /"cafile" only applies to a TLS listener/],
    ['auth_plugin /usr/lib/x.so', /The "auth_plugin" option is not supported by Midge yet/],
  ];
  for (const [line, re] of cases) {
    test(`${line}`, async () => {
      const file = join(dir, `bad-${line.split(' ')[0]}.conf`);
      writeFileSync(file, `listener 1883 127.0.0.1\nallow_anonymous true\n${line}\n`);
      const r = await midgeCli(['broker', '-c', file, '--test-config']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, re);
      assert.ok(r.stderr.includes(` in ${file}:3.`), r.stderr);
    });
  }

  test('a full TLS + login config passes --test-config', async () => {
    const file = join(dir, 'good.conf');
    writeFileSync(file, ['per_listener_settings false', 'listener 8883 127.0.0.1', `cafile ${pki.ca}`, `certfile ${pki.serverCert}`,
      `keyfile ${pki.serverKey}`, 'tls_version tlsv1.2', 'require_certificate false', `crlfile ${pki.crl}`, 'max_connections 100',
      'socket_domain ipv4', 'allow_anonymous false', `password_file ${pki.passwd}`, 'log_type all', 'log_dest stderr',
      'log_timestamp true', 'connection_messages true', 'max_keepalive 120', 'max_topic_alias 5', 'queue_qos0_messages true',
      'allow_zero_length_clientid true', 'persistence false', 'midge_failed_login_delay 500', 'midge_failed_login_delay_max 8000',
      ''].join('\n'));
    const r = await midgeCli(['broker', '-c', file, '--test-config']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Configuration file is valid/);
  });

  test('a missing certificate file names the file and the listener\'s line', async () => {
    const file = join(dir, 'nocert.conf');
    writeFileSync(file, `allow_anonymous true\nlistener 8883 127.0.0.1\ncertfile ${join(dir, 'missing.crt')}\nkeyfile ${pki.serverKey}\n`);
    const r = await midgeCli(['broker', '-c', file, '--test-config']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Unable to load server certificate ".*missing\.crt" \(ENOENT\)\. Check certfile\. \(listener on port 8883 at .*nocert\.conf:2\)/);
  });
});

