/**
 * `startHttpListener(broker, options)` from the public entry point, in process: an embedder's broker,
 * its own credentials check, the configuration view of the broker's options (TLS key contents masked),
 * and close().
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { createBroker, startHttpListener, connect } from '../../src/index.js';
import { basic, bearer, request, scrape, T } from './_util.js';

const broker = createBroker({
  listeners: [{ port: 0, host: '127.0.0.1', tls: { cert: 'CERT-CONTENTS', key: 'PRIVATE-KEY-CONTENTS' } }],
  sysInterval: 0,
});
after(() => broker.close());

test('an embedder serves metrics and the API beyond loopback with its own credentials', T, async () => {
  await broker.start();
  const http = await startHttpListener(broker, {
    port: 0, host: '127.0.0.2',
    auth: { token: 'embedded-token-123456', verifyUser: (u, p) => (u === 'ops' && p === 'ops-pass' ? true : u === 'dev' && p === 'dev-pass' ? 'not_admin' : false) },
    maxBodyBytes: 100,
  });
  try {
    assert.match(http.url, /^http:\/\/127\.0\.0\.2:\d+$/);
    assert.equal(http.tls, false);
    assert.equal((await request(`${http.url}/api/v1/broker`)).status, 401);
    assert.equal((await request(`${http.url}/api/v1/broker`, { headers: basic('dev', 'dev-pass') })).status, 403);
    assert.equal((await request(`${http.url}/api/v1/broker`, { headers: basic('ops', 'nope') })).status, 401);
    const info = await request(`${http.url}/api/v1/broker`, { headers: basic('ops', 'ops-pass') });
    assert.equal(info.status, 200);
    assert.equal(info.json.httpListeners[0].port, http.address.port);
    const cfg = await request(`${http.url}/api/v1/config`, { headers: bearer('embedded-token-123456') });
    assert.equal(cfg.status, 200);
    assert.equal(cfg.json.listeners[0].tls.key, '***');
    assert.equal(cfg.json.listeners[0].tls.cert, '***');
    assert.ok(!cfg.text.includes('PRIVATE-KEY-CONTENTS'));
    assert.equal(cfg.json.sysInterval, 0);
    assert.equal(cfg.json.hooks, undefined);
    // the body limit is the embedder's
    const big = await request(`${http.url}/api/v1/publish`, { method: 'POST', headers: bearer('embedded-token-123456'), body: JSON.stringify({ topic: 't', payload: 'x'.repeat(200) }) });
    assert.equal(big.status, 413);
    // metrics without a metrics token: open
    const m = await scrape(http.url);
    assert.equal(m.get('midge_clients_connected'), 0);
  } finally {
    await http.close();
  }
  await assert.rejects(request(`${http.url}/metrics`), 'closed');
});

test('two listeners of one broker share one registry; a connected MQTT client is counted', T, async () => {
  const plain = createBroker({ listeners: [{ port: 0, host: '127.0.0.1' }], sysInterval: 0 });
  const [mqtt] = await plain.listen();
  const a = await startHttpListener(plain, { port: 0 });
  const b = await startHttpListener(plain, { port: 0, host: 'localhost' });
  const c = await connect(`mqtt://127.0.0.1:${mqtt!.port}`, { clientId: 'emb', reconnect: false });
  try {
    const ma = await scrape(a.url);
    const mb = await scrape(b.url);
    assert.equal(ma.get('midge_clients_connected'), 1);
    assert.equal(mb.get('midge_clients_connected'), 1);
    assert.equal(ma.get('midge_connections_total'), mb.get('midge_connections_total'));
    const info = await request(`${b.url}/api/v1/broker`);
    assert.equal(info.json.httpListeners.length, 2);
    const clients = await request(`${a.url}/api/v1/clients`);
    assert.deepEqual(clients.json.items.map((x: { id: string }) => x.id), ['emb']);
  } finally {
    await c.end({ force: true });
    await a.close();
    await b.close();
    await plain.close();
  }
});
