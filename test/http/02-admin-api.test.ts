/**
 * The JSON admin API of a `midge broker` process (http_listener on loopback: no login): every endpoint
 * with good input, bad JSON, unknown ids, bad topics and wrong methods; the OpenAPI document lists
 * every route.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { connect, type MqttClient } from '../../src/client/index.js';
import { ROUTES } from '../../src/http/api.js';
import { stopAllBrokers } from '../helpers/broker-process.js';
import { request, startHttpBroker, T, until, type HttpBroker, type Reply } from './_util.js';

let b: HttpBroker;
const clients: MqttClient[] = [];
before(async () => {
  b = await startHttpBroker(['listener {port} 127.0.0.1', 'allow_anonymous true', 'sys_interval 0', 'http_listener 0'], true);
});
afterEach(async () => { await Promise.all(clients.splice(0).map((c) => c.end({ force: true }).catch(() => undefined))); });
after(() => stopAllBrokers());

async function client(clientId: string, extra: Record<string, unknown> = {}): Promise<MqttClient> {
  const c = await connect(`mqtt://127.0.0.1:${b.port}`, { clientId, reconnect: false, ...extra });
  clients.push(c);
  return c;
}

const api = (path: string, method = 'GET', body?: unknown): Promise<Reply> =>
  request(`${b.http}/api/v1${path}`, { method, ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}) });

/** A 4xx answer with a JSON `{ error }` body. */
function assertError(r: Reply, status: number, pattern?: RegExp): void {
  assert.equal(r.status, status, r.text);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  assert.equal(typeof r.json?.error, 'string', r.text);
  if (pattern !== undefined) assert.match(r.json.error, pattern);
}

const enc = encodeURIComponent;

describe('admin API', () => {
  test('GET /api/v1/broker: version, uptime, listeners', T, async () => {
    const r = await api('/broker');
    assert.equal(r.status, 200);
    assert.match(r.json.version, /^\d+\.\d+\.\d+/);
    assert.equal(typeof r.json.uptimeSeconds, 'number');
    assert.deepEqual(r.json.listeners, [{ protocol: 'mqtt', host: '127.0.0.1', port: b.port, tls: false }]);
    assert.equal(r.json.httpListeners[0].protocol, 'http');
    assert.equal(`http://127.0.0.1:${r.json.httpListeners[0].port}`, b.http);
    assertError(await api('/broker', 'DELETE'), 405);
  });

  test('GET /api/v1/config: the configuration in force', T, async () => {
    const r = await api('/config');
    assert.equal(r.status, 200);
    assert.equal(r.json.allowAnonymous, true);
    assert.equal(r.json.sysInterval, 0);
    assert.equal(r.json.httpListeners[0].port, 0);
    assertError(await api('/config', 'POST', {}), 405);
  });

  test('clients: list with paging and search, detail, disconnect', T, async () => {
    const victims = await Promise.all(['api-a1', 'api-a2', 'api-b1'].map((id) => client(id, id === 'api-b1' ? { username: 'bobby' } : {})));
    let closed = false;
    victims[0]!.on('offline', () => { closed = true; });
    const all = await api('/clients');
    assert.equal(all.status, 200);
    assert.equal(all.json.total, 3);
    assert.deepEqual(all.json.items.map((c: { id: string }) => c.id).sort(), ['api-a1', 'api-a2', 'api-b1']);
    const p1 = await api('/clients?limit=2&offset=0');
    const p2 = await api('/clients?limit=2&offset=2');
    assert.equal(p1.json.items.length, 2);
    assert.equal(p2.json.items.length, 1);
    assert.equal(p2.json.total, 3);
    assert.deepEqual([...p1.json.items, ...p2.json.items].map((c: { id: string }) => c.id).sort(), ['api-a1', 'api-a2', 'api-b1']);
    assert.deepEqual((await api('/clients?search=I-A')).json.items.map((c: { id: string }) => c.id).sort(), ['api-a1', 'api-a2']);
    assert.deepEqual((await api('/clients?search=bob')).json.items.map((c: { id: string }) => c.id), ['api-b1'], 'search matches user names');
    assertError(await api('/clients?limit=0'), 400, /limit/);
    assertError(await api('/clients?limit=abc'), 400, /limit/);
    assertError(await api('/clients?offset=-1'), 400, /offset/);

    const one = await api('/clients/api-b1');
    assert.equal(one.status, 200);
    assert.equal(one.json.id, 'api-b1');
    assert.equal(one.json.username, 'bobby');
    assert.equal(one.json.remoteAddress, '127.0.0.1');
    assert.equal(one.json.listenerPort, b.port);
    assert.equal(one.json.protocolVersion, 4);
    assertError(await api('/clients/nobody'), 404, /nobody/);
    assertError(await api('/clients/api-b1', 'POST', {}), 405);

    const d = await api('/clients/api-a1', 'DELETE');
    assert.equal(d.status, 200);
    assert.equal(d.json.disconnected, 'api-a1');
    await until(async () => closed, (v) => v);
    assert.equal(closed, true, 'the client saw its connection closed');
    assertError(await api('/clients/api-a1'), 404);
    assertError(await api('/clients/api-a1', 'DELETE'), 404);
    await b.waitForLog(/Client api-a1 \[127\.0\.0\.1:\d+\] disconnected by an administrator/);
  });

  test('a client id with a slash and spaces, percent-encoded in the path', T, async () => {
    await client('odd/id with space');
    const r = await api(`/clients/${enc('odd/id with space')}`);
    assert.equal(r.status, 200);
    assert.equal(r.json.id, 'odd/id with space');
    assertError(await api('/clients/%E0%A4%A'), 400, /percent/);
  });

  test('sessions: list, detail, delete (offline durable session)', T, async () => {
    const c = await client('api-durable', { clean: false });
    await c.subscribe('dur/+', { qos: 1 });
    await c.end();
    clients.length = 0;
    const list = await api('/sessions?search=durable');
    assert.equal(list.status, 200);
    assert.equal(list.json.total, 1);
    assert.equal(list.json.items[0].clientId, 'api-durable');
    assert.equal(list.json.items[0].connected, false);
    assert.equal(list.json.items[0].subscriptionCount, 1);
    const one = await api('/sessions/api-durable');
    assert.equal(one.status, 200);
    assert.deepEqual(one.json.subscriptions.map((s: { filter: string; qos: number }) => [s.filter, s.qos]), [['dur/+', 1]]);
    assertError(await api('/sessions/ghost'), 404);
    assertError(await api('/sessions?limit=5000'), 400);
    const del = await api('/sessions/api-durable', 'DELETE');
    assert.equal(del.status, 200);
    assertError(await api('/sessions/api-durable'), 404);
    assertError(await api('/sessions/api-durable', 'DELETE'), 404);
    assertError(await api('/sessions', 'POST', {}), 405);
  });

  test('deleting the session of a connected client disconnects it', T, async () => {
    const c = await client('api-live', { clean: false });
    let closed = false;
    c.on('offline', () => { closed = true; });
    assert.equal((await api('/sessions/api-live', 'DELETE')).status, 200);
    await until(async () => closed, (v) => v);
    assert.equal(closed, true);
    assertError(await api('/sessions/api-live'), 404);
  });

  test('subscriptions: list, add (delivers), remove, bad filters, unknown clients', T, async () => {
    const sub = await client('api-sub');
    const got: string[] = [];
    sub.on('message', (m) => got.push(`${m.topic}=${m.payload.toString()}`));
    assert.deepEqual((await api('/clients/api-sub/subscriptions')).json.items, []);
    const add = await api('/clients/api-sub/subscriptions', 'POST', { filter: 'added/#', qos: 1 });
    assert.equal(add.status, 201, add.text);
    assert.equal(add.json.replaced, false);
    const again = await api('/clients/api-sub/subscriptions', 'POST', { filter: 'added/#', qos: 0 });
    assert.equal(again.status, 200);
    assert.equal(again.json.replaced, true);
    const list = await api('/clients/api-sub/subscriptions');
    assert.deepEqual(list.json.items.map((s: { filter: string; qos: number }) => [s.filter, s.qos]), [['added/#', 0]]);
    // the subscription works: a message published through the API reaches the client
    const pub = await api('/publish', 'POST', { topic: 'added/x', payload: 'via-api' });
    assert.equal(pub.status, 200);
    assert.equal(pub.json.matched, true);
    await until(async () => got.length, (n) => n >= 1);
    assert.deepEqual(got, ['added/x=via-api']);

    assertError(await api('/clients/api-sub/subscriptions', 'POST', { filter: 'a/#/b' }), 400, /filter/);
    assertError(await api('/clients/api-sub/subscriptions', 'POST', { filter: '$share/g' }), 400, /filter/);
    assertError(await api('/clients/api-sub/subscriptions', 'POST', { filter: 'ok', qos: 3 }), 400, /qos/);
    assertError(await api('/clients/api-sub/subscriptions', 'POST', { qos: 1 }), 400, /filter/);
    assertError(await api('/clients/api-sub/subscriptions', 'POST', '{"filter": "x"'), 400, /JSON/);
    assertError(await api('/clients/api-sub/subscriptions', 'POST', '[1,2]'), 400, /object/);
    assertError(await api('/clients/api-sub/subscriptions', 'POST'), 400);
    assertError(await api('/clients/ghost/subscriptions', 'POST', { filter: 'x' }), 404);
    assertError(await api('/clients/ghost/subscriptions'), 404);

    const rm = await api(`/clients/api-sub/subscriptions?filter=${enc('added/#')}`, 'DELETE');
    assert.equal(rm.status, 200);
    assert.deepEqual((await api('/clients/api-sub/subscriptions')).json.items, []);
    assertError(await api(`/clients/api-sub/subscriptions?filter=${enc('added/#')}`, 'DELETE'), 404);
    assertError(await api('/clients/api-sub/subscriptions', 'DELETE'), 400, /filter/);
    assertError(await api('/clients/ghost/subscriptions?filter=x', 'DELETE'), 404);
    assertError(await api('/clients/api-sub/subscriptions', 'PUT', {}), 405);
    assert.equal((await api('/publish', 'POST', { topic: 'added/y', payload: 'late' })).json.matched, false);
  });

  test('retained: browse by filter, read one, delete one; bad topics', T, async () => {
    for (const [topic, payload] of [['ret/a/1', 'one'], ['ret/b/1', 'two'], ['ret/a/2', 'three'], ['other/x', 'four']]) {
      const r = await api('/publish', 'POST', { topic, payload, retain: true, qos: 1 });
      assert.equal(r.status, 200, r.text);
    }
    const bin = Buffer.from([0xff, 0x00, 0xfe]);
    assert.equal((await api('/publish', 'POST', { topic: 'ret/bin', payload: bin.toString('base64'), encoding: 'base64', retain: true })).status, 200);

    const browse = await api(`/retained?filter=${enc('ret/+/1')}`);
    assert.equal(browse.status, 200);
    assert.deepEqual(browse.json.items.map((m: { topic: string; payload: string }) => [m.topic, m.payload]), [['ret/a/1', 'one'], ['ret/b/1', 'two']]);
    const all = await api(`/retained?filter=${enc('ret/#')}&limit=2&offset=1`);
    assert.equal(all.json.total, 4);
    assert.deepEqual(all.json.items.map((m: { topic: string }) => m.topic), ['ret/a/2', 'ret/b/1']);
    assertError(await api(`/retained?filter=${enc('ret/#/x')}`), 400, /filter/);

    const one = await api(`/retained/message?topic=${enc('ret/a/2')}`);
    assert.equal(one.status, 200);
    assert.equal(one.json.payload, 'three');
    assert.equal(one.json.payloadBase64, Buffer.from('three').toString('base64'));
    assert.equal(one.json.qos, 1);
    const b64 = await api(`/retained/message?topic=${enc('ret/bin')}`);
    assert.equal(b64.json.payload, null, 'not UTF-8: no text');
    assert.deepEqual(Buffer.from(b64.json.payloadBase64, 'base64'), bin);
    assertError(await api(`/retained/message?topic=${enc('ret/none')}`), 404);
    assertError(await api(`/retained/message?topic=${enc('ret/+')}`), 400, /topic/);
    assertError(await api('/retained/message'), 400, /topic/);

    // a subscriber gets what is retained, and no longer after the delete
    assert.equal((await api(`/retained/message?topic=${enc('ret/a/1')}`, 'DELETE')).status, 200);
    assertError(await api(`/retained/message?topic=${enc('ret/a/1')}`), 404);
    assertError(await api(`/retained/message?topic=${enc('ret/a/1')}`, 'DELETE'), 404);
    assertError(await api(`/retained/message?topic=${enc('a/#')}`, 'DELETE'), 400);
    const sub = await client('api-ret');
    const got: string[] = [];
    sub.on('message', (m) => got.push(m.topic));
    await sub.subscribe('ret/a/#', { qos: 0 });
    await until(async () => got.length, (n) => n >= 1);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(got, ['ret/a/2']);
    assertError(await api('/retained', 'DELETE'), 405);
  });

  test('publish: qos, utf8 and base64 payloads; bad input', T, async () => {
    const sub = await client('api-pub-sub');
    const got: Array<{ topic: string; payload: Buffer; qos: number }> = [];
    sub.on('message', (m) => got.push({ topic: m.topic, payload: m.payload, qos: m.qos }));
    await sub.subscribe('pub/#', { qos: 2 });
    assert.equal((await api('/publish', 'POST', { topic: 'pub/text', payload: 'héllo', qos: 2 })).status, 200);
    assert.equal((await api('/publish', 'POST', { topic: 'pub/bin', payload: 'AAEC', encoding: 'base64', qos: 1 })).status, 200);
    await until(async () => got.length, (n) => n >= 2);
    assert.equal(got[0]!.payload.toString(), 'héllo');
    assert.equal(got[0]!.qos, 2);
    assert.deepEqual([...got[1]!.payload], [0, 1, 2]);
    assert.equal(got[1]!.qos, 1);

    assertError(await api('/publish', 'POST', '{bad json'), 400, /JSON/);
    assertError(await api('/publish', 'POST', { topic: 'a/+', payload: 'x' }), 400, /topic/);
    assertError(await api('/publish', 'POST', { topic: '', payload: 'x' }), 400, /topic/);
    assertError(await api('/publish', 'POST', { payload: 'x' }), 400, /topic/);
    assertError(await api('/publish', 'POST', { topic: 't', payload: 'x', qos: 5 }), 400, /qos/);
    assertError(await api('/publish', 'POST', { topic: 't', payload: 12 }), 400, /payload/);
    assertError(await api('/publish', 'POST', { topic: 't', payload: '***', encoding: 'base64' }), 400, /base64/);
    assertError(await api('/publish', 'POST', { topic: 't', payload: 'x', encoding: 'hex' }), 400, /encoding/);
    assertError(await api('/publish', 'POST', { topic: 't', retain: 'yes' }), 400, /retain/);
    assertError(await api('/publish'), 405);
    // the request body is bounded (1 MiB by default)
    assertError(await api('/publish', 'POST', { topic: 't', payload: 'x'.repeat(1024 * 1024 + 10) }), 413);
  });

  test('unknown paths are 404 with a JSON error; / is the dashboard and only its files are served', T, async () => {
    const home = await request(`${b.http}/`);
    assert.equal(home.status, 200);
    assert.match(String(home.headers['content-type']), /^text\/html/);
    assert.match(home.text, /<title>Midge dashboard<\/title>/);
    const js = await request(`${b.http}/dashboard.js`);
    assert.equal(js.status, 200);
    assert.match(String(js.headers['content-type']), /^text\/javascript/);
    assertError(await request(`${b.http}/`, { method: 'POST', body: '{}' }), 405);
    assertError(await request(`${b.http}/nothing.html`), 404);
    assertError(await request(`${b.http}/%2e%2e%2fpackage.json`), 404);
    assertError(await request(`${b.http}/dashboard/index.html`), 404);
    assertError(await api('/nothing'), 404);
    assertError(await api('/clients/a/b/c'), 404);
  });

  test('GET /api/v1/openapi.json lists every route the server implements', T, async () => {
    const r = await api('/openapi.json');
    assert.equal(r.status, 200);
    assert.match(r.json.openapi, /^3\./);
    const documented = new Set<string>();
    for (const [path, ops] of Object.entries(r.json.paths as Record<string, Record<string, unknown>>)) {
      for (const m of Object.keys(ops)) documented.add(`${m.toUpperCase()} ${path}`);
    }
    const implemented = new Set<string>(['GET /metrics', 'GET /api/v1/openapi.json']);
    for (const route of ROUTES) for (const m of Object.keys(route.methods)) implemented.add(`${m} ${route.path}`);
    assert.deepEqual([...documented].sort(), [...implemented].sort());
    // and the list this test knows, so that a route dropped from both would be noticed
    for (const must of ['GET /api/v1/clients', 'GET /api/v1/clients/{clientId}', 'DELETE /api/v1/clients/{clientId}',
      'GET /api/v1/clients/{clientId}/subscriptions', 'POST /api/v1/clients/{clientId}/subscriptions', 'DELETE /api/v1/clients/{clientId}/subscriptions',
      'GET /api/v1/sessions', 'GET /api/v1/sessions/{clientId}', 'DELETE /api/v1/sessions/{clientId}', 'GET /api/v1/retained',
      'GET /api/v1/retained/message', 'DELETE /api/v1/retained/message', 'POST /api/v1/publish', 'GET /api/v1/broker', 'GET /api/v1/config']) {
      assert.ok(implemented.has(must), `${must} is implemented`);
    }
    // every $ref points at a component that exists
    const refs = JSON.stringify(r.json).match(/"#\/components\/[a-z]+\/[A-Za-z]+"/g) ?? [];
    for (const ref of refs) {
      const [, , kind, name] = JSON.parse(ref).split('/');
      assert.ok(r.json.components[kind][name] !== undefined, `${ref} exists`);
    }
  });
});
