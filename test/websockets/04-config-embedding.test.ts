/**
 * WebSocket listeners from a config file (errors name the file and line) and from the embedding API
 * (`createBroker({ listeners: [{ protocol: 'websockets', ... }] })`, in this process).
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createBroker } from '../../src/index.js';
import { stopAllBrokers } from '../helpers/broker-process.js';
import { killAll } from '../helpers/proc.js';
import { closeAllClients, collect, connect as mqttjs } from '../helpers/mqttjs.js';
import { midgeCli } from '../security/_util.js';
import { makePki, type Pki } from '../security/_pki.js';
import { connectPacket, openWs, startWsBroker, upgradeStatus } from './_ws.js';

const T = { timeout: 20_000 };
let dir: string;
let pki: Pki;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'midge-ws-config-'));
  pki = await makePki();
});
after(async () => {
  await closeAllClients();
  await stopAllBrokers();
  await killAll();
  rmSync(dir, { recursive: true, force: true });
  pki.remove();
});

describe('config errors name the file and the line', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['websockets_origin on an mqtt listener', ['listener 1883 127.0.0.1', 'websockets_origin https://a.example'],
      /"websockets_origin" only applies to a websockets listener, and the listener on port 1883 has protocol mqtt/],
    ['http_dir on an mqtt listener', ['listener 1883 127.0.0.1', 'http_dir /tmp'], /"http_dir" only applies to a websockets listener/],
    ['http_dir that does not exist', ['listener 9001 127.0.0.1', 'protocol websockets', 'http_dir /nonexistent/www'],
      /Unable to use http_dir "\/nonexistent\/www" \(ENOENT\)/],
    ['websockets_log_level (a libwebsockets bit mask)', ['listener 9001 127.0.0.1', 'websockets_log_level 255'],
      /The "websockets_log_level" option is not supported by Midge yet/],
    ['websockets_headers_size abc', ['listener 9001 127.0.0.1', 'websockets_headers_size abc'], /Invalid websockets_headers_size value \(abc\)/],
    ['websockets_headers_size 70000', ['listener 9001 127.0.0.1', 'websockets_headers_size 70000'], /Invalid websockets_headers_size value \(70000\)/],
    ['protocol websocket (misspelt)', ['listener 9001 127.0.0.1', 'protocol websocket'], /Invalid protocol value \(websocket\)/],
    ['websockets_origin with no value', ['listener 9001 127.0.0.1', 'protocol websockets', 'websockets_origin'], /Empty websockets_origin value/],
  ];
  for (const [name, lines, re] of cases) {
    test(`${name}: exit 1, the message and FILE:${lines.length}`, T, async () => {
      const file = join(dir, `${name.replace(/\W+/g, '-')}.conf`);
      writeFileSync(file, ['allow_anonymous true', ...lines].join('\n') + '\n');
      const r = await midgeCli(['broker', '-c', file, '--test-config']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, re);
      assert.ok(r.stderr.includes(` in ${file}:${lines.length + 1}.`), r.stderr);
    });
  }

  test('a full websockets config (ws and wss, origins, http_dir, headers size) passes --test-config', T, async () => {
    const file = join(dir, 'good.conf');
    writeFileSync(file, ['websockets_headers_size 8192', 'listener 1883 127.0.0.1', 'listener 9001 127.0.0.1', 'protocol websockets',
      'websockets_origin https://a.example', 'websockets_origin https://b.example', `http_dir ${dir}`, 'max_connections 10',
      'listener 9443 127.0.0.1', 'protocol websockets', `cafile ${pki.ca}`, `certfile ${pki.serverCert}`, `keyfile ${pki.serverKey}`,
      'require_certificate false', 'allow_anonymous true', ''].join('\n'));
    const r = await midgeCli(['broker', '-c', file, '--test-config']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Configuration file is valid/);
  });

  test('websockets_headers_size 1024: an upgrade with 2 KiB of headers gets 431, a small one 101', T, async () => {
    const b = await startWsBroker([[]], ['websockets_headers_size 1024'], false);
    assert.equal(await upgradeStatus(b.wsPorts[0]!, ['mqtt']), 101);
    const status = await new Promise<string>((resolve, reject) => {
      const s = tcpConnect({ host: '127.0.0.1', port: b.wsPorts[0]! });
      let data = '';
      s.setEncoding('latin1').on('data', (d: string) => { data += d; });
      s.on('close', () => resolve(data.split('\r\n')[0]!));
      s.on('error', reject);
      s.write(`GET /mqtt HTTP/1.1\r\nHost: x\r\nCookie: ${'c'.repeat(2048)}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`);
      setTimeout(() => s.destroy(), 3000);
    });
    assert.equal(status, 'HTTP/1.1 431 Request Header Fields Too Large');
  });

  test('wss with require_certificate: a client without a certificate is refused and logged, one with it connects', T, async () => {
    const b = await startWsBroker([[`cafile ${pki.ca}`, `certfile ${pki.serverCert}`, `keyfile ${pki.serverKey}`, 'require_certificate true',
      'use_identity_as_username true']], [], true);
    const tls = { ca: readFileSync(pki.ca), servername: 'localhost' };
    await assert.rejects(openWs(b.wsPorts[0]!, ['mqtt'], tls, 'wss'));
    await b.broker.waitForLog(/Client connection from 127\.0\.0\.1:\d+ on port \d+ failed: no client certificate \(require_certificate true\)/);
    const client = await mqttjs(b.wsPorts[0]!, { protocol: 'wss', path: '/mqtt', ...tls, cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey), clientId: 'cert-ws' });
    await b.broker.waitForLog(/New client connected from 127\.0\.0\.1:\d+ as cert-ws \(p2, c1, k60, u'client1'\)\./);
    await client.endAsync();
  });
});

describe('SIGHUP', () => {
  test('reloads the certificate of a wss:// listener: a new handshake gets the new certificate, an open WebSocket stays', T, async () => {
    const crt = join(dir, 'ws.crt');
    const key = join(dir, 'ws.key');
    copyFileSync(pki.serverCert, crt);
    copyFileSync(pki.serverKey, key);
    const b = await startWsBroker([[`certfile ${crt}`, `keyfile ${key}`]], [], true);
    const tlsOpts = { ca: readFileSync(pki.ca), servername: 'localhost' };
    const before = await openWs(b.wsPorts[0]!, ['mqtt'], tlsOpts, 'wss');
    before.ws.send(connectPacket('before-reload'));
    await before.waitFor('CONNACK', () => (before.bytes().length >= 4 ? true : undefined));
    const served = (): Promise<string> => new Promise((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port: b.wsPorts[0]!, ...tlsOpts }, () => { resolve(s.getPeerX509Certificate()!.fingerprint256); s.destroy(); });
      s.on('error', reject);
    });
    assert.equal(await served(), new X509Certificate(readFileSync(pki.serverCert)).fingerprint256);
    copyFileSync(pki.serverCert2, crt);
    copyFileSync(pki.serverKey2, key);
    process.kill(b.broker.pid, 'SIGHUP');
    await b.broker.waitForLog(/Reloaded password, ACL and certificate files\./);
    assert.equal(await served(), new X509Certificate(readFileSync(pki.serverCert2)).fingerprint256);
    assert.equal(before.closed, undefined, 'the open WebSocket stays');
    before.ws.send(Buffer.from([0xc0, 0x00]));
    await before.waitFor('PINGRESP', () => (before.bytes().length >= 6 ? true : undefined));
    assert.deepEqual([...before.bytes().subarray(4)], [0xd0, 0x00]);
    before.ws.close();
  });
});

describe('createBroker with WebSocket listeners (embedding)', () => {
  test("listeners [{ protocol: 'websockets' }, { protocol: 'websockets', tls }, TCP] on port 0: MQTT.js over ws and wss reaches a TCP subscriber", T, async () => {
    const broker = createBroker({
      listeners: [
        { port: 0, host: '127.0.0.1', protocol: 'websockets', websocketsOrigins: ['https://app.example'] },
        { port: 0, host: '127.0.0.1', protocol: 'websockets', tls: { cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey) } },
        { port: 0, host: '127.0.0.1' },
      ],
      allowAnonymous: true,
    });
    const seen: string[] = [];
    broker.on('publish', (msg) => seen.push(msg.topic));
    const [ws, wss, tcp] = await broker.listen();
    try {
      const sub = await mqttjs(tcp!.port, { clientId: 'embed-sub' });
      await sub.subscribeAsync('embed/#', { qos: 1 });
      assert.equal(await upgradeStatus(ws!.port, ['mqtt'], { origin: 'https://other.example' }), 403);
      const a = await mqttjs(ws!.port, { protocol: 'ws', path: '/mqtt', clientId: 'embed-ws', wsOptions: { headers: { Origin: 'https://app.example' } } });
      const b = await mqttjs(wss!.port, { protocol: 'wss', path: '/mqtt', clientId: 'embed-wss', ca: readFileSync(pki.ca), servername: 'localhost' });
      await a.publishAsync('embed/ws', 'one', { qos: 1 });
      await b.publishAsync('embed/wss', 'two', { qos: 2 });
      const got = await collect(sub, 2);
      assert.deepEqual(got.map((m) => [m.topic, m.payload, m.qos]), [['embed/ws', 'one', 1], ['embed/wss', 'two', 1]]);
      assert.deepEqual(seen.filter((t) => t.startsWith('embed/')), ['embed/ws', 'embed/wss']);
    } finally {
      await closeAllClients();
      await broker.close();
    }
    await assert.rejects(openWs(ws!.port), 'closed with the broker');
  });
});
