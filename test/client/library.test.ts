/**
 * The client library against Debian's mosquitto: every QoS, retain, will, persistent sessions,
 * keepalive, MQTT 3.1 / 3.1.1 / 5.0, TLS, and the typed errors.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  connect, ClientClosedError, ConnectionLostError, ConnectionRefusedError, InvalidArgumentError, TimeoutError,
  TransportError, type Message, type MqttClient,
} from '../../src/client/index.js';
import { freePort, makeCerts, Proc, tempDir, within, removeDir, sleep, startMosquitto, waitFor, collect, type Broker, type Certs } from './_helpers.js';

let broker: Broker;
let url: string;
const clients: MqttClient[] = [];

/** connect() that is ended in after() even when the test fails */
async function client(options: Parameters<typeof connect>[1] = {}, to = url): Promise<MqttClient> {
  const c = await connect(to, { connectTimeout: 5000, ...options });
  clients.push(c);
  return c;
}

before(async () => {
  broker = await startMosquitto();
  url = `mqtt://127.0.0.1:${broker.port}`;
});

after(async () => {
  await Promise.all(clients.map((c) => c.end({ force: true })));
  await broker.stop();
  removeDir(broker.dir);
});

describe('publish and subscribe', () => {
  for (const version of [3, 4, 5] as const) {
    test(`every QoS pair is delivered at the lower QoS with MQTT ${version === 3 ? '3.1' : version === 4 ? '3.1.1' : '5.0'}`, async () => {
      const sub = await client({ protocolVersion: version });
      const pub = await client({ protocolVersion: version });
      const got = collect(sub);
      for (const sq of [0, 1, 2] as const) {
        assert.equal(await sub.subscribe(`qos/${version}/${sq}`, { qos: sq }), sq);
      }
      let expected = 0;
      for (const pq of [0, 1, 2] as const) {
        for (const sq of [0, 1, 2] as const) {
          const mid = await pub.publish(`qos/${version}/${sq}`, `p${pq}s${sq}`, { qos: pq });
          if (pq === 0) assert.equal(mid, undefined, 'QoS 0 has no packet id: it resolves to undefined');
          else assert.ok(Number.isInteger(mid) && mid! > 0);
          expected++;
        }
      }
      const msgs = await got.next(expected);
      for (const m of msgs) {
        const [, pq, sq] = /p(\d)s(\d)/.exec(m.payload.toString())!.map(Number);
        assert.equal(m.qos, Math.min(pq!, sq!), m.payload.toString());
      }
    });
  }

  test('subscribe with an array resolves to the granted QoS of each filter', async () => {
    const c = await client();
    assert.deepEqual(await c.subscribe(['arr/a', 'arr/b'], { qos: 1 }), [1, 1]);
    assert.deepEqual(await c.subscribe([{ topic: 'arr/c', qos: 2 }, { topic: 'arr/d', qos: 0 }]), [2, 0]);
  });

  test('the message iterator yields matching messages and finishes when the client ends', async () => {
    const sub = await client();
    const pub = await client();
    await sub.subscribe('iter/#', { qos: 1 });
    const seen: string[] = [];
    const loop = (async () => { for await (const m of sub.messages('iter/+/x')) seen.push(m.payload.toString()); })();
    await pub.publish('iter/a/x', '1', { qos: 1 });
    await pub.publish('iter/a/y', 'skipped', { qos: 1 });
    await pub.publish('iter/b/x', '2', { qos: 1 });
    await waitFor(() => seen.length === 2);
    await sub.end();
    await loop;
    assert.deepEqual(seen, ['1', '2']);
  });

  test('unsubscribe stops delivery', async () => {
    const sub = await client();
    const pub = await client();
    const got = collect(sub);
    await sub.subscribe('unsub/t', { qos: 1 });
    await sub.unsubscribe('unsub/t');
    await pub.publish('unsub/t', 'x', { qos: 1 });
    await sub.subscribe('unsub/marker', { qos: 1 });
    await pub.publish('unsub/marker', 'm', { qos: 1 });
    await got.next(1);
    assert.deepEqual(got.messages.map((m) => m.topic), ['unsub/marker']);
  });
});

describe('retain, will and sessions', () => {
  test('a retained message reaches a new subscriber with the retain flag, and an existing one without it', async () => {
    const existing = await client();
    const got = collect(existing);
    await existing.subscribe('retain/t', { qos: 1 });
    const pub = await client();
    await pub.publish('retain/t', 'kept', { qos: 1, retain: true });
    const [live] = await got.next(1);
    assert.equal(live?.retain, false);
    const late = await client();
    const lateGot = collect(late);
    await late.subscribe('retain/t', { qos: 1 });
    const [stored] = await lateGot.next(1);
    assert.equal(stored?.payload.toString(), 'kept');
    assert.equal(stored?.retain, true);
    await pub.publish('retain/t', '', { qos: 1, retain: true });
  });

  test('the will is published when the client process is killed, and not after end()', async () => {
    const watcher = await client();
    const got = collect(watcher);
    await watcher.subscribe('will/t', { qos: 1 });
    const polite = await connect(url, { will: { topic: 'will/t', payload: 'polite', qos: 1 } });
    await polite.end();
    const victim = Proc.midge(['sub', '-p', String(broker.port), '-t', 'will/none', '--will-topic', 'will/t', '--will-payload', 'killed', '--will-qos', '1']);
    await waitFor(() => broker.log().includes('will/none'), 5000, 'the victim to subscribe');
    victim.child.kill('SIGKILL');
    await victim.wait();
    const [m] = await got.next(1);
    assert.equal(m?.payload.toString(), 'killed');
    await sleep(200);
    assert.deepEqual(got.messages.map((x) => x.payload.toString()), ['killed']);
  });

  test('a persistent session keeps messages published while the client was away, in order', async () => {
    const first = await connect(url, { clientId: 'lib-persist', clean: false });
    await first.subscribe('persist/t', { qos: 1 });
    await first.end();
    const pub = await client();
    for (let i = 1; i <= 5; i++) await pub.publish('persist/t', `m${i}`, { qos: 1 });
    const back = await connect(url, { clientId: 'lib-persist', clean: false });
    clients.push(back);
    const got = collect(back);
    const msgs = await got.next(5);
    assert.deepEqual(msgs.map((m) => m.payload.toString()), ['m1', 'm2', 'm3', 'm4', 'm5']);
  });
});

describe('keepalive', () => {
  test('PINGREQ is sent when idle and answered by PINGRESP', async () => {
    const c = await client({ keepalive: 1 });
    const events: string[] = [];
    c.on('packetsend', (p) => events.push(`send ${p.type}`));
    c.on('packetreceive', (p) => events.push(`recv ${p.type}`));
    await waitFor(() => events.includes('recv pingresp'), 4000, 'PINGRESP');
    assert.ok(events.indexOf('send pingreq') < events.indexOf('recv pingresp'));
  });

  test('the connection is closed when PINGRESP does not come', async () => {
    const own = await startMosquitto();
    try {
      const c = await connect(`mqtt://127.0.0.1:${own.port}`, { keepalive: 1, pingTimeout: 500, reconnect: false });
      const ended = new Promise<Error | undefined>((resolve) => c.once('offline', resolve));
      own.proc.kill('SIGSTOP');
      const error = await within(ended, 5000, 'the offline event');
      assert.ok(error instanceof TimeoutError, String(error));
      await c.end();
    } finally {
      own.proc.kill('SIGCONT');
      await own.stop();
      removeDir(own.dir);
    }
  });
});

describe('MQTT 5.0', () => {
  test('publish properties reach the subscriber and the broker assigns a client id', async () => {
    const sub = await client({ protocolVersion: 5, clientId: '' });
    assert.match(sub.clientId, /^auto-/);
    const got = collect(sub);
    await sub.subscribe('v5/props', { qos: 1, properties: { subscriptionIdentifiers: [7] } });
    const pub = await client({ protocolVersion: 5 });
    await pub.publish('v5/props', 'x', {
      qos: 1,
      properties: { contentType: 'text/plain', responseTopic: 'v5/reply', correlationData: Buffer.from('c1'), userProperties: [['k', 'v']], messageExpiryInterval: 60 },
    });
    const [m] = await got.next(1);
    assert.equal(m?.properties?.contentType, 'text/plain');
    assert.equal(m?.properties?.responseTopic, 'v5/reply');
    assert.deepEqual(m?.properties?.correlationData, Buffer.from('c1'));
    assert.deepEqual(m?.properties?.userProperties, [['k', 'v']]);
    assert.deepEqual(m?.properties?.subscriptionIdentifiers, [7]);
  });

  test('no-local keeps a client from receiving its own messages', async () => {
    const c = await client({ protocolVersion: 5 });
    const got = collect(c);
    await c.subscribe('v5/nolocal', { qos: 1, noLocal: true });
    await c.subscribe('v5/marker', { qos: 1 });
    await c.publish('v5/nolocal', 'mine', { qos: 1 });
    await c.publish('v5/marker', 'marker', { qos: 1 });
    await got.next(1);
    assert.deepEqual(got.messages.map((m) => m.topic), ['v5/marker']);
  });

  test('DISCONNECT with reason code 4 publishes the will', async () => {
    const watcher = await client();
    const got = collect(watcher);
    await watcher.subscribe('v5/will', { qos: 1 });
    const c = await connect(url, { protocolVersion: 5, will: { topic: 'v5/will', payload: 'with-will' } });
    await c.end({ reasonCode: 4 });
    const [m] = await got.next(1);
    assert.equal(m?.payload.toString(), 'with-will');
  });
});

describe('errors', () => {
  let auth: Broker;
  before(async () => {
    const dir = tempDir();
    const r = spawnSync('mosquitto_passwd', ['-c', '-b', join(dir, 'passwd'), 'mqtt', 'test']);
    assert.equal(r.status, 0, String(r.stderr));
    auth = await startMosquitto(['allow_anonymous false', 'password_file $DIR/passwd'], { dir });
  });
  after(async () => {
    await auth.stop();
    removeDir(auth.dir);
  });

  test('a refused login rejects with ConnectionRefusedError carrying the CONNACK code and text', async () => {
    const to = `mqtt://127.0.0.1:${auth.port}`;
    await assert.rejects(connect(to, { username: 'mqtt', password: 'bad' }), (e: unknown) => {
      assert.ok(e instanceof ConnectionRefusedError);
      assert.equal(e.returnCode, 5);
      assert.equal(e.message, 'Connection Refused: not authorised.');
      return true;
    });
    await assert.rejects(connect(to, { protocolVersion: 5 }), (e: unknown) => e instanceof ConnectionRefusedError && e.returnCode === 0x87);
    const ok = await connect(`mqtt://mqtt:test@127.0.0.1:${auth.port}`);
    await ok.end();
  });

  test('an unreachable port rejects with TransportError ECONNREFUSED', async () => {
    const port = await freePort();
    await assert.rejects(connect(`mqtt://127.0.0.1:${port}`), (e: unknown) => e instanceof TransportError && e.code === 'ECONNREFUSED');
  });

  test('bad arguments reject with InvalidArgumentError instead of throwing', async () => {
    await assert.rejects(connect('foo://127.0.0.1'), InvalidArgumentError);
    const c = await client();
    await assert.rejects(c.publish('a/+', 'x'), InvalidArgumentError);
    await assert.rejects(c.subscribe('a/#/b'), InvalidArgumentError);
    await assert.rejects(c.publish('a', 'x', { qos: 3 as 0 }), InvalidArgumentError);
  });

  test('operations after end() reject with ClientClosedError', async () => {
    const c = await connect(url);
    await c.end();
    await assert.rejects(c.publish('a', 'x'), ClientClosedError);
    await assert.rejects(c.subscribe('a'), ClientClosedError);
  });

  test('pending QoS 1 publishes reject with ConnectionLostError when the broker goes away and reconnect is off', async () => {
    const own = await startMosquitto();
    try {
      const c = await connect(`mqtt://127.0.0.1:${own.port}`, { reconnect: false });
      own.proc.kill('SIGSTOP');
      const p = c.publish('lost/t', 'x', { qos: 1 });
      own.proc.kill('SIGKILL');
      await assert.rejects(p, ConnectionLostError);
    } finally {
      await own.stop();
      removeDir(own.dir);
    }
  });
});

describe('TLS', () => {
  let certs: Certs;
  let tlsBroker: Broker;
  let wrongPort: number;
  before(async () => {
    certs = makeCerts();
    wrongPort = await freePort();
    tlsBroker = await startMosquitto([
      `cafile ${certs.ca}`, `certfile ${certs.cert}`, `keyfile ${certs.key}`,
      `listener ${wrongPort} 127.0.0.1`, `cafile ${certs.ca}`, `certfile ${certs.wrongCert}`, `keyfile ${certs.wrongKey}`,
      'allow_anonymous true',
    ]);
  });
  after(async () => {
    await tlsBroker.stop();
    removeDir(tlsBroker.dir);
    removeDir(certs.dir);
  });

  test('mqtts with the test CA connects and carries messages', async () => {
    const ca = readFileSync(certs.ca);
    const c = await client({ tls: { ca } }, `mqtts://localhost:${tlsBroker.port}`);
    const got = collect(c);
    await c.subscribe('tls/t', { qos: 1 });
    await c.publish('tls/t', 'secret', { qos: 1 });
    const [m] = await got.next(1);
    assert.equal(m?.payload.toString(), 'secret');
    const byIp = await client({ tls: { ca } }, `tls://127.0.0.1:${tlsBroker.port}`);
    assert.ok(byIp.connected);
  });

  test('a certificate for another name fails with a TLS TransportError, unless the name check is skipped', async () => {
    const ca = readFileSync(certs.ca);
    await assert.rejects(connect(`mqtts://localhost:${wrongPort}`, { tls: { ca } }), (e: unknown) => {
      assert.ok(e instanceof TransportError);
      assert.equal(e.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
      assert.ok(e.tls);
      return true;
    });
    const c = await client({ tls: { ca, skipHostnameCheck: true } }, `mqtts://localhost:${wrongPort}`);
    assert.ok(c.connected);
  });

  test('an unknown CA fails with a TLS TransportError', async () => {
    await assert.rejects(connect(`mqtts://localhost:${tlsBroker.port}`), (e: unknown) => e instanceof TransportError && e.tls);
  });
});



describe('WebSocket', () => {
  test('ws:// carries MQTT over a WebSocket (aedes behind a ws server on 127.0.0.1)', async () => {
    const { Aedes } = await import('aedes');
    const { WebSocketServer, createWebSocketStream } = await import('ws');
    const http = await import('node:http');
    const aedes = await Aedes.createBroker();
    const server = http.createServer();
    const wss = new WebSocketServer({ server });
    const protocols: string[] = [];
    wss.on('connection', (socket, req) => {
      protocols.push(socket.protocol);
      aedes.handle(createWebSocketStream(socket), req);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      const c = await connect(`ws://127.0.0.1:${port}/mqtt`, { connectTimeout: 5000 });
      const got = collect(c);
      await c.subscribe('ws/t', { qos: 1 });
      await c.publish('ws/t', 'over ws', { qos: 1 });
      const [m] = await got.next(1);
      assert.equal(m?.payload.toString(), 'over ws');
      assert.deepEqual(protocols, ['mqtt']);
      await c.end();
    } finally {
      for (const s of wss.clients) s.terminate();
      wss.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
    }
  });
});
