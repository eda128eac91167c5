/**
 * The embedding API: `createBroker({ hooks })` from the public index, with hooks written by hand and
 * with the file-based ones (`FileAuth`), over TCP and over a TLS listener that names clients by their
 * certificate.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { createBroker, Logger, type Broker, type ClientInfo } from '../../src/index.js';
import { FileAuth } from '../../src/auth/hooks.js';
import { closeAllClients, collect, connect, expectNoMessage } from '../helpers/mqttjs.js';
import { makePki, type Pki } from './_pki.js';

let pki: Pki;
before(async () => { pki = await makePki(); });
after(() => pki.remove());

const running: Broker[] = [];
afterEach(async () => {
  await closeAllClients();
  await Promise.all(running.splice(0).map((b) => b.close()));
});

async function start(b: Broker): Promise<number> {
  running.push(b);
  const [addr] = await b.listen();
  return addr!.port;
}

async function codesOf(c: Awaited<ReturnType<typeof connect>>, filter: string): Promise<number[]> {
  try {
    return (await c.subscribeAsync(filter)).map((g) => g.qos as number);
  } catch (err) {
    const granted = (err as { packet?: { granted?: number[] } }).packet?.granted;
    if (granted === undefined) throw err;
    return granted;
  }
}

describe('createBroker hooks', () => {
  test('authenticate: accept, refuse with 5 (v5 0x87) or with 4 (v5 0x86), and see the client', async () => {
    const seen: ClientInfo[] = [];
    const port = await start(createBroker({
      listeners: [{ port: 0, host: '127.0.0.1' }],
      hooks: {
        authenticate: async (client, username, password) => {
          seen.push(client);
          if (username === 'good' && password?.toString() === 'pw') return true;
          return { ok: false, returnCode: username === 'bad-password' ? 4 : 5 };
        },
      },
    }));
    const ok = await connect(port, { clientId: 'emb-good', username: 'good', password: 'pw' });
    assert.ok(ok.connected);
    await assert.rejects(connect(port, { clientId: 'emb-5', username: 'other', password: 'x' }), /Not authorized/i);
    await assert.rejects(connect(port, { clientId: 'emb-4', username: 'bad-password', password: 'x' }), /Bad username or password/i);
    await assert.rejects(connect(port, { clientId: 'emb-v5-87', username: 'other', password: 'x', protocolVersion: 5 }), /Not authorized/i);
    await assert.rejects(connect(port, { clientId: 'emb-v5-86', username: 'bad-password', password: 'x', protocolVersion: 5 }), /Bad User Name or Password/i);
    const good = seen.find((c) => c.id === 'emb-good')!;
    assert.equal(good.remoteAddress, '127.0.0.1');
    assert.equal(good.listenerPort, port);
  });

  test('authorizePublish, authorizeSubscribe and authorizeRead (live and retained messages)', async () => {
    const port = await start(createBroker({
      listeners: [{ port: 0, host: '127.0.0.1' }],
      hooks: {
        authorizePublish: (_client, topic) => !topic.startsWith('forbidden/'),
        authorizeSubscribe: (_client, filter) => filter !== 'private/#',
        authorizeRead: (session, msg) => !(msg.topic.startsWith('vip/') && !session.clientId.startsWith('vip-')),
      },
    }));
    const pub = await connect(port, { clientId: 'publisher' });
    await pub.publishAsync('vip/retained', 'retained for vips', { qos: 1, retain: true });
    const vip = await connect(port, { clientId: 'vip-1' });
    const plain = await connect(port, { clientId: 'plain-1' });
    assert.deepEqual(await codesOf(plain, 'private/#'), [0x80]);
    assert.deepEqual(await codesOf(vip, '#'), [0]);
    assert.deepEqual(await codesOf(plain, '#'), [0]);
    assert.deepEqual((await collect(vip, 1)).map((m) => `${m.topic} ${m.payload} ${m.retain}`), ['vip/retained retained for vips true']);
    await pub.publishAsync('forbidden/x', 'never delivered', { qos: 1 });
    await pub.publishAsync('vip/news', 'vips only', { qos: 1 });
    await pub.publishAsync('all/news', 'everyone', { qos: 1 });
    assert.deepEqual((await collect(vip, 2)).map((m) => m.topic), ['vip/news', 'all/news']);
    assert.deepEqual((await collect(plain, 1)).map((m) => m.topic), ['all/news']);
    await expectNoMessage(plain, 100);
    await pub.publishAsync('vip/retained', '', { qos: 1, retain: true });
  });

  test('an MQTT 5 subscriber gets SUBACK 0x87 for a denied filter', async () => {
    const port = await start(createBroker({
      listeners: [{ port: 0, host: '127.0.0.1' }],
      hooks: { authorizeSubscribe: () => false },
    }));
    const c = await connect(port, { clientId: 'v5-denied', protocolVersion: 5 });
    assert.deepEqual(await codesOf(c, 'x'), [0x87]);
  });
});

describe('FileAuth hooks embedded', () => {
  test('password file and ACL from mosquitto files, with a failed-login delay', async () => {
    const acl = join(pki.dir, 'embedded-acl');
    writeFileSync(acl, 'user mqtt\ntopic readwrite mine/#\n');
    const log = new Logger(false, false, () => {});
    const auth = new FileAuth({ allowAnonymous: false, passwordFile: pki.passwd, aclFile: acl, failedLoginDelayMs: 150 }, log);
    await auth.load();
    const port = await start(createBroker({ listeners: [{ port: 0, host: '127.0.0.1' }], hooks: auth.hooks() }));
    const t0 = performance.now();
    await assert.rejects(connect(port, { clientId: 'emb-wrong', username: 'mqtt', password: 'nope' }), /Not authorized/i);
    assert.ok(performance.now() - t0 >= 140, 'the refusal waited for the delay');
    await assert.rejects(connect(port, { clientId: 'emb-anon' }), /Not authorized/i);
    const c = await connect(port, { clientId: 'emb-mqtt', username: 'mqtt', password: 'test' });
    assert.deepEqual(await codesOf(c, 'mine/#'), [0]);
    assert.deepEqual(await codesOf(c, 'theirs/#'), [0x80]);
    await c.publishAsync('mine/a', 'allowed', { qos: 1 });
    assert.deepEqual((await collect(c, 1)).map((m) => m.payload), ['allowed']);
  });

  test('a TLS listener with useIdentityAsUsername gives the hooks the certificate CN', async () => {
    const seen: Array<{ username?: string; identity?: string }> = [];
    const port = await start(createBroker({
      listeners: [{
        port: 0, host: '127.0.0.1', useIdentityAsUsername: true,
        tls: { cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey), ca: readFileSync(pki.ca), requestCert: true },
      }],
      hooks: {
        authenticate: (client, username) => {
          seen.push({ username, identity: client.certificateIdentity });
          return client.certificateIdentity !== undefined;
        },
      },
    }));
    const c = await connect(port, {
      protocol: 'mqtts', clientId: 'cert-client', username: 'claimed', ca: readFileSync(pki.ca),
      cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey), servername: 'localhost',
    });
    assert.ok(c.connected);
    assert.deepEqual(seen, [{ username: 'client1', identity: 'client1' }]);
  });
});
