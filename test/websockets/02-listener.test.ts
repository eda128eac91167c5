/**
 * The WebSocket listener against raw WebSocket and HTTP clients: subprotocol negotiation, any request
 * path, websockets_origin (403), http_dir (files, 404, no way out of the directory), max_connections,
 * and bad input (text frames, garbage bytes, packets over max_packet_size, oversized frames, clients
 * gone mid-handshake, packets split over or packed into messages), each while a TCP bystander keeps
 * receiving. One `midge broker` process for the file (per_listener_settings has its own).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { stopAllBrokers } from '../helpers/broker-process.js';
import { killAll } from '../helpers/proc.js';
import { closeAllClients, collect, connect as mqttjs } from '../helpers/mqttjs.js';
import { mosquittoPub } from '../interop/walkthrough.js';
import { makePki, type Pki } from '../security/_pki.js';
import { connectPacket, openWs, publishPacket, startWsBroker, subscribePacket, upgradeStatus, type WsBroker } from './_ws.js';

const T = { timeout: 20_000 };
const MAX_PACKET = 1000;

let dir: string;
let www: string;
let b: WsBroker;
let bystander: MqttClient;
let seq = 0;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'midge-ws-'));
  www = join(dir, 'www');
  mkdirSync(join(www, 'sub'), { recursive: true });
  writeFileSync(join(www, 'index.html'), '<h1>midge</h1>\n');
  writeFileSync(join(www, 'sub', 'file.txt'), 'inside\n');
  writeFileSync(join(dir, 'secret.txt'), 'SECRET-OUTSIDE\n');
  symlinkSync(join(dir, 'secret.txt'), join(www, 'link.txt'));
  b = await startWsBroker([
    [],
    ['websockets_origin https://good.example', 'websockets_origin http://also.example:8080'],
    [`http_dir ${www}`],
    ['max_connections 2'],
  ], [`max_packet_size ${MAX_PACKET}`]);
  bystander = await mqttjs(b.port, { clientId: 'bystander' });
  await bystander.subscribeAsync('bystander', { qos: 1 });
});
after(async () => {
  await closeAllClients();
  await stopAllBrokers();
  await killAll();
  rmSync(dir, { recursive: true, force: true });
});

/** A TCP publisher's message still reaches the TCP bystander, and the broker process is alive. */
async function bystanderServed(): Promise<void> {
  const payload = `still-${++seq}`;
  await mosquittoPub(b.port, ['-t', 'bystander', '-q', '1', '-m', payload]);
  const [m] = await collect(bystander, 1);
  assert.equal(m!.payload, payload);
  process.kill(b.broker.pid, 0);
}

/** Raw HTTP over TCP: the request as given (no client-side path normalisation); status and body. */
function rawHttp(port: number, request: string): Promise<{ status: number; headers: string; body: string }> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect({ host: '127.0.0.1', port });
    let data = '';
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`no HTTP answer within 3 s: ${JSON.stringify(data)}`)); }, 3000);
    s.setEncoding('latin1');
    s.on('data', (d: string) => { data += d; });
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      const [head = '', body = ''] = data.split('\r\n\r\n');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
      if (m === null) { reject(new Error(`not an HTTP answer: ${JSON.stringify(data)}`)); return; }
      resolve({ status: Number(m[1]), headers: head, body });
    });
    s.write(request);
  });
}

const get = (port: number, path: string, method = 'GET'): Promise<{ status: number; headers: string; body: string }> =>
  rawHttp(port, `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);

const CONNACK_OK = Buffer.from([0x20, 0x02, 0x00, 0x00]);

describe('subprotocols and paths', () => {
  for (const [offered, chosen] of [[['mqtt'], 'mqtt'], [['mqttv3.1'], 'mqttv3.1'], [['foo', 'mqttv3.1', 'mqtt'], 'mqttv3.1'], [[], '']] as const) {
    test(`a client offering ${offered.length === 0 ? 'no subprotocol' : JSON.stringify(offered)} gets ${chosen === '' ? 'none' : `"${chosen}"`} and its CONNACK`, T, async () => {
      const c = await openWs(b.wsPorts[0]!, [...offered]);
      assert.equal(c.ws.protocol, chosen);
      c.ws.send(connectPacket(`sp-${offered.length}-${chosen}`));
      await c.waitFor('CONNACK', () => (c.bytes().length >= 4 ? true : undefined));
      assert.deepEqual(c.bytes(), CONNACK_OK);
      c.ws.close();
    });
  }

  test('a client offering only other subprotocols ("foo", "bar") is refused with HTTP 400 and a log line', T, async () => {
    assert.equal(await upgradeStatus(b.wsPorts[0]!, ['foo', 'bar']), 400);
    await b.broker.waitForLog(/refused: no MQTT WebSocket subprotocol offered \("foo, ?bar"; expected mqtt or mqttv3\.1\)/);
    await bystanderServed();
  });

  for (const path of ['/', '/mqtt', '/any/deep/path?x=1']) {
    test(`the request path ${path} is accepted`, T, async () => {
      const { WebSocket } = await import('ws');
      const ws = new WebSocket(`ws://127.0.0.1:${b.wsPorts[0]}${path}`, ['mqtt']);
      const got = await new Promise<Buffer>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no CONNACK')), 3000);
        ws.on('open', () => ws.send(connectPacket('path-check')));
        ws.on('message', (d: Buffer) => { clearTimeout(timer); resolve(d); });
        ws.on('error', reject);
      });
      assert.deepEqual(got, CONNACK_OK);
      ws.close();
    });
  }
});

describe('websockets_origin', () => {
  for (const origin of ['https://good.example', 'http://also.example:8080', 'HTTPS://GOOD.EXAMPLE']) {
    test(`Origin ${origin} is allowed (an upgrade and a CONNACK)`, T, async () => {
      const c = await openWs(b.wsPorts[1]!, ['mqtt'], { origin });
      c.ws.send(connectPacket('origin-ok'));
      await c.waitFor('CONNACK', () => (c.bytes().length >= 4 ? true : undefined));
      assert.deepEqual(c.bytes(), CONNACK_OK);
      c.ws.close();
    });
  }
  for (const origin of ['https://evil.example', 'https://good.example.evil.example', 'http://good.example', undefined]) {
    test(`${origin === undefined ? 'no Origin header' : `Origin ${origin}`} is refused with HTTP 403`, T, async () => {
      assert.equal(await upgradeStatus(b.wsPorts[1]!, ['mqtt'], origin === undefined ? {} : { origin }), 403);
      await b.broker.waitForLog(origin === undefined ? /refused: no Origin header \(websockets_origin\)/
        : new RegExp(`refused: origin "${origin.replace(/\./g, '\\.')}" is not allowed \\(websockets_origin\\)`));
    });
  }
  test('a listener without websockets_origin takes any Origin (https://evil.example)', T, async () => {
    assert.equal(await upgradeStatus(b.wsPorts[0]!, ['mqtt'], { origin: 'https://evil.example' }), 101);
  });
});

describe('http_dir', () => {
  test('GET / serves index.html, GET /sub/file.txt the file, with their types', T, async () => {
    const index = await get(b.wsPorts[2]!, '/');
    assert.equal(index.status, 200);
    assert.equal(index.body, '<h1>midge</h1>\n');
    assert.match(index.headers, /Content-Type: text\/html/i);
    const file = await get(b.wsPorts[2]!, '/sub/file.txt');
    assert.deepEqual([file.status, file.body], [200, 'inside\n']);
    assert.match(file.headers, /Content-Type: text\/plain/i);
  });
  test('a missing file is 404; POST is 405', T, async () => {
    assert.equal((await get(b.wsPorts[2]!, '/missing.html')).status, 404);
    assert.equal((await get(b.wsPorts[2]!, '/sub/')).status, 404);
    assert.equal((await get(b.wsPorts[2]!, '/', 'POST')).status, 405);
  });
  for (const path of ['/../secret.txt', '/sub/../../secret.txt', '/..%2fsecret.txt', '/%2e%2e/secret.txt', '/sub/%2e%2e%2f%2e%2e%2fsecret.txt', '/..\\secret.txt', '/link.txt']) {
    test(`${path} does not leave the directory (403, no content)`, T, async () => {
      const r = await get(b.wsPorts[2]!, path);
      assert.equal(r.status, 403, `${path}: ${r.status} ${r.body}`);
      assert.ok(!r.body.includes('SECRET-OUTSIDE'));
    });
  }
  test('a WebSocket listener without http_dir answers plain HTTP with 404', T, async () => {
    const r = await get(b.wsPorts[0]!, '/index.html');
    assert.equal(r.status, 404);
  });
  test('an HTTP request with a NUL byte or bad percent-encoding is 400', T, async () => {
    assert.equal((await get(b.wsPorts[2]!, '/a%00b')).status, 400);
    assert.equal((await get(b.wsPorts[2]!, '/%zz')).status, 400);
  });
});

describe('bad input over WebSockets closes that connection only', () => {
  test('a text frame (holding a valid CONNECT) is closed with 1003, no CONNACK [MQTT-6.0.0-1]', T, async () => {
    const c = await openWs(b.wsPorts[0]!);
    c.ws.send(connectPacket('texter').toString('latin1'));
    const closed = await c.waitClosed();
    assert.equal(closed.code, 1003);
    assert.equal(c.messages.length, 0);
    await bystanderServed();
  });

  test('garbage bytes (0xff x 64, no CONNECT) are closed without CONNACK', T, async () => {
    const c = await openWs(b.wsPorts[0]!);
    c.ws.send(Buffer.alloc(64, 0xff));
    await c.waitClosed();
    assert.equal(c.messages.length, 0);
    await bystanderServed();
  });

  test('a second CONNECT, then a reserved packet type 0 after CONNACK: closed', T, async () => {
    const c = await openWs(b.wsPorts[0]!);
    c.ws.send(connectPacket('twice'));
    await c.waitFor('CONNACK', () => (c.bytes().length >= 4 ? true : undefined));
    c.ws.send(Buffer.from([0x00, 0x00]));
    await c.waitClosed();
    await bystanderServed();
  });

  test(`an MQTT 5 PUBLISH of 2000 bytes over max_packet_size ${MAX_PACKET} gets DISCONNECT 0x95, then the close`, T, async () => {
    const c = await openWs(b.wsPorts[0]!);
    c.ws.send(connectPacket('big-v5', 5));
    await c.waitFor('CONNACK', () => (c.messages.length >= 1 ? true : undefined));
    assert.equal(c.messages[0]![0], 0x20);
    const topic = Buffer.from('big');
    const len = 2 + topic.length + 1 + 2000;
    c.ws.send(Buffer.concat([Buffer.from([0x30, (len & 0x7f) | 0x80, len >> 7, 0, topic.length]), topic, Buffer.from([0]), Buffer.alloc(2000)]));
    await c.waitClosed();
    const rest = c.bytes().subarray(c.messages[0]!.length);
    assert.deepEqual([...rest.subarray(0, 3)], [0xe0, 0x01, 0x95], `DISCONNECT 0x95, got ${rest.toString('hex')}`);
    await bystanderServed();
  });

  test('an MQTT 3.1.1 PUBLISH over max_packet_size is closed (no DISCONNECT in 3.1.1)', T, async () => {
    const c = await openWs(b.wsPorts[0]!);
    c.ws.send(connectPacket('big-v4'));
    await c.waitFor('CONNACK', () => (c.bytes().length >= 4 ? true : undefined));
    c.ws.send(publishPacket('big', Buffer.alloc(1500)));
    await c.waitClosed();
    assert.deepEqual(c.bytes(), CONNACK_OK);
    await bystanderServed();
  });

  test('one WebSocket message of 2 MiB (far over max_packet_size) is refused by the WebSocket layer (1009)', T, async () => {
    const c = await openWs(b.wsPorts[0]!);
    c.ws.send(connectPacket('huge-frame'));
    await c.waitFor('CONNACK', () => (c.bytes().length >= 4 ? true : undefined));
    c.ws.send(Buffer.alloc(2 << 20, 0x30));
    const closed = await c.waitClosed(5000);
    assert.equal(closed.code, 1009);
    await bystanderServed();
  });

  test('a client gone mid-handshake (half an upgrade request; a full one then a reset) costs nothing', T, async () => {
    for (const req of [
      'GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: webso',
      'GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n'
        + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n',
    ]) {
      await new Promise<void>((resolve) => {
        const s = tcpConnect({ host: '127.0.0.1', port: b.wsPorts[0]! }, () => {
          s.write(req);
          setTimeout(() => { s.resetAndDestroy(); resolve(); }, 50);
        });
        s.on('error', () => resolve());
      });
    }
    // and a bad upgrade (no Sec-WebSocket-Key) gets 400
    const bad = await rawHttp(b.wsPorts[0]!, 'GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n');
    assert.equal(bad.status, 400);
    await bystanderServed();
  });

  test('a CONNECT split into 1-byte messages, then CONNECT-less packets packed in one message, are read as a stream', T, async () => {
    const c = await openWs(b.wsPorts[0]!);
    for (const byte of connectPacket('split')) c.ws.send(Buffer.from([byte]));
    await c.waitFor('CONNACK', () => (c.bytes().length >= 4 ? true : undefined));
    // SUBSCRIBE + PINGREQ + PUBLISH to itself in one message: SUBACK, PINGRESP, then the message
    c.ws.send(Buffer.concat([subscribePacket('split/t', 0), Buffer.from([0xc0, 0x00]), publishPacket('split/t', Buffer.from('both'))]));
    const expected = Buffer.concat([CONNACK_OK, Buffer.from([0x90, 3, 0, 1, 0]), Buffer.from([0xd0, 0]), publishPacket('split/t', Buffer.from('both'))]);
    await c.waitFor('SUBACK, PINGRESP, PUBLISH', () => (c.bytes().length >= expected.length ? true : undefined));
    assert.deepEqual(c.bytes(), expected);
    c.ws.close();
  });
});

describe('limits', () => {
  test('max_connections 2 on a WebSocket listener: a third connection is denied and logged, the first two work', T, async () => {
    const one = await openWs(b.wsPorts[3]!);
    const two = await openWs(b.wsPorts[3]!);
    await assert.rejects(openWs(b.wsPorts[3]!));
    await b.broker.waitForLog(/Client connection from 127\.0\.0\.1 denied: max_connections exceeded\./);
    for (const [i, c] of [one, two].entries()) {
      c.ws.send(connectPacket(`limited-${i}`));
      await c.waitFor('CONNACK', () => (c.bytes().length >= 4 ? true : undefined));
      assert.deepEqual(c.bytes(), CONNACK_OK);
      c.ws.close();
    }
    await Promise.all([one.waitClosed(), two.waitClosed()]);
  });
});

describe('per_listener_settings over WebSockets', () => {
  let pki: Pki;
  let pb: WsBroker;
  before(async () => {
    pki = await makePki();
    const acl = join(dir, 'ws.acl');
    writeFileSync(acl, 'user mqtt\ntopic readwrite plss/#\n');
    pb = await startWsBroker([['allow_anonymous false', `password_file ${pki.passwd}`, `acl_file ${acl}`]], [], false,
      { head: ['per_listener_settings true'], tcp: ['allow_anonymous true'] });
  });
  after(() => pki.remove());

  test('the WebSocket listener takes its own password_file: anonymous CONNACK 5, mqtt/test accepted; TCP stays anonymous', T, async () => {
    const ws = { protocol: 'ws' as const, path: '/mqtt', reconnectPeriod: 0 };
    await assert.rejects(mqttjs(pb.wsPorts[0]!, { ...ws, clientId: 'anon-ws' }), /Not authorized|connack|refused/i);
    const ok = await mqttjs(pb.wsPorts[0]!, { ...ws, clientId: 'user-ws', username: 'mqtt', password: 'test' });
    const tcp = await mqttjs(pb.port, { clientId: 'anon-tcp' });
    await ok.subscribeAsync('plss', { qos: 1 });
    await tcp.publishAsync('plss', 'from tcp', { qos: 1 });
    const [m] = await collect(ok, 1);
    assert.equal(m!.payload, 'from tcp');
  });

  test("the WebSocket listener's acl_file: mqtt may publish to plss/#, not to secret (a TCP subscriber to # sees only the first)", T, async () => {
    const ws = { protocol: 'ws' as const, path: '/mqtt', reconnectPeriod: 0 };
    const tcp = await mqttjs(pb.port, { clientId: 'acl-watch' });
    await tcp.subscribeAsync('#', { qos: 1 });
    const user = await mqttjs(pb.wsPorts[0]!, { ...ws, clientId: 'acl-ws', username: 'mqtt', password: 'test' });
    await user.publishAsync('secret', 'denied', { qos: 1 });
    await user.publishAsync('plss/ok', 'allowed', { qos: 1 });
    const [m] = await collect(tcp, 1);
    assert.deepEqual([m!.topic, m!.payload], ['plss/ok', 'allowed']);
  });
});
