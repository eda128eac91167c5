/**
 * GET /metrics of a `midge broker` process with an http_listener on loopback: parsed with a Prometheus
 * text-format parser and checked against what the test did (clients connected, messages published,
 * a refused login, a durable store's commits).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { connect, type MqttClient } from '../../src/client/index.js';
import { hashPassword } from '../../src/auth/password-file.js';
import { stopAllBrokers } from '../helpers/broker-process.js';
import { parsePrometheus, request, scrape, startHttpBroker, T, until } from './_util.js';

const dir = mkdtempSync(join(tmpdir(), 'midge-http-metrics-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const clients: MqttClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.end({ force: true }).catch(() => undefined)));
  await stopAllBrokers();
});

async function client(port: number, clientId: string, extra: Record<string, unknown> = {}): Promise<MqttClient> {
  const c = await connect(`mqtt://127.0.0.1:${port}`, { clientId, reconnect: false, ...extra });
  clients.push(c);
  return c;
}

describe('GET /metrics', () => {
  test('the parser reads the text format and refuses what is not', () => {
    const e = parsePrometheus('# HELP a_total x\n# TYPE a_total counter\na_total{k="v",q="1"} 3\nb 1.5e3\nc{le="+Inf"} +Inf\n');
    assert.equal(e.get('a_total', { k: 'v' }), 3);
    assert.equal(e.get('b'), 1500);
    assert.equal(e.get('c', { le: '+Inf' }), Infinity);
    assert.equal(e.types.get('a_total'), 'counter');
    assert.throws(() => parsePrometheus('a b c d\n'));
    assert.throws(() => parsePrometheus('x{bad} 1\n'));
  });

  test('counts clients, messages, bytes and packets that the test caused', T, async () => {
    const pw = await hashPassword('right-password-1');
    writeFileSync(join(dir, 'passwd'), `user1:${pw}\n`);
    const b = await startHttpBroker(['listener {port} 127.0.0.1', 'allow_anonymous true', `password_file ${join(dir, 'passwd')}`,
      'midge_failed_login_delay 0', 'http_listener 0']);
    const before = await scrape(b.http);
    assert.equal(before.get('midge_clients_connected'), 0);
    assert.equal(before.types.get('midge_messages_received_total'), 'counter');
    assert.equal(before.types.get('midge_clients_connected'), 'gauge');
    // the default process metrics, event-loop lag and heap among them
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
      assert.ok(before.get(name) !== undefined, `${name} is missing`);
    }
    // no store: no store metrics
    assert.equal(before.get('midge_store_commit_seconds_count'), undefined);

    const sub = await client(b.port, 'm-sub');
    await sub.subscribe('m/#', { qos: 1 });
    let got = 0;
    sub.on('message', () => { got++; });
    const pub = await client(b.port, 'm-pub');
    await client(b.port, 'm-idle');
    let m = await scrape(b.http);
    assert.equal(m.get('midge_clients_connected'), 3);
    assert.equal(m.get('midge_sessions'), 3);
    assert.equal(m.get('midge_subscriptions'), 1);
    assert.ok(m.get('midge_connections_total')! >= 3);
    assert.equal(m.get('midge_packets_received_total', { type: 'connect' }), 3);
    assert.equal(m.get('midge_packets_sent_total', { type: 'connack' }), 3);
    assert.equal(m.get('midge_packets_received_total', { type: 'subscribe' }), 1);

    const N = 40;
    const payload = 'x'.repeat(100);
    for (let i = 0; i < N; i++) await pub.publish(`m/${i}`, payload, { qos: 1 });
    for (let i = 0; i < N; i++) await pub.publish(`m/q0/${i}`, payload, { qos: 0 });
    await until(async () => got, (n) => n >= 2 * N);
    m = await until(() => scrape(b.http), (e) => (e.get('midge_messages_sent_total', { qos: '0' }) ?? 0) >= N);
    assert.equal(got, 2 * N);
    assert.ok(m.get('midge_messages_received_total', { qos: '1' })! >= N, 'QoS 1 PUBLISHes received');
    assert.ok(m.get('midge_messages_received_total', { qos: '0' })! >= N, 'QoS 0 PUBLISHes received');
    assert.equal(m.get('midge_messages_received_total', { qos: '2' }), 0);
    assert.ok(m.get('midge_message_bytes_received_total', { qos: '1' })! >= N * payload.length);
    assert.ok(m.get('midge_messages_sent_total', { qos: '1' })! >= N);
    assert.ok(m.get('midge_message_bytes_sent_total', { qos: '0' })! >= N * payload.length);
    assert.ok(m.get('midge_packets_received_total', { type: 'publish' })! >= 2 * N);
    assert.ok(m.get('midge_packets_sent_total', { type: 'puback' })! >= N);
    assert.ok(m.get('midge_packets_received_total', { type: 'puback' })! >= N, 'the subscriber acknowledged');
    // bytes by packet type: a PUBACK without properties is 4 bytes, whichever version; a PUBLISH has its payload and more
    assert.equal(m.get('midge_packet_bytes_sent_total', { type: 'puback' }), 4 * m.get('midge_packets_sent_total', { type: 'puback' })!);
    assert.equal(m.get('midge_packet_bytes_received_total', { type: 'puback' }), 4 * m.get('midge_packets_received_total', { type: 'puback' })!);
    assert.ok(m.get('midge_packet_bytes_received_total', { type: 'publish' })! > 2 * N * payload.length);
    assert.ok(m.get('midge_packet_bytes_sent_total', { type: 'publish' })! > 2 * N * payload.length);
    assert.ok(m.get('midge_packet_bytes_received_total', { type: 'connect' })! > 3 * 12, 'three CONNECTs of at least 12 bytes');
    assert.ok(m.get('midge_bytes_received_total')! > 2 * N * payload.length);
    assert.ok(m.get('midge_bytes_sent_total')! > 2 * N * payload.length);
    assert.equal(m.get('midge_messages_dropped_total'), 0);
    assert.equal(m.get('midge_inflight_messages'), 0);

    // retained: count and bytes ($SYS topics are retained too: compare the difference)
    const r0 = m.get('midge_retained_messages')!;
    const rb0 = m.get('midge_retained_bytes')!;
    await pub.publish('keep/1', 'abcdefghij', { qos: 1, retain: true });
    m = await scrape(b.http);
    assert.equal(m.get('midge_retained_messages'), r0 + 1);
    assert.equal(m.get('midge_retained_bytes'), rb0 + 10);

    // a refused login (a wrong password is "not authorised", as in mosquitto), counted by its reason
    await assert.rejects(connect(`mqtt://127.0.0.1:${b.port}`, { clientId: 'm-bad', username: 'user1', password: 'wrong', reconnect: false }));
    m = await until(() => scrape(b.http), (e) => e.get('midge_connections_refused_total', { reason: 'not_authorized' }) === 1);
    assert.equal(m.get('midge_connections_refused_total', { reason: 'not_authorized' }), 1);

    // a client that goes away: the gauge follows
    await clients.pop()!.end();
    m = await until(() => scrape(b.http), (e) => e.get('midge_clients_connected') === 2);
    assert.equal(m.get('midge_clients_connected'), 2);
    assert.equal(m.get('midge_clients_maximum'), 3);
  });

  test('queue depth of an offline durable session, and the store commit time with persistence on', T, async () => {
    const data = join(dir, 'data');
    const b = await startHttpBroker(['listener {port} 127.0.0.1', 'allow_anonymous true', 'persistence true',
      `persistence_location ${data}`, 'http_listener 0']);
    const sub = await client(b.port, 'q-sub', { clean: false });
    await sub.subscribe('q/#', { qos: 1 });
    await sub.end();
    clients.length = 0;
    const pub = await client(b.port, 'q-pub');
    for (let i = 0; i < 7; i++) await pub.publish(`q/${i}`, 'hello', { qos: 1 });
    const m = await until(() => scrape(b.http), (e) => e.get('midge_queued_messages') === 7);
    assert.equal(m.get('midge_queued_messages'), 7);
    assert.equal(m.get('midge_queued_bytes'), 35);
    assert.equal(m.get('midge_sessions'), 2);
    assert.equal(m.get('midge_sessions_connected'), 1);
    assert.equal(m.types.get('midge_store_commit_seconds'), 'histogram');
    const count = m.get('midge_store_commit_seconds_count')!;
    assert.ok(count >= 7, `at least one commit per acknowledged QoS 1 PUBLISH turn, got ${count}`);
    assert.equal(m.get('midge_store_commit_seconds_bucket', { le: '+Inf' }), count);
    assert.ok(m.get('midge_store_commit_seconds_sum')! > 0);
    const buckets = m.samples.filter((s) => s.name === 'midge_store_commit_seconds_bucket').map((s) => s.value);
    assert.ok(buckets.length >= 10);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]! >= buckets[i - 1]!, 'buckets are cumulative');
    assert.ok(m.get('midge_store_commits_total')! >= count);
  });

  test('only GET: another method is 405 with Allow', T, async () => {
    const b = await startHttpBroker(['http_listener 0']);
    const r = await request(`${b.http}/metrics`, { method: 'POST', body: '{}' });
    assert.equal(r.status, 405);
    assert.equal(r.headers.allow, 'GET');
    assert.equal(typeof r.json.error, 'string');
  });
});
